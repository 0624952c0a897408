"""The one-call paged decode: full validation, the block-id check, and a plan cached per shape."""

from __future__ import annotations

import dataclasses
import threading

from . import _runtime as rt
from ._checks import DecodeArgs, check_table, validate
from .options import KernelOptions
from .paged_decode import PagedDecodePlan


_plans: dict[tuple, PagedDecodePlan] = {}
_plans_lock = threading.Lock()


def paged_decode_attention(q, k_cache, v_cache, block_table, seq_lens, scale=None, k_scale=1.0, v_scale=1.0,
                           sliding_window=None, *, out=None, check_block_ids=True, num_splits=None, options=None,
                           trace=None):
    """Decode attention over a paged KV cache on the GPU (see ``kvplan.kernels`` for the contract).

    Keyword-only extras:
      out              preallocated ``[B, Hq, D]`` output in q's dtype (CUDA-graph friendly)
      check_block_ids  True (default): check seq_lens and every block id the call reads (one host
                       sync: tables up to 64K entries are copied and checked on the host, larger ones
                       reduced on the GPU). False skips it (no sync, capturable in a CUDA graph); the
                       caller then guarantees the table is valid.
      num_splits       force the number of sequence splits (same as ``options.num_splits``)
      options          :class:`KernelOptions` (tuning; default per device)
      trace            int64 timeline buffer (needs ``KernelOptions(trace=True)``)
    """
    rt.require_kernel()
    import torch

    a = validate(q, k_cache, v_cache, block_table, seq_lens, scale, k_scale, v_scale, sliding_window,
                 require_cuda=True)
    if out is not None:
        if not isinstance(out, torch.Tensor) or out.shape != q.shape or out.dtype != q.dtype \
                or out.device != q.device or not out.is_contiguous():
            raise ValueError("out must be a contiguous tensor with q's shape, dtype and device")
    else:
        out = torch.empty_like(q)
    if a.batch == 0:
        return out
    if options is not None and not isinstance(options, KernelOptions):
        raise ValueError(f"options must be a KernelOptions, got {type(options).__name__}")
    opts = options or KernelOptions()
    if num_splits is not None:
        opts = dataclasses.replace(opts, num_splits=int(num_splits))
    if check_block_ids:
        span = check_table(a, block_table, seq_lens)
    else:
        span = a.max_blocks * a.block_size
        if a.window is not None:
            span = min(span, a.window)
    plan = _cached_plan(a, q.device, opts)
    plan._launch(q, k_cache, v_cache, block_table, seq_lens, out, a.scale, a.k_scale, a.v_scale, span, trace)
    return out


def _cached_plan(a: DecodeArgs, device, opts: KernelOptions) -> PagedDecodePlan:
    key = (a.batch, a.q_heads, a.kv_heads, a.head_dim, a.block_size, a.q_dtype, a.kv_dtype, device, a.window,
           a.max_blocks, opts)
    plan = _plans.get(key)
    if plan is None:
        import torch

        with _plans_lock:
            plan = _plans.get(key)
            if plan is None:
                plan = PagedDecodePlan(a.q_heads, a.kv_heads, a.head_dim, a.block_size, getattr(torch, a.kv_dtype),
                                       getattr(torch, a.q_dtype), a.batch, max(a.max_blocks, 1), device, a.window,
                                       opts)
                if len(_plans) > 256:
                    _plans.clear()
                _plans[key] = plan
    return plan
