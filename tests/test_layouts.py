"""Bytes per token, per GPU and per sequence for every attention layout, against hand arithmetic.

Every expected figure is written out as the product the serving engine allocates:
2 (K and V) x KV heads per GPU x head_dim x bytes per element x layers (MLA: latent x bytes x layers)."""

import pytest

from hub_configs import (DEEPSEEK_V2_LITE, DEEPSEEK_V3, FALCON_40B, FALCON_7B, FALCON_RW_1B, GEMMA2_9B,
                         GEMMA3_27B, GPT2, GPT_OSS_20B, INTERNVL_LLM, JAMBA, LLAMA2_7B, LLAMA3_70B, LLAMA3_8B,
                         LLAMA4_SCOUT, MISTRAL_7B_V01, PHI3_MINI, QWEN2_5_7B, QWEN3_14B, QWEN3_NEXT_80B)
from kvplan.cli import flag
from kvplan.plan.budget import fixed_budget
from kvplan.model import parse_config
from kvplan.plan.plan import plan

GiB = 2**30
BIG = 1000 * GiB  # a budget that never binds, for footprint tests


def make_plan(config, context=8192, kv_dtype="auto", tp=1, block_size=16, budget=BIG):
    spec = parse_config(config, "test")
    return plan(spec, context=context, kv_dtype=kv_dtype, tp=tp, block_size=block_size,
                budget_for=fixed_budget(budget))


# (config, expected kv_bytes_per_token at tp 1, bf16/auto)
PER_TOKEN = [
    pytest.param(LLAMA3_8B, 2 * 8 * 128 * 2 * 32, id="llama3-8b GQA 8/32"),
    pytest.param(LLAMA2_7B, 2 * 32 * 128 * 2 * 32, id="llama2-7b MHA fp16"),
    pytest.param(LLAMA3_70B, 2 * 8 * 128 * 2 * 80, id="llama3-70b"),
    pytest.param(MISTRAL_7B_V01, 2 * 8 * 128 * 2 * 32, id="mistral sliding (uncapped per token)"),
    pytest.param(GEMMA2_9B, 2 * 8 * 256 * 2 * 42, id="gemma2 head_dim 256 explicit"),
    pytest.param(GEMMA3_27B, 2 * 16 * 128 * 2 * 62, id="gemma3 text_config, head_dim 128 != 5376/32"),
    pytest.param(QWEN2_5_7B, 2 * 4 * 128 * 2 * 28, id="qwen2.5 use_sliding_window false"),
    pytest.param(QWEN3_14B, 2 * 8 * 128 * 2 * 40, id="qwen3-14b"),
    pytest.param(DEEPSEEK_V2_LITE, (512 + 64) * 2 * 27, id="deepseek-v2-lite MLA"),
    pytest.param(DEEPSEEK_V3, (512 + 64) * 2 * 61, id="deepseek-v3 MLA"),
    pytest.param(FALCON_7B, 2 * 1 * 64 * 2 * 32, id="falcon-7b n_layer/n_head multi_query"),
    pytest.param(FALCON_40B, 2 * 8 * 64 * 2 * 60, id="falcon-40b num_kv_heads new arch"),
    pytest.param(FALCON_RW_1B, 2 * 32 * 64 * 2 * 24, id="falcon-rw-1b MHA"),
    pytest.param(GPT2, 2 * 12 * 64 * 2 * 12, id="gpt2 n_embd, no dtype -> bf16"),
    pytest.param(QWEN3_NEXT_80B, 2 * 2 * 256 * 2 * 12, id="qwen3-next: 12 of 48 layers hold KV"),
    pytest.param(GPT_OSS_20B, 2 * 8 * 64 * 2 * 24, id="gpt-oss-20b"),
    pytest.param(LLAMA4_SCOUT, 2 * 8 * 128 * 2 * 48, id="llama4 scout text_config"),
    pytest.param(PHI3_MINI, 2 * 32 * 96 * 2 * 32, id="phi3-mini head_dim 3072/32"),
    pytest.param(JAMBA, 2 * 8 * 128 * 2 * 4, id="jamba: 4 of 32 layers attention"),
    pytest.param(INTERNVL_LLM, 2 * 4 * 128 * 2 * 28, id="internvl llm_config"),
]


@pytest.mark.parametrize("config,expected", PER_TOKEN)
def test_bytes_per_token(config, expected):
    p = make_plan(config)
    assert p.kv_bytes_per_token == expected
    assert p.kv_bytes_per_token_per_gpu == expected


def test_llama3_8b_per_gpu_under_tp_with_replication():
    per_layer_head = 2 * 128 * 2  # K+V bytes of one head of one layer
    assert make_plan(LLAMA3_8B, tp=2).kv_bytes_per_token_per_gpu == 4 * per_layer_head * 32
    assert make_plan(LLAMA3_8B, tp=8).kv_bytes_per_token_per_gpu == 1 * per_layer_head * 32
    # tp 16 > 8 KV heads: one replicated head per GPU, so the group holds twice the bytes.
    p16 = make_plan(LLAMA3_8B, tp=16)
    assert p16.tp_valid and p16.kv_heads_per_gpu == 1
    assert p16.kv_bytes_per_token_per_gpu == per_layer_head * 32
    assert p16.kv_bytes_per_token == 16 * per_layer_head * 32 == 2 * make_plan(LLAMA3_8B).kv_bytes_per_token
    assert any("replicated on 2 GPUs" in w for w in p16.tp_warnings)


def test_llama3_70b_tp8_and_tp16():
    assert make_plan(LLAMA3_70B, tp=8).kv_bytes_per_token_per_gpu == 2 * 1 * 128 * 2 * 80  # 40,960
    p16 = make_plan(LLAMA3_70B, tp=16)
    assert p16.kv_bytes_per_token_per_gpu == 40_960 and p16.kv_bytes_per_token == 16 * 40_960


def test_mla_is_replicated_not_divided_by_tp():
    latent = (512 + 64) * 2 * 61  # 70,272 bytes per token on every rank
    p = make_plan(DEEPSEEK_V3, tp=8)
    assert p.tp_valid and p.kv_bytes_per_token_per_gpu == latent
    assert p.kv_bytes_per_token == 8 * latent
    assert p.kv_heads_per_gpu is None


def test_mla_fp8_halves_the_latent():
    assert make_plan(DEEPSEEK_V2_LITE, kv_dtype="fp8").kv_bytes_per_token == 576 * 1 * 27


def test_sequence_beyond_the_window_is_capped():
    # Mistral: window 4096 on all 32 layers; a window straddling a block edge touches ceil(4095/16)+1 = 257
    # blocks of 16 tokens; each token is 2 x 8 x 128 x 2 = 4096 bytes per layer.
    p = make_plan(MISTRAL_7B_V01, context=32768)
    assert p.kv_bytes_per_sequence_per_gpu == 32 * 257 * 16 * 4096
    # Below the window it is the plain paged footprint: ceil(1000/16) = 63 blocks.
    assert make_plan(MISTRAL_7B_V01, context=1000).kv_bytes_per_sequence_per_gpu == 32 * 63 * 16 * 4096


def test_gemma2_alternates_local_and_global():
    # 21 global layers at 8192 tokens (512 blocks), 21 local layers capped at 257 blocks; 8192 B/token/layer.
    p = make_plan(GEMMA2_9B, context=8192)
    assert p.kv_bytes_per_sequence_per_gpu == 21 * 512 * 16 * 8192 + 21 * 257 * 16 * 8192
    spec = parse_config(GEMMA2_9B, "g2")
    assert spec.windows == {4096: 21} and spec.layers[0].window == 4096 and spec.layers[1].window is None


def test_gemma3_pattern_six():
    spec = parse_config(GEMMA3_27B, "g3")
    assert spec.windows == {1024: 52}  # 62 layers, every 6th global: 10 global, 52 local
    # context 32768: 10 x 2048 blocks + 52 x (ceil(1023/16)+1 = 65) blocks, 2 x 16 x 128 x 2 = 8192 B/token/layer.
    p = make_plan(GEMMA3_27B, context=32768)
    assert p.kv_bytes_per_sequence_per_gpu == (10 * 2048 + 52 * 65) * 16 * 8192


def test_gpt_oss_layer_types_window_128():
    # 12 full layers x 512 blocks + 12 sliding layers x (ceil(127/16)+1 = 9) blocks, 2048 B/token/layer.
    p = make_plan(GPT_OSS_20B, context=8192)
    assert p.kv_bytes_per_sequence_per_gpu == (12 * 512 + 12 * 9) * 16 * 2048


def test_llama4_chunked_layers():
    spec = parse_config(LLAMA4_SCOUT, "scout")
    assert spec.windows == {8192: 36}
    # 128K context: 12 global layers x 8192 blocks + 36 chunked layers x (ceil(8191/16)+1 = 513) blocks.
    p = make_plan(LLAMA4_SCOUT, context=131072)
    assert p.kv_bytes_per_sequence_per_gpu == (12 * 8192 + 36 * 513) * 16 * 4096


def test_phi3_sliding_window_2047():
    # ceil(2046/16)+1 = 129 blocks; 2 x 32 x 96 x 2 = 12,288 B/token/layer.
    assert make_plan(PHI3_MINI, context=4096).kv_bytes_per_sequence_per_gpu == 32 * 129 * 16 * 12288


def test_hybrid_per_token_slope_and_fixed_state():
    # Qwen3-Next: only 12 full-attention layers grow with context: 2 x 2 x 256 x 2 x 12 = 24,576 B/token.
    a, b = make_plan(QWEN3_NEXT_80B, context=4096), make_plan(QWEN3_NEXT_80B, context=8192)
    assert b.kv_bytes_per_sequence_per_gpu - a.kv_bytes_per_sequence_per_gpu == 24_576 * 4096
    # 36 gated-DeltaNet layers keep conv (4-1) x (2 x 16 x 128 + 32 x 128) + state 32 x 128 x 128, in bf16.
    state = 36 * (3 * (2 * 16 * 128 + 32 * 128) + 32 * 128 * 128) * 2
    assert a.state_bytes_per_sequence_per_gpu == state == b.state_bytes_per_sequence_per_gpu
    budget = 10 * GiB
    p = make_plan(QWEN3_NEXT_80B, context=4096, budget=budget)
    assert p.max_concurrency == budget // (24_576 * 4096 + state)
    # At tp 2 both the KV heads (2) and the linear heads divide: everything halves.
    p2 = make_plan(QWEN3_NEXT_80B, context=4096, tp=2)
    assert p2.state_bytes_per_sequence_per_gpu == state // 2
    assert p2.kv_bytes_per_token_per_gpu == 24_576 // 2


def test_jamba_mamba_state():
    # d_inner = 2 x 4096; conv (4-1) x 8192, ssm 8192 x 16; 28 Mamba layers, bf16.
    p = make_plan(JAMBA, context=4096)
    assert p.state_bytes_per_sequence_per_gpu == 28 * (3 * 8192 + 8192 * 16) * 2


def test_precisions_and_scale_bytes():
    per = {"float16": 2, "bfloat16": 2, "fp16": 2, "bf16": 2, "fp8": 1, "fp8_e5m2": 1, "fp8_inc": 1}
    for dtype, size in per.items():
        assert make_plan(LLAMA3_8B, kv_dtype=dtype).kv_bytes_per_token == 2 * 8 * 128 * size * 32
    # int8 / int4 per token head: an fp32 scale (4 bytes) after each head's K and V vector.
    assert make_plan(LLAMA3_8B, kv_dtype="int8_per_token_head").kv_bytes_per_token == 32 * 2 * 8 * (128 + 4)
    assert make_plan(LLAMA3_8B, kv_dtype="int4_per_token_head").kv_bytes_per_token == 32 * 2 * 8 * (64 + 4)
    # auto = the model's dtype: Llama 2 is fp16, Gemma 2 float32 is served as bf16.
    assert make_plan(LLAMA2_7B).kv_dtype == "fp16"
    assert make_plan(GEMMA2_9B).kv_dtype == "bf16"


def test_paged_blocks_capacity_and_concurrency():
    budget = 10 * GiB + 12345
    block_bytes = 16 * 131072  # 2 MiB per block across all 32 layers
    p = make_plan(LLAMA3_8B, context=5000, budget=budget)
    assert p.kv_blocks == budget // block_bytes == 5120
    assert p.kv_capacity_tokens == 5120 * 16
    assert p.max_concurrency == 5120 // 313  # ceil(5000/16) = 313 blocks a sequence
    assert p.kv_bytes_per_sequence_per_gpu == 313 * block_bytes
    # Contiguous allocation reserves max_position_embeddings (8192) tokens per sequence.
    assert p.contiguous_bytes_per_sequence_per_gpu == 8192 * 131072
    assert p.contiguous_max_concurrency == budget // (8192 * 131072) == 10


def test_block_size_changes_rounding():
    assert make_plan(LLAMA3_8B, context=17, block_size=16).kv_bytes_per_sequence_per_gpu == 2 * 16 * 131072
    assert make_plan(LLAMA3_8B, context=17, block_size=32).kv_bytes_per_sequence_per_gpu == 1 * 32 * 131072


def test_invalid_tp_rows_have_no_numbers():
    p = make_plan(FALCON_7B, tp=2)
    assert not p.tp_valid and p.max_concurrency is None
    assert "num_attention_heads (71) is not divisible by tp 2" in p.tp_errors[0]


def test_does_not_fit_says_what_would():
    p = make_plan(LLAMA3_8B, context=131072, budget=10 * GiB)  # one sequence needs 16 GiB
    assert not p.fits and p.max_concurrency == 0
    # tp 2 halves the per-GPU footprint to 8 GiB, so does fp8; 10 GiB / 128 KiB = 81,920 tokens fit as is.
    assert p.suggestion(flag) == ("would fit with --tensor-parallel-size 2 or --kv-cache-dtype fp8 or "
                                  "--max-model-len 81920")
    assert p.suggestion() == "would fit with tp 2 or kv_dtype fp8 or context 81920"  # the Python API's words
