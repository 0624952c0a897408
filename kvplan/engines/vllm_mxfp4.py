"""The MoE kernel vLLM runs MXFP4 experts on (gpt-oss's; DeepSeek-V4's below), by release and GPU, and what that
choice costs the budget.

vLLM picks one kernel for every MXFP4 MoE layer at start-up (paths under vllm/model_executor/layers/ of the release
named; read in the wheels of 0.10.1, 0.10.2, 0.11.0, 0.11.1, 0.11.2, 0.12.0, 0.14.0, 0.15.1, 0.16.0, 0.17.0, 0.18.0,
0.19.0, 0.20.0, 0.23.0, 0.24.0, 0.26.0, 0.27.0, 0.28.0, 0.31.0, 0.32.0, 0.34.0; DeepSeek-V4's list in every release
0.20.0-0.34.0). What decides it is whether the OAI
Triton kernels (triton_kernels) and FlashInfer are installed, and the GPU's compute capability:
- 0.10.1: Marlin unless the GPU is SM100 (quantization/mxfp4.py:123-135 _should_use_marlin: below SM90, or without
  triton_kernels, or torch < 2.8 -- the wheel pins torch 2.7.1). SM100 without FlashInfer (an extra, not a
  dependency, up to 0.11.0) falls through to the Triton path's tile (:185-186), whose weight swizzle then imports
  triton_kernels, which nothing installs: that start-up failure is not modelled.
- 0.10.2, 0.11.0: Marlin everywhere (get_mxfp4_backend, 0.11.0 :59-107: FlashInfer absent, no triton_kernels).
- 0.11.1-0.11.2: FlashInfer becomes a dependency (the wheel's Requires-Dist flashinfer-python==0.5.2), so SM100
  (is_device_capability(100), exactly 10.0) takes FlashInfer's TRT-LLM MoE (:123 SM100_FI_MXFP4_BF16); the rest
  Marlin, triton_kernels still absent (:136-142).
- 0.12-0.13: the wheel vendors triton_kernels (vllm/third_party/triton_kernels; utils/import_utils.py
  :431-438 has_triton_kernels finds it), so 9.0 <= capability < 11.0 runs OAI Triton where TRT-LLM does not
  (:153-166): Hopper, and B300 (SM103, not exactly 10.0: :141 asks is_device_capability(100)).
- 0.14-0.18: the SM10x family takes TRT-LLM (is_device_capability_family(100), 0.14.0 :120-141), Hopper OAI Triton.
- 0.19 on: fused_moe/oracle/mxfp4.py select_mxfp4_moe_backend walks a priority list (0.19.0 :169-183: TRT-LLM,
  CK, Triton, FlashInfer CUTLASS, Marlin), each kernel class answering is_supported_config: TRT-LLM on the SM10x
  family with FlashInfer, OAI Triton on 9.0 <= capability < 11.0 (gpt_oss_triton_kernels_moe.py 0.19.0:887-897),
  FlashInfer CUTLASS's BF16 MXFP4 on SM90 only (after Triton), Marlin from 7.5. 0.32 widens Triton's window to
  13.0 (experts/gpt_oss_triton_kernels_moe.py 0.32.0:41-53) but moves it behind Marlin on the SM12x family
  (oracle/mxfp4.py :412-420), 0.34 on SM11x too (:445-456): SM12x (RTX 5090, RTX PRO 6000) stays on Marlin, SM11x
  runs Triton in 0.32-0.33 only.
- With LoRA (--enable-lora): Marlin from 0.11.1 (get_mxfp4_backend_with_lora, 0.11.1 :77-86), OAI Triton on
  9.0-11.0 in 0.12-0.13 (0.12.0 :82-104), Marlin again from 0.14 (0.14.0 :91-104, 0.19.0 oracle :210-223 unless
  VLLM_MXFP4_USE_MARLIN=0; from 0.23 only MarlinExperts of the listed classes supports_lora(), modular_kernel.py
  0.23.0:579, 0.34.0:691; 0.34's TRT-LLM LoRA experts only when asked for by name, oracle :596-615).
Environment overrides (VLLM_MXFP4_USE_MARLIN, VLLM_USE_FLASHINFER_MOE_MXFP4_*) and --moe-backend are not modelled;
ROCm is not modelled (kvplan keeps Marlin's tile there, as before); a CUDA GPU of unknown capability is taken as
Marlin's, vLLM's fallback.

What the kernel costs:
- Weights: create_weights allocates the experts at the kernel's tile (0.12.0 quantization/mxfp4.py:290-330; 0.19 on
  mxfp4_round_up_hidden_size_and_intermediate_size, oracle/mxfp4.py 0.19.0:376-400, 0.32.0:816-896): Marlin rounds a
  rank's intermediate size up to 128 and the hidden size to 256, OAI Triton the intermediate to 64, TRT-LLM both to
  256 up to 0.26 and the intermediate to 128 from 0.27 (0.26.0 :655-657, 0.27.0 :656-658).
- Buffers: up to 0.16 every kernel allocates its own per call and frees it after the layer. From 0.17 Marlin runs as
  MarlinExperts in the modular kernel (quantization/mxfp4.py 0.17.0:443-450; oracle MARLIN -> [MarlinExperts]), whose
  buffers come from the process-wide workspace manager, which keeps its high-water mark (modular_kernel.py
  0.19.0:1059-1066, 0.32.0:1141, 0.34.0:1267 get_simultaneous): a common buffer max(M k max(N, K), M K) and M k
  max(2 N, K), N the padded intermediate and K the padded hidden size (MarlinExperts.workspace_shapes,
  fused_marlin_moe.py 0.17.0:690-692, 0.19.0:692-694; experts/marlin_moe.py 0.32.0:712-714). OAI Triton and TRT-LLM
  stay monolithic (their own buffers) while they can: from 0.19 their monolithic classes need one DP rank and no
  EPLB (_supports_parallel_config, gpt_oss_triton_kernels_moe.py 0.19.0:917-925, experts/trtllm_mxfp4_moe.py
  0.19.0:127-135, 0.34.0:178-185); otherwise the modular OAITritonExperts takes M K (output) and M k N/2
  (gpt_oss_triton_kernels_moe.py 0.19.0:651-667, experts/ 0.32.0:1090-1106), TrtLlmMxfp4ExpertsModular only its
  output M K, K padded up to 0.20 (0.19.0 :248-263, 0.20.0 :287) and the unpadded hidden size from 0.21 (0.21.0
  :277, 0.23.0 :261, 0.32.0 :333).

Other MXFP4 experts: DeepSeek-V4's (expert_dtype fp4: DeepseekV4FP8Config gives its experts Mxfp4MoEMethod,
models/deepseek_v4.py 0.20.0:150-158, models/deepseek_v4/quant_config.py 0.34.0:227), and from 0.27 any other
model's under Mxfp4Config (a checkpoint of quant_method mxfp4, or --quantization mxfp4 before it went online), whose
_make_moe_method returns Mxfp4MoEMethod where GptOssMxfp4Config's returns GptOssMxfp4MoEMethod (quantization/
mxfp4.py 0.27.0:77-80, :144; 0.20.0-0.26.0 :89-91 give every MoE GptOssMxfp4MoEMethod, gpt-oss's list above, as
every release before 0.20 did). Mxfp4MoEMethod's selector is another list (read in every wheel 0.20.0-0.34.0;
select_mxfp4_moe_backend in 0.20.0 oracle/mxfp4.py:214-231, :425-502, select_deepseek_v4_mxfp4_moe_backend from
0.21.0 :253-273, 0.24.0 :326-350, :564-630, 0.32.0 :425-452, :742-813, 0.34.0 :461-486, :756-820; quantization/
mxfp4.py 0.20.0:469, 0.32.0:576, 0.34.0:682): FlashInfer TRT-LLM with MXFP8 activations, DeepGEMM (FP8
activations), Marlin, and from 0.32 Humming, which prioritize_humming moves ahead of Marlin on compute capability 9.0
alone (quantization/utils/humming/priority.py 0.32.0:11-50). Each kernel class answers is_supported_config:
- TRT-LLM on the SM10x family with FlashInfer (experts/trtllm_mxfp4_moe.py 0.20.0:89-91, 0.34.0:123-125): B200,
  B300, GB200.
  Its monolithic class takes Renormalize routers only (DeepSeekV3's too from 0.27: :147-156, 0.27.0 :182-190), never
  DeepSeek-V4's sqrtsoftplus one (fused_moe/config.py 0.20.0:126-139 RoutingMethodType.DeepseekV4), so V4 runs the
  modular class; another model's softmax router is taken as Renormalize (monolithic with one DP rank, no EPLB).
  Tile as gpt-oss's TRT-LLM: both sizes to 256 up to 0.26, the intermediate to 128 from 0.27 (0.24.0 :633-655,
  0.27.0 :636-662): DeepSeek-V4-Pro at TP 8 (3,072 / 8 = 384) pads its experts to 512 in 0.20-0.26.
- DeepGEMM on the SM10x family, and from 0.24 SM12x too (experts/deep_gemm_moe.py 0.20.0:354-360, 0.24.0:423-430;
  is_deep_gemm_supported: VLLM_USE_DEEP_GEMM on by default, the bundled vllm/third_party/deep_gemm, and from 0.34
  nvcc 12.9 or newer to JIT with, utils/deep_gemm.py 0.34.0:151-175, taken as present): after TRT-LLM, so it runs on
  SM12x (RTX 5090, RTX PRO 6000) alone. Tile: both sizes to 128.
- Marlin from capability 7.5 (experts/marlin_moe.py 0.34.0:514-560): Hopper up to 0.31, Ampere, Ada, SM11x, SM12x
  before 0.24.
- Humming (humming-kernels, a dependency from 0.22: its wheel's Requires-Dist) from 7.5 (fused_humming_moe.py
  0.32.0:400-407), in the list from 0.32: Hopper. Its indexed class without expert parallelism, the grouped one
  with it (get_humming_moe_gemm_type, :109-126). No tile of its own at create_weights (the round-up's last branch:
  the intermediate to 64, oracle/mxfp4.py 0.32.0:816-896); its repacking after load is not modelled.
All four are modular (their buffers the workspace manager's, kept under the sampler pass, no chunk from 0.18):
- Marlin: as gpt-oss's (workspace_shapes unchanged 0.20.0 fused_marlin_moe.py:685-700 to 0.34.0 experts/
  marlin_moe.py:638-653).
- TRT-LLM: its output M x K alone (workspace13 and workspace2 empty), the padded hidden size in 0.20 (:273-288), the
  unpadded from 0.21 (0.21.0 :263-277).
- DeepGEMM: workspace1 M_sum x max(I', K') (FP8 bytes from 0.31, _fp8_workspace_shape, 0.31.0 :508; before, in the
  activations' dtype, 0.30.0 :484), workspace2 M_sum x max(2 I', K'), the output M x K sharing workspace1's buffer,
  where M_sum = round_up(M k + min(M k, E) (128 - 1), 128) for the E experts on the rank (deep_gemm_utils.py 0.24.0
  :26-82 compute_aligned_M_and_alignment, the same to 0.34.0); the alignment taken as DeepGEMM's 128, of which it may
  pick a smaller one per call (a heuristic inside DeepGEMM, not vLLM: an upper bound).
- Humming: two buffers of the largest of the five it alternates between (_workspace_shapes, 0.32.0 :558-581;
  get_buffer_metas :453-556): workspace1 the output M K, the quantised down input M k I' and the quantised input
  (M K indexed, M k K grouped), workspace2 the down output M k K and the gate-up output M k 2 I'; the outputs in the
  activations' dtype, the quantised inputs in it in 0.32 and in FP8 from 0.33, where V4 hands the method its
  checkpoint's MXFP8 activations (models/deepseek_v4/quant_config.py 0.33.0:227), run on Hopper as block FP8
  (oracle/mxfp4.py 0.33.0:512-530).
DeepSeek-V4-Flash at TP 8 over 8,192 tokens (k = 6, K = 4,096, I' = 256): Marlin 6 x (4,096 + 4,096) x 2 = 98,304
bytes a token, 0.75 GiB; Humming (8,192 + 49,152) = 57,344, 0.44 GiB; TRT-LLM 8,192, 64 MiB.
--quantization mxfp4 on a checkpoint without a quantization config runs online from 0.28 (vllm_quant.ONLINE_SINCE:
Mxfp4OnlineMoEMethod on gpt-oss's list with MXFP4 activations): its kernels, tiles and what it quantises besides the
experts are vllm_mxfp4_online.py's.

Biases: OAI Triton and TRT-LLM hold the experts' biases in float32, converted after loading (process_weights_after_
loading: quantization/mxfp4.py 0.10.1:307-308 and :390-394, 0.12.0:470-471 and :750-754; oracle/mxfp4.py 0.19.0
:444-458 and :721-726, 0.32.0:977-991 and :1359-1363; the converted tensors replace the parameters, quantization/
mxfp4.py 0.32.0:375-376), inside load_model's DeviceMemoryProfiler (v1/worker/gpu_model_runner.py 0.32.0:5050-5137;
model_loader/base_loader.py :88-107 runs process_weights_after_loading in load_model): counted in the weights, as vLLM
logs them. Marlin keeps them in the model dtype (marlin_utils_fp4.py 0.10.1:284-287). A bias pads along its one
dimension: w13_bias [E, 2 I'] to the intermediate's tile, w2_bias [E, K'] to the hidden size's, the latter whole on
every TP rank (create_weights, quantization/mxfp4.py 0.32.0:272-291).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..model.kinds import round_up
from ..model.precision import DTYPE_BYTES
from .vllm_quant import ONLINE_SINCE
from .vllm_runner import cuda_capability, is_rocm
from .vllm_versions import parse_version


@dataclass(frozen=True)
class Backend:
    """One of vLLM's MXFP4 MoE kernels: its name in words, the tile it pads the experts' weights to, and whether it
    holds their biases in float32 (module docstring)."""

    name: str
    hidden_tile: int  # the hidden size rounded up to a multiple of this (1: as stored)
    inter_tile: int  # a rank's expert intermediate size rounded up to a multiple of this
    kind: str = ""  # whose buffers: marlin | triton | trtllm | deepgemm | humming | cutlass ("": none kept)
    fp32_biases: bool = False

    @property
    def tile_words(self) -> str:
        hidden = f"hidden to {self.hidden_tile}, " if self.hidden_tile > 1 else ""
        return f"{hidden}intermediate to {self.inter_tile}"


MARLIN = Backend("Marlin", 256, 128, "marlin")
TRITON = Backend("OAI Triton", 1, 64, "triton", True)
TRTLLM_256 = Backend("FlashInfer TRT-LLM", 256, 256, "trtllm", True)  # up to 0.26
TRTLLM = Backend("FlashInfer TRT-LLM", 256, 128, "trtllm", True)  # 0.27 on
# Mxfp4MoEMethod's selector (module docstring): TRT-LLM with MXFP8 activations, DeepGEMM, Humming
TRTLLM_MXFP8_256 = Backend("FlashInfer TRT-LLM (MXFP8 activations)", 256, 256, "trtllm", True)  # up to 0.26
TRTLLM_MXFP8 = Backend("FlashInfer TRT-LLM (MXFP8 activations)", 256, 128, "trtllm", True)  # 0.27 on
DEEPGEMM = Backend("DeepGEMM (FP8 activations)", 128, 128, "deepgemm")
HUMMING = Backend("Humming", 1, 64, "humming")
EARLIER = Backend("a kernel kvplan has not read (taken as Marlin)", 256, 128)

# The GPU classes the selection tells apart (module docstring): "sm90" Hopper; "sm100" exactly 10.0 (B200, GB200);
# "sm10x" the rest of the SM10x family (B300: 10.3); "sm11x"; "sm12x" (RTX 5090, RTX PRO 6000); "other" every other
# CUDA GPU (Ampere, Ada).
# Rows newest first: (first release, backend by class without LoRA, backend by class with LoRA (None: as without),
# where read).
_ALL_MARLIN = {"sm90": MARLIN, "sm100": MARLIN, "sm10x": MARLIN, "sm11x": MARLIN, "sm12x": MARLIN, "other": MARLIN}
RULES = (
    ((0, 34), {**_ALL_MARLIN, "sm90": TRITON, "sm100": TRTLLM, "sm10x": TRTLLM}, _ALL_MARLIN,
     "oracle/mxfp4.py 0.34.0:421-458 (Triton behind Marlin on SM11x and SM12x)"),
    ((0, 32), {**_ALL_MARLIN, "sm90": TRITON, "sm100": TRTLLM, "sm10x": TRTLLM, "sm11x": TRITON}, _ALL_MARLIN,
     "oracle/mxfp4.py 0.32.0:389-422, experts/gpt_oss_triton_kernels_moe.py :41-53 (Triton to 13.0, behind Marlin "
     "on SM12x)"),
    ((0, 27), {**_ALL_MARLIN, "sm90": TRITON, "sm100": TRTLLM, "sm10x": TRTLLM}, _ALL_MARLIN,
     "oracle/mxfp4.py 0.27.0:656-658 (TRT-LLM's intermediate to 128)"),
    ((0, 14), {**_ALL_MARLIN, "sm90": TRITON, "sm100": TRTLLM_256, "sm10x": TRTLLM_256}, _ALL_MARLIN,
     "quantization/mxfp4.py 0.14.0:91-172 (the SM10x family); 0.19.0 oracle/mxfp4.py:169-400"),
    ((0, 12), {**_ALL_MARLIN, "sm90": TRITON, "sm100": TRTLLM_256, "sm10x": TRITON},
     {**_ALL_MARLIN, "sm90": TRITON, "sm100": TRITON, "sm10x": TRITON},
     "quantization/mxfp4.py 0.12.0:82-172 (triton_kernels vendored)"),
    ((0, 11, 1), {**_ALL_MARLIN, "sm100": TRTLLM_256}, _ALL_MARLIN,
     "quantization/mxfp4.py 0.11.1:77-151 (FlashInfer a dependency)"),
    ((0, 10, 2), _ALL_MARLIN, None, "quantization/mxfp4.py 0.10.2:54-104, 0.11.0:59-107"),
    ((0, 10, 1), {**_ALL_MARLIN, "sm100": TRITON}, None, "quantization/mxfp4.py 0.10.1:123-135, :174-186"),
)
# Mxfp4MoEMethod's selector (DeepSeek-V4, other MXFP4 checkpoints; module docstring), rows newest first: (first
# release, backend by class, where read)
METHOD_RULES = (
    ((0, 32), {**_ALL_MARLIN, "sm90": HUMMING, "sm100": TRTLLM_MXFP8, "sm10x": TRTLLM_MXFP8, "sm12x": DEEPGEMM},
     "oracle/mxfp4.py 0.32.0:425-452 (Humming ahead of Marlin on SM90, priority.py :11-50)"),
    ((0, 27), {**_ALL_MARLIN, "sm100": TRTLLM_MXFP8, "sm10x": TRTLLM_MXFP8, "sm12x": DEEPGEMM},
     "oracle/mxfp4.py 0.27.0:333-358, :636-662 (TRT-LLM's intermediate to 128)"),
    ((0, 24), {**_ALL_MARLIN, "sm100": TRTLLM_MXFP8_256, "sm10x": TRTLLM_MXFP8_256, "sm12x": DEEPGEMM},
     "oracle/mxfp4.py 0.24.0:326-350, experts/deep_gemm_moe.py :423-430 (DeepGEMM on SM12x)"),
    ((0, 20), {**_ALL_MARLIN, "sm100": TRTLLM_MXFP8_256, "sm10x": TRTLLM_MXFP8_256},
     "oracle/mxfp4.py 0.20.0:214-231, :425-502"),
)
# Mxfp4OnlineMoEMethod's choice (--quantization mxfp4 online; vllm_mxfp4_online module docstring), rows newest first:
# (first release, backend by class, where read); before 0.32 a CUDA GPU has no backend (vllm_mxfp4_online.
# online_refusal)
CUTLASS = Backend("CUTLASS MXFP4 x MXFP4", 128, 128, "cutlass")  # CutlassExpertsMxfp4, modular
CUTLASS_SCALE_ROWS = 163840  # VLLM_MAX_TOKENS_PER_EXPERT_FP4_MOE's default (envs.py 0.32.0:1844-1846), a row a route
ONLINE_RULES = (
    ((0, 32), {**_ALL_MARLIN, "sm90": TRITON, "sm100": CUTLASS, "sm10x": CUTLASS, "sm11x": CUTLASS},
     "oracle/mxfp4.py 0.32.0:389-422, :545-562 (MXFP4 activations first, BF16 after); 0.34.0 :421-458"),
)
ONLINE_BF16_FALLBACK_SINCE = (0, 32)  # _filter_by_activation keeps the BF16 backends after the matching ones
MARLIN_MODULAR_SINCE = (0, 17)  # MarlinExperts in mk.FusedMoEKernel (quantization/mxfp4.py 0.17.0:443-450)
MONOLITHIC_NEEDS_ONE_DP_SINCE = (0, 19)  # the monolithic classes' _supports_parallel_config (0.19.0 oracle)
TRTLLM_UNPADDED_OUTPUT_SINCE = (0, 21)  # TrtLlmMxfp4ExpertsModular's output hidden_dim_unpadded (0.21.0 :263-277)
MXFP4_METHOD_SINCE = (0, 27)  # Mxfp4Config._make_moe_method: Mxfp4MoEMethod for a model other than gpt-oss
DEEPGEMM_FP8_WORKSPACE_SINCE = (0, 31)  # DeepGemmFP4Experts' workspace1 in FP8 bytes (_fp8_workspace_shape, 0.31.0)
HUMMING_FP8_INPUT_SINCE = (0, 33)  # V4 hands Mxfp4MoEMethod its MXFP8 activation key (quant_config.py 0.33.0:227)
DEEPGEMM_ALIGNMENT = 128  # get_mk_alignment_for_contiguous_layout's BLOCK_M cap (module docstring: an upper bound)


@dataclass(frozen=True)
class Mxfp4Kernel:
    """The kernel one deployment runs its MXFP4 experts on (kernel())."""

    backend: Backend
    modular: bool  # in the modular kernel: its buffers the workspace manager's, chunked where the release chunks
    unpadded_output: bool = False  # TRT-LLM's modular output at the unpadded hidden size
    source: str = ""
    release: tuple = ()

    @property
    def name(self) -> str:
        return self.backend.name

    def padded(self, hidden: int, inter: int) -> tuple:
        """(hidden, a rank's intermediate) as the kernel allocates them."""
        return round_up(hidden, self.backend.hidden_tile), round_up(inter, self.backend.inter_tile)

    def kept(self, spec, moe_tp: int, tokens: int, layout=None) -> int:
        """Bytes of the buffers the workspace manager keeps after the profile forward of `tokens` tokens through the
        experts (module docstring); 0 where the kernel allocates its own. `layout` (sharding.MoeLayout): expert
        parallelism and the experts a rank holds (DeepGEMM's alignment, Humming's grouped GEMM)."""
        if not self.modular or tokens <= 0:
            return 0
        k, width = spec.experts_per_token, DTYPE_BYTES[spec.dtype]
        hidden, inter = self.padded(spec.hidden_size, -(-spec.expert_intermediate_size // moe_tp))
        kind = self.backend.kind
        if kind == "marlin":  # max(M k max(N, K), M K) + M k max(2 N, K)
            return tokens * k * (max(inter, hidden) + max(2 * inter, hidden)) * width
        if kind == "triton":  # output M K + M k N/2 (workspace13 empty)
            return tokens * (hidden + k * inter) * width
        if kind == "trtllm":  # its output alone
            return tokens * (spec.hidden_size if self.unpadded_output else hidden) * width
        if kind == "cutlass":  # max(M k max(2 N, K), M K) + M k N (vllm_mxfp4_online module docstring)
            return (max(tokens * k * max(2 * inter, hidden), tokens * hidden) + tokens * k * inter) * width
        ep = layout is not None and layout.ep > 1
        if kind == "humming":  # the five buffers alternating over two workspaces
            quantised = 1 if self.release >= HUMMING_FP8_INPUT_SINCE else width
            rows_in = tokens * k if ep else tokens  # the grouped GEMM's input is permuted, one row a route
            first = max(tokens * hidden * width, tokens * k * inter * quantised, rows_in * hidden * quantised)
            return first + tokens * k * max(hidden, 2 * inter) * width
        if kind == "deepgemm":
            experts = layout.local_experts if ep and layout.local_experts else spec.experts
            routes = tokens * k
            rows = round_up(routes + min(routes, experts) * (DEEPGEMM_ALIGNMENT - 1), DEEPGEMM_ALIGNMENT)
            widest = max(inter, hidden)
            first = rows * (-(-widest // width) if self.release >= DEEPGEMM_FP8_WORKSPACE_SINCE else widest)
            return (max(first, tokens * hidden) + rows * max(2 * inter, hidden)) * width
        return 0


    def scratch(self, spec, moe_tp: int, tokens: int) -> int:
        """Bytes CUTLASS's MXFP4 experts allocate per call beside the workspace they keep, at the fullest of the three
        moments of run_cutlass_moe_mxfp4 (vllm_mxfp4_online module docstring); 0 for the other kernels."""
        if self.backend.kind != "cutlass" or tokens <= 0:
            return 0
        k, width = spec.experts_per_token, DTYPE_BYTES[spec.dtype]
        hidden, inter = self.padded(spec.hidden_size, -(-spec.expert_intermediate_size // moe_tp))
        routes = tokens * k
        shuffled = routes * hidden * width  # the permuted input, alive until the call returns

        def quantised(cols: int) -> int:  # MXFP4 values, and the E8M0 scales sized by the token cap, not the batch
            return routes * cols // 2 + CUTLASS_SCALE_ROWS * k * -(-cols // 128) * 4

        last = 2 * routes * hidden * width + tokens * hidden * width  # c3 unpermuted, x the router weights, summed
        return 2 * routes * 4 + shuffled + max(quantised(hidden), quantised(inter), last)

    def forward_buffers(self, estimate: int, kept: int, scratch: int = 0) -> int:
        """The profile forward's bytes of expert buffers, from kvplan's estimate of the kernel's own (vllm_profile.
        mlp_per_token), what it keeps in the workspace manager (kept) and what it is known to allocate per call
        beside it (scratch): TRT-LLM keeps only its output, beside the buffers FlashInfer allocates per call; CUTLASS
        keeps its workspace and allocates its scratch; the other modular kernels keep all of theirs."""
        if scratch:
            return kept + scratch
        return estimate + kept if self.backend.kind == "trtllm" else max(estimate, kept)


def gpu_class(capability) -> str:
    """The class of RULES a CUDA compute capability falls in; "other" for an unknown one (vLLM's fallback)."""
    capability = tuple(capability or ())
    if capability == (9, 0):
        return "sm90"
    if capability == (10, 0):
        return "sm100"
    if capability[:1] == (10,):
        return "sm10x"
    if capability[:1] == (11,):
        return "sm11x"
    if capability[:1] == (12,):
        return "sm12x"
    return "other"


def has_mxfp4_experts(spec) -> bool:
    return any(g.name == "experts" and g.stored == "mxfp4" and g.parameters for g in spec.params)


def kernel(spec, version: str, gpu, layout=None, lora: bool = False) -> Optional[Mxfp4Kernel]:
    """The kernel vLLM `version` runs `spec`'s MXFP4 experts on, on `gpu` (catalog.GPU) under `layout`
    (sharding.MoeLayout: its DP ranks and EPLB) and --enable-lora; None for a model without MXFP4 experts."""
    if not has_mxfp4_experts(spec):
        return None
    release = parse_version(version)
    capability = cuda_capability(gpu)
    if is_rocm(gpu):
        return Mxfp4Kernel(EARLIER, False, source="ROCm not modelled: Marlin's tile")
    one_rank = layout is None or (layout.dp <= 1 and not layout.eplb)
    model_type = getattr(spec, "model_type", "")
    if not getattr(spec, "quantization", "") and release >= ONLINE_SINCE["mxfp4"]:  # Mxfp4OnlineMoEMethod
        return online_kernel(release, capability, one_rank)
    if model_type == "deepseek_v4" or model_type != "gpt_oss" and release >= MXFP4_METHOD_SINCE:
        row = next((row for row in METHOD_RULES if release >= row[0]), METHOD_RULES[-1])
        backend = row[1][gpu_class(capability)]
        # TRT-LLM's monolithic class takes no DeepSeek-V4 router; another model's is taken as Renormalize
        monolithic = backend.kind == "trtllm" and spec.model_type != "deepseek_v4" and one_rank
        return Mxfp4Kernel(backend, not monolithic, release >= TRTLLM_UNPADDED_OUTPUT_SINCE, row[2], release)
    row = next((row for row in RULES if release >= row[0]), RULES[-1])
    by_class = row[2] if lora and row[2] is not None else row[1]
    backend = by_class[gpu_class(capability)]
    if backend is MARLIN:
        modular = release >= MARLIN_MODULAR_SINCE
    else:
        modular = release >= MONOLITHIC_NEEDS_ONE_DP_SINCE and not one_rank
    return Mxfp4Kernel(backend, modular, release >= TRTLLM_UNPADDED_OUTPUT_SINCE, row[3], release)


def online_kernel(release: tuple, capability, one_rank: bool) -> Mxfp4Kernel:
    """The kernel Mxfp4OnlineMoEMethod runs the experts on (ONLINE_RULES); before 0.32 a CUDA GPU has none
    (vllm_mxfp4_online.online_refusal) and Marlin's tile stands in, labelled."""
    if release < ONLINE_BF16_FALLBACK_SINCE:
        return Mxfp4Kernel(EARLIER, False, source="no CUDA backend for MXFP4 activations before 0.32 (refused)")
    row = next((row for row in ONLINE_RULES if release >= row[0]), ONLINE_RULES[-1])
    backend = row[1][gpu_class(capability)]
    if backend is MARLIN:
        modular = release >= MARLIN_MODULAR_SINCE
    elif backend is CUTLASS:
        modular = True
    else:
        modular = release >= MONOLITHIC_NEEDS_ONE_DP_SINCE and not one_rank
    return Mxfp4Kernel(backend, modular, False, row[2], release)
