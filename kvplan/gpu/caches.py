"""The cache tensors of a rank, one LayerCache per decoder layer: from a verify layout (kvplan/verify/layout.py,
the groups vLLM would allocate) or, for the tests and the graph-memory profile, a small pool of the same shapes."""

from __future__ import annotations

import math

import torch

from ..verify.layout import TORCH_DTYPES
from .sparse_mla import key_bytes
from .step import LayerCache

KINDS = {"full": "kv", "sliding": "kv", "chunked": "kv", "mla": "latent", "indexer": "keys", "linear": "state"}


def state_elements(arch) -> int:
    """Elements of one sequence's state slot on a rank (gated DeltaNet, Mamba-2 or Mamba-1): the convolution window
    [conv_dim, K - 1], then the recurrent state."""
    conv = arch.conv_dim // arch.tp * (arch.conv_kernel - 1)
    if arch.mamba_heads:
        return conv + arch.mamba_heads // arch.tp * arch.mamba_head_dim * arch.ssm_state
    if arch.mamba1_inner:  # a state row [ssm_state] per channel
        return conv + arch.mamba1_inner // arch.tp * arch.ssm_state
    return conv + arch.lin_value_heads // arch.tp * arch.lin_key_dim * arch.lin_value_dim


def kda_state_elements(arch) -> tuple:
    """(convolution window, recurrent state) elements of one sequence's KDA slot on a rank: [3 x heads x head_dim,
    kernel - 1] and [heads, head_dim, head_dim]."""
    heads = arch.lin_key_heads // arch.tp
    return arch.conv_dim_rank * (arch.conv_kernel - 1), heads * arch.lin_key_dim * arch.lin_value_dim


def dtype_of(name: str):
    return getattr(torch, TORCH_DTYPES[name])


def caches_from_layout(layout, device, pools: dict | None = None) -> dict:
    """cache index (a layer's place in spec.layers, LayerArch.cache) -> LayerCache over freshly allocated tensors of
    the layout's shapes and precisions (torch.empty: the caller fills them). `pools` (group name -> blocks)
    overrides the layout's block counts (a minimal profile pool)."""
    caches = {}
    for group in layout.groups:
        dtypes = [dtype_of(name) for name in group.dtypes]
        for index in group.layers:
            shapes = group.tensor_shapes
            if pools is not None:
                shapes = tuple((pools[group.name],) + tuple(s[1:]) for s in shapes)
            tensors = tuple(torch.empty(shape, dtype=dtype, device=device) for shape, dtype in zip(shapes, dtypes))
            caches[index] = LayerCache(KINDS[group.kind], group.name, tensors, group.window)
    return caches


def small_caches(arch, blocks: int, block_size: int, slots: int, dtype, device="cpu", fill=float("nan")) -> dict:
    """One pool per layer (every layer its own group, named by its index) of `blocks` blocks, state pools of
    `slots` sequences; unused cache slots hold `fill` (NaN: a kernel that reads them poisons its output)."""
    caches = {}
    for layer in arch.layers:
        name = str(layer.index)
        if layer.mixer == "none" or layer.cache is None:  # no cache (a Gemma 4 KV-sharing layer reads another's)
            continue
        if layer.mixer == "attention":  # K and V of the layer's own heads (MiMo-V2, Gemma 4)
            heads = arch.attention(layer)
            kv = heads.kv_heads_rank(arch.tp)
            tensors = (torch.full((blocks, block_size, kv, heads.head_dim), fill, dtype=dtype, device=device),
                       torch.full((blocks, block_size, kv, heads.v_head_dim), fill, dtype=dtype, device=device))
            caches[layer.cache] = LayerCache("kv", name, tensors, layer.window)
        elif layer.mixer == "kda":  # the convolution window in `dtype`, the recurrent state float32 (layout.py)
            conv, state = kda_state_elements(arch)
            tensors = (torch.full((slots, conv), fill, dtype=dtype, device=device),
                       torch.full((slots, state), fill, dtype=torch.float32, device=device))
            caches[layer.cache] = LayerCache("state", name, tensors)
        elif layer.mixer == "mla":
            shape = (blocks, block_size, arch.kv_lora_rank + arch.qk_rope_dim)
            caches[layer.cache] = LayerCache("latent", name, (torch.full(shape, fill, dtype=dtype, device=device),))
            if layer.keys is not None:  # bytes 0xFF: an e4m3 NaN value, a float32 NaN scale
                shape = (blocks, block_size, key_bytes(arch))
                pages = torch.full(shape, 255 if math.isnan(fill) else 0, dtype=torch.uint8, device=device)
                caches[layer.keys] = LayerCache("keys", f"{name}.keys", (pages,))
        else:
            caches[layer.cache] = LayerCache("state", name, (torch.full((slots, state_elements(arch)), fill,
                                                                         dtype=dtype, device=device),))
    return caches
