"""Gated DeltaNet (Qwen3-Next's linear-attention layers). Decode on a GPU runs kvplan's step kernel
(kvplan/kernels/deltanet_step.cu, two launches per layer) where it supports the shape; prefill on a GPU runs
torch's chunk products between four bundled kernels (kvplan/kernels/deltanet_prefill.cu: the convolution through
to the chunk-major q, k, v; each chunk's triangular solve; the chunk-to-chunk state recurrence; the gated output
norm); on the CPU, and for shapes the kernels do not compile, plain torch (a clearly labelled torch path). Per
value head the layer keeps a recurrent state S [key_dim, value_dim] and a causal-convolution window over its q/k/v
inputs; one token updates them as

    S <- a S;   S <- S + k (beta (v - S^T k))^T;   out = S^T q        (a = exp(g), g <= 0)

Decode runs that step for the batch (reading and writing each sequence's state slot once); prefill runs the
same recurrence in chunks of CHUNK tokens (one chunk of the sequence's length when shorter) (the WY form: a
unit-lower-triangular solve per chunk, then one state update per chunk), which the tests hold to the
token-by-token recurrence."""

from __future__ import annotations


import torch
import torch.nn.functional as F

from .ops import l2_norm, stacked_rows, tf32_matmuls

CHUNK = 64
LABEL = "torch gated-DeltaNet step (recurrent state read and written once per token; NOT a CUDA kernel)"
KERNEL_LABEL = ("kvplan's gated-DeltaNet step kernel (deltanet_step.cu: conv window, delta-rule update of the "
                "state in its slot, gated output norm; 2 launches per layer); prefill: torch's chunk products between "
                "the convolution, chunk-solve, state-recurrence and gated-norm kernels of deltanet_prefill.cu")


def dtype_label(t) -> str:
    return str(t.dtype).replace("torch.", "")


def _decay_and_gate(w, a, b):
    g = -torch.exp(w["A_log"].float()) * F.softplus(a.float() + w["dt_bias"].float())
    return g, torch.sigmoid(b.float())


def chunk_size(n: int) -> int:
    """Tokens a chunk of a prompt of n: CHUNK, or the whole prompt when shorter (the profile run's 8-token
    sequences in one unpadded chunk, not padded 8x)."""
    return min(CHUNK, n)


def chunk_major(x, size: int):
    """[R, L, H, ..] -> [N, R, H, C, ..] contiguous, zeros past L: chunk-major, so that the sequential part reads
    M_c in place; one copy here spares each matmul its own (a permuted operand is copied by every matmul)."""
    r, n, h = x.shape[:3]
    pad = -n % size
    if pad:
        x = F.pad(x, (0, 0) * (x.dim() - 3) + (0, 0, 0, pad))
    x = x.view(r, -1, size, h, *x.shape[3:])
    return (x.permute(1, 0, 3, 2, 4) if x.dim() == 5 else x.permute(1, 0, 3, 2)).contiguous()


def chunked_delta_rule(q, k, v, g, beta, state):
    """The gated delta rule over whole prompts, token order in and out: q, k [R, L, H, dk]; v [R, L, H, dv]; g, beta
    [R, L, H]; state [R, H, dk, dv] -> (out [R, L, H, dv], final state)."""
    r, n, h, dv = v.shape
    size = chunk_size(n)
    out, state = delta_rule_chunks(*(chunk_major(x, size) for x in (q, k, v, g, beta)), state)
    return out.permute(1, 0, 3, 2, 4).reshape(r, -1, h, dv)[:, :n], state


def delta_rule_chunks(qc, kc, vc, gc, bc, state):
    """The gated delta rule on chunk-major inputs (see _delta_rule_chunks); on a GPU its fp32 matmuls in TF32
    (tf32_matmuls)."""
    with tf32_matmuls(qc.is_cuda):
        return _delta_rule_chunks(qc, kc, vc, gc, bc, state)


def _delta_rule_chunks(qc, kc, vc, gc, bc, state):
    """qc, kc [N, R, H, C, dk]; vc [N, R, H, C, dv]; gc, bc [N, R, H, C] (chunk_major; zeros past the prompt);
    state [R, H, dk, dv] (float32) -> (out [N, R, H, C, dv] chunk-major, final state). Within a chunk with
    cumulative log-decay G, U solves
    (I + diag(beta) (K K^T o exp(G_t - G_i))_{i<t}) U = diag(beta) (V - diag(exp G) K S0); then
    out = exp(G) Q S0 + (Q K^T o exp(G_t - G_i))_{i<=t} U and S = exp(G_C) S0 + (K o exp(G_C - G))^T U.

    U is affine in S0, so everything but S0 is computed for all chunks at once: with U = U_v - W_k S0,
    out = Q_eff S0 + O_intra and S = M S0 + B. What stays sequential is S_{c+1} = M_c S_c + B_c, chunk after
    chunk (scan_chunk_states)."""
    nc, r, h, size, dk = kc.shape
    dv = vc.shape[-1]
    cum = gc.cumsum(-1)  # [N, R, H, C]
    t = torch.arange(size, device=qc.device)
    diff = cum[..., :, None] - cum[..., None, :]
    incl = torch.exp(diff.masked_fill(t[None, :] > t[:, None], float("-inf")))
    u_v, w_k = _solve(kc @ kc.transpose(-1, -2), kc, vc, cum, bc, incl)  # [N, R, H, C, dv], [N, R, H, C, dk]
    scores = (qc @ kc.transpose(-1, -2)) * incl
    tail_t = (torch.exp(cum[..., -1:] - cum)[..., None] * kc).transpose(-1, -2)  # [.., dk, C]: decay to chunk end
    q_eff = torch.exp(cum)[..., None] * qc - scores @ w_k  # [N, R, H, C, dk]
    o_intra = scores @ u_v  # [N, R, H, C, dv]
    trans = -(tail_t @ w_k)  # M_c = exp(G_C) I - tail^T W_k: [N, R, H, dk, dk]
    trans.diagonal(dim1=-2, dim2=-1).add_(torch.exp(cum[..., -1:]))
    trans = trans.view(nc, r * h, dk, dk)
    states = torch.empty(nc + 1, r * h, dk, dv, device=qc.device, dtype=state.dtype)
    states[0] = state.reshape(r * h, dk, dv)
    torch.matmul(tail_t, u_v, out=states[1:].view(nc, r, h, dk, dv))  # B_c, then S_{c+1} = M_c S_c + B_c in place
    scan_chunk_states(trans, states)
    out = torch.matmul(q_eff, states[:nc].view(nc, r, h, dk, dv)).add_(o_intra)  # [N, R, H, C, dv]
    return out, states[nc].view(r, h, dk, dv)


def _solve(kk, kc, vc, cum, bc, incl):
    """(U_v, W_k) = (I + A)^-1 (diag(beta) V, diag(beta exp G) K), A = diag(beta) (K K^T o exp(G_i - G_t))_{t<i}: on
    a GPU one launch of the bundled solve kernel (kvplan/kernels/deltanet_prefill.cu), else a triangular solve
    against the identity and two products."""
    if kk.is_cuda:
        from ..kernels.deltanet_prefill import solve_chunks, solve_supported

        if solve_supported(kk, kc, vc, cum, bc) is None:
            return solve_chunks(kk, kc, vc, cum, bc)
    size = kk.shape[-1]
    eye = torch.eye(size, device=kk.device)
    lower = eye + bc[..., :, None] * kk * incl.tril(-1)
    inverse = torch.linalg.solve_triangular(lower, eye.expand_as(lower), upper=False, unitriangular=True)
    return inverse @ (bc[..., None] * vc), inverse @ ((bc * torch.exp(cum))[..., None] * kc)


def scan_chunk_states(trans, states) -> None:
    """states[c + 1] = trans[c] @ states[c] + states[c + 1] for each chunk c in order, in place: on a GPU one launch
    of the bundled scan kernel (kvplan/kernels/deltanet_prefill.cu), else one batched matmul a chunk."""
    if trans.is_cuda:
        from ..kernels.deltanet_prefill import scan_states, scan_supported

        if scan_supported(trans, states) is None:
            return scan_states(trans, states)
    for c in range(trans.shape[0]):
        states[c + 1].baddbmm_(trans[c], states[c])


class GatedDeltaNet:
    def __init__(self, arch, layer, w: dict, rt):
        self.arch, self.layer, self.w, self.rt = arch, layer, w, rt
        tp = arch.tp
        self.nk, self.nv = arch.lin_key_heads // tp, arch.lin_value_heads // tp
        self.dk, self.dv, self.kernel = arch.lin_key_dim, arch.lin_value_dim, arch.conv_kernel
        self.conv_dim = arch.conv_dim_rank
        self.conv_elements = self.conv_dim * (self.kernel - 1)
        self.label = LABEL
        self._plans: dict = {}
        self.joint = stacked_rows(w.get("qkvz"), w.get("ba"))  # both projections in one matmul where stacked

    def _step_plan(self, x, cache):
        """The step kernel's plan for these dtypes, or None (CPU, no NVRTC, a shape it does not compile). Two cache
        tensors (the window and the recurrent state in two dtypes, verify/layout.py _state_group) take the plan's
        two-pool form."""
        split = len(cache.tensors) == 2
        key = (x.dtype,) + tuple(t.dtype for t in cache.tensors)
        if key not in self._plans:
            self._plans[key] = None
            if x.is_cuda:
                from ..kernels._checks import dtype_name
                from ..kernels._runtime import kernel_unavailable_reason
                from ..kernels.deltanet_step import DeltaNetStepPlan, deltanet_step_supported

                act, state = dtype_name(x.dtype), dtype_name(cache.tensors[-1].dtype)
                conv = dtype_name(cache.tensors[0].dtype) if split else None
                shape = (self.nk, self.nv, self.dk, self.dv)
                if kernel_unavailable_reason() is None and deltanet_step_supported(*shape, act, state) is None \
                        and (conv is None or deltanet_step_supported(*shape, act, conv) is None):
                    self._plans[key] = DeltaNetStepPlan(*shape, self.kernel, act, state, x.device, conv_dtype=conv)
        plan = self._plans[key]
        # which path this step runs (a plan for one pair of dtypes says nothing of another's)
        self.label = LABEL if plan is None else KERNEL_LABEL + (
            f"; the window ({dtype_label(cache.tensors[0])}) and the recurrent state ({dtype_label(cache.tensors[1])}) "
            f"in two pools" if split else "")
        return plan

    def _state_views(self, cache, slots):
        """(conv [B, conv_dim, K-1], recurrent [B, H, dk, dv]) of the sequences' slots (gathered: a copy). One pool
        holds both states a row; a float32 recurrent state (Qwen3.5's mamba_ssm_dtype, verify/layout.py) has its own
        pool beside the conv one."""
        if len(cache.tensors) == 2:
            conv, recurrent = (t[slots] for t in cache.tensors)
        else:
            rows = cache.tensors[0][slots]
            conv, recurrent = rows[:, :self.conv_elements], rows[:, self.conv_elements:]
        return conv.view(-1, self.conv_dim, self.kernel - 1), recurrent.view(-1, self.nv, self.dk, self.dv)

    def _store(self, cache, slots, conv, recurrent) -> None:
        b = conv.shape[0]
        if len(cache.tensors) == 2:
            for pool, state in zip(cache.tensors, (conv, recurrent)):
                pool[slots] = state.reshape(b, -1).to(pool.dtype)
            return
        pool = cache.tensors[0]
        pool[slots, :self.conv_elements] = conv.reshape(b, -1).to(pool.dtype)
        pool[slots, self.conv_elements:] = recurrent.reshape(b, -1).to(pool.dtype)

    def _conv_chunks(self, mixed, r: int, n: int, size: int):
        """(q, k, v) chunk-major, convolved, normalised and spread over the value heads, in one launch of the
        bundled kernel (deltanet_prefill.cu), or None where it does not take the tensors (the caller then runs
        _convolved, _split and chunk_major)."""
        if not mixed.is_cuda:
            return None
        from ..kernels.deltanet_prefill import conv_chunks, conv_chunks_supported

        rep, w = self.nv // self.nk, self.w["conv"]
        if self.dk != self.dv or conv_chunks_supported(mixed, w, n, self.nk, rep) is not None:
            return None
        return conv_chunks(mixed, w, n, self.nk, rep, self.dk ** -0.5, size)

    def _convolved(self, mixed, r: int, n: int):
        """silu of the causal depthwise convolution of each of the r sequences of n tokens, [r n, C] float32."""
        seq = F.pad(mixed.float().view(r, n, -1).transpose(1, 2), (self.kernel - 1, 0))  # [R, C, L + K - 1]
        out = F.conv1d(seq, self.w["conv"].float()[:, None, :], groups=self.conv_dim)
        return F.silu(out).transpose(1, 2).reshape(r * n, -1)

    def _gated_norm_of_chunks(self, chunked, z, r: int, n: int):
        """The output RMSNorm times SiLU(z) of the chunk-major prefill output, [r n, nv dv] in z's dtype, in one
        launch of the bundled kernel (deltanet_prefill.cu), or None where it does not take the tensors (the
        caller then runs the same norm in torch, token-major)."""
        if not chunked.is_cuda:
            return None
        from ..kernels.deltanet_prefill import gated_norm, gated_norm_supported

        if gated_norm_supported(chunked, z, self.w["o_norm"], r, n) is not None:
            return None
        return gated_norm(chunked, z, self.w["o_norm"], r, n, self.arch.norm_eps)

    def _split(self, mixed):
        q, k, v = mixed.split([self.nk * self.dk, self.nk * self.dk, self.nv * self.dv], dim=-1)
        rep = self.nv // self.nk
        q = l2_norm(q.float().unflatten(-1, (self.nk, self.dk))).repeat_interleave(rep, dim=-2) * self.dk ** -0.5
        k = l2_norm(k.float().unflatten(-1, (self.nk, self.dk))).repeat_interleave(rep, dim=-2)
        return q, k, v.float().unflatten(-1, (self.nv, self.dv))

    def __call__(self, x, step, cache):
        a, w, rt, t = self.arch, self.w, self.rt, x.shape[0]
        qkvz, ba = rt.mm.pair(x, w["qkvz"], w["ba"], self.joint)
        mixed, z = qkvz.split([self.conv_dim, self.nv * self.dv], dim=-1)
        plan = self._step_plan(x, cache) if step.decode else None
        if step.decode:
            rt.labels["linear"] = self.label  # which code ran, for verify's report
        if plan is not None:
            slots = step.state_slots_int32()
            gated = plan.run(mixed, ba, z, cache.tensors[0], slots, w["conv"], w["A_log"], w["dt_bias"], w["o_norm"],
                             a.norm_eps, state_pool=cache.tensors[1] if plan.split else None)
            return rt.comm.all_reduce(rt.mm(gated, w["o"]))
        b, a_gate = ba.split([self.nv, self.nv], dim=-1)
        g, beta = _decay_and_gate(w, a_gate, b)
        if step.decode:
            conv, state = self._state_views(cache, step.state_slots)
            window = torch.cat([conv.float(), mixed.float()[:, :, None]], dim=-1)  # [B, C, K]
            mixed = F.silu((window * w["conv"].float()[None]).sum(-1))
            q, k, v = self._split(mixed)
            s = state.float().contiguous().mul_(torch.exp(g)[..., None, None])  # [B, H, dk, dv], in place
            delta = (v - (k[..., None, :] @ s)[..., 0, :]) * beta[..., None]
            flat = s.view(-1, self.dk, self.dv)
            flat.baddbmm_(k.reshape(-1, self.dk, 1), delta.reshape(-1, 1, self.dv))  # S += k delta^T
            out = (q[..., None, :] @ s)[..., 0, :]  # [B, H, dv]
            self._store(cache, step.state_slots, window[:, :, 1:], s)
        elif step.state_slots is None:
            # the profile run (no cache exists yet): vLLM 0.32's GDN layer returns before its convolution and
            # recurrence when attn_metadata is None (model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py
            # _forward_core), so its profile peak holds the projections only; so does this one
            out = torch.zeros(t, self.nv, self.dv, device=x.device)
        else:
            r, n = step.seqs, step.seq_len
            taps = self.kernel - 1  # the inputs a sequence's convolution window keeps: its last ones
            window = F.pad(mixed.view(r, n, -1)[:, max(0, n - taps):].transpose(1, 2), (max(0, taps - n), 0))
            size = chunk_size(n)
            qkv = self._conv_chunks(mixed, r, n, size)
            if qkv is None:
                q, k, v = self._split(self._convolved(mixed, r, n))
                qkv = [chunk_major(y.view(r, n, self.nv, -1), size) for y in (q, k, v)]
            zero = torch.zeros(r, self.nv, self.dk, self.dv, device=x.device)
            chunked, s = delta_rule_chunks(*qkv, chunk_major(g.view(r, n, self.nv), size),
                                           chunk_major(beta.view(r, n, self.nv), size), zero)
            if cache is not None and step.state_slots is not None:
                self._store(cache, step.state_slots, window, s)
            gated = self._gated_norm_of_chunks(chunked, z, r, n)
            if gated is not None:
                return rt.comm.all_reduce(rt.mm(gated, w["o"]))
            out = chunked.permute(1, 0, 3, 2, 4).reshape(r, -1, self.nv, self.dv)[:, :n].reshape(t, self.nv, self.dv)
        normed = out * torch.rsqrt(out.pow(2).mean(-1, keepdim=True) + a.norm_eps) * w["o_norm"].float()
        gated = (normed * F.silu(z.float().unflatten(-1, (self.nv, self.dv)))).to(x.dtype)
        return rt.comm.all_reduce(rt.mm(gated.reshape(t, -1), w["o"]))
