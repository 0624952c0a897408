"""The order of vLLM's graph-mode rules (engines/vllm_full_downgrade.py, vllm_stock_compile.py), by hand from vLLM's
config/vllm.py and config/compilation.py.

A pooling model: VllmConfig.__post_init__ turns a mode with full graphs PIECEWISE where `pooler_config is not None`
(0.11.1:484-490, 0.13.0:697-704, 0.20.0:1037-1045, 0.29.0:1533-1541, 0.30.0:1728-1736, 0.34.0:1865-1873), then calls
set_splitting_ops_for_v1 (0.11.1:631-632, 0.13.0:814, 0.20.0:1166, 0.29.0:1671, 0.30.0:1872, 0.34.0:2071), whose
`splitting_ops: []` turns PIECEWISE NONE and whose fuse_attn_quant turns it FULL (compilation.py 0.34.0:1374-1399,
1419-1433). So with [] a pooling model (the pooling runner, or a generating model given --pooler-config, whose
pooler_config the generate runner keeps) captures nothing: no graph term from 0.20 (vllm_budget.graph_reserve), the
KV budget larger by exactly that term (GRAPH_TERM, 0.705 GiB whatever the count). Before the fix kvplan applied []
first (FULL_AND_PIECEWISE -> FULL), then forced PIECEWISE, and kept the term.

Below VLLM_COMPILE from 0.30 the compile-mode rule runs again after the downgrade (_normalize_piecewise_cudagraph_mode,
0.30.0:1673 and :1844, 0.34.0:1842 and :1995): a full mode given, downgraded to PIECEWISE, becomes NONE, and the
assert (0.30.0:1915, 0.34.0:2077-2088) sees no piecewise mode. 0.13-0.29 have it once (0.29.0:1470, before the
downgrade), so the assert stops them (vllm_level_assert.downgrade_refusal).

Compilation mode 1 (STOCK_TORCH_COMPILE): 0.34's _disable_cudagraphs_for_stock_torch_compile sets NONE for every plan
(0.34.0:3439-3455, called :2004); 0.32-0.33 for Model Runner V2 alone (0.32.0:2016-2017, 3165-3185; 0.33.0:2092-2093,
3302-3322), which runs Qwen3-8B there (vllm_runner.py: V2 for every model 0.29-0.33)."""

import pytest

from conftest import estimate_plan, run_kvplan
from test_verify_engine_flags import GRAPH_TERM
from kvplan.engines import EngineFlags, get_engine
from kvplan.engines.vllm_compilation import resolve as resolve_graphs
from kvplan.engines.vllm_graphs_off import OFF_WORDS
from kvplan.model.sources import resolve
from kvplan.plan.catalog import find_gpu
from kvplan.verify.planned import Options, graph_flags

MODEL = "Qwen/Qwen3-8B"
POOLED = (("--runner", "pooling"), ("--pooler-config", '{"pooling_type": "MEAN"}'))
EMPTY = '{"splitting_ops": []}'
FUSION = '{"pass_config": {"fuse_attn_quant": true}}'


def _plan(release: str, *args) -> dict:
    return estimate_plan(MODEL, "--engine", f"vllm=={release}", "--gpu", "H100", "--max-model-len", "8192", *args)


def _term(plan: dict) -> dict:
    return next(t for t in plan["budget"]["terms"] if t["name"] == "cuda_graphs")


@pytest.mark.parametrize("release", ("0.20.0", "0.21.0", "0.29.0", "0.30.0", "0.33.0", "0.34.0"))
@pytest.mark.parametrize("pooled", POOLED)
def test_a_pooling_model_with_no_splitting_ops_captures_nothing(release, pooled):
    """Default flags: PIECEWISE (the downgrade), the term kept. With []: PIECEWISE -> NONE, no term, the budget
    larger by GRAPH_TERM (before: FULL, then PIECEWISE, the term kept: budget equal to the default's). Releases where
    the runner profiles its graphs (V1 to 0.21; Qwen3ForCausalLM runs on V2, which profiles none, in 0.22-0.28)."""
    default = _plan(release, *pooled)
    empty = _plan(release, *pooled, "-cc", EMPTY)
    assert _term(default)["bytes"] == GRAPH_TERM and "FULL=" not in _term(default)["source"]
    assert _term(empty)["bytes"] == 0
    assert empty["kv_budget_bytes_per_gpu"] - default["kv_budget_bytes_per_gpu"] == GRAPH_TERM


@pytest.mark.parametrize("release", ("0.20.0", "0.30.0", "0.34.0"))
@pytest.mark.parametrize("pooled", POOLED)
def test_fuse_attn_quant_leaves_a_pooling_model_full_graphs(release, pooled):
    """PIECEWISE (the downgrade) -> FULL (has_piecewise_cudagraphs, compilation.py 0.34.0:1425-1433): one FULL graph
    at each of the 51 mixed sizes (1, 2, 4, 8..256 by 8, 272..512 by 16 within min(2 x 256, 512, 8192)), no PIECEWISE;
    the same 0.705 GiB term, so the budget is the default's. Before: PIECEWISE=51."""
    default, fused = _plan(release, *pooled), _plan(release, *pooled, "-cc", FUSION)
    assert "FULL=51 (largest=512)" in _term(fused)["source"] and "PIECEWISE=" not in _term(fused)["source"]
    assert _term(fused)["bytes"] == GRAPH_TERM
    assert fused["kv_budget_bytes_per_gpu"] == default["kv_budget_bytes_per_gpu"]


def test_a_generating_model_keeps_its_full_graphs_with_no_splitting_ops():
    """No pooler config: [] turns FULL_AND_PIECEWISE FULL (compilation.py 0.34.0:1389-1399), captured: the term
    stays."""
    plan = _plan("0.34.0", "-cc", EMPTY)
    assert _term(plan)["bytes"] == GRAPH_TERM and "FULL=51" in _term(plan)["source"]


@pytest.mark.parametrize("pooled", POOLED)
def test_a_full_mode_below_compile_starts_without_graphs_from_030(pooled):
    """FULL with mode NONE: 0.29 downgrades it to PIECEWISE and asserts (exit 2); 0.30 and 0.34 normalize the
    PIECEWISE again to NONE (without_piecewise) and start with no graph: the budget larger by GRAPH_TERM than
    the default's. Before: 0.30+ refused as 0.29."""
    given = ("-cc", '{"mode": "NONE", "cudagraph_mode": "FULL"}')
    r = run_kvplan("estimate", MODEL, "--engine", "vllm==0.29.0", "--gpu", "H100", "--max-model-len", "8192",
                   *pooled, *given)
    assert r.returncode == 2 and "Pooling models do not support full cudagraphs" in r.stderr
    for release in ("0.30.0", "0.34.0"):
        plan, default = _plan(release, *pooled, *given), _plan(release, *pooled)
        assert _term(plan)["bytes"] == 0
        assert plan["kv_budget_bytes_per_gpu"] - default["kv_budget_bytes_per_gpu"] == GRAPH_TERM


@pytest.mark.parametrize("release", ("0.32.0", "0.33.0", "0.34.0"))
def test_stock_torch_compile_has_no_graphs(release):
    """mode 1: the compile-mode rule makes FULL_AND_PIECEWISE FULL_DECODE_ONLY (0.34.0:1050-1070), then the stock rule
    NONE (V2 from 0.32, every runner in 0.34): no term, the budget larger than the default's by GRAPH_TERM. Before:
    FULL_DECODE_ONLY, term kept."""
    plan, default = _plan(release, "-cc", '{"mode": 1}'), _plan(release)
    assert _term(plan)["bytes"] == 0
    assert plan["kv_budget_bytes_per_gpu"] - default["kv_budget_bytes_per_gpu"] == GRAPH_TERM


def test_dynamo_trace_once_follows_the_below_compile_rules():
    """mode 2 has no graph rule of its own: 0.29 turns FULL_AND_PIECEWISE NONE (0.29.0:1470-1476), 0.34
    FULL_DECODE_ONLY (without_piecewise), captured: the term stays."""
    assert _term(_plan("0.29.0", "-cc", '{"mode": 2}'))["bytes"] == 0
    assert _term(_plan("0.34.0", "-cc", '{"mode": 2}'))["bytes"] == GRAPH_TERM


@pytest.mark.parametrize("release", ("0.11.1", "0.12.0"))
def test_dcp_downgrades_before_the_splitting_rule_in_011_and_012(release):
    """-dcp > 1 turns full graphs PIECEWISE in 0.11.1-0.12 (0.11.1:477-483, 0.12.0:676-682), before
    set_splitting_ops_for_v1 (0.11.1:632, 0.12.0:812): [] leaves NONE. 0.13 has no -dcp downgrade: FULL."""
    spec = resolve(MODEL)
    flags = EngineFlags(compilation_config=EMPTY, dcp=2)
    assert get_engine(f"vllm=={release}", flags).graph_flags(spec).cudagraph_mode == "NONE"
    assert get_engine("vllm==0.13.0", flags).graph_flags(spec).cudagraph_mode == "FULL"
    assert resolve_graphs(EMPTY, None, release).cudagraph_mode == "FULL"  # no -dcp: FULL (0.12.0:976-995)


# ---- verify's graph decision and the budget's, pooled -----------------------------------------------------------

CONFIGS = (None, EMPTY, FUSION, '{"mode": 1}', '{"mode": "NONE", "cudagraph_mode": "FULL_DECODE_ONLY"}')


def _off_by_hand(release: str, config) -> bool:
    """Pooling: [] NONE (downgrade, then the splitting rule); fuse_attn_quant FULL; mode 1: NONE at 0.32+ (V2), and
    before, FULL_AND_PIECEWISE below compile -> NONE (0.13-0.29) or FULL_DECODE_ONLY -> PIECEWISE -> NONE (0.30+,
    second normalize); FULL_DECODE_ONLY below compile: refused to 0.29 (not in this table), NONE from 0.30."""
    return config in (EMPTY, '{"mode": 1}') or (config is not None and "FULL_DECODE_ONLY" in config)


@pytest.mark.parametrize("release", ("0.20.0", "0.30.0", "0.33.0", "0.34.0"))
def test_verify_and_the_budget_decide_a_pooling_model_graphs_alike(release):
    spec = EngineFlags(runner="pooling").with_runner(resolve(MODEL))
    table = []
    for config in CONFIGS:
        if config and "FULL_DECODE_ONLY" in config and release < "0.30":
            continue  # refused (vllm_level_assert.downgrade_refusal)
        args = ("--runner", "pooling") + (("-cc", config) if config else ())
        term = _term(_plan(release, *args))
        opts = Options(tp=1, context=8192, kv_dtype="auto", gpu_util=None, block_size=None, max_num_seqs=None,
                       max_num_batched_tokens=None, engine=f"vllm=={release}",
                       flags=EngineFlags(compilation_config=config, runner="pooling"))
        table.append((config, any(w in term["source"] for w in OFF_WORDS),
                      graph_flags(spec, opts, find_gpu("H100")).graphs_off, _off_by_hand(release, config)))
    assert [row for row in table if not row[1] == row[2] == row[3]] == []
