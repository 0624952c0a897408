"""MXFP4 padding under pipeline parallelism, and CUTLASS MXFP4's per-call scratch (session 74).

A pipeline stage builds only its own decoder layers (make_layers: get_pp_indices' range, the rest PPMissingLayer;
vllm/model_executor/models/utils.py 0.32.0:886-916, distributed/utils.py :126-170): gpt-oss-120b's 36 layers at pp 2
are [18, 18], so a stage pads and converts only its 18 layers' experts. The checkpoint MXFP4 path
(vllm_budget.mxfp4_expert_bytes) already took the stage's share; the online linear kernel's padding
(vllm_mxfp4_online.linear_padding) counted every layer on every stage, now the stage's share.

openai/gpt-oss-120b (model_specs/openai--gpt-oss-120b.yaml): hidden 2,880, intermediate 2,880, 36 layers, 128
experts, bf16 biases in the checkpoint. On H100 under 0.32 the experts run on OAI Triton (oracle/mxfp4.py
0.32.0:389-422), which pads a rank's intermediate to 64 and converts the biases to float32 (vllm_mxfp4 docstring).
"""

from __future__ import annotations

import pytest

from kvplan.api import estimate
from kvplan.engines.vllm_budget import loaded_weights
from kvplan.engines.vllm_kv_dtype import release_view
from kvplan.engines.vllm_mxfp4 import kernel
from kvplan.engines.vllm_mxfp4_online import linear_padding
from kvplan.engines.vllm_profile import mlp_buffers, moe_workspace
from kvplan.engines.vllm_runner import cuda_capability
from kvplan.engines.vllm_versions import behaviour
from kvplan.model.quantization import apply_weight_precision
from kvplan.model.sources import resolve
from kvplan.plan.catalog import find_gpu
from kvplan.plan.sharding import pp_stages

GPT_OSS = "openai/gpt-oss-120b"
LAYERS, HIDDEN, INTER, EXPERTS = 36, 2880, 2880, 128


def _per_layer_extra(tp: int) -> int:
    """Bytes one rank loads a layer beyond the checkpoint's share, by hand: w13 [E, 2 I', K] and w2 [E, K, I'] at
    17/32 bytes a weight, I' = I / tp rounded up to 64; w13_bias [E, 2 I'] and w2_bias [E, K] (whole on every rank)
    in float32, where the checkpoint's share is bf16 [E, 2 I / tp] and [E, K] / tp."""
    inter = INTER // tp
    padded = -(-inter // 64) * 64
    matrices = EXPERTS * 3 * HIDDEN * (padded - inter) * 17 // 32
    biases = EXPERTS * 2 * padded * 4 + EXPERTS * HIDDEN * 4 - EXPERTS * 2 * inter * 2 - EXPERTS * HIDDEN * 2 // tp
    return matrices + biases


def test_hand_arithmetic():
    # tp 1: 2,880 = 45 x 64, no padding; the biases alone: 128 x 5,760 x 2 + 128 x 2,880 x 2 more bytes
    assert _per_layer_extra(1) == 2_211_840
    # tp 2: 1,440 -> 1,472; 128 x 3 x 2,880 x 32 x 17/32 = 18,800,640 of matrices, 1,875,968 of biases
    assert _per_layer_extra(2) == 18_800_640 + 1_875_968 == 20_676_608


@pytest.mark.parametrize("tp", [1, 2])
def test_gpt_oss_pads_its_own_layers_per_stage(tp):
    """pp 1 loads 36 layers' padding a rank, each pp 2 stage 18 (within a byte of float rounding)."""
    spec = release_view(resolve(GPT_OSS, None), "0.32.0")
    chosen = kernel(spec, "0.32.0", find_gpu("H100"))
    assert chosen.name == "OAI Triton"

    def extra(stage):
        return loaded_weights(spec, tp, stage, chosen)[0] - loaded_weights(spec, tp, stage, None)[0]

    assert abs(extra(None) - LAYERS * _per_layer_extra(tp)) <= 1
    stages = pp_stages(LAYERS, 2)
    assert [s.layers for s in stages] == [18, 18]
    for stage in stages:
        assert abs(extra(stage) - 18 * _per_layer_extra(tp)) <= 1


def test_gpt_oss_pp2_weights_halve_on_h100():
    """The embedding (stage 0) and the untied LM head (stage 1) weigh alike, so each stage is half of pp 1."""
    one, = estimate(GPT_OSS, gpu="H100", engine="vllm==0.32.0", tensor_parallel_size=2)
    two, = estimate(GPT_OSS, gpu="H100", engine="vllm==0.32.0", tensor_parallel_size=2, pipeline_parallel_size=2)
    assert abs(2 * two.budget.weights_bytes_per_gpu - one.budget.weights_bytes_per_gpu) <= 2


# DeepSeek-V2-Lite under --quantization mxfp4 on B200 (CuteDSL linears, vllm_mxfp4_online docstring): 27 layers,
# hidden 2,048; kv_a_proj_with_mqa [576, 2,048] on every layer has scales [576, 64], swizzled to [640, 64]: 4,096
# bytes a layer; the dense layer 0's down_proj [2,048, 10,944] has 342 scale columns, to 344: 4,096 bytes more
V2_LITE = "deepseek-ai/DeepSeek-V2-Lite"
V2_PADDING = 27 * 64 * 64 + 2048 * 2


def test_online_linear_padding_takes_the_stages_share():
    spec = release_view(apply_weight_precision(resolve(V2_LITE, None), "mxfp4"), "0.32.0")
    capability = cuda_capability(find_gpu("B200"))
    assert linear_padding(spec, capability, 1) == V2_PADDING == 114_688
    stages = pp_stages(27, 3)
    assert [s.layers for s in stages] == [9, 9, 9]
    # spread over the layers as stage_weights spreads their bytes: 114,688 x 9 / 27 = 38,229.3 a stage (vLLM's own
    # split puts the dense layer's 4,096 on stage 0: 40,960, 36,864, 36,864)
    assert [linear_padding(spec, capability, 1, s) for s in stages] == [38_229] * 3


def test_online_linear_padding_in_each_stages_weights():
    """Before: every stage of pp 3 carried the whole 114,688 bytes."""
    kwargs = dict(gpu="B200", engine="vllm==0.32.0", quantization="mxfp4")
    one, = estimate(V2_LITE, **kwargs)
    three, = estimate(V2_LITE, pipeline_parallel_size=3, **kwargs)
    assert "MXFP4 linear kernel's padding" in one.budget.terms[1].source
    h100_one, = estimate(V2_LITE, gpu="H100", engine="vllm==0.32.0", quantization="mxfp4")
    h100_three, = estimate(V2_LITE, gpu="H100", engine="vllm==0.32.0", quantization="mxfp4",
                            pipeline_parallel_size=3)
    # the rest of B200's weights as H100's (no linear padding there: Marlin's tile fits these shapes; the experts'
    # tiles, Triton's 64 and CUTLASS's 128, fit 1,408 and 2,048 alike)
    assert one.budget.weights_bytes_per_gpu - h100_one.budget.weights_bytes_per_gpu == V2_PADDING
    assert three.budget.weights_bytes_per_gpu - h100_three.budget.weights_bytes_per_gpu == 38_229


# CUTLASS MXFP4 x MXFP4 (Qwen3-30B-A3B -q mxfp4 on B200, 0.32): run_cutlass_moe_mxfp4's scratch beside the kept
# workspace (experts/cutlass_moe.py 0.32.0:831-977; _custom_ops.py :932-943, :1720-1819; envs.py :1844-1846)
QWEN, K_ROUTED, Q_HIDDEN, Q_INTER = "Qwen/Qwen3-30B-A3B", 8, 2048, 768


def _cutlass_scratch_by_hand(tokens: int) -> int:
    routes = tokens * K_ROUTED
    maps = 2 * routes * 4  # a_map, c_map int32
    shuffled = routes * Q_HIDDEN * 2  # the permuted input, kept to the end
    first = routes * Q_HIDDEN // 2 + 163840 * K_ROUTED * (Q_HIDDEN // 128) * 4  # fp4 input, E8M0 scales (int32 cols)
    second = routes * Q_INTER // 2 + 163840 * K_ROUTED * (Q_INTER // 128) * 4
    last = routes * Q_HIDDEN * 2 * 2 + tokens * Q_HIDDEN * 2  # c3 unpermuted, x router weights; the M x K sum
    return maps + shuffled + max(first, second, last)


def test_cutlass_scratch_by_hand():
    # B200's profile forward, 16,384 tokens: the end of the call is fullest, 1.56 GiB
    assert _cutlass_scratch_by_hand(16384) == 1_048_576 + 536_870_912 + 1_140_850_688 == 1_678_770_176
    # a short batch: the scales sized by VLLM_MAX_TOKENS_PER_EXPERT_FP4_MOE dominate (83,886,080 bytes)
    assert _cutlass_scratch_by_hand(16) == 1024 + 524_288 + 131_072 + 83_886_080 == 84_542_464


@pytest.mark.parametrize("tokens", [16, 2048, 16384])
def test_cutlass_forward_holds_workspace_and_scratch(tokens):
    spec = release_view(apply_weight_precision(resolve(QWEN, None), "mxfp4"), "0.32.0")
    rules = behaviour("0.32.0")
    chosen = kernel(spec, "0.32.0", find_gpu("B200"))
    assert chosen.name == "CUTLASS MXFP4 x MXFP4"
    assert chosen.scratch(spec, 1, tokens) == _cutlass_scratch_by_hand(tokens)
    kept = moe_workspace(spec, 1, tokens, rules, None, chosen)
    assert mlp_buffers(spec, 1, tokens, rules, None, chosen) == kept + _cutlass_scratch_by_hand(tokens)


def test_other_kernels_have_no_scratch():
    spec = release_view(apply_weight_precision(resolve(QWEN, None), "mxfp4"), "0.32.0")
    for gpu in ("H100", "A100-80GB"):  # OAI Triton, Marlin
        assert kernel(spec, "0.32.0", find_gpu(gpu)).scratch(spec, 1, 8192) == 0


def test_b200_profile_peak_grows_by_the_scratch():
    plan, = estimate(QWEN, gpu="B200", engine="vllm==0.32.0", quantization="mxfp4")
    peak = next(t for t in plan.budget.terms if t.name == "profile_peak")
    assert "2.53 GiB" in peak.source  # 0.97 GiB before: kept workspace and activations, no scratch
