"""Review of session 80's breakable CUDA graphs (engines/vllm_breakable.py) and splitting_ops / fuse_attn_quant rule
(engines/vllm_splitting_ops.py), checked against vLLM's code.

Which names a release checks (config/vllm.py): 0.23-0.28 test `model_config.architectures` inline (0.23.0:1074-1080,
0.27.0:1213-1230), 0.29-0.33 `set(model_config.architectures)` (0.29.0:702-708, 0.33.0:798-804), and
`model_config.architectures` is the top-level hf_config's (config/model.py 0.34.0:1216-1217 model_arch_config;
model_arch_config_convertor.py 0.34.0:73-77 `hf_config.architectures`). 0.34 adds hf_text_config's own
(0.34.0:764-773, "Multimodal wrappers (e.g. Pixtral) may host a breakable text model"). kvplan's spec flattens a
nested language-model config over the top-level one, so ModelSpec.architecture is the nested class where it names
one, and the top-level class is registered_architecture: a wrapper's nested name was read in 0.23-0.33 and its
top-level name missed.

The wrapper configs below are llava-hf's layout (tests/test_nested_architecture_s70.py LLAVA) over Llama 3.1 8B's
language model, with the class names changed; the figures compared are the graph term (vLLM's 0.705 GiB estimate
where it captures, 0 where it captures none) and the KV budget, which moves by exactly that term."""

import gc
import json
import weakref

import pytest
import yaml

from conftest import ROOT, estimate_plan
from test_verify_engine_flags import GRAPH_TERM
from kvplan.engines import EngineFlags
from kvplan.engines.vllm_breakable import enabled, graph_view
from kvplan.engines.vllm_graphs_off import OFF_WORDS
from kvplan.model.parse import parse_config
from kvplan.model.sources import resolve
from kvplan.plan.catalog import find_gpu
from kvplan.verify.planned import Options, graph_flags

LLAMA = yaml.safe_load((ROOT / "model_specs" / "meta-llama--Llama-3.1-8B.yaml").read_text())["config"]
PIECEWISE_UNCOMPILED = '{"mode": "NONE", "cudagraph_mode": "PIECEWISE"}'


def _wrapper(top: str, inner: str) -> dict:
    text = {k: v for k, v in LLAMA.items() if k not in ("architectures", "torch_dtype")}
    return {"architectures": [top], "model_type": "llava", "torch_dtype": "bfloat16",
            "text_config": {**text, "architectures": [inner]},
            "vision_config": {"model_type": "clip_vision_model", "hidden_size": 1024, "intermediate_size": 4096,
                              "num_hidden_layers": 24, "num_attention_heads": 16, "patch_size": 14,
                              "image_size": 336}}


# KimiLinearForCausalLM is listed from 0.27 (0.27.0:1213-1230; 0.29.0:75-96, 0.33.0:76-107 too), here nested alone
INNER_LISTED = _wrapper("LlavaForConditionalGeneration", "KimiLinearForCausalLM")
# MuseSparkForConditionalGeneration is listed from 0.33 (0.33.0:76-107), here top-level over an unlisted inner class
TOP_LISTED = _wrapper("MuseSparkForConditionalGeneration", "LlamaForCausalLM")


def _term(plan: dict) -> dict:
    return next(t for t in plan["budget"]["terms"] if t["name"] == "cuda_graphs")


def _graphs(tmp_path, config: dict, engine: str, *args) -> tuple:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    plan = estimate_plan(path, "--engine", engine, "--gpu", "H100", "--max-model-len", "8192", *args)
    return _term(plan)["bytes"], _term(plan)["source"], plan["kv_budget_bytes_per_gpu"]


def test_a_nested_listed_name_is_not_read_before_034():
    """0.27-0.33 check the top-level ["LlavaForConditionalGeneration"] alone: off. 0.34 reads the text config's
    ["KimiLinearForCausalLM"] too: on. Before: on from 0.27 (spec.architecture is the nested name)."""
    spec = parse_config(INNER_LISTED, "m")
    assert [enabled(spec, v) for v in ("0.26.0", "0.27.0", "0.29.0", "0.33.0", "0.34.0")] == \
        [False, False, False, False, True]


def test_a_top_level_listed_name_is_read_whatever_the_nested_one():
    """MuseSparkForConditionalGeneration is model_config.architectures[0] from 0.33 on: on in 0.33 and 0.34, off in
    0.32 (not listed: 0.32.0:74-103). Before: off everywhere (only the nested LlamaForCausalLM was read)."""
    spec = parse_config(TOP_LISTED, "m")
    assert [enabled(spec, v) for v in ("0.32.0", "0.33.0", "0.34.0")] == [False, True, True]


def test_the_graph_term_follows_the_names_vllm_reads(tmp_path):
    """PIECEWISE below VLLM_COMPILE on 0.33: without breakable graphs vLLM turns it NONE (0.33.0:1129-1149,
    without_piecewise) and captures nothing (term 0); with them it stays PIECEWISE, captured (term 0.705 GiB).
    Before (H100, 8,192 tokens): the Llava wrapper over KimiLinear got GRAPH_TERM (budget 58,303,899,895), the
    MuseSpark wrapper 0 (59,060,887,880); after, the other way round, each budget moved by GRAPH_TERM alone."""
    inner = _graphs(tmp_path, INNER_LISTED, "vllm==0.33.0", "-cc", PIECEWISE_UNCOMPILED)
    top = _graphs(tmp_path, TOP_LISTED, "vllm==0.33.0", "-cc", PIECEWISE_UNCOMPILED)
    assert inner[0] == 0 and "breakable" not in inner[1]
    assert top[0] == GRAPH_TERM and "on by default for MuseSparkForConditionalGeneration;" in top[1]
    assert inner[2] - top[2] == GRAPH_TERM
    on_034 = _graphs(tmp_path, INNER_LISTED, "vllm==0.34.0", "-cc", PIECEWISE_UNCOMPILED)
    assert on_034[0] == GRAPH_TERM and "on by default for KimiLinearForCausalLM;" in on_034[1]


# ---- verify's graph decision and the budget's, for every combination -----------------------------------------------

MODELS = ("Qwen/Qwen3-8B", "Qwen/Qwen3.5-9B", "moonshotai/Kimi-Linear-48B-A3B-Instruct")
RELEASES = ("0.22.0", "0.27.0", "0.29.0", "0.30.0", "0.33.0", "0.34.0")
FLAGS = ((), ("-cc", PIECEWISE_UNCOMPILED), ("-cc", '{"mode": "NONE", "cudagraph_mode": "FULL_AND_PIECEWISE"}'),
         ("-cc", '{"mode": "NONE"}'), ("-cc", '{"splitting_ops": []}'),
         ("-cc", '{"splitting_ops": [], "cudagraph_mode": "PIECEWISE"}'),
         ("-cc", '{"pass_config": {"fuse_attn_quant": true}}'), ("-O0",), ("--enforce-eager",))


def _breakable(model: str, release: str, gpu: str) -> bool:
    """By hand from the lists: Qwen3ForCausalLM never; Qwen3_5ForConditionalGeneration on CUDA from 0.34
    (0.34.0:88-97, 154-157); KimiLinearForCausalLM from 0.27 on any platform (inline lists, 0.29's ROCm set less
    DeepSeek-V3.2 alone: 0.29.0:98-107), from 0.30 on CUDA alone (ROCm: DeepseekV41ForCausalLM, 0.30.0:108-120)."""
    rocm, minor = gpu.startswith("MI"), int(release.split(".")[1])
    if model == "Qwen/Qwen3.5-9B":
        return minor >= 34 and not rocm
    if model.startswith("moonshotai"):
        return minor >= 27 and not (rocm and minor >= 30)
    return False


def _graphs_off(model: str, release: str, gpu: str, args: tuple) -> bool:
    """vLLM's decision by hand (config/vllm.py 0.34.0 order: --enforce-eager NONE :1697-1699; breakable graphs set
    the mode NONE and skip the without-piecewise rule :1724, :1050-1070; -O0's default mode NONE; the NONE rule
    without breakable graphs: 0.13-0.29 every piecewise mode NONE, 0.30+ without_piecewise, PIECEWISE NONE and
    FULL_AND_PIECEWISE FULL_DECODE_ONLY; splitting_ops [] and fuse_attn_quant under VLLM_COMPILE alone,
    compilation.py 0.34.0:1321-1399: FULL_AND_PIECEWISE FULL, PIECEWISE NONE)."""
    given = args[-1] if args else ""
    if given in ("--enforce-eager", "-O0"):
        return True
    uncompiled = '"mode": "NONE"' in given
    if _breakable(model, release, gpu):
        return False  # the mode given (FULL_AND_PIECEWISE where none) is captured, whatever the compilation mode
    if uncompiled:  # PIECEWISE given: NONE; FULL_AND_PIECEWISE (given, or -O2's default): NONE before 0.30
        piecewise_only = '"cudagraph_mode": "PIECEWISE"' in given
        return piecewise_only or int(release.split(".")[1]) < 30
    return given == '{"splitting_ops": [], "cudagraph_mode": "PIECEWISE"}'


@pytest.mark.parametrize("model", MODELS)
def test_verify_and_the_budget_decide_the_graphs_alike(model):
    """For each release, flag set and GPU (H100, MI300X): the budget's graph term says no graph where verify's
    graph_flags (verify/planned.py) runs eager, and both say what vLLM does (_graphs_off, by hand)."""
    spec, table = resolve(model), []
    for release in RELEASES:
        for args in FLAGS:
            for gpu in ("H100", "MI300X"):
                term = _term(estimate_plan(model, "--engine", f"vllm=={release}", "--gpu", gpu, "--max-model-len",
                                           "8192", *args))
                cc = args[1] if args[:1] == ("-cc",) else None
                flags = EngineFlags(compilation_config=cc, optimization_level="0" if args == ("-O0",) else None,
                                    enforce_eager=args == ("--enforce-eager",))
                opts = Options(tp=1, context=8192, kv_dtype="auto", gpu_util=None, block_size=None,
                               max_num_seqs=None, max_num_batched_tokens=None, engine=f"vllm=={release}",
                               flags=flags)
                table.append(((release, args, gpu), any(w in term["source"] for w in OFF_WORDS),
                              graph_flags(spec, opts, find_gpu(gpu)).graphs_off, _graphs_off(model, release, gpu,
                                                                                              args)))
    assert [row for row in table if not row[1] == row[2] == row[3]] == []


# ---- the graph view: no memo ----------------------------------------------------------------------------------------

def test_the_graph_view_keeps_no_spec_alive():
    """graph_view made one view a (flags, spec) and held both in a module dict (256 entries) for identity memos that
    no caller keys on (vllm_engine's plan memo keys on the engine's own flags). Timed on a 24-plan sweep of
    Kimi-Linear and DeepSeek-V4-Flash (-tp 1,2,4,8 x 3 lengths x 2 KV dtypes, --batch 1,8,64): 0.26-0.29 s cold and
    0.046-0.070 s warm with it and without it alike (113 calls, 34 views made). Without the dict a spec planned once
    is not kept by it."""
    spec = parse_config(TOP_LISTED, "m")
    flags = EngineFlags()
    view = graph_view(flags, spec, "0.34.0")
    assert view.breakable and view is not flags
    held = weakref.ref(spec)
    del spec
    gc.collect()
    assert held() is None
