"""vLLM's refusal of an fp8 cache on the Triton attention backend below compute capability 8.9 (paths under vllm/ of
the release named).

From 0.24 TritonAttentionImpl.__init__ raises a ValueError on CUDA for any cache dtype whose name starts with "fp8"
where the GPU lacks native fp8e4nv (has_device_capability(89) false), as the first attention layer is built
(v1/attention/backends/triton_attn.py 0.24.0:471-481, 0.28.0:540-550, 0.32.0:490-500, 0.34.0:517-527); the advice is
bfloat16 from compute capability 8.0, float16 below. 0.23.0 has no such check (triton_attn.py 0.23.0:491 only views
the cache as fp8): what its kernels do there is not modelled.

Where the layers land on TRITON_ATTN below 8.9 (A100, A10, RTX 30xx, T4):
- attention sinks (gpt-oss, and the other families of model/layers.SINK_FAMILIES where spec.attention_sinks): the
  selector takes the first backend of platforms/cuda.py _get_backend_priorities whose supports_sink holds
  (0.34.0 :165-178: FLASH_ATTN, FLASHINFER, TRITON_ATTN off SM10x). FLASH_ATTN takes sinks with FlashAttention 3 or 4
  only (v1/attention/backends/fa_utils.py flash_attn_supports_sinks, 0.34.0:319-322; flash_attn.py 0.24.0:200-203),
  which these GPUs do not run (FA2); FLASHINFER only through TRT-LLM on SM10x (flashinfer.py 0.24.0:437-450), and
  from 0.34 also SM90 / SM12x (0.34.0:709-727); TRITON_ATTN always (triton_attn.py 0.34.0:386-388).
- Gemma 4's forced backend (vllm_gemma4_backend.triton_forced).
"""

from __future__ import annotations

from typing import Optional

from .figures import Refusal
from .vllm_gemma4_backend import triton_forced
from .vllm_sparse import is_rocm_platform
from .vllm_versions import parse_version

TRITON_FP8_CHECK_SINCE = (0, 24)
NATIVE_FP8 = (8, 9)  # has_device_capability(89)
BF16_FROM = (8, 0)  # the advice names bfloat16 from here (cap.to_int() >= 80), float16 below
WORDS = ("FP8 KV cache is not supported by the Triton attention backend on {gpu} (compute capability {cc}); native "
         "FP8 (fp8e4nv) requires SM89+. Re-run with --kv-cache-dtype {suggested}.")


def lands_on_triton(spec, capability=(), version: str = "0.32.0") -> bool:
    """Whether `spec`'s attention layers take TRITON_ATTN on a CUDA GPU of `capability` below 8.9 (module
    docstring); kvplan does not say which backend they take elsewhere."""
    if not capability or is_rocm_platform(capability) or tuple(capability) >= NATIVE_FP8:
        return False
    return bool(getattr(spec, "attention_sinks", False)) or triton_forced(spec, capability, version)


def triton_fp8_refusal(spec, precision, capability=(), version: str = "0.32.0",
                       gpu_name: str = "") -> Optional[Refusal]:
    """vLLM's refusal of an fp8* cache where the layers land on TRITON_ATTN below compute capability 8.9 (0.24 on);
    None elsewhere."""
    if parse_version(version) < TRITON_FP8_CHECK_SINCE or not precision.vllm_dtype.startswith("fp8"):
        return None
    if not lands_on_triton(spec, capability, version):
        return None
    suggested = "bfloat16" if tuple(capability) >= BF16_FROM else "float16"
    text = WORDS.format(gpu=gpu_name or "this GPU", cc=f"{capability[0]}.{capability[1]}", suggested=suggested)
    return Refusal(text, None, configuration=True, field="kv_dtype", options=("auto",))
