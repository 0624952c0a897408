"""The Mamba-2 state space over whole prompts in three launches (ssd_prefill.cu), what kvplan/gpu/mamba.py
ssd_chunks computes in torch:

    y, final = ssd_chunks_kernel(x, dt, a, b, c)   # x [R, L, H, 64], dt [R, L, H] (after softplus), a [H]
                                                   # (negative), b, c [R, L, G, 128]: fp32, rows of one token
                                                   # stride (views of the convolution's output) -> y [R, L, H, 64]
                                                   # (without D x), final state [R, H, 64, 128], fp32

`ssd_supported(...)` says why tensors cannot take the kernels (None when they can); the caller then runs the torch
form. The per-chunk decays and C B^T come from small torch ops (a cumulative sum, a batched matmul over each group's
C and B: TF32 where the caller allows it)."""

from __future__ import annotations

import threading
from typing import Optional

from . import _runtime as rt

CHUNK = 128  # tokens a chunk (ssd_prefill.cu CH)
HEAD_DIM = 64  # P
STATE = 128  # N
THREADS = 256


def ssd_supported(x, dt, a, b, c, chunk: int = CHUNK) -> Optional[str]:
    """None when the kernels run on these tensors, else why not (one sentence)."""
    import torch

    if chunk != CHUNK:
        return f"chunks of {chunk} tokens (the kernels take {CHUNK})"
    if x.dim() != 4 or b.dim() != 4 or c.dim() != 4 or dt.dim() != 3:
        return "x, b, c are not [R, L, heads or groups, dim] or dt not [R, L, heads]"
    r, n, h, p = x.shape
    g, s = b.shape[2], b.shape[3]
    if p != HEAD_DIM or s != STATE or c.shape != b.shape or b.shape[:2] != (r, n) or dt.shape != (r, n, h):
        return f"heads of {p} with states of {s} (the kernels take {HEAD_DIM} x {STATE})"
    if g < 1 or h % g or a.shape != (h,):
        return f"{h} heads are not a multiple of {g} groups, or a is not [{h}]"
    if any(t.dtype != torch.float32 for t in (x, dt, a, b, c)):
        return "the inputs are not float32"
    for name, t in (("x", x), ("b", b), ("c", c)):
        if t.stride(3) != 1 or t.stride(2) != t.shape[3] or (n > 1 and t.stride(0) != n * t.stride(1)):
            return f"{name}'s rows are not one token stride apart with contiguous heads"
    if x.stride(1) != b.stride(1) or c.stride(1) != b.stride(1):
        return "x, b and c do not share their rows' stride"
    if not all(t.is_cuda and t.device == x.device for t in (dt, a, b, c)) or not x.is_cuda:
        return "the tensors are not on one CUDA device"
    return rt.kernel_unavailable_reason()


def ssd_chunks_kernel(x, dt, a, b, c, chunk: int = CHUNK):
    """(y [R, L, H, P], final state [R, H, P, N]) fp32: see the module."""
    why = ssd_supported(x, dt, a, b, c, chunk)
    if why is not None:
        raise ValueError(f"the SSD prefill kernels cannot take these tensors: {why}")
    import torch
    import torch.nn.functional as F

    r, n, h, p = x.shape
    g, s = b.shape[2], b.shape[3]
    nc = -(-n // chunk)
    pad = nc * chunk - n
    dtp = F.pad(dt, (0, 0, 0, pad)).view(r, nc, chunk, h)  # dt 0 past the end: no decay, no input
    cum = (dtp * a).cumsum(2).transpose(2, 3).contiguous()  # [R, nc, H, C]
    dtc = dtp.transpose(2, 3).contiguous()

    def chunked(t):  # [R, L, G, N] -> [R, nc, G, C, N], zeros past the end
        return F.pad(t, (0, 0, 0, 0, 0, pad)).view(r, nc, chunk, g, s).transpose(2, 3)

    cb = chunked(c) @ chunked(b).transpose(-1, -2)  # [R, nc, G, C, C]: C_t . B_s
    states = torch.empty(r, nc, h, s, p, dtype=torch.float32, device=x.device)
    final = torch.empty(r, h, p, s, dtype=torch.float32, device=x.device)
    y = torch.empty(r, n, h, p, dtype=torch.float32, device=x.device)
    if r and n:
        _launcher(x.device.index).run(x, b, c, x.stride(1), n, dtc, cum, cb.contiguous(), h, g, states, final, y)
    return y, final


class _Launches:
    """ssd_prefill.cu's entry points on one GPU, arguments packed once."""

    def __init__(self, index: int):
        from .configs import SsdPrefillConfig

        self._index = index
        ld = rt.load(SsdPrefillConfig(), rt.device_info(index))
        # (the row stride, a long long, passes as u64)
        self._state = rt.PreparedLaunch(ld, "kvp_ssd_chunk_state", ("u64", "u64", "u64", "i32", "u64", "u64", "i32",
                                                                   "i32", "u64"), THREADS, 0, None, "driver")
        self._pass = rt.PreparedLaunch(ld, "kvp_ssd_state_pass", ("u64", "u64", "i32", "i32", "u64"), THREADS, 0,
                                       None, "driver")
        self._scan = rt.PreparedLaunch(ld, "kvp_ssd_chunk_scan", ("u64", "u64", "u64", "i32", "u64", "u64", "u64",
                                                                 "u64", "i32", "i32", "u64"), THREADS, 0, None,
                                       "driver")
        self._lock = threading.Lock()

    def run(self, x, b, c, row: int, n: int, dt, cum, cb, heads: int, groups: int, states, final, y) -> None:
        import torch

        r, nc = cum.shape[:2]
        elements = heads * STATE * HEAD_DIM
        with self._lock:
            rt.launch_on(torch, self._index, self._state, (x.data_ptr(), b.data_ptr(), row, n, dt.data_ptr(),
                                                           cum.data_ptr(), heads, groups, states.data_ptr()),
                         (heads, nc, r))
            rt.launch_on(torch, self._index, self._pass, (states.data_ptr(), cum.data_ptr(), nc, heads,
                                                          final.data_ptr()), (-(-elements // THREADS), r, 1))
            rt.launch_on(torch, self._index, self._scan, (x.data_ptr(), c.data_ptr(), row, n, cb.data_ptr(),
                                                          dt.data_ptr(), cum.data_ptr(), states.data_ptr(), heads,
                                                          groups, y.data_ptr()), (heads, nc, r))


_launcher = rt.per_device(_Launches)  # the launches on GPU index i: _launcher(i)
