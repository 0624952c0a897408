"""--quantization mxfp4 online (vLLM 0.28-0.34), what session 73's first pass left: routers built with the quant
config, the norms beside the attention linears, the MXFP4 linear kernel's padding, and MLA's dequantised copies
(kvplan/engines/vllm_mxfp4_online.py).

vLLM source read (0.28.0, 0.32.0, 0.34.0 wheels; paths under vllm/model_executor/):
- A LinearBase built with quant_config None takes UnquantizedLinearMethod (layers/linear.py 0.32.0:288-291); one
  built with it gets the online method (layers/quantization/online/base.py 0.32.0:289-311, :400-411), the
  shorthand ignoring nothing (config/quantization.py 0.32.0:121).
- Qwen3-MoE's gate is built with the quant config (models/qwen3_moe.py 0.28.0:167-171 ReplicatedLinear,
  0.32.0:170-174 GateLinear, a ReplicatedLinear); its shared_expert_gate with None (:183-188). Qwen2-MoE
  (qwen2_moe.py 0.32.0:142-152), Mixtral (mixtral.py :111-116), DeepSeek-V2/V3 (deepseek_v2.py :321-326), OLMoE
  (olmoe.py :89-93), GLM-4 MoE (glm4_moe.py :141-147), Qwen3-Next / Qwen3.5 (qwen3_next.py :191-201), Llama 4
  (llama4.py :101-105) build their gates without it.
- Mxfp4OnlineLinearMethod: uint8 [N, K/2] and E8M0 [N, K/32] (quantization/online/mxfp4.py 0.32.0:118-131), then
  the kernel's process_weights_after_loading: FlashInfer CuteDSL from capability 10.0 swizzles the scales into
  [ceil(N/128) x 128, ceil(K/32/4) x 4] and keeps that tensor (kernels/linear/mxfp4/flashinfer.py 0.32.0:38-47;
  swizzle_mxfp4_scales, fused_moe/experts/cutlass_moe.py :980-1021); Marlin pads weight and scales to
  marlin_padded_nk (quantization/utils/marlin_utils.py 0.32.0:222-244, marlin_utils_fp4.py :231-290).
- MLA: split_kv_b_proj dequantises kv_b_proj by running the quant method on an identity (quantization/utils/
  quant_utils.py 0.32.0:559-571) into one [kv_lora_rank, heads x (nope + v)] tensor in the activation dtype, whose
  views MLAAttention keeps as W_UV / W_UK_T (layers/attention/mla_attention.py 0.32.0:407-416, :1248-1255,
  :1325-1327; 0.34.0 :416-425, :1534-1536).
"""

from __future__ import annotations

import json

import pytest

from kvplan.api import estimate
from kvplan.engines.vllm_budget import mla_dequantized_copies
from kvplan.engines.vllm_kv_dtype import release_view
from kvplan.engines.vllm_mxfp4_online import linear_padding, marlin_padded
from kvplan.engines.vllm_runner import cuda_capability
from kvplan.model.quantization import apply_weight_precision
from kvplan.model.sources import resolve
from kvplan.plan.catalog import find_gpu

QWEN, LITE = "Qwen/Qwen3-30B-A3B", "deepseek-ai/DeepSeek-V2-Lite"
MX = 17 / 32  # bytes a weight: 4 bits and one E8M0 byte per 32

# Qwen3-30B-A3B (model_specs/Qwen--Qwen3-30B-A3B.yaml): 48 layers, hidden 2,048, 128 experts of 768, 32 query and
# 4 KV heads of 128, vocab 151,936, untied, bf16
Q_EXPERTS = 48 * 128 * (2 * 768 * 2048 + 2048 * 768) * 17 // 32  # 15,401,484,288
Q_ATTENTION = 48 * ((32 + 2 * 4) * 128 * 2048 + 2048 * 32 * 128) * 17 // 32 + 48 * 2 * 128 * 2  # q/k norms bf16
Q_ROUTER = 48 * 128 * 2048 * 17 // 32  # the GateLinear, MXFP4
Q_REST = 2 * 151936 * 2048 * 2 + (2 * 48 + 1) * 2048 * 2  # embedding, LM head, RMSNorms
Q_WEIGHTS = Q_EXPERTS + Q_ATTENTION + Q_ROUTER + Q_REST
Q_BEFORE = 17_153_010_048  # this session's first pass: router bf16, q/k norms at 17/32

# DeepSeek-V2-Lite (model_specs/deepseek-ai--DeepSeek-V2-Lite.yaml): 27 layers (the first dense, intermediate
# 10,944), hidden 2,048, 16 heads, no q LoRA, kv_lora_rank 512, nope 128, rope 64, v 128, 64 experts of 1,408 with 2
# shared (2,816 wide), vocab 102,400, untied
L_EXPERTS = 26 * 64 * 3 * 1408 * 2048 * 17 // 32  # OAI Triton's tile (intermediate to 64) pads none
L_ATTENTION_LINEAR = 27 * (16 * 192 * 2048 + 576 * 2048 + 16 * 256 * 512 + 2048 * 16 * 128) * 17 // 32
L_KV_A_NORM = 27 * 512 * 2
L_DENSE = 3 * 10944 * 2048 * 17 // 32
L_SHARED = 26 * 3 * 2816 * 2048 * 17 // 32
L_ROUTER = 26 * 64 * 2048 * 2  # DeepSeek's gate: no quant config, bf16
L_REST = 2 * 102400 * 2048 * 2 + (2 * 27 + 1) * 2048 * 2
L_COPIES = 27 * 512 * 16 * (128 + 128) * 2  # W_UK_T / W_UV: one bf16 tensor a layer
L_WEIGHTS = L_EXPERTS + L_ATTENTION_LINEAR + L_KV_A_NORM + L_DENSE + L_SHARED + L_ROUTER + L_REST + L_COPIES
L_BEFORE = 9_078_525_104  # the first pass: kv_a_layernorm at 17/32
# B200's CuteDSL: kv_a_proj_with_mqa's 576 scale rows to 640 (64 x 2,048 / 32 bytes a layer); the dense down_proj's
# 10,944 / 32 = 342 scale columns to 344 (2 x 2,048 rows); every other N a multiple of 128, K / 32 of 4
L_CUTEDSL = 27 * 64 * 64 + 2 * 2048


def _weights(model: str, gpu: str, version: str = "0.32.0") -> int:
    plan, = estimate(model, gpu=gpu, engine=f"vllm=={version}", quantization="mxfp4")
    return plan.budget.weights_bytes_per_gpu


def _served(model: str, version: str = "0.32.0"):
    return release_view(apply_weight_precision(resolve(model, None), "mxfp4"), version)


def _group(spec, name: str):
    return next(g for g in spec.params if g.name == name)


def test_hand_figures():
    qwen = (Q_EXPERTS, Q_ATTENTION, Q_ROUTER, Q_WEIGHTS)
    assert qwen == (15_401_484_288, 481_296_384 + 24_576, 6_684_672, 17_134_546_944)
    assert (L_COPIES, L_WEIGHTS, L_CUTEDSL) == (113_246_208, 9_078_545_408, 114_688)


@pytest.mark.parametrize("gpu", ["H100", "B200"])
def test_qwen3_moe_weights(gpu):
    """The gate at 4.25 bits (48 x 128 x 2,048 x 47/32 = 18,481,152 B less), the q/k norms back in bf16 (18,048 B
    more); neither kernel pads Qwen3-30B-A3B's linears (every N a multiple of 128, every K of 128)."""
    weights = _weights(QWEN, gpu)
    assert weights == Q_WEIGHTS
    assert Q_BEFORE - weights == 48 * 128 * 2048 * 2 - Q_ROUTER - 48 * 256 * (2 - MX) == 18_463_104


def test_q_k_norms_stay_in_the_model_dtype():
    attention = _group(_served(QWEN), "attention")
    assert attention.stored == "mxfp4" and attention.bytes == Q_ATTENTION
    # the K / V projections' share, which tp 8 replicates a head of, is the matrices' alone
    assert attention.kv_split == ((4, 48 * 2 * 4 * 128 * 2048 * 17 // 32),)


def test_router_replicated_share_follows_its_price():
    """Every rank holds the gate whole (ReplicatedLinear): its replicated bytes are the MXFP4 ones."""
    router = _group(_served(QWEN), "router")
    assert (router.stored, router.bytes, router.replicated) == ("mxfp4", Q_ROUTER, Q_ROUTER)


@pytest.mark.parametrize("model", ["Qwen/Qwen3-VL-30B-A3B-Instruct"])
def test_qwen3_vl_moe_reuses_the_quantised_gate(model):
    assert _group(_served(model), "router").stored == "mxfp4"


@pytest.mark.parametrize("model", [LITE, "mistralai/Mixtral-8x7B-v0.1", "Qwen/Qwen3-Next-80B-A3B-Thinking",
                                   "meta-llama/Llama-4-Scout-17B-16E-Instruct"])
def test_gates_built_without_the_quant_config_stay_bf16(model):
    router = _group(_served(model), "router")
    assert router.stored == "bf16" and router.bytes == 2 * router.parameters


def test_qwen2_moe_shared_expert_gate_stays_bf16(tmp_path):
    """Qwen1.5-MoE-A2.7B's shape: the shared expert's MLP is quantised, its [1, hidden] sigmoid gate (quant_config
    None) and the router are not."""
    config = {"architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe", "hidden_size": 2048,
              "intermediate_size": 5632, "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632,
              "num_hidden_layers": 24, "num_attention_heads": 16, "num_key_value_heads": 16, "num_experts": 60,
              "num_experts_per_tok": 4, "vocab_size": 151936, "max_position_embeddings": 8192,
              "torch_dtype": "bfloat16", "tie_word_embeddings": False}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    spec = release_view(apply_weight_precision(resolve(str(path), None), "mxfp4"), "0.32.0")
    shared = _group(spec, "shared_experts")
    assert shared.bytes == 24 * 3 * 5632 * 2048 * 17 // 32 + 24 * 2048 * 2
    assert _group(spec, "router").bytes == 24 * 60 * 2048 * 2


def test_deepseek_v2_lite_weights_on_h100():
    """kv_b_proj at 4.25 bits and its dequantised bf16 W_UK_T / W_UV copies beside it; kv_a_layernorm in bf16."""
    assert _weights(LITE, "H100") == L_WEIGHTS
    assert L_WEIGHTS - L_BEFORE == 27 * 512 * (2 - MX) == 20_304
    spec = _served(LITE)
    assert mla_dequantized_copies(spec, 1) == L_COPIES
    assert mla_dequantized_copies(spec, 2) == L_COPIES // 2


def test_cutedsl_scale_padding_on_b200():
    assert _weights(LITE, "B200") - _weights(LITE, "H100") == L_CUTEDSL
    assert linear_padding(_served(LITE), cuda_capability(find_gpu("B200")), 1) == L_CUTEDSL
    assert linear_padding(_served(QWEN), cuda_capability(find_gpu("B200")), 1) == 0
    # a rank of tp 2 pads its own partition: tests/test_leftovers_s73.py


def test_marlin_tile():
    """marlin_padded_nk with MXFP4's group 32: (N to 64, K to 128) or (N to 128, K to 64), the smaller area."""
    assert marlin_padded(576, 2048) == (576, 2048)
    assert marlin_padded(2048, 10944) == (2048, 10944)  # 10,944 = 171 x 64 with N a multiple of 128
    assert marlin_padded(1, 2048) == (64, 2048)
    assert marlin_padded(100, 10944) == (128, 10944)  # 128 x 10,944 under 128 x 11,008
    assert linear_padding(_served(LITE), cuda_capability(find_gpu("H100")), 1) == 0


def test_before_0_28_nothing_changes():
    """Mxfp4Config (0.27) quantises the experts alone: router, attention and norms as stored."""
    spec = _served(QWEN, "0.27.0")
    assert {_group(spec, name).stored for name in ("router", "attention")} == {"bf16"}


def test_dtype_flag_keeps_the_linears_repriceable():
    """--dtype float16 with -q mxfp4: the groups follow the new dtype, and the online method still quantises their
    linear matrices (the q/k norms at 2 bytes in fp16 as in bf16)."""
    plan, = estimate(QWEN, gpu="H100", engine="vllm==0.32.0", quantization="mxfp4", dtype="float16")
    assert plan.budget.weights_bytes_per_gpu == Q_WEIGHTS
