"""The chunked DeltaNet prefill's recurrence over chunks (kvplan/kernels/deltanet_chunks.cu).

CPU: which shapes the kernel takes; chunked_delta_rule through a `scan` that follows the kernel's contract
(out[c] = o_intra[c] + q_eff[c] S, S = M_c S + B_c, written here as a plain float64 loop) against its own torch
loop and against the token-by-token recurrence. GPU (skips without CUDA): the kernel against that float64 loop on
random inputs (full and short chunks, value dims of one and of eight column groups), and the whole prefill rule
with and without it."""

import math

import pytest

from kvplan.kernels.deltanet_chunks import DeltaNetChunksPlan, deltanet_chunks_unsupported

torch = pytest.importorskip("torch")

from kvplan.gpu.deltanet import chunked_delta_rule  # noqa: E402


def loop_scan(trans, inject, q_eff, o_intra, state):
    """The kernel's contract, one chunk at a time in float64."""
    s = state.double().clone()
    outs = []
    for c in range(trans.shape[0]):
        outs.append(o_intra[c].double() + q_eff[c].double() @ s)
        s = trans[c].double() @ s + inject[c].double()
    return torch.stack(outs).to(o_intra.dtype), s.to(state.dtype)


def recurrence(q, k, v, g, beta, s0):
    """S <- a S;  S <- S + k (beta (v - S^T k))^T;  o = S^T q, token by token in float64."""
    r, n, h, _ = q.shape
    state = s0.double().clone()
    out = torch.empty(r, n, h, v.shape[-1], dtype=torch.float64)
    for t in range(n):
        for b in range(r):
            for head in range(h):
                st = state[b, head] * math.exp(float(g[b, t, head]))
                kk, vv = k[b, t, head].double(), v[b, t, head].double()
                st = st + torch.outer(kk, float(beta[b, t, head]) * (vv - st.T @ kk))
                state[b, head] = st
                out[b, t, head] = st.T @ q[b, t, head].double()
    return out, state


def inputs(r, n, h, dk, dv, device="cpu", seed=3):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(r, n, h, dk, generator=gen) * dk ** -0.5
    k = torch.randn(r, n, h, dk, generator=gen)
    k = k / k.norm(dim=-1, keepdim=True)
    v = torch.randn(r, n, h, dv, generator=gen)
    g = -torch.rand(r, n, h, generator=gen) * 0.2
    beta = torch.rand(r, n, h, generator=gen)
    s0 = torch.randn(r, h, dk, dv, generator=gen) * 0.1
    return [x.to(device) for x in (q, k, v, g, beta, s0)]


def test_supported_shapes_and_reasons():
    assert deltanet_chunks_unsupported(128, 128, 64) is None  # Qwen3-Next
    assert deltanet_chunks_unsupported(128, 32, 7) is None
    assert "key head dim 64" in deltanet_chunks_unsupported(64, 128, 64)
    assert "value head dim 40" in deltanet_chunks_unsupported(128, 40, 64)
    assert "chunks of 128 tokens" in deltanet_chunks_unsupported(128, 128, 128)
    with pytest.raises(ValueError, match="key dims"):
        DeltaNetChunksPlan(96)


@pytest.mark.parametrize("n", [150, 64, 9])  # several chunks with a ragged last one; exactly one; one short chunk
def test_prefill_through_a_scan_is_the_recurrence(n):
    q, k, v, g, beta, s0 = inputs(2, n, 3, 6, 5)
    ref_out, ref_state = recurrence(q, k, v, g, beta, s0)
    for scan in (None, loop_scan):
        out, state = chunked_delta_rule(q, k, v, g, beta, s0.clone(), scan)
        assert torch.allclose(out.double(), ref_out, atol=1e-4)
        assert torch.allclose(state.double(), ref_state, atol=1e-4)


# ---- GPU ---------------------------------------------------------------------------------------------------------

def _cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")


@pytest.mark.parametrize("nc,heads,chunk,dv", [(5, 3, 64, 128), (3, 2, 7, 32), (1, 16, 64, 128), (130, 2, 64, 16)])
def test_kernel_matches_the_float64_loop(nc, heads, chunk, dv):
    _cuda()
    gen = torch.Generator(device="cuda").manual_seed(11)
    dk = 128

    def rnd(*shape, scale=1.0):
        return torch.randn(*shape, device="cuda", generator=gen) * scale

    trans = rnd(nc, heads, dk, dk, scale=0.5 * dk ** -0.5)  # a contraction, as exp(G_C) I - tail^T W_k is
    inject, q_eff, o_intra = rnd(nc, heads, dk, dv), rnd(nc, heads, chunk, dk), rnd(nc, heads, chunk, dv)
    state = rnd(heads, dk, dv)
    before = state.clone()
    out, final = DeltaNetChunksPlan(dk).run(trans, inject, q_eff, o_intra, state)
    ref_out, ref_final = loop_scan(trans, inject, q_eff, o_intra, state)
    assert torch.equal(state, before)  # the input state is not written
    scale = ref_out.abs().max().item() + 1.0
    assert (out.double() - ref_out.double()).abs().max().item() < 1e-4 * scale
    assert (final.double() - ref_final.double()).abs().max().item() < 1e-4 * (ref_final.abs().max().item() + 1.0)


def test_kernel_in_the_prefill_rule_matches_torch_and_the_recurrence():
    _cuda()
    q, k, v, g, beta, s0 = inputs(1, 200, 4, 128, 128, device="cuda")
    plan = DeltaNetChunksPlan(128)
    out_k, state_k = chunked_delta_rule(q, k, v, g, beta, s0.clone(), plan.run)
    out_t, state_t = chunked_delta_rule(q, k, v, g, beta, s0.clone())
    assert torch.allclose(out_k, out_t, atol=1e-5) and torch.allclose(state_k, state_t, atol=1e-5)
    ref_out, ref_state = recurrence(*(x.cpu() for x in (q[:, :70], k[:, :70], v[:, :70], g[:, :70], beta[:, :70])),
                                    s0.cpu())
    assert torch.allclose(out_k[:, :70].cpu().double(), ref_out, atol=1e-4)
    with pytest.raises(ValueError, match="q_eff must be a contiguous"):
        plan.run(torch.zeros(1, 1, 128, 128, device="cuda"), torch.zeros(1, 1, 128, 16, device="cuda"),
                 torch.zeros(1, 1, 4, 128, device="cuda").transpose(2, 3).contiguous().transpose(2, 3),
                 torch.zeros(1, 1, 4, 16, device="cuda"), torch.zeros(1, 128, 16, device="cuda"))
