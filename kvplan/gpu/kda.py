"""Kimi Delta Attention (KDA), Kimi Linear's recurrent layers, as vLLM 0.32.0 runs them
(model_executor/layers/mamba/gdn/kimi_gdn_linear_attn.py KimiGatedDeltaNetAttention.forward / _forward; its Triton
ops in vllm/models/kimi_k3/nvidia/ops/third_party/kda/: fused_recurrent.py fused_recurrent_kda_packed_decode for
decode, chunk.py chunk_kda_with_fused_gate for prefill). On a GPU decode runs kvplan's KDA step kernel
(kvplan/kernels/kda_step.cu: the short convolutions, the gated delta rule on the float32 state in its slot and the
gated norm, one launch a layer) where it takes the shape; prefill, and decode elsewhere (the CPU, a shape it does not
compile), run here in float32 torch, and a torch decode's label says NOT a CUDA kernel, so that verify judges the
decode step only where the kernel ran it.

Per head (heads x head_dim D for q, k and v alike) and token:

    q, k, v = silu(causal depthwise convolution, kernel K, float32 weights, no bias) of their projections
    q, k    = x / sqrt(sum x^2 + 1e-6);  q *= D^-0.5
    g       = -exp(A_log) softplus(f_b(f_a(x)) + dt_bias)         a log decay per key channel [D], not per head
              (gate_lower_bound b: b sigmoid(exp(A_log) (f_b(f_a(x)) + dt_bias)))
    S      <- diag(exp g) S;   S <- S + k (sigmoid(beta) (v - S^T k))^T;   o = S^T q        (S [D, D] float32)
    out     = RMSNorm(o, eps 1e-5) * sigmoid(g_b(g_a(x)))   ->  o_proj

(vLLM keeps S as [V, K]; here [K, V], the same bytes.) Decode runs that step for the batch, reading and writing each
sequence's state slot once. Prefill runs the same recurrence in chunks of CHUNK tokens (kda_chunked); the tests hold it
to the token recurrence (kda_recurrent) and both to the float64 reference."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .deltanet import chunk_major
from .ops import l2_norm

CHUNK = 64  # tokens a prefill chunk, as vLLM's FLA_CHUNK_SIZE (third_party/flash_linear_attention/ops/utils.py)
NORM_EPS = 1e-5  # FusedRMSNormGated's default eps, which KimiGatedDeltaNetAttention's o_norm keeps (fla ops/kda.py)
PAIR_BYTES = 256 * 2**20  # bytes of per-channel pair decays [C, C, D] made at once (float64 exponents, float32 powers)
# float32 bytes of the recurrent states a decode step gathers at once: the step runs a slice of the batch at a time,
# so that the gathered copies (which the engine's kernel, updating the state in its slot, never makes) stay small in
# the decode graphs' memory, a term verify measures (at tp 1 a state is 2 MiB: 32 sequences a slice)
STATE_GATHER_BYTES = 64 * 2**20
LABEL = ("torch Kimi Delta Attention decode (short convolutions, per-channel gated delta rule on gathered float32 "
         "states, gated RMS norm); NOT a CUDA kernel (kvplan's KDA step kernel: {why})")
KERNEL_LABEL = ("decode: kvplan's KDA step kernel (kda_step.cu: the short convolutions with their windows in the "
                "slot, the per-channel gated delta rule on the float32 state in its slot, the gated RMS norm; one "
                "launch a layer); prefill: float32 torch chunks of 64 (kvplan has no KDA prefill kernel)")
PREFILL_LABEL = ("float32 torch: short convolutions, the per-channel gated delta rule in chunks of 64, gated RMS norm "
                 "(kvplan has no KDA prefill kernel; the TTFT times torch)")


def kda_gate(g_raw, dt_bias, a_log, heads: int, dim: int, lower_bound: float = 0.0):
    """The log decay per key channel [.., heads, dim] (float32, <= 0) of the gate projection `g_raw` [.., heads dim]:
    -exp(A_log) softplus(g + dt_bias) (softplus linear above 20, as vLLM's kernels), or with a gate lower bound b < 0
    b sigmoid(exp(A_log) (g + dt_bias))."""
    x = g_raw.float().unflatten(-1, (heads, dim)) + dt_bias.float().view(heads, dim)
    a = torch.exp(a_log.float())[:, None]
    if lower_bound:
        return lower_bound * torch.sigmoid(a * x)
    return -a * F.softplus(x)


def kda_recurrent(q, k, v, g, beta, state):
    """The KDA recurrence token by token (the tests' yardstick for kda_chunked): q, k [R, L, H, D]; v [R, L, H, Dv];
    g [R, L, H, D] (log decay per key channel); beta [R, L, H] (after the sigmoid); state [R, H, D, Dv] float32 ->
    (out [R, L, H, Dv], final state)."""
    s = state.clone()
    outs = []
    for t in range(q.shape[1]):
        s = s * torch.exp(g[:, t])[..., None]
        delta = (v[:, t] - (k[:, t, :, None, :] @ s)[..., 0, :]) * beta[:, t, :, None]
        s = s + k[:, t, :, :, None] * delta[..., None, :]
        outs.append((q[:, t, :, None, :] @ s)[..., 0, :])
    return torch.stack(outs, dim=1), s


def kda_chunked(q, k, v, g, beta, state):
    """The same recurrence over whole prompts in chunks of CHUNK tokens (one chunk of the prompt's length when
    shorter), token order in and out (see _chunks)."""
    r, n, h, dk = k.shape
    dv = v.shape[-1]
    size = min(CHUNK, n)
    qc, kc, vc, gc, bc = (chunk_major(x.float(), size) for x in (q, k, v, g, beta))  # [N, R, H, C, ..]
    nc = qc.shape[0]
    out, final = _chunks(*(x.reshape(nc * r * h, *x.shape[3:]) for x in (qc, kc, vc, gc, bc)),
                         state.reshape(r * h, dk, dv), nc)
    out = out.view(nc, r, h, size, dv).permute(1, 0, 3, 2, 4).reshape(r, nc * size, h, dv)[:, :n]
    return out, final.view(r, h, dk, dv)


def _chunks(qc, kc, vc, gc, bc, state, nc: int):
    """qc, kc [M, C, D]; vc [M, C, Dv]; gc [M, C, D]; bc [M, C] with M = chunks x rows (chunk-major; zeros past the
    prompt: no decay, no update); state [rows, D, Dv] -> (out [M, C, Dv], final state [rows, D, Dv]).

    In a chunk starting from S0, with G_t the cumulative log decay to token t (a [D] vector), the updates
    u_t = beta_t (v_t - (diag(e^G_t) S0)^T k_t - sum_{j<t} A_tj u_j), A_tj = sum_d k_t k_j e^(G_t - G_j), make
    (I + diag(beta) A) U = diag(beta) (V - (e^G o K) S0): U = U_v - W S0. Then out = (e^G o Q - B W) S0 + B U_v with
    B_tj = sum_d q_t k_j e^(G_t - G_j) (j <= t), and the chunk's end state S = M S0 + B_c with
    M = diag(e^G_C) - K_tail^T W, B_c = K_tail^T U_v, K_tail = e^(G_C - G) o K. Every exponent is <= 0 (decays within
    a chunk, from its start, to its end), so nothing overflows however strong the gate; A and B need the decay of
    every pair of tokens channel by channel (_pair_products). What stays sequential is S_{c+1} = M_c S_c + B_c."""
    m, size, dk = kc.shape
    dv = vc.shape[-1]
    # the log decays summed in float64: a chunk of strong decays sums to thousands, and in float32 the difference of
    # two such sums (a pair's decay, the decay to the chunk's end) keeps only ~1e-4 of it (1.7e-5 off the recurrence)
    cum = gc.double().cumsum(1)
    last = cum[:, -1:]
    kk, qk = _pair_products(qc, kc, cum)
    eye = torch.eye(size, device=kc.device)
    lower = eye + bc[..., None] * kk
    from_start = torch.exp(cum).float()
    rhs = torch.cat([bc[..., None] * vc, (bc[..., None] * from_start) * kc], dim=-1)
    u_v, w_k = torch.linalg.solve_triangular(lower, rhs, upper=False, unitriangular=True).split([dv, dk], dim=-1)
    q_eff = from_start * qc - qk @ w_k  # [M, C, D]
    o_intra = qk @ u_v  # [M, C, Dv]
    tail = (torch.exp(last - cum).float() * kc).transpose(-1, -2)  # [M, D, C]
    trans = -(tail @ w_k)  # [M, D, D]
    trans.diagonal(dim1=-2, dim2=-1).add_(torch.exp(last[:, 0]).float())
    rows = m // nc
    states = torch.empty(nc + 1, rows, dk, dv, device=kc.device, dtype=torch.float32)
    states[0] = state
    torch.matmul(tail, u_v, out=states[1:].view(m, dk, dv))
    trans = trans.view(nc, rows, dk, dk)
    for c in range(nc):
        states[c + 1].baddbmm_(trans[c], states[c])
    out = torch.matmul(q_eff.view(nc, rows, size, dk), states[:nc]).add_(o_intra.view(nc, rows, size, dv))
    return out.view(m, size, dv), states[nc]


def _pair_products(qc, kc, cum):
    """(A, B) [M, C, C]: A_tj = sum_d k_t[d] k_j[d] e^(G_t[d] - G_j[d]) for j < t, B_tj = the same with q_t for
    j <= t, zero above (cum: G in float64). The decays of every pair, channel by channel, are made a slice of chunks
    at a time (at most PAIR_BYTES: the float64 exponents, then their float32 powers)."""
    m, size, dk = kc.shape
    kk = torch.empty(m, size, size, device=kc.device)
    qk = torch.empty_like(kk)
    t = torch.arange(size, device=kc.device)
    later = (t[None, :] > t[:, None])[..., None]  # [t, j, 1]: key j after query t
    step = max(1, PAIR_BYTES // (size * size * dk * 12))
    for i in range(0, m, step):
        part = slice(i, i + step)
        exponent = (cum[part, :, None, :] - cum[part, None, :, :]).masked_fill_(later, float("-inf"))
        keys = exponent.exp_().float().mul_(kc[part, None, :, :])  # [m, t, j, D]: k_j decayed from j to t
        del exponent
        both = torch.matmul(keys, torch.stack([kc[part], qc[part]], dim=-1))  # [m, t, j, 2]
        kk[part], qk[part] = both[..., 0], both[..., 1]
    return kk.tril_(-1), qk


class KimiDeltaAttention:
    def __init__(self, arch, layer, w: dict, rt):
        self.arch, self.layer, self.w, self.rt = arch, layer, w, rt
        self.heads, self.dim, self.kernel = arch.lin_key_heads // arch.tp, arch.lin_key_dim, arch.conv_kernel
        self.width = self.heads * self.dim  # of q, k and v each, on this rank
        self.label = LABEL.format(why="not on a GPU")
        self._plans: dict = {}

    def _step_plan(self, x, cache):
        """The step kernel's plan for these dtypes, or None (CPU, no NVRTC, a shape it does not compile); sets the
        label of the path this step runs."""
        key = (x.dtype,) + tuple(t.dtype for t in cache.tensors)
        if key not in self._plans:
            plan, why = None, "not on a GPU"
            if x.is_cuda:
                from ..kernels._checks import dtype_name
                from ..kernels._runtime import kernel_unavailable_reason
                from ..kernels.kda_step import KdaStepPlan, kda_step_supported

                act, conv, state = (dtype_name(t.dtype) for t in (x, *cache.tensors))
                why = kernel_unavailable_reason() or kda_step_supported(self.heads, self.dim, self.kernel, act, conv,
                                                                        state)
                if why is None:
                    plan = KdaStepPlan(self.heads, self.dim, self.kernel, act, conv, self.arch.kda_gate_lower_bound,
                                       x.device)
            self._plans[key] = plan, why
        plan, why = self._plans[key]
        self.label = KERNEL_LABEL if plan is not None else LABEL.format(why=str(why).rstrip("."))
        return plan

    def _split(self, mixed):
        """silu-convolved q, k, v [T, 3 width] -> q, k normalised (q scaled), v: [T, heads, dim] float32 each."""
        q, k, v = (x.unflatten(-1, (self.heads, self.dim)) for x in mixed.float().split(self.width, dim=-1))
        return l2_norm(q) * self.dim ** -0.5, l2_norm(k), v

    def _decode(self, mixed, g, beta, cache, slots):
        conv_pool, state_pool = cache.tensors
        b = mixed.shape[0]
        conv = conv_pool[slots].view(b, 3 * self.width, self.kernel - 1)
        window = torch.cat([conv.float(), mixed.float()[:, :, None]], dim=-1)  # [B, 3 width, K]
        q, k, v = self._split(F.silu((window * self.w["conv"].float()[None]).sum(-1)))
        s = state_pool[slots].view(b, self.heads, self.dim, self.dim).mul_(torch.exp(g)[..., None])  # a gathered copy
        delta = (v - (k[..., None, :] @ s)[..., 0, :]) * beta[..., None]
        s.view(-1, self.dim, self.dim).baddbmm_(k.reshape(-1, self.dim, 1), delta.reshape(-1, 1, self.dim))
        conv_pool[slots] = window[:, :, 1:].reshape(b, -1).to(conv_pool.dtype)
        state_pool[slots] = s.reshape(b, -1)
        return (q[..., None, :] @ s)[..., 0, :]

    def _prefill(self, mixed, g, beta, cache, step):
        r, n = step.seqs, step.seq_len
        taps = self.kernel - 1  # the inputs a sequence's convolution window keeps: its last ones
        window = F.pad(mixed.view(r, n, -1)[:, max(0, n - taps):].transpose(1, 2), (max(0, taps - n), 0))
        seq = F.pad(mixed.float().view(r, n, -1).transpose(1, 2), (taps, 0))  # [R, 3 width, L + K - 1]
        conv = F.conv1d(seq, self.w["conv"].float()[:, None, :], groups=3 * self.width)
        q, k, v = self._split(F.silu(conv).transpose(1, 2).reshape(r * n, -1))
        zero = torch.zeros(r, self.heads, self.dim, self.dim, device=mixed.device)
        shape = (r, n, self.heads)
        out, s = kda_chunked(q.view(*shape, -1), k.view(*shape, -1), v.view(*shape, -1), g.view(*shape, -1),
                             beta.view(shape), zero)
        if cache is not None:
            conv_pool, state_pool = cache.tensors
            conv_pool[step.state_slots] = window.reshape(r, -1).to(conv_pool.dtype)
            state_pool[step.state_slots] = s.reshape(r, -1)
        return out.reshape(r * n, self.heads, self.dim)

    def __call__(self, x, step, cache):
        a, w, rt, t = self.arch, self.w, self.rt, x.shape[0]
        mixed, beta, f_a = rt.mm(x, w["in_proj"]).split([3 * self.width, self.heads, self.dim], dim=-1)
        plan = self._step_plan(x, cache) if step.decode else None
        if step.decode:
            rt.labels["kda"] = self.label  # which code ran, for verify's report (its decode verdict reads it)
        if plan is not None:  # the gate, the convolutions, the recurrence and the gated norm in one launch
            g_raw, gate = rt.mm(f_a, w["f_b"]), rt.mm(rt.mm(x, w["g_a"]), w["g_b"])
            gated = plan.run(mixed, beta, g_raw, gate, *cache.tensors, step.state_slots_int32(), w["conv"],
                             w["A_log"], w["dt_bias"], w["o_norm"], NORM_EPS)
            return rt.comm.all_reduce(rt.mm(gated, w["o"]))
        g = kda_gate(rt.mm(f_a, w["f_b"]), w["dt_bias"], w["A_log"], self.heads, self.dim, a.kda_gate_lower_bound)
        gate = rt.mm(rt.mm(x, w["g_a"]), w["g_b"])
        beta = torch.sigmoid(beta.float())
        if not step.decode and step.state_slots is None:
            # the profile run (no cache yet): vLLM's KDA layer returns from _forward before the convolution, the
            # recurrence and the gated norm when attn_metadata is None, and o_proj reads the empty output buffer
            return rt.comm.all_reduce(rt.mm(torch.zeros(t, self.width, dtype=x.dtype, device=x.device), w["o"]))
        if step.decode:
            per = max(1, STATE_GATHER_BYTES // (self.heads * self.dim * self.dim * 4))
            parts = [slice(i, i + per) for i in range(0, t, per)]
            out = torch.cat([self._decode(mixed[p], g[p], beta[p], cache, step.state_slots[p]) for p in parts])
        else:
            rt.labels["kda prefill"] = PREFILL_LABEL
            out = self._prefill(mixed, g, beta, cache, step)
        normed = out * torch.rsqrt(out.pow(2).mean(-1, keepdim=True) + NORM_EPS) * w["o_norm"].float()
        gated = (normed * torch.sigmoid(gate.float().unflatten(-1, (self.heads, self.dim)))).to(x.dtype)
        return rt.comm.all_reduce(rt.mm(gated.reshape(t, -1), w["o"]))
