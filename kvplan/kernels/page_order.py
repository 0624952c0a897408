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

On a GPU one launch of page_order.cu does it (a CTA per run of positions, a bitonic sort in shared memory);
elsewhere, and for block sizes that are not powers of two, the torch ops below, which define the same result.
"""

from __future__ import annotations

import threading

from ._checks import dtype_name, positive_int

_INT32_MAX = 2**31 - 1  # sorts after every page id (ids index a cache, so they are smaller)
MAX_RUN = 1024  # positions sorted together at most (page_order.cu: a thread each)


def sort_full_pages(block_table, seq_lens, block_size: int, group_pages: int | None = None, out=None):
    """``block_table`` [B, W] int32 with each row's full pages (positions < seq_lens[b] // block_size) sorted
    ascending inside each run of min(``group_pages``, MAX_RUN) positions (None: MAX_RUN); every other entry
    unchanged. Capturable in a CUDA graph; returns ``out`` ([B, W] int32, may be block_table) when given.
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
    run = min(MAX_RUN if group_pages is None else positive_int("group_pages", group_pages), MAX_RUN)
    if out is not None and (out.shape != block_table.shape or out.dtype != torch.int32
                            or out.device != block_table.device or not out.is_contiguous()):
        raise ValueError("out must be a contiguous int32 tensor with block_table's shape and device")
    if B == 0 or W == 0:
        return block_table.clone() if out is None else out
    if block_table.is_cuda and bs & (bs - 1) == 0 and block_table.is_contiguous() and seq_lens.is_contiguous():
        from . import _runtime as rt

        if rt.kernel_unavailable_reason() is None:
            if out is None:
                out = torch.empty_like(block_table)
            _launcher(block_table.device.index).run(block_table, seq_lens, out, bs, run)
            return out
    return sort_with_torch(block_table, seq_lens, bs, run, out)


def sort_with_torch(block_table, seq_lens, bs: int, group: int, out=None):
    """sort_full_pages' result in torch ops (the CPU path; the GPU kernel's yardstick in tests)."""
    import torch

    B, W = block_table.shape
    group = min(group, W)
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


class _SortLaunch:
    """page_order.cu on one GPU: a prepared launch per thread count (the run rounded up to a power of two)."""

    def __init__(self, index: int):
        from . import _runtime as rt
        from .configs import PageOrderConfig

        self._rt, self._index = rt, index
        self._ld = rt.load(PageOrderConfig(), rt.device_info(index))
        self._launches: dict[int, object] = {}
        self._lock = threading.Lock()

    def run(self, block_table, seq_lens, out, bs: int, run: int) -> None:
        import torch

        B, W = block_table.shape
        run = min(run, W)
        threads = 1 << max(5, (run - 1).bit_length())
        with self._lock:
            ln = self._launches.get(threads)
            if ln is None:
                ln = self._launches[threads] = self._rt.PreparedLaunch(
                    self._ld, "kvp_sort_pages", ("u64", "u64", "u64", "i32", "i32", "i32"), threads, 0, None,
                    "driver")
            a = ln.args
            a[0].value, a[1].value, a[2].value = block_table.data_ptr(), seq_lens.data_ptr(), out.data_ptr()
            a[3].value, a[4].value, a[5].value = W, bs.bit_length() - 1, run
            if torch.cuda.current_device() != self._index:  # the module lives in that device's context
                with torch.cuda.device(self._index):
                    ln.launch((-(-W // run), B, 1), self._rt.current_stream_handle(torch, self._index))
            else:
                ln.launch((-(-W // run), B, 1), self._rt.current_stream_handle(torch, self._index))


_LAUNCHERS: dict[int, _SortLaunch] = {}
_LAUNCHERS_LOCK = threading.Lock()


def _launcher(index: int) -> _SortLaunch:
    with _LAUNCHERS_LOCK:
        if index not in _LAUNCHERS:
            _LAUNCHERS[index] = _SortLaunch(index)
        return _LAUNCHERS[index]
