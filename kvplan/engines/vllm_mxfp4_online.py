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
  loaded_weights). Of each group only the LinearBase weight matrices (ParamGroup.linear): the norms beside them
  (Qwen3's q/k norms, MLA's kv_a_layernorm: RMSNorm, no quant method), biases and sinks stay in the model dtype.
- Routers: a LinearBase built with quant_config None takes UnquantizedLinearMethod and never asks the online config
  (layers/linear.py 0.32.0:288-291); one built with it gets Mxfp4OnlineLinearMethod (online/base.py 0.32.0:289-311,
  the shorthand ignoring nothing, config/quantization.py 0.32.0:121). Qwen3-MoE builds its gate with it
  (qwen3_moe.py 0.28.0:167-171 ReplicatedLinear, 0.31.0 on GateLinear, a ReplicatedLinear: 0.32.0:170-174,
  fused_moe/router/gate_linear.py :21; a quantised gate drops GateLinear's special kernels, :103-104), as Qwen3-VL's
  MoE text model (qwen3_vl_moe.py 0.32.0:47-51 reuses the block) and LFM2-MoE (lfm2_moe.py 0.28.0:128-132, 0.32.0
  :128-131) do: QUANTISED_ROUTERS. The rest build it without (0.28.0-0.34.0 read): Qwen2-MoE (qwen2_moe.py 0.32.0
  :142-146), Mixtral (mixtral.py :111-116), DeepSeek-V2/V3 and Kimi (deepseek_v2.py :321-326), OLMoE (olmoe.py
  :89-93), GLM-4 MoE (glm4_moe.py :141-147, float32), Qwen3-Next / Qwen3.5 (qwen3_next.py :191-195), Llama 4
  (llama4.py :101-105), Jamba (jamba.py :77-82), Nemotron-H (nemotron_h.py :160-166), Gemma 4 (gemma4.py
  :325-331). Shared-expert gates (Qwen2-MoE, Qwen3-Next: quant_config=None, qwen2_moe.py 0.32.0:148-152) stay
  bf16; shared experts' MLPs are quantised. Qwen3-30B-A3B: 48 x 128 x 2,048 gate weights, 18.5 MB less.
- A linear's bytes: Mxfp4OnlineLinearMethod quantises the bf16 weight after loading (mxfp4_quantize: uint8 [N, K/2]
  and one E8M0 byte per 32 inputs, [N, K/32]; quantization/online/mxfp4.py 0.28.0:117-129) and hands it to the
  linear kernel (model_executor/kernels/linear/__init__.py 0.28.0:553-566, 0.32.0:607-616, 0.34.0:626-629):
  FlashInfer's CuteDSL W4A4 on capability 10.0 and up (kernels/linear/mxfp4/flashinfer.py 0.32.0:25-47), else
  Marlin W4A16 from 7.5 (marlin.py :14-44): 4.25 bits a weight, as kvplan prices a stored MXFP4 matrix
  (params.quantized_bytes), plus what the kernel pads (linear_padding): CuteDSL replaces the scales by their
  swizzled copy, [ceil(N/128) x 128, ceil(K/128) x 4] bytes (flashinfer.py 0.28.0 and 0.34.0 :38-47;
  swizzle_mxfp4_scales, fused_moe/experts/cutlass_moe.py 0.32.0:980-1021), the weight as quantised; Marlin repacks
  weight and scales at marlin_padded_nk's tile, N to 64 and K to 128 or N to 128 and K to 64, the smaller
  (quantization/utils/marlin_utils.py 0.28.0:221, 0.32.0:222-244; marlin_utils_fp4.py 0.32.0:231-290, the scales
  back to E8M0 bytes). N and K are a rank's partition (output_size_per_partition, input_size_per_partition:
  marlin_utils_fp4.py 0.32.0:231-232; the scales CuteDSL swizzles are the partition's): the fused module's shape
  (qkv_proj, gate_up_proj) split by its outputs, a row-parallel one's (o_proj, down_proj) by its inputs, a
  replicated one whole (params.LinearShape.on_rank). DeepSeek-V2-Lite on B200: kv_a_proj_with_mqa's 576 scale rows
  to 640, 112 KiB in all at tp 1, 114 KiB a rank at tp 2 (the dense layer's 5,472-input down_proj and 10,944-row
  gate_up_proj pad too).
- A partition whose input width is no multiple of 32 stops the model's build: create_weights' ValueError "MXFP4
  requires input_size_per_partition (K) to be divisible by 32." (quantization/online/mxfp4.py 0.28.0:100-104,
  0.32.0:101-105, 0.34.0:107-111), on any platform: block_refusal. Gemma 3n's AltUp coefficients (ReplicatedLinear
  of altup_num_inputs, 4, inputs with the quant config: gemma3n.py 0.32.0:89-110) at any tp; DeepSeek-V2-Lite's
  dense down_proj at tp 4 (2,736).
- Other ReplicatedLinears built with the quant config are quantised as any linear: Gemma 4's and Gemma 3n's
  per_layer_input_gate / per_layer_projection (gemma4.py 0.32.0:682-697, 0.34.0:704-719; gemma3n.py 0.32.0:493-506),
  in kvplan's dense group. ERNIE-4.5-VL's text / vision expert gates too (ernie45_vl_moe.py 0.32.0, 0.34.0
  :255-262, :292-299), a family kvplan does not read (its config refused: moe_num_experts a list).
- MLA (DeepSeek-V2-Lite): kv_b_proj is a ColumnParallelLinear built with the quant config (deepseek_v2.py 0.32.0
  :1099-1103), so MXFP4; split_kv_b_proj dequantises it through get_and_maybe_dequant_weights' generic path, the
  quant method run on an identity (quantization/utils/quant_utils.py 0.28.0:544-555, 0.32.0:559-571, 0.34.0
  :576-587), into a new [kv_lora_rank, heads x (nope + v)] tensor in the activation dtype whose views MLAAttention
  keeps as W_UV and W_UK_T (layers/attention/mla_attention.py 0.32.0:407-416, :1248-1255, :1325-1327; 0.34.0
  :416-425, :1534-1536): vllm_budget.mla_dequantized_copies, as for fp8 (the attention group is no longer 16-bit).
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
- Per-call scratch beside it (run_cutlass_moe_mxfp4, experts/cutlass_moe.py 0.32.0:831-977, 0.34.0 from :841; the
  caching allocator's, so in the profile peak, freed after the layer: vllm_mxfp4.Mxfp4Kernel.scratch): the int32 row
  maps a_map and c_map (M k each); the input permuted to M k x K (shuffle_rows, _custom_ops.py 0.32.0:932-943),
  which the local `a` keeps alive to the end; and at the fullest of three moments: the input quantised for the first
  GEMM, M k x K/2 bytes and E8M0 scales of VLLM_MAX_TOKENS_PER_EXPERT_FP4_MOE (163,840, envs.py 0.32.0:1844-1846)
  x k rows of ceil(K/128) int32, whatever the batch (mxfp4_experts_quant, _custom_ops.py 0.32.0:1720-1776); the
  activated intermediate quantised likewise at N (silu_and_mul_mxfp4_experts_quant :1779-1819); or the end, where
  the second GEMM's M k x K output is permuted back into a new tensor, multiplied by the router weights into another
  and summed to M x K (cutlass_moe.py 0.32.0:964-973). K and N are the padded sizes, in the activations' dtype but
  the quantised bytes. 0.34 adds sorted_expert_ids (M k int32 more, above 16 experts): not counted. Qwen3-30B-A3B
  on B200 over 8,192 tokens (k 8, K 2,048): 3 x 65,536 x 2,048 x 2 + 8,192 x 2,048 x 2 bytes at the end, 800 MiB
  with the maps, beside a kept workspace of 352 MiB.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from ..model.kinds import round_up
from ..model.quantization import requantized
from ..plan.sharding import layer_share
from .figures import Refusal
from .vllm_mxfp4 import ONLINE_BF16_FALLBACK_SINCE, has_mxfp4_experts
from .vllm_quant import ONLINE_SINCE, REMEDY_FLAGS, unquantised_words
from .vllm_versions import parse_version

# linears Mxfp4OnlineLinearMethod quantises (module docstring); kvplan's groups of LinearBase layers
LINEAR_GROUPS = ("attention", "linear", "dense", "shared_experts")
# model types whose MoE gate is built with the quant config (module docstring: qwen3_moe.py 0.28.0:167-171,
# 0.32.0:170-174; lfm2_moe.py 0.32.0:128-131), so the online method quantises the router matrix too; Qwen3-VL's
# MoE text model reuses Qwen3MoeSparseMoeBlock (qwen3_vl_moe.py 0.32.0:47-51)
QUANTISED_ROUTERS = ("qwen3_moe", "qwen3_vl_moe", "qwen3_vl_moe_text", "lfm2_moe")
# Mxfp4OnlineLinearMethod.create_weights refuses a partition whose input width is no multiple of MXFP4's block
# (quantization/online/mxfp4.py 0.28.0:100-104, 0.32.0:101-105, 0.34.0:107-111: a ValueError while the model is built)
MXFP4_BLOCK = 32
BLOCK_REFUSAL = "MXFP4 requires input_size_per_partition ({width}) to be divisible by 32."
_DENSE_NOTE = "mxfp4 quantises routed experts only"  # model/quantization.with_quantization's note, true before 0.28
REFUSAL = ("vLLM {version} cannot serve this MoE model with --quantization mxfp4 on a CUDA GPU: the online MXFP4 "
           "method asks for MXFP4 activations, which only ROCm's AITER and the amd-quark emulation take before 0.32, "
           "so model loading stops at \"No MXFP4 MoE backend supports the deployment configuration.\"")


def applies(spec, version: str) -> bool:
    """Whether --quantization mxfp4 runs the online method: asked of a checkpoint without a quantization config, from
    ONLINE_SINCE."""
    return getattr(spec, "quantization_asked", "") == "mxfp4" and not getattr(spec, "quantization", "") \
        and parse_version(version) >= ONLINE_SINCE["mxfp4"]


def quantised_groups(spec) -> tuple:
    """The groups whose LinearBase matrices the online method quantises: LINEAR_GROUPS, and the router where the
    family builds its gate with the quant config (QUANTISED_ROUTERS)."""
    return LINEAR_GROUPS + (("router",) if spec.model_type in QUANTISED_ROUTERS else ())


def online_view(spec, version: str):
    """`spec` as the online method loads it (module docstring): its linear layers in MXFP4 too; unchanged before
    0.28, for a checkpoint with its own quantization config, or once its linears are re-priced."""
    if not applies(spec, version):
        return spec
    names = quantised_groups(spec)
    if not any(g.name in names and g.linear is not None and g.linear.stored == spec.dtype for g in spec.params):
        return spec
    spec = requantized(spec, names, "mxfp4", "vLLM's online mxfp4 quantises the linear layers too")
    return replace(spec, notes=tuple(n for n in spec.notes if not n.startswith(_DENSE_NOTE)))


def linear_kernel(capability) -> str:
    """The MXFP4 linear kernel init_mxfp4_linear_kernel picks on a CUDA GPU (module docstring): "cutedsl" from
    capability 10.0, "marlin" from 7.5, "" below (or unknown)."""
    capability = tuple(capability or ())
    return "cutedsl" if capability >= (10, 0) else "marlin" if capability >= (7, 5) else ""


def linear_padding(spec, capability, tp: int, stage=None) -> int:
    """Bytes the MXFP4 linear kernel keeps beyond 4.25 bits a weight of the online-quantised linears (module
    docstring) on one rank of `tp`, each matrix at that rank's partition (LinearShape.on_rank): CuteDSL's swizzled
    scales, rows padded to 128 and scale columns to 4; Marlin's weight and scales at marlin_padded_nk's tile. Of
    pipeline `stage` (None: the whole model) only its own layers' matrices (sharding.layer_share: the rest are
    PPMissingLayer, never built), spread over the layers as stage_weights spreads their bytes. 0 on ROCm (not
    modelled) and without online-quantised linears."""
    kind = linear_kernel(capability)
    if not kind:
        return 0
    extra = 0
    for shape, count in _quantised_shapes(spec, ("mxfp4",)):
        rows, cols = shape.on_rank(tp)
        if kind == "cutedsl":
            extra += count * (round_up(rows, 128) * round_up(cols // 32, 4) - rows * cols // 32)
        else:
            padded_rows, padded_cols = marlin_padded(rows, cols)
            extra += count * (padded_rows * padded_cols - rows * cols) * 17 // 32
    return int(extra * layer_share(spec, stage))


def _quantised_shapes(spec, stored: tuple) -> list:
    """(LinearShape, how many) of the linear matrices the online method quantises, of the groups stored as `stored`
    names."""
    names = quantised_groups(spec)
    return [shape for g in spec.params if g.name in names and g.linear is not None and g.linear.stored in stored
            for shape in g.linear.shapes]


def marlin_padded(rows: int, cols: int) -> tuple:
    """marlin_padded_nk for MXFP4's group of 32 (module docstring): the cheaper of (N to 64, K to 128) and (N to
    128, K to 64), by area and then by perimeter."""
    return min(((round_up(rows, 64), round_up(cols, 128)), (round_up(rows, 128), round_up(cols, 64))),
               key=lambda nk: (nk[0] * nk[1], nk[0] + nk[1]))


def online_refusal(spec, capability, version: str, tp: int = 1) -> Optional[Refusal]:
    """Model loading's stop in 0.28-0.31 for a model with routed experts on a CUDA GPU (module docstring), or on any
    platform for a linear whose rank's input width is no multiple of 32 (block_refusal)."""
    from .vllm_sparse import is_rocm_platform

    if applies(spec, version) and (refusal := block_refusal(spec, version, tp)):
        return refusal
    if not capability or is_rocm_platform(capability) or not applies(spec, version) \
            or parse_version(version) >= ONLINE_BF16_FALLBACK_SINCE or not has_mxfp4_experts(spec):
        return None
    reason = REFUSAL.format(version=version)
    later = "vllm==" + ".".join(map(str, ONLINE_BF16_FALLBACK_SINCE)) + ".0"
    return Refusal(reason, None, configuration=True, field="quantization", headline=reason.split(": ")[0],
                   remedy=f"vLLM accepts --engine {later} or newer, or the model without --quantization",
                   fix_field="engine", options=(later,), onward="newer", remedy_flags=REMEDY_FLAGS)


def block_refusal(spec, version: str, tp: int) -> Optional[Refusal]:
    """Mxfp4OnlineLinearMethod.create_weights' stop (module docstring) for the quantised linear whose partition's
    input width (LinearShape.on_rank) is no multiple of 32: the narrowest where several are (vLLM names the first it
    builds). Gemma 3n's AltUp coefficients (4 inputs) at any tp; DeepSeek-V2-Lite's dense down_proj (10,944 / 4 =
    2,736) at tp 4."""
    widths = sorted(shape.on_rank(tp)[1] for shape, _ in _quantised_shapes(spec, (spec.dtype, "mxfp4")))
    width = next((k for k in widths if k % MXFP4_BLOCK), None)
    if width is None:
        return None
    reason = BLOCK_REFUSAL.format(width=width)
    at = f" at tp {tp}" if tp > 1 else ""
    return Refusal(f"vLLM {version} stops loading the model with --quantization mxfp4{at}: {reason}", None,
                   configuration=True, field="quantization", headline=reason.rstrip("."),
                   remedy=f"vLLM accepts {unquantised_words(spec, 'mxfp4')}", remedy_flags=REMEDY_FLAGS)
