"""Block tables with each sequence's full pages sorted by address: the same attention, read faster.

A decode CTA streams its share of a sequence's pages, and DRAM serves a stream that climbs through memory faster
than the same pages in shuffled order: on an H200 shuffled pages cost the GQA kernel 2-7% at 0.5-2 GB of KV
(benchmarks/RESULTS.md, session 30: the order DRAM sees, not the address translation), and a table sorted inside
each CTA's share took back half of it at large batch and nearly all at batch 1. Attention over a sequence does not
depend on the order of its tokens, so a full page may move to any other full page's place; the last, partly
filled page stays last (the kernels mask its tail by position) and the unused entries stay where they are. Every
layer of a decode step reads the same table, so one sort serves them all, as FlashInfer's plan serves its runs;
its cost is measured beside the kernels (benchmarks/kernel_vs_flashinfer.py). Sliding windows attend by
position, so their tables must not be sorted (the plans refuse).
"""

from __future__ import annotations

from ._checks import dtype_name, positive_int

_INT32_MAX = 2**31 - 1  # sorts after every page id (ids index a cache, so they are smaller)


def sort_full_pages(block_table, seq_lens, block_size: int, group_pages: int | None = None, out=None):
    """``block_table`` [B, W] int32 with each row's full pages (positions < seq_lens[b] // block_size) sorted
    ascending inside each run of ``group_pages`` positions (None: the whole row); every other entry unchanged.

    Torch ops only (CPU or GPU, capturable in a CUDA graph); returns ``out`` ([B, W] int32) when given.
    """
    import torch

    if not isinstance(block_table, torch.Tensor) or block_table.dim() != 2 or block_table.dtype != torch.int32:
        raise ValueError(f"block_table must be a [B, max_blocks] int32 tensor, got "
                         f"{getattr(block_table, 'shape', type(block_table).__name__)} "
                         f"{dtype_name(getattr(block_table, 'dtype', ''))}")
    B, W = block_table.shape
    if not isinstance(seq_lens, torch.Tensor) or seq_lens.shape != (B,) or seq_lens.dtype != torch.int32:
        raise ValueError(f"seq_lens must be a [{B}] int32 tensor")
    if seq_lens.device != block_table.device:
        raise ValueError(f"seq_lens is on {seq_lens.device}, block_table on {block_table.device}")
    bs = positive_int("block_size", block_size)
    group = W if group_pages is None else min(positive_int("group_pages", group_pages), max(W, 1))
    if out is not None and (out.shape != block_table.shape or out.dtype != torch.int32
                            or out.device != block_table.device or not out.is_contiguous()):
        raise ValueError("out must be a contiguous int32 tensor with block_table's shape and device")
    if B == 0 or W == 0:
        return block_table.clone() if out is None else out
    width = -(-W // group) * group
    table = block_table
    if width != W:  # a last, shorter run: pad with entries that stay
        table = block_table.new_full((B, width), _INT32_MAX)
        table[:, :W] = block_table
    full = torch.div(seq_lens, bs, rounding_mode="floor").unsqueeze(1)
    stays = torch.arange(width, device=table.device, dtype=torch.int32).unsqueeze(0) >= full
    # in a run, the positions that stay are its tail (full pages come first), where the sentinels sort to
    ranked = torch.where(stays, _INT32_MAX, table).view(B, width // group, group).sort(dim=-1).values
    result = torch.where(stays, table, ranked.view(B, width))[:, :W]
    if out is None:
        return result.contiguous()
    out.copy_(result)
    return out
