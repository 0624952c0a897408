"""Activations to e4m3 for an fp8 linear in one launch (fp8_quant.cu; vLLM's scaled_fp8_quant, static scale):

    y = fp8_quant(x, inv_scale)   # x bf16 / fp16, contiguous, numel a multiple of 8 -> e4m3, x * inv_scale saturated

`fp8_quant_supported(x)` says why a tensor cannot take the kernel (None when it can); the caller then runs the torch
form (kvplan/gpu/fp8.py quantize)."""

from __future__ import annotations

import threading
from typing import Optional

from . import _runtime as rt
from .configs import E4M3_ARCHS

THREADS = 256
MAX_CTAS_PER_SM = 8  # a grid-stride loop: enough CTAs to fill the GPU, no more


def fp8_quant_supported(x) -> Optional[str]:
    """None when the kernel runs on `x`, else why not (one sentence)."""
    import torch

    if not x.is_cuda:
        return "the tensor is not on a CUDA device"
    if x.dtype not in (torch.bfloat16, torch.float16) or x.numel() % 8:
        return "the tensor is not bf16 or fp16 with a multiple of 8 values"
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


class _Fp8QuantLaunch:
    def __init__(self, index: int):
        from .configs import Fp8QuantConfig

        self._index = index
        dev = rt.device_info(index)
        ld = rt.load(Fp8QuantConfig(), dev)
        args = ("u64", "u64", "u64", "f32")
        self._launches = {name: rt.PreparedLaunch(ld, f"kvp_fp8_quant_{name}", args, THREADS, 0, None, "driver")
                          for name in ("bf16", "f16")}
        self._max_ctas = dev.sm_count * MAX_CTAS_PER_SM
        self._lock = threading.Lock()

    def run(self, x, out, inv_scale: float) -> None:
        import torch

        octs = x.numel() // 8
        ln = self._launches["bf16" if x.dtype == torch.bfloat16 else "f16"]
        grid = min(-(-octs // THREADS), self._max_ctas)
        with self._lock:
            rt.launch_on(torch, self._index, ln, (x.data_ptr(), out.data_ptr(), octs, inv_scale), (grid, 1, 1))


_launcher = rt.per_device(_Fp8QuantLaunch)  # the launch on GPU index i: _launcher(i)
