"""The chunk-to-chunk state recurrence of a chunked gated-DeltaNet prefill, in one launch (deltanet_scan.cu):

    scan_states(m, states)   # m [chunks, heads, 128, 128] fp32; states [chunks + 1, heads, 128, dv] fp32 holding
                             # S[0], then B[c]; afterwards states[c + 1] = m[c] @ states[c] + B[c], in order

`scan_supported(m, states)` says why a pair of tensors cannot take the kernel (None when it can); the caller
then runs the same recurrence as one batched matmul a chunk (kvplan/gpu/deltanet.py)."""

from __future__ import annotations

import threading
from typing import Optional

DK = 128  # the kernel's key dim (deltanet_scan.cu)
COLS = 16  # columns of the state a CTA owns
THREADS = 512


def scan_supported(m, states) -> Optional[str]:
    """None when the kernel runs on these tensors, else why not (one sentence)."""
    import torch

    if not (m.is_cuda and states.is_cuda) or m.device != states.device:
        return "the tensors are not on one CUDA device"
    if m.dtype != torch.float32 or states.dtype != torch.float32:
        return "the kernel takes float32 states and maps"
    if m.dim() != 4 or m.shape[2:] != (DK, DK):
        return f"the maps are {tuple(m.shape)}, not [chunks, heads, {DK}, {DK}]"
    chunks, heads = m.shape[:2]
    if states.dim() != 4 or states.shape[:3] != (chunks + 1, heads, DK) or states.shape[3] % COLS:
        return f"the states are {tuple(states.shape)}, not [{chunks + 1}, {heads}, {DK}, a multiple of {COLS}]"
    if not (m.is_contiguous() and states.is_contiguous()):
        return "the tensors are not contiguous"
    from . import _runtime as rt

    return rt.kernel_unavailable_reason()


def scan_states(m, states) -> None:
    """states[c + 1] = m[c] @ states[c] + states[c + 1] for c = 0, 1, .. in order, in place (see the module)."""
    why = scan_supported(m, states)
    if why is not None:
        raise ValueError(f"the DeltaNet scan kernel cannot take these tensors: {why}")
    _launcher(states.device.index).run(m, states)


class _ScanLaunch:
    def __init__(self, index: int):
        from . import _runtime as rt
        from .configs import DeltaNetScanConfig

        self._rt, self._index = rt, index
        ld = rt.load(DeltaNetScanConfig(), rt.device_info(index))
        self._launch = rt.PreparedLaunch(ld, "kvp_dn_scan", ("u64", "u64", "i32", "i32", "i32"), THREADS, 0, None,
                                         "driver")
        self._lock = threading.Lock()

    def run(self, m, states) -> None:
        import torch

        chunks, heads = m.shape[:2]
        dv = states.shape[3]
        with self._lock, torch.cuda.device(self._index):
            a = self._launch.args
            a[0].value, a[1].value = m.data_ptr(), states.data_ptr()
            a[2].value, a[3].value, a[4].value = chunks, heads, dv
            self._launch.launch((dv // COLS, heads, 1), self._rt.current_stream_handle(torch, self._index))


_LAUNCHERS: dict[int, _ScanLaunch] = {}
_LAUNCHERS_LOCK = threading.Lock()


def _launcher(index: int) -> _ScanLaunch:
    with _LAUNCHERS_LOCK:
        if index not in _LAUNCHERS:
            _LAUNCHERS[index] = _ScanLaunch(index)
        return _LAUNCHERS[index]
