"""--quantization mxfp4 on a checkpoint without a quantization config, from vLLM 0.28: the online MXFP4 method
(OnlineQuantizationConfig, vllm_quant.ONLINE_SINCE), what it quantises, which MoE kernel it picks, and what it keeps.

Read in the wheels of 0.28.0, 0.29.0, 0.30.0, 0.31.0, 0.32.0, 0.33.0, 0.34.0 (paths under vllm/model_executor/layers/
unless named):
- What it quantises: the shorthand sets both specs, linear=kMxfp4Static and moe=kMxfp4Static (config/quantization.py
  0.28.0:135-138, 0.32.0:211-214, 0.34.0:291-294), so OnlineQuantizationConfig.get_quant_method gives every
  LinearBase Mxfp4OnlineLinearMethod and every RoutedExperts Mxfp4OnlineMoEMethod (quantization/online/base.py
  0.28.0:67-83, :157-182; 0.32.0 :400-411; 0.34.0 :462-499): attention, dense MLP and shared-expert projections
  become MXFP4 as well as the routed experts; the embedding and the LM head (VocabParallelEmbedding, not a
  LinearBase) stay in the model dtype. Before 0.28 Mxfp4Config quantises the experts alone (vllm_budget
  loaded_weights). Routers built with the quant config (Qwen3-MoE's GateLinear, a ReplicatedLinear: fused_moe/router/
  gate_linear.py 0.32.0:21) are quantised too; kvplan keeps them in the model dtype (Qwen3-30B-A3B: 25 MB).
- A linear's bytes: Mxfp4OnlineLinearMethod quantises the bf16 weight after loading (mxfp4_quantize: uint8 [N, K/2]
  and one E8M0 byte per 32 inputs, [N, K/32]; quantization/online/mxfp4.py 0.28.0:117-129) and hands it to the
  linear kernel (model_executor/kernels/linear/__init__.py 0.28.0:553-566, 0.32.0 the same list): FlashInfer's CuteDSL
  W4A4 on capability 10.0 and up (kernels/linear/mxfp4/flashinfer.py 0.32.0:25-47: the scales' rows padded to 128,
  not counted), else Marlin W4A16 from 7.5 (marlin.py :14-44; marlin_utils_fp4.py :219-290: the weight repacked
  at 4 bits, the scales kept as E8M0 bytes, padding only off Marlin's 64 x 128 tile): 4.25 bits a weight, as kvplan
  prices a stored MXFP4 matrix (params.quantized_bytes).
- The bf16 weights are not kept: OnlineMoEMethodBase creates them on the meta device and QeRL's layerwise loader
  materialises and quantises one layer at a time (quantization/online/moe_base.py 0.32.0:22-104; the linear base
  likewise, online/fp8.py :123-179). That transient peak precedes memory_profiling, which resets the peak statistics
  as it starts (utils/mem_utils.py 0.28.0:291, 0.32.0:286, 0.34.0:301; gpu_worker.py 0.32.0:679-681 passes the
  loaded model_memory_usage as the weights): the weights vLLM logs are the MXFP4 ones, the peak not in the budget.
- The MoE kernel: Mxfp4OnlineMoEMethod asks select_mxfp4_moe_backend for MXFP4 activations (kMxfp4Dynamic,
  quantization/online/mxfp4.py 0.28.0:140-154, 0.32.0:142-156), which walks gpt-oss's priority list through
  _filter_by_activation.
  - 0.28-0.31: the filter keeps only the backends of that activation, and EMULATION (fused_moe/oracle/mxfp4.py
    0.28.0:426-441, :503-505; 0.31.0:467-483, :608-610): AITER_MXFP4_MXFP4 (ROCm) and the OCP MX emulation, which
    needs amd-quark (experts/ocp_mx_emulation_moe.py 0.28.0:100-116; not among the wheel's Requires-Dist). On a CUDA
    GPU no backend is left and model loading stops at "No MXFP4 MoE backend supports the deployment configuration"
    (oracle/mxfp4.py 0.28.0:547-556): online_refusal.
  - 0.32 on: the BF16-activation backends follow as a fallback (oracle/mxfp4.py 0.32.0:545-562, 0.33.0:614-631),
    and CUTLASS_MXFP4_MXFP4 joins the list (0.32.0:389-422, 0.34.0:421-458) with MXFP4 activations
    (_backend_activation_key :452-470). CutlassExpertsMxfp4 runs where vLLM's mxfp4_experts_quant_supported says so:
    100 <= capability < 120 with CUDA 12.9 or newer (csrc/quantization/fp4/mxfp4_experts_quant.cu
    mxfp4_experts_quant_sm_supported; experts/cutlass_moe.py 0.32.0:1032-1039): B200, B300, GB200, SM11x. Elsewhere
    the BF16 list: FlashInfer TRT-LLM BF16 only on the SM10x family, so OAI Triton on Hopper (9.0 <= capability; its
    monolithic class with one DP rank, as gpt-oss's), Marlin on Ampere / Ada (Triton from 9.0) and on SM12x (where
    0.32 moves Triton behind Marlin, :412-420). Humming stays behind Triton on Hopper (prioritize_humming moves it
    ahead of Marlin only).
  - ROCm (AITER W4A4 on gfx950) is not modelled: Marlin's tile, labelled.
  The table and the kernel it gives are vllm_mxfp4.ONLINE_RULES and online_kernel (beside gpt-oss's, whose Backend
  and Mxfp4Kernel they reuse).
- Tiles (mxfp4_round_up_hidden_size_and_intermediate_size, oracle/mxfp4.py 0.32.0:840-843, 0.34.0:846-849):
  CUTLASS_MXFP4_MXFP4 rounds both sizes up to 128, OAI Triton the intermediate to 64, Marlin the intermediate to 128
  and the hidden size to 256 (vllm_mxfp4.Backend). CUTLASS keeps the quantised uint8 weights as they are and its
  scales swizzled in place, the same [E, N, K/32] bytes (convert_weight_to_mxfp4_moe_kernel_format, 0.32.0
  :1513-1521, _swizzle_cutlass_mxfp4_scales :117-127): 4.25 bits a weight at the padded sizes.
- Kept workspace: CutlassExpertsMxfp4 is modular (FusedMoEExpertsModular), its buffers the workspace manager's
  (modular_kernel.py 0.32.0:1141-1150: workspace13 and the output share one buffer): workspace1 M k x max(2 N, K),
  workspace2 M k x N, output M x K, in the activations' dtype (experts/cutlass_moe.py 0.32.0:1076-1093, 0.34.0
  :1103-1120): max(M k max(2 N, K), M K) + M k N elements.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from ..model.quantization import requantized
from .figures import Refusal
from .vllm_mxfp4 import ONLINE_BF16_FALLBACK_SINCE, has_mxfp4_experts
from .vllm_quant import ONLINE_SINCE, REMEDY_FLAGS
from .vllm_versions import parse_version

# linears Mxfp4OnlineLinearMethod quantises (module docstring); kvplan's groups of LinearBase layers
LINEAR_GROUPS = ("attention", "linear", "dense", "shared_experts")
_DENSE_NOTE = "mxfp4 quantises routed experts only"  # model/quantization.with_quantization's note, true before 0.28
REFUSAL = ("vLLM {version} cannot serve this MoE model with --quantization mxfp4 on a CUDA GPU: the online MXFP4 "
           "method asks for MXFP4 activations, which only ROCm's AITER and the amd-quark emulation take before 0.32, "
           "so model loading stops at \"No MXFP4 MoE backend supports the deployment configuration.\"")


def applies(spec, version: str) -> bool:
    """Whether --quantization mxfp4 runs the online method: asked of a checkpoint without a quantization config, from
    ONLINE_SINCE."""
    return getattr(spec, "quantization_asked", "") == "mxfp4" and not getattr(spec, "quantization", "") \
        and parse_version(version) >= ONLINE_SINCE["mxfp4"]


def online_view(spec, version: str):
    """`spec` as the online method loads it (module docstring): its linear layers in MXFP4 too; unchanged before
    0.28, for a checkpoint with its own quantization config, or once its linears are re-priced."""
    if not applies(spec, version):
        return spec
    if not any(g.name in LINEAR_GROUPS and g.parameters and g.stored == spec.dtype for g in spec.params):
        return spec
    spec = requantized(spec, LINEAR_GROUPS, "mxfp4", "vLLM's online mxfp4 quantises the linear layers too")
    return replace(spec, notes=tuple(n for n in spec.notes if not n.startswith(_DENSE_NOTE)))


def online_refusal(spec, capability, version: str) -> Optional[Refusal]:
    """Model loading's stop in 0.28-0.31 for a model with routed experts on a CUDA GPU (module docstring)."""
    from .vllm_sparse import is_rocm_platform

    if not capability or is_rocm_platform(capability) or not applies(spec, version) \
            or parse_version(version) >= ONLINE_BF16_FALLBACK_SINCE or not has_mxfp4_experts(spec):
        return None
    reason = REFUSAL.format(version=version)
    later = "vllm==" + ".".join(map(str, ONLINE_BF16_FALLBACK_SINCE)) + ".0"
    return Refusal(reason, None, configuration=True, field="quantization", headline=reason.split(": ")[0],
                   remedy=f"vLLM accepts --engine {later} or newer, or the model without --quantization",
                   fix_field="engine", options=(later,), onward="newer", remedy_flags=REMEDY_FLAGS)
