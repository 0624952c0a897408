"""The speed model's terms by hand arithmetic, one model per rule: Llama-3-8B (dense GQA), Mixtral-8x7B (routed
experts), gpt-oss-120b (MXFP4 experts, sliding windows), DeepSeek-V3 (MLA, fp8), Qwen3-Next (linear-attention
state). Constants of the engine estimate are set by hand here (SIMPLE): these tests check the arithmetic of each
term, tests/test_speed_calibration.py checks the fitted constants against the measurements."""

import math
from dataclasses import replace

import pytest

from kvplan.model.precision import PRECISIONS
from kvplan.model.sources import resolve
from kvplan.plan.catalog import COMPUTE, FITTED, SpeedProfile, find_gpu, speed_profile
from kvplan.plan.prefill import prefill
from kvplan.plan.speed import basis, decode, engine_ms
from kvplan.plan.work import _attended, decode_work, linear_flops, prefill_work, touched_share, weight_bytes_read

BF16 = PRECISIONS["bf16"]
SIMPLE = SpeedProfile("H100-80GB-SXM", COMPUTE["H100-80GB-SXM"],
                      replace(FITTED["H100-80GB-SXM"], layer_us=10.0, allreduce_us=5.0, gemm_efficiency=0.5,
                              prefill_efficiency=0.5), "H100-80GB-SXM", None)
BW = 3.35e12 * 0.89  # H100 SXM datasheet bandwidth x the achievable fraction


def spec_of(model):
    return resolve(model)


# ---- Llama-3-8B: dense, GQA 32/8, untied head ----------------------------------------------------------------

LLAMA_HEAD = 128256 * 4096  # lm_head parameters (embedding the same, not streamed)
LLAMA_ATTN = 32 * 4096 * 128 * (2 * 32 + 2 * 8)  # q, o: 32 heads; k, v: 8 heads; 128 dims
LLAMA_MLP = 32 * 3 * 4096 * 14336
LLAMA_NORMS = (2 * 32 + 1) * 4096


def test_llama3_8b_weights_read_leave_out_the_input_embedding():
    spec = spec_of("meta-llama/Meta-Llama-3-8B")
    read = weight_bytes_read(spec, 1, 1)
    assert "embed" not in read
    assert sum(read.values()) == 2 * (LLAMA_HEAD + LLAMA_ATTN + LLAMA_MLP + LLAMA_NORMS) == 15_009_849_344
    # the whole checkpoint is 16,060,522,496 bytes: the step reads all of it but the 1.05 GB embedding
    assert spec.weights.bytes - sum(read.values()) == 2 * LLAMA_HEAD
    # TP 2 halves everything but the replicated norms
    assert sum(weight_bytes_read(spec, 2, 1).values()) == (LLAMA_HEAD + LLAMA_ATTN + LLAMA_MLP) + 2 * LLAMA_NORMS


def test_llama3_8b_roofline_and_engine_terms_by_hand():
    spec = spec_of("meta-llama/Meta-Llama-3-8B")
    work = decode_work(spec, 1, BF16, 8192, 1)
    kv = 32 * 2 * 8 * 128 * 2 * 8192  # layers x (K+V) x heads x dim x bytes x tokens
    assert work.kv_bytes == kv == 1_073_741_824
    b = basis(work, BW, SIMPLE.compute)
    assert b.roofline_ms == pytest.approx((15_009_849_344 + kv) / BW * 1e3)
    assert b.roofline_ms == pytest.approx(5.3945, abs=1e-4)
    # matmuls: batch 1 pads to the 16-row MMA tile; attention q.K and p.V over 8192 tokens, 32 heads x 256 dims
    matmul = 2 * (LLAMA_HEAD + LLAMA_ATTN + LLAMA_MLP) * 16
    attention = 32 * 2 * 32 * 256 * 8192
    assert work.linear_flops == {"bf16": matmul} and work.attention_flops == attention
    assert b.peak_ms == pytest.approx((matmul + attention) / 989.4e12 * 1e3)
    assert (b.layer_units, b.allreduce_calls, b.allreduce_bytes_ms) == (32, 0, 0)
    # engine = roofline + 32 layers x 10 us + FLOPs at peak / 0.5
    assert engine_ms(b, 10, 5, 0.5) == pytest.approx(b.roofline_ms + 0.32 + 2 * b.peak_ms)


def test_llama3_8b_tile_padding_and_tp_terms():
    spec = spec_of("meta-llama/Meta-Llama-3-8B")
    rows = {batch: linear_flops(spec, 1, batch, batch)["bf16"] / (2 * (LLAMA_HEAD + LLAMA_ATTN + LLAMA_MLP))
            for batch in (1, 16, 17, 64)}
    assert rows == {1: 16, 16: 16, 17: 32, 64: 64}
    for tp, depth in ((2, 1), (4, 2), (8, 3)):
        b = basis(decode_work(spec, tp, BF16, 4096, 8), BW, SIMPLE.compute)
        assert b.allreduce_calls == 2 * 32 * depth  # two all-reduces per layer, latency x log2(tp)
        ring = 2 * (tp - 1) / tp  # bytes a ring all-reduce sends per byte reduced
        assert b.allreduce_bytes_ms == pytest.approx(64 * ring * 8 * 4096 * 2 / 450e9 * 1e3)


# ---- Mixtral-8x7B: 8 experts, 2 per token ------------------------------------------------------------------

MIXTRAL_EXPERTS = 32 * 8 * 3 * 4096 * 14336  # 32 layers x 8 experts x gate/up/down
MIXTRAL_ROUTER = 32 * 4096 * 8


def test_mixtral_routed_experts_read_by_touched_share_of_parameters():
    spec = spec_of("mistralai/Mixtral-8x7B-v0.1")
    assert spec.param_count("experts") == MIXTRAL_EXPERTS == 45_097_156_608
    assert weight_bytes_read(spec, 2, 1)["router"] == MIXTRAL_ROUTER * 2  # replicated: whole on every GPU
    assert touched_share(spec, 1) == 2 / 8
    assert touched_share(spec, 2) == pytest.approx(1 - (6 / 8) ** 2)  # 0.4375
    assert weight_bytes_read(spec, 2, 1)["experts"] == MIXTRAL_EXPERTS * 2 * (2 / 8) / 2
    assert weight_bytes_read(spec, 2, 2)["experts"] == pytest.approx(MIXTRAL_EXPERTS * 2 * 0.4375 / 2)
    assert weight_bytes_read(spec, 2, 4096)["experts"] == pytest.approx(MIXTRAL_EXPERTS * 2 / 2)
    attention = 32 * 4096 * 128 * 80
    assert weight_bytes_read(spec, 2, 1)["attention"] == attention  # dense parts: whole, / TP, 2 bytes


def test_mixtral_expert_matmuls_run_on_the_tokens_routed_to_them():
    spec = spec_of("mistralai/Mixtral-8x7B-v0.1")
    dense = 32000 * 4096 + 32 * 4096 * 128 * 80  # head + attention (the router, replicated, is added whole)
    # batch 1: 2 experts touched, 1 token each, padded to 16 rows -> 2 x 16 rows of one expert = 4 "all-experts"
    assert linear_flops(spec, 2, 1, 1)["bf16"] == pytest.approx((2 * MIXTRAL_EXPERTS * (2 / 8) * 16
                                                                  + 2 * dense * 16) / 2 + 2 * MIXTRAL_ROUTER * 16)
    # batch 64: every expert touched, 16 tokens each: exactly one tile; batch 65: 16.25 tokens -> two tiles
    share = touched_share(spec, 64)
    assert 64 * 2 / (8 * share) == pytest.approx(16, abs=1e-6)
    experts_only = lambda batch: linear_flops(spec, 1, batch, batch)["bf16"] - 2 * (
        dense + MIXTRAL_ROUTER) * math.ceil(batch / 16) * 16
    assert experts_only(64) == pytest.approx(2 * MIXTRAL_EXPERTS * share * 16)
    assert experts_only(65) == pytest.approx(2 * MIXTRAL_EXPERTS * touched_share(spec, 65) * 32)


# ---- gpt-oss-120b: MXFP4 experts, bf16 rest, sliding windows of 128 on half the layers --------------------------

GPT_OSS_MATRICES = 36 * 128 * 3 * 2880 * 2880  # MXFP4
GPT_OSS_BIASES = 36 * 128 * 3 * 2880  # the experts' biases, bf16
GPT_OSS_ATTN = 36 * 2880 * 64 * (2 * 64 + 2 * 8)  # projections; biases and sinks add 0.03% (spec.param_count)


def test_gpt_oss_120b_reads_0_62_gb_per_gpu_at_tp8_batch1():
    """The issue's figure: 4-bit experts by touched parameters (4 of 128) + bf16 attention and head, TP 8."""
    spec = spec_of("openai/gpt-oss-120b")
    experts = next(g for g in spec.params if g.name == "experts")
    assert experts.stored == "mxfp4"  # 4-bit values + an 8-bit scale per 32: 4.25 bits
    assert experts.bytes == pytest.approx(GPT_OSS_MATRICES * 4.25 / 8 + GPT_OSS_BIASES * 2)
    read = weight_bytes_read(spec, 8, 1)
    assert read["experts"] == pytest.approx((GPT_OSS_MATRICES * 4.25 / 8 + GPT_OSS_BIASES * 2) * (4 / 128) / 8)
    assert read["attention"] == pytest.approx(GPT_OSS_ATTN * 2 / 8, rel=5e-4)
    assert read["lm_head"] == 201088 * 2880 * 2 / 8
    assert read["router"] == 36 * (2880 * 128 + 128) * 2  # replicated
    assert sum(read.values()) == pytest.approx(0.62e9, rel=0.05)
    # MXFP4 matmuls dequantise to 16 bits: they run at the bf16 peak
    assert COMPUTE["H100-80GB-SXM"].peak("mxfp4") == 989.4e12


def test_gpt_oss_120b_windows_cap_the_kv_read():
    spec = spec_of("openai/gpt-oss-120b")
    per_token_layer = 2 * 1 * 64 * 2  # K+V, 1 KV head per GPU at TP 8, 64 dims, bf16
    work = decode_work(spec, 8, BF16, 8192, 1)
    assert work.kv_bytes == 18 * per_token_layer * 128 + 18 * per_token_layer * 8192
    # attention FLOPs: 8 query heads per GPU x (64 + 64) dims x 2, over 128 tokens (sliding) or 8192 (full)
    assert work.attention_flops == 2 * 8 * 128 * (18 * 128 + 18 * 8192)


# ---- DeepSeek-V3: MLA latent, fp8 linear layers --------------------------------------------------------------

DSV3_EXPERTS = 58 * 256 * 3 * 7168 * 2048  # 58 MoE layers (3 dense first) x 256 experts x gate/up/down


def test_deepseek_v3_mla_fp8_terms():
    spec = spec_of("deepseek-ai/DeepSeek-V3")
    assert spec.param_count("experts") == DSV3_EXPERTS
    read = weight_bytes_read(spec, 8, 1)
    experts = next(g for g in spec.params if g.name == "experts")
    assert experts.stored == "fp8" and experts.bytes == pytest.approx(DSV3_EXPERTS * (1 + 4 / 128 ** 2))  # + scales
    assert read["experts"] == pytest.approx(experts.bytes * (8 / 256) / 8)  # 8 of 256 touched, / TP
    assert read["lm_head"] == 129280 * 7168 * 2 / 8  # the head stays bf16
    work = decode_work(spec, 8, BF16, 4096, 1)
    assert work.kv_bytes == 61 * 576 * 2 * 4096  # the latent (512 + 64) is replicated: not divided by TP
    # absorbed MLA decode: 16 heads per GPU score against 576 latent dims and sum 512 of them
    assert work.attention_flops == 61 * 2 * 16 * (576 + 512) * 4096
    fp8_flops = sum(f for stored, f in work.linear_flops.items() if stored == "fp8")
    peak_h100 = basis(work, BW, COMPUTE["H100-80GB-SXM"]).peak_ms
    peak_a100 = basis(work, BW, COMPUTE["A100-80GB"]).peak_ms
    bf16_flops = work.linear_flops["bf16"] + work.attention_flops
    assert peak_h100 == pytest.approx((fp8_flops / 1978.9e12 + bf16_flops / 989.4e12) * 1e3)
    assert peak_a100 == pytest.approx((fp8_flops + bf16_flops) / 312e12 * 1e3)  # no fp8 tensor cores: W8A16


# ---- Qwen3-Next: 36 gated-DeltaNet layers with a fixed state, 12 full-attention layers -----------------------------

def test_qwen3_next_linear_state_read_and_written_every_step():
    spec = spec_of("Qwen/Qwen3-Next-80B-A3B-Thinking")
    conv = (4 - 1) * (2 * 16 * 128 + 32 * 128)  # (kernel - 1) x (q, k: 16 heads x 128; v: 32 heads x 128)
    ssm = 32 * 128 * 128  # value heads x key dim x value dim
    state = (conv + ssm) * 2  # bf16, one layer, TP 1
    full = 12 * 2 * 2 * 256 * 2  # 12 layers x K+V x 2 KV heads x 256 dims x bf16, per token
    for context in (1024, 65536):
        work = decode_work(spec, 1, BF16, context, 1)
        assert work.kv_bytes == 36 * 2 * state + full * context  # state read and written back
        assert work.attention_flops == 36 * 4 * (conv + ssm) + 12 * 2 * 16 * 512 * context
    at_tp4 = decode_work(spec, 4, BF16, 1024, 1)
    # TP 4: the state splits 4 ways; 2 KV heads under 4 GPUs are replicated, one per GPU
    assert at_tp4.kv_bytes == 36 * 2 * state // 4 + 12 * 2 * 1 * 256 * 2 * 1024


# ---- decode points and prefill -------------------------------------------------------------------------------

def test_decode_points_cover_batch_one_max_concurrency_and_the_asked_batches():
    spec = spec_of("meta-llama/Meta-Llama-3-8B")
    result = decode(spec, 1, BF16, 8192, 40, (8, 64, 8), SIMPLE, BW)
    assert [p.batch for p in result.points] == [1, 8, 40, 64]
    assert [p.fits for p in result.points] == [True, True, True, False]
    for p in result.points:
        assert p.itl_ms > p.roofline_itl_ms > 0
        assert p.tokens_per_s == pytest.approx(p.batch * 1e3 / p.itl_ms)
    nothing = decode(spec, 1, BF16, 8192, 0, (), SIMPLE, BW)
    assert [(p.batch, p.fits) for p in nothing.points] == [(1, False)]


def test_prefill_attention_is_causal_and_window_capped():
    assert _attended(0, 4, None) == 1 + 2 + 3 + 4
    assert _attended(4, 4, None) == 5 + 6 + 7 + 8
    assert _attended(0, 6, 3) == 1 + 2 + 3 + 3 + 3 + 3
    assert _attended(2, 4, 3) == 3 + 3 + 3 + 3
    spec = spec_of("meta-llama/Meta-Llama-3-8B")
    work = prefill_work(spec, 1, BF16, 0, 2048)
    assert work.attention_flops == 32 * 2 * 32 * 256 * (2048 * 2049 / 2)
    assert work.linear_flops["bf16"] == 2 * (LLAMA_ATTN + LLAMA_MLP) * 2048 + 2 * LLAMA_HEAD * 16  # head: last token
    assert work.kv_bytes == 0


def test_prefill_chunks_by_max_num_batched_tokens_and_grows_with_the_prompt():
    spec = spec_of("meta-llama/Meta-Llama-3-8B")
    one = prefill(spec, 1, BF16, 8192, 8192, SIMPLE, BW)
    four = prefill(spec, 1, BF16, 8192, 2048, SIMPLE, BW)
    assert (one.chunks, four.chunks) == (1, 4)
    # chunking re-reads the weights and pays the fixed costs per chunk, and later chunks read the earlier KV
    assert four.ttft_ms > one.ttft_ms
    times = [prefill(spec, 1, BF16, n, 8192, SIMPLE, BW).ttft_ms for n in (1, 128, 2048, 8192)]
    assert times == sorted(times)
    assert one.floor_ms < one.ttft_ms


def test_gpus_without_measurements_borrow_the_nearest_architecture_and_say_so():
    assert speed_profile(find_gpu("h200")).fallback is None
    l40s = speed_profile(find_gpu("l40s"))
    assert l40s.fitted_on == "A100-80GB" and "L40S" in l40s.fallback and "ada" in l40s.fallback
    assert speed_profile(find_gpu("h100-pcie")).fitted_on == "H100-80GB-SXM"
    assert speed_profile(find_gpu("b200")).fitted_on == "H200"
    unknown = replace(find_gpu("h100"), name="GH200")
    profile = speed_profile(unknown)
    assert "no compute figures for GH200" in profile.fallback and profile.compute == COMPUTE["H100-80GB-SXM"]


@pytest.mark.parametrize("model", ["openai/gpt-oss-120b", "Qwen/Qwen3-Next-80B-A3B-Thinking", "google/gemma-3-27b-it",
                                   "deepseek-ai/DeepSeek-V3", "meta-llama/Llama-4-Scout-17B-16E-Instruct"])
def test_grouped_kv_read_equals_the_capacity_rule(model):
    """Prefill chunks ask the distinct layer kinds (work.kv_read_bytes); decode and capacity ask every layer."""
    from kvplan.plan.capacity import read_bytes
    from kvplan.plan.work import kv_read_bytes

    spec = spec_of(model)
    for tp in (1, 2):
        for context in (1, 100, 4096, 300_000):
            assert kv_read_bytes(spec, tp, BF16, context) == read_bytes(spec, tp, BF16, context)
