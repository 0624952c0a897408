"""One Mamba-2 decode step on the GPU (mamba_step.cu): the causal convolution with its window, each head's state
update in its slot with D x, and the group's gated RMSNorm, in three launches.

    plan = MambaStepPlan(heads=128, groups=8, head_dim=64, state=128, taps=4, act_dtype="bfloat16",
                         state_dtype="bfloat16")
    gated = plan.run(xbc, dt, z, pool, slots, conv_w, conv_b, a_log, d, dt_bias, o_norm, eps)   # [B, heads * P]

A slot is one row, the convolution window then the state, in the state dtype; or, with `conv_dtype` set (an
engine that keeps the window in another dtype than the state: vLLM's NemotronH handler's float32 SSM state beside
a bfloat16 window), two pools, `run(..., conv_pool, ..., state_pool=...)`: [slots, window] in conv_dtype and
[slots, state] in state_dtype. The kernels index a slot by a row stride and an offset, so the two views need no
other code: the convolution launch comes from the module built for conv_dtype.

`mamba_step_supported(...)` says why a shape cannot run here (the caller then takes the torch path)."""

from __future__ import annotations

from typing import Optional

from ._checks import check_state_pools
from .configs import DELTANET_ACT_DTYPES as ACT_DTYPES
from .configs import DELTANET_STATE_DTYPES as STATE_DTYPES
from .configs import MambaStepConfig, all_mamba_configs  # noqa: F401  (re-exported)
from .deltanet_step import CONV_ARGS

THREADS = 256  # kvp_mb_ssm's and kvp_mb_norm's CTAs
SSM_ARGS = ("u64", "i32", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "i32", "i32", "i32", "i32",
            "i32", "u64")
NORM_ARGS = ("u64", "u64", "u64", "u64", "i32", "i32", "f32", "u64")
CTAS_PER_SM = 8  # kvp_mb_ssm's CTAs a launch wants per SM before a CTA takes more than one head
MAX_GRID_Y = 65535  # the norm's rows a launch (its grid's y)


def heads_per_cta(heads: int, groups: int, batch: int, sm_count: int) -> int:
    """The most heads of a group a CTA takes while the launch still has CTAS_PER_SM CTAs per SM (1 if even a head
    a CTA has fewer)."""
    rep = heads // groups
    best = 1
    for hc in range(1, rep + 1):
        if rep % hc == 0 and heads // hc * batch >= CTAS_PER_SM * sm_count:
            best = hc
    return best


def mamba_step_supported(heads: int, groups: int, head_dim: int, state: int, taps: int, act_dtype: str,
                         state_dtype: str) -> Optional[str]:
    """None when the kernel runs this shape, else why not (one sentence)."""
    if state % 8 or state // 8 not in (1, 2, 4, 8, 16, 32):
        return f"state size {state} is not 8 x a power of two up to 256"
    if groups < 1 or heads % groups:
        return f"{heads} heads are not a multiple of {groups} groups"
    if head_dim < 1 or taps < 1:
        return f"head dim {head_dim} and convolution width {taps} must be positive"
    if act_dtype not in ACT_DTYPES:
        return f"activations in {act_dtype} (the kernel takes {' or '.join(ACT_DTYPES)})"
    if state_dtype not in STATE_DTYPES:
        return f"state slots in {state_dtype} (the kernel takes {', '.join(STATE_DTYPES)})"
    return None


class MambaStepPlan:
    """Shapes checked and kernels loaded once; `run` packs pointers and launches on torch's current stream."""

    def __init__(self, heads: int, groups: int, head_dim: int, state: int, taps: int, act_dtype: str,
                 state_dtype: str, device=None, conv_dtype: Optional[str] = None):
        why = mamba_step_supported(heads, groups, head_dim, state, taps, act_dtype, state_dtype)
        if why is None and conv_dtype is not None:
            why = mamba_step_supported(heads, groups, head_dim, state, taps, act_dtype, conv_dtype)
        if why:
            raise ValueError(f"the Mamba-2 step kernel cannot run this layer: {why}")
        import torch

        from . import _runtime as rt

        self.heads, self.groups, self.p, self.n, self.taps = heads, groups, head_dim, state, taps
        self.inner = heads * head_dim
        self.channels = self.inner + 2 * groups * state
        self.state_offset = self.channels * (taps - 1)
        self.row_elements = self.state_offset + heads * head_dim * state
        self.index = torch.cuda.current_device() if device is None else rt.device_index(device)
        dev = rt.device_info(self.index)
        ld = rt.load(MambaStepConfig(act_dtype, state_dtype), dev)
        self._rt, self._torch = rt, torch
        self.split = conv_dtype is not None  # two pools: the window in conv_dtype, the state in state_dtype
        conv_ld = rt.load(MambaStepConfig(act_dtype, conv_dtype), dev) if self.split else ld
        self._conv = rt.PreparedLaunch(conv_ld, "kvp_state_conv", CONV_ARGS, 256, 0, None, "driver")
        self._ssm = rt.PreparedLaunch(ld, "kvp_mb_ssm", SSM_ARGS, THREADS, 2 * state * 4, None, "driver")
        self._norm = rt.PreparedLaunch(ld, "kvp_mb_norm", NORM_ARGS, THREADS, 0, None, "driver")
        self.sm_count = dev.sm_count
        self._act = getattr(torch, act_dtype)
        self._state = getattr(torch, state_dtype)
        self._conv_dtype = getattr(torch, conv_dtype or state_dtype)

    def _check(self, xbc, dt, z, pool, slots, state_pool=None) -> None:
        b = xbc.shape[0]
        for name, t, width in (("xbc", xbc, self.channels), ("dt", dt, self.heads), ("z", z, self.inner)):
            if t.dim() != 2 or t.shape[0] != b or t.shape[1] < width or t.stride(-1) != 1 or t.dtype != self._act:
                raise ValueError(f"{name} must be [{b}, >= {width}] {self._act} with unit last stride")
        pools = check_state_pools(pool, state_pool, self.split, self.row_elements, self.state_offset,
                                  self._conv_dtype, self._state)
        states, offset = pools[-1][0], 0 if self.split else self.state_offset  # the update's 16-byte vectors
        if offset % 8 or states.shape[1] % 8 or states.data_ptr() % 16:
            raise ValueError("the state slots must start on 8-value boundaries (conv_dim x (taps - 1) and the row "
                             "a multiple of 8)")
        if slots.shape != (b,) or slots.dtype != self._torch.int32:
            raise ValueError(f"slots must be [{b}] int32")

    def gated_norm(self, y, z, o_norm, eps: float, out=None):
        """The step's last launch alone, over any number of rows (a prefill's): y [T, heads P] fp32 (contiguous),
        z [T, >= heads P] activations (unit last stride) -> [T, heads P]: RMSNorm(y SiLU(z)) over each group,
        times o_norm."""
        torch = self._torch
        t = y.shape[0]
        if y.shape != (t, self.inner) or y.dtype != torch.float32 or not y.is_contiguous():
            raise ValueError(f"y must be contiguous [{t}, {self.inner}] float32")
        if z.dim() != 2 or z.shape[0] != t or z.shape[1] < self.inner or z.stride(-1) != 1 or z.dtype != self._act:
            raise ValueError(f"z must be [{t}, >= {self.inner}] {self._act} with unit last stride")
        if out is None:
            out = torch.empty(t, self.inner, dtype=self._act, device=y.device)
        weight = o_norm.contiguous().to(self._act)
        stream = self._rt.current_stream_handle(torch, self.index)
        n = self._norm.args
        for first in range(0, t, MAX_GRID_Y):  # rows are the grid's y
            rows = min(MAX_GRID_Y, t - first)
            for i, v in enumerate((y[first:].data_ptr(), z[first:].data_ptr(), z.stride(0), weight.data_ptr(),
                                   self.groups, self.inner // self.groups, float(eps), out[first:].data_ptr())):
                n[i].value = v
            self._norm.launch((self.groups, rows, 1), stream)
        return out

    def run(self, xbc, dt, z, pool, slots, conv_w, conv_b, a_log, d, dt_bias, o_norm, eps: float, out=None,
            state_pool=None):
        """xbc [B, channels], dt [B, heads], z [B, heads P] (activations, any row stride); pool [slots, row] (state
        dtype; with conv_dtype: [slots, window] in it, and state_pool [slots, state] in the state dtype), slots [B]
        int32; conv_w [channels, taps], conv_b [channels] or None, a_log / d / dt_bias [heads], o_norm [heads P]
        (activations) -> [B, heads P]."""
        torch = self._torch
        self._check(xbc, dt, z, pool, slots, state_pool)
        states, offset = (state_pool, 0) if self.split else (pool, self.state_offset)
        b = xbc.shape[0]
        conv_out = torch.empty(b, self.channels, dtype=torch.float32, device=xbc.device)
        if out is None:
            out = torch.empty(b, self.inner, dtype=self._act, device=xbc.device)
        weights = [None if t is None else t.contiguous().to(self._act)
                   for t in (conv_w, conv_b, a_log, d, dt_bias, o_norm)]
        stream = self._rt.current_stream_handle(torch, self.index)
        a = self._conv.args
        for i, v in enumerate((xbc.data_ptr(), xbc.stride(0), slots.data_ptr(), pool.data_ptr(), pool.stride(0),
                               weights[0].data_ptr(), 0 if weights[1] is None else weights[1].data_ptr(),
                               self.channels, self.taps, conv_out.data_ptr())):
            a[i].value = v
        self._conv.launch((-(-self.channels // 256), b, 1), stream)
        hc = heads_per_cta(self.heads, self.groups, b, self.sm_count)
        y = torch.empty(b, self.inner, dtype=torch.float32, device=xbc.device)
        s = self._ssm.args
        for i, v in enumerate((conv_out.data_ptr(), self.channels, dt.data_ptr(), dt.stride(0), slots.data_ptr(),
                               states.data_ptr(), states.stride(0), offset, weights[2].data_ptr(),
                               weights[3].data_ptr(), weights[4].data_ptr(), self.heads, self.groups, self.p, self.n,
                               hc, y.data_ptr())):
            s[i].value = v
        self._ssm.launch((self.heads // hc, b, 1), stream)
        n = self._norm.args
        for i, v in enumerate((y.data_ptr(), z.data_ptr(), z.stride(0), weights[5].data_ptr(), self.groups,
                               self.inner // self.groups, float(eps), out.data_ptr())):
            n[i].value = v
        self._norm.launch((self.groups, b, 1), stream)
        return out
