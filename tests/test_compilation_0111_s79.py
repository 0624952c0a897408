"""A full cudagraph mode below VLLM_COMPILE where vLLM downgrades full graphs to PIECEWISE (session 79, cc0111).

VllmConfig.__post_init__ turns a cudagraph_mode with full graphs (has_full_cudagraphs: FULL, FULL_DECODE_ONLY,
FULL_AND_PIECEWISE) into PIECEWISE for some deployments, then, at its end, asserts the compilation mode is
VLLM_COMPILE wherever the mode requires piecewise compilation (AssertionError "Compilation mode should be
CompilationMode.VLLM_COMPILE when cudagraph_mode piecewise cudagraphs is used"). --enforce-eager sets NONE between
the two, so it starts. By release:
- 0.11.1 and 0.11.2 (config/vllm.py identical): no mode rule before the downgrade (only the default, 465-472);
  downgrade for -dcp > 1, else a pooling model (pooler_config), else an encoder-decoder (474-496); enforce-eager NONE
  (499-501); assert (674-679). So FULL / FULL_DECODE_ONLY given with mode 0-2 stops start-up there.
- 0.11.0 (config/__init__.py 0.11.0:358-376): it picks PIECEWISE for those only where no cudagraph_mode is given:
  FULL kept at level 1, and it starts.
- 0.12.0: every mode other than NONE becomes NONE without VLLM_COMPILE first (647-658), before the downgrade
  (673-703, -pcp > 1 added), so nothing is left to assert: it starts, without graphs.
- 0.13.0: the NONE rule takes the piecewise modes only (670-680); the downgrade is a pooling model's alone (-dcp
  and -pcp gone), an encoder-decoder getting FULL_DECODE_ONLY (696-716); assert 866-871. So FULL / FULL_DECODE_ONLY
  below VLLM_COMPILE stops a pooling model; same order and assert through 0.21 (pooling 0.20.0:1036-1046, assert
  0.20.0:1209-1214) and on to 0.34 (pooling 0.34.0:1864-1873, assert 0.34.0:2077-2088).
kvplan refuses encoder-decoder models (model/unmodelled.py), so only -dcp and pooling reach this check.
"""

from __future__ import annotations

import pytest
from conftest import estimate_plan, one_error_line, run_kvplan

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
DSV2_LITE = ("deepseek-ai/DeepSeek-V2-Lite", "--gpu", "H100", "-tp", "2", "-c", "8192")
EMBED = (LLAMA, "--gpu", "H100", "-c", "8192", "--runner", "pooling", "--convert", "embed")
ASSERTED = "Compilation mode should be CompilationMode.VLLM_COMPILE"


@pytest.mark.parametrize("engine", ["vllm==0.11.1", "vllm==0.11.2"])
@pytest.mark.parametrize("config", ['{"level":1,"cudagraph_mode":"FULL"}', '{"mode":1,"cudagraph_mode":"FULL"}',
                                    '{"mode":"NONE","cudagraph_mode":"full_decode_only"}'])
def test_dcp_full_below_vllm_compile_stops_0_11_1(engine, config):
    # 0.11.1:475-483: FULL / FULL_DECODE_ONLY has full graphs, -dcp 2 > 1 -> PIECEWISE; 674-679 then asserts mode 3
    r = run_kvplan("estimate", *DSV2_LITE, "-dcp", "2", "--engine", engine, "--compilation-config", config)
    line = one_error_line(r)
    assert "--compilation-config" in line and ASSERTED in line and "-dcp 2" in line


def test_dcp_full_below_vllm_compile_said_of_dash_o_before_0_12():
    # 0.11.x: -O is the compilation config itself (arg_utils.py 0.11.1:1149), so the refusal names -O as typed
    r = run_kvplan("estimate", *DSV2_LITE, "-dcp", "2", "--engine", "vllm==0.11.1",
                   "-O", '{"level":1,"cudagraph_mode":"FULL"}')
    line = one_error_line(r)
    assert "-O" in line and "--compilation-config" not in line and ASSERTED in line


@pytest.mark.parametrize("engine, args", [
    ("vllm==0.11.1", ("-dcp", "2", "--enforce-eager")),  # 0.11.1:499-501 NONE before the assert
    ("vllm==0.11.1", ("-dcp", "1")),  # no downgrade: FULL kept at mode 1, no piecewise mode to assert on
    ("vllm==0.11.0", ("-dcp", "2")),  # 0.11.0:361-376 downgrades only a mode not given
    ("vllm==0.12.0", ("-dcp", "2")),  # 0.12.0:647-658 NONE first, the downgrade (673-683) sees NONE
    ("vllm==0.13.0", ("-dcp", "2")),  # 0.13.0: no -dcp downgrade; FULL kept at mode 1
])
def test_dcp_full_below_vllm_compile_starts(engine, args):
    config = '{"level":1,"cudagraph_mode":"FULL"}'
    estimate_plan(*DSV2_LITE, *args, "--engine", engine, "--compilation-config", config)


def test_dcp_full_at_vllm_compile_starts_0_11_1():
    # mode 3: the downgrade to PIECEWISE (0.11.1:475-483) passes the assert (674-679)
    estimate_plan(*DSV2_LITE, "-dcp", "2", "--engine", "vllm==0.11.1",
                  "--compilation-config", '{"mode":3,"cudagraph_mode":"FULL"}')


@pytest.mark.parametrize("engine", ["vllm==0.11.1", "vllm==0.13.0", "vllm==0.20.0", "vllm==0.29.0"])
def test_pooling_full_below_vllm_compile_stops(engine):
    # 0.11.1:485-490, 0.13.0:696-704, 0.20.0:1036-1046, 0.29.0:1533-1541: a pooling model's full graphs -> PIECEWISE;
    # assert 0.11.1:674-679, 0.13.0:866-871, 0.20.0:1209-1214, 0.29.0:1714. From 0.30 the compile-mode rule runs again
    # in between (0.34.0:1995, without_piecewise: NONE) and vLLM starts without graphs (test_compile_order_s80.py)
    r = run_kvplan("estimate", *EMBED, "--engine", engine, "--compilation-config", '{"mode":1,"cudagraph_mode":"FULL"}')
    line = one_error_line(r)
    assert "--compilation-config" in line and ASSERTED in line and "pooling" in line


def test_pooling_full_below_optimization_level_0_stops_0_13():
    # 0.13.0: --optimization-level 0 leaves mode NONE (OPTIMIZATION_LEVEL_00); FULL is no piecewise mode, so the NONE
    # rule (670-680) keeps it, the pooling downgrade (696-704) makes it PIECEWISE, the assert (866-871) stops it
    r = run_kvplan("estimate", *EMBED, "--engine", "vllm==0.13.0", "-O", "0",
                   "--compilation-config", '{"cudagraph_mode":"FULL_DECODE_ONLY"}')
    assert ASSERTED in one_error_line(r)


@pytest.mark.parametrize("engine, config", [
    ("vllm==0.12.0", '{"mode":1,"cudagraph_mode":"FULL"}'),  # 0.12.0:647-658 NONE first
    ("vllm==0.11.0", '{"level":1,"cudagraph_mode":"FULL"}'),  # 0.11.0: no downgrade of a given mode
    ("vllm==0.13.0", '{"mode":3,"cudagraph_mode":"FULL"}'),  # VLLM_COMPILE: PIECEWISE passes the assert
])
def test_pooling_full_starts(engine, config):
    estimate_plan(*EMBED, "--engine", engine, "--compilation-config", config)


def test_pooling_full_below_vllm_compile_with_enforce_eager_starts_0_13():
    # 0.13.0:721-726 --enforce-eager sets NONE after the downgrade, before the assert
    estimate_plan(*EMBED, "--engine", "vllm==0.13.0", "--enforce-eager",
                  "--compilation-config", '{"mode":1,"cudagraph_mode":"FULL"}')
