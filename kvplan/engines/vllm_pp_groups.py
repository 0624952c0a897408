"""Whose layers a V1 release groups under pipeline parallelism, and whose block count each worker's start-up lines
report, by release. The engine core sizes one KVCacheConfig a worker (pp x tp of them, in rank order, so worker 0
is stage 0's first TP rank: distributed/parallel_state.py lays ranks out (dp, pp, tp)), then gives every worker the
smallest num_blocks and builds the scheduler from worker 0's config. Read in the wheels 0.9.1, 0.9.2, 0.10.0,
0.10.1.1, 0.10.2, 0.11.0, 0.11.1 (the per-worker call also found in 0.8.2-0.9.0's core.py, 0.8.2:126-144):

- "own" (0.8.2-0.10.2): _initialize_kv_caches calls get_kv_cache_config once a worker on that worker's layers
  alone (v1/engine/core.py 0.9.1:145-150, 0.9.2:146-151, 0.10.0:167-172, 0.10.1.1:188-193, 0.10.2:192-197), so each
  worker buckets, sizes its groups (the smallest of ITS kinds' counts, vllm_group_size) and pads them itself
  (_get_kv_cache_config_uniform_page_size, kv_cache_utils.py 0.10.1.1:880-1019: "Add N padding layers" and its num
  blocks = available // page // its group size, :989), and logs "GPU KV cache size" / "Maximum concurrency" with
  its own count over its own groups (:1011-1018). unify_kv_cache_configs (0.9.1:963-996, 0.10.1.1:1121-1154) sorts
  each worker's groups by spec, asserts the specs equal over zip() (a worker may have fewer groups), and sets every
  num_blocks to the smallest; the scheduler takes kv_cache_configs[0] (core.py 0.9.1:159-165, 0.10.1.1:202-208), so
  a request's blocks are counted over stage 0's own groups. gemma-3-27b-it at pp 4 (stages of 15, 16, 16, 15
  layers; full attention every 6th): stage 0 holds 2 full + 13 sliding layers, grouped 2 a group (7 sliding groups,
  one padded, and 1 full: 8 groups, a block of 2 pages), stage 1 3 + 13 (a block of 3 pages, 6 groups).
- "projected" (0.11.0): get_kv_cache_configs groups the whole model once, the i-th group of a kind taking
  layers[i::n] (kv_cache_utils.py 0.11.0:1211-1291, :997-1000), and projects the groups on each worker, whose block
  is its widest group's layers there (get_kv_cache_config_from_groups :1004-1093, group_size = the worker's largest
  group :1054); each worker still logs its own count, before the smallest is taken (:1080-1091, then :1286-1289).
  gemma-3-27b-it at pp 4: 7 groups (6 sliding of 52 layers, 8 padding, and 1 full of 10), 3 pages a block on every
  stage.
- "agreed" (0.11.1 on): as "projected", but the lines are logged once (info_once), after every worker takes the
  smallest count (_report_kv_cache_config, 0.11.1:1325-1338). Also kvplan's rule before 0.8.2, where
  get_kv_cache_configs sizes every worker at one memory and the most layers any worker holds (0.8.0:556-588).

A single-kind model's groups are the same either way; only the lines differ. Under "own", unify_kv_cache_configs'
assert stops the engine core where a worker's sorted groups differ from worker 0's anywhere zip() pairs them
(stage_mismatch_refusal): gpt-oss-20b at pp 5 (stages of 5, 5, 5, 5, 4 layers, sliding and full alternating) has
stage 0 sorted [full, sliding, sliding] (2 full, 3 sliding: group size 2) and stage 1 [full, full, sliding]. The sort
key is the spec's type_id to 0.10.0 ("full_attention_..." < "local_attention_..." < "mamba_..." <
"sliding_window_...", kv_cache_utils.py 0.9.1:975-979, 0.10.0:1122-1126; kv_cache_interface.py 0.10.0:103-209), its
class name then fields from 0.10.1 (0.10.1.1:1134-1136; ChunkedLocalAttentionSpec first): kvplan orders by kind,
window and page, not by heads or dtype. Not modelled: the lines of the workers before one whose memory check fails.
"""

from __future__ import annotations

from typing import Optional

from .figures import Refusal
from .vllm_versions import release_rule

TYPE_ID = {"full": "full_attention", "mla": "full_attention", "indexer": "full_attention", "chunked": "local_attention",
           "mamba": "mamba", "sliding": "sliding_window"}
CLASS_NAME = {"full": "FullAttentionSpec", "mla": "FullAttentionSpec", "indexer": "FullAttentionSpec",
              "chunked": "ChunkedLocalAttentionSpec", "mamba": "MambaSpec", "sliding": "SlidingWindowSpec"}

PP_WORKER_CONFIG = (
    ((0, 11, 1), "agreed", "0.11.1 kv_cache_utils.py:1325-1338: the smallest count, then one report"),
    ((0, 11), "projected", "0.11.0 kv_cache_utils.py:1211-1291: whole-model groups, each worker logs its own count"),
    ((0, 8, 2), "own", "0.10.1.1 v1/engine/core.py:188-208: get_kv_cache_config per worker, worker 0's groups"),
    ((0, 0), "agreed", "0.8.0 kv_cache_utils.py:556-588: one memory and the most layers for every worker"),
)


def pp_worker_config(version: str) -> str:
    """PP_WORKER_CONFIG's rule for `version`."""
    return release_rule(PP_WORKER_CONFIG, version)


def groups_own_layers(version: str) -> bool:
    """Whether each pipeline worker of `version` groups its own layers alone (docstring: "own")."""
    return pp_worker_config(version) == "own"


def lines_per_worker(version: str) -> bool:
    """Whether each worker of `version` logs its own block count before the smallest is agreed ("own",
    "projected"), rather than the agreed count once ("agreed")."""
    return pp_worker_config(version) != "agreed"


def stage_groups(specs: list, stages: list, group) -> list:
    """[(groups, padding)] a stage: `group` (the release's grouping of a spec list whose None entries hold no cache)
    applied to each stage's layers alone, the layer indices kept."""
    return [group([s if i in stage else None for i, s in enumerate(specs)]) for stage in stages]


def pipeline_groups(specs: list, stages: list, group, version: str, v0: bool) -> tuple:
    """(groups, padding, own): the KV-cache groups the scheduler counts a request's blocks over, their padding, and
    each stage's (groups, padding) where every pipeline worker of `version` groups its own layers (docstring: "own",
    0.8.2-0.10.2; the scheduler takes stage 0's), else None: `group` (the release's grouping of a spec list) applied
    to the whole model once ("projected", "agreed"; V0 (`v0`) and one stage alike). A stage without a cache layer
    under "own" is not modelled: the whole model's groups are kept."""
    groups, padding = group(specs)
    if len(stages) < 2 or v0 or not groups_own_layers(version):
        return groups, padding, None
    own = stage_groups(specs, stages, group)
    if not all(g for g, _ in own):
        return groups, padding, None
    return own[0][0], own[0][1], own


def worker_lines(per_stage: list) -> list:
    """The start-up lines of every worker, stage by stage (`per_stage`: each stage's lines), one copy where stages
    log alike (as the "Available KV cache memory" lines: TP ranks of a stage log the same words)."""
    return [line for lines in dict.fromkeys(tuple(lines) for lines in per_stage) for line in lines]


def _by_class(spec) -> tuple:
    """A group's place by its spec's class name, then fields (0.10.1 on), on kvplan's spec fields."""
    return CLASS_NAME.get(spec.kind, spec.kind), spec.block_size, spec.window, spec.page_bytes


def _by_type_id(spec) -> tuple:
    """A group's place by its spec's type_id (to 0.10.0), on kvplan's spec fields."""
    return TYPE_ID.get(spec.kind, spec.kind), str(spec.window), spec.block_size, spec.page_bytes


# unify_kv_cache_configs' order of a worker's groups by release, newest first (module docstring)
GROUP_ORDER = (
    ((0, 10, 1), _by_class, "0.10.1.1 kv_cache_utils.py:1134-1136: class name, then fields"),
    ((0, 0), _by_type_id, "0.9.1 kv_cache_utils.py:975-979, 0.10.0:1122-1126: type_id"),
)


def _sort_key(version: str):
    """unify_kv_cache_configs' order of a worker's groups in `version` (GROUP_ORDER)."""
    return release_rule(GROUP_ORDER, version)


def stage_mismatch_refusal(per_stage: list, version: str) -> Optional[Refusal]:
    """unify_kv_cache_configs' AssertionError where a worker's groups, sorted, pair with worker 0's (zip) on a spec
    of another kind (`per_stage`: each stage's groups, stage 0's first); None where they agree."""
    key = _sort_key(version)
    first = sorted((g.spec for g in per_stage[0]), key=key)
    for index, groups in enumerate(per_stage[1:], start=1):
        mine = sorted((g.spec for g in groups), key=key)
        if any(a != b for a, b in zip(first, mine)):
            return Refusal(
                f"Pipeline stage {index}'s KV-cache groups differ from stage 0's: vLLM {version} groups each "
                f"pipeline worker's own layers (stage 0: {_kinds(first)}; stage {index}: {_kinds(mine)}) and its "
                f"engine core stops as it makes the workers' configs agree (v1/core/kv_cache_utils.py "
                f"unify_kv_cache_configs): AssertionError", None, configuration=True, field="engine",
                remedy="--engine vllm==0.11.0 or newer groups the whole model's layers once and gets past this, and "
                       "so does a --pp-layer-partition (VLLM_PP_LAYER_PARTITION) under which every stage's groups, "
                       "sorted, pair with stage 0's on the same kinds",
                remedy_flags=(("engine", "--engine"), ("pp_layer_partition", "--pp-layer-partition")))
    return None


def _kinds(specs) -> str:
    """A worker's sorted groups in words: "full, sliding 128, sliding 128"."""
    return ", ".join(s.kind + (f" {s.window}" if s.window else "") for s in specs)
