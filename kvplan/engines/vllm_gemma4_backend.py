"""The attention backend vLLM forces on Gemma 4, and the cache dtypes it then refuses (paths under vllm/ of the release
named). model_executor/models/config.py Gemma4Config runs for Gemma4ForCausalLM, Gemma4ForConditionalGeneration and
(from 0.23) Gemma4UnifiedForConditionalGeneration; where the model's sliding and full layers have different head sizes
and the larger is over FlashAttention 3's 256 (Gemma 4: 256 and 512):
- 0.19-0.23 set --attention-backend TRITON_ATTN unless one is given (0.19.0 :61-111, 0.23.0 :57-111), on every GPU;
- 0.24 on set flash_attn_version 4 where the GPU runs FA4 (compute capability 9.x, 10.x, 11.x:
  vllm_flash_attn/flash_attn_interface.py _is_fa4_supported), TRITON_ATTN elsewhere (0.24.0 :78-111, 0.32.0 :258-290,
  0.34.0 :560-600): A100, L40S, the RTX cards.
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
FA3_HEAD_LIMIT = 256  # the head size past which Gemma4Config steps in
FA4_FROM = (0, 24)  # the first release that keeps FlashAttention (FA4) where the GPU runs it
FA4_MAJORS = (9, 10, 11)  # _is_fa4_supported's compute capability families
# the dtypes TRITON_ATTN's supported_kv_cache_dtypes lacks that another backend would store, by first release
FORCED_REFUSES = ("nvfp4", "nvfp4_4over6", "turboquant_k8v4", "turboquant_4bit_nc", "turboquant_k3v4_nc",
                  "turboquant_3bit_nc", "ultraquant_4bit")
WORDS = ("Selected backend AttentionBackendEnum.TRITON_ATTN is not valid for this configuration. Reason: "
         "['kv_cache_dtype not supported']")


def triton_forced(spec, capability=(), version: str = "0.32.0") -> bool:
    """Whether vLLM `version` sets TRITON_ATTN for every layer of `spec` on a CUDA GPU of `capability`."""
    if served_architecture(spec, version) not in GEMMA4_CLASSES:  # MODELS_CONFIG_MAP is keyed by the served class
        return False
    if is_rocm_platform(capability) or not _mixed_heads(spec.layers):
        return False
    if parse_version(version) < FA4_FROM:
        return True
    return bool(capability) and capability[0] not in FA4_MAJORS


def forced_triton_refusal(spec, precision, capability=(), version: str = "0.32.0") -> Optional[Refusal]:
    """vLLM's refusal of a cache dtype TRITON_ATTN does not store (FORCED_REFUSES) where Gemma4Config forced it; None
    elsewhere."""
    if precision.vllm_dtype not in FORCED_REFUSES or not triton_forced(spec, capability, version):
        return None
    why = (f"vLLM {version} runs Gemma 4's mixed 256 / 512-wide heads on TRITON_ATTN "
           f"({'on every GPU' if parse_version(version) < FA4_FROM else 'on a GPU without FlashAttention 4'}: "
           f"models/config.py Gemma4Config), which stores no {precision.vllm_dtype} cache: {WORDS}")
    return Refusal(why, None, configuration=True, field="kv_dtype", options=("auto", "fp8"))


def _mixed_heads(layers) -> bool:
    heads = {(layer.target if isinstance(layer, SharedKV) else layer).head_dim for layer in layers
             if isinstance(layer, (FullAttention, SharedKV))}
    return len(heads) > 1 and max(heads) > FA3_HEAD_LIMIT
