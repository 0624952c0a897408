"""Whether a vLLM V1 release keeps a model's attention kinds apart (the hybrid KV cache manager: a block group per
kind, vllm_specs.kv_cache_groups, "Add N padding layers") or plans every layer as full attention. Read in the wheels
0.8.0-0.8.5, 0.9.0, 0.9.1, 0.9.2, 0.10.0, 0.10.1 (envs.py defaults also 0.11.0-0.26.0):

- 0.8.0-0.8.2: the model runner gives every decoder layer a FullAttentionSpec ("TODO: Support other attention
  modules, e.g., sliding window", v1/worker/gpu_model_runner.py 0.8.0:1490-1499): a window is the kernel's only, and
  the start-up check, the block count and admission count every token of every layer, in a model whose layers all
  slide alike (Mistral-7B-v0.1) too.
- 0.8.3-0.9.0: a SlidingWindowSpec per sliding layer (gpu_model_runner.py 0.8.5:1751-1757, 0.9.0:2059-2065);
  check_enough_kv_cache_memory reads those (v1/core/kv_cache_utils.py 0.8.5:699, 0.9.0:703), then
  unify_hybrid_kv_cache_specs makes them full attention where full layers are present too (0.8.5:657-681,
  0.9.0:660-685): one group, no padding, no warning. Layers that all slide alike keep their one sliding group.
- 0.9.1 on: the hybrid manager groups the kinds (_get_kv_cache_config_uniform_page_size, kv_cache_utils.py
  0.9.1:739-876; "Add %d padding layers" :831, its first release) unless the scheduler's
  disable_hybrid_kv_cache_manager is set; then get_kv_cache_config unifies as above, after the same check, with a
  warning (0.9.1:889-901, 942-943; 0.10.0:1020-1031, 1085-1086). VllmConfig.__post_init__ sets it for a platform
  neither CUDA nor ROCm, --kv-transfer-config and --kv-events-config (config.py 0.9.1:4493-4506, 0.9.2:4629-4642),
  chunked local attention with an EAGLE drafter (config.py 0.10.0:4670-4676: use_eagle, eagle / eagle3 /
  deepseek_mtp; 0.34.0 config/vllm.py:2156-2166), and chunked local attention whatever the drafter, with a warning,
  unless VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE (config/__init__.py 0.10.1:3667-3684; 0.13.0
  config/vllm.py:906-925), whose default is "0" in 0.10.1-0.13.0 and "1" from 0.14.0 (envs.py).
- a chunked layer (Llama 4) has no spec of its own before 0.10.0: its attention module has no sliding_window, so
  it is a FullAttentionSpec (gpu_model_runner.py 0.9.2:2636-2650); ChunkedLocalAttentionSpec from 0.10.0
  (0.10.0:2794-2812), which unify_hybrid_kv_cache_specs makes full from 0.10.0 (kv_cache_utils.py 0.10.0:1035-1060).

kvplan has none of --disable-hybrid-kv-cache-manager, --kv-transfer-config, --kv-events-config and plans CUDA and
ROCm GPUs only, so the chunked rules are the ones it meets. Not modelled: layers of two windows and no full layer,
which 0.8.3-0.9.0 (and a disabled manager later) cannot unify (NotImplementedError / ValueError).

The groups, once the cache is sized, meet the scheduler's coordinator (coordinator_refusal). Up to 0.13.x
HybridKVCacheCoordinator finds prefix-cache hits for full attention and one other kind only: over the groups it
asserts one full-attention spec and one other spec, so two windows (a sliding_window list [4096, null, 1024, null]),
or a window beside a Mamba state, stop the engine core as it builds its scheduler, after the KV cache lines are
logged (v1/engine/core.py 0.9.1:83-107, 0.13.0:109-135). A window size is part of the spec (type_id
sliding_window_{w}_..., kv_cache_interface.py 0.9.1; dataclass equality from 0.10.1). Read in 0.9.1 :207-256, 0.9.2
:209-258, 0.10.0 :238-289, 0.10.1 :236-284, 0.10.2 / 0.11.0 :268-322, 0.13.0 :329-409 (v1/core/kv_cache_coordinator.py).
get_kv_cache_coordinator builds it for any model of more than one group in 0.9.1-0.9.2 (0.9.1:352-363); from 0.10.0
only with prefix caching on, KVCacheCoordinatorNoPrefixCache checking nothing otherwise (0.10.0:387-394, 0.13.0
:526-547; the scheduler's enable_caching is --enable-prefix-caching, v1/core/sched/scheduler.py 0.10.0:154-157).
0.14.0's coordinator takes any number of kinds ("requires at least two attention groups", 0.14.0:395-421).
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple, Optional

from .figures import Refusal
from .vllm_specs import Group
from .vllm_versions import in_span, parse_version, release_rule

SLIDING_AS_FULL = ((0, 8), (0, 8, 3))  # [from, before): the runner's specs are all full attention (docstring)
UNIFIED_ALWAYS = ((0, 8), (0, 9, 1))  # [from, before): no hybrid manager, mixed kinds unified to full
# [from, before): _get_kv_cache_config_uniform_type logs "Maximum concurrency" as num_tokens / max_model_len
# (kv_cache_utils.py 0.8.0:539, 0.8.5:636, 0.9.0:639), a sliding group's request at its whole length;
# get_max_concurrency_for_kv_cache_config's blocks over a request's blocks from 0.9.1 (0.9.1:626-641)
TOKENS_OVER_LENGTH = UNIFIED_ALWAYS
CHUNKED_SPEC_SINCE = (0, 10)  # ChunkedLocalAttentionSpec; before it a chunked layer is full attention
EAGLE_CHUNKED_OFF_SINCE = (0, 10)  # chunked local attention + an EAGLE drafter turn the manager off
CHUNKED_OFF = ((0, 10, 1), (0, 14))  # [from, before): chunked local attention turns it off by default
EAGLE_METHODS = ("eagle", "eagle3", "mtp", "deepseek_mtp")  # use_eagle (config.py 0.10.0:3045-3046); "mtp" later
WINDOWED = ("sliding", "chunked")
ANY_KINDS_SINCE = "0.14.0"  # the coordinator takes any number of kinds
ONE_OTHER_KIND = ((0, 9, 1), parse_version(ANY_KINDS_SINCE))  # [from, before): one kind beside full (docstring)
NO_PREFIX_COORDINATOR_SINCE = (0, 10)  # KVCacheCoordinatorNoPrefixCache where prefix caching is off
FULL_KINDS = ("full", "mla", "indexer")  # FullAttentionSpec and its subclass MLAAttentionSpec
COORDINATOR_WORDS = {"full": "HybridKVCacheCoordinator assumes exactly one type of full attention groups now.",
                     "other": "HybridKVCacheCoordinator assumes exactly one other type of groups now."}

DISABLED_WARNING = ("Hybrid KV cache manager is disabled for this hybrid model, This means we do not enable any "
                    "optimizations for saving KV cache memory (e.g., dropping the KV cache outside the sliding "
                    "window). The compute of layers like sliding window is still saved.")
CHUNKED_WARNING = ("There is a latency regression when using chunked local attention with the hybrid KV cache "
                   "manager. Disabling it, by default. To enable it, set the environment "
                   "VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE=1.")


def runner_specs(specs: list, version: str) -> list:
    """The layer specs V1's model runner of `version` gives (docstring): a sliding layer full attention in
    0.8.0-0.8.2, a chunked one before 0.10.0."""
    def as_runner(s):
        if s is None or s.kind not in WINDOWED:
            return s
        if s.kind == "chunked" and parse_version(version) < CHUNKED_SPEC_SINCE or in_span(version, SLIDING_AS_FULL):
            return _full(s)
        return s
    return [as_runner(s) for s in specs]


def manager_off(specs: list, version: str, method: str = "") -> tuple:
    """(off, config lines): whether `version` plans `specs` (runner_specs) without the hybrid manager, and what
    VllmConfig logs on turning it off; `method`: --speculative-config's method ('' for none)."""
    if parse_version(version) < UNIFIED_ALWAYS[1]:
        return True, ()
    if not any(s is not None and s.kind == "chunked" for s in specs):
        return False, ()
    if method in EAGLE_METHODS and parse_version(version) >= EAGLE_CHUNKED_OFF_SINCE:
        return True, ()
    if in_span(version, CHUNKED_OFF):
        return True, (CHUNKED_WARNING,)
    return False, ()


def unified(specs: list, version: str) -> tuple:
    """(specs, lines) after unify_hybrid_kv_cache_specs: sliding (and, from 0.10.0, chunked) layers full attention
    where a full layer is present; its warning from 0.9.1 wherever the kinds differ."""
    kinds = {s.uniform_type for s in specs if s is not None}
    if len(kinds) < 2:
        return specs, ()
    lines = (DISABLED_WARNING,) if parse_version(version) >= UNIFIED_ALWAYS[1] else ()
    if not any(s is not None and s.kind not in WINDOWED + ("mamba",) for s in specs):
        return specs, lines  # no full layer: nothing unified (docstring: not modelled)
    return [_full(s) if s is not None and s.kind in WINDOWED else s for s in specs], lines


def per_layer_groups(specs: list) -> tuple:
    """A group a layer: check_enough_kv_cache_memory's sum over the layers' own specs (kv_cache_utils.py
    0.8.5:527-529), read before unify_hybrid_kv_cache_specs."""
    return tuple(Group(s, (i,), (s.page_bytes,)) for i, s in enumerate(specs) if s is not None)


def _full(s):
    return replace(s, kind="full", window=0)


# How the start-up check (and the auto-fit and the refusal's estimate, which price alike) counts one max_model_len
# request where the layers' kinds differ, by release (first release -> rule, newest first):
# - "groups" (0.19.0 on): each group's blocks summed, at the pool's block (group size x page), the padding layers'
#   share included (_max_memory_usage_bytes_from_groups, kv_cache_utils.py 0.19.0:1332-1367, 0.20.0:1723-1783,
#   0.27.0:1890-1950, 0.28.0:1878-1938; 0.29.0:2041-2070 sums the same blocks at _pool_bytes_per_block, and holds the
#   null block back, Behaviour.null_block_in_check; 0.32.0:2337-2366; 0.34.0 kv_cache_planning.py:1297-1330).
# - "first_group" (0.14.0-0.18.1): group size x page x the FIRST group's blocks only ("any_spec =
#   kv_cache_groups[0]", 0.14.0:1318-1351, 0.16.0:1320-1353, 0.18.0 / 0.18.1:1329-1362), for the check, the
#   refusal's estimate (_estimate_max_model_len_from_groups 0.14.0:1354-1386) and the auto-fit (0.14.0:1389-1449).
#   0.14.0-0.16 read it on the global groups against the smallest worker, 0.17.0 on each worker's projected groups
#   (CHECK_SCOPE). The first group is the kind of the model's first cache
#   layer (same_type_layers in layer order, 0.14.0:1017-1019): a window in Gemma 3 and gpt-oss, whose full layers
#   then go unpriced.
# - "layers" (to 0.13): every layer's own spec summed (max_memory_usage_bytes 0.9.1:484-490, 0.13.0:609-615), read by
#   check_enough_kv_cache_memory before the layers are grouped or padded (get_kv_cache_config 0.9.1:940,
#   get_kv_cache_configs 0.10.1:1095, 0.11.0:1240-1244, 0.13.0:1340).
CHECK_PRICING = (((0, 19), "groups"), ((0, 14), "first_group"), ((0, 0), "layers"))


def check_pricing(version: str) -> str:
    """CHECK_PRICING's rule for `version`."""
    return release_rule(CHECK_PRICING, version)


# Whose share of the layers the start-up check (and the refusal's estimate and the auto-fit) prices under pipeline
# parallelism, by release (first release -> rule, newest first):
# - "worker" (0.17.0 on): each worker its own layers, against its own memory (_project_kv_cache_groups_to_worker,
#   get_kv_cache_configs 0.17.0:1558-1577, 0.18.1:1560-1579; _auto_fit_max_model_len 0.17.0:1429-1436).
# - "whole_model" (0.14.0-0.16.x): the whole model's groups (group size x page: the whole model's group size, one
#   group holding every layer of a single-kind model) against the smallest worker's memory, once
#   (get_kv_cache_configs 0.14.0:1503-1523, 0.15.1 / 0.16.0:1514-1525; _auto_fit_max_model_len 0.14.0:1420).
# - "worker" (to 0.13): check_enough_kv_cache_memory over each worker's own layers (get_kv_cache_configs
#   0.11.0:1240-1244, 0.13.0:1337-1342; get_kv_cache_config per worker 0.9.1-0.10.2, v1/engine/core.py 0.10.1:187-191).
CHECK_SCOPE = (((0, 17), "worker"), ((0, 14), "whole_model"), ((0, 0), "worker"))


def check_scope(version: str) -> str:
    """CHECK_SCOPE's rule for `version`."""
    return release_rule(CHECK_SCOPE, version)


def priced_groups(groups: tuple, version: str) -> tuple:
    """The groups whose blocks `version`'s start-up check, its refusal's estimate and its auto-fit count for one
    request (each at the pool's block): the first alone under CHECK_PRICING's "first_group", else all. The "layers"
    rule prices the layers' own specs instead (vllm._layer_check) where the kinds are grouped or unified."""
    return tuple(groups[:1]) if check_pricing(version) == "first_group" else tuple(groups)


class Planned(NamedTuple):
    """What `version` makes of a model's layer specs: `grouped` the specs its groups are built of, `checked` those
    the start-up check reads (per_layer_groups), `config_lines` logged by VllmConfig before the memory profile,
    `cache_lines` by get_kv_cache_config after it."""

    grouped: list
    checked: list
    config_lines: tuple
    cache_lines: tuple


def plan_specs(specs: list, version: str, method: str = "") -> Optional[Planned]:
    """How V1 of `version` plans `specs` where the hybrid manager is absent or off, or its runner gives other
    kinds; None where the hybrid manager groups them as they are. `method`: --speculative-config's ('' for none)."""
    given = runner_specs(specs, version)
    off, config_lines = manager_off(given, version, method)
    grouped, cache_lines = unified(given, version) if off else (given, ())
    if grouped == specs and not config_lines and not cache_lines:
        return None
    return Planned(grouped, given, config_lines, cache_lines)


def coordinator_refusal(groups, version: str, prefix_caching: bool, listed: bool = False) -> Optional[Refusal]:
    """vLLM `version`'s AssertionError where HybridKVCacheCoordinator (docstring: ONE_OTHER_KIND) meets `groups` of
    two full-attention specs, or of two other specs (two windows, a window and a Mamba state), or of no full
    attention at all; None where it is not built (one group, prefix caching off from 0.10.0) or they pass. `listed`:
    the config's sliding_window is a list, which only 0.6.5-0.10.0 read (vllm_window_list), so the remedy keeps to
    0.10.0."""
    if len(groups) < 2 or not in_span(version, ONE_OTHER_KIND):
        return None
    if not prefix_caching and parse_version(version) >= NO_PREFIX_COORDINATOR_SINCE:
        return None
    broken = _first_assertion([g.spec for g in groups])
    if broken is None:
        return None
    kinds = sorted({_kind_words(g.spec) for g in groups})
    return Refusal(f"HybridKVCacheCoordinator takes full attention and one other kind of KV cache only: vLLM {version} "
                   f"finds prefix-cache hits for one kind beside full attention, and this model's cache groups are "
                   f"{', '.join(kinds)}. Its engine core stops as it builds the scheduler "
                   f"(v1/core/kv_cache_coordinator.py verify_and_split_kv_cache_groups): AssertionError: "
                   f"{COORDINATOR_WORDS[broken]}", None, configuration=True, field="engine",
                   remedy=_coordinator_remedy(version, listed, "full attention" in kinds),
                   remedy_flags=(("engine", "--engine"),))


def _first_assertion(specs: list) -> Optional[str]:
    """Which of verify_and_split_kv_cache_groups' assertions fails first over the groups' `specs`, in order: a
    second full spec, a second other spec, then no full spec at all; None where none does."""
    full = other = None
    for spec in specs:
        if spec.kind in FULL_KINDS:
            if full is not None and spec != full:
                return "full"
            full = spec
        else:
            if other is not None and spec != other:
                return "other"
            other = spec
    return "full" if full is None else None


def _kind_words(spec) -> str:
    """A group's kind as the refusal names it: "sliding window 4096", "full attention", "Mamba state"."""
    if spec.kind in FULL_KINDS:
        return "full attention"
    if spec.kind == "mamba":
        return "Mamba state"
    return f"{'sliding window' if spec.kind == 'sliding' else 'attention chunk'} {spec.window}"


def _coordinator_remedy(version: str, listed: bool, full: bool) -> str:
    """What gets past the coordinator: prefix caching off from 0.10.0 (no hybrid coordinator built), or 0.14.0 on.
    A sliding_window list is read by 0.10.0 at the latest, so its ways are 0.10.0 with prefix caching off, or, where
    a layer attends in `full`, the releases before 0.9.1 that plan every layer as full attention (unified)."""
    off = "--no-enable-prefix-caching (vLLM then builds KVCacheCoordinatorNoPrefixCache, which checks no kinds)"
    if listed:
        where = "" if version == "0.10.0" else " on --engine vllm==0.10.0, the last release that reads a " \
                                                "sliding_window list,"
        older = ", or on --engine vllm==0.9.0 or older, which plan every layer as full attention" if full else ""
        return f"it gets past this check{where} with {off}{older}"
    if parse_version(version) >= NO_PREFIX_COORDINATOR_SINCE:
        return f"it gets past this check with {off}, or on --engine vllm=={ANY_KINDS_SINCE} or newer"
    return f"it gets past this check on --engine vllm=={ANY_KINDS_SINCE} or newer, or on 0.10.0-0.13.x with {off}"
