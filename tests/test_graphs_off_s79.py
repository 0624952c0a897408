"""Whether vLLM captures CUDA graphs for a plan (session 79, graphsoff), each case from the vLLM code it mirrors.

1. use_cudagraph in --compilation-config, by release (engines/vllm_compilation.py use_cudagraph):
   - 0.6.5-0.9.0: a field, but V1 sets it True itself without --enforce-eager (config.py 0.8.5:3884-3893,
     0.9.0:4307-4316) and V0 never reads it: false changes nothing.
   - 0.9.1: the piecewise backend captures no size without it (compilation/cuda_piecewise_backend.py 0.9.1:74-76);
     0.9.2-0.10.0: the V1 runner's use_cuda_graph needs it (v1/worker/gpu_model_runner.py 0.9.2:218-222,
     0.10.0:220-224): false captures no graph.
   - 0.10.1-0.11.0: deprecated; false is cudagraph_mode NONE, and beside a cudagraph_mode given or full_cuda_graph
     true a ValueError (config/compilation.py 0.10.1:442-459, 0.11.0:464-481).
   - 0.11.1-0.12.x: gone, the pydantic dataclass drops the key (no effect); 0.13+: refused (extra="forbid"), so the
     0.20+ graph budget term never sees it.
2. V0 (0.8-0.10.2's fallback): its worker captures the decode graphs unless --enforce-eager (worker/worker.py
   0.9.2:364-365, 0.10.1:386-387; worker/model_runner.py 0.10.1:1369-1382), whatever cudagraph_mode, level or
   use_cudagraph say. A 0.10.1 plan on an A100 with --kv-cache-dtype fp8 runs V0 (its V1 takes fp8 on capability
   9.x / 10.0 only: platforms/cuda.py 0.10.1.1:497-508, vllm_v1_oracle.py); on an H100 the same plan runs V1.
Before 0.20 no budget byte moves either way: the graphs are captured after the cache is sized (gpu_worker.py 0.10.1
determine_available_memory has no graph term; kvplan's vllm_budget.graph_reserve).
"""

from __future__ import annotations

import json

import pytest
from conftest import estimate_plan, one_error_line, run_kvplan

from kvplan.engines import EngineFlags, get_engine

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
H100 = ("--gpu", "H100")
OFF = '{"use_cudagraph": false}'


def _graphs_off(engine: str, config: str) -> bool:
    return get_engine(engine, EngineFlags(compilation_config=config)).flags.graphs_off


def _graph_term(plan: dict) -> dict:
    return next(t for t in plan["budget"]["terms"] if t["name"] == "cuda_graphs")


# ---- 1. use_cudagraph by release ----------------------------------------------------------------------------------

@pytest.mark.parametrize("engine, config, off", [
    ("vllm==0.8.5", OFF, False),  # V1 sets it True (config.py 0.8.5:3893); canonical JSON (the CLI's literal below)
    ("vllm==0.9.0", OFF, False),  # config.py 0.9.0:4316 the same
    ("vllm==0.9.1", OFF, True),  # no capture size in the piecewise backend
    ("vllm==0.9.2", OFF, True),
    ("vllm==0.10.0", OFF, True),
    ("vllm==0.10.1", OFF, True),  # cudagraph_mode NONE
    ("vllm==0.10.2", OFF, True),
    ("vllm==0.11.0", OFF, True),
    ("vllm==0.11.1", OFF, False),  # the field is gone, pydantic drops the key
    ("vllm==0.12.0", OFF, False),
    ("vllm==0.10.1", '{"use_cudagraph": true}', False),
    ("vllm==0.10.1", '{"use_cudagraph": "false"}', True),  # pydantic's lax bool
    ("vllm==0.10.1", '{"use_cudagraph": 0}', True),
    ("vllm==0.10.1", '{"use_cudagraph": false, "level": 1}', True),  # below 3 is NONE as well
    ("vllm==0.10.1", '{"use_cudagraph": false, "cudagraph_mode": null}', True),  # None given: no clash
])
def test_use_cudagraph_false_by_release(engine, config, off):
    assert _graphs_off(engine, config) is off


def test_use_cudagraph_ignored_0_8_5_as_its_literal():
    plan = estimate_plan(LLAMA, *H100, "--engine", "vllm==0.8.5", "--compilation-config", "{'use_cudagraph': False}")
    assert _graph_term(plan)["source"] == "0: graphs captured after the cache was sized"


def test_use_cudagraph_as_a_dotted_key_0_9_1():
    plan = estimate_plan(LLAMA, *H100, "--engine", "vllm==0.9.1", "--compilation-config.use_cudagraph", "false")
    assert "use_cudagraph false" in _graph_term(plan)["source"]


@pytest.mark.parametrize("engine, config, words", [
    ("vllm==0.10.1", '{"use_cudagraph": false, "cudagraph_mode": "NONE"}', "mutually exclusive"),
    ("vllm==0.11.0", '{"use_cudagraph": false, "cudagraph_mode": "FULL"}', "mutually exclusive"),
    ("vllm==0.10.2", '{"use_cudagraph": false, "full_cuda_graph": true}', "full_cuda_graph are mutually exclusive"),
    ("vllm==0.10.1", '{"use_cudagraph": "maybe"}', "takes true or false"),
    ("vllm==0.13.0", OFF, "write cudagraph_mode NONE"),  # extra fields forbidden from 0.13
    ("vllm==0.20.0", OFF, "write cudagraph_mode NONE"),  # so no graph budget term reads it
    ("vllm==0.32.0", '{"full_cuda_graph": true}', "write cudagraph_mode FULL"),
])
def test_use_cudagraph_refused_as_vllm_refuses_it(engine, config, words):
    r = run_kvplan("estimate", LLAMA, *H100, "--engine", engine, "--compilation-config", config)
    line = one_error_line(r)
    assert "--compilation-config" in line and words in line, line


def test_mode_alone_beside_use_cudagraph_true_is_fine_0_10_1():
    # only a false use_cudagraph migrates to a mode (0.10.1:443): true beside cudagraph_mode is no clash
    assert _graphs_off("vllm==0.10.1", '{"use_cudagraph": true, "cudagraph_mode": "NONE"}')


def test_use_cudagraph_false_moves_no_budget_byte_before_0_20():
    # 0.10.1 sizes the cache before capturing any graph: the same budget, term by term, byte for byte; the graph term
    # now says the graphs are off, and why
    base = estimate_plan(LLAMA, *H100, "--engine", "vllm==0.10.1")
    off = estimate_plan(LLAMA, *H100, "--engine", "vllm==0.10.1", "--compilation-config", OFF)
    assert off["engine"]["available_kv_cache_bytes"] == base["engine"]["available_kv_cache_bytes"]
    assert [(t["name"], t["bytes"]) for t in off["budget"]["terms"]] == \
        [(t["name"], t["bytes"]) for t in base["budget"]["terms"]]
    assert _graph_term(base)["source"] == "0: graphs captured after the cache was sized"
    assert _graph_term(off)["source"].startswith("0: use_cudagraph false (--compilation-config) captures no graphs")


def test_speed_note_says_the_compilation_config_turned_graphs_off():
    r = run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.10.1", "--compilation-config", OFF)
    text = " ".join(r.stdout.split())
    # the rule the graph term names (test_graph_reason_review_s81)
    assert r.returncode == 0 and "No CUDA graphs: use_cudagraph false (--compilation-config) captures none, and the " \
        "decode and prefill times assume" in text
    plain = run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.10.1")
    assert "No CUDA graphs" not in plain.stdout


# ---- 2. V0 keeps its graphs ---------------------------------------------------------------------------------------

A100_FP8 = ("--gpu", "A100-80GB", "--kv-cache-dtype", "fp8", "--engine", "vllm==0.10.1")


@pytest.mark.parametrize("flag", [("-O0",), ("--compilation-config", '{"cudagraph_mode": "NONE"}'),
                                  ("--compilation-config", OFF)])
def test_v0_captures_whatever_the_compilation_config(flag):
    base = estimate_plan(LLAMA, *A100_FP8)
    plan = estimate_plan(LLAMA, *A100_FP8, *flag)
    assert plan["engine"]["core"] == "v0" and base["engine"]["core"] == "v0"
    source = _graph_term(plan)["source"]
    assert source.startswith("0: graphs captured after the cache was sized (V0 ignores") and "captures no" not in source
    # no budget byte moves: V0 sizes the cache before it captures (worker.py 0.10.1:386-387 after the profile)
    assert json.dumps([t["bytes"] for t in plan["budget"]["terms"]]) == \
        json.dumps([t["bytes"] for t in base["budget"]["terms"]])
    assert plan["engine"]["available_kv_cache_bytes"] == base["engine"]["available_kv_cache_bytes"]
    # the same flags on an H100, where 0.10.1's V1 takes fp8: no graphs
    v1 = estimate_plan(LLAMA, "--gpu", "H100", *A100_FP8[2:], *flag)
    assert v1["engine"]["core"] == "v1" and "captures no graphs" in _graph_term(v1)["source"]


def test_v0_speed_note_left_out_and_enforce_eager_kept():
    r = run_kvplan("estimate", LLAMA, *A100_FP8, "-O0")
    assert r.returncode == 0 and "No CUDA graphs" not in r.stdout
    eager = estimate_plan(LLAMA, *A100_FP8, "--enforce-eager")
    assert _graph_term(eager)["source"].startswith("0: --enforce-eager captures no graphs")


def test_verify_captures_on_v0():
    """verify's capture plan (verify/planned.py graph_flags) as the engine core decides: V0 on the A100 captures,
    V1 on the H100 does not."""
    from kvplan.model.sources import resolve
    from kvplan.plan.catalog import find_gpu
    from kvplan.verify.planned import Options, graph_flags

    spec = resolve(LLAMA)
    spec = getattr(spec, "spec", spec)
    opts = Options(tp=1, context=8192, kv_dtype="fp8", gpu_util=None, block_size=None, max_num_seqs=None,
                   max_num_batched_tokens=None, engine="vllm==0.10.1", flags=EngineFlags(optimization_level="0"))
    assert not graph_flags(spec, opts, find_gpu("A100-80GB")).graphs_off
    assert graph_flags(spec, opts, find_gpu("H100")).graphs_off
    eager = Options(**{**opts.__dict__, "flags": EngineFlags(enforce_eager=True, optimization_level="0")})
    assert graph_flags(spec, eager, find_gpu("A100-80GB")).graphs_off
