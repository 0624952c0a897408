"""The Mamba-2 mixer of a Nemotron-H block, as vLLM's MambaMixer2 runs it (model_executor/layers/mamba/
mamba_mixer2.py): in_proj -> z, xBC, dt; a causal depthwise convolution (+ bias) and SiLU over xBC; the selective
state space over x with B and C (a scalar decay exp(dt A) per head and token, state [head_dim, state] per head); D x
added; the gated RMSNorm (y SiLU(z), normed per group of heads); out_proj and its all-reduce.

Per head h and token t, with B_t and C_t of the head's group:
    S_t = exp(dt_t A_h) S_{t-1} + dt_t x_t B_t^T        y_t = S_t C_t + D_h x_t

On a GPU decode runs the bundled step kernels (kvplan/kernels/mamba_step.cu: the convolution, each head's state
update in its slot and the gated norm, in three launches) and prefill's chunked state space the bundled SSD kernels
(kvplan/kernels/ssd_prefill.cu: chunk states, state passing, chunk scan, as vLLM's Triton kernels split it);
elsewhere, or for shapes they refuse, a clearly labelled torch path: the recurrence's one step in torch ops
(graph-capturable), the chunked form (ssd_chunks) in float32 matmuls (TF32 on a GPU, as for gated DeltaNet). The
cache slot of a sequence holds its convolution window [conv_dim, K - 1] and then its state [heads, head_dim, state],
as for gated DeltaNet."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .ops import tf32_matmuls

LABEL = ("torch Mamba-2 path (decode: the recurrent step in torch ops; prefill: the chunked state-space form in "
         "float32 torch matmuls; NOT a CUDA kernel)")
KERNEL_LABEL = ("bundled Mamba-2 step kernel in decode (mamba_step.cu: convolution, state update in the slot, gated "
                "norm; three launches); prefill: the chunked state-space form in float32 torch matmuls")
PREFILL_KERNEL_LABEL = ("bundled SSD prefill kernels (ssd_prefill.cu: chunk states, state passing, chunk scan; "
                        "products in TF32 on tensor cores, C B^T a TF32 torch matmul; the convolution one launch "
                        "where it takes the rows)")
PREFILL_TORCH_LABEL = "torch chunked state space (float32 matmuls, TF32 on a GPU)"
CHUNK = 128  # tokens a chunk of the prefill form (Nemotron-H's chunk_size)
NORM_ROWS = 1024  # tokens a slice of the gated norm outside decode


def ssd_chunks(x, dt, a, b, c, state=None, chunk: int = CHUNK):
    """The state space over whole prompts without the D term: x [R, L, H, P], dt [R, L, H] (after softplus), a [H]
    (negative), b, c [R, L, G, N] (G groups of H / G heads), state [R, H, P, N] or None (zeros) -> (y [R, L, H,
    P], final state), float32.

    Within a chunk with cumulative log-decay Gc (Gc_t = sum of dt A up to t):
        y_t = sum_{s <= t} exp(Gc_t - Gc_s) (C_t . B_s) dt_s x_s + exp(Gc_t) S_in C_t
    and the chunk hands on S_out = exp(Gc_last) S_in + sum_s exp(Gc_last - Gc_s) dt_s x_s B_s^T. The decay is a
    scalar per head, so the hand-over over all chunks is one product: with Gm the cumulative sum of the chunks'
    Gc_last, S_in of chunk z = sum_{j < z} exp(Gm_z - Gm_{j+1}) Bj + exp(Gm_z) S0. Laid out heads before tokens
    ([R, nc, G, rep, C, ..]) so that every product is a batched matmul over contiguous operands."""
    r, n, h, p = x.shape
    g, s_dim = b.shape[2], b.shape[3]
    rep = h // g
    pad = -n % chunk
    if pad:  # padded tokens: dt 0 (no decay, no input), x, B, C 0
        x, b, c = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (x, b, c))
        dt = F.pad(dt, (0, 0, 0, pad))
    nc = x.shape[1] // chunk
    x = x.float().view(r, nc, chunk, g, rep, p).permute(0, 1, 3, 4, 2, 5)  # [R, nc, G, rep, C, P]
    b = b.float().view(r, nc, chunk, g, s_dim).transpose(2, 3).contiguous()  # [R, nc, G, C, N]
    c = c.float().view(r, nc, chunk, g, s_dim).transpose(2, 3).contiguous()
    dt = dt.float().view(r, nc, chunk, g, rep).permute(0, 1, 3, 4, 2)  # [R, nc, G, rep, C]
    cum = (dt * a.float().view(g, rep, 1)).cumsum(-1)
    dx = (dt[..., None] * x).contiguous()  # [R, nc, G, rep, C, P]
    # exp(Gc_t - Gc_s) for s <= t: above the diagonal the difference is positive and may overflow; tril zeroes it
    decay = (cum[..., :, None] - cum[..., None, :]).exp_().tril_()  # [R, nc, G, rep, C(t), C(s)]
    y = decay.mul_((c @ b.transpose(-1, -2))[:, :, :, None]) @ dx
    del decay
    last = cum[..., -1]  # [R, nc, G, rep]
    handed = (torch.exp(last[..., None] - cum)[..., None] * dx).transpose(-1, -2) @ b[:, :, :, None]  # [.., P, N]
    marks = F.pad(last.cumsum(1), (0, 0, 0, 0, 1, 0))  # [R, nc + 1, G, rep]: Gm_0 = 0 .. Gm_nc
    z = torch.arange(nc + 1, device=x.device)
    spans = (marks[:, :, None] - marks[:, None, 1:]).permute(0, 3, 4, 1, 2)  # [R, G, rep, nc + 1 (z), nc (j)]
    weights = torch.exp(spans.masked_fill(z[:nc] >= z[:, None], float("-inf")))
    starts = weights @ handed.permute(0, 2, 3, 1, 4, 5).reshape(r, g, rep, nc, p * s_dim)  # [R, G, rep, nc + 1, PN]
    if state is not None:
        starts += torch.exp(marks).permute(0, 2, 3, 1)[..., None] * state.float().view(r, g, rep, 1, p * s_dim)
    inner = starts[:, :, :, :nc].view(r, g, rep, nc, p, s_dim).permute(0, 3, 1, 2, 5, 4)  # [R, nc, G, rep, N, P]
    y += torch.exp(cum)[..., None] * (c[:, :, :, None] @ inner)
    y = y.permute(0, 1, 4, 2, 3, 5).reshape(r, nc * chunk, h, p)[:, :n]
    return y, starts[:, :, :, nc].reshape(r, h, p, s_dim)


def conv_silu(rows, n: int, w, bias):
    """SiLU(causal depthwise conv + bias) of the prompts' rows [R n, C] (token-major; w [C, K], bias [C] or None)
    -> [R, n, C] float32: the bundled kernel where it takes them, else torch's multiply-adds."""
    if rows.is_cuda:
        from ..kernels.ssd_prefill import causal_conv, conv_supported

        w = w.to(rows.dtype).contiguous()
        bias = None if bias is None else bias.to(rows.dtype).contiguous()
        if conv_supported(rows, w, bias, n) is None:
            return causal_conv(rows, w, bias, n).view(-1, n, rows.shape[1])
    return F.silu(causal_conv_torch(rows.view(-1, n, rows.shape[1]), w, bias), inplace=True)


def causal_conv_torch(rows, w, bias):
    """The causal depthwise convolution (+ bias) of rows [R, L, C] token-major, float32 [R, L, C]: K shifted
    multiply-adds over the rows as they are (H200, Nemotron-H-8B at 8,192 tokens: torch's depthwise conv1d
    over the transposed rows took 0.9 ms a layer in its generic fp32 kernel, plus two transposing copies)."""
    taps, n = w.shape[1], rows.shape[1]
    seq = F.pad(rows.float(), (0, 0, taps - 1, 0))  # [R, L + K - 1, C]
    w = w.float()
    out = seq[:, :n] * w[:, 0]
    for k in range(1, taps):
        out.addcmul_(seq[:, k:k + n], w[:, k])
    return out if bias is None else out.add_(bias.float())


def last_window(rows, width: int):
    """The convolution window a prompt leaves in its slot: the last `width` (K - 1) inputs of rows [R, n, C], zeros
    before the first token -> [R, C, width]."""
    n = rows.shape[1]
    return F.pad(rows[:, max(0, n - width):].transpose(1, 2), (max(0, width - n), 0))


class Mamba2:
    def __init__(self, arch, layer, w: dict, rt):
        self.arch, self.layer, self.w, self.rt = arch, layer, w, rt
        tp = arch.tp
        self.heads, self.p, self.n = arch.mamba_heads // tp, arch.mamba_head_dim, arch.ssm_state
        self.groups = arch.mamba_groups // tp
        self.inner = self.heads * self.p
        self.conv_dim, self.kernel = arch.conv_dim_rank, arch.conv_kernel
        self.conv_elements = self.conv_dim * (self.kernel - 1)
        self.sizes = [self.inner, self.conv_dim, self.heads]
        self.label = LABEL
        self._plans: dict = {}

    def _slots(self, cache) -> tuple:
        """(windows [slots, conv elements], states [slots, heads P N]) of the layer's cache: its two tensors where
        the engine keeps them in two dtypes (verify/layout.py _state_group), else views of its one pool's rows."""
        if len(cache.tensors) == 2:
            return cache.tensors
        pool = cache.tensors[0]
        return pool[:, :self.conv_elements], pool[:, self.conv_elements:]

    def _step_plan(self, x, cache):
        """The step kernel's plan for these dtypes, or None (CPU, no NVRTC, a shape it does not take)."""
        split = len(cache.tensors) == 2
        key = (x.dtype,) + tuple(t.dtype for t in cache.tensors)
        if key not in self._plans:
            self._plans[key] = None
            if x.is_cuda:
                from ..kernels._checks import dtype_name
                from ..kernels._runtime import kernel_unavailable_reason
                from ..kernels.mamba_step import MambaStepPlan, mamba_step_supported

                shape = (self.heads, self.groups, self.p, self.n, self.kernel, dtype_name(x.dtype),
                         dtype_name(cache.tensors[-1].dtype))
                conv = dtype_name(cache.tensors[0].dtype) if split else None
                if kernel_unavailable_reason() is None and mamba_step_supported(*shape) is None \
                        and (conv is None or mamba_step_supported(*shape[:-1], conv) is None):
                    self._plans[key] = MambaStepPlan(*shape, x.device, conv_dtype=conv)
                    self.label = KERNEL_LABEL
        return self._plans[key]

    def _split_xbc(self, xbc):
        """x [T, H, P], B and C [T, G, N] of the convolved xBC rows."""
        x, b, c = xbc.split([self.inner, self.groups * self.n, self.groups * self.n], dim=-1)
        return x.unflatten(-1, (self.heads, self.p)), b.unflatten(-1, (self.groups, self.n)), \
            c.unflatten(-1, (self.groups, self.n))

    def _dt(self, dt):
        return F.softplus(dt.float() + self.w["dt_bias"].float())

    def _step(self, xbc, dt, cache, slots):
        """One token per sequence: the convolution window and the state read from the sequences' slots, advanced,
        written back. -> y [B, H, P] float32 (D x included)."""
        windows, states = self._slots(cache)
        bsz = xbc.shape[0]
        conv = windows[slots].view(bsz, self.conv_dim, self.kernel - 1)
        state = states[slots].view(bsz, self.groups, self.heads // self.groups, self.p, self.n)
        window = torch.cat([conv.float(), xbc.float()[:, :, None]], dim=-1)  # [B, C, K]
        out = (window * self.w["conv"].float()[None]).sum(-1)
        bias = self.w.get("conv_bias")
        x, b, c = self._split_xbc(F.silu(out + bias.float() if bias is not None else out))
        dt = self._dt(dt)  # [B, H]
        decay = torch.exp(dt * -torch.exp(self.w["A_log"].float()))
        xg = (dt[..., None] * x).view(bsz, self.groups, -1, self.p)  # [B, G, rep, P]
        s = state.float() * decay.view(bsz, self.groups, -1)[..., None, None] + xg[..., None] * b[:, :, None, None]
        y = (s @ c[:, :, None, :, None])[..., 0].reshape(bsz, self.heads, self.p)
        windows[slots] = window[:, :, 1:].reshape(bsz, -1).to(windows.dtype)
        states[slots] = s.reshape(bsz, -1).to(states.dtype)
        return y + self.w["D"].float()[:, None] * x

    def _prefill(self, xbc, dt, step, cache):
        """R sequences of L tokens from empty states; their last convolution windows and final states stored at
        step.state_slots. -> y [R L, H, P] float32 (D x included)."""
        r, n = step.seqs, step.seq_len
        window = last_window(xbc.view(r, n, -1), self.kernel - 1)  # [R, C, K - 1]
        x, b, c = self._split_xbc(conv_silu(xbc, n, self.w["conv"], self.w.get("conv_bias")).view(r * n, -1))
        dt = self._dt(dt).view(r, n, self.heads)
        a = -torch.exp(self.w["A_log"].float())
        y, s = self._ssd(x.view(r, n, self.heads, self.p), dt, a, b.view(r, n, self.groups, self.n),
                         c.view(r, n, self.groups, self.n))
        if cache is not None and step.state_slots is not None:
            windows, states = self._slots(cache)
            windows[step.state_slots] = window.reshape(r, -1).to(windows.dtype)
            states[step.state_slots] = s.reshape(r, -1).to(states.dtype)
        return y.reshape(r * n, self.heads, self.p)

    def _ssd(self, x, dt, a, b, c):
        """(y + D x, final state) of the chunked state space: the bundled kernels where they take the tensors, else
        the torch form (ssd_chunks)."""
        why = "not on a GPU"
        if x.is_cuda:
            from ..kernels.ssd_prefill import ssd_chunks_kernel, ssd_supported

            why = ssd_supported(x, dt, a, b, c, CHUNK)
            if why is None:
                self.rt.labels["mamba prefill"] = PREFILL_KERNEL_LABEL
                with tf32_matmuls(True):
                    return ssd_chunks_kernel(x, dt, a, b, c, self.w["D"], CHUNK)
        self.rt.labels["mamba prefill"] = f"{PREFILL_TORCH_LABEL} (the kernels refused: {why})"
        with tf32_matmuls(x.is_cuda):
            y, s = ssd_chunks(x, dt, a, b, c)
        return y + self.w["D"].float()[:, None] * x, s

    def _gated_norm(self, y, z, dtype):
        """RMSNorm(y SiLU(z)) over each group's heads, times the norm weight (vLLM's Mixer2RMSNormGated), in
        NORM_ROWS-row slices: the float32 temporaries of a whole prompt's rows (five of 268 MB at Nemotron-H-8B's
        8,192 tokens) set the profile run's activation peak, which the engine's fused norm does not hold (H200,
        session 35: 1.69 GiB measured against 1.20 predicted)."""
        t = y.shape[0]
        y = y.reshape(t, self.groups, -1)
        z = z.view(t, self.groups, -1)
        weight = self.w["o_norm"].float().view(self.groups, -1)
        out = torch.empty(t, self.groups, y.shape[-1], dtype=dtype, device=y.device)
        for first in range(0, t, NORM_ROWS):
            rows = slice(first, first + NORM_ROWS)
            gated = y[rows].float() * F.silu(z[rows].float())
            gated *= torch.rsqrt(gated.square().mean(-1, keepdim=True) + self.arch.norm_eps)
            out[rows] = gated * weight
        return out.view(t, -1)

    def __call__(self, x, step, cache):
        rt, w = self.rt, self.w
        z, xbc, dt = rt.mm(x, w["in_proj"]).split(self.sizes, dim=-1)
        plan = self._step_plan(x, cache) if step.decode else None
        if step.decode:
            rt.labels["mamba"] = self.label  # which code ran, for verify's report
        if plan is not None:
            gated = plan.run(xbc, dt, z, cache.tensors[0], step.state_slots_int32(), w["conv"], w.get("conv_bias"),
                             w["A_log"], w["D"], w["dt_bias"], w["o_norm"], self.arch.norm_eps,
                             state_pool=cache.tensors[1] if plan.split else None)
            return rt.comm.all_reduce(rt.mm(gated, w["o"]))
        if step.decode:
            y = self._step(xbc, dt, cache, step.state_slots)
        elif step.state_slots is None:
            # the profile run (no cache exists yet): vLLM 0.32's MambaMixer2 returns the x part of xBC before its
            # convolution and state space when attn_metadata is None (conv_ssm_forward); the norm and out_proj run
            y = xbc[:, :self.inner].clone()
        else:
            y = self._prefill(xbc, dt, step, cache)
        plan = self._step_plan(x, cache) if cache is not None and y.dtype == torch.float32 else None
        if plan is not None:  # a prefill's rows through the step's norm launch
            gated = plan.gated_norm(y.reshape(y.shape[0], -1).contiguous(), z, w["o_norm"], self.arch.norm_eps)
        else:
            gated = self._gated_norm(y, z, x.dtype)
        return rt.comm.all_reduce(rt.mm(gated, w["o"]))
