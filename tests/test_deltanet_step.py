"""kvplan's gated-DeltaNet decode step kernel (kvplan/kernels/deltanet_step.cu).

CPU: which shapes it takes, and one clear error for the others. GPU (skips without CUDA): one step against a
float64 reference written from the layer's equations (Qwen3-Next's gated delta rule, the same ones
kvplan/gpu/deltanet.py's torch path follows), in a permuted set of state slots, with the untouched slots
checked to stay untouched, and the same step replayed from a CUDA graph."""

import math

import pytest

from cuda_graphs import step_graph_replay
from kvplan.kernels.deltanet_step import DeltaNetStepPlan, all_deltanet_configs, deltanet_step_supported


def test_supported_shapes_and_reasons():
    assert deltanet_step_supported(16, 32, 128, 128, "bfloat16", "bfloat16") is None  # Qwen3-Next, tp 1
    assert deltanet_step_supported(8, 16, 128, 128, "bfloat16", "float32") is None  # tp 2, float32 state
    assert "key head dim 64" in deltanet_step_supported(16, 32, 64, 128, "bfloat16", "bfloat16")
    assert "value head dim 256" in deltanet_step_supported(16, 32, 128, 256, "bfloat16", "bfloat16")
    assert "not a multiple of 3 key heads" in deltanet_step_supported(3, 32, 128, 128, "bfloat16", "bfloat16")
    assert "float8" in deltanet_step_supported(16, 32, 128, 128, "bfloat16", "float8_e4m3fn")
    with pytest.raises(ValueError, match="cannot run this layer: key head dim 96"):
        DeltaNetStepPlan(2, 4, 96, 128, 4, "bfloat16", "bfloat16")


def test_ci_compiles_both_state_precisions():
    names = {c.name for c in all_deltanet_configs()}
    assert names == {"deltanet_float16_statefloat16_dk128", "deltanet_float16_statefloat32_dk128",
                     "deltanet_bfloat16_statebfloat16_dk128", "deltanet_bfloat16_statefloat32_dk128"}


# ---- GPU ---------------------------------------------------------------------------------------------------------

def _torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    return torch


def _reference(torch, mixed, ba, z, rows, conv_w, a_log, dt_bias, o_norm, eps, nk, nv, dk, dv, taps):
    """float64, one sequence at a time, straight from the equations."""
    f = torch.float64
    channels = mixed.shape[1]
    outs, new_rows = [], []
    for b in range(mixed.shape[0]):
        row = rows[b].to(f).clone()
        window = torch.cat([row[:channels * (taps - 1)].view(channels, taps - 1), mixed[b].to(f)[:, None]], 1)
        act = (window * conv_w.to(f)).sum(1)
        act = act / (1 + torch.exp(-act))
        row[:channels * (taps - 1)] = window[:, 1:].reshape(-1)
        q, k = act[:nk * dk].view(nk, dk), act[nk * dk:2 * nk * dk].view(nk, dk)
        v = act[2 * nk * dk:].view(nv, dv)
        head_out = []
        for h in range(nv):
            kh = h // (nv // nk)
            qh = q[kh] / torch.sqrt((q[kh] ** 2).sum() + 1e-6) / math.sqrt(dk)
            kvec = k[kh] / torch.sqrt((k[kh] ** 2).sum() + 1e-6)
            beta = 1 / (1 + math.exp(-float(ba[b, h])))
            x = float(ba[b, nv + h]) + float(dt_bias[h])
            decay = math.exp(-math.exp(float(a_log[h])) * (x if x > 20 else math.log1p(math.exp(x))))
            start = channels * (taps - 1) + h * dk * dv
            s = row[start:start + dk * dv].view(dk, dv) * decay
            delta = beta * (v[h] - kvec @ s)
            s = s + torch.outer(kvec, delta)
            row[start:start + dk * dv] = s.reshape(-1)
            o = qh @ s
            normed = o / torch.sqrt((o ** 2).mean() + eps) * o_norm.to(f)
            zz = z[b, h * dv:(h + 1) * dv].to(f)
            head_out.append(normed * zz / (1 + torch.exp(-zz)))
        outs.append(torch.cat(head_out))
        new_rows.append(row)
    return torch.stack(outs), torch.stack(new_rows)


@pytest.mark.parametrize("nk,nv,dv,batch,state", [(2, 4, 128, 1, "bfloat16"), (2, 4, 128, 5, "float32"),
                                                  (1, 3, 64, 8, "bfloat16"), (4, 4, 32, 3, "float32")])
def test_step_matches_float64(nk, nv, dv, batch, state):
    torch = _torch_cuda()
    from kvplan.kernels._runtime import kernel_unavailable_reason

    if kernel_unavailable_reason():
        pytest.skip(kernel_unavailable_reason())
    gen = torch.Generator(device="cuda").manual_seed(1234 + batch)
    dk, taps, eps, act = 128, 4, 1e-6, torch.bfloat16
    sdt = getattr(torch, state)
    plan = DeltaNetStepPlan(nk, nv, dk, dv, taps, "bfloat16", state)
    channels = 2 * nk * dk + nv * dv

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, device="cuda", generator=gen) * scale).to(act)

    mixed, ba, z = rnd(batch, channels), rnd(batch, 2 * nv + 3), rnd(batch, nv * dv)
    conv_w, a_log, dt_bias, o_norm = rnd(channels, taps, scale=0.5), rnd(nv, scale=0.5), rnd(nv), rnd(dv)
    pool = (torch.randn(batch * 2 + 3, plan.row_elements, device="cuda", generator=gen) * 0.2).to(sdt)
    slots = torch.randperm(pool.shape[0], device="cuda", generator=gen)[:batch].to(torch.int32)
    before = pool.clone()
    want, want_rows = _reference(torch, mixed, ba, z, before[slots.long()], conv_w, a_log, dt_bias, o_norm, eps,
                                 nk, nv, dk, dv, taps)
    got = plan.run(mixed, ba[:, :], z, pool, slots, conv_w, a_log, dt_bias, o_norm, eps)
    torch.cuda.synchronize()
    assert (got.double() - want).abs().max().item() < 0.05 * max(1.0, want.abs().max().item())
    tol = 1e-2 if state == "bfloat16" else 1e-4
    assert (pool[slots.long()].double() - want_rows).abs().max().item() < tol * max(1.0, want_rows.abs().max().item())
    others = torch.ones(pool.shape[0], dtype=torch.bool, device="cuda")
    others[slots.long()] = False
    assert torch.equal(pool[others], before[others])

    # the same step from a CUDA graph, on a restored pool
    args = (mixed, ba, z, pool, slots, conv_w, a_log, dt_bias, o_norm, eps)
    assert torch.equal(step_graph_replay(plan, args, pool, before, got), got)
