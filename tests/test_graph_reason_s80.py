"""Where vLLM's CUDA graphs are off, the graph term's source and verify's eager decode name the rule that turned them
off, with the flag given (EngineFlags.cudagraph_mode_why, recorded by the step that decided; vllm_graphs_off.
graphs_off_cause reads it). Before, every cause but --enforce-eager and use_cudagraph read "cudagraph_mode NONE
(--compilation-config, -O0)", whatever rule decided.

The rules and their order, by hand from vLLM's config/vllm.py and config/compilation.py (0.34.0 line numbers; the
engine modules cite every release):
- the compile-mode rule (_normalize_piecewise_cudagraph_mode, :1842): below VLLM_COMPILE PIECEWISE -> NONE and, from
  0.30, FULL_AND_PIECEWISE -> FULL_DECODE_ONLY (:1050-1070); 0.13-0.29 any piecewise mode NONE (0.24.0:1172-1183);
  0.12 any mode NONE (0.12.0:647-658); 0.10.1-0.11.x a level below 3 with no cudagraph_mode NONE (0.11.0:361-376);
- the pooler config's downgrade of full modes to PIECEWISE (:1863-1873; -dcp's too in 0.11.1-0.12, 0.12.0:674-700),
  then from 0.30 the compile-mode rule again (:1995), which turns that PIECEWISE NONE below VLLM_COMPILE;
- stock torch.compile, mode 1 (:3439-3455, called :2004): NONE on 0.34, on Model Runner V2 in 0.32-0.33 (0.32.0:
  2016-2017, 3165-3185);
- splitting_ops [] under VLLM_COMPILE (compilation.py :1374-1399, called :2071): PIECEWISE -> NONE;
- breakable CUDA graphs set the compilation mode NONE and skip the compile-mode rule (:831-833): the mode given stays.
So each case below has one deciding rule (the first in that order to leave NONE), and the words name it alone: the
whole source is compared, not a part of it.

Sources: "0: <cause> captures no graphs" where the release sizes the cache with the graphs measured (0.34) or captures
them after (before 0.20); "0: <cause> captures no graphs, so the worker skips the graph profile" on 0.20-0.33
(vllm_budget.graph_reserve), where --enforce-eager keeps "sets cudagraph_mode NONE"."""

import pytest

from conftest import estimate_plan
from test_verify_engine_flags import options, verify_plan  # noqa: F401 (fixtures)
from kvplan import api
from kvplan.engines import EngineFlags, get_engine
from kvplan.engines.vllm_graphs_off import graphs_off_cause
from kvplan.model.sources import resolve
from kvplan.plan.catalog import find_gpu

QWEN3 = "Qwen/Qwen3-8B"  # Qwen3ForCausalLM: no breakable graphs in any release; V2 runner 0.29-0.33
QWEN35 = "Qwen/Qwen3.5-9B"  # breakable graphs on by default in 0.34 (config/vllm.py 0.34.0:88-97, :154-157)
CC = "--compilation-config"
POOLING = ("--runner", "pooling")
GIVEN = "cudagraph_mode NONE (--compilation-config, -O0)"  # the words of a NONE given, or -O0's, kept as they were
SPLIT = "PIECEWISE with splitting_ops [] (--compilation-config)"
STOCK = "stock torch.compile (--compilation-config mode 1)"
STOCK_V2 = "stock torch.compile on Model Runner V2 (--compilation-config mode 1)"
POOLED_SPLIT = "the pooler config's PIECEWISE downgrade, then splitting_ops [] (--compilation-config)"
POOLED_BELOW = "the pooler config's PIECEWISE downgrade below VLLM_COMPILE (--compilation-config mode {})"
BELOW = "cudagraph_mode {} below VLLM_COMPILE ({})"
AFTER = " (and this release captures them after the cache was sized)"
SKIPS = ", so the worker skips the graph profile"


def _source(release: str, *args, model: str = QWEN3) -> str:
    plan = estimate_plan(model, "--engine", f"vllm=={release}", "--gpu", "H100", "--max-model-len", "8192", *args)
    return next(t for t in plan["budget"]["terms"] if t["name"] == "cuda_graphs")["source"]


CASES = [
    # splitting_ops [] takes PIECEWISE's pieces away under VLLM_COMPILE (the default mode, -O2's)
    ("0.34.0", (CC, '{"cudagraph_mode": "PIECEWISE", "splitting_ops": []}'), SPLIT, ""),
    ("0.20.0", (CC, '{"cudagraph_mode": "PIECEWISE", "splitting_ops": []}'), SPLIT, SKIPS),
    ("0.12.0", (CC, '{"cudagraph_mode": "PIECEWISE", "splitting_ops": []}'), SPLIT, AFTER),
    # -O1's PIECEWISE (OPTIMIZATION_LEVEL_01, config/vllm.py 0.34.0:302-320) at VLLM_COMPILE, then []
    ("0.34.0", ("--optimization-level", "1", CC, '{"splitting_ops": []}'), SPLIT, ""),
    # a pooling model: FULL_AND_PIECEWISE -> PIECEWISE (the downgrade), then [] -> NONE
    ("0.34.0", (*POOLING, CC, '{"splitting_ops": []}'), POOLED_SPLIT, ""),
    ("0.20.0", (*POOLING, CC, '{"splitting_ops": []}'), POOLED_SPLIT, SKIPS),
    # a generating model given --pooler-config keeps it, and is downgraded alike (0.34.0:1865: pooler_config is not
    # None)
    ("0.34.0", ("--pooler-config", '{"pooling_type": "MEAN"}', CC, '{"splitting_ops": []}'), POOLED_SPLIT, ""),
    # below VLLM_COMPILE from 0.30: FULL_AND_PIECEWISE -> FULL_DECODE_ONLY (first rule), PIECEWISE (downgrade), NONE
    # (the rule again)
    ("0.34.0", (*POOLING, CC, '{"mode": 0}'), POOLED_BELOW.format(0), ""),
    ("0.30.0", (*POOLING, CC, '{"mode": "NONE", "cudagraph_mode": "FULL"}'), POOLED_BELOW.format("NONE"), SKIPS),
    # mode 1 on a pooling model: the downgrade and the second compile-mode rule (:1995) come before the stock rule
    # (:2004), so they, not stock torch.compile, leave NONE
    ("0.34.0", (*POOLING, CC, '{"mode": 1}'), POOLED_BELOW.format(1), ""),
    # stock torch.compile: FULL_AND_PIECEWISE -> FULL_DECODE_ONLY (first rule), then NONE (every runner on 0.34)
    ("0.34.0", (CC, '{"mode": 1}'), STOCK, ""),
    ("0.34.0", (CC, '{"mode": "STOCK_TORCH_COMPILE"}'), STOCK, ""),
    ("0.32.0", (CC, '{"mode": 1}'), STOCK_V2, SKIPS),  # Qwen3-8B runs on V2 in 0.32 (vllm_runner.py)
    # the compile-mode rule itself
    ("0.34.0", (CC, '{"mode": 0, "cudagraph_mode": "PIECEWISE"}'), BELOW.format("PIECEWISE", f"{CC} mode 0"), ""),
    # -O0's compilation mode NONE (config/vllm.py 0.34.0:1758-1762), the flag as the command line spells its field
    # (cli/flags.py: optimization_level is -O)
    ("0.34.0", ("--optimization-level", "0", CC, '{"cudagraph_mode": "PIECEWISE"}'),
     BELOW.format("PIECEWISE", "-O 0"), ""),
    ("0.24.0", (CC, '{"mode": 0}'), BELOW.format("FULL_AND_PIECEWISE", f"{CC} mode 0"), SKIPS),
    ("0.17.0", (CC, '{"level": 2}'), BELOW.format("FULL_AND_PIECEWISE", f"{CC} level 2"), AFTER),
    ("0.12.0", (CC, '{"mode": 0, "cudagraph_mode": "FULL"}'), BELOW.format("FULL", f"{CC} mode 0"), AFTER),
    # 0.10.1-0.11.x: a level below 3 with no cudagraph_mode; -O is the compilation config itself there
    ("0.11.0", ("-O", "1"), f"compilation level below 3 with no cudagraph_mode ({CC} level 1)", AFTER),
    # pooling below VLLM_COMPILE on 0.20 (0.13-0.29): the first rule already leaves NONE, before any downgrade
    ("0.20.0", (*POOLING, CC, '{"mode": 1}'), BELOW.format("FULL_AND_PIECEWISE", f"{CC} mode 1"), SKIPS),
]


@pytest.mark.parametrize("release, args, cause, tail", CASES)
def test_the_source_names_the_rule_that_decided(release, args, cause, tail):
    assert _source(release, *args) == f"0: {cause} captures no graphs{tail}"


@pytest.mark.parametrize("release, args, source", [
    ("0.34.0", ("--optimization-level", "0"), f"0: {GIVEN} captures no graphs"),
    ("0.34.0", (CC, '{"cudagraph_mode": "NONE"}'), f"0: {GIVEN} captures no graphs"),
    ("0.12.0", (CC, '{"cudagraph_mode": "none"}'), f"0: {GIVEN} captures no graphs{AFTER}"),
    ("0.34.0", ("--enforce-eager",), "0: --enforce-eager captures no graphs"),
    ("0.25.0", ("--enforce-eager",), "0: --enforce-eager sets cudagraph_mode NONE, so the worker skips the graph "
                                     "profile"),
    ("0.10.0", ("-O", '{"use_cudagraph": false}'), f"0: use_cudagraph false ({CC}) captures no graphs{AFTER}"),
    # --enforce-eager wins over any compilation rule, as vLLM sets NONE for it first (config/vllm.py 0.32.0:1928-1932)
    ("0.34.0", ("--enforce-eager", CC, '{"mode": 1}'), "0: --enforce-eager captures no graphs"),
])
def test_the_words_of_a_none_given_and_of_enforce_eager_are_unchanged(release, args, source):
    assert _source(release, *args) == source


def test_the_given_none_keeps_its_words_where_a_later_rule_would_decide_too():
    """NONE given with splitting_ops [] and mode 1: the NONE given decides first (every later rule leaves NONE
    alone: pieces_left, the stock rule's `cudagraph_mode == NONE`)."""
    assert _source("0.34.0", CC, '{"cudagraph_mode": "NONE", "splitting_ops": [], "mode": 1}') == \
        f"0: {GIVEN} captures no graphs"


@pytest.mark.parametrize("release, args, model", [
    # FULL_AND_PIECEWISE -> FULL with [] (compilation.py 0.34.0:1389-1399): graphs kept, no cause
    ("0.34.0", (CC, '{"splitting_ops": []}'), QWEN3),
    ("0.34.0", (CC, '{"cudagraph_mode": "PIECEWISE", "pass_config": {"fuse_attn_quant": true}}'), QWEN3),  # FULL
    ("0.34.0", (CC, '{"mode": 0}'), QWEN3),  # FULL_DECODE_ONLY from 0.30 (without_piecewise)
    ("0.31.0", (CC, '{"mode": 1}'), QWEN3),  # no stock rule before 0.32: FULL_DECODE_ONLY
    # breakable graphs keep the mode given below VLLM_COMPILE (config/vllm.py 0.34.0:831-833)
    ("0.34.0", (CC, '{"mode": 0, "cudagraph_mode": "PIECEWISE"}'), QWEN35),
    ("0.34.0", (CC, '{"cudagraph_mode": "PIECEWISE", "splitting_ops": []}'), QWEN35),
    ("0.34.0", (CC, '{"mode": 1}'), QWEN35),
])
def test_graphs_kept_name_no_cause(release, args, model):
    source = _source(release, *args, model=model)
    assert not source.startswith("0: ") or "captures no graphs" not in source
    assert "below VLLM_COMPILE" not in source and "splitting_ops" not in source and "stock" not in source


def test_breakable_graphs_with_none_given_say_the_none_given():
    """A NONE given stays NONE on breakable graphs (they keep the mode given): the given words, not a rule's."""
    assert _source("0.34.0", CC, '{"cudagraph_mode": "NONE", "mode": 0}', model=QWEN35) == \
        f"0: {GIVEN} captures no graphs"


def test_dcp_downgrade_is_named():
    """-dcp 2 in 0.11.1-0.12 downgrades full modes to PIECEWISE (0.12.0:674-700) before the splitting rule (:812)."""
    spec = resolve(QWEN3)
    flags = get_engine("vllm==0.12.0", EngineFlags(compilation_config='{"splitting_ops": []}', dcp=2)).graph_flags(spec)
    assert graphs_off_cause(flags) == "-dcp 2's PIECEWISE downgrade, then splitting_ops [] (--compilation-config)"


def test_the_api_spells_the_keyword():
    """The Python API writes compilation_config where the command line writes --compilation-config (plan/budget.py
    _flags_spelled)."""
    (plan,) = api.estimate(QWEN3, max_model_len=8192, gpu="H100", engine="vllm==0.34.0",
                           compilation_config={"mode": 1})
    source = next(t for t in plan.to_dict()["budget"]["terms"] if t["name"] == "cuda_graphs")["source"]
    assert source == "0: stock torch.compile (compilation_config mode 1) captures no graphs"
    (plan,) = api.estimate(QWEN3, max_model_len=8192, gpu="H100", engine="vllm==0.34.0", optimization_level=0,
                           compilation_config={"cudagraph_mode": "PIECEWISE"})
    source = next(t for t in plan.to_dict()["budget"]["terms"] if t["name"] == "cuda_graphs")["source"]
    assert source == "0: cudagraph_mode PIECEWISE below VLLM_COMPILE (optimization_level 0) captures no graphs"


# ---- verify: the eager decode names what the graph term names ----------------------------------------------------

@pytest.mark.parametrize("keywords, cause", [
    ({"engine": "vllm==0.34.0", "compilation_config": '{"cudagraph_mode": "PIECEWISE", "splitting_ops": []}'},
     SPLIT),
    ({"engine": "vllm==0.34.0", "compilation_config": '{"mode": 1}'}, STOCK),
    ({"engine": "vllm==0.32.0", "compilation_config": '{"mode": 1}'}, STOCK_V2),
    ({"engine": "vllm==0.34.0", "compilation_config": '{"mode": 0, "cudagraph_mode": "PIECEWISE"}'},
     BELOW.format("PIECEWISE", f"{CC} mode 0")),
    ({"engine": "vllm==0.34.0", "optimization_level": "0"}, GIVEN),
])
def test_verify_names_the_same_cause(options, keywords, cause):
    from kvplan.gpu import rank as R

    spec, opts = options(QWEN3, context=8192, **keywords)
    plan, resolved = verify_plan(spec, opts)
    term = next(t for t in plan.budget.terms if t.name == "cuda_graphs")
    flags = R.graph_flags(spec, resolved)
    assert flags.graphs_off and graphs_off_cause(flags) == cause and term.source.startswith(f"0: {cause} captures")
    assert R.no_graphs(flags)["why"].startswith(f"{cause}: vLLM captures no CUDA graph")


@pytest.mark.parametrize("release, config, cause", [
    ("0.34.0", '{"splitting_ops": []}', POOLED_SPLIT),
    ("0.34.0", '{"mode": 0}', POOLED_BELOW.format(0)),
])
def test_verify_names_a_pooling_model_cause(release, config, cause):
    """Verify's graph view of a pooling model (planned.graph_flags, the engine's view through core_flags) says the
    graph term's words."""
    from kvplan.verify.planned import Options, graph_flags

    spec = EngineFlags(runner="pooling").with_runner(resolve(QWEN3))
    opts = Options(tp=1, context=8192, kv_dtype="auto", gpu_util=None, block_size=None, max_num_seqs=None,
                   max_num_batched_tokens=None, engine=f"vllm=={release}",
                   flags=EngineFlags(compilation_config=config, runner="pooling"))
    flags = graph_flags(spec, opts, find_gpu("H100"))
    assert flags.graphs_off and graphs_off_cause(flags) == cause
    assert _source(release, *POOLING, CC, config) == f"0: {cause} captures no graphs"
