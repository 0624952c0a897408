"""DeepSeek-V4's MXFP4 experts: the kernel Mxfp4MoEMethod's selector picks by release and GPU, its tile and the
workspace it keeps; and gpt-oss's float32 biases (session 72; kvplan/engines/vllm_mxfp4.py).

Read in the wheels of every release 0.20.0-0.34.0 (fused_moe/oracle/mxfp4.py; paths under
vllm/model_executor/layers/):
- the list: TRT-LLM (MXFP8 activations), DeepGEMM, Marlin (0.20.0 :214-231, 0.24.0 :326-350), Humming appended from
  0.32 (0.32.0 :425-452) and moved ahead of Marlin on capability 9.0 alone (quantization/utils/humming/priority.py
  0.32.0:11-50);
- TRT-LLM on the SM10x family (experts/trtllm_mxfp4_moe.py 0.20.0:89-91), its monolithic class Renormalize-only
  (:147-156), V4's router RoutingMethodType.DeepseekV4 (fused_moe/config.py 0.20.0:133-137): the modular class, whose
  workspace is its output M x K alone (:273-288; the unpadded K from 0.21.0 :277);
- DeepGEMM on SM10x and, from 0.24, SM12x (experts/deep_gemm_moe.py 0.20.0:354-360, 0.24.0:423-430);
- Marlin from capability 7.5 (MarlinExpertsBase._supports_current_device, every release);
- tiles: mxfp4_round_up_hidden_size_and_intermediate_size (0.24.0 :633-655: TRT-LLM 256 / 256, Marlin 256 / 128,
  DeepGEMM 128 / 128; 0.27.0 :636-662: TRT-LLM's intermediate to 128; Humming in the last branch, the intermediate to
  64, 0.32.0 :816-896).
DeepSeek-V4-Flash (model_specs): hidden 4,096, 256 routed experts of intermediate 2,048, 6 a token; -Pro: hidden 7,168,
384 experts of 3,072, 6 a token. At TP 8 a rank holds Flash's 256 and Pro's 384 of each expert's intermediate.
"""

from __future__ import annotations

import pytest

from kvplan.engines import EngineFlags, get_engine
from kvplan.engines.vllm_budget import loaded_weights
from kvplan.engines.vllm_mxfp4 import kernel
from kvplan.engines.vllm_profile import moe_workspace
from kvplan.engines.vllm_versions import behaviour
from kvplan.model.quantization import with_quantization
from kvplan.model.sources import resolve
from kvplan.plan.catalog import find_gpu

MiB = 2**20
FLASH, PRO = "deepseek-ai/DeepSeek-V4-Flash", "deepseek-ai/DeepSeek-V4-Pro"
TOKENS = 8192  # the profile's max_num_batched_tokens for V4 at its default length


def _kernel(model: str, version: str, gpu: str, layout=None):
    return kernel(resolve(model, None), version, find_gpu(gpu), layout)


@pytest.mark.parametrize("version, gpu, name, tiles", [
    # Hopper: Marlin until Humming joins the list (0.32) and prioritize_humming puts it first on SM90
    ("0.20.0", "H200", "Marlin", (256, 128)),
    ("0.31.0", "H100-80GB-SXM", "Marlin", (256, 128)),
    ("0.32.0", "H200", "Humming", (1, 64)),
    ("0.34.0", "H100-80GB-SXM", "Humming", (1, 64)),
    # SM10x: TRT-LLM, both sizes to 256 up to 0.26, the intermediate to 128 from 0.27; B300 (10.3) is of the family
    ("0.20.0", "B200", "FlashInfer TRT-LLM (MXFP8 activations)", (256, 256)),
    ("0.26.0", "B300", "FlashInfer TRT-LLM (MXFP8 activations)", (256, 256)),
    ("0.27.0", "B200", "FlashInfer TRT-LLM (MXFP8 activations)", (256, 128)),
    ("0.34.0", "B300", "FlashInfer TRT-LLM (MXFP8 activations)", (256, 128)),
    # SM12x: Marlin until DeepGEMM's device check takes family 120 (0.24)
    ("0.23.0", "RTX-PRO-6000-Server", "Marlin", (256, 128)),
    ("0.24.0", "RTX-PRO-6000-Server", "DeepGEMM (FP8 activations)", (128, 128)),
    ("0.34.0", "RTX-5090", "DeepGEMM (FP8 activations)", (128, 128)),
    # Ampere: Marlin in every release (Humming ahead of it on 9.0 only)
    ("0.34.0", "A100-80GB", "Marlin", (256, 128)),
])
def test_v4_kernel_by_release_and_gpu(version, gpu, name, tiles):
    mxfp4 = _kernel(FLASH, version, gpu)
    assert mxfp4.name == name
    assert (mxfp4.backend.hidden_tile, mxfp4.backend.inter_tile) == tiles
    assert mxfp4.modular  # no monolithic class takes V4's router (TRT-LLM's) or exists (the rest)


def _weights(model: str, gpu: str, version: str) -> int:
    budget = get_engine(f"vllm=={version}").budget(resolve(model, None), 8, find_gpu(gpu), 0.9)
    return next(t for t in budget.terms if t.name == "weights").bytes


def test_pro_pads_its_experts_by_a_third_on_trt_llm_before_0_27():
    """Pro at TP 8: a rank's intermediate 3,072 / 8 = 384, to 512 under TRT-LLM's 256 (0.20-0.26), as is under its
    128 from 0.27. Every MXFP4 byte of a rank's experts scales by 512 / 384 (w13 [2 I', H] and its scale [2 I', H / 32];
    w2 [H, I'] and [H, I' / 32]): the bundled spec's experts group holds 822,054,223,872 bytes, a rank 1/8, a third of
    that more. The rest of the budget's weights term is the same in both releases (no sparse buffer differs: 0.24 and
    0.26 both precede the 0.27 top-k indices)."""
    extra = 822_054_223_872 // 8 // 3  # 34,252,259,328 bytes, 31.9 GiB
    assert abs(_weights(PRO, "B200", "0.24.0") - _weights(PRO, "B200", "0.26.0")) < MiB
    assert abs(_weights(PRO, "B200", "0.26.0") - _weights(PRO, "H200", "0.26.0") - extra) < MiB


@pytest.mark.parametrize("model, padded", [(FLASH, False), (PRO, True)])
def test_checkpoint_weights_padded_only_where_a_tile_bites(model, padded):
    """Flash at TP 8: 2,048 / 8 = 256 and 4,096 are multiples of every tile (256, 128, 64): the loaded weights do not
    depend on the kernel. Pro's 384 is not a multiple of 256 (TRT-LLM up to 0.26). The sparse index buffers, which
    differ by GPU, are left out (loaded_weights: the checkpoint as the kernel loads it)."""
    spec = resolve(model, None)
    loaded = {(gpu, version): loaded_weights(spec, 8, None, kernel(spec, version, find_gpu(gpu)))[0]
              for gpu, version in (("H200", "0.26.0"), ("B200", "0.26.0"), ("A100-80GB", "0.26.0"),
                                   ("H200", "0.34.0"), ("RTX-PRO-6000-Server", "0.34.0"))}
    others = [weights for key, weights in loaded.items() if key != ("B200", "0.26.0")]
    assert max(others) - min(others) < MiB
    assert (loaded["B200", "0.26.0"] - min(others) > MiB) is padded


def _kept(model: str, version: str, gpu: str, layout=None) -> int:
    spec = resolve(model, None)
    return moe_workspace(spec, 8, TOKENS, behaviour(version), layout, kernel(spec, version, find_gpu(gpu), layout))


@pytest.mark.parametrize("model, version, gpu, per_token", [
    # Marlin: workspace1 (M k, max(N, K)) + workspace2 (M k max(2 N, K)), N a rank's intermediate (marlin_moe.py
    # 0.32.0:686-700): Flash 6 x (4,096 + 4,096) x 2; Pro 6 x (7,168 + 7,168) x 2. The 0.75 GiB an audit found
    # uncounted for Flash: 98,304 x 8,192 = 805,306,368 bytes
    (FLASH, "0.30.0", "H200", 98_304),
    (PRO, "0.20.0", "H100-80GB-SXM", 172_032),
    # Humming, indexed (no EP): workspace1 max(output K x 2, quantised down input k I', quantised input K) = 8,192,
    # workspace2 max(down output k K x 2, gate-up output k 2 I' x 2) = 49,152 (fused_humming_moe.py 0.32.0:453-581)
    (FLASH, "0.32.0", "H200", 8192 + 49_152),
    (FLASH, "0.34.0", "H200", 8192 + 49_152),
    # TRT-LLM: the output alone, M x 4,096 x 2 (trtllm_mxfp4_moe.py 0.34.0:330-345)
    (FLASH, "0.30.0", "B200", 8192),
    (PRO, "0.24.0", "B200", 14_336),
])
def test_kept_workspace_by_hand(model, version, gpu, per_token):
    assert _kept(model, version, gpu) == TOKENS * per_token


def test_humming_grouped_under_expert_parallelism():
    """--enable-expert-parallel: get_humming_moe_gemm_type picks the grouped GEMM (fused_humming_moe.py 0.32.0:
    109-126), whose quantised input is permuted, M k rows; whole experts, I' = 2,048. 0.32 quantises to bf16 (no
    activation key from V4's quant config, quant_config.py 0.32.0:196): workspace1 max(8,192, 6 x 2,048 x 2,
    6 x 4,096 x 2) = 49,152 and workspace2 6 x max(4,096, 4,096) x 2 = 49,152. 0.33 on hand it MXFP8, run on Hopper
    as block FP8 (quant_config.py 0.33.0:227, oracle/mxfp4.py 0.33.0:512-530), one byte an element: workspace1
    max(8,192, 12,288, 24,576)."""
    spec = resolve(FLASH, None)
    layout = EngineFlags(enable_expert_parallel=True).moe_layout(spec, 8, (0, 32))
    assert _kept(FLASH, "0.32.0", "H200", layout) == TOKENS * (49_152 + 49_152)
    assert _kept(FLASH, "0.34.0", "H200", layout) == TOKENS * (24_576 + 49_152)


@pytest.mark.parametrize("version, first", [("0.30.0", 4096), ("0.34.0", 2048)])
def test_deepgemm_workspace_on_sm12x(version, first):
    """Flash at TP 4 on an RTX PRO 6000: I' = 512, K = 4,096, 256 experts on the rank. M_sum = round_up(8,192 x 6 +
    min(49,152, 256) x 127, 128) = 81,664 rows (deep_gemm_utils.py 0.24.0:26-82, DeepGEMM's alignment 128);
    workspace1 81,664 x max(512, 4,096), in bf16 elements up to 0.30 and FP8 bytes from 0.31 (half the elements,
    _fp8_workspace_shape), above the output 8,192 x 4,096 it holds; workspace2 81,664 x max(1,024, 4,096); two bytes
    an element (experts/deep_gemm_moe.py 0.30.0:484-486, 0.34.0:538-545)."""
    spec = resolve(FLASH, None)
    mxfp4 = kernel(spec, version, find_gpu("RTX-PRO-6000-Server"))
    kept = moe_workspace(spec, 4, TOKENS, behaviour(version), None, mxfp4)
    assert kept == (81_664 * first + 81_664 * 4096) * 2  # 1,337,982,976 in 0.30, 1,003,487,232 in 0.34


def _peak(gpu: str, version: str, context: int) -> int:
    budget = get_engine(f"vllm=={version}").budget(resolve(FLASH, None), 8, find_gpu(gpu), 0.9, context=context)
    return next(t for t in budget.terms if t.name == "profile_peak").bytes


def test_the_experts_and_the_prefill_gather_share_one_workspace():
    """The modular kernel's buffers and V4's prefill gather both come from the process-wide workspace manager, one
    tensor grown to the largest request and freed before it grows (v1/worker/workspace.py 0.32.0
    _ensure_workspace_size): on an H200 (0.30, Marlin's 0.75 GiB) the gather of a 16K and of a 32K context both fit
    in the experts' workspace, so the peak does not move with the length; on a B200 (TRT-LLM's 64 MiB) the gather
    outgrows it and the peak grows with the context."""
    assert _peak("H200", "0.30.0", 16384) == _peak("H200", "0.30.0", 32768)
    assert _peak("B200", "0.30.0", 32768) > _peak("B200", "0.30.0", 16384)


def test_quantization_mxfp4_on_another_moe_by_release():
    """--quantization mxfp4 on Qwen3-30B-A3B (a bf16 checkpoint): Mxfp4Config gives every MoE GptOssMxfp4MoEMethod in
    0.20-0.26 (quantization/mxfp4.py 0.24.0:89), Mxfp4MoEMethod from 0.27 (_make_moe_method, 0.27.0:77-80); from 0.28
    the flag builds the online method (weight_utils.py 0.28.0:318-325), not read."""
    spec = with_quantization(resolve("Qwen/Qwen3-30B-A3B", None), "mxfp4")
    hopper = find_gpu("H100-80GB-SXM")
    assert kernel(spec, "0.24.0", hopper).name == "OAI Triton"
    assert kernel(spec, "0.27.0", hopper).name == "Marlin"
    assert kernel(spec, "0.27.0", find_gpu("B200")).modular is False  # a softmax router: TRT-LLM's monolithic class
    assert "not read" in kernel(spec, "0.28.0", hopper).name


def test_fp32_biases_and_one_dimension_padding_at_tp_8():
    """gpt-oss-120b at TP 8 (I = 2,880 / 8 = 360 a rank): OAI Triton on an H100 (0.32) pads I' to 384 (64) and keeps
    H = 2,880, Marlin on an A100 pads I' to 384 (128) and H' to 3,072. An expert of a layer on a rank: Triton
    3 x 384 x 2,880 x 17/32 + (2 x 384 + 2,880) x 4 (float32 biases, w2_bias [E, H] whole on every rank:
    quantization/mxfp4.py 0.32.0:272-291) = 1,762,560 + 14,592 = 1,777,152; Marlin 3 x 384 x 3,072 x 17/32
    + (2 x 384 + 3,072) x 2 = 1,880,064 + 7,680 = 1,887,744. The rest of the checkpoint is the same on both GPUs."""
    def weights(gpu: str) -> int:
        budget = get_engine("vllm==0.32.0").budget(resolve("openai/gpt-oss-120b", None), 8, find_gpu(gpu), 0.9)
        return next(t for t in budget.terms if t.name == "weights").bytes
    assert abs(weights("H100-80GB-SXM") - weights("A100-80GB") - 4608 * (1_777_152 - 1_887_744)) < MiB
