"""The prefill kernels against the torch forms they replace, at one rank of Qwen3-Next-80B at tp 2 and 8,192
tokens (16 value heads of 128 x 128, 8 key heads, 4,096 convolution channels of width 4, 10 routed experts a token
over a 2,048 hidden size), CUDA events around each call, the median of `--reps`:

    python3 benchmarks/probes/prefill_kernels_time.py [--tokens 8192] [--reps 20]
"""

from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, ".")
from kvplan.gpu.ops import l2_norm  # noqa: E402
from kvplan.kernels.deltanet_prefill import conv_chunks, gated_norm, scan_states, solve_chunks  # noqa: E402
from kvplan.kernels.moe_gather_sum import gather_sum  # noqa: E402
from kvplan.kernels.probes import _time  # noqa: E402


def timed(fn, reps: int) -> float:
    """Median ms of one call (kvplan.kernels.probes' CUDA-event timer, one call between events)."""
    return _time(torch, fn, reps, 1) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--reps", type=int, default=20)
    a = ap.parse_args()
    t, dev = a.tokens, "cuda"
    rows = []

    heads, chunks = 16, -(-t // 64)
    eye = torch.eye(128, device=dev)
    m = (0.9 * eye - torch.randn(chunks, heads, 128, 64, device=dev) @ torch.randn(64, 128, device=dev) / 1e3)
    states = torch.randn(chunks + 1, heads, 128, 128, device=dev)

    def loop():
        for c in range(chunks):
            states[c + 1].baddbmm_(m[c], states[c])

    rows.append(("chunk-state scan", timed(loop, a.reps), timed(lambda: scan_states(m, states), a.reps)))

    kc = torch.randn(chunks, 1, heads, 64, 128, device=dev)
    kc = kc / kc.norm(dim=-1, keepdim=True)
    vc = torch.randn(chunks, 1, heads, 64, 128, device=dev)
    cum = (-torch.rand(chunks, 1, heads, 64, device=dev) * 0.1).cumsum(-1)
    bc = torch.rand(chunks, 1, heads, 64, device=dev)
    kk = kc @ kc.transpose(-1, -2)
    tri = torch.arange(64, device=dev)
    incl = torch.exp((cum[..., :, None] - cum[..., None, :]).masked_fill(tri[None, :] > tri[:, None], float("-inf")))

    def solve_torch():  # deltanet._solve's torch form (its products in TF32, as delta_rule_chunks runs it)
        torch.set_float32_matmul_precision("high")
        eye64 = torch.eye(64, device=dev)
        lower = eye64 + bc[..., :, None] * kk * incl.tril(-1)
        inverse = torch.linalg.solve_triangular(lower, eye64.expand_as(lower), upper=False, unitriangular=True)
        out = inverse @ (bc[..., None] * vc), inverse @ ((bc * torch.exp(cum))[..., None] * kc)
        torch.set_float32_matmul_precision("highest")
        return out

    rows.append(("chunk solve: (I + A)^-1 [beta V | beta exp(G) K]", timed(solve_torch, a.reps),
                 timed(lambda: solve_chunks(kk, kc, vc, cum, bc), a.reps)))

    nk, rep, d, taps = 8, 2, 128, 4
    channels = (2 * nk + nk * rep) * d
    proj = torch.randn(t, channels + 2048, device=dev, dtype=torch.bfloat16)
    x, w = proj[:, :channels], torch.randn(channels, taps, device=dev, dtype=torch.bfloat16)

    def chunked(y):  # [1, L, H, d] -> [N, 1, H, 64, d] contiguous
        return y.view(1, -1, 64, *y.shape[2:]).permute(1, 0, 3, 2, 4).contiguous()

    def conv_torch():  # the torch forms verify runs where the kernel does not: _convolved, _split, chunk_major
        seq = F.pad(x.float().view(1, t, -1).transpose(1, 2), (taps - 1, 0))
        act = F.silu(F.conv1d(seq, w.float()[:, None, :], groups=channels)).transpose(1, 2).reshape(t, -1)
        q, k, v = act.split([nk * d, nk * d, nk * rep * d], dim=-1)
        q = l2_norm(q.unflatten(-1, (nk, d))).repeat_interleave(rep, dim=-2) * d ** -0.5
        k = l2_norm(k.unflatten(-1, (nk, d))).repeat_interleave(rep, dim=-2)
        return [chunked(y.reshape(1, t, nk * rep, d)) for y in (q, k, v)]

    rows.append(("causal conv + SiLU + q/k norms + chunk-major q, k, v", timed(conv_torch, a.reps),
                 timed(lambda: conv_chunks(x, w, t, nk, rep, d ** -0.5, 64), a.reps)))

    o = torch.randn(chunks, 1, heads, 64, 128, device=dev)
    z = torch.randn(t, heads * 128 + 512, device=dev, dtype=torch.bfloat16)[:, 512:]
    o_norm = torch.randn(128, device=dev, dtype=torch.bfloat16)

    def norm_torch():  # the layer's torch form: token order, RMSNorm, times the weight and SiLU(z)
        out = o.permute(1, 0, 3, 2, 4).reshape(1, -1, heads, 128)[:, :t].reshape(t, heads, 128)
        normed = out * torch.rsqrt(out.pow(2).mean(-1, keepdim=True) + 1e-6) * o_norm.float()
        return (normed * F.silu(z.float().unflatten(-1, (heads, 128)))).to(z.dtype)

    rows.append(("gated RMSNorm of the chunk-major output", timed(norm_torch, a.reps),
                 timed(lambda: gated_norm(o, z, o_norm, 1, t, 1e-6), a.reps)))

    k, hidden = 10, 2048
    y = torch.randn(t * k, hidden, device=dev, dtype=torch.bfloat16)
    where = torch.randperm(t * k, device=dev)
    weights = torch.rand(t, k, device=dev)
    shared = torch.randn(t, hidden, device=dev, dtype=torch.bfloat16)
    gate = torch.randn(t, 1, device=dev, dtype=torch.bfloat16)

    def combine_torch():
        out = torch.bmm(weights[:, None, :].to(y.dtype), y.index_select(0, where).view(t, k, -1))[:, 0]
        return out + shared * torch.sigmoid(gate)

    rows.append(("MoE gather + weighted sum + shared", timed(combine_torch, a.reps),
                 timed(lambda: gather_sum(y, where, weights, shared, gate), a.reps)))

    print(f"{torch.cuda.get_device_name()}, {t:,} tokens, median of {a.reps}, ms a layer")
    print("| step | torch | kernel | ratio |\n|---|---|---|---|")
    for name, before, after in rows:
        print(f"| {name} | {before:.3f} | {after:.3f} | {before / after:.1f}x |")


if __name__ == "__main__":
    main()
