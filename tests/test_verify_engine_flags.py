"""`kvplan verify` with the engine flags it honours (commands/verify.py verify_flags, carried on gpu/rank.py Options):
--enforce-eager, --max-cudagraph-capture-size / --cudagraph-capture-sizes, --enable-prefix-caching /
--no-enable-prefix-caching, --mamba-block-size, --disable-sliding-window and --mamba-cache-dtype /
--mamba-ssm-cache-dtype (refused where they would split a state that verify's forward holds in one tensor).

Without a GPU: the plan verify judges (its Options resolved and planned on the catalog's H100, as gpu/verify_run.py
plans on the detected GPU) against estimate's plan for the same flags; the sizes verify captures, by hand from vLLM
0.32.0's rules; bad values refused before torch loads. The GPU tests at the end skip without CUDA."""

import copy
import json

import pytest

from conftest import ROOT, one_error_line, run_kvplan
from tiny_models import TINY
from kvplan import api
from kvplan.engines import EngineFlags
from kvplan.engines.vllm_cache_flags import with_cache_flags
from kvplan.errors import FieldError, KvplanError
from kvplan.model import parse_config
from kvplan.model.sources import resolve
from kvplan.plan.catalog import find_gpu
from kvplan.verify.arch import architecture
from kvplan.verify.judge import judge_decode

LLAMA_8B, GPT_OSS, NEMOTRON = "meta-llama/Llama-3.1-8B-Instruct", "openai/gpt-oss-20b", "nvidia/Nemotron-H-8B-Base-8K"
JAMBA, GEMMA4 = "ai21labs/AI21-Jamba-1.5-Mini", "google/gemma-4-E4B-it"
GRAPH_TERM = 756_987_985  # int(0.705 x 1,073,741,824): vLLM's CUDA-graph term (>= 0.20) where graphs are captured


class NoGpu(KvplanError):
    """What import_stack raises here in place of the missing GPU: the first step after the flags are checked."""


@pytest.fixture
def options(monkeypatch):
    """verify(model, **keywords) -> the gpu/rank.py Options and spec it hands the GPU run (nothing runs on a GPU)."""
    from kvplan.commands.verify import verify
    from kvplan.gpu import nvml, tp, verify_run

    handed = []
    monkeypatch.setattr(nvml, "import_stack", lambda: (None, None))
    monkeypatch.setattr(verify_run, "verify_rank", lambda spec, raw, opts, progress: handed.append((spec, opts)) or {})
    monkeypatch.setattr(tp, "verify_group", lambda spec, raw, opts, progress: handed.append((spec, opts)) or {})

    def run(model, **keywords):
        handed.clear()
        verify(model, **keywords)
        return handed[0]

    return run


def verify_plan(spec, opts):
    """The plan verify judges on the catalog's H100 (gpu/verify_run.py: resolve_options, then predicted_plan)."""
    from kvplan.gpu import rank as R

    gpu = find_gpu("H100")
    resolved = R.resolve_options(spec, opts, gpu, gpu.memory_bytes)
    return R.predicted_plan(spec, resolved, gpu, gpu.memory_bytes), resolved


def figures(plan) -> tuple:
    graphs = next(t for t in plan.budget.terms if t.name == "cuda_graphs")
    return (plan.max_concurrency, plan.block_size, plan.kv_blocks, plan.kv_budget_bytes_per_gpu, graphs.bytes,
            graphs.source)


def estimate_figures(model, context, tp=1, engine="vllm", **flags):
    (plan,) = api.estimate(model, max_model_len=context, tensor_parallel_size=tp, gpu="H100", engine=engine, **flags)
    return figures(plan)


# ---- the plan verify judges is estimate's plan for the same flags -------------------------------------------------

CASES = [
    (LLAMA_8B, 8192, 1, "vllm", {}),
    (LLAMA_8B, 8192, 1, "vllm", {"enforce_eager": True}),
    (LLAMA_8B, 8192, 1, "vllm", {"max_cudagraph_capture_size": 8}),
    (LLAMA_8B, 8192, 1, "vllm==0.34.0", {"enforce_eager": True}),
    (GPT_OSS, 128, 1, "vllm", {"disable_sliding_window": True}),
    (GPT_OSS, 8192, 1, "vllm", {"cudagraph_capture_sizes": (1, 2, 4, 8, 16)}),
    (NEMOTRON, 8192, 1, "vllm", {"enable_prefix_caching": False}),
    (NEMOTRON, 8192, 1, "vllm", {"enable_prefix_caching": True}),
    (JAMBA, 8192, 2, "vllm==0.20.0", {"enable_prefix_caching": True, "mamba_block_size": 512}),
    (JAMBA, 8192, 2, "vllm==0.20.0", {"enable_prefix_caching": True}),
]


@pytest.mark.parametrize("model, context, tp, engine, flags", CASES)
def test_verify_plans_as_estimate(options, model, context, tp, engine, flags):
    """Max concurrency, block size, KV blocks and budget, and the graph term (bytes and what it captures) alike."""
    spec, opts = options(model, context=context, tp=tp, engine=engine, **flags)
    plan, _ = verify_plan(spec, opts)
    assert figures(plan) == estimate_figures(model, context, tp, engine, **flags)


def test_enforce_eager_plans_no_graph_term(options):
    """vLLM 0.32 sets cudagraph_mode NONE and no capture sizes under --enforce-eager (config/vllm.py 0.32.0:1928-1932)
    and its worker then estimates no graph memory (v1/worker/gpu_worker.py 0.32.0:700-704): the 0.705 GiB term
    (756,987,985 bytes) goes, and the KV budget is that much larger."""
    spec, opts = options(LLAMA_8B, context=8192, enforce_eager=True)
    eager, _ = verify_plan(spec, opts)
    default, _ = verify_plan(*options(LLAMA_8B, context=8192))
    assert opts.flags.enforce_eager and eager.budget.cuda_graph_bytes == 0
    assert default.budget.cuda_graph_bytes == GRAPH_TERM
    assert eager.kv_budget_bytes_per_gpu - default.kv_budget_bytes_per_gpu == GRAPH_TERM


def _captured(spec, opts, sm100=False):
    """The decode sizes verify captures for these options (gpu/rank.py measure_terms' call)."""
    from kvplan.verify.terms import capture_sizes

    _, resolved = verify_plan(spec, opts)
    return capture_sizes(f"{opts.engine.split('==')[-1]}", resolved.max_num_seqs, resolved.max_num_batched_tokens,
                         sm100, spec.architecture or "", opts.flags.max_cudagraph_capture_size,
                         opts.flags.cudagraph_capture_sizes)


def test_max_capture_size_8_captures_1_2_4_8(options):
    """config/vllm.py 0.32.0:2466-2485: 1, 2, 4, then every 8 from 8 up to the cap: [1, 2, 4, 8] (the 8,192 batched
    tokens are above the cap, so not added); every one within max_num_seqs 1,024, so a FULL decode graph each
    (v1/cudagraph_dispatcher.py 0.32.0:205-220). The plan's graph term counts the same captures."""
    spec, opts = options(LLAMA_8B, context=8192, max_cudagraph_capture_size="8")
    assert opts.flags.max_cudagraph_capture_size == 8
    assert _captured(spec, opts) == [1, 2, 4, 8]
    plan, _ = verify_plan(spec, opts)
    assert "PIECEWISE=4 (largest=8), FULL=4 (largest=8)" in figures(plan)[-1]


def test_capture_sizes_within_max_num_seqs(options):
    """--cudagraph-capture-sizes taken as given below max_num_batched_tokens (config/vllm.py 0.32.0:2453-2465), the
    FULL decode graphs only at sizes up to max_num_seqs (8 here): 1, 2, 4, 8 of 1, 2, 4, 8, 16."""
    spec, opts = options(LLAMA_8B, context=8192, cudagraph_capture_sizes="1 2 4 8 16", max_num_seqs=8)
    assert _captured(spec, opts) == [1, 2, 4, 8]
    plan, _ = verify_plan(spec, opts)
    assert "PIECEWISE=5 (largest=16), FULL=4 (largest=8)" in figures(plan)[-1]


def test_gpt_oss_hook_and_the_flag(options):
    """gpt-oss's config hook raises the cap to 1,024 tokens where no capture flag is given (model_executor/models/
    config.py 0.32.0:471-483): 1, 2, 4, 31 sizes 8..248, 49 sizes 256..1,024 = 83, all within max_num_seqs 1,024
    (H100's default); --max-cudagraph-capture-size 8 is taken instead of it: 1, 2, 4, 8."""
    assert len(_captured(*options(GPT_OSS, context=8192))) == 3 + 31 + 49
    assert _captured(*options(GPT_OSS, context=8192, max_cudagraph_capture_size=8)) == [1, 2, 4, 8]


def test_enforce_eager_captures_nothing(options):
    """The graphs record verify writes where none is captured (gpu/rank.py no_graphs): no sizes, 0 bytes."""
    from kvplan.gpu.rank import no_graphs

    _, opts = options(LLAMA_8B, context=8192, enforce_eager=True)
    graphs = no_graphs(opts.flags)
    assert graphs["sizes"] == [] and graphs["bytes"] == 0 and graphs["eager"] and "--enforce-eager" in graphs["why"]


def test_largest_graph_under_the_flag():
    """The most tokens a captured graph holds: 8 with --max-cudagraph-capture-size 8; 512 by default at max_num_seqs
    1,024 (min(2 x 1,024, 512), config/vllm.py 0.32.0:2354-2364), so a decode step of 600 runs without a graph."""
    from kvplan.gpu.verify_run import ungraphed_batches_note
    from kvplan.verify.terms import largest_graph

    assert largest_graph("0.32.0", 1024, 8192, max_capture_size=8) == 8
    assert largest_graph("0.32.0", 1024, 8192) == 512
    (note,) = ungraphed_batches_note({"largest_graph_tokens": 512}, [1, 600])
    assert "decode batch 600 is above every CUDA graph vLLM captures (the largest holds 512 tokens)" in note
    assert ungraphed_batches_note({"sizes": [], "bytes": 0}, [1, 600]) == []  # eager: no graph, no note


# ---- prefix caching and the Mamba block: the pools follow the plan's block ----------------------------------------

def test_pools_take_the_plans_block(options):
    """The pools are laid out at the engine plan's block (gpu/rank.py pool_plan, as allocate_pools lays them out):
    Nemotron-H's hybrid block (1,040 tokens in 0.32) and Jamba's "all"-mode block under --mamba-block-size 512 in
    0.20 (the lowest multiple of lcm(512, 16) whose attention page holds one Mamba state, platforms/interface.py
    0.20.0:568-595: at tp 2, 4 KV heads x 128 x 2 x 2 bytes = 2,048 a token, 1 MiB a 512-token page, against a state
    of (4,096 x 3 + 4,096 x 16) x 2 = 155,648 bytes: 512), one state slot a sequence."""
    from kvplan.gpu import rank as R
    from kvplan.verify.layout import cache_layout

    for model, tp, engine, flags, block in ((NEMOTRON, 1, "vllm", {}, 1040),
                                            (JAMBA, 2, "vllm==0.20.0",
                                             {"enable_prefix_caching": True, "mamba_block_size": 512}, 512)):
        spec, opts = options(model, context=8192, tp=tp, engine=engine, **flags)
        plan, resolved = verify_plan(spec, opts)
        assert plan.block_size == block
        layout = cache_layout(spec, R.pool_plan(spec, resolved, plan.kv_budget_bytes_per_gpu, plan.block_size))
        assert layout.block_size == block
        assert {g.blocks_per_sequence for g in layout.groups if g.kind == "linear"} == {1}


def test_prefix_caching_changes_nemotron_h(options):
    """0.32 keeps Nemotron-H's states in "align" mode with prefix caching on (its default from 0.28): 2 state pages
    and a prefill checkpoint a request (vllm_specs.py), one with it off, so one request more fits with it off.
    At 4,096 tokens on the H100 (8,192 until session 67: with the 0.705 GiB graph term both settings hold 246 there):
    budget 58,254,704,968 + 585,189,295 = 58,839,894,263 // 17,039,360 a 1,040-token block (4 attention layers x 2
    x 8 x 128 x 2 B x 1,040) = 3,453 blocks, 3,452 usable. Off: 4 attention blocks + 6 Mamba groups x 1 = 10 a
    request, (3,452 - 10) // 10 + 1 = 345. On: the first request's prefill holds 4 + 6 x 2 (its state and the
    checkpoint at 3,120 tokens) = 16 before it settles to 10, (3,452 - 16) // 10 + 1 = 344. The startup counts
    4 + 6 x 3 = 22 blocks a request with it on (3,453 / 22 = 156.95x), 10 with it off (345.3x)."""
    on, _ = verify_plan(*options(NEMOTRON, context=4096))
    off, _ = verify_plan(*options(NEMOTRON, context=4096, enable_prefix_caching=False))
    assert (on.kv_blocks, on.engine.blocks_per_request, off.engine.blocks_per_request) == (3453, 22, 10)
    assert (on.max_concurrency, off.max_concurrency) == (344, 345)
    assert off.max_concurrency == on.max_concurrency + 1


# ---- --disable-sliding-window: the forward's layers attend in full ------------------------------------------------

def test_gpt_oss_forward_loses_its_windows(options):
    """gpt-oss slides every other layer over 128 tokens (gpt_oss.py 0.32.0:176); the flag clears the window
    (config/model.py 0.32.0:901-904), so every layer of the rank verify builds attends in full, and the length is
    capped at 128."""
    raw = []
    spec = resolve(GPT_OSS, raw_out=raw)
    assert sum(layer.window == 128 for layer in architecture(raw[0], spec, 1).layers) == 12
    flagged, opts = options(GPT_OSS, context=128, disable_sliding_window=True)
    assert all(layer.window is None for layer in architecture(raw[0], flagged, 1).layers)
    assert flagged.max_position_embeddings == 128 and opts.flags.disable_sliding_window


def test_gemma3_sliding_layers_keep_their_local_theta():
    """vLLM picks a Gemma 3 layer's RoPE by its layer type (gemma3.py 0.32.0:152-162), which the flag leaves alone:
    the tiny Gemma 3 (pattern 3: layers 0 and 1 sliding) keeps rope_local_base_freq 10,000 there and rope_theta
    1,000,000 on layer 2, every window gone."""
    spec = with_cache_flags(parse_config(TINY["gemma3"], "g"), EngineFlags(disable_sliding_window=True))
    layers = architecture(TINY["gemma3"], spec, 1).layers
    assert [layer.window for layer in layers] == [None, None, None]
    assert [layer.rope_theta for layer in layers] == [10_000.0, 10_000.0, 1_000_000.0]


def test_gemma4_shared_layers_read_in_full(options):
    """Gemma 4 E4B's 18 KV-sharing layers attend as their targets; vLLM clears the one sliding_window every layer
    reads (gemma4.py 0.32.0:449-451), so they lose their 512-token window with the layers they read."""
    raw = []
    spec = resolve(GEMMA4, raw_out=raw)
    shared = [i for i, layer in enumerate(spec.layers) if layer.kind == "shared"]
    assert len(shared) == 18 and any(spec.layers[i].window == 512 for i in shared)
    flagged, _ = options(GEMMA4, context=512, disable_sliding_window=True)
    assert all(flagged.layers[i].window is None for i in shared)
    assert all(layer.window is None for layer in architecture(raw[0], flagged, 1).layers)


def test_disable_sliding_window_refused_where_not_modelled():
    r = run_kvplan("verify", "google/gemma-3n-E2B", "--disable-sliding-window")
    assert "--disable-sliding-window is not modelled for google/gemma-3n-E2B" in one_error_line(r)


# ---- the Mamba state dtypes: what verify's pools can hold -----------------------------------------------------------

QWEN_NEXT = "Qwen/Qwen3-Next-80B-A3B-Thinking"


@pytest.mark.parametrize("model, args, flag, conv, ssm", [
    (JAMBA, ("--mamba-ssm-cache-dtype", "float32"), "--mamba-ssm-cache-dtype float32", "bfloat16", "float32"),
    (JAMBA, ("--mamba-cache-dtype", "float16", "--mamba-ssm-cache-dtype", "float32", "--engine", "vllm==0.20.0"),
     "--mamba-ssm-cache-dtype float32", "float16", "float32")])
def test_two_state_dtypes_refused_on_a_one_pool_mixer(no_gpu, model, args, flag, conv, ssm):
    """Jamba's Mamba-1 layers read both flags (mamba_utils.py 0.32.0:97-110): the states in two dtypes, which verify's
    one-tensor forward of that mixer does not hold (verify/layout.py splits): refused before the GPU, naming the
    flag."""
    line = one_error_line(run_kvplan("verify", model, "-tp", "4", *args))
    assert line.startswith(f"kvplan: error: {flag} is not run by verify for {model}")
    assert f"convolution state in {conv} and SSM state in {ssm}" in line


@pytest.mark.parametrize("model, tp, flags", [
    (NEMOTRON, 1, {"mamba_cache_dtype": "float32"}),  # both float32 (the handler's SSM default, 0.20+): one pool
    (NEMOTRON, 1, {"mamba_ssm_cache_dtype": "bfloat16"}),  # both bfloat16: one pool
    (NEMOTRON, 1, {"mamba_cache_dtype": "float16", "mamba_ssm_cache_dtype": "float32"}),  # Mamba-2: two tensors
    (JAMBA, 2, {"mamba_cache_dtype": "float32"}),  # 'auto' SSM follows the convolution state: one float32 pool
    (NEMOTRON, 1, {"mamba_ssm_cache_dtype": "auto"}),
])
def test_state_dtypes_verify_lays_out(options, model, tp, flags):
    """Taken, and planned as estimate plans them; the pools (gpu/rank.py pool_plan) hold the plan's state bytes."""
    from kvplan.gpu import rank as R
    from kvplan.verify.layout import cache_layout, served_spec

    spec, opts = options(model, context=8192, tp=tp, **flags)
    plan, resolved = verify_plan(spec, opts)
    assert figures(plan) == estimate_figures(model, 8192, tp, **flags)
    served = served_spec(spec, R.plan_engine(spec, opts), find_gpu("H100"))
    layout = cache_layout(served, R.pool_plan(served, resolved, plan.kv_budget_bytes_per_gpu, plan.block_size))
    assert layout.allocated_bytes == layout.predicted_bytes


def test_nemotron_h_float16_window_beside_a_float32_state(options):
    """Mamba-2 slots as two tensors (verify/layout.py, gpu/mamba.py): the window in float16, the state in float32.
    Nemotron-H-8B by hand: 24 Mamba-2 layers, a window of 3 x (8,192 + 2 x 8 x 128) = 30,720 values and a state of
    128 x 64 x 128 = 1,048,576 values a layer."""
    from kvplan.gpu import rank as R
    from kvplan.verify.layout import cache_layout, served_spec

    spec, opts = options(NEMOTRON, context=8192, mamba_cache_dtype="float16", mamba_ssm_cache_dtype="float32")
    served = served_spec(spec, R.plan_engine(spec, opts), find_gpu("H100"))
    plan, resolved = verify_plan(spec, opts)
    assert plan.state_bytes_per_sequence_per_gpu == 24 * (30_720 * 2 + 1_048_576 * 4)
    layout = cache_layout(served, R.pool_plan(served, resolved, plan.kv_budget_bytes_per_gpu, plan.block_size))
    (state,) = [g for g in layout.groups if g.kind == "linear"]
    assert state.dtypes == ("fp16", "fp32")


def test_state_dtype_no_layer_reads(options):
    """Kimi Delta Attention keeps its recurrent state in float32 whatever --mamba-ssm-cache-dtype says (kda.py
    0.20.0:95-97), and gated DeltaNet reads it only from 0.17 (mamba_utils.py 0.16.0:79-85): nothing splits, so
    verify takes it; a model without state layers takes either."""
    _, opts = options("moonshotai/Kimi-Linear-48B-A3B-Instruct", context=8192, tp=4, mamba_ssm_cache_dtype="float32")
    assert opts.flags.mamba_ssm_cache_dtype == "float32"
    _, opts = options(QWEN_NEXT, context=8192, tp=4, engine="vllm==0.16.0", mamba_ssm_cache_dtype="float32")
    assert opts.flags.mamba_ssm_cache_dtype == "float32"
    _, opts = options(LLAMA_8B, context=8192, mamba_cache_dtype="float32")
    assert opts.flags.mamba_cache_dtype == "float32"


# ---- bad values: one line, before torch (and before the missing GPU) ------------------------------------------------

BAD = [
    (("--max-cudagraph-capture-size", "0"), "--max-cudagraph-capture-size '0' is not a positive whole number"),
    (("--cudagraph-capture-sizes", "1,,2"), "--cudagraph-capture-sizes '1,,2' is not a list of positive token"),
    (("--cudagraph-capture-sizes", "1", "2", "4"), "--cudagraph-capture-sizes takes one argument here, but 2 4"),
    (("--max-cudagraph-capture-size", "8", "--cudagraph-capture-sizes", "1,2,4"),
     "--max-cudagraph-capture-size 8 is not one of --cudagraph-capture-sizes (1, 2, 4)"),
    (("--max-cudagraph-capture-size", "8", "--cudagraph-capture-sizes", "1,2,4,8,16", "--max-num-batched-tokens",
      "2048"), ("--max-cudagraph-capture-size 8 is not the largest of --cudagraph-capture-sizes within "
                 "--max-num-batched-tokens 2048, which keeps 16 as the largest")),
    (("--max-cudagraph-capture-size", "8", "--engine", "vllm==0.11.0"),
     "--max-cudagraph-capture-size is not a flag of vLLM 0.11.0"),
    (("--mamba-block-size", "0"), "--mamba-block-size must be a whole number of tokens above 0"),
    (("--mamba-cache-dtype", "float64"), "--mamba-cache-dtype must be one of auto, float32, float16, bfloat16"),
    (("--mamba-ssm-cache-dtype", "bfloat16", "--engine", "vllm==0.12.0"),
     "--mamba-ssm-cache-dtype bfloat16 is not a choice of vLLM 0.12.0"),
    (("--disable-sliding-window", "--engine", "vllm==0.10.0"), "--disable-sliding-window is modelled from vLLM 0.11"),
]


@pytest.fixture
def no_gpu(monkeypatch):
    """import_stack answers as a machine without a GPU would, here and on a GPU machine alike."""
    from kvplan.gpu import nvml

    def missing():
        raise NoGpu("kvplan verify needs a CUDA GPU (stand-in).")

    monkeypatch.setattr(nvml, "import_stack", missing)


@pytest.mark.parametrize("args, said", BAD)
def test_bad_value_one_line_before_the_gpu(no_gpu, args, said):
    line = one_error_line(run_kvplan("verify", "meta-llama/Llama-3.2-1B-Instruct", *args))
    assert said in line and "needs a CUDA GPU" not in line


def test_prefix_pair_refused_before_the_gpu(no_gpu):
    """--mamba-block-size with prefix caching off: vLLM's VllmConfig.validate_mamba_block_size (config/vllm.py
    0.32.0:3314) refuses it unless it is max_model_len; Jamba starts 0.20 with prefix caching off (a hybrid,
    arg_utils.py 0.20.0), so the flag alone is refused too."""
    line = one_error_line(run_kvplan("verify", NEMOTRON, "--mamba-block-size", "256", "--no-enable-prefix-caching"))
    assert "--mamba-block-size is refused by vLLM 0.32.0 with prefix caching off" in line
    line = one_error_line(run_kvplan("verify", JAMBA, "-tp", "2", "--mamba-block-size", "256", "--engine",
                                     "vllm==0.20.0"))
    assert "starts this model with prefix caching off: add --enable-prefix-caching" in line


@pytest.mark.parametrize("args", [("--enforce-eager",), ("--max-cudagraph-capture-size", "8"),
                                  ("--cudagraph-capture-sizes", "1 2 4 8"), ("--disable-sliding-window",),
                                  ("--no-enable-prefix-caching",), ("--enable-prefix-caching", "--mamba-block-size",
                                                                     "64")])
def test_good_values_reach_the_gpu_check(no_gpu, args):
    line = one_error_line(run_kvplan("verify", "meta-llama/Llama-3.2-1B-Instruct", "-c", "2048", *args))
    assert line == "kvplan: error: kvplan verify needs a CUDA GPU (stand-in)."


def test_eager_takes_any_capture_pair(no_gpu):
    """--enforce-eager empties both capture settings before vLLM compares them (config/vllm.py 0.32.0:1928-1932, ahead
    of _set_cudagraph_sizes): a pair that disagrees is no refusal then, in estimate or verify."""
    pair = ("--max-cudagraph-capture-size", "8", "--cudagraph-capture-sizes", "1,2,4")
    line = one_error_line(run_kvplan("verify", "meta-llama/Llama-3.2-1B-Instruct", "--enforce-eager", *pair))
    assert line.endswith("needs a CUDA GPU (stand-in).")
    assert run_kvplan("estimate", "meta-llama/Llama-3.2-1B-Instruct", "--enforce-eager", *pair).returncode == 0


@pytest.mark.parametrize("keywords, field", [
    ({"max_cudagraph_capture_size": 0}, "max_cudagraph_capture_size"),
    ({"cudagraph_capture_sizes": [1, -2]}, "cudagraph_capture_sizes"),
    ({"enforce_eager": "yes"}, "enforce_eager"), ({"disable_sliding_window": 1}, "disable_sliding_window"),
    ({"enable_prefix_caching": "on"}, "enable_prefix_caching"), ({"mamba_block_size": 2.5}, "mamba_block_size"),
    ({"mamba_cache_dtype": "fp32"}, "mamba_cache_dtype"),
    ({"max_cudagraph_capture_size": 8, "cudagraph_capture_sizes": [1, 2, 4]}, "max_cudagraph_capture_size")])
def test_api_raises_field_error_before_the_gpu(no_gpu, keywords, field):
    """The keywords checked as kvplan.api.estimate checks them (the same message), before the GPU."""
    from kvplan.commands.verify import verify

    with pytest.raises(FieldError) as raised:
        verify("meta-llama/Llama-3.2-1B-Instruct", context=2048, **keywords)
    assert raised.value.field == field
    if field != "max_cudagraph_capture_size" or len(keywords) == 1:
        with pytest.raises(FieldError) as estimated:
            api.estimate("meta-llama/Llama-3.2-1B-Instruct", max_model_len=2048, **keywords)
        assert estimated.value.problem == raised.value.problem


def test_help_names_the_flags():
    r = run_kvplan("verify", "--help", env={"COLUMNS": "200"})
    flat = " ".join(r.stdout.split())
    for flag in ("--enforce-eager", "--max-cudagraph-capture-size", "--cudagraph-capture-sizes",
                 "--enable-prefix-caching", "--no-enable-prefix-caching", "--mamba-block-size",
                 "--disable-sliding-window", "--mamba-cache-dtype", "--mamba-ssm-cache-dtype"):
        assert flag in flat
    assert "verify captures none and times decode eagerly" in flat
    assert "Verify refuses a pair its forward holds in one tensor" in flat


# ---- the result: eager decode said, not judged against a graph's estimate ------------------------------------------

def test_eager_points_are_not_judged():
    points = [{"batch": 1, "measured_ms": 9.0, "estimate_ms": 5.0, "roofline_ms": 4.0, "eager": True},
              {"batch": 8, "measured_ms": 10.0, "estimate_ms": 6.0, "roofline_ms": 5.0, "eager": True}]
    within, reason = judge_decode(points)
    assert within is None and reason.startswith("not judged: the step ran eagerly")
    assert "batch 1: 9.000 ms (estimate 5.000 ms)" in reason
    graphed = [dict(p, eager=False) for p in points]
    assert judge_decode(graphed)[0] is False  # the same times in a graph are judged (and miss)


def _recorded_eager():
    """A 0.32 result recorded on an H200 (DeepSeek-V3), rewritten as --enforce-eager would leave it."""
    from kvplan.gpu.rank import no_graphs

    with open(ROOT / "benchmarks" / "device_runs" / "early" / "verify_h200_2026-12-04_s41_call1.jsonl") as handle:
        r = copy.deepcopy(next(r["result"] for r in map(json.loads, handle) if r["result"]))
    r["graphs"] = no_graphs(EngineFlags(enforce_eager=True))
    r["options"]["engine_flags"] = {"enforce_eager": True, "enable_prefix_caching": False}
    for p in r["decode"]["points"]:
        p.update(eager=True, method="eager launches (--enforce-eager, as vLLM runs it), CUDA events, median")
    return r


def test_eager_result_renders():
    from kvplan.commands.verify import VerifyResult
    from kvplan.render import emit

    r = _recorded_eager()
    text = emit(VerifyResult(r), "table")
    flat = " ".join(text.split())
    assert "Decode graphs: none captured (--enforce-eager: vLLM captures no CUDA graph" in flat
    assert "Decode step (whole forward, eager: --enforce-eager), ms" in flat
    assert "max_num_batched_tokens 8,192, --enforce-eager, --no-enable-prefix-caching." in flat
    assert max(len(line) for line in text.splitlines()) <= 100
    data = json.loads(emit(VerifyResult(r), "json"))
    assert data["graphs"]["sizes"] == [] and data["options"]["engine_flags"]["enforce_eager"] is True


def test_few_sizes_listed():
    from kvplan.render.verify import _graphs_line

    line = _graphs_line({"sizes": [8, 4, 2, 1], "bytes": 2**20, "pool_bytes": 2**20, "driver_bytes": 0,
                         "seconds": 0.1})
    assert line.startswith("Decode graphs: 4 sizes (8, 4, 2, 1), one pool")


# ---- on a GPU (skipped without CUDA): cheap runs of a 1B model ------------------------------------------------------

SMALL = "meta-llama/Llama-3.2-1B-Instruct"
FAST = dict(context=2048, gpu_util=0.3, max_num_seqs=8, max_num_batched_tokens=2048)


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _quiet():
    from rich.console import Console

    from kvplan.verify.progress import Progress

    return Progress(Console(quiet=True))


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU")
def test_gpu_enforce_eager():
    """No graph captured and none measured (0 bytes); decode timed eagerly at batch 1 and at max concurrency, and
    not judged against the graph-based estimate; the plan's graph term 0."""
    from kvplan.commands.verify import verify

    r = verify(SMALL, enforce_eager=True, progress=_quiet(), **FAST).result
    terms = {row["term"]: row for row in r["terms"]}
    assert r["graphs"]["sizes"] == [] and r["graphs"]["eager"]
    assert terms["cuda_graphs"]["measured_bytes"] == 0 and terms["cuda_graphs"]["predicted_bytes"] == 0
    assert r["decode"]["points"] and all(p["eager"] and p["measured_ms"] > 0 for p in r["decode"]["points"])
    assert r["verdict"]["decode_within"] is None and "ran eagerly" in r["verdict"]["decode_reason"]
    assert r["options"]["engine_flags"] == {"enforce_eager": True} and r["verdict"]["capacity_confirmed"]


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU")
def test_gpu_max_capture_size_8():
    """The decode graphs captured at 1, 2, 4 and 8 (config/vllm.py 0.32.0:2466-2485), their memory measured; the
    steps timed in graphs."""
    from kvplan.commands.verify import verify

    r = verify(SMALL, max_cudagraph_capture_size=8, progress=_quiet(), **FAST).result
    assert sorted(r["graphs"]["sizes"]) == [1, 2, 4, 8] and r["graphs"]["bytes"] > 0
    assert r["graphs"]["largest_graph_tokens"] == 8
    assert not any(p["eager"] for p in r["decode"]["points"])
    assert r["options"]["engine_flags"] == {"max_cudagraph_capture_size": 8}
