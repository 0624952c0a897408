"""What one forward call processes, and where each layer keeps its cache.

A decode `Step` carries, per cache group, the block table of every sequence and the flat slot the new token's
K/V (or latent) goes to, computed on the device from the positions so that a captured CUDA graph replays it.
A prefill `Step` is R sequences of L tokens each (the profile run's shape, or one prompt); its slots are
computed on the host, -1 for tokens a window layer does not keep."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch


@dataclass
class LayerCache:
    """One layer's cache tensors: kind 'kv' (k, v: [blocks, block_size, heads, dim]), 'latent' ([blocks,
    block_size, latent]), 'keys' (a lightning indexer's uint8 pages [blocks, block_size, key bytes]) or 'state'
    ([slots, conv + recurrent elements])."""

    kind: str
    group: str
    tensors: tuple
    window: Optional[int] = None
    k_scale: float = 1.0
    v_scale: float = 1.0

    @property
    def block_size(self) -> int:
        return self.tensors[0].shape[1]


@dataclass
class Step:
    decode: bool
    positions: object  # [T] int64: decode [B] (position of the new token), prefill [R * L] seq-major
    seqs: int
    seq_len: int = 1  # prefill: tokens per sequence
    seq_lens: object = None  # decode [B] int32: tokens each sequence holds after this step
    tables: dict = field(default_factory=dict)  # group -> [B, max blocks] int32
    slots: dict = field(default_factory=dict)  # group -> [T] int64 flat slot per token (-1: not stored)
    state_slots: object = None  # [B] int64 state slot per sequence (linear layers)
    rope: dict = field(default_factory=dict)  # theta -> (cos, sin), filled by the model per forward
    # Gemma 4 (kvplan/gpu/gemma4.py): the per-layer inputs [T, layers, width], and in prefill the K/V of the layers
    # that KV-sharing layers read (cache index -> (k, v)), filled by the model per forward
    per_layer: object = None
    kv_out: dict = field(default_factory=dict)
    # DeepSeek sparse attention: the selection of the last layer that ran its indexer, for the layers that reuse it
    # (kvplan/gpu/sparse_mla.py): decode [B, k] token positions (-1: none); prefill a [R, 1, L, L] mask, or None
    # where every query attends all its tokens
    topk: object = None
    _slots32: object = field(default=None, repr=False)

    @property
    def tokens(self) -> int:
        return self.seqs * (1 if self.decode else self.seq_len)

    def state_slots_int32(self):
        """state_slots as int32 (the DeltaNet step kernel's type), converted once per step, not once per layer."""
        if self._slots32 is None:
            self._slots32 = self.state_slots.to(torch.int32)
        return self._slots32


def decode_step(positions, seq_lens, tables: dict, block_sizes: dict, state_slots=None) -> Step:
    """A decode step for B sequences whose new tokens sit at `positions`; slots come from the block tables on
    the device (graph-safe: no host sync)."""
    slots = {}
    for group, table in tables.items():
        bs = block_sizes[group]
        block = table.gather(1, (positions // bs)[:, None].to(torch.int64)).squeeze(1).to(torch.int64)
        slots[group] = block * bs + positions % bs
    return Step(True, positions, positions.shape[0], seq_lens=seq_lens, tables=tables, slots=slots,
                state_slots=state_slots)


def prefill_step(seqs: int, seq_len: int, device, tables: Optional[dict] = None, block_sizes: Optional[dict] = None,
                 windows: Optional[dict] = None, state_slots=None) -> Step:
    """R = `seqs` sequences of `seq_len` new tokens from position 0. With `tables` (group -> rows of block ids,
    host lists) the K/V of every token is stored; a window group stores only the blocks its last window
    touches (the blocks the layout gives it)."""
    positions = torch.arange(seq_len, device=device).repeat(seqs)
    slots = {}
    for group, rows in (tables or {}).items():
        bs, window = block_sizes[group], (windows or {}).get(group)
        first = max(0, seq_len - window) // bs if window else 0
        pos = torch.arange(seq_len)
        block = pos // bs
        flat = []
        for row in rows:  # on the host, vectorised: an 8K-token prompt is 8K slots a group
            ids = torch.as_tensor(row, dtype=torch.int64)
            kept = ids[block.clamp(max=len(row) - 1)] * bs + pos % bs
            flat.append(torch.where(block >= first, kept, -1))
        slots[group] = torch.cat(flat).to(device)
    return Step(False, positions, seqs, seq_len=seq_len, slots=slots, state_slots=state_slots)


def write_cache(cache, values, slots, scale: float = 1.0, masked: bool = False) -> None:
    """Store [T, ...] values at flat slots of a [blocks, block_size, ...] cache (fp8: values / scale, written
    through a byte view: index_put has no fp8 kernels). `masked`: skip slots of -1 (prefill of a window)."""
    flat = cache.view(-1, *cache.shape[2:])
    if cache.dtype != values.dtype:
        if cache.element_size() == 1:
            values = (values.float() / scale).to(cache.dtype)
            flat, values = flat.view(torch.uint8), values.view(torch.uint8)
        else:
            values = values.to(cache.dtype)
    if masked:
        keep = slots >= 0
        slots, values = slots[keep], values[keep]
    flat[slots] = values
