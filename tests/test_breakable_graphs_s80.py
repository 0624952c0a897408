"""vLLM's breakable CUDA graphs (engines/vllm_breakable.py): which plans have them, and the graph mode they keep.

With breakable graphs on, VllmConfig sets the compilation mode NONE and skips the rule that drops piecewise graphs
without VLLM_COMPILE (config/vllm.py 0.34.0:1050-1070 `and not breakable_cudagraph_enabled`; 0.24.0:1173-1183
`and not envs.VLLM_USE_BREAKABLE_CUDAGRAPH`), so the graph mode given stays. A compilation mode below VLLM_COMPILE
given with a piecewise graph mode is where a figure moves: without them PIECEWISE is NONE (0.34.0:1059
without_piecewise; CUDAGraphMode.without_piecewise, compilation.py: PIECEWISE -> NONE), no graph is captured and the
worker subtracts no graph term; with them the PIECEWISE graphs are captured and profiled (v1/worker/gpu/
cudagraph_utils.py 0.34.0:989-1068), the graph term kvplan prices whatever the count (GRAPH_TERM). Default flags move
no figure (the mode stays FULL_AND_PIECEWISE either way). kvplan models vLLM's default by architecture and release
alone: VLLM_USE_BREAKABLE_CUDAGRAPH is the serving host's, which kvplan does not read."""

import json

import pytest

from conftest import run_kvplan
from test_verify_engine_flags import GRAPH_TERM, options, verify_plan  # noqa: F401 (fixture)
from kvplan.engines.vllm_breakable import default_architectures, enabled
from kvplan.model.sources import resolve

ENV = "VLLM_USE_BREAKABLE_CUDAGRAPH"
QWEN35 = "Qwen/Qwen3.5-9B"  # Qwen3_5ForConditionalGeneration (model_specs/Qwen--Qwen3.5-9B.yaml)
QWEN3 = "Qwen/Qwen3-8B"  # Qwen3ForCausalLM: in no release's default set
PIECEWISE_UNCOMPILED = '{"mode": "NONE", "cudagraph_mode": "PIECEWISE"}'


def _graphs(model, engine, *args, env=None):
    """(graph term bytes, its source, kv budget) of `kvplan estimate` on an H100 at 32,768 tokens."""
    r = run_kvplan("estimate", model, "--engine", engine, "--gpu", "H100", "--max-model-len", "32768", *args,
                   "--format", "json", env=env)
    assert r.returncode == 0, r.stderr
    (plan,) = json.loads(r.stdout)["plans"]
    term = next(t for t in plan["budget"]["terms"] if t["name"] == "cuda_graphs")
    return term["bytes"], term["source"], plan["kv_budget_bytes_per_gpu"]


def test_listed_architecture_keeps_piecewise_on_034():
    """Qwen3.5 on 0.34 (CUDA): Qwen3_5ForConditionalGeneration is in _QWEN3_5_ARCHITECTURES (config/vllm.py
    0.34.0:88-97), added on CUDA (:154-157), so _maybe_enable_breakable_cudagraph turns them on (:813-818) and the
    PIECEWISE given below VLLM_COMPILE stays (:1057): graphs captured, PIECEWISE only (no FULL graph in that mode),
    the graph term priced as the default plan's, so the KV budget is the default plan's too."""
    bytes_, source, budget = _graphs(QWEN35, "vllm==0.34.0", "-cc", PIECEWISE_UNCOMPILED)
    default_bytes, default_source, default_budget = _graphs(QWEN35, "vllm==0.34.0")
    assert bytes_ == default_bytes == GRAPH_TERM and budget == default_budget
    assert "PIECEWISE=" in source and "FULL=" not in source
    assert "breakable CUDA graphs (on by default for Qwen3_5ForConditionalGeneration" in source
    assert "breakable CUDA graphs" in default_source  # said on the default plan too; its figures are unchanged


def test_environment_not_read():
    """A plan is a function of its flags alone: VLLM_USE_BREAKABLE_CUDAGRAPH in kvplan's own environment (=0 vLLM's
    opt-out, =1 its forcing: config/vllm.py 0.34.0:811-812) moves no figure and no word, with PIECEWISE below
    VLLM_COMPILE (where breakable graphs matter) and with default flags; the graph term names the opt-out instead."""
    for args in (("-cc", PIECEWISE_UNCOMPILED), ()):
        plain = _graphs(QWEN35, "vllm==0.34.0", *args)
        assert _graphs(QWEN35, "vllm==0.34.0", *args, env={ENV: "0"}) == plain
        assert _graphs(QWEN3, "vllm==0.34.0", *args, env={ENV: "1"}) == _graphs(QWEN3, "vllm==0.34.0", *args)
        assert f"{ENV}=0 on the serving host opts out, which kvplan does not read" in plain[1]


def test_unlisted_architecture_unchanged():
    """Qwen3ForCausalLM is in no default set (0.34.0:99-134, 88-97), so PIECEWISE below VLLM_COMPILE is NONE as before
    (0.34.0:1055-1067): no graph term."""
    bytes_, source, _ = _graphs(QWEN3, "vllm==0.34.0", "-cc", PIECEWISE_UNCOMPILED)
    assert bytes_ == 0 and "breakable" not in source
    assert not enabled(resolve(QWEN3), "0.34.0") and enabled(resolve(QWEN35), "0.34.0")


def test_release_before_the_entry_unchanged():
    """0.33's default set has no Qwen3.5 (config/vllm.py 0.33.0:76-107; Qwen3.5 joins in 0.34.0:88-97), so 0.33 drops
    the PIECEWISE given below VLLM_COMPILE (0.33.0:1129-1149, without_piecewise): no graph term."""
    bytes_, source, _ = _graphs(QWEN35, "vllm==0.33.0", "-cc", PIECEWISE_UNCOMPILED)
    assert bytes_ == 0 and "breakable" not in source


def test_022_has_no_default_architecture():
    """0.22 reads VLLM_USE_BREAKABLE_CUDAGRAPH alone (config/vllm.py 0.22.0:1047), which kvplan does not read, and the
    first default set is 0.23's (0.23.0:1074-1080): no 0.22 plan has breakable graphs, DeepSeek-V4's neither."""
    assert default_architectures((0, 22)) == frozenset() and default_architectures((0, 21)) == frozenset()
    assert "DeepseekV4ForCausalLM" in default_architectures((0, 23))


def test_deepseek_v4_on_024_keeps_graphs_below_compile():
    """DeepSeek-V4 is on by default from 0.23 (0.23.0:1074-1080; 0.24.0:1081-1093). 0.13-0.29 turn a piecewise mode
    NONE without VLLM_COMPILE unless breakable (0.24.0:1173-1183): -cc mode NONE leaves FULL_AND_PIECEWISE and its
    graph term with them (fp8: 0.24 refuses auto for its fp8_ds_mla cache)."""
    args = ("-tp", "8", "--kv-cache-dtype", "fp8", "-cc", '{"mode": "NONE"}')
    on, source, _ = _graphs("deepseek-ai/DeepSeek-V4-Flash", "vllm==0.24.0", *args)
    assert on == GRAPH_TERM and "PIECEWISE=" in source and "FULL=" in source


@pytest.mark.parametrize("architecture, first", [
    ("DeepseekV4ForCausalLM", (0, 23)),  # 0.23.0:1074-1080
    ("KimiLinearForCausalLM", (0, 27)),  # 0.27.0:1213-1230
    ("DeepseekV32ForCausalLM", (0, 29)),  # 0.29.0:75
    ("GlmMoeDsaForCausalLM", (0, 29)),  # 0.29.0:75
    ("Qwen3_5MoeForConditionalGeneration", (0, 34)),  # 0.34.0:88-97, CUDA only (:154-157)
])
def test_bundled_architectures_by_release(architecture, first):
    """The bundled specs in vLLM's lists, from the first release listing each (CUDA), and never before."""
    before = (first[0], first[1] - 1)
    assert architecture in default_architectures(first) and architecture not in default_architectures(before)
    assert architecture in default_architectures((0, 34))


def test_rocm_sets():
    """ROCm: 0.29 the list less DeepSeek-V3.2 (0.29.0:98-110), 0.30-0.33 DeepseekV41ForCausalLM alone (0.30.0:108-120,
    0.33.0:113-125), 0.34 that and HYV4 (0.34.0:138-153): no Qwen3.5 (CUDA only, :154-157)."""
    assert "DeepseekV32ForCausalLM" not in default_architectures((0, 29), rocm=True)
    assert "GlmMoeDsaForCausalLM" in default_architectures((0, 29), rocm=True)
    assert default_architectures((0, 33), rocm=True) == {"DeepseekV41ForCausalLM"}
    assert default_architectures((0, 34), rocm=True) == {"DeepseekV41ForCausalLM", "HYV4ForCausalLM", "HYV4MTPModel"}


def test_verify_captures_with_breakable_graphs(options):
    """Verify's graph decision follows the plan: Qwen3.5 on 0.34 with PIECEWISE below VLLM_COMPILE captures (not
    graphs_off), and its plan's graph term is the estimate's."""
    from kvplan.gpu.rank import graph_flags

    spec, opts = options(QWEN35, context=32768, engine="vllm==0.34.0", compilation_config=PIECEWISE_UNCOMPILED)
    flags = graph_flags(spec, opts)
    assert flags.cudagraph_mode == "PIECEWISE" and not flags.graphs_off and flags.breakable
    plan, _ = verify_plan(spec, opts)
    assert plan.budget.cuda_graph_bytes == GRAPH_TERM
