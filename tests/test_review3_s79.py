"""Session 79 review 3 of the graphs-off and V0 compilation merges: full_cuda_graph, use_cudagraph's sibling.

vLLM 0.10.1-0.11.0 migrate two deprecated CompilationConfig fields in __post_init__, in this order
(config/compilation.py 0.10.1:442-459, 0.10.2:445-462, 0.11.0:464-481):
    if not self.use_cudagraph:  ... cudagraph_mode given -> ValueError, else cudagraph_mode = NONE
    if self.full_cuda_graph:    ... cudagraph_mode not None -> ValueError("full_cuda_graph and cudagraph_mode are
                                    mutually exclusive ..."), else cudagraph_mode = FULL
full_cuda_graph is `Optional[bool] = False` (0.10.1:292, 0.11.0:291), parsed by pydantic's TypeAdapter.validate_json
(engine/arg_utils.py 0.10.1:189): a lax bool, so the text "false" is False and null is None (falsy).
FULL does not require piecewise compilation (CUDAGraphMode.requires_piecewise_compilation: PIECEWISE,
FULL_AND_PIECEWISE), so VllmConfig keeps it below level 3 (config/__init__.py 0.10.1:3546-3553 sets a default only
where cudagraph_mode is None; the assert at 3637-3643 is for the piecewise modes) and the V1 runner captures graphs
(v1/worker/gpu_model_runner.py 0.10.1:2636: capture_model refuses only NONE). 0.11.1 dropped the field (pydantic
ignores the key: config/compilation.py 0.11.1 has no full_cuda_graph), so there a level below 3 leaves NONE.
"""

from __future__ import annotations

import pytest
from conftest import estimate_plan, one_error_line, run_kvplan

from kvplan.engines import EngineFlags, get_engine

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
H100 = ("--gpu", "H100")


def _flags(engine: str, config: str) -> EngineFlags:
    return get_engine(engine, EngineFlags(compilation_config=config)).flags


def _graph_source(plan: dict) -> str:
    return next(t for t in plan["budget"]["terms"] if t["name"] == "cuda_graphs")["source"]


@pytest.mark.parametrize("engine, mode", [
    ("vllm==0.10.1", "FULL"),  # full_cuda_graph true -> FULL; FULL kept at level 1
    ("vllm==0.10.2", "FULL"),
    ("vllm==0.11.0", "FULL"),
    ("vllm==0.11.1", "NONE"),  # the field is gone: level 1 with no cudagraph_mode is NONE
])
def test_full_cuda_graph_below_level_3(engine, mode):
    flags = _flags(engine, '{"level": 1, "full_cuda_graph": true}')
    assert flags.cudagraph_mode == mode
    assert flags.graphs_off is (mode == "NONE")


def test_full_cuda_graph_below_level_3_keeps_graphs_in_the_graph_term():
    plan = estimate_plan(LLAMA, *H100, "--engine", "vllm==0.10.1", "--max-model-len", "8192",
                         "--compilation-config", '{"level": 1, "full_cuda_graph": true}')
    assert _graph_source(plan) == "0: graphs captured after the cache was sized"


@pytest.mark.parametrize("engine", ["vllm==0.10.1", "vllm==0.11.0"])
def test_full_cuda_graph_beside_cudagraph_mode_refused(engine):
    r = run_kvplan("estimate", LLAMA, *H100, "--engine", engine, "--max-model-len", "8192",
                   "--compilation-config", '{"full_cuda_graph": true, "cudagraph_mode": "PIECEWISE"}')
    line = one_error_line(r)
    assert "--compilation-config" in line and "full_cuda_graph and cudagraph_mode are mutually exclusive" in line


@pytest.mark.parametrize("engine, config, off", [
    ("vllm==0.10.2", '{"use_cudagraph": false, "full_cuda_graph": "false"}', True),  # lax bool: no clash
    ("vllm==0.10.1", '{"use_cudagraph": false, "full_cuda_graph": null}', True),  # Optional[bool]: None, falsy
    ("vllm==0.10.1", '{"full_cuda_graph": null, "cudagraph_mode": "PIECEWISE"}', False),
    ("vllm==0.11.1", '{"full_cuda_graph": true, "cudagraph_mode": "PIECEWISE"}', False),  # dropped key
])
def test_full_cuda_graph_falsy_values_clash_with_nothing(engine, config, off):
    assert _flags(engine, config).graphs_off is off


def test_full_cuda_graph_not_a_bool_refused():
    r = run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.10.1", "--max-model-len", "8192",
                   "--compilation-config", '{"full_cuda_graph": "maybe"}')
    assert "full_cuda_graph takes true or false" in one_error_line(r)
