"""MiMo-V2's cache as vLLM pages it, by release. The model's keys are wider than its values (MiMo-V2-Flash: 192 and
128, on both its full and its sliding layers); the config reader keeps both widths (model/layers.py mimo_attention),
and what vLLM stores of the value is a release's choice:

- 0.14.0 (the first to list MiMoV2FlashForCausalLM) to 0.19.x pad each value to the key's width before attention and
  build the layer with one head size (model_executor/models/mimo_v2_flash.py MiMoV2Attention.forward:
  torch.nn.functional.pad(v, [0, head_dim - v_head_dim]), 0.14.0:314, 0.16.0:315, 0.19.0:314-316; its Attention has
  no head_size_v, 0.19.0:288-299), so every KV head stores two key-wide vectors a token: 2 x 192 where the config
  says 192 + 128.
- 0.20.0 on passes head_size_v (mimo_v2_flash.py 0.20.0:302-315 on FlashAttentionDiffKVBackend; mimo_v2.py from
  0.21.0, 0.32.0 :325-339) and the cache specs count head_size + head_size_v (v1/kv_cache_interface.py 0.20.0:174-184,
  :262-272 AttentionSpec.real_page_size_bytes): the config's widths.

Its attention backend: 0.14-0.19 let the selector pick one as for any layer (the sliding layers' sinks need FA3 /
FA4, FlashInfer's TRTLLM path or TRITON_ATTN). 0.20-0.23 hand every layer whose value is narrower than its key
FlashAttentionDiffKVBackend, whatever the GPU (mimo_v2_flash.py 0.20.0:294-300, mimo_v2.py 0.21.0:295-300, 0.23.0 the
same), and FlashAttentionImpl asserts that a layer with sinks runs FlashAttention 3 or 4 (v1/attention/backends/
flash_attn.py 0.20.0:658-662, 0.23.0 the same; fa_utils.py flash_attn_supports_sinks: get_flash_attn_version() in
(3, 4)), which CUDA picks on 9.x (FA3) and 10.x (FA4) only, FA2 elsewhere (fa_utils.py 0.20.0 get_flash_attn_version).
So on an A100, L40S or RTX GPU the first sliding layer stops start-up as the model is built: diffkv_refusal. Before
that, 0.20 and 0.21 refuse a quantised cache (an fp8*, nvfp4 or per-token-head dtype: utils/torch_utils.py
is_quantized_kv_cache, 0.20.0:70-75) on every GPU but Hopper in the first layer's FlashAttentionImpl: fp8 there needs
FA3 on 9.x (flash_attn.py 0.20.0:653-656, 0.21.0:648-651; fa_utils.py flash_attn_supports_fp8), so an SM10x GPU (FA4)
too; 0.22 drops that check (flash_attn.py 0.22.0 FlashAttentionImpl.__init__).
0.24 on fall back to TRITON_ATTN_DIFFKV where FlashAttention cannot take the shape (mimo_v2.py 0.24.0:297-318).
Not modelled: ROCm, where vLLM's FlashAttention answers no version.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from ..model.kinds import FullAttention, SlidingWindow
from ..model.layers import MIMO_ARCHITECTURES
from .figures import Refusal
from .vllm_sparse import HOPPER, is_rocm_platform
from .vllm_versions import in_span, parse_version

VALUE_WIDTH_SINCE = (0, 20)  # the first release whose MiMo-V2 layers cache the value at its own width
DIFFKV_FORCED = ((0, 20), (0, 24))  # [from, before): FlashAttentionDiffKVBackend on every GPU
SINK_FA_MAJORS = (9, 10)  # the compute capability majors whose FlashAttention (3, 4) takes sinks
SINK_ASSERTION = "Sinks are only supported in FlashAttention 3"
FP8_CHECKED = ((0, 20), (0, 22))  # [from, before): FlashAttentionImpl refuses a quantised cache off FA3 / Hopper
FP8_ERROR = "FlashAttention does not support fp8 kv-cache on this device."


def served_layers(spec, version: str):
    """`spec` as vLLM `version` pages its caches: MiMo-V2's values at the key's width before VALUE_WIDTH_SINCE,
    any other model (and MiMo from 0.20) as it is."""
    if spec.architecture not in MIMO_ARCHITECTURES or parse_version(version) >= VALUE_WIDTH_SINCE:
        return spec
    return replace(spec, layers=tuple(padded_value(layer) for layer in spec.layers))


def padded_value(layer):
    """A layer whose value is stored at the key's width (FullAttention.value_dim then falls back to head_dim)."""
    if isinstance(layer, FullAttention) and layer.value_dim != layer.head_dim:
        return replace(layer, v_head_dim=None)
    return layer


def diffkv_refusal(spec, precision, capability=(), version: str = "0.32.0") -> Optional[Refusal]:
    """vLLM's refusal of MiMo-V2's layers (a value narrower than the key) built on FlashAttentionDiffKVBackend on a
    CUDA GPU (DIFFKV_FORCED): in 0.20-0.21 a quantised cache off Hopper (FP8_CHECKED), then the sliding layers' sinks
    where its FlashAttention is FA2 (SINK_FA_MAJORS); None elsewhere. The remedies: 0.24 or later
    (TRITON_ATTN_DIFFKV), 0.19 or earlier (the selector's backend), or a Hopper / SM10x GPU."""
    if spec.architecture not in MIMO_ARCHITECTURES or not in_span(version, DIFFKV_FORCED):
        return None
    if not capability or is_rocm_platform(capability):
        return None
    if not any(isinstance(layer, FullAttention) and layer.value_dim != layer.head_dim for layer in spec.layers):
        return None  # every value as wide as its key: the selector's backend, no DiffKV
    cc = f"{capability[0]}.{capability[1]}"
    if precision.quantized and in_span(version, FP8_CHECKED) and capability[0] != HOPPER:
        why = (f"vLLM {version} builds MiMo-V2's layers, whose values are narrower than their keys, on "
               f"FlashAttentionDiffKVBackend whatever the GPU, and its FlashAttention stores a quantised cache with "
               f"FA3 on Hopper only, not on compute capability {cc}: start-up stops as the model is built "
               f"(v1/attention/backends/flash_attn.py FlashAttentionImpl): NotImplementedError: {FP8_ERROR}")
        return Refusal(why, None, configuration=True, field="kv_dtype", options=("auto", "bfloat16"))
    if capability[0] in SINK_FA_MAJORS:
        return None
    if not dict(spec.attention_switches).get("add_swa_attention_sink_bias"):
        return None
    if not any(isinstance(layer, SlidingWindow) and layer.value_dim != layer.head_dim for layer in spec.layers):
        return None
    why = (f"vLLM {version} builds MiMo-V2's sliding layers, whose values are narrower than their keys, on "
           f"FlashAttentionDiffKVBackend whatever the GPU, and their attention sinks need FlashAttention 3 or 4, "
           f"which compute capability {cc} does not run (FA2): start-up stops as the model is built "
           f"(v1/attention/backends/flash_attn.py FlashAttentionImpl): AssertionError: {SINK_ASSERTION}")
    return Refusal(why, None, configuration=True, field="engine", options=("vllm==0.24.0",), onward="newer",
                   also="--engine vllm==0.19.1 (whose selector runs the sinks on TRITON_ATTN), or on a Hopper or "
                        "SM10x Blackwell GPU (H100, H200, B200, ...)")
