"""Engine models: what a serving engine makes of kvplan's KV arithmetic (its budget, block groups, reserves,
start-up figures, resident sequences). One module per engine; `get_engine(name)` is the only way in.

- "vllm": vLLM pinned at 0.32.0 (engines/vllm.py); "vllm==X.Y[.Z]" selects an older release's behaviour
  (engines/vllm_versions.py).
- "none": kvplan's ideal paged arithmetic, no engine reserves (engines/ideal.py).
"""

from __future__ import annotations

from ..errors import FieldError, quote

ENGINE_NAMES = ("vllm", "none")
VALID = "vllm (vLLM 0.32.0), vllm==<release> (an older vLLM, 0.2 to 0.32), none (ideal paging, no engine)"


def get_engine(name, enforce_eager: bool = False, skip_mm_profiling: bool = False):
    """An engine model by name; FieldError('engine', ...) listing the valid names otherwise. `enforce_eager`:
    vLLM's --enforce-eager (no CUDA graphs, so no graph reserve); `skip_mm_profiling`: vLLM's
    --skip-mm-profiling (no vision-tower pass in the profile run; the ideal engine has no profile run)."""
    from .ideal import IdealEngine
    from .vllm_engine import VllmEngine
    from .vllm_versions import PINNED, behaviour

    text = str(name).strip().lower() if isinstance(name, str) else None
    if text == "none":
        return IdealEngine(enforce_eager)
    if text == "vllm":
        return VllmEngine(PINNED, enforce_eager, skip_mm_profiling)
    if text is not None and text.startswith("vllm=="):
        version = text[len("vllm=="):]
        behaviour(version)  # FieldError for a release outside the table
        return VllmEngine(version, enforce_eager, skip_mm_profiling)
    raise FieldError("engine", f"{quote(name)} is not an engine kvplan models; use one of {VALID}.")
