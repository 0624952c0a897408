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
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple, Optional

from .vllm_specs import Group
from .vllm_versions import in_span, parse_version

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
