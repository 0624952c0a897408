"""kvplan's Mamba-2 decode step kernel (kvplan/kernels/mamba_step.cu).

CPU: which shapes it takes, and one clear error for the others. GPU (skips without CUDA): one step against a
float64 reference written from the layer's equations (vLLM's MambaMixer2: convolution + bias, SiLU, the state
space with softplus(dt), D x, the gated RMSNorm per group), in a permuted set of state slots, the untouched slots
checked to stay untouched, and the same step replayed from a CUDA graph."""

import math

import pytest

from cuda_graphs import step_graph_replay
from kvplan.kernels.mamba_step import MambaStepPlan, all_mamba_configs, heads_per_cta, mamba_step_supported


def test_supported_shapes_and_reasons():
    assert mamba_step_supported(128, 8, 64, 128, 4, "bfloat16", "bfloat16") is None  # Nemotron-H-8B, tp 1
    assert mamba_step_supported(64, 4, 64, 128, 4, "bfloat16", "float32") is None  # tp 2, float32 state
    assert "state size 96" in mamba_step_supported(8, 2, 64, 96, 4, "bfloat16", "bfloat16")
    assert "not a multiple of 3 groups" in mamba_step_supported(8, 3, 64, 128, 4, "bfloat16", "bfloat16")
    assert "float8" in mamba_step_supported(8, 2, 64, 128, 4, "bfloat16", "float8_e4m3fn")
    with pytest.raises(ValueError, match="cannot run this layer: state size 12"):
        MambaStepPlan(8, 2, 64, 12, 4, "bfloat16", "bfloat16")


def test_heads_per_cta_fills_the_gpu_first():
    # Nemotron-H-8B on 132 SMs: a head a CTA until 8 CTAs an SM are there, then a group's heads share CTAs
    assert heads_per_cta(128, 8, 1, 132) == 1
    assert heads_per_cta(128, 8, 16, 132) == 1  # 2,048 CTAs >= 1,056 only at one head each
    assert heads_per_cta(128, 8, 64, 132) == 4  # 2,048 CTAs of 4 heads
    assert heads_per_cta(128, 8, 256, 132) == 16  # a CTA a group
    assert heads_per_cta(6, 3, 100, 132) == 1  # 600 CTAs: even one head each leaves the GPU short


def test_ci_compiles_both_state_precisions():
    names = {c.name for c in all_mamba_configs()}
    for kind in ("mamba", "mamba1"):  # Mamba-2's step, Mamba-1's scan (mamba1_scan.cu)
        assert {n for n in names if n.split("_")[0] == kind} == {
            f"{kind}_float16_statefloat16", f"{kind}_float16_statefloat32", f"{kind}_bfloat16_statebfloat16",
            f"{kind}_bfloat16_statefloat32"}


# ---- GPU ---------------------------------------------------------------------------------------------------------

def _torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    return torch


def _reference(torch, xbc, dt, z, rows, w, heads, groups, p, n, taps, eps):
    """float64 on the CPU, one sequence and one head at a time, straight from the equations."""
    f = torch.float64
    xbc, dt, z, rows = xbc.cpu(), dt.cpu(), z.cpu(), rows.cpu()
    w = [None if t is None else t.cpu() for t in w]
    conv_w, conv_b, a_log, d, dt_bias, o_norm = (None if t is None else t.to(f) for t in w)
    channels = xbc.shape[1]
    inner, rep = heads * p, heads // groups
    outs, new_rows = [], []
    for b in range(xbc.shape[0]):
        row = rows[b].to(f).clone()
        window = torch.cat([row[:channels * (taps - 1)].view(channels, taps - 1), xbc[b].to(f)[:, None]], 1)
        act = (window * conv_w).sum(1) + (conv_b if conv_b is not None else 0)
        act = act / (1 + torch.exp(-act))
        row[:channels * (taps - 1)] = window[:, 1:].reshape(-1)
        x = act[:inner].view(heads, p)
        bmat, cmat = act[inner:inner + groups * n].view(groups, n), act[inner + groups * n:].view(groups, n)
        y = torch.zeros(heads, p, dtype=f)
        for h in range(heads):
            g = h // rep
            u = float(dt[b, h]) + float(dt_bias[h])
            step = u if u > 20 else math.log1p(math.exp(u))
            decay = math.exp(-step * math.exp(float(a_log[h])))
            start = channels * (taps - 1) + h * p * n
            s = row[start:start + p * n].view(p, n) * decay + step * torch.outer(x[h], bmat[g])
            row[start:start + p * n] = s.reshape(-1)
            y[h] = s @ cmat[g] + d[h] * x[h]
        zz = z[b].to(f)
        gated = (y.reshape(-1) * zz / (1 + torch.exp(-zz))).view(groups, -1)
        normed = gated / torch.sqrt((gated ** 2).mean(-1, keepdim=True) + eps)
        outs.append(normed.reshape(-1) * o_norm)
        new_rows.append(row)
    return torch.stack(outs), torch.stack(new_rows)


@pytest.mark.parametrize("heads,groups,p,n,batch,state,bias", [
    (16, 2, 64, 128, 1, "bfloat16", True), (16, 2, 64, 128, 5, "float32", True),
    (6, 3, 24, 64, 8, "bfloat16", False), (4, 1, 16, 32, 3, "float32", True), (2, 2, 8, 8, 2, "bfloat16", True)])
def test_step_matches_float64(heads, groups, p, n, batch, state, bias):
    torch = _torch_cuda()
    from kvplan.kernels._runtime import kernel_unavailable_reason

    if kernel_unavailable_reason():
        pytest.skip(kernel_unavailable_reason())
    gen = torch.Generator(device="cuda").manual_seed(4321 + batch)
    taps, eps, act = 4, 1e-5, torch.bfloat16
    sdt = getattr(torch, state)
    plan = MambaStepPlan(heads, groups, p, n, taps, "bfloat16", state)
    channels, inner = plan.channels, heads * p

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, device="cuda", generator=gen) * scale).to(act)

    # one in_proj row: z | xBC | dt, the three read through views with the row's stride, as the layer passes them
    proj = rnd(batch, inner + channels + heads + 5)
    z, xbc, dt = proj[:, :inner], proj[:, inner:inner + channels], proj[:, inner + channels:inner + channels + heads]
    w = (rnd(channels, taps, scale=0.5), rnd(channels, scale=0.2) if bias else None, rnd(heads, scale=0.5),
         rnd(heads), rnd(heads), rnd(inner))
    pool = (torch.randn(batch * 2 + 3, plan.row_elements, device="cuda", generator=gen) * 0.2).to(sdt)
    slots = torch.randperm(pool.shape[0], device="cuda", generator=gen)[:batch].to(torch.int32)
    before = pool.clone()
    want, want_rows = _reference(torch, xbc, dt, z, before[slots.long()], w, heads, groups, p, n, taps, eps)
    got = plan.run(xbc, dt, z, pool, slots, *w, eps)
    torch.cuda.synchronize()
    assert (got.double().cpu() - want.cpu()).abs().max().item() < 0.05 * max(1.0, want.abs().max().item())
    tol = 1e-2 if state == "bfloat16" else 1e-4
    err = (pool[slots.long()].double().cpu() - want_rows).abs().max().item()
    assert err < tol * max(1.0, want_rows.abs().max().item())
    others = torch.ones(pool.shape[0], dtype=torch.bool, device="cuda")
    others[slots.long()] = False
    assert torch.equal(pool[others], before[others])

    # the same step from a CUDA graph, on a restored pool
    assert torch.equal(step_graph_replay(plan, (xbc, dt, z, pool, slots, *w, eps), pool, before, got), got)


@pytest.mark.parametrize("rows", [1, 37, 300])
def test_the_norm_alone_over_a_prefills_rows(rows):
    """gated_norm: the step's last launch over a prompt's rows (y fp32, z read through the in_proj rows' stride),
    against RMSNorm(y SiLU(z)) per group times the weight in float64."""
    torch = _torch_cuda()
    from kvplan.kernels._runtime import kernel_unavailable_reason

    if kernel_unavailable_reason():
        pytest.skip(kernel_unavailable_reason())
    heads, groups, p, eps = 16, 2, 64, 1e-5
    plan = MambaStepPlan(heads, groups, p, 128, 4, "bfloat16", "bfloat16")
    gen = torch.Generator(device="cuda").manual_seed(rows)
    y = torch.randn(rows, heads * p, device="cuda", generator=gen)
    z = torch.randn(rows, heads * p + 40, device="cuda", generator=gen).bfloat16()[:, 8:8 + heads * p]
    weight = torch.randn(heads * p, device="cuda", generator=gen).bfloat16()
    got = plan.gated_norm(y, z, weight, eps)
    gated = (y.double() * torch.nn.functional.silu(z.double())).view(rows, groups, -1)
    want = (gated * torch.rsqrt(gated.square().mean(-1, keepdim=True) + eps)).view(rows, -1) * weight.double()
    assert got.dtype == torch.bfloat16 and got.shape == (rows, heads * p)
    assert float((got.double() - want).abs().max()) < 0.02 * max(1.0, float(want.abs().max()))
