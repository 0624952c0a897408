"""The compilation config's splitting_ops and pass_config.fuse_attn_quant (engines/vllm_splitting_ops.py): under
VLLM_COMPILE they take the piecewise CUDA graphs away, as vLLM's set_splitting_ops_for_v1 does.

The rules, read in vLLM's config/compilation.py (0.34.0 line numbers; the module cites each release):
- splitting_ops == [] (:1374-1399): PIECEWISE -> NONE, FULL_AND_PIECEWISE -> FULL, FULL / FULL_DECODE_ONLY kept.
- fuse_attn_quant true, splitting_ops None, no inductor graph partition (:1331-1332, :1419-1433): a mode with
  piecewise graphs -> FULL; splitting_ops given beside it is kept, and so is the mode.
- neither below VLLM_COMPILE (:1327-1330): there the compile-mode rule alone acts (config/vllm.py :1050-1070).
The graph term's bytes (>= 0.20) are one figure whatever the mode (GRAPH_TERM), so a mode left with graphs keeps the
default plan's budget and NONE adds exactly GRAPH_TERM to it."""

import json

import pytest

from conftest import one_error_line, run_kvplan
from test_verify_engine_flags import GRAPH_TERM
from kvplan.engines.vllm_compilation import resolve

QWEN3 = "Qwen/Qwen3-8B"  # Qwen3ForCausalLM: no breakable CUDA graphs in any release (vllm_breakable.DEFAULTS)
QWEN35 = "Qwen/Qwen3.5-9B"  # breakable CUDA graphs on by default in 0.34 (config/vllm.py 0.34.0:88-97, :154-157)
EMPTY = '"splitting_ops": []'
FUSION = '"pass_config": {"fuse_attn_quant": true}'


def _mode(config: str, version: str):
    return resolve("{" + config + "}", None, version).cudagraph_mode


@pytest.mark.parametrize("config, version, mode", [
    # the empty list: FULL_AND_PIECEWISE (vLLM's default, None here) -> FULL, PIECEWISE -> NONE (0.34.0:1374-1399)
    (EMPTY, "0.34.0", "FULL"),
    ('"cudagraph_mode": "PIECEWISE", ' + EMPTY, "0.34.0", "NONE"),
    ('"cudagraph_mode": "FULL_DECODE_ONLY", ' + EMPTY, "0.34.0", "FULL_DECODE_ONLY"),  # no piecewise graph to drop
    ('"cudagraph_mode": "PIECEWISE", ' + EMPTY, "0.20.0", "NONE"),  # 0.20.0:1125-1142
    ('"cudagraph_mode": "PIECEWISE", ' + EMPTY, "0.11.1", "NONE"),  # the first release with it: 0.11.1:807-818
    ('"cudagraph_mode": "PIECEWISE", ' + EMPTY, "0.11.0", "PIECEWISE"),  # 0.11.0's older rule (PIECEWISE -> FULL,
    # 0.11.0:597-611) is not modelled: the mode stays as before
    ('"splitting_ops": ["vllm::unified_attention"]', "0.34.0", None),  # ops given: nothing changes
    # fusion: any piecewise mode -> FULL, PIECEWISE too (0.34.0:1419-1433)
    (FUSION, "0.34.0", "FULL"),
    ('"cudagraph_mode": "PIECEWISE", ' + FUSION, "0.34.0", "FULL"),
    ('"cudagraph_mode": "PIECEWISE", ' + FUSION + ", " + EMPTY, "0.34.0", "PIECEWISE"),  # [] given: kept (:1421)
    ('"cudagraph_mode": "PIECEWISE", "pass_config": {"fuse_attn_quant": false}', "0.34.0", "PIECEWISE"),
    ('"cudagraph_mode": "PIECEWISE", "pass_config": {"fuse_attn_quant": "yes"}', "0.34.0", "FULL"),  # lax bool
    # its name: enable_attn_fusion in 0.11.1 (:792), which drops fuse_attn_quant; 0.12 takes both, the old one
    # copied over the new where given (0.12.0:235-240)
    ('"cudagraph_mode": "PIECEWISE", "pass_config": {"enable_attn_fusion": true}', "0.11.1", "FULL"),
    ('"cudagraph_mode": "PIECEWISE", ' + FUSION, "0.11.1", "PIECEWISE"),
    ('"cudagraph_mode": "PIECEWISE", "pass_config": {"enable_attn_fusion": true}', "0.12.0", "FULL"),
    ('"cudagraph_mode": "PIECEWISE", "pass_config": {"enable_attn_fusion": false, "fuse_attn_quant": true}',
     "0.12.0", "PIECEWISE"),
    # inductor graph partition: 0.12 returns before both rules (0.12.0:957-959); 0.34 skips fusion alone (:1331)
    ('"cudagraph_mode": "PIECEWISE", "use_inductor_graph_partition": true, ' + EMPTY, "0.12.0", "PIECEWISE"),
    ('"cudagraph_mode": "PIECEWISE", "use_inductor_graph_partition": true, ' + EMPTY, "0.34.0", "NONE"),
    ('"cudagraph_mode": "PIECEWISE", "use_inductor_graph_partition": true, ' + FUSION, "0.34.0", "PIECEWISE"),
    # below VLLM_COMPILE set_splitting_ops_for_v1 returns first (0.34.0:1327-1330): the compile-mode rule alone,
    # FULL_AND_PIECEWISE -> FULL_DECODE_ONLY from 0.30 (without_piecewise, config/vllm.py 0.34.0:1050-1070)
    ('"mode": "NONE", ' + EMPTY, "0.34.0", "FULL_DECODE_ONLY"),
    ('"mode": "NONE", ' + FUSION, "0.34.0", "FULL_DECODE_ONLY"),
])
def test_graph_mode(config, version, mode):
    assert _mode(config, version) == mode


def test_o0_compiles_nothing():
    """--optimization-level 0: mode NONE (config/vllm.py 0.34.0:1758-1762) and cudagraph_mode NONE (O0.s own, :283-
    301), so neither field has anything to act on."""
    assert resolve("{" + FUSION + "}", "0", "0.34.0").cudagraph_mode == "NONE"


def _graphs(model, engine, *args):
    """(graph term bytes, its source, kv budget) of `kvplan estimate` on an H100 at 32,768 tokens."""
    r = run_kvplan("estimate", model, "--engine", engine, "--gpu", "H100", "--max-model-len", "32768", *args,
                   "--format", "json")
    assert r.returncode == 0, r.stderr
    (plan,) = json.loads(r.stdout)["plans"]
    term = next(t for t in plan["budget"]["terms"] if t["name"] == "cuda_graphs")
    return term["bytes"], term["source"], plan["kv_budget_bytes_per_gpu"]


@pytest.mark.parametrize("engine", ["vllm==0.20.0", "vllm==0.34.0"])
def test_piecewise_with_empty_list_has_no_graph_term(engine):
    """PIECEWISE with splitting_ops [] is NONE: no graph, no graph term (0.20: the worker skips the graph profile;
    0.34: nothing captured), so the budget is PIECEWISE's own plus exactly the graph term it no longer holds."""
    piecewise, _, piecewise_budget = _graphs(QWEN3, engine, "-cc", '{"cudagraph_mode": "PIECEWISE"}')
    none, source, none_budget = _graphs(QWEN3, engine, "-cc", '{"cudagraph_mode": "PIECEWISE", ' + EMPTY + "}")
    assert piecewise == GRAPH_TERM and none == 0 and "PIECEWISE with splitting_ops []" in source  # the rule named
    assert none_budget - piecewise_budget == GRAPH_TERM


@pytest.mark.parametrize("config", [EMPTY, FUSION])
def test_default_mode_keeps_full_graphs(config):
    """vLLM's default FULL_AND_PIECEWISE with either field is FULL: the FULL graphs at every mixed size and no
    PIECEWISE one (vllm_graphs.graph_counts), the graph term and so the budget the default plan's."""
    default = _graphs(QWEN3, "vllm==0.34.0")
    bytes_, source, budget = _graphs(QWEN3, "vllm==0.34.0", "-cc", "{" + config + "}")
    assert bytes_ == default[0] == GRAPH_TERM and budget == default[2]
    assert "FULL=" in source and "PIECEWISE=" not in source and "PIECEWISE=" in default[1]


def test_dotted_fields():
    """-cc.splitting_ops=[] and -cc.pass_config.fuse_attn_quant=true are the JSON fields (vLLM's dotted -cc form)."""
    assert _graphs(QWEN3, "vllm==0.34.0", "-cc.cudagraph_mode=PIECEWISE", "-cc.splitting_ops=[]")[0] == 0
    _, source, _ = _graphs(QWEN3, "vllm==0.34.0", "-cc.pass_config.fuse_attn_quant=true")
    assert "FULL=" in source and "PIECEWISE=" not in source


def test_breakable_graphs_skip_the_rule():
    """Qwen3.5 on 0.34 has breakable CUDA graphs, which set the compilation mode NONE (config/vllm.py 0.34.0:
    831-833) before set_splitting_ops_for_v1 (:2071), which then returns at once (compilation.py :1327-1330): the
    PIECEWISE given stays with an empty list, graph term and all."""
    bytes_, source, _ = _graphs(QWEN35, "vllm==0.34.0", "-cc", '{"cudagraph_mode": "PIECEWISE", ' + EMPTY + "}")
    assert bytes_ == GRAPH_TERM and "PIECEWISE=" in source and "breakable CUDA graphs" in source


@pytest.mark.parametrize("config, words", [
    ('{"splitting_ops": "vllm::unified_attention"}', "splitting_ops takes a list of op names"),
    ('{"pass_config": {"fuse_attn_quant": "maybe"}}', "pass_config.fuse_attn_quant takes true or false"),
    ('{"pass_config": {"enable_attn_fusion": true}}', "pass_config.enable_attn_fusion is not a field"),
    ('{"use_inductor_graph_partition": 2}', "use_inductor_graph_partition takes true or false"),
])
def test_bad_values_refused(config, words):
    r = run_kvplan("estimate", QWEN3, "--engine", "vllm==0.34.0", "--gpu", "H100", "-cc", config)
    assert words in one_error_line(r)
