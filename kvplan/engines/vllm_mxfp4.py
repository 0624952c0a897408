"""The MoE kernel vLLM runs gpt-oss's MXFP4 experts on, by release and GPU, and what that choice costs the budget.

vLLM picks one kernel for every MXFP4 MoE layer at start-up (paths under vllm/model_executor/layers/ of the release
named; read in the wheels of 0.10.1, 0.10.2, 0.11.0, 0.11.1, 0.11.2, 0.12.0, 0.14.0, 0.15.1, 0.16.0, 0.17.0, 0.18.0,
0.19.0, 0.20.0, 0.23.0, 0.24.0, 0.26.0, 0.27.0, 0.28.0, 0.31.0, 0.32.0, 0.34.0). What decides it is whether the OAI
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
  output M K, K padded up to 0.20 (0.19.0 :248-263, 0.20.0 :287) and the unpadded hidden size from 0.23 (0.23.0
  :261, 0.32.0 :333; 0.21-0.22 not read, taken as 0.23).

Other MXFP4 experts (DeepSeek-V4's expert_dtype fp4, --quantization mxfp4 on another MoE): from 0.20 vLLM gives
gpt-oss its own method (GptOssMxfp4Config) and the others Mxfp4MoEMethod, whose selector
(select_deepseek_v4_mxfp4_moe_backend: TRT-LLM MXFP8, DeepGEMM, Marlin and Humming, the last two reordered on SM90;
oracle/mxfp4.py 0.32.0:425-449, 742-813) is not read here: they keep kvplan's earlier rule (OAI Triton's tile on
Hopper from 0.21, Marlin's elsewhere) and no kept workspace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..model.precision import DTYPE_BYTES
from .vllm_runner import is_rocm
from .vllm_versions import parse_version


@dataclass(frozen=True)
class Backend:
    """One of vLLM's MXFP4 MoE kernels: its name in words and the tile it pads the experts' weights to."""

    name: str
    hidden_tile: int  # the hidden size rounded up to a multiple of this (1: as stored)
    inter_tile: int  # a rank's expert intermediate size rounded up to a multiple of this

    @property
    def tile_words(self) -> str:
        hidden = f"hidden to {self.hidden_tile}, " if self.hidden_tile > 1 else ""
        return f"{hidden}intermediate to {self.inter_tile}"


MARLIN = Backend("Marlin", 256, 128)
TRITON = Backend("OAI Triton", 1, 64)
TRTLLM_256 = Backend("FlashInfer TRT-LLM", 256, 256)  # up to 0.26
TRTLLM = Backend("FlashInfer TRT-LLM", 256, 128)  # 0.27 on
EARLIER_HOPPER = Backend("a kernel kvplan has not read (taken as OAI Triton)", 1, 64)
EARLIER = Backend("a kernel kvplan has not read (taken as Marlin)", 256, 128)

# The GPU classes the selection tells apart (module docstring): "sm90" Hopper; "sm100" exactly 10.0 (B200, GB200);
# "sm10x" the rest of the SM10x family (B300: 10.3); "sm11x"; "other" every other CUDA GPU (Ampere, Ada, SM12x).
# Rows newest first: (first release, backend by class without LoRA, backend by class with LoRA (None: as without),
# where read).
_ALL_MARLIN = {"sm90": MARLIN, "sm100": MARLIN, "sm10x": MARLIN, "sm11x": MARLIN, "other": MARLIN}
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
MARLIN_MODULAR_SINCE = (0, 17)  # MarlinExperts in mk.FusedMoEKernel (quantization/mxfp4.py 0.17.0:443-450)
MONOLITHIC_NEEDS_ONE_DP_SINCE = (0, 19)  # the monolithic classes' _supports_parallel_config (0.19.0 oracle)
TRTLLM_UNPADDED_OUTPUT_SINCE = (0, 21)  # TrtLlmMxfp4ExpertsModular's output hidden_dim_unpadded (0.23.0 :261)
GPT_OSS_METHOD_SINCE = (0, 20)  # GptOssMxfp4Config: gpt-oss apart from Mxfp4MoEMethod (vllm_quant.GPT_OSS_SINCE)
EARLIER_TRITON_SINCE = (0, 21)  # kvplan's earlier rule for the experts not read: Hopper on OAI Triton from 0.21


@dataclass(frozen=True)
class Mxfp4Kernel:
    """The kernel one deployment runs its MXFP4 experts on (kernel())."""

    backend: Backend
    modular: bool  # in the modular kernel: its buffers the workspace manager's, chunked where the release chunks
    unpadded_output: bool = False  # TRT-LLM's modular output at the unpadded hidden size
    source: str = ""

    @property
    def name(self) -> str:
        return self.backend.name

    def padded(self, hidden: int, inter: int) -> tuple:
        """(hidden, a rank's intermediate) as the kernel allocates them."""
        return _round_up(hidden, self.backend.hidden_tile), _round_up(inter, self.backend.inter_tile)

    def kept_per_token(self, spec, moe_tp: int) -> int:
        """Bytes a token of the buffers the workspace manager keeps after the profile forward (module docstring),
        in the activations' dtype; 0 where the kernel allocates its own."""
        if not self.modular:
            return 0
        k, width = spec.experts_per_token, DTYPE_BYTES[spec.dtype]
        hidden, inter = self.padded(spec.hidden_size, -(-spec.expert_intermediate_size // moe_tp))
        if self.backend is MARLIN:  # max(M k max(N, K), M K) + M k max(2 N, K)
            return k * (max(inter, hidden) + max(2 * inter, hidden)) * width
        if self.backend is TRITON:  # output M K + M k N/2 (workspace13 empty)
            return (hidden + k * inter) * width
        return (spec.hidden_size if self.unpadded_output else hidden) * width  # TRT-LLM: its output alone


def _round_up(value: int, tile: int) -> int:
    return -(-value // tile) * tile


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
    return "other"


def has_mxfp4_experts(spec) -> bool:
    return any(g.name == "experts" and g.stored == "mxfp4" and g.parameters for g in spec.params)


def kernel(spec, version: str, gpu, layout=None, lora: bool = False) -> Optional[Mxfp4Kernel]:
    """The kernel vLLM `version` runs `spec`'s MXFP4 experts on, on `gpu` (catalog.GPU) under `layout`
    (sharding.MoeLayout: its DP ranks and EPLB) and --enable-lora; None for a model without MXFP4 experts."""
    if not has_mxfp4_experts(spec):
        return None
    release = parse_version(version)
    capability = tuple(getattr(gpu, "compute_capability", ()) or ())
    if is_rocm(gpu):
        return Mxfp4Kernel(EARLIER, False, source="ROCm not modelled: Marlin's tile")
    if getattr(spec, "model_type", "") != "gpt_oss" and release >= GPT_OSS_METHOD_SINCE:
        earlier = EARLIER_HOPPER if capability == (9, 0) and release >= EARLIER_TRITON_SINCE else EARLIER
        return Mxfp4Kernel(earlier, False, source="Mxfp4MoEMethod's selector not read")
    row = next((row for row in RULES if release >= row[0]), RULES[-1])
    by_class = row[2] if lora and row[2] is not None else row[1]
    backend = by_class[gpu_class(capability)]
    if backend is MARLIN:
        modular = release >= MARLIN_MODULAR_SINCE
    else:
        one_rank = layout is None or (layout.dp <= 1 and not layout.eplb)
        modular = release >= MONOLITHIC_NEEDS_ONE_DP_SINCE and not one_rank
    return Mxfp4Kernel(backend, modular, release >= TRTLLM_UNPADDED_OUTPUT_SINCE, row[3])
