"""Four launches of the gated-DeltaNet prefill (deltanet_prefill.cu):

    q, k, v = conv_chunks(x, w, n, nk, rep, scale, chunk)  # x [R * n, C] (bf16 / fp16, rows may be strided): each
                                  # token's q, k (nk heads each) and v (nk * rep heads) of 128, C = 128 (2 nk + nv);
                                  # w [C, 4] -> silu(causal depthwise conv of each sequence of n tokens, zero
                                  # history); q, k l2-normalised, q times scale, key heads copied to the rep value
                                  # heads each serves; each [N, R, nv, chunk, 128] fp32 chunk-major (zeros past
                                  # n), as the chunked rule takes them
    u, w = solve_chunks(kk, k, v, cum, beta)  # per chunk (kk = K K^T [.., C, C], k [.., C, dk], v [.., C, dv], cum
                                  # and beta [.., C], fp32, C = 64): A = beta_i kk[i][t] exp(cum_i - cum_t) below
                                  # the diagonal, [u | w] = (I + A)^-1 [beta v | beta exp(cum) k]
    scan_states(m, states)        # m [chunks, heads, 128, 128] fp32; states [chunks + 1, heads, 128, dv] fp32
                                  # holding S[0], then B[c]; afterwards states[c + 1] = m[c] @ states[c] + B[c]
    out = gated_norm(o, z, w, r, n, eps)  # o [N, r, H, C, 128] fp32 chunk-major (the chunked rule's output),
                                  # z [r * n, H * 128] (bf16 / fp16, rows may be strided), w [128] -> out
                                  # [r * n, H * 128] in z's dtype = o rsqrt(mean(o^2) + eps) w silu(z), token order

`conv_chunks_supported(...)` / `solve_supported(...)` / `scan_supported(...)` / `gated_norm_supported(...)` say why
tensors cannot take a kernel
(None when they can); the caller then runs the torch form (kvplan/gpu/deltanet.py)."""

from __future__ import annotations

import threading
from typing import Optional

from . import _runtime as rt

DK = 128  # the scan's key dim
COLS = 16  # columns of the state a scan CTA owns
SCAN_THREADS = 512
CONV_THREADS = 256
MAX_CTAS_PER_SM = 8  # the convolution's grid-stride loop: enough CTAs to fill the GPU, no more
TAPS = 4  # the convolution width the kernel compiles (Qwen3-Next's)
HEAD_DIM = 128  # the q, k and v head dims the convolution kernel compiles
NORM_DV = 128  # the value head dim the gated norm compiles (Qwen3-Next's)
SOLVE_C = 64  # the chunk the solve compiles (deltanet.py CHUNK); a thread a column of [v | k]: dk + dv <= 256
SOLVE_THREADS = 256


def _on_one_gpu(*tensors) -> Optional[str]:
    if not all(t.is_cuda and t.device == tensors[0].device for t in tensors):
        return "the tensors are not on one CUDA device"
    return rt.kernel_unavailable_reason()


def conv_chunks_supported(x, w, n: int, nk: int, rep: int) -> Optional[str]:
    """None when the convolution kernel runs on these tensors, else why not (one sentence)."""
    import torch

    if x.dtype not in (torch.bfloat16, torch.float16) or w.dtype != x.dtype:
        return "the inputs and weights are not both bf16 or both fp16"
    channels = (2 * nk + nk * rep) * HEAD_DIM
    if nk < 1 or rep < 1 or x.dim() != 2 or x.shape[1] != channels or w.shape != (channels, TAPS):
        return (f"the inputs are not [tokens, {channels}] (q, k and v heads of {HEAD_DIM}) with weights "
                f"[{channels}, {TAPS}]")
    if n < 1 or x.shape[0] % n:
        return f"{x.shape[0]} tokens are not whole sequences of {n}"
    if x.shape[0] * channels // 8 >= 2**31:
        return "more than 2^31 groups of 8 inputs (the kernel counts in 32 bits)"
    if x.stride(1) != 1 or x.stride(0) % 8 or x.data_ptr() % 16 or not w.is_contiguous():
        return "the inputs' rows are not 16-byte aligned with unit column stride, or the weights not contiguous"
    return _on_one_gpu(x, w)


def conv_chunks(x, w, n: int, nk: int, rep: int, scale: float, chunk: int):
    """(q, k, v), each [N, R, nk rep, chunk, 128] fp32 chunk-major (N = ceil(n / chunk)): the convolved,
    normalised inputs of the chunked rule (see the module)."""
    why = conv_chunks_supported(x, w, n, nk, rep)
    if why is not None:
        raise ValueError(f"the DeltaNet convolution kernel cannot take these tensors: {why}")
    import torch

    if not 1 <= chunk <= n:
        raise ValueError(f"chunk must be in 1..{n}, got {chunk}")
    seqs = x.shape[0] // n
    shape = (-(-n // chunk), seqs, nk * rep, chunk, HEAD_DIM)
    make = torch.zeros if n % chunk else torch.empty  # the last chunk's tail past n stays 0
    q, k, v = (make(shape, dtype=torch.float32, device=x.device) for _ in range(3))
    if x.shape[0]:
        _launcher(x.device.index).conv(x, w, n, chunk, nk, rep, scale, q, k, v)
    return q, k, v


def solve_supported(kk, k, v, cum, beta) -> Optional[str]:
    """None when the solve kernel runs on these tensors, else why not (one sentence)."""
    import torch

    tensors = (kk, k, v, cum, beta)
    if any(t.dtype != torch.float32 or not t.is_contiguous() for t in tensors):
        return "the tensors are not all contiguous float32"
    lead = kk.shape[:-2]
    if kk.shape[-2:] != (SOLVE_C, SOLVE_C) or cum.shape != (*lead, SOLVE_C) or beta.shape != cum.shape:
        return f"the chunks are not of {SOLVE_C} tokens ([.., {SOLVE_C}, {SOLVE_C}] products, [.., {SOLVE_C}] gates)"
    if k.shape[:-1] != cum.shape or v.shape[:-1] != cum.shape or k.shape[-1] + v.shape[-1] > SOLVE_THREADS:
        return f"k and v are not [.., {SOLVE_C}, d] with dk + dv <= {SOLVE_THREADS}"
    return _on_one_gpu(*tensors)


def solve_chunks(kk, k, v, cum, beta):
    """(u, w) = (I + A)^-1 (beta v, beta exp(cum) k) for every chunk, A from kk, cum and beta (see the module)."""
    why = solve_supported(kk, k, v, cum, beta)
    if why is not None:
        raise ValueError(f"the DeltaNet solve kernel cannot take these tensors: {why}")
    import torch

    u, w = torch.empty_like(v), torch.empty_like(k)
    mats = cum.numel() // SOLVE_C
    if mats:
        _launcher(k.device.index).solve(kk, k, v, cum, beta, u, w, mats)
    return u, w


def scan_supported(m, states) -> Optional[str]:
    """None when the scan kernel runs on these tensors, else why not (one sentence)."""
    import torch

    if m.dtype != torch.float32 or states.dtype != torch.float32:
        return "the kernel takes float32 states and maps"
    if m.dim() != 4 or m.shape[2:] != (DK, DK):
        return f"the maps are {tuple(m.shape)}, not [chunks, heads, {DK}, {DK}]"
    chunks, heads = m.shape[:2]
    if states.dim() != 4 or states.shape[:3] != (chunks + 1, heads, DK) or states.shape[3] % COLS:
        return f"the states are {tuple(states.shape)}, not [{chunks + 1}, {heads}, {DK}, a multiple of {COLS}]"
    if not (m.is_contiguous() and states.is_contiguous()):
        return "the tensors are not contiguous"
    return _on_one_gpu(m, states)


def scan_states(m, states) -> None:
    """states[c + 1] = m[c] @ states[c] + states[c + 1] for c = 0, 1, .. in order, in place (see the module)."""
    why = scan_supported(m, states)
    if why is not None:
        raise ValueError(f"the DeltaNet scan kernel cannot take these tensors: {why}")
    _launcher(states.device.index).scan(m, states)


def gated_norm_supported(o, z, w, r: int, n: int) -> Optional[str]:
    """None when the gated-norm kernel runs on these tensors, else why not (one sentence)."""
    import torch

    if o.dtype != torch.float32 or o.dim() != 5 or o.shape[4] != NORM_DV or not o.is_contiguous():
        return f"the output is not a contiguous float32 [chunks, seqs, heads, chunk, {NORM_DV}] tensor"
    chunks, seqs, heads, chunk = o.shape[:4]
    if seqs != r or chunks * chunk < n or (chunks - 1) * chunk >= n:
        return f"the output's chunks do not hold {r} sequences of {n} tokens"
    if z.dtype not in (torch.bfloat16, torch.float16) or w.dtype != z.dtype:
        return "z and the norm weight are not both bf16 or both fp16"
    if z.dim() != 2 or z.shape != (r * n, heads * NORM_DV) or z.stride(1) != 1 or z.stride(0) % 4 \
            or z.data_ptr() % 8:
        return f"z is not [{r * n}, {heads * NORM_DV}] with 8-byte aligned rows"
    if w.shape != (NORM_DV,) or not w.is_contiguous() or w.data_ptr() % 8:
        return f"the norm weight is not a contiguous [{NORM_DV}] vector"
    if r * n * heads >= 2**31:
        return "more than 2^31 (token, head) rows (the kernel counts in 32 bits)"
    return _on_one_gpu(o, z, w)


def gated_norm(o, z, w, r: int, n: int, eps: float, out=None):
    """[r n, H 128] in z's dtype: the gated RMSNorm of the chunk-major output, in token order (see the module)."""
    why = gated_norm_supported(o, z, w, r, n)
    if why is not None:
        raise ValueError(f"the DeltaNet gated-norm kernel cannot take these tensors: {why}")
    import torch

    if out is None:
        out = torch.empty(z.shape, dtype=z.dtype, device=z.device)
    if z.shape[0]:
        _launcher(z.device.index).norm(o, z, w, r, n, eps, out)
    return out


class _Launches:
    """deltanet_prefill.cu's entry points on one GPU, arguments packed once."""

    def __init__(self, index: int):
        from .configs import DeltaNetPrefillConfig

        self._index = index
        dev = rt.device_info(index)
        ld = rt.load(DeltaNetPrefillConfig(), dev)
        conv_args = ("u64", "u64", "u64", "i32", "i32", "i32", "i32", "i32", "f32", "u64", "u64", "u64")
        self._conv = {name: rt.PreparedLaunch(ld, f"kvp_dn_conv_chunks_{name}", conv_args, CONV_THREADS, 0, None,
                                              "driver") for name in ("bf16", "f16")}
        norm_args = ("u64", "i32", "i32", "i32", "i32", "u64", "u64", "u64", "f32", "u64")
        self._norm = {name: rt.PreparedLaunch(ld, f"kvp_dn_gated_norm_{name}", norm_args, CONV_THREADS, 0, None,
                                              "driver") for name in ("bf16", "f16")}
        self._scan = rt.PreparedLaunch(ld, "kvp_dn_scan", ("u64", "u64", "i32", "i32", "i32"), SCAN_THREADS, 0,
                                       None, "driver")
        self._solve = rt.PreparedLaunch(ld, "kvp_dn_solve", ("u64",) * 7 + ("i32", "i32"), SOLVE_THREADS, 0, None,
                                        "driver")
        self._max_ctas = dev.sm_count * MAX_CTAS_PER_SM
        self._lock = threading.Lock()

    def _go(self, launch, values, grid) -> None:
        import torch

        with self._lock:
            rt.launch_on(torch, self._index, launch, values, grid)

    def conv(self, x, w, n: int, chunk: int, nk: int, rep: int, scale: float, q, k, v) -> None:
        import torch

        tokens, channels = x.shape
        launch = self._conv["bf16" if x.dtype == torch.bfloat16 else "f16"]
        grid = min(-(-tokens * (channels // 8) // CONV_THREADS), self._max_ctas)
        self._go(launch, (x.data_ptr(), x.stride(0), w.data_ptr(), tokens, n, chunk, nk, rep, float(scale),
                          q.data_ptr(), k.data_ptr(), v.data_ptr()), (grid, 1, 1))

    def norm(self, o, z, w, r: int, n: int, eps: float, out) -> None:
        import torch

        chunk, heads = o.shape[3], o.shape[2]
        launch = self._norm["bf16" if z.dtype == torch.bfloat16 else "f16"]
        grid = min(-(-r * n * heads // (CONV_THREADS // 32)), self._max_ctas)
        self._go(launch, (o.data_ptr(), chunk, r, n, heads, z.data_ptr(), z.stride(0), w.data_ptr(), float(eps),
                          out.data_ptr()), (grid, 1, 1))

    def solve(self, kk, k, v, cum, beta, u, w, mats: int) -> None:
        self._go(self._solve, (kk.data_ptr(), k.data_ptr(), v.data_ptr(), cum.data_ptr(), beta.data_ptr(),
                               u.data_ptr(), w.data_ptr(), k.shape[-1], v.shape[-1]), (mats, 1, 1))

    def scan(self, m, states) -> None:
        chunks, heads = m.shape[:2]
        dv = states.shape[3]
        self._go(self._scan, (m.data_ptr(), states.data_ptr(), chunks, heads, dv), (dv // COLS, heads, 1))


_launcher = rt.per_device(_Launches)  # the launches on GPU index i: _launcher(i)
