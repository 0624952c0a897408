"""--quantization mxfp4 on a bf16 MoE checkpoint: vLLM's online MXFP4 method, 0.28-0.34 (session 73;
kvplan/engines/vllm_mxfp4_online.py).

vLLM source read in 0.28.0-0.34.0: the mxfp4 shorthand quantises linears and MoE alike (config/quantization.py
0.32.0:211-214), Mxfp4OnlineMoEMethod asks select_mxfp4_moe_backend for MXFP4 activations (quantization/online/
mxfp4.py 0.32.0:142-156); 0.28-0.31 keep only the backends of that activation (oracle/mxfp4.py 0.28.0:426-441), none
on CUDA; 0.32 adds CUTLASS_MXFP4_MXFP4 (SM100-SM11x) and the BF16 backends after it (0.32.0:389-422, :545-562).

Qwen/Qwen3-30B-A3B (model_specs/Qwen--Qwen3-30B-A3B.yaml): hidden 2,048, 48 layers, 128 experts of intermediate
768, 8 a token, 32 query heads and 4 KV heads of 128, vocab 151,936, untied LM head, bf16.
"""

from __future__ import annotations

import pytest

from kvplan.api import estimate
from kvplan.engines.vllm_kv_dtype import release_view
from kvplan.engines.vllm_mxfp4 import kernel
from kvplan.engines.vllm_mxfp4_online import online_refusal
from kvplan.engines.vllm_runner import cuda_capability
from kvplan.model.quantization import apply_weight_precision
from kvplan.model.sources import resolve
from kvplan.plan.catalog import find_gpu

QWEN = "Qwen/Qwen3-30B-A3B"
LAYERS, HIDDEN, INTER, EXPERTS, K = 48, 2048, 768, 128, 8
# The experts as vLLM keeps them after loading, per layer (create_weights at the tile, then mxfp4_quantize): w13 uint8
# [E, 2 I, K/2] and its E8M0 scales [E, 2 I, K/32]; w2 uint8 [E, K, I/2] and scales [E, K, I/32]. No tile pads them:
# Triton's intermediate to 64 (768 = 12 x 64) and CUTLASS's both to 128 (2,048 = 16 x 128, 768 = 6 x 128).
W13 = EXPERTS * 2 * INTER * (HIDDEN // 2) + EXPERTS * 2 * INTER * (HIDDEN // 32)  # 201,326,592 + 12,582,912
W2 = EXPERTS * HIDDEN * (INTER // 2) + EXPERTS * HIDDEN * (INTER // 32)  # 100,663,296 + 6,291,456
EXPERT_BYTES = LAYERS * (W13 + W2)  # 15,401,484,288
# Attention linears, MXFP4 under the online method (Mxfp4OnlineLinearMethod): qkv_proj [(32 + 2 x 4) x 128, 2,048],
# o_proj [2,048, 4,096]; uint8 [N, K/2] + scales [N, K/32] = 17/32 bytes a weight
QKV, O = (32 + 8) * 128 * HIDDEN, HIDDEN * 32 * 128
ATTENTION_MXFP4 = LAYERS * (QKV + O) * 17 // 32  # 481,296,384
ATTENTION_BF16 = LAYERS * (QKV + O) * 2  # 1,811,939,328
# The rest in bf16: embedding and LM head 151,936 x 2,048 each, q/k norms 2 x 128 a layer, routers 128 x 2,048 a layer,
# two RMSNorms a layer and the final one
REST = 2 * 151936 * HIDDEN * 2 + LAYERS * 2 * 128 * 2 + LAYERS * EXPERTS * HIDDEN * 2 + (2 * LAYERS + 1) * HIDDEN * 2
WEIGHTS = EXPERT_BYTES + ATTENTION_MXFP4 + REST  # 17,153,028,096
# but the gate is built with the quant config (qwen3_moe.py 0.32.0:170-174), so it is MXFP4 too: 47/32 bytes a weight
# less (tests/test_mxfp4_online_rest_s73.py)
ROUTER_SAVING = LAYERS * EXPERTS * HIDDEN * 2 - LAYERS * EXPERTS * HIDDEN * 17 // 32


def _served(version: str, model: str = QWEN):
    return release_view(apply_weight_precision(resolve(model, None), "mxfp4"), version)


def _weights(gpu: str, version: str = "0.32.0") -> int:
    plan, = estimate(QWEN, gpu=gpu, engine=f"vllm=={version}", quantization="mxfp4")
    return plan.budget.weights_bytes_per_gpu


def test_hand_arithmetic():
    assert EXPERT_BYTES == 15_401_484_288
    assert ATTENTION_MXFP4 == 481_296_384
    assert WEIGHTS == 17_153_028_096
    assert ROUTER_SAVING == 18_481_152


@pytest.mark.parametrize("gpu", ["H100", "B200"])
def test_0_32_weights_hold_mxfp4_experts_and_mxfp4_attention(gpu):
    """H100 (OAI Triton) and B200 (CUTLASS) keep the same bytes: neither tile pads Qwen3-30B-A3B's experts. Before
    this session kvplan kept attention and the gates in bf16: 18,483,671,040 B, 1,349,124,096 more."""
    weights = _weights(gpu)
    assert WEIGHTS - ROUTER_SAVING == weights
    # the bf16 attention matrices and the gates go to 17/32 bytes a weight; the q/k norms stay bf16
    assert 18_483_671_040 - weights == ATTENTION_BF16 - ATTENTION_MXFP4 + ROUTER_SAVING == 1_349_124_096


def test_experts_group_as_vllm_keeps_it():
    experts = next(g for g in _served("0.32.0").params if g.name == "experts")
    assert (experts.stored, int(experts.bytes)) == ("mxfp4", EXPERT_BYTES)


def test_linears_stay_bf16_before_0_28_and_for_a_quantised_checkpoint():
    """Mxfp4Config (0.27) quantises the experts alone; from 0.28 the online method takes every LinearBase."""
    assert next(g for g in _served("0.27.0").params if g.name == "attention").stored == "bf16"
    assert next(g for g in _served("0.28.0").params if g.name == "attention").stored == "mxfp4"
    gpt_oss = release_view(apply_weight_precision(resolve("openai/gpt-oss-120b", None), "mxfp4"), "0.32.0")
    assert next(g for g in gpt_oss.params if g.name == "attention").stored == "bf16"


def test_dense_model_quantises_its_linears_online():
    """Qwen3-8B has no experts: before 0.28 -q mxfp4 leaves it bf16 (with kvplan's note); from 0.28 its attention and
    MLP linears are MXFP4 and the note goes."""
    old, new = _served("0.27.0", "Qwen/Qwen3-8B"), _served("0.32.0", "Qwen/Qwen3-8B")
    assert {g.stored for g in old.params if g.name in ("attention", "dense") and g.parameters} == {"bf16"}
    assert {g.stored for g in new.params if g.name in ("attention", "dense") and g.parameters} == {"mxfp4"}
    assert any("routed experts only" in n for n in old.notes)
    assert not any("routed experts only" in n for n in new.notes)


@pytest.mark.parametrize("gpu, name, modular", [
    ("H100", "OAI Triton", False),  # Triton before Humming / Marlin in gpt-oss's list; monolithic with one DP rank
    ("B200", "CUTLASS MXFP4 x MXFP4", True),  # 100 <= cc < 120: MXFP4 activations first
    ("B300", "CUTLASS MXFP4 x MXFP4", True),
    ("A100-80GB", "Marlin", True),  # Triton needs 9.0; Marlin from 7.5, modular since 0.17
    ("RTX-PRO-6000-Server", "Marlin", True),  # SM120: CUTLASS's kernel stops below 12.0, Triton behind Marlin
])
@pytest.mark.parametrize("version", ["0.32.0", "0.33.0", "0.34.0"])
def test_kernel_by_gpu(gpu, name, modular, version):
    chosen = kernel(_served(version), version, find_gpu(gpu))
    assert (chosen.name, chosen.modular) == (name, modular)


def test_cutlass_keeps_its_workspace():
    """CutlassExpertsMxfp4.workspace_shapes (experts/cutlass_moe.py 0.32.0:1079-1093): workspace1 M k x max(2 N, K)
    sharing with the output M x K, workspace2 M k x N, bf16. B200's profile forward: 16,384 tokens."""
    chosen = kernel(_served("0.32.0"), "0.32.0", find_gpu("B200"))
    tokens = 16384
    # max(2 N, K) = max(1,536, 2,048) = 2,048; M k x 2,048 outgrows the output's M x 2,048
    by_hand = (max(tokens * 8 * 2048, tokens * 2048) + tokens * 8 * 768) * 2
    assert by_hand == 738_197_504
    assert chosen.kept(_served("0.32.0"), 1, tokens) == by_hand
    assert chosen.padded(HIDDEN, INTER) == (HIDDEN, INTER)


@pytest.mark.parametrize("version", ["0.28.0", "0.29.0", "0.30.0", "0.31.0"])
@pytest.mark.parametrize("gpu", ["H100", "B200", "A100-80GB"])
def test_0_28_to_0_31_refuse_a_moe_on_cuda(version, gpu):
    """No CUDA backend takes MXFP4 activations before 0.32 (AITER is ROCm's, the emulation needs amd-quark)."""
    refusal = online_refusal(_served(version), cuda_capability(find_gpu(gpu)), version)
    assert refusal is not None and "No MXFP4 MoE backend" in refusal.reason
    assert refusal.options == ("vllm==0.32.0",)
    plan, = estimate(QWEN, gpu=gpu, engine=f"vllm=={version}", quantization="mxfp4")
    assert plan.engine.starts is False


def test_no_refusal_from_0_32_nor_for_a_dense_model():
    capability = cuda_capability(find_gpu("H100"))
    assert online_refusal(_served("0.32.0"), capability, "0.32.0") is None
    assert online_refusal(_served("0.31.0", "Qwen/Qwen3-8B"), capability, "0.31.0") is None
    assert online_refusal(_served("0.27.0"), capability, "0.27.0") is None
