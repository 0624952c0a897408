"""V1's start-up assert on a piecewise cudagraph_mode below compilation level 3 (0.10.1-0.11.x), said only where the
plan runs V1.

VllmConfig.__post_init__ asserts `level == CompilationLevel.PIECEWISE` ("Compilation level should be
CompilationLevel.PIECEWISE when cudagraph_mode piecewise cudagraphs is used") where cudagraph_mode
requires_piecewise_compilation (PIECEWISE, FULL_AND_PIECEWISE): config/__init__.py 0.10.1:3637-3643, 0.10.2:3512-3517,
0.11.0:472-478, under `if envs.VLLM_USE_V1 and current_platform.is_cuda_alike():` (0.10.1:3628, 0.10.2:3502,
0.11.0:463); config/vllm.py 0.11.1:674-679 says "Compilation mode should be CompilationMode.VLLM_COMPILE" (V0 gone).
EngineArgs.create_engine_config sets VLLM_USE_V1 from its oracle before it builds VllmConfig (engine/arg_utils.py
0.10.1:1064-1074, 0.11.0:1149-1159), so a deployment that falls back to V0 (vllm_v1_oracle.v0_fallback: rules era
"v0") starts, and its worker captures its own decode graphs (vllm_graphs_off.py). --enforce-eager sets
cudagraph_mode NONE before the assert (0.10.1:3563-3566): vllm_compilation.with_compilation leaves no pair then.
vllm_compilation.resolve finds the pair (EngineFlags.piecewise_below_level_3); the plan, which knows its engine, asks
here (vllm_engine: the plan's settings, and each remedy a fix search tries).
"""

from __future__ import annotations

from ..errors import FieldError
from .vllm_versions import parse_version

MODE_WORDS_SINCE = (0, 11, 1)  # the assert names CompilationMode.VLLM_COMPILE (config/vllm.py 0.11.1:674-679)


def v1_level_refusal(flags, version: str, v1: bool) -> None:
    """FieldError where vLLM `version`'s V1 (`v1`: the plan runs V1) stops at start-up on `flags`' piecewise
    cudagraph_mode given below compilation level 3 (EngineFlags.piecewise_below_level_3; module docstring). Said of
    the flag that gave it: -O where -O carried the config (before 0.12 the two are one argument)."""
    mode = flags.piecewise_below_level_3
    if mode is None or not v1:
        return
    said = ("Compilation mode should be CompilationMode.VLLM_COMPILE" if parse_version(version) >= MODE_WORDS_SINCE
            else "Compilation level should be CompilationLevel.PIECEWISE")
    field = "optimization_level" if flags.compilation_config is None else "compilation_config"
    raise FieldError(field, f"cudagraph_mode {mode} needs compilation level 3 on vLLM {version}'s V1 engine, which "
                            f"runs this plan and stops at start-up below it (AssertionError: \"{said} when "
                            f"cudagraph_mode piecewise cudagraphs is used\"); give level 3, or cudagraph_mode FULL "
                            f"or NONE.")
