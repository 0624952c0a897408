"""How many layers a KV-cache group holds where a hybrid's kinds come in unequal numbers, by vLLM release
(v1/core/kv_cache_utils.py _get_kv_cache_config_uniform_page_size in 0.9.1-0.10.2, then
_get_kv_cache_groups_uniform_page_size; 0.33 on in v1/core/kv_cache_planning.py). Each kind's layers (one bucket a
spec) are split into cdiv(layers, group size) groups, the last ones padded ("Add N padding layers"), and one
block is a page of every layer of a group, so the group size is the pool's stride. The bucket sizes' smallest is
the group size, unless the largest is within a factor of it (gpt-oss-20b with an EAGLE drafter's full layer: 12
sliding + 13 full), when the largest is, so the smaller kinds are padded up to it instead of the larger split:

- 0.9.1-0.11.2: the smallest always (0.9.1:825, 0.10.2:981, 0.11.0:977, 0.11.2:974).
- 0.12.0-0.17.1: the largest where largest < smallest x 1.25 (0.12.0:1014-1023, 0.13.0:1019-1028,
  0.14.0 / 0.16.0:1033-1042, 0.17.0 / 0.17.1:1040-1049).
- 0.18.0 on: x 1.5 ("accommodating speculative decoding drafters", 0.18.0 / 0.18.1:1040-1051, 0.20.0:1124-1135,
  0.27.0:1245-1256, 0.32.0:1467-1478; kv_cache_planning.py 0.33.0:521-530, 0.34.0:567-578).

Read alike in every release and left as kvplan has them: buckets are equal specs (type_id in 0.9.1-0.10.0, the spec
from 0.10.1); 0.27.0 merges buckets whose specs merge (kv_cache_utils.py 0.27.0:1211-1231: full-attention specs
differing only in window, chunk or causality, which kvplan's hybrid-manager specs never do). A group takes
layers[i::n] from 0.11.0 (0.11.0:997-1000), contiguous slices before (0.10.2:991-992); the counts on one worker are
the same. Under pipeline parallelism 0.9.1-0.10.2 group each worker's layers on their own (get_kv_cache_config per
worker, v1/engine/core.py 0.10.1.1:188-193), 0.11.0 on project the whole model's groups on each stage
(kv_cache_utils.py 0.11.0:1258-1280): vllm_pp_groups.py.
"""

from __future__ import annotations

from typing import Optional

from .vllm_versions import release_rule

# (first release, largest/smallest below which the largest is the group size (numerator, denominator), or None),
# newest first (docstring)
GROUP_SIZE_RULES = (
    ((0, 18), (3, 2), "0.18.0 kv_cache_utils.py:1040-1051: max_num_layers < min_num_layers * 1.5"),
    ((0, 12), (5, 4), "0.12.0 kv_cache_utils.py:1014-1023: max_num_layers < min_num_layers * 1.25"),
    ((0, 0), None, "0.9.1 kv_cache_utils.py:825: min of the layer counts"),
)


def largest_within(version: str) -> Optional[tuple]:
    """GROUP_SIZE_RULES' factor (numerator, denominator) for `version`, None where the smallest always wins."""
    return release_rule(GROUP_SIZE_RULES, version)


def group_size(bucket_sizes, version: str) -> int:
    """The layers a group holds for buckets of `bucket_sizes` layers under `version` (docstring)."""
    smallest, largest = min(bucket_sizes), max(bucket_sizes)
    factor = largest_within(version)
    if factor is not None and largest * factor[1] < smallest * factor[0]:
        return largest
    return smallest
