"""One Kimi Delta Attention decode step on the GPU (kda_step.cu): each head's short convolutions of q, k and v with
their windows, the per-key-channel gated delta rule on its float32 state in its slot, and the gated output norm, in
one launch a layer (a CTA a head and sequence).

    plan = KdaStepPlan(heads=32, head_dim=128, taps=4, act_dtype="bfloat16", conv_dtype="bfloat16")
    gated = plan.run(mixed, beta, g_raw, gate, conv_pool, state_pool, slots, conv_w, a_log, dt_bias, o_norm, eps)

The inputs are kvplan/gpu/kda.py's, as its projections leave them: mixed [B, >= 3 width] (q | k | v, width = heads x
head_dim each), beta [B, >= heads] (the logits), g_raw [B, >= width] (f_b's output, before dt_bias and the decay's
form) and gate [B, >= width] (g_b's output), in the activations' dtype and read through their row strides (views of
in_proj's rows need no copy); the two pools of a KDA slot as vLLM keeps them (verify/layout.py _state_group): windows
[slots, 3 width (taps - 1)] in conv_dtype, channel after channel, and recurrent states [slots, heads D D] float32
([key, value] a head, as kvplan's torch path keeps it; vLLM's kernels keep [value, key]: the same bytes); slots
[B] int32; conv_w [3 width, taps], a_log [heads], dt_bias [width] (float32, as the checkpoint keeps them), o_norm
[head_dim]. Out: [B, width] in the activations' dtype, RMSNorm(o) o_norm
sigmoid(gate), what o_proj multiplies. The slots' values are not checked here (a read on the host would break a
CUDA graph): the caller's step hands out valid, distinct slots.

`kda_step_supported(...)` says why a shape cannot run here (the caller then takes the torch path)."""

from __future__ import annotations

from typing import Optional

from .configs import DELTANET_ACT_DTYPES as ACT_DTYPES
from .configs import DELTANET_STATE_DTYPES as WINDOW_DTYPES
from .configs import KDA_HEAD_DIMS, KdaStepConfig, all_kda_configs  # noqa: F401  (re-exported)

KDS = 4  # threads sharing one state column (kda_step.cu): a CTA is head_dim x KDS threads
# kvp_kda_step's parameters in order: mixed, its row stride, beta, its row stride, g_raw, its row stride, gate, its
# row stride, slots, window pool, its row stride, state pool, its row stride, conv_w, a_log, dt_bias, o_norm, heads,
# taps, lower_bound, eps, out
ARGS = ("u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64",
        "u64", "u64", "i32", "i32", "f32", "f32", "u64")
MAX_GRID_Y = 65535  # sequences a launch (its grid's y); more run in several launches


def kda_step_supported(heads: int, head_dim: int, taps: int, act_dtype: str, conv_dtype: str,
                       state_dtype: str = "float32") -> Optional[str]:
    """None when the kernel runs this shape, else why not (one sentence)."""
    if head_dim not in KDA_HEAD_DIMS:
        return f"head dim {head_dim} is not compiled (only {', '.join(map(str, KDA_HEAD_DIMS))})"
    if heads < 1 or taps < 1:
        return f"{heads} heads and convolution width {taps} must be positive"
    if act_dtype not in ACT_DTYPES:
        return f"activations in {act_dtype} (the kernel takes {' or '.join(ACT_DTYPES)})"
    if conv_dtype not in WINDOW_DTYPES:
        return f"convolution windows in {conv_dtype} (the kernel takes {', '.join(WINDOW_DTYPES)})"
    if state_dtype != "float32":
        return f"a recurrent state in {state_dtype} (the kernel keeps it float32, as vLLM's kda_state_dtype does)"
    return None


class KdaStepPlan:
    """Shapes checked and the kernel loaded once; `run` packs pointers and launches on torch's current stream."""

    def __init__(self, heads: int, head_dim: int, taps: int, act_dtype: str, conv_dtype: str,
                 lower_bound: float = 0.0, device=None):
        why = kda_step_supported(heads, head_dim, taps, act_dtype, conv_dtype)
        if why:
            raise ValueError(f"the KDA step kernel cannot run this layer: {why}")
        if not -5.0 <= lower_bound <= 0.0:  # vLLM asserts the bound in [-5, 0) (verify/arch.py _kda_fields)
            raise ValueError(f"lower_bound must be 0 (no bound) or in [-5, 0), got {lower_bound}")
        import torch

        from . import _runtime as rt

        self.heads, self.dim, self.taps, self.lower_bound = heads, head_dim, taps, float(lower_bound)
        self.width = heads * head_dim
        self.conv_elements = 3 * self.width * (taps - 1)
        self.state_elements = heads * head_dim * head_dim
        self.index = torch.cuda.current_device() if device is None else rt.device_index(device)
        ld = rt.load(KdaStepConfig(act_dtype, conv_dtype, head_dim), rt.device_info(self.index))
        self._rt, self._torch = rt, torch
        self._step = rt.PreparedLaunch(ld, "kvp_kda_step", ARGS, head_dim * KDS, 0, None, "driver")
        self._act, self._conv = getattr(torch, act_dtype), getattr(torch, conv_dtype)

    def _check(self, mixed, beta, g_raw, gate, conv_pool, state_pool, slots, weights, out) -> None:
        torch = self._torch
        b = mixed.shape[0] if mixed.dim() == 2 else -1
        for name, t, width in (("mixed", mixed, 3 * self.width), ("beta", beta, self.heads),
                               ("g_raw", g_raw, self.width), ("gate", gate, self.width)):
            if t.dim() != 2 or t.shape[0] != b or t.shape[1] < width or t.stride(-1) != 1 or t.dtype != self._act:
                raise ValueError(f"{name} must be [{b}, >= {width}] {self._act} with unit last stride, got "
                                 f"{list(t.shape)} {t.dtype} strides {t.stride()}")
        for name, t, width, dtype in (("the window pool", conv_pool, self.conv_elements, self._conv),
                                      ("the state pool", state_pool, self.state_elements, torch.float32)):
            if t.dim() != 2 or t.shape[1] != width or not t.is_contiguous() or t.dtype != dtype:
                raise ValueError(f"{name} must be contiguous [slots, {width}] {dtype}, got {list(t.shape)} {t.dtype}")
        if conv_pool.shape[0] != state_pool.shape[0]:
            raise ValueError(f"the window pool has {conv_pool.shape[0]} slots and the state pool "
                             f"{state_pool.shape[0]}")
        if slots.shape != (b,) or slots.dtype != torch.int32:
            raise ValueError(f"slots must be [{b}] int32, got {list(slots.shape)} {slots.dtype}")
        for name, t, n in zip(("conv_w", "a_log", "dt_bias", "o_norm"), weights,
                              (3 * self.width * self.taps, self.heads, self.width, self.dim)):
            if t.numel() != n:
                raise ValueError(f"{name} must hold {n} values, got {list(t.shape)}")
        if out is not None and (out.shape != (b, self.width) or not out.is_contiguous() or out.dtype != self._act):
            raise ValueError(f"out must be contiguous [{b}, {self.width}] {self._act}")
        for name, t in (("beta", beta), ("g_raw", g_raw), ("gate", gate), ("the window pool", conv_pool),
                        ("the state pool", state_pool), ("slots", slots), *zip(("conv_w", "a_log", "dt_bias",
                                                                                 "o_norm"), weights)):
            if t.device != mixed.device:
                raise ValueError(f"{name} is on {t.device} but mixed is on {mixed.device}")

    def arguments(self, mixed, beta, g_raw, gate, conv_pool, state_pool, slots, weights, eps: float, out) -> tuple:
        """kvp_kda_step's parameter values (ARGS' order) for these rows."""
        conv_w, a_log, dt_bias, o_norm = weights
        return (mixed.data_ptr(), mixed.stride(0), beta.data_ptr(), beta.stride(0), g_raw.data_ptr(), g_raw.stride(0),
                gate.data_ptr(), gate.stride(0), slots.data_ptr(), conv_pool.data_ptr(), conv_pool.stride(0),
                state_pool.data_ptr(), state_pool.stride(0), conv_w.data_ptr(), a_log.data_ptr(), dt_bias.data_ptr(),
                o_norm.data_ptr(), self.heads, self.taps, self.lower_bound, float(eps), out.data_ptr())

    def run(self, mixed, beta, g_raw, gate, conv_pool, state_pool, slots, conv_w, a_log, dt_bias, o_norm,
            eps: float, out=None):
        """One decode step of B sequences (see the module's docstring) -> out [B, heads head_dim]."""
        torch = self._torch
        f32 = torch.float32
        weights = (conv_w.to(f32).contiguous(), a_log.to(f32).contiguous(), dt_bias.to(f32).contiguous(),
                   o_norm.to(self._act).contiguous())
        self._check(mixed, beta, g_raw, gate, conv_pool, state_pool, slots, weights, out)
        b = mixed.shape[0]
        if out is None:
            out = torch.empty(b, self.width, dtype=self._act, device=mixed.device)
        stream = self._rt.current_stream_handle(torch, self.index)
        a = self._step.args
        for first in range(0, b, MAX_GRID_Y):  # sequences are the grid's y
            rows = slice(first, first + MAX_GRID_Y)
            values = self.arguments(mixed[rows], beta[rows], g_raw[rows], gate[rows], conv_pool, state_pool,
                                    slots[rows], weights, eps, out[rows])
            for i, v in enumerate(values):
                a[i].value = v
            self._step.launch((self.heads, min(MAX_GRID_Y, b - first), 1), stream)
        return out
