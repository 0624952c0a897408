"""The attention backend vLLM forces on Gemma 4, and the cache dtypes it then refuses (paths under vllm/ of the release
named). model_executor/models/config.py Gemma4Config runs for Gemma4ForCausalLM, Gemma4ForConditionalGeneration and
(from 0.23) Gemma4UnifiedForConditionalGeneration, and from 0.24 for DiffusionGemmaForBlockDiffusion, whose own hook
calls it first (HOOK_CALLERS); where the model's sliding and full layers have different head sizes (Gemma 4: 256 and
512):
- 0.19-0.23 set --attention-backend TRITON_ATTN unless one is given, on every GPU, where the larger head is over
  FlashAttention 3's 256 (0.19.0 :61-111, 0.23.0 :57-111: `max_head_dim > 256`);
- 0.24 on, whatever the sizes (0.24.0 :75 returns only where they are equal; 0.28.0 :220, 0.34.0 :556 by layer type),
  set flash_attn_version 4 where the GPU runs FA4 (compute capability 9.x, 10.x, 11.x:
  vllm_flash_attn/flash_attn_interface.py _is_fa4_supported) and the larger head is at most 512 (0.24.0 :83, 0.32.0
  :262, 0.34.0 :565), TRITON_ATTN elsewhere (0.24.0 :78-111, 0.32.0 :258-290, 0.34.0 :560-600): A100, L40S, the RTX
  cards, and heads over 512 on any GPU.
A selected backend is validated alone, with no fallback: platforms/cuda.py get_attn_backend_cls raises "Selected
backend ... is not valid for this configuration" (0.19.0 :268-272, 0.23.0 :312-316, 0.32.0 :440-444) for a cache
dtype TRITON_ATTN's supported_kv_cache_dtypes lacks (v1/attention/backend.py validate_configuration: "kv_cache_dtype
not supported"), as the first attention layer is built. Triton lists auto, float16, bfloat16, fp8, fp8_e4m3 and
fp8_e5m2 (triton_attn.py 0.19.0:264-271), int8 / fp8_per_token_head from 0.20 (0.20.0), int4_per_token_head from 0.25
(0.25.0), unchanged to 0.34; never NVFP4, TurboQuant or UltraQuant, which the other backends would store.
Not modelled: ROCm, and TurboQuant / UltraQuant on an FA4 GPU from 0.24 (engine/arg_utils.py sets
flash_attn_version 2 for them first, 0.32.0:2715-2726, and Gemma4Config then leaves the backend alone).
"""

from __future__ import annotations

from typing import Optional

from ..model.kinds import FullAttention, SharedKV
from .figures import Refusal
from .vllm_registry import served_architecture
from .vllm_sparse import is_rocm_platform
from .vllm_versions import parse_version

GEMMA4_CLASSES = ("Gemma4ForCausalLM", "Gemma4ForConditionalGeneration", "Gemma4UnifiedForConditionalGeneration")
# the architectures whose own config hook calls Gemma4Config's, by first release: DiffusionGemma's
# (DiffusionGemmaModelForBlockDiffusionConfig 0.24.0:120, 0.32.0:330, 0.34.0:650; mapped 0.24.0:676, 0.34.0:1552)
HOOK_CALLERS = {"DiffusionGemmaForBlockDiffusion": (0, 24)}
FA3_HEAD_LIMIT = 256  # the head size past which Gemma4Config steps in before 0.24
FA4_HEAD_LIMIT = 512  # the largest head it keeps on FlashAttention 4 from 0.24
FA4_FROM = (0, 24)  # the first release that keeps FlashAttention (FA4) where the GPU runs it
FA4_MAJORS = (9, 10, 11)  # _is_fa4_supported's compute capability families
# the dtypes TRITON_ATTN's supported_kv_cache_dtypes lacks that another backend would store, by first release
FORCED_REFUSES = ("nvfp4", "nvfp4_4over6", "turboquant_k8v4", "turboquant_4bit_nc", "turboquant_k3v4_nc",
                  "turboquant_3bit_nc", "ultraquant_4bit")
WORDS = ("Selected backend AttentionBackendEnum.TRITON_ATTN is not valid for this configuration. Reason: "
         "['kv_cache_dtype not supported']")


def triton_forced(spec, capability=(), version: str = "0.32.0") -> bool:
    """Whether vLLM `version` sets TRITON_ATTN for every layer of `spec` on a CUDA GPU of `capability`."""
    architecture = served_architecture(spec, version)  # MODELS_CONFIG_MAP is keyed by the served class
    release = parse_version(version)
    if architecture not in GEMMA4_CLASSES and release < HOOK_CALLERS.get(architecture, (999,)):
        return False
    heads = _head_sizes(spec.layers)
    if is_rocm_platform(capability) or len(heads) < 2:
        return False
    if release < FA4_FROM:
        return max(heads) > FA3_HEAD_LIMIT
    fa4 = not capability or capability[0] in FA4_MAJORS  # () is Hopper's
    return not fa4 or max(heads) > FA4_HEAD_LIMIT


def forced_triton_refusal(spec, precision, capability=(), version: str = "0.32.0") -> Optional[Refusal]:
    """vLLM's refusal of a cache dtype TRITON_ATTN does not store (FORCED_REFUSES) where Gemma4Config forced it; None
    elsewhere."""
    if precision.vllm_dtype not in FORCED_REFUSES or not triton_forced(spec, capability, version):
        return None
    heads = sorted(_head_sizes(spec.layers))
    where = "on every GPU" if parse_version(version) < FA4_FROM else \
        f"heads over {FA4_HEAD_LIMIT} on any GPU" if heads[-1] > FA4_HEAD_LIMIT else "on a GPU without FlashAttention 4"
    why = (f"vLLM {version} runs Gemma 4's mixed {' / '.join(map(str, heads))}-wide heads on TRITON_ATTN ({where}: "
           f"models/config.py Gemma4Config), which stores no {precision.vllm_dtype} cache: {WORDS}")
    return Refusal(why, None, configuration=True, field="kv_dtype", options=("auto", "fp8"))


def _head_sizes(layers) -> set:
    """The head sizes of the model's attention layers (a KV-sharing layer's its target's)."""
    return {(layer.target if isinstance(layer, SharedKV) else layer).head_dim for layer in layers
            if isinstance(layer, (FullAttention, SharedKV))}
