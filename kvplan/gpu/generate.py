"""Prefill and decode calls of a Transformer with caches attached (gpt-fast's generate.py, reduced to what
verify needs): the block tables and state slots come from the caller's allocator."""

from __future__ import annotations

import torch

from .step import decode_step, prefill_step


def groups(caches: dict) -> tuple:
    """(block size per paged group, window per paged group) of a model's caches."""
    sizes = {c.group: c.block_size for c in caches.values() if c.kind != "state"}
    windows = {c.group: c.window for c in caches.values() if c.kind != "state"}
    return sizes, windows


def prefill(model, tokens, tables=None, state_slots=None):
    """tokens [R, L] (R new sequences of L tokens) -> logits [R, vocab] of their last tokens. `tables`: group ->
    host rows of block ids, one per sequence (None: nothing is stored, as in the profile run)."""
    r, n = tokens.shape
    sizes, windows = groups(model.caches)
    step = prefill_step(r, n, tokens.device, tables, sizes, windows, state_slots)
    return model(tokens.reshape(-1), step)


def decode(model, tokens, positions, tables: dict, state_slots=None):
    """One new token per sequence at `positions` [B] -> logits [B, vocab]. `tables`: group -> [B, W] int32."""
    sizes, _ = groups(model.caches)
    seq_lens = (positions + 1).to(torch.int32)
    return model(tokens, decode_step(positions, seq_lens, tables, sizes, state_slots))
