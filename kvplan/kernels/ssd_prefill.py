"""The Mamba-2 prefill's convolution and state space over whole prompts (ssd_prefill.cu), what kvplan/gpu/mamba.py
computes in torch (causal_conv_torch and SiLU; ssd_chunks):

    out = causal_conv(rows, w, bias, n)   # rows [R n, C] (bf16 / fp16, row stride any multiple of 8), w [C, 4],
                                          # bias [C] or None -> SiLU(causal depthwise conv + bias) [R n, C] fp32,
                                          # each sequence of n tokens from zero history
    y, final = ssd_chunks_kernel(x, dt, a, b, c, d)   # x [R, L, H, 64], dt [R, L, H] (after softplus), a [H]
                                                      # (negative), b, c [R, L, G, 128]: fp32, rows of one
                                                      # token stride, 16-byte aligned (views of the convolution's
                                                      # output); d [H] or None -> y [R, L, H, 64] (+ d x),
                                                      # final state [R, H, 64, 128], fp32

`conv_supported(...)` / `ssd_supported(...)` say why tensors cannot take the kernels (None when they can); the
caller then runs the torch form. The per-chunk decays and C B^T come from small torch ops (a cumulative sum, a
batched matmul over each group's C and B: TF32 where the caller allows it)."""

from __future__ import annotations

import threading
from typing import Optional

from . import _runtime as rt

CHUNK = 128  # tokens a chunk (ssd_prefill.cu CH)
HEAD_DIM = 64  # P
STATE = 128  # N
THREADS = 256
TAPS = 4  # the convolution width compiled (Nemotron-H's)
MAX_CTAS_PER_SM = 8  # the convolution's grid-stride loop: enough CTAs to fill the GPU, no more


def conv_supported(rows, w, bias, n: int) -> Optional[str]:
    """None when the convolution kernel runs on these tensors, else why not (one sentence)."""
    import torch

    if rows.dtype not in (torch.bfloat16, torch.float16) or w.dtype != rows.dtype \
            or (bias is not None and bias.dtype != rows.dtype):
        return "the inputs, weights and bias are not all bf16 or all fp16"
    if rows.dim() != 2 or w.shape != (rows.shape[1], TAPS) or rows.shape[1] % 8 \
            or (bias is not None and bias.shape != (rows.shape[1],)):
        return f"the inputs are not [tokens, C] (C a multiple of 8) with weights [C, {TAPS}] and bias [C]"
    if n < 1 or rows.shape[0] % n:
        return f"{rows.shape[0]} tokens are not whole sequences of {n}"
    if rows.shape[0] * rows.shape[1] // 8 >= 2**31:
        return "more than 2^31 groups of 8 inputs (the kernel counts in 32 bits)"
    if rows.stride(1) != 1 or rows.stride(0) % 8 or rows.data_ptr() % 16 or not w.is_contiguous() \
            or (bias is not None and not bias.is_contiguous()):
        return "the inputs' rows are not 16-byte aligned with unit column stride, or the weights not contiguous"
    if not all(t.is_cuda and t.device == rows.device for t in (rows, w) + ((bias,) if bias is not None else ())):
        return "the tensors are not on one CUDA device"
    return rt.kernel_unavailable_reason()


def causal_conv(rows, w, bias, n: int):
    """[R n, C] fp32: SiLU of each sequence's causal depthwise convolution (+ bias), zero history."""
    why = conv_supported(rows, w, bias, n)
    if why is not None:
        raise ValueError(f"the SSD convolution kernel cannot take these tensors: {why}")
    import torch

    out = torch.empty(rows.shape, dtype=torch.float32, device=rows.device)
    if rows.shape[0]:
        _launcher(rows.device.index).conv(rows, w, bias, n, out)
    return out


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
    if x.stride(1) % 4 or any(t.data_ptr() % 16 for t in (x, b, c)):
        return "the rows are not 16-byte aligned"
    if not all(t.is_cuda and t.device == x.device for t in (dt, a, b, c)) or not x.is_cuda:
        return "the tensors are not on one CUDA device"
    return rt.kernel_unavailable_reason()


def ssd_chunks_kernel(x, dt, a, b, c, d=None, chunk: int = CHUNK):
    """(y [R, L, H, P] (+ d x where d [H] is given), final state [R, H, P, N]) fp32: see the module."""
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
    if d is not None:
        d = d.float().contiguous()
        if d.shape != (h,) or d.device != x.device:
            raise ValueError(f"d must be [{h}] on {x.device}")
    if r and n:
        _launcher(x.device.index).run(x, b, c, x.stride(1), n, dtc, cum, cb.contiguous(), d, h, g, states, final, y)
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
                                                                 "u64", "u64", "i32", "i32", "u64"), THREADS, 0,
                                       None, "driver")
        conv_args = ("u64", "u64", "u64", "u64", "i32", "i32", "i32", "u64")
        self._conv = {name: rt.PreparedLaunch(ld, f"kvp_ssd_conv_{name}", conv_args, THREADS, 0, None, "driver")
                      for name in ("bf16", "f16")}
        self._max_ctas = rt.device_info(index).sm_count * MAX_CTAS_PER_SM
        self._lock = threading.Lock()

    def conv(self, rows, w, bias, n: int, out) -> None:
        import torch

        tokens, channels = rows.shape
        launch = self._conv["bf16" if rows.dtype == torch.bfloat16 else "f16"]
        grid = min(-(-tokens * (channels // 8) // THREADS), self._max_ctas)
        with self._lock:
            rt.launch_on(torch, self._index, launch, (rows.data_ptr(), rows.stride(0), w.data_ptr(),
                                                      0 if bias is None else bias.data_ptr(), tokens, n, channels,
                                                      out.data_ptr()), (grid, 1, 1))

    def run(self, x, b, c, row: int, n: int, dt, cum, cb, d, heads: int, groups: int, states, final, y) -> None:
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
                                                          dt.data_ptr(), cum.data_ptr(), states.data_ptr(),
                                                          0 if d is None else d.data_ptr(), heads, groups,
                                                          y.data_ptr()), (heads, nc, r))


_launcher = rt.per_device(_Launches)  # the launches on GPU index i: _launcher(i)
