"""The cache dtype vLLM builds a drafter's attention layers with (--speculative-config's kv_cache_dtype, and
GlmMoeDsaForCausalLM's hook on SM10x): the rules and their sources are vllm_speculative.py's module docstring. Set on
the drafter's layers as their own (model/kinds.py FullAttention.cache, auto_cache), which every byte count reads."""

from __future__ import annotations

from dataclasses import replace

from .vllm_versions import PINNED

# GlmMoeDsaForCausalLM's hook keeps a non-MTP drafter's cache at `auto` where it turns the target's into fp8_e4m3
# on SM10x (vllm_sparse.SM10X_AUTO), in these releases: [first, last) (models/config.py 0.32.0:56-64, 0.33.0:104-110;
# gone from 0.34.0:163-181)
SM10X_DRAFT_AUTO = ((0, 32), (0, 34))


def drafter_caches(spec, capability=(), version: str = PINNED):
    """`spec` with its drafter's cache layers keeping the dtype vLLM `version` builds them with on a GPU of
    `capability` (the module docstring): the speculative config's kv_cache_dtype (`auto`: the model dtype) whatever
    the target's, or under the target's `auto` the model dtype where GlmMoeDsaForCausalLM's hook says so
    (SM10X_DRAFT_AUTO); else the target's (the layers' own fields cleared). The drafter's layers are the last of
    spec.layers (with_drafter appends them)."""
    from ..model.kinds import FullAttention, MLALatent
    from ..model.precision import resolve_kv_dtype

    drafter = getattr(spec, "draft", None)
    if drafter is None or not drafter.layers:
        return spec
    asked = drafter.config.kv_cache_dtype
    own = resolve_kv_dtype(asked, spec.dtype) if asked is not None else None
    auto = resolve_kv_dtype("auto", spec.dtype) if asked is None and _keeps_auto(spec, drafter.config, capability,
                                                                                   version) else None
    n = len(drafter.layers)
    tail = tuple(replace(layer, cache=own, auto_cache=auto) if isinstance(layer, (FullAttention, MLALatent)) else layer
                 for layer in spec.layers[-n:])
    if tail == spec.layers[-n:]:
        return spec
    return replace(spec, layers=spec.layers[:-n] + tail, draft=replace(drafter, layers=tail))


def _keeps_auto(spec, config, capability, version: str) -> bool:
    """Whether GlmMoeDsaForCausalLM's hook sets the drafter's kv_cache_dtype to `auto` (SM10X_DRAFT_AUTO)."""
    from .vllm_registry import served_architecture
    from .vllm_sparse import BLACKWELL, SM10X_AUTO, is_rocm_platform, major_of
    from .vllm_versions import in_span, release_rule

    if config.method == "mtp" or not in_span(version, SM10X_DRAFT_AUTO):
        return False
    if is_rocm_platform(capability) or major_of(capability) != BLACKWELL:
        return False
    return served_architecture(spec, version) in release_rule(SM10X_AUTO, version, {})
