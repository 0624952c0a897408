"""The KV block vLLM picks on Hopper for an fp8 cache of 512-wide attention heads: Gemma 4's full-attention layers
(global_head_dim 512 beside 256-wide sliding layers), where FlashAttention 4's SM90 fp8 kernel pages in 64 tokens.

How each release serves Gemma 4's mixed heads on a CUDA GPU (model_executor/models/config.py Gemma4Config, which runs
for Gemma4ForCausalLM, Gemma4ForConditionalGeneration and, from 0.23, Gemma4UnifiedForConditionalGeneration):
- 0.19-0.23: TRITON_ATTN for every layer, unless --attention-backend names one (0.19.0 :61-111): MultipleOf(16)
  blocks, so the release's default block.
- 0.24-0.30: FlashAttention 4 for every layer where the GPU runs it (compute capability 9.x, 10.x, 11.x:
  vllm_flash_attn/flash_attn_interface.py _is_fa4_supported), else TRITON_ATTN (0.24.0 :57-111, 0.30.0 :209-262).
  FA4 stores no fp8 on Hopper then (v1/attention/backends/fa_utils.py flash_attn_supports_kv_cache_dtype: FA3 on
  SM90 or FA4 on SM100, 0.29.0), so an fp8 cache falls to FLASHINFER ([16, 32, 64]) or, for a vision prefix LM,
  TRITON_ATTN: the default block again.
- 0.31 on, on SM90 with an fp8* cache: FA3 for the 256-wide layers and FA4 for the 512-wide ones (0.31.0 :209-283
  "per-layer FA3/FA4 selection", 0.33.0 :301-369, 0.34.0 :532-600); FA4's fp8 kernel takes a 512-wide head on SM90
  (fa_utils.py 0.31.0 flash_attn_supports_kv_cache_dtype: head_size in (None, 512)) and pages in 64 tokens
  (flash_attn.py 0.31.0 _get_sm90_fa4_fp8_kv_block_size "64-token TMA tile/page", 0.32.0 :298-324, 0.34.0 the same).
  With --kv-cache-dtype fp8 or fp8_e4m3 every layer runs on FLASH_ATTN (a prefix LM's on the TRITON_FLASH_ATTN
  composite, whose kernel blocks are the intersection of Triton's MultipleOf(16) and FLASH_ATTN's [64]:
  v1/attention/backends/composite.py 0.32.0:118-145), and update_block_size_for_backend's phase 1 takes that
  backend's preferred block (platforms/interface.py 0.32.0:767-781; one backend: :721-722), which is
  max(DEFAULT_BLOCK_SIZE, 64) when the model's head size is 512 (flash_attn.py 0.32.0:369-372; the model's head size
  is the largest layer's, config/model_arch.py 0.31.0:95-131 from_layers). So 64, where 0.31-0.33's default is 16;
  0.34's default is 64 already. fp8_e5m2 is no FlashAttention dtype (fa_utils.py: False for it) and keeps the default.
- Blackwell (10.x) puts FLASHINFER first (platforms/cuda.py 0.32.0:155-164; TRITON_FLASHINFER for a prefix LM), whose
  default block stands; ROCm and the GPUs without FA4 run TRITON_ATTN.
A --block-size given by hand is kept: FLASH_ATTN then refuses a block that is not a multiple of 64 and another backend
serves it (FLASHINFER, or TRITON_ATTN for a prefix LM). Not modelled: an fp8 cache that `auto` takes from the
checkpoint (vLLM's cache_dtype stays auto, so Gemma4Config forces FA4 for every layer).
"""

from __future__ import annotations

from typing import Optional

from ..model.kinds import FullAttention, SharedKV
from .vllm_sparse import HOPPER, is_rocm_platform, major_of
from .vllm_versions import parse_version

FA4_FP8_BLOCK = 64  # flash_attn.py _get_sm90_fa4_fp8_kv_block_size
FA4_FP8_HEAD = 512  # the head size FA4's SM90 fp8 kernel takes (fa_utils.py flash_attn_supports_kv_cache_dtype)
FA4_FP8_SINCE = (0, 31)  # the first release with the kernel and Gemma 4's per-layer FA3/FA4 selection
FA_FP8_DTYPES = ("fp8", "fp8_e4m3")  # the cache dtypes _get_sm90_fa4_fp8_kv_block_size reads as fp8


def fa4_fp8_block(layers: tuple, precision, block_size: Optional[int], default: int, version: str,
                  capability=()) -> int:
    """The block phase 1 picks for a model of `layers` (its layer kinds) caching in `precision` on a GPU of
    `capability` (() for Hopper): FA4_FP8_BLOCK at least where its largest attention head is FA4_FP8_HEAD wide and
    the cache is an explicit fp8 / fp8_e4m3 on SM90 from FA4_FP8_SINCE, `default` (the block chosen so far)
    otherwise and wherever --block-size (`block_size`) is given."""
    if block_size is not None or parse_version(version) < FA4_FP8_SINCE or not _hopper(capability):
        return default
    if precision.auto or precision.vllm_dtype not in FA_FP8_DTYPES:
        return default
    heads = [layer.target if isinstance(layer, SharedKV) else layer for layer in layers]
    if not heads or not all(isinstance(layer, FullAttention) for layer in heads):
        return default  # MLA, DeepSeek-V4 and Mamba hybrids pick their blocks by their own rules
    if max(layer.head_dim for layer in heads) != FA4_FP8_HEAD:
        return default
    return max(default, FA4_FP8_BLOCK)


def _hopper(capability) -> bool:
    return not is_rocm_platform(capability) and major_of(capability) == HOPPER
