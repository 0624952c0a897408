"""V1's start-up assert on a piecewise cudagraph_mode below compilation level 3 (0.10.1-0.11.x), said only where the
plan runs V1; and the same assert past vLLM's downgrade of a full mode to PIECEWISE (-dcp, pooling: downgrade_refusal).

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
from .vllm_versions import in_span, parse_version

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


# The same assert reached from a full mode: VllmConfig.__post_init__ turns a mode with full graphs PIECEWISE for
# -dcp > 1, else a pooling model, else an encoder-decoder (config/vllm.py 0.11.1:474-496, 0.11.2 the same file),
# then asserts VLLM_COMPILE (0.11.1:674-679); --enforce-eager's NONE comes between (0.11.1:499-501). 0.12 turns
# every mode NONE without VLLM_COMPILE before the downgrade (0.12.0:647-658 before 673-703): nothing left. From 0.13
# the NONE rule takes the piecewise modes alone (0.13.0:670-680) and the downgrade is a pooling model's (an
# encoder-decoder's is FULL_DECODE_ONLY): 0.13.0:696-704 then 866-871, 0.20.0:1036-1046 then 1209-1214, 0.34.0:
# 1864-1873 then 2077-2088 (breakable graphs pass the assert: a plan that has them is given no full_below_compile,
# vllm_breakable.graph_view). From 0.30 the compile-mode rule runs again between the two (0.30.0:1728-1736 then
# :1844, 0.32.0:1877-1885 then :2007, 0.34.0:1863-1873 then :1995), turning the PIECEWISE left NONE: vLLM starts
# without graphs (vllm_full_downgrade.py), so the refusal ends with 0.29. kvplan refuses encoder-decoder models
# (model/unmodelled.py), so
# -dcp and pooling remain. "Pooling" is `model_config.pooler_config is not None` (0.11.1:485, 0.13.0:698,
# 0.34.0:1867): the pooling runner fills one (config/model.py 0.11.1:634-659, 0.34.0:796-798), the generate runner
# keeps the user's --pooler-config as given (nothing sets it None), so a generating model given one downgrades too.
DCP_DOWNGRADE = ((0, 11, 1), (0, 12))  # [from, before)
POOLING_DOWNGRADE = ((0, 11, 1), (0, 12))  # and again in POOLING_DOWNGRADE_AGAIN
POOLING_DOWNGRADE_AGAIN = ((0, 13), (0, 30))


def downgrade_refusal(flags, version: str, pooling: bool, pooler_config: bool = False) -> None:
    """FieldError where vLLM `version` turns `flags`' full cudagraph_mode kept below VLLM_COMPILE
    (EngineFlags.full_below_compile) PIECEWISE, for -dcp > 1 or a pooler config (`pooling`: the plan's runner is the
    pooling one; `pooler_config`: --pooler-config given, which the generate runner keeps), and so stops at start-up
    on its assert (the comment above). The other inputs it names are written as keys, spelled by the caller."""
    mode = flags.full_below_compile
    if mode is None:
        return
    pooled = pooling or pooler_config
    if (flags.dcp or 1) > 1 and in_span(version, DCP_DOWNGRADE):
        why = (f"dcp {flags.dcp} (\"Decode context parallel (DCP) is enabled, which is incompatible with full CUDA "
               f"graphs\")")
    elif pooled and (in_span(version, POOLING_DOWNGRADE) or in_span(version, POOLING_DOWNGRADE_AGAIN)):
        whose = "a pooling model" if pooling else "a generating model given pooler_config"
        why = f"{whose} (\"Pooling models do not support full cudagraphs\")"
    else:
        return
    field = "optimization_level" if flags.compilation_config is None else "compilation_config"
    raise FieldError(field, f"cudagraph_mode {mode} below compilation mode VLLM_COMPILE stops vLLM {version} at "
                            f"start-up: it overrides cudagraph_mode to PIECEWISE for {why} and then asserts "
                            f"(AssertionError: \"Compilation mode should be CompilationMode.VLLM_COMPILE when "
                            f"cudagraph_mode piecewise cudagraphs is used\"); give mode 3 (VLLM_COMPILE), "
                            f"cudagraph_mode NONE or enforce_eager.", names=("dcp", "pooler_config", "enforce_eager"))
