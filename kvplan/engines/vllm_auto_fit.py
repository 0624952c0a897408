"""vLLM's --max-model-len auto (or -1): the release that first takes it, and its refusal where no length fits.

- First in 0.14.0: --max-model-len's type is human_readable_int_or_auto, which reads `auto` and `-1` as -1
  (engine/arg_utils.py 0.14.0:300-302, :2121-2137), ModelConfig takes max_model_len >= -1 (config/model.py
  0.14.0:175) and get_kv_cache_configs fits the length when original_max_model_len is -1 (v1/core/kv_cache_utils.py
  0.14.0:1505-1509). 0.13.0's type is human_readable_int, which stops on `auto` (arg_utils.py 0.13.0:300-307,
  :2026-2068: int('auto')), and its ModelConfig refuses -1 (Field(gt=0), config/model.py 0.13.0:167); older
  releases read -1 as a length (config/model.py 0.11.0:160 SkipValidation), with no auto-fit behind it.
- Where not one token fits, the auto-fit raises before the one-request check would (kv_cache_utils.py
  0.14.0:1425-1429, 0.32.0:2453-2457 ahead of _check_enough_kv_cache_memory :2638-2647): "Cannot auto-fit
  max_model_len: ..." with its own advice up to 0.33; 0.34 gives the memory hint of its other checks, or after
  warmup the graphs' (v1/core/kv_cache_planning.py 0.34.0:1427-1439).
The length itself is the one-request check's estimate (vllm.estimate_max_model_len), re-planned until one starts:
commands/estimate.py auto_fitted, which estimate and check both use.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from ..errors import FieldError
from .vllm_versions import parse_version

AUTO_FIT_SINCE = (0, 14)
NO_TOKEN = "Cannot auto-fit max_model_len: not enough GPU memory available to serve even a single token."
ADVICE = "Try increasing `gpu_memory_utilization`."  # 0.14.0-0.33.0
# 0.34.0's advice where the fit on the memory measured after warmup finds no token (kv_cache_planning.py:1428-1433)
AFTER_WARMUP = ("CUDA graph capture and warmup left no memory for the KV cache. Increase `gpu_memory_utilization`, "
                "reduce the memory CUDA graphs take (fewer or smaller capture sizes in the compilation config), or "
                "use more GPUs.")
# 0.34's hint without the extensible KV cache (kv_cache_planning.py 0.34.0:92-96)
PLAIN_HINT = ("Try increasing `gpu_memory_utilization` when initializing the engine (this flag also controls CPU "
              "memory reservation on the CPU backend, despite its name).")
# how 0.34's memory hint reads when it was given for the cache measured after warmup (vllm.more_memory_hint)
WARMUP_HINT = "CUDA graphs and warmup"


def refuse_auto_fit(version: Optional[str], field: str = "context") -> None:
    """FieldError on `field` where the release `version` has no auto-fit; None (--engine none, ideal paging) has no
    engine start-up to fit a length in."""
    if version is None:
        raise FieldError(field, "takes auto or -1 (vLLM's auto-fit: the longest length that fits) only with vLLM: "
                                "engine none plans an ideal paged pool, with no start-up to fit a length in; give a "
                                "fixed length.", names=("engine",))
    if parse_version(version) >= AUTO_FIT_SINCE:
        return
    raise FieldError(field, f"takes auto or -1 (vLLM's auto-fit: the longest length that fits) from vLLM 0.14.0, "
                            f"the first release with auto-fit (vllm=={version}'s parser refuses auto, and -1 is no "
                            f"auto-fit there); give a fixed length or pick a later release.")


def no_fit_refusal(plan):
    """`plan` (fitted by auto_fitted) with vLLM's auto-fit refusal in place of the one-request check's where not one
    token fits (the check's estimate 0); `plan` itself otherwise."""
    figures = plan.engine
    refusal = getattr(figures, "refusal", None)
    if refusal is None or refusal.configuration or refusal.allocation_fails or refusal.estimated_max_model_len != 0:
        return plan
    if getattr(figures, "core", "v1") == "v0":  # V0 has no auto-fit (refuse_auto_fit keeps it out)
        return plan
    reason = f"{NO_TOKEN} {_advice(figures.version, refusal.hint)}"
    return replace(plan, engine=replace(figures, refusal=replace(refusal, reason=reason, needed_bytes=0)))


def _advice(version: str, hint: str) -> str:
    if parse_version(version) < (0, 34):
        return ADVICE
    return AFTER_WARMUP if WARMUP_HINT in hint else hint or PLAIN_HINT
