"""`kvplan verify` with vLLM's --compilation-config / -cc and -O / --optimization-level (commands/verify.py
verify_flags, resolved for the release judged by engines/vllm_compilation.with_compilation through get_engine;
gpu/rank.py graph_flags reads the resolved flags).

Without a GPU: the plan verify allocates against estimate's plan for the same flags, what decides the capture
(graphs_off: cudagraph_mode NONE, -O0, as --enforce-eager), the record where none is captured, bad values refused
before the GPU, and good ones reaching the usual one-line GPU refusal."""

import pytest

from conftest import estimate_plan, one_error_line, run_kvplan
from test_verify_engine_flags import GRAPH_TERM, LLAMA_8B, no_gpu, options, verify_plan  # noqa: F401 (fixtures)
from kvplan import api
from kvplan.errors import FieldError

SMALL = "meta-llama/Llama-3.2-1B-Instruct"
NONE_JSON = '{"cudagraph_mode": "NONE"}'


def _figures(plan) -> tuple:
    graphs = next(t for t in plan.budget.terms if t.name == "cuda_graphs")
    return plan.max_concurrency, plan.kv_blocks, plan.kv_budget_bytes_per_gpu, graphs.bytes, graphs.source


def _estimated(*args) -> tuple:
    plan = estimate_plan(LLAMA_8B, "-c", "8192", "--gpu", "H100", *args)
    graphs = next(t for t in plan["budget"]["terms"] if t["name"] == "cuda_graphs")
    return (plan["max_concurrency"], plan["kv_blocks"], plan["kv_budget_bytes_per_gpu"], graphs["bytes"],
            graphs["source"])


@pytest.mark.parametrize("keywords, args", [
    ({"compilation_config": NONE_JSON}, ("-cc", NONE_JSON)),
    ({"optimization_level": "0"}, ("-O0",)),
    ({"optimization_level": 1}, ("-O", "1")),  # 0.12+: O1 is PIECEWISE (config/vllm.py 0.32.0:247-336)
    ({"compilation_config": {"cudagraph_mode": "FULL_DECODE_ONLY"}}, ("-cc", '{"cudagraph_mode":"FULL_DECODE_ONLY"}')),
    ({"compilation_config": '{"max_cudagraph_capture_size": 8}'}, ("-cc", '{"max_cudagraph_capture_size": 8}')),
])
def test_verify_plans_as_estimate(options, keywords, args):
    """The plan verify allocates (its budget, blocks, concurrency, graph term and what it counts) is estimate's for
    the same compilation flags."""
    spec, opts = options(LLAMA_8B, context=8192, **keywords)
    plan, _ = verify_plan(spec, opts)
    assert _figures(plan) == _estimated(*args)


@pytest.mark.parametrize("keywords", [{"compilation_config": NONE_JSON}, {"optimization_level": 0},
                                      {"compilation_config": '{"cudagraph_mode": "none"}'}])
def test_none_mode_is_enforce_eager(options, keywords):
    """cudagraph_mode NONE (given, -O0's: OPTIMIZATION_LEVEL_00, config/vllm.py 0.32.0:247-336; read by name in any
    case, compilation.py 0.32.0:873-878): no graph term (the 0.705 GiB, 756,987,985 bytes, goes: the budget is that
    much larger than the default's), no decode graph captured, decode timed eagerly, the record --enforce-eager
    leaves but for the cause it names."""
    from kvplan.gpu.rank import graph_flags, no_graphs

    spec, opts = options(LLAMA_8B, context=8192, **keywords)
    plan, _ = verify_plan(spec, opts)
    default, _ = verify_plan(*options(LLAMA_8B, context=8192))
    assert plan.budget.cuda_graph_bytes == 0 and default.budget.cuda_graph_bytes == GRAPH_TERM
    assert plan.kv_budget_bytes_per_gpu - default.kv_budget_bytes_per_gpu == GRAPH_TERM
    flags = graph_flags(spec, opts)
    assert flags.cudagraph_mode == "NONE" and flags.graphs_off and not flags.enforce_eager
    graphs = no_graphs(flags)
    eager = no_graphs(graph_flags(*options(LLAMA_8B, context=8192, enforce_eager=True)))
    assert graphs["sizes"] == [] and graphs["bytes"] == 0 and graphs["eager"] is True
    assert graphs["why"].startswith("cudagraph_mode NONE (--compilation-config, -O0): vLLM captures no CUDA graph")
    assert {k: v for k, v in graphs.items() if k != "why"} == {k: v for k, v in eager.items() if k != "why"}


@pytest.mark.parametrize("mode", ["PIECEWISE", "FULL", "FULL_DECODE_ONLY", "FULL_AND_PIECEWISE"])
def test_other_modes_capture_as_the_default(options, mode):
    """The graph modes but NONE change the plan's graph term only: verify captures its whole decode step at the same
    sizes (terms.capture_sizes; the default's up to 512, config/vllm.py 0.32.0:2466-2485: 1, 2, 4, every 8 from 8 to
    248 (31) and every 16 from 256 to 512 (17), all within max_num_seqs 1,024: 3 + 31 + 17 = 51), timed in a
    graph."""
    from kvplan.gpu.rank import graph_flags
    from kvplan.verify.terms import capture_sizes

    spec, opts = options(LLAMA_8B, context=8192, compilation_config={"cudagraph_mode": mode})
    flags = graph_flags(spec, opts)
    assert not flags.graphs_off
    _, resolved = verify_plan(spec, opts)
    sizes = capture_sizes("0.32.0", resolved.max_num_seqs, resolved.max_num_batched_tokens, False,
                          spec.architecture or "", flags.max_cudagraph_capture_size, flags.cudagraph_capture_sizes)
    assert len(sizes) == 51 and sizes[:4] == [1, 2, 4, 8] and sizes[-2:] == [496, 512]


def test_json_capture_size_is_captured(options):
    """max_cudagraph_capture_size in the JSON means what the flag means (vllm_compilation.py): 1, 2, 4, 8 captured
    (config/vllm.py 0.32.0:2466-2485), as --max-cudagraph-capture-size 8 captures."""
    from kvplan.gpu.rank import graph_flags
    from kvplan.verify.terms import capture_sizes

    spec, opts = options(LLAMA_8B, context=8192, compilation_config='{"max_cudagraph_capture_size": 8}')
    flags = graph_flags(spec, opts)
    assert opts.flags.max_cudagraph_capture_size is None and flags.max_cudagraph_capture_size == 8
    _, resolved = verify_plan(spec, opts)
    assert capture_sizes("0.32.0", resolved.max_num_seqs, resolved.max_num_batched_tokens, False,
                         spec.architecture or "", flags.max_cudagraph_capture_size, None) == [1, 2, 4, 8]


def test_result_records_the_flags_as_given(options):
    """The result's engine_flags hold the compilation config as given (canonical JSON) and -O as typed; the table's
    options line spells them as vLLM's command line."""
    from kvplan.render.verify import _engine_flags

    _, opts = options(SMALL, context=2048, compilation_config={"cudagraph_mode": "NONE"}, optimization_level="0")
    given = opts.given_flags()
    assert given == {"compilation_config": NONE_JSON, "optimization_level": "0"}
    assert _engine_flags(given) == f", --compilation-config {NONE_JSON}, --optimization-level 0"


BAD = [
    (("-O", "5"), "-O '5' is not a level: vLLM 0.32.0 reads -O as --optimization-level, 0, 1, 2 or 3"),
    (("-cc", '{"cudagraph_mode": "EAGER"}'), "-cc cudagraph_mode 'EAGER' is not one of vLLM's: NONE, PIECEWISE"),
    (("--compilation-config", "{"), "--compilation-config takes a JSON object"),
    (("--compilation-config", NONE_JSON, "--engine", "vllm==0.10.0"), "cudagraph_mode is not a field of vLLM 0.10.0"),
    (("-cc", NONE_JSON, "--engine", "vllm==0.11.0"), "-cc needs vLLM 0.12 or later"),
    (("-O0", "--engine", "vllm==0.6.4"), "-O is not a flag of vLLM 0.6.4"),
    (("-cc", '{"max_cudagraph_capture_size": 8}', "--max-cudagraph-capture-size", "8"), "mutually exclusive"),
]


@pytest.mark.parametrize("args, said", BAD)
def test_bad_value_one_line_before_the_gpu(no_gpu, args, said):
    r = run_kvplan("verify", SMALL, "-c", "2048", *args)
    line = one_error_line(r)
    assert r.returncode == 2 and said in line and "needs a CUDA GPU" not in line


@pytest.mark.parametrize("args", [("-cc", NONE_JSON), ("-O0",), ("--optimization-level", "3"),
                                  ("--compilation-config.cudagraph_mode", "PIECEWISE"),
                                  ("-O", '{"level": 0}', "--engine", "vllm==0.11.0")])
def test_good_values_reach_the_gpu_check(no_gpu, args):
    r = run_kvplan("verify", SMALL, "-c", "2048", *args)
    assert r.returncode == 2 and one_error_line(r) == "kvplan: error: kvplan verify needs a CUDA GPU (stand-in)."


def test_api_keywords(no_gpu):
    """api.verify takes them as keywords, a bad one a FieldError naming it, before the GPU."""
    with pytest.raises(FieldError) as raised:
        api.verify(SMALL, max_model_len=2048, compilation_config={"cudagraph_mode": "EAGER"})
    assert raised.value.field == "compilation_config"
    with pytest.raises(FieldError) as raised:
        api.verify(SMALL, max_model_len=2048, optimization_level=4)
    assert raised.value.field == "optimization_level"
    with pytest.raises(Exception, match="needs a CUDA GPU"):
        api.verify(SMALL, max_model_len=2048, optimization_level=0)
