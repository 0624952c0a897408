"""Three small checks of session 76.

1. Llama 4's dense MLP layers are intermediate_size_mlp wide (llama4.py Llama4DecoderLayer: an MoE layer where
   (i + 1) % interleave_moe_layer_step == 0, else a Llama4MLP of intermediate_size_mlp), its experts and shared
   expert intermediate_size wide. Text config of both bundled checkpoints: hidden 5,120, 48 layers, 40 heads and 8
   KV heads of 128, vocab 202,048 (untied), intermediate_size 8,192, intermediate_size_mlp 16,384; Scout every layer
   MoE with 16 experts, Maverick every 2nd (24 MoE, 24 dense) with 128. A layer's parts:
   - attention: 5,120 x (5,120 q + 1,024 k + 1,024 v) + 5,120 x 5,120 o = 62,914,560 (no norm weights: L2 qk norm)
   - one gated MLP of width I: 3 x 5,120 x I (8,192: 125,829,120; 16,384: 251,658,240)
   - router: E x 5,120; norms 2 x 5,120, and one final 5,120
   - embed and lm_head: 202,048 x 5,120 = 1,034,485,760 each
   Scout text: 2 x 1,034,485,760 + 48 x 62,914,560 + 48 x (17 x 125,829,120 + 16 x 5,120) + 48 x 10,240 + 5,120
             = 2,068,971,520 + 3,019,898,880 + 102,676,561,920 + 3,932,160 + 496,640 = 107,769,861,120
   Maverick text: 2,068,971,520 + 3,019,898,880 + 24 x 251,658,240 (dense) + 24 x (129 x 125,829,120 + 128 x 5,120)
             + 496,640 = 2,068,971,520 + 3,019,898,880 + 6,039,797,760 + 389,582,684,160 + 496,640 = 400,711,848,960
   The vision tower and projector (same vision_config in both) make Scout's Hub safetensors total 108,641,793,536
   (the bundled count), so 871,932,416; Maverick then 401,583,781,376 ("400B" on the model card, "402B" on the Hub
   page). Active a token: attention 3,019,898,880 + 48 MoE or dense MLP passes + lm_head: Scout 48 x 2 x 125,829,120
   = 12,079,595,520, so 16.1B + embedding; Maverick 24 x 2 x 125,829,120 + 24 x 251,658,240 = 12,079,595,520 too
   (both "17B active" with the embedding).
2. gemma-3-27b-it, H100, vLLM 0.20.0, --kv-cache-memory-bytes 15,032,385,536 (14 GiB), 8,192 batched tokens:
   62 layers (10 full, 52 sliding of 1,024), 16 KV heads x 128, bf16: a page 2 x 16 x 128 x 2 x 16 = 131,072 B; groups
   of 10 layers (the full 10; the sliding 52 padded to 6 x 10), a block 10 pages = 1,310,720 B, 11,468 blocks.
   A request of L tokens: cdiv(L, 16) full blocks + 6 x (cdiv(1,023 + 8,192, 16) + 1) = 6 x 577 = 3,462.
   vLLM's check and estimate (kv_cache_utils.py 0.20.0:1723-1818, :1995-2003) on every block: cdiv(L, 16) <= 11,468
   - 3,462 = 8,006, L <= 128,096; at 131,072: 11,654 x 1,310,720 = 15,275,130,880 B = 14.23 GiB. The pool gives
   out 11,467 (block_pool.py 0.20.0:176 the null block) and the admission gate wants a prompt's blocks all free
   (sched/scheduler.py 0.20.0:744-755): cdiv(L, 16) <= 8,005, L <= 128,080.
3. The plan header words --no-dcp-q-replicate through the caller's spelling (render/estimate.py switch_words).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from conftest import estimate_plan, run_kvplan

SCOUT = "meta-llama/Llama-4-Scout-17B-16E-Instruct"
MAVERICK = "meta-llama/Llama-4-Maverick-17B-128E-Instruct"
GEMMA = "google/gemma-3-27b-it"
DSV3 = "deepseek-ai/DeepSeek-V3"

ATTENTION = 5120 * (5120 + 1024 + 1024) + 5120 * 5120  # 62,914,560
MLP_8K, MLP_16K = 3 * 5120 * 8192, 3 * 5120 * 16384  # 125,829,120 and 251,658,240
EMBED = 202048 * 5120  # 1,034,485,760
NORMS = 48 * 2 * 5120 + 5120  # 496,640
VISION = 108_641_793_536 - 107_769_861_120  # Scout's Hub total less its text arithmetic: 871,932,416


def _spec(model: str):
    from kvplan.model.sources import resolve

    return resolve(model)


def _text_params(spec) -> int:
    return sum(g.parameters for g in spec.params if g.name != "vision")


def test_scout_parameters_by_hand():
    spec = _spec(SCOUT)
    text = 2 * EMBED + 48 * ATTENTION + 48 * (17 * MLP_8K + 16 * 5120) + NORMS
    assert text == 107_769_861_120
    assert _text_params(spec) == text
    assert spec.param_count("dense") == 0 and spec.param_count("shared_experts") == 48 * MLP_8K
    assert spec.weights.parameters == 108_641_793_536  # the Hub's safetensors total (bundled)


def test_maverick_dense_layers_are_intermediate_size_mlp_wide():
    spec = _spec(MAVERICK)
    assert spec.moe_layers == 24 and spec.param_count("dense") == 24 * MLP_16K == 6_039_797_760
    assert spec.param_count("experts") == 24 * 128 * MLP_8K and spec.param_count("shared_experts") == 24 * MLP_8K
    text = 2 * EMBED + 48 * ATTENTION + 24 * MLP_16K + 24 * (129 * MLP_8K + 128 * 5120) + NORMS
    assert text == 400_711_848_960
    assert _text_params(spec) == text
    assert text + VISION == 401_583_781_376  # the estimate the weights term stands on (no bundled count)
    assert spec.weights.parameters == 401_583_781_376
    # the activation models' dense width: intermediate_size_mlp, the experts' intermediate_size
    assert (spec.intermediate_size, spec.expert_intermediate_size) == (16384, 8192)


def test_active_parameters_near_17b():
    for model in (SCOUT, MAVERICK):
        spec = _spec(model)
        active = 48 * ATTENTION + 2 * EMBED + 12_079_595_520
        routed = spec.param_count("experts") * spec.experts_per_token // spec.experts
        assert spec.param_count("attention") + 2 * EMBED + routed + spec.param_count("shared_experts") \
            + spec.param_count("dense") == active == 17_168_465_920


def test_maverick_weights_per_gpu_and_decode_bytes():
    """tp 8: every group split 8 ways but the router (24 x 128 x 5,120 = 15,728,640) and the norms, whole on every
    rank: 401,583,781,376 x 2 / 8 + (15,728,640 + 496,640) x 2 x 7 / 8 = 100,395,945,344 + 28,394,240."""
    from kvplan.plan.work import weight_bytes_read

    plan = estimate_plan(MAVERICK, "--gpu", "H200", "-tp", "8", "-c", "8192")
    assert plan["budget"]["weights_bytes_per_gpu"] == 100_395_945_344 + 28_394_240
    read = weight_bytes_read(_spec(MAVERICK), 8, 1)
    assert read["dense"] == 24 * MLP_16K * 2 / 8  # 1,509,949,440 B: dense layers read whole, split by TP
    assert read["experts"] == pytest.approx(24 * 128 * MLP_8K * 2 / 128 / 8)  # one expert of 128 touched


def test_v0_profile_dense_layer_width():
    """The V0 profile forward's dense-layer term (vllm_profile.dense_mlp_per_token): gate/up and activated outputs,
    3 x 16,384 / tp x 2 B, for Maverick's dense layers; Scout has none."""
    from kvplan.engines.vllm_profile import dense_layers, dense_mlp_per_token

    maverick, scout = _spec(MAVERICK), _spec(SCOUT)
    assert dense_layers(maverick) and dense_mlp_per_token(maverick, 8) == 3 * 16384 // 8 * 2 == 12_288
    assert not dense_layers(scout)


def _gemma(context: str) -> dict:
    return estimate_plan(GEMMA, "--gpu", "H100", "--engine", "vllm==0.20.0", "--kv-cache-memory-bytes",
                         "15032385536", "-c", context, "--max-num-batched-tokens", "8192")


def test_gemma3_refusal_quotes_vllms_estimate_and_the_remedy_admits():
    plan = _gemma("131072")
    engine = plan["engine"]
    assert engine["num_gpu_blocks"] == 15_032_385_536 // 1_310_720 == 11_468
    assert engine["refusal"]["estimated_max_model_len"] == 128_096
    assert "(14.23 GiB KV cache is needed" in engine["refusal"]["reason"]
    assert "the estimated maximum model length is 128096." in engine["refusal"]["reason"]
    assert "--max-model-len 128080 (vLLM's estimate 128,096 starts" in plan["suggestion"]  # test_nits2_s76.py
    for length, held in (("128080", 1), ("128081", 0), ("128096", 0)):
        at = _gemma(length)
        assert at["engine"]["starts"] and at["max_concurrency"] == held, length
    result = run_kvplan("check", GEMMA, "-tp", "1", "--gpu", "H100", "--engine", "vllm==0.20.0",
                        "--kv-cache-memory-bytes", "15032385536", "-c", "131072", "--max-num-batched-tokens", "8192")
    assert result.returncode == 1
    text = " ".join(result.stdout.split())
    assert "estimated maximum model length is 128096" in text and "--max-model-len 128080 (vLLM's" in text


def test_dcp_q_replicate_header_follows_the_spelling():
    from kvplan.cli.flags import flag
    from kvplan.render.estimate import dcp_words

    plan = SimpleNamespace(dcp=8, pcp=None, dcp_interleave=None, dcp_comm_backend=None, dcp_q_replicate=False,
                           core_gpus=8)
    assert dcp_words(plan, flag) == ", --decode-context-parallel-size 8, --no-dcp-q-replicate"
    assert dcp_words(plan, str) == ", dcp 8, dcp_q_replicate false"
    on = SimpleNamespace(**{**vars(plan), "dcp_q_replicate": True})
    assert dcp_words(on, flag).endswith(", --dcp-q-replicate") and dcp_words(on, str).endswith(", dcp_q_replicate")
    unset = SimpleNamespace(**{**vars(plan), "dcp_q_replicate": None})
    assert dcp_words(unset, str) == ", dcp 8"
    out = run_kvplan("estimate", DSV3, "--gpu", "H200", "-tp", "8", "--engine", "vllm==0.32.0", "-dcp", "8",
                     "--no-dcp-q-replicate", "-c", "8192").stdout
    assert "--decode-context-parallel-size 8, --no-dcp-q-replicate:" in " ".join(out.split())
