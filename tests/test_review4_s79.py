"""Review of session 79's full-mode downgrade refusal (vllm_level_assert.downgrade_refusal) and sweep naming.

1. vLLM's downgrade reads `model_config.pooler_config is not None` (config/vllm.py 0.11.1:485, 0.13.0:698,
   0.34.0:1867), not the runner: ModelConfig fills pooler_config for the pooling runner (config/model.py 0.11.1:634-659,
   0.13.0:516-530, 0.34.0:796-798) and otherwise keeps the user's --pooler-config untouched (no line sets it None), so a
   generating model given --pooler-config has its FULL mode turned PIECEWISE too, and below VLLM_COMPILE stops on the
   assert (0.11.1:674-679, 0.13.0:866-871, 0.34.0:2077-2088).
2. The refusal names -dcp and --enforce-eager: as the caller spells them (typed on the command line, keywords in the
   API), as every other field a message names.
"""

from __future__ import annotations

import pytest
from conftest import estimate_plan, one_error_line, run_kvplan

LLAMA = ("meta-llama/Llama-3.1-8B-Instruct", "--gpu", "H100", "-c", "8192")
POOLER = ("--pooler-config", '{"pooling_type":"LAST"}')  # LAST: chunked prefill stays on in every release
FULL_AT_MODE_1 = ("--compilation-config", '{"mode":1,"cudagraph_mode":"FULL"}')
DSV2_LITE = ("deepseek-ai/DeepSeek-V2-Lite", "--gpu", "H100", "-tp", "2", "-c", "8192")
ASSERTED = "Compilation mode should be CompilationMode.VLLM_COMPILE"


@pytest.mark.parametrize("engine", ["vllm==0.11.1", "vllm==0.13.0", "vllm==0.29.0"])
def test_generate_runner_with_pooler_config_full_below_vllm_compile_stops(engine):
    # pooler_config is not None (the user's) -> PIECEWISE (0.11.1:485-490, 0.13.0:696-704, 0.29.0:1533-1541) at mode 1
    # -> the assert (0.11.1:674-679, 0.13.0:866-871, 0.29.0:1714); from 0.30 the compile-mode rule turns the PIECEWISE
    # NONE before it (0.34.0:1995) and vLLM starts without graphs (test_compile_order_s80.py)
    line = one_error_line(run_kvplan("estimate", *LLAMA, *POOLER, *FULL_AT_MODE_1, "--engine", engine))
    assert ASSERTED in line and "--pooler-config" in line and line.endswith(".")


@pytest.mark.parametrize("args", [
    (*POOLER, "--enforce-eager"),  # NONE after the downgrade, before the assert (0.13.0:718-723)
    (),  # no pooler_config: FULL kept at mode 1, no piecewise mode to assert on
])
def test_generate_runner_full_below_vllm_compile_starts(args):
    estimate_plan(*LLAMA, *args, *FULL_AT_MODE_1, "--engine", "vllm==0.13.0")


def test_dcp_refusal_names_the_flags_as_typed():
    r = run_kvplan("estimate", *DSV2_LITE, "--decode-context-parallel-size", "2", "--engine", "vllm==0.11.1",
                   *FULL_AT_MODE_1)
    line = one_error_line(r)
    assert "--decode-context-parallel-size 2" in line and "-dcp" not in line and "--enforce-eager" in line


def test_api_dcp_refusal_names_its_keywords():
    from kvplan import api
    from kvplan.errors import FieldError

    with pytest.raises(FieldError) as caught:
        api.estimate("deepseek-ai/DeepSeek-V2-Lite", gpu="H100", tensor_parallel_size=2, max_model_len=8192,
                     engine="vllm==0.11.1", decode_context_parallel_size=2,
                     compilation_config='{"mode":1,"cudagraph_mode":"FULL"}')
    said = str(caught.value)
    assert ASSERTED in said and "decode_context_parallel_size 2" in said and "enforce_eager" in said
    assert "-dcp" not in said and "--enforce-eager" not in said
