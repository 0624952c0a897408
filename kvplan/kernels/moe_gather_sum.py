"""The weighted sum that ends MoE's grouped path, in one launch (moe_gather_sum.cu):

    out = gather_sum(y, where, weights)                    # y [P, h] pair rows in expert order (16-bit),
                                                           # where [T * k] int64: row of pair (t, j) in y,
                                                           # weights [T, k] fp32 -> out [T, h] = sum_j w y[where]
    out = gather_sum(y, where, weights, extra=s, gate=g)   # + s[t] (a shared expert's [T, h]) times sigmoid(g[t]),
                                                           # g [T] or [T, 1], rows may be strided

`gather_sum_supported(...)` says why tensors cannot take the kernel (None when they can); the caller then runs
the torch form (kvplan/gpu/ffn.py MoE._grouped)."""

from __future__ import annotations

import threading
from typing import Optional

from . import _runtime as rt

THREADS = 256
MAX_CTAS_PER_SM = 8  # a grid-stride loop: enough CTAs to fill the GPU, no more


def gather_sum_supported(y, where, weights, extra=None, gate=None) -> Optional[str]:
    """None when the kernel runs on these tensors, else why not (one sentence)."""
    import torch

    tensors = [t for t in (y, where, weights, extra, gate) if t is not None]
    if not all(t.is_cuda and t.device == y.device for t in tensors):
        return "the tensors are not on one CUDA device"
    if y.dtype not in (torch.bfloat16, torch.float16) or y.dim() != 2 or y.shape[1] % 8:
        return "the pair rows are not [pairs, a multiple of 8] in bf16 or fp16"
    if where.dtype != torch.int64 or weights.dtype != torch.float32 or weights.dim() != 2 \
            or where.shape != (weights.numel(),):
        return "where must be int64 [tokens * k] and weights float32 [tokens, k]"
    if weights.shape[0] * y.shape[1] // 8 >= 2**31:
        return "more than 2^31 groups of 8 outputs (the kernel counts in 32 bits)"
    if extra is not None and (extra.dtype != y.dtype or extra.shape != (weights.shape[0], y.shape[1])):
        return "the shared expert's rows are not [tokens, h] in the pair rows' dtype"
    if gate is not None and (extra is None or gate.dtype != y.dtype or gate.dim() not in (1, 2)
                             or gate.shape[0] != weights.shape[0] or gate.numel() != weights.shape[0]):
        return "the gate must come with the shared rows: [tokens] or [tokens, 1] in their dtype"
    if not all(t.is_contiguous() and t.data_ptr() % 16 == 0 for t in tensors if t is not gate):
        return "the tensors are not contiguous and 16-byte aligned"
    return rt.kernel_unavailable_reason()


def gather_sum(y, where, weights, extra=None, gate=None, out=None):
    """out [T, h] (y's dtype) = sum over j of weights[t, j] * y[where[t k + j]] (+ extra[t] sigmoid(gate[t]))."""
    why = gather_sum_supported(y, where, weights, extra, gate)
    if why is not None:
        raise ValueError(f"the MoE gather-sum kernel cannot take these tensors: {why}")
    import torch

    tokens, h = weights.shape[0], y.shape[1]
    if out is None:
        out = torch.empty(tokens, h, dtype=y.dtype, device=y.device)
    if tokens:
        _launcher(y.device.index).run(y, where, weights, out, extra, gate)
    return out


class _GatherSumLaunch:
    def __init__(self, index: int):
        from .configs import MoeGatherSumConfig

        self._index = index
        dev = rt.device_info(index)
        ld = rt.load(MoeGatherSumConfig(), dev)
        args = ("u64", "u64", "u64", "u64", "i32", "i32", "i32", "u64", "u64", "u64")
        self._launches = {name: rt.PreparedLaunch(ld, f"kvp_moe_gather_sum_{name}", args, THREADS, 0, None,
                                                  "driver") for name in ("bf16", "f16")}
        self._max_ctas = dev.sm_count * MAX_CTAS_PER_SM
        self._lock = threading.Lock()

    def run(self, y, where, weights, out, extra, gate) -> None:
        import torch

        tokens, k = weights.shape
        h = y.shape[1]
        ln = self._launches["bf16" if y.dtype == torch.bfloat16 else "f16"]
        grid = min(-(-tokens * (h // 8) // THREADS), self._max_ctas)
        values = (y.data_ptr(), where.data_ptr(), weights.data_ptr(), out.data_ptr(), tokens, k, h,
                  0 if extra is None else extra.data_ptr(), 0 if gate is None else gate.data_ptr(),
                  1 if gate is None else gate.stride(0))
        with self._lock:
            rt.launch_on(torch, self._index, ln, values, (grid, 1, 1))


_launcher = rt.per_device(_GatherSumLaunch)  # the launch on GPU index i: _launcher(i)
