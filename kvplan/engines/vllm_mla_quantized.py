"""A dense MLA model (DeepSeek-V2/V3, Kimi-K2: use_mla, on in every release from 0.8 unless VLLM_MLA_DISABLE) with a
--kv-cache-dtype other than auto on vLLM 0.8.0-0.10.2, before the backend selector checks dtypes (0.11.x:
vllm_sparse.TRITON_MLA_QUANTIZED, DENSE_MLA_FP8). Every CUDA MLA impl of those releases raises NotImplementedError in
__init__ for a quantized cache (is_quantized_kv_cache: any value but auto), V0's and V1's alike, so the server never
starts, except 0.10.2's V1 FlashMLA and CUTLASS_MLA, which store fp8:
- V0 (vllm_v1_oracle.v0_fallback): FlashMLA (attention/backends/flashmla.py 0.8.0:211-213, 0.10.1.1:196-198) and
  TritonMLA (attention/backends/triton_mla.py 0.8.0:62-64, 0.10.2:60-62): "... with FP8 KV cache not yet supported".
- V1: FlashMLA (v1/attention/backends/mla/flashmla.py 0.8.0:119-121, 0.10.1.1:169-171), TritonMLA (mla/triton_mla.py
  0.8.0:65-67, 0.10.2:67-69), CUTLASS_MLA (mla/cutlass_mla.py 0.9.2:67-69, 0.10.1.1:111-113): "... V1 with FP8 ...".
Which one a GPU gets: FlashMLA on Hopper (is_flashmla_supported: major 9; check_and_update_config forces its 64
blocks, platforms/cuda.py 0.8.0:149-160), CUTLASS_MLA on compute capability 10.0 from 0.10.1 (its 128 forced,
cuda.py 0.10.1.1:142-181; 0.10.0's 10.0 keeps 16 and lands on TritonMLA), TritonMLA on every other CUDA GPU (block
!= 64: cuda.py 0.8.5:182-189). 0.10.2 (cuda.py 0.10.2:226-300) serves FlashMLA (mla/flashmla.py 0.10.2:136-176, no
dtype check) and CUTLASS_MLA (cutlass_mla.py 0.10.2:261-263: only under FORCE_OLD_CUTLASS_MLA) with fp8; TritonMLA
still refuses. ROCm's MLA backends are not modelled. 0.7.x's V0 TritonMLA raises in _forward_decode only (0.7.3
triton_mla.py:706-707), not at construction: not refused here.
"""

from __future__ import annotations

from typing import Optional

from .vllm_versions import parse_version

RULE = ((0, 8), (0, 11))  # [from, before): the releases whose MLA impls check the cache dtype themselves
CUTLASS_SINCE = (0, 10, 1)  # 10.0 forced onto CUTLASS_MLA (docstring)
FP8_TAKEN = (0, 10, 2)  # V1's FlashMLA and CUTLASS_MLA store fp8 (docstring)
WORDS = "{impl}{v1} with FP8 KV cache not yet supported"


def mla_backend(capability, version: str) -> str:
    """The CUDA MLA impl vLLM `version` (0.8-0.10.2) builds on a GPU of `capability` (() read as Hopper's)."""
    if not capability or capability[0] == 9:
        return "FlashMLA"
    if tuple(capability[:2]) == (10, 0) and parse_version(version) >= CUTLASS_SINCE:
        return "CutlassMLA"
    return "TritonMLA"


def quantized_mla_refusal_line(capability, version: str, v1: bool) -> Optional[str]:
    """vLLM's words refusing a quantized dense MLA cache on a CUDA GPU of `capability` in `version` on V1 (`v1`) or
    V0 (module docstring); None where that impl stores it or the release is outside RULE."""
    release = parse_version(version)
    if not RULE[0] <= release < RULE[1]:
        return None
    impl = mla_backend(capability, version) if v1 else \
        ("FlashMLA" if mla_backend(capability, version) == "FlashMLA" else "TritonMLA")  # V0 has no CUTLASS_MLA
    if v1 and release >= FP8_TAKEN and impl != "TritonMLA":
        return None
    return WORDS.format(impl=impl, v1=" V1" if v1 else "")
