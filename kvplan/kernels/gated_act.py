"""A gated MLP's activation, act(gate) * up, in one launch (gated_act.cu; vLLM's SiluAndMul / GeluAndMul), and a
non-gated one's act(h) (Nemotron-H's squared ReLU):

    out = gated_act(h, "silu")         # h [..., 2I] = [gate | up] rows in bf16 / fp16 -> out [..., I]
    out = gated_act(h, "gelu_tanh")    # Gemma's GELU (tanh approximation)
    out = gated_act(h, "silu", quant_inv=32.0)   # e4m3, for an fp8 down projection
    out = ungated_act(h, "relu2")      # h [..., I] -> relu(h)^2 [..., I], rounded to h's dtype once

`gated_act_supported(h, name)` / `ungated_act_supported(h, name)` say why a tensor cannot take the kernel (None when
it can); the caller then runs the torch form (kvplan/gpu/ops.py mlp_activation)."""

from __future__ import annotations

import threading
from typing import Optional

from . import _runtime as rt
from .configs import E4M3_ARCHS

THREADS = 256
MAX_CTAS_PER_SM = 8  # a grid-stride loop: enough CTAs to fill the GPU, no more
ACTIVATIONS = {"silu": 0, "gelu_tanh": 1}
UNGATED = {"relu2": 2}  # gated_act.cu's activation kinds of one input


def gated_act_supported(h, name: str) -> Optional[str]:
    """None when the kernel runs on `h` with activation `name`, else why not (one sentence)."""
    if name not in ACTIVATIONS:
        return f"the activation is {name!r}, not one of {', '.join(ACTIVATIONS)}"
    return _rows_supported(h, 16, "[..., 2I] in bf16 or fp16 with I a multiple of 8")


def ungated_act_supported(h, name: str) -> Optional[str]:
    """None when the kernel runs act(h) for activation `name` (not gated), else why not (one sentence)."""
    if name not in UNGATED:
        return f"the activation is {name!r}, not one of {', '.join(UNGATED)}"
    return _rows_supported(h, 8, "[..., I] in bf16 or fp16 with I a multiple of 8")


def _rows_supported(h, multiple: int, shape: str) -> Optional[str]:
    import torch

    if not h.is_cuda:
        return "the rows are not on a CUDA device"
    if h.dtype not in (torch.bfloat16, torch.float16) or h.dim() < 1 or h.shape[-1] % multiple:
        return f"the rows are not {shape}"
    rows = h.reshape(-1, h.shape[-1]) if h.dim() != 2 else h
    if rows.stride(-1) != 1 or (rows.shape[0] > 1 and rows.stride(0) % 8) or h.data_ptr() % 16:
        return "the rows are not 16-byte aligned with their values adjacent"
    return rt.kernel_unavailable_reason()


def gated_act(h, name: str, out=None, quant_inv: float = 0.0):
    """act(h[..., :I]) * h[..., I:] in h's dtype, [..., I] (the activation rounded to that dtype first); with
    quant_inv > 0 in e4m3, that product times quant_inv saturated (for an fp8 down projection; sm_89 and later)."""
    why = gated_act_supported(h, name)
    if why is None and quant_inv and rt.device_info(h.device.index).arch not in E4M3_ARCHS:
        why = "the GPU converts to e4m3 from sm_89 on"
    if why is not None:
        raise ValueError(f"the gated activation kernel cannot take these rows: {why}")
    import torch

    inter = h.shape[-1] // 2
    rows = h.reshape(-1, h.shape[-1]) if h.dim() != 2 else h
    if out is None:
        out = torch.empty(*h.shape[:-1], inter, dtype=torch.float8_e4m3fn if quant_inv else h.dtype,
                          device=h.device)
    if rows.shape[0]:
        _launcher(h.device.index).run(rows, out, inter, ACTIVATIONS[name], float(quant_inv))
    return out


def ungated_act(h, name: str, out=None, quant_inv: float = 0.0):
    """act(h) in h's dtype, [..., I]; with quant_inv > 0 in e4m3 (as gated_act)."""
    why = ungated_act_supported(h, name)
    if why is None and quant_inv and rt.device_info(h.device.index).arch not in E4M3_ARCHS:
        why = "the GPU converts to e4m3 from sm_89 on"
    if why is not None:
        raise ValueError(f"the activation kernel cannot take these rows: {why}")
    import torch

    rows = h.reshape(-1, h.shape[-1]) if h.dim() != 2 else h
    if out is None:
        out = torch.empty(h.shape, dtype=torch.float8_e4m3fn if quant_inv else h.dtype, device=h.device)
    if rows.shape[0]:
        _launcher(h.device.index).run(rows, out, h.shape[-1], UNGATED[name], float(quant_inv))
    return out


class _GatedActLaunch:
    def __init__(self, index: int):
        from .configs import GatedActConfig

        self._index = index
        dev = rt.device_info(index)
        ld = rt.load(GatedActConfig(), dev)
        args = ("u64", "u64", "u64", "u64", "i32", "i32", "f32")
        self._launches = {name: rt.PreparedLaunch(ld, f"kvp_gated_act_{name}", args, THREADS, 0, None, "driver")
                          for name in ("bf16", "f16")}
        self._max_ctas = dev.sm_count * MAX_CTAS_PER_SM
        self._lock = threading.Lock()

    def run(self, rows, out, inter: int, act: int, quant_inv: float = 0.0) -> None:
        import torch

        n = rows.shape[0]
        ln = self._launches["bf16" if rows.dtype == torch.bfloat16 else "f16"]
        grid = min(-(-n * (inter // 8) // THREADS), self._max_ctas)
        values = (rows.data_ptr(), rows.stride(0), out.data_ptr(), n, inter, act, quant_inv)
        with self._lock:
            rt.launch_on(torch, self._index, ln, values, (grid, 1, 1))


_launcher = rt.per_device(_GatedActLaunch)  # the launch on GPU index i: _launcher(i)
