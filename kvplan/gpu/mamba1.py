"""The Mamba-1 mixer of a Jamba, Mamba or Falcon-Mamba layer, as vLLM's MambaMixer runs it (model_executor/layers/
mamba/mamba_mixer.py): in_proj -> x, z; a causal depthwise convolution (+ bias) and SiLU over x; x_proj -> dt (of
dt_rank values), B and C, each RMS-normed (Jamba: with weights; Falcon-Mamba: without; Mamba: not normed);
dt_proj (its bias added in the scan, then softplus); the selective state space, one state row of N values per
channel with its own decay per value; D x added, times SiLU(z); out_proj and its all-reduce. x_proj is
row-parallel: its dt_rank + 2 N outputs are all-reduced across ranks too.

Per channel c and state value n, token t:
    h_t[c, n] = exp(dt_t[c] A[c, n]) h_{t-1}[c, n] + dt_t[c] x_t[c] B_t[n]
    y_t[c] = sum_n h_t[c, n] C_t[n] + D[c] x_t[c]

On a GPU prompts and decode steps run the bundled scan kernel (kvplan/kernels/mamba1_scan.cu; decode's convolution
is the recurrent steps' shared launch, a prompt's the SSD prefill's convolution launch); elsewhere, or for shapes
they refuse, a clearly labelled torch path: the recurrence token by token. The cache slot of a sequence holds its
convolution window [channels, K - 1] and then its state [channels, N], as for Mamba-2."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .mamba import conv_silu, last_window
from .ops import rms_norm

LABEL = "torch Mamba-1 path (the selective scan token by token in torch ops; NOT a CUDA kernel)"
KERNEL_LABEL = ("bundled Mamba-1 kernels (mamba1_scan.cu: the selective scan of prompts and decode steps, states in "
                "registers; decode's convolution one launch)")


def selective_scan(x, dt, a, b, c, state=None):
    """The recurrence token by token: x, dt (after softplus) [R, L, C], a [C, N] (negative), b, c [R, L, N], state
    [R, C, N] or None (zeros) -> (y [R, L, C] without the D and gate terms, final state [R, C, N]), float32 (float64
    for float64 inputs: the tests' reference)."""
    r, n, ch = x.shape
    dtype = torch.promote_types(x.dtype, torch.float32)
    h = torch.zeros(r, ch, a.shape[1], dtype=dtype, device=x.device) if state is None else state.to(dtype)
    x, dt, b, c, a = (t.to(dtype) for t in (x, dt, b, c, a))
    ys = []
    for t in range(n):
        h = torch.exp(dt[:, t, :, None] * a) * h + (dt[:, t] * x[:, t])[..., None] * b[:, t, None, :]
        ys.append((h @ c[:, t, :, None])[..., 0])
    return torch.stack(ys, 1), h


class Mamba1:
    """A_log is float32 as vLLM keeps A (the tests' bf16 copies go through .float(), a no-op on verify's weights)."""

    def __init__(self, arch, layer, w: dict, rt):
        self.arch, self.layer, self.w, self.rt = arch, layer, w, rt
        self.inner, self.n, self.rank = arch.mamba1_inner // arch.tp, arch.ssm_state, arch.mamba_dt_rank
        self.kernel = arch.conv_kernel
        self.conv_elements = self.inner * (self.kernel - 1)
        self.label = LABEL
        self._plans: dict = {}

    def _plan(self, x, pool):
        """The kernels' plan for these dtypes, or None (CPU, no NVRTC, a shape they do not take)."""
        key = (x.dtype, pool.dtype)
        if key not in self._plans:
            self._plans[key] = None
            if x.is_cuda:
                from ..kernels._checks import dtype_name
                from ..kernels._runtime import kernel_unavailable_reason
                from ..kernels.mamba1_scan import Mamba1Plan, mamba1_supported

                shape = (self.inner, self.n, self.kernel, dtype_name(x.dtype), dtype_name(pool.dtype))
                if kernel_unavailable_reason() is None and mamba1_supported(*shape) is None:
                    self._plans[key] = Mamba1Plan(*shape, x.device)
                    self.label = KERNEL_LABEL
        return self._plans[key]

    def _norm(self, v, name: str):
        """The mixer's RMSNorm of dt, B or C (Arch.mamba1_norm): with its weight (Jamba), without (Falcon-Mamba: w
        holds none), or none at all (Mamba)."""
        if self.arch.mamba1_norm == "none":
            return v
        return rms_norm(v.contiguous(), self.w.get(name), self.arch.mamba1_norm_eps)

    def _ssm_inputs(self, xc):
        """dt (dt_proj's output, before its bias) [T, C] and B, C side by side [T, 2 N] of the convolved x rows."""
        rt, w = self.rt, self.w
        dt, b, c = rt.comm.all_reduce(rt.mm(xc, w["x_proj"])).split([self.rank, self.n, self.n], dim=-1)
        bc = torch.cat([self._norm(b, "b_norm"), self._norm(c, "c_norm")], dim=-1)
        return rt.mm(self._norm(dt, "dt_norm").contiguous(), w["dt_proj"]), bc

    def _scan_torch(self, xc, dt, z, bc, seqs: int, state=None):
        """(y [R L, C] in the activations' dtype, final states [R, C, N]) by the token-by-token recurrence."""
        w = self.w
        steps = F.softplus(dt.float() + w["dt_bias"].float()).view(seqs, -1, self.inner)
        b, c = bc.view(seqs, -1, 2 * self.n).split(self.n, dim=-1)
        x = xc.float().view(seqs, -1, self.inner)
        y, h = selective_scan(x, steps, -torch.exp(w["A_log"].float()), b, c, state)
        y = (y + w["D"].float() * x).view(-1, self.inner) * F.silu(z.float())
        return y.to(xc.dtype), h

    def _decode(self, xs, z, step, pool):
        plan = self._plan(xs, pool)
        w, bsz = self.w, xs.shape[0]
        if plan is not None:
            slots = step.state_slots_int32()
            xc = plan.conv_step(xs, pool, slots, w["conv"], w.get("conv_bias")).to(xs.dtype)
            dt, bc = self._ssm_inputs(xc)
            return plan.scan(xc, dt, z, bc, w["dt_bias"], w["A_log"].float(), w["D"], pool, slots, tokens=1,
                             load_state=True)
        rows = pool[step.state_slots]
        conv = rows[:, :self.conv_elements].view(bsz, self.inner, self.kernel - 1)
        window = torch.cat([conv.float(), xs.float()[:, :, None]], dim=-1)  # [B, C, K]
        out = (window * w["conv"].float()[None]).sum(-1)
        bias = w.get("conv_bias")
        xc = F.silu(out + bias.float() if bias is not None else out).to(xs.dtype)
        dt, bc = self._ssm_inputs(xc)
        y, h = self._scan_torch(xc, dt, z, bc, bsz, rows[:, self.conv_elements:].view(bsz, self.inner, self.n))
        pool[step.state_slots, :self.conv_elements] = window[:, :, 1:].reshape(bsz, -1).to(pool.dtype)
        pool[step.state_slots, self.conv_elements:] = h.reshape(bsz, -1).to(pool.dtype)
        return y

    def _prefill(self, xs, z, step, pool):
        """R sequences of L tokens from empty states; their last convolution windows and final states stored at
        step.state_slots."""
        w, r, n = self.w, step.seqs, step.seq_len
        window = last_window(xs.view(r, n, -1), self.kernel - 1)  # [R, C, K - 1], before the slots change
        xc = conv_silu(xs, n, w["conv"], w.get("conv_bias")).view(r * n, -1).to(xs.dtype)
        dt, bc = self._ssm_inputs(xc)
        pool[step.state_slots, :self.conv_elements] = window.reshape(r, -1).to(pool.dtype)
        plan = self._plan(xs, pool)
        self.rt.labels["mamba1 prefill"] = self.label
        if plan is not None:
            return plan.scan(xc, dt, z, bc, w["dt_bias"], w["A_log"].float(), w["D"], pool, step.state_slots_int32(),
                             tokens=n)
        y, h = self._scan_torch(xc, dt, z, bc, r)
        pool[step.state_slots, self.conv_elements:] = h.reshape(r, -1).to(pool.dtype)
        return y

    def __call__(self, x, step, cache):
        rt, w = self.rt, self.w
        xs, z = rt.mm(x, w["in_proj"]).split(self.inner, dim=-1)
        if step.decode:
            y = self._decode(xs, z, step, cache.tensors[0])
            rt.labels["mamba1"] = self.label  # which code ran, for verify's report
        elif step.state_slots is None:
            # the profile run (no cache exists yet): vLLM 0.32's MambaMixer returns out_proj of x before its
            # convolution and scan when attn_metadata is None
            y = xs.contiguous()
        else:
            y = self._prefill(xs, z, step, cache.tensors[0])
        return rt.comm.all_reduce(rt.mm(y, w["o"]))
