"""The chunked gated-DeltaNet prefill's recurrence over chunks in one launch (deltanet_chunks.cu), float32:

    plan = DeltaNetChunksPlan(dk=128)
    out, final = plan.run(trans, inject, q_eff, o_intra, state)
    # for c in order: out[c] = o_intra[c] + q_eff[c] @ S;  S = trans[c] @ S + inject[c]   (S from state, per row h)

trans [nc, H, dk, dk], inject [nc, H, dk, dv], q_eff [nc, H, C, dk], o_intra [nc, H, C, dv], state [H, dk, dv];
returns out [nc, H, C, dv] and the final S [H, dk, dv] (new tensors). `deltanet_chunks_unsupported(...)` says why
a shape cannot run here (kvplan/gpu/deltanet.py then loops in torch)."""

from __future__ import annotations

from typing import Optional

from .configs import DELTANET_KEY_DIMS as KEY_DIMS
from .configs import DeltaNetChunksConfig

COLS = 16  # state columns per CTA (deltanet_chunks.cu KVP_DC_COLS)
MAX_CHUNK = 64  # tokens per chunk: one output row per four of the 256 threads
THREADS = 256


def deltanet_chunks_unsupported(dk: int, dv: int, chunk: int) -> Optional[str]:
    """None when the kernel runs this shape, else why not (one sentence)."""
    if dk not in KEY_DIMS:
        return f"key head dim {dk} is not compiled (only {', '.join(map(str, KEY_DIMS))})"
    if dv < COLS or dv % COLS:
        return f"value head dim {dv} is not a multiple of {COLS}"
    if not 1 <= chunk <= MAX_CHUNK:
        return f"chunks of {chunk} tokens (the kernel takes 1..{MAX_CHUNK})"
    return None


class DeltaNetChunksPlan:
    def __init__(self, dk: int, device=None):
        if dk not in KEY_DIMS:
            raise ValueError(f"the DeltaNet chunk kernel is compiled for key dims {KEY_DIMS}, got {dk}")
        import torch

        from . import _runtime as rt

        rt.require_kernel("the DeltaNet chunk kernel")
        self.dk = dk
        self.index = torch.cuda.current_device() if device is None else rt.device_index(device)
        ld = rt.load(DeltaNetChunksConfig(dk), rt.device_info(self.index))
        self._launch = rt.PreparedLaunch(ld, "kvp_dn_chunks", ("u64",) * 6 + ("i32",) * 4, THREADS, 0, None,
                                         "driver")
        self._rt, self._torch = rt, torch

    def _tensor(self, name, t, shape) -> None:
        ok = (isinstance(t, self._torch.Tensor) and tuple(t.shape) == tuple(shape) and t.dtype == self._torch.float32
              and t.is_cuda and t.is_contiguous() and t.data_ptr() % 16 == 0)
        if not ok:
            raise ValueError(f"{name} must be a contiguous, 16-byte aligned CUDA float32 tensor of shape "
                             f"{list(shape)}")

    def run(self, trans, inject, q_eff, o_intra, state):
        nc, heads, chunk, dk = q_eff.shape
        dv = state.shape[-1]
        why = deltanet_chunks_unsupported(dk, dv, chunk)
        if why or dk != self.dk:
            raise ValueError(f"the DeltaNet chunk kernel cannot run this shape: {why or f'key dim {dk}'}")
        self._tensor("trans", trans, (nc, heads, dk, dk))
        self._tensor("inject", inject, (nc, heads, dk, dv))
        self._tensor("q_eff", q_eff, (nc, heads, chunk, dk))
        self._tensor("o_intra", o_intra, (nc, heads, chunk, dv))
        self._tensor("state", state, (heads, dk, dv))
        out = self._torch.empty_like(o_intra)
        final = state.clone()
        if nc and heads:
            a = self._launch.args
            values = (trans.data_ptr(), inject.data_ptr(), q_eff.data_ptr(), o_intra.data_ptr(), out.data_ptr(),
                      final.data_ptr(), nc, heads, chunk, dv)
            for i, val in enumerate(values):
                a[i].value = val
            self._launch.launch((dv // COLS, heads, 1), self._rt.current_stream_handle(self._torch, self.index))
        return out, final
