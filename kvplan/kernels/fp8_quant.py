"""Activations to e4m3 for an fp8 linear in one launch (fp8_quant.cu; vLLM's scaled_fp8_quant, static scale):

    y = fp8_quant(x, inv_scale)   # x bf16 / fp16, contiguous, numel a multiple of 8 -> e4m3, x * inv_scale saturated

`fp8_quant_supported(x)` says why a tensor cannot take the kernel (None when it can); the caller then runs the torch
form (kvplan/gpu/fp8.py quantize).

Per-token-group scales, for block-fp8 linears run as W8A8 (DeepSeek-V3; vLLM's per_token_group_quant_fp8):

    q, s = fp8_group_quant(x, rows=16)   # x [T, K] bf16 / fp16, K a multiple of 128, rows >= T

s[t, g] = max(amax |x[t, 128g : 128g + 128]| / 448, GROUP_EPS), q = x / s in e4m3 (rounded to nearest, saturated):
q [rows, K] float8_e4m3fn, s [rows, K / 128] float32 with strides (1, rows), the column-major 1x128 block scales
torch's F.scaled_mm (cuBLAS) takes. Rows T..rows-1 get q = 0 and s = 1: cuBLAS refuses fewer than 8 rows, so the
caller pads (to a multiple of 16). `fp8_group_quant_supported(x)` says why not; `group_quant_reference(x, rows)` is
the torch form (CPU fallback; the kernel equals it bit for bit)."""

from __future__ import annotations

import threading
from typing import Optional

from . import _runtime as rt
from .configs import E4M3_ARCHS

THREADS = 256
MAX_CTAS_PER_SM = 8  # a grid-stride loop: enough CTAs to fill the GPU, no more
GROUP = 128  # columns a group scale covers
GROUP_EPS = 1e-10  # the smallest group scale (an all-zero group's); fp8_quant.cu GROUP_EPS
E4M3_MAX = 448.0


def fp8_quant_supported(x) -> Optional[str]:
    """None when the kernel runs on `x`, else why not (one sentence)."""
    import torch

    if not x.is_cuda:
        return "the tensor is not on a CUDA device"
    if x.dtype not in (torch.bfloat16, torch.float16) or x.numel() % 8:
        return "the tensor is not bf16 or fp16 with a multiple of 8 values"
    return _device_supported(x)


def _device_supported(x) -> Optional[str]:
    """What both kernels need of a CUDA tensor and its GPU: None, or why not."""
    if not x.is_contiguous() or x.data_ptr() % 16:
        return "the tensor is not contiguous and 16-byte aligned"
    why = rt.kernel_unavailable_reason()
    if why is None and rt.device_info(x.device.index).arch not in E4M3_ARCHS:
        return "the GPU converts to e4m3 from sm_89 on"
    return why


def fp8_quant(x, inv_scale: float, out=None):
    """x * inv_scale in e4m3 (saturated at +-448, rounded to nearest), x's shape."""
    why = fp8_quant_supported(x)
    if why is not None:
        raise ValueError(f"the fp8 quantisation kernel cannot take this tensor: {why}")
    import torch

    if out is None:
        out = torch.empty(x.shape, dtype=torch.float8_e4m3fn, device=x.device)
    if x.numel():
        _launcher(x.device.index).run(x, out, float(inv_scale))
    return out


def fp8_group_quant_supported(x) -> Optional[str]:
    """None when the group kernel runs on `x` ([T, K]), else why not (one sentence)."""
    import torch

    if x.dtype not in (torch.bfloat16, torch.float16):  # dtype and shape first: said on any device
        return "the tensor is not bf16 or fp16"
    if x.dim() != 2 or x.shape[1] % GROUP:
        return f"the tensor is not 2-D with a multiple of {GROUP} columns"
    if not x.is_cuda:
        return "the tensor is not on a CUDA device"
    return _device_supported(x)


def _group_rows(x, rows: Optional[int]) -> int:
    t = x.shape[0]
    if rows is None:
        return t
    if rows < t:
        raise ValueError(f"rows={rows} is fewer than the tensor's {t} rows")
    return int(rows)


def group_scales_empty(rows: int, groups: int, device):
    """A [rows, groups] float32 tensor with strides (1, rows): the layout of fp8_group_quant's scales."""
    import torch

    return torch.empty(groups, rows, dtype=torch.float32, device=device).t()


def group_quant_reference(x, rows: Optional[int] = None):
    """fp8_group_quant in torch (float32 arithmetic), the same (q, s) layout: any device, any float dtype."""
    import torch

    if x.dim() != 2 or x.shape[1] % GROUP:
        raise ValueError(f"x must be 2-D with a multiple of {GROUP} columns, not {tuple(x.shape)}")
    t, k = x.shape
    rows, groups = _group_rows(x, rows), k // GROUP
    xf = x.float().reshape(t, groups, GROUP)
    # a tensor divisor: torch divides by a Python scalar as a product with its reciprocal on the GPU (1 ulp off the
    # kernel's true division in 1 of ~5 scales, H200 session 40), by a tensor truly
    amax = xf.abs().amax(dim=-1)
    sc = (amax / torch.full_like(amax, E4M3_MAX)).clamp(min=GROUP_EPS)  # NaN stays NaN (amax and clamp propagate it)
    qt = (xf / sc[..., None]).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn).reshape(t, k)
    q = torch.zeros(rows, k, dtype=torch.float8_e4m3fn, device=x.device)
    q[:t] = qt
    s = group_scales_empty(rows, groups, x.device)
    s.fill_(1.0)
    s[:t] = sc
    return q, s


def fp8_group_quant(x, rows: Optional[int] = None, out=None, scales=None):
    """(q, s): x [T, K] per token and 128 columns in e4m3, s [rows, K/128] float32 with strides (1, rows); rows
    (default T) >= T, the rows past T zeros with scale 1. out / scales: preallocated q and s of those layouts."""
    why = fp8_group_quant_supported(x)
    if why is not None:
        raise ValueError(f"the fp8 group quantisation kernel cannot take this tensor: {why}")
    import torch

    t, k = x.shape
    rows, groups = _group_rows(x, rows), k // GROUP
    if out is None:
        out = torch.empty(rows, k, dtype=torch.float8_e4m3fn, device=x.device)
    elif (out.dtype != torch.float8_e4m3fn or tuple(out.shape) != (rows, k) or not out.is_contiguous()
          or out.device != x.device or out.data_ptr() % 8):
        raise ValueError(f"out must be a contiguous float8_e4m3fn [{rows}, {k}] tensor on {x.device}")
    if scales is None:
        scales = group_scales_empty(rows, groups, x.device)
    elif (scales.dtype != torch.float32 or tuple(scales.shape) != (rows, groups)
          or (rows > 1 and scales.stride(0) != 1) or (groups > 1 and scales.stride(1) != rows)
          or scales.device != x.device):
        raise ValueError(f"scales must be float32 [{rows}, {groups}] with strides (1, {rows}) on {x.device}")
    if rows and groups:
        _launcher(x.device.index).run_group(x, out, scales, t, rows, groups)
    return out, scales


def fp8_block_dequant_supported(q) -> Optional[str]:
    """None when the dequantisation kernel runs on the e4m3 values `q` ([..., rows, cols]), else why not."""
    import torch

    if q.dtype != torch.float8_e4m3fn or q.dim() < 2 or q.shape[-1] % GROUP:
        return f"the tensor is not float8_e4m3fn [..., rows, cols] with cols a multiple of {GROUP}"
    if not q.is_cuda:
        return "the tensor is not on a CUDA device"
    return _device_supported(q)


def fp8_block_dequant(q, s, out=None):
    """q [..., R, C] float8_e4m3fn and its block scales s [..., ceil(R / 128), C / 128] float32 (C a multiple of 128,
    both contiguous) -> bf16 [..., R, C] = q * s per 128 x 128 block, in one launch (into ``out`` where given: a
    contiguous bf16 tensor of q's shape). ValueError naming the argument otherwise."""
    import torch

    if not isinstance(q, torch.Tensor) or q.dtype != torch.float8_e4m3fn or q.dim() < 2 or q.shape[-1] % GROUP:
        raise ValueError(f"q must be a float8_e4m3fn tensor [..., rows, cols] with cols a multiple of {GROUP}")
    rows, cols = q.shape[-2:]
    want = (*q.shape[:-2], -(-rows // GROUP), cols // GROUP)
    if not isinstance(s, torch.Tensor) or s.dtype != torch.float32 or tuple(s.shape) != want:
        raise ValueError(f"s must be a float32 tensor of shape {want}")
    why = fp8_block_dequant_supported(q) or (None if s.is_contiguous() and s.device == q.device else
                                             "the scales are not contiguous on the values' device")
    if why is not None:
        raise ValueError(f"the fp8 dequantisation kernel cannot take these tensors: {why}")
    if out is None:
        out = torch.empty(q.shape, dtype=torch.bfloat16, device=q.device)
    elif (out.dtype != torch.bfloat16 or out.shape != q.shape or not out.is_contiguous() or out.device != q.device
          or out.data_ptr() % 16):
        raise ValueError(f"out must be a contiguous, 16-byte aligned bfloat16 tensor of shape {tuple(q.shape)}")
    if q.numel():
        _launcher(q.device.index).run_dequant(q, s, out, rows, cols)
    return out


class _Fp8QuantLaunch:
    def __init__(self, index: int):
        from .configs import Fp8QuantConfig

        self._index = index
        dev = rt.device_info(index)
        ld = rt.load(Fp8QuantConfig(), dev)
        args = ("u64", "u64", "u64", "f32")
        self._launches = {name: rt.PreparedLaunch(ld, f"kvp_fp8_quant_{name}", args, THREADS, 0, None, "driver")
                          for name in ("bf16", "f16")}
        gargs = ("u64", "u64", "u64", "i32", "i32", "i32")
        self._group = {name: rt.PreparedLaunch(ld, f"kvp_fp8_group_quant_{name}", gargs, THREADS, 0, None, "driver")
                       for name in ("bf16", "f16")}
        self._dequant = rt.PreparedLaunch(ld, "kvp_fp8_block_dequant_bf16", ("u64", "u64", "u64", "u64", "i32", "i32"),
                                          THREADS, 0, None, "driver")
        self._max_ctas = dev.sm_count * MAX_CTAS_PER_SM
        self._lock = threading.Lock()

    def run(self, x, out, inv_scale: float) -> None:
        import torch

        octs = x.numel() // 8
        ln = self._launches["bf16" if x.dtype == torch.bfloat16 else "f16"]
        grid = min(-(-octs // THREADS), self._max_ctas)
        with self._lock:
            rt.launch_on(torch, self._index, ln, (x.data_ptr(), out.data_ptr(), octs, inv_scale), (grid, 1, 1))


    def run_group(self, x, q, s, tokens: int, rows: int, groups: int) -> None:
        import torch

        ln = self._group["bf16" if x.dtype == torch.bfloat16 else "f16"]
        items = rows * groups  # 16 threads each
        if items >= 2 ** 31:
            raise ValueError(f"{rows} rows of {groups} groups is too many for one launch")
        grid = min(-(-items // (THREADS // 16)), self._max_ctas)
        with self._lock:
            rt.launch_on(torch, self._index, ln, (x.data_ptr(), q.data_ptr(), s.data_ptr(), tokens, rows, groups),
                         (grid, 1, 1))

    def run_dequant(self, q, s, out, rows: int, cols: int) -> None:
        import torch

        sixteens = q.numel() // 16
        grid = min(-(-sixteens // THREADS), self._max_ctas)
        with self._lock:
            rt.launch_on(torch, self._index, self._dequant, (q.data_ptr(), s.data_ptr(), out.data_ptr(), sixteens, rows,
                                                             cols), (grid, 1, 1))


_launcher = rt.per_device(_Fp8QuantLaunch)  # the launch on GPU index i: _launcher(i)
