"""One gated-DeltaNet decode step on the GPU (deltanet_step.cu): the causal convolution with its window, the
delta-rule update of each value head's state in its slot, and the gated output norm, in two launches.

    plan = deltanet_step_plan(nk=8, nv=16, dk=128, dv=128, taps=4, act_dtype="bfloat16", state_dtype="bfloat16")
    gated = plan.run(mixed, ba, z, pool, slots, conv_w, a_log, dt_bias, o_norm, eps)   # [B, nv * dv]

A slot is one row, the convolution window then the state, in the state dtype; or, with `conv_dtype` set (an engine
that keeps the window in another dtype than the state: Qwen3.5's float32 recurrent state beside a bfloat16 window,
verify/layout.py _state_group), two pools, `run(..., conv_pool, ..., state_pool=...)`: [slots, window] in conv_dtype
and [slots, state] in state_dtype, as MambaStepPlan takes them: the convolution launch comes from the module built
for conv_dtype, and the delta kernel reads the state pool at offset 0 (both kernels index a slot by a row stride and
an offset, so the CUDA source is the same).

`deltanet_step_supported(...)` says why a shape cannot run here (the caller then takes the torch path)."""

from __future__ import annotations

from typing import Optional

from ._checks import check_state_pools
from .configs import DELTANET_ACT_DTYPES as ACT_DTYPES
from .configs import DELTANET_KEY_DIMS as KEY_DIMS
from .configs import DELTANET_STATE_DTYPES as STATE_DTYPES
from .configs import DeltaNetStepConfig, all_deltanet_configs  # noqa: F401  (re-exported)

DKS = 4  # threads sharing one state column (deltanet_step.cu)
# kvp_state_conv (kvp_state_step.cuh): mixed, its row stride, slots, pool, its row stride, weights, bias (or 0),
# channels, taps, out
CONV_ARGS = ("u64", "u64", "u64", "u64", "u64", "u64", "u64", "i32", "i32", "u64")


def deltanet_step_supported(nk: int, nv: int, dk: int, dv: int, act_dtype: str, state_dtype: str) -> Optional[str]:
    """None when the kernel runs this shape, else why not (one sentence)."""
    if dk not in KEY_DIMS:
        return f"key head dim {dk} is not compiled (only {', '.join(map(str, KEY_DIMS))})"
    if dv % 32 or not 32 <= dv <= 128:
        return f"value head dim {dv} is not a multiple of 32 in 32..128"
    if nk < 1 or nv % nk:
        return f"{nv} value heads are not a multiple of {nk} key heads"
    if act_dtype not in ACT_DTYPES:
        return f"activations in {act_dtype} (the kernel takes {' or '.join(ACT_DTYPES)})"
    if state_dtype not in STATE_DTYPES:
        return f"state slots in {state_dtype} (the kernel takes {', '.join(STATE_DTYPES)})"
    return None


class DeltaNetStepPlan:
    """Shapes checked and kernels loaded once; `run` packs pointers and launches on torch's current stream."""

    def __init__(self, nk: int, nv: int, dk: int, dv: int, taps: int, act_dtype: str, state_dtype: str, device=None,
                 conv_dtype: Optional[str] = None):
        why = deltanet_step_supported(nk, nv, dk, dv, act_dtype, state_dtype)
        if why is None and conv_dtype is not None:
            why = deltanet_step_supported(nk, nv, dk, dv, act_dtype, conv_dtype)
        if why:
            raise ValueError(f"the DeltaNet step kernel cannot run this layer: {why}")
        if taps < 1:
            raise ValueError(f"convolution width must be >= 1, got {taps}")
        import torch

        from . import _runtime as rt

        self.nk, self.nv, self.dk, self.dv, self.taps = nk, nv, dk, dv, taps
        self.channels = 2 * nk * dk + nv * dv
        self.state_offset = self.channels * (taps - 1)
        self.row_elements = self.state_offset + nv * dk * dv
        self.index = torch.cuda.current_device() if device is None else rt.device_index(device)
        dev = rt.device_info(self.index)
        ld = rt.load(DeltaNetStepConfig(act_dtype, state_dtype, dk), dev)
        self._rt, self._torch = rt, torch
        self.split = conv_dtype is not None  # two pools: the window in conv_dtype, the state in state_dtype
        conv_ld = rt.load(DeltaNetStepConfig(act_dtype, conv_dtype, dk), dev) if self.split else ld
        self._conv = rt.PreparedLaunch(conv_ld, "kvp_state_conv", CONV_ARGS, 256, 0, None, "driver")
        self._delta = rt.PreparedLaunch(ld, "kvp_dn_delta", ("u64", "i32", "u64", "u64", "u64", "u64", "u64", "u64",
                                                             "u64", "u64", "u64", "u64", "u64", "i32", "i32", "i32",
                                                             "f32", "u64"), dv * DKS, 0, None, "driver")
        self._act = getattr(torch, act_dtype)
        self._state = getattr(torch, state_dtype)
        self._conv_dtype = getattr(torch, conv_dtype or state_dtype)

    def _check(self, mixed, ba, z, pool, slots, state_pool=None) -> None:
        b = mixed.shape[0]
        if mixed.shape != (b, self.channels) or mixed.stride(-1) != 1 or mixed.dtype != self._act:
            raise ValueError(f"mixed must be [{b}, {self.channels}] {self._act} with unit last stride")
        if ba.shape[0] != b or ba.shape[1] < 2 * self.nv or ba.stride(-1) != 1 or ba.dtype != self._act:
            raise ValueError(f"ba must be [{b}, >= {2 * self.nv}] {self._act}")
        if z.shape[0] != b or z.shape[1] != self.nv * self.dv or z.stride(-1) != 1 or z.dtype != self._act:
            raise ValueError(f"z must be [{b}, {self.nv * self.dv}] {self._act}")
        check_state_pools(pool, state_pool, self.split, self.row_elements, self.state_offset, self._conv_dtype,
                          self._state)
        if slots.shape != (b,) or slots.dtype != self._torch.int32:
            raise ValueError(f"slots must be [{b}] int32")

    def run(self, mixed, ba, z, pool, slots, conv_w, a_log, dt_bias, o_norm, eps: float, out=None, state_pool=None):
        """mixed [B, channels], ba [B, 2 nv], z [B, nv dv] (activations); pool [slots, row] (state dtype; with
        conv_dtype: [slots, window] in it, and state_pool [slots, state] in the state dtype), slots [B] int32; conv_w
        [channels, taps], a_log / dt_bias [nv], o_norm [dv] (activations) -> [B, nv dv]."""
        torch = self._torch
        self._check(mixed, ba, z, pool, slots, state_pool)
        states, offset = (state_pool, 0) if self.split else (pool, self.state_offset)
        b = mixed.shape[0]
        conv_out = torch.empty(b, self.channels, dtype=torch.float32, device=mixed.device)
        if out is None:
            out = torch.empty(b, self.nv * self.dv, dtype=self._act, device=mixed.device)
        weights = [t.contiguous().to(self._act) for t in (conv_w, a_log, dt_bias, o_norm)]
        stream = self._rt.current_stream_handle(torch, self.index)
        a = self._conv.args
        for i, v in enumerate((mixed.data_ptr(), mixed.stride(0), slots.data_ptr(), pool.data_ptr(),
                               pool.stride(0), weights[0].data_ptr(), 0, self.channels, self.taps,
                               conv_out.data_ptr())):  # 0: no convolution bias
            a[i].value = v
        self._conv.launch((-(-self.channels // 256), b, 1), stream)
        d = self._delta.args
        for i, v in enumerate((conv_out.data_ptr(), self.channels, ba.data_ptr(), ba.stride(0), z.data_ptr(),
                               z.stride(0), slots.data_ptr(), states.data_ptr(), states.stride(0), offset,
                               weights[1].data_ptr(), weights[2].data_ptr(), weights[3].data_ptr(), self.nk,
                               self.nv, self.dv, float(eps), out.data_ptr())):
            d[i].value = v
        self._delta.launch((self.nv, b, 1), stream)
        return out
