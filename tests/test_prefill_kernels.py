"""Kernels of verify's prefill (TTFT): the DeltaNet's causal convolution, per-chunk triangular solve, chunk-to-chunk
state recurrence and gated output norm (kvplan/kernels/deltanet_prefill.cu), and the weighted sum that ends MoE's
grouped path (moe_gather_sum.cu).

CPU: what each takes, the reasons it gives for what it does not, and that CI compiles them. GPU (skips without
CUDA): each against a float64 reference written from its equation (the convolution: tap by tap over each
sequence; the solve: torch's float64 triangular solve of the same system; the scan: S[c+1] = M[c] S[c] + B[c]
chunk by chunk; the sum: each token's pair rows by hand), and the chunked DeltaNet with the kernels against the
token-by-token recurrence at Qwen3-Next's head dims."""

import math

import pytest

from kvplan.kernels.configs import INSTANTIATION_SETS, DeltaNetPrefillConfig, MoeGatherSumConfig

torch = pytest.importorskip("torch")

from kvplan.kernels.deltanet_prefill import (  # noqa: E402
    conv_chunks, conv_chunks_supported, gated_norm, gated_norm_supported, scan_states, scan_supported, solve_chunks,
    solve_supported)
from kvplan.kernels.moe_gather_sum import gather_sum, gather_sum_supported  # noqa: E402


def test_ci_compiles_both_for_every_arch():
    for arch in ("sm_80", "sm_89", "sm_90"):
        names = {c.name for make in INSTANTIATION_SETS for c in make(arch)}
        assert {DeltaNetPrefillConfig().name, MoeGatherSumConfig().name} <= names


def test_cpu_tensors_are_refused_with_a_reason():
    x, w = torch.zeros(8, 384, dtype=torch.bfloat16), torch.zeros(384, 4, dtype=torch.bfloat16)
    assert conv_chunks_supported(x, w, 4, 1, 1) == "the tensors are not on one CUDA device"
    with pytest.raises(ValueError, match="DeltaNet convolution kernel cannot take these tensors"):
        conv_chunks(x, w, 4, 1, 1, 0.1, 4)
    m, states = torch.zeros(2, 3, 128, 128), torch.zeros(3, 3, 128, 128)
    assert scan_supported(m, states) == "the tensors are not on one CUDA device"
    with pytest.raises(ValueError, match="DeltaNet scan kernel cannot take these tensors: the tensors are not"):
        scan_states(m, states)
    kk, kc, cum = torch.zeros(3, 64, 64), torch.zeros(3, 64, 128), torch.zeros(3, 64)
    assert solve_supported(kk, kc, kc, cum, cum) == "the tensors are not on one CUDA device"
    short = (torch.zeros(3, 37, 37), torch.zeros(3, 37, 128), torch.zeros(3, 37, 128), torch.zeros(3, 37),
             torch.zeros(3, 37))
    assert solve_supported(*short).startswith("the chunks are not of 64 tokens")
    assert solve_supported(kk, kc, kc.double(), cum, cum) == "the tensors are not all contiguous float32"
    assert "dk + dv <= 256" in solve_supported(kk, kc, torch.zeros(3, 64, 160), cum, cum)
    with pytest.raises(ValueError, match="DeltaNet solve kernel cannot take these tensors: the tensors are not on"):
        solve_chunks(kk, kc, kc, cum, cum)
    y, where, w = torch.zeros(8, 16, dtype=torch.bfloat16), torch.arange(8), torch.zeros(4, 2)
    assert gather_sum_supported(y, where, w) == "the tensors are not on one CUDA device"
    with pytest.raises(ValueError, match="gather-sum kernel cannot take these tensors"):
        gather_sum(y, where, w)


def test_each_gpu_gets_its_own_launches_once_and_launches_run_in_its_context():
    """The two helpers both kernels' modules launch through (kvplan/kernels/_runtime.py), with stand-ins for torch
    and a prepared launch: one object a GPU index, and arguments packed, then one launch on that GPU's current
    stream inside its device context."""
    import contextlib
    import types

    from kvplan.kernels import _runtime as rt

    made = []
    get = rt.per_device(lambda i: made.append(i) or f"launches on {i}")
    assert (get(1), get(0), get(1)) == ("launches on 1", "launches on 0", "launches on 1") and made == [1, 0]

    events = []

    @contextlib.contextmanager
    def device(i):
        events.append(("enter", i))
        yield
        events.append(("exit", i))

    fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(device=device),
                                       _C=types.SimpleNamespace(_cuda_getCurrentRawStream=lambda i: 1000 + i))
    launch = types.SimpleNamespace(args=[types.SimpleNamespace(value=None) for _ in range(3)],
                                   launch=lambda grid, stream: events.append(("launch", grid, stream)))
    rt.launch_on(fake_torch, 2, launch, (7, 8, 9), (4, 1, 1))
    assert [a.value for a in launch.args] == [7, 8, 9]
    assert events == [("enter", 2), ("launch", (4, 1, 1), 1002), ("exit", 2)]


# ---- GPU ---------------------------------------------------------------------------------------------------------

def _cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from kvplan.kernels._runtime import kernel_unavailable_reason

    why = kernel_unavailable_reason()
    if why:
        pytest.skip(why)


def _maps(gen, chunks, heads):
    """M = a I - (a small product), as the DeltaNet's maps are: a decay times the identity, minus a rank-64 part."""
    decay = torch.rand(chunks, heads, 1, 1, device="cuda", generator=gen) * 0.5 + 0.5
    low = torch.randn(chunks, heads, 128, 64, device="cuda", generator=gen) / 64
    right = torch.randn(chunks, heads, 64, 128, device="cuda", generator=gen) / 16
    return decay * torch.eye(128, device="cuda") - low @ right


@pytest.mark.parametrize("chunks,heads,dv", [(1, 1, 128), (37, 3, 128), (128, 16, 128), (5, 2, 16), (9, 4, 48),
                                             (0, 2, 32)])
def test_scan_is_the_chunk_recurrence(chunks, heads, dv):
    _cuda()
    gen = torch.Generator(device="cuda").manual_seed(chunks * 7 + dv)
    m = _maps(gen, chunks, heads).contiguous()
    states = torch.randn(chunks + 1, heads, 128, dv, device="cuda", generator=gen)
    want = states.double().clone()
    for c in range(chunks):
        want[c + 1] += m[c].double() @ want[c]
    assert scan_supported(m, states) is None
    scan_states(m, states)
    torch.cuda.synchronize()
    scale = want.abs().max()
    assert float((states.double() - want).abs().max() / scale) < 1e-5


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("seqs,n,nk,rep,chunk", [(1, 8192, 8, 2, 64), (3, 37, 1, 3, 37), (2, 70, 2, 1, 64),
                                                 (4, 1, 1, 2, 1)])
def test_conv_chunks_are_the_chunked_rules_inputs(dtype, seqs, n, nk, rep, chunk):
    """Each sequence's causal convolution tap by tap, SiLU, q and k l2-normalised (q scaled), every key head
    copied to its value heads, chunk-major with zeros past n."""
    _cuda()
    gen = torch.Generator(device="cuda").manual_seed(n + nk + rep)
    nv, d = nk * rep, 128
    channels = (2 * nk + nv) * d
    rows = torch.randn(seqs * n, channels + 24, device="cuda", generator=gen).to(dtype)
    x = rows[:, :channels]  # a split of a wider projection: strided rows, as verify's
    w = (torch.randn(channels, 4, device="cuda", generator=gen) / 2).to(dtype)
    assert conv_chunks_supported(x, w, n, nk, rep) is None
    q, k, v = conv_chunks(x, w, n, nk, rep, 0.25, chunk)
    xs, wd = x.double().view(seqs, n, channels), w.double()
    act = torch.zeros(seqs, n, channels, dtype=torch.float64, device="cuda")
    for j in range(4):  # tap j reads the input 3 - j positions back; before a sequence's start: 0
        back = 3 - j
        if back < n:
            act[:, back:] += xs[:, :n - back] * wd[:, j]
    act = act * torch.sigmoid(act)
    parts = act.split([nk * d, nk * d, nv * d], dim=-1)
    want = []
    for i, part in enumerate(parts):
        part = part.reshape(seqs, n, -1, d)
        if i < 2:
            part = part / torch.sqrt((part ** 2).sum(-1, keepdim=True) + 1e-6) * (0.25 if i == 0 else 1.0)
            part = part.repeat_interleave(rep, dim=2)
        chunks = -(-n // chunk)
        padded = torch.zeros(seqs, chunks * chunk, nv, d, dtype=torch.float64, device="cuda")
        padded[:, :n] = part
        want.append(padded.view(seqs, chunks, chunk, nv, d).permute(1, 0, 3, 2, 4))
    for got, ref in zip((q, k, v), want):
        assert got.dtype == torch.float32 and got.shape == ref.shape
        assert float((got.double() - ref).abs().max() / ref.abs().max()) < 1e-5


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("seqs,n,heads", [(1, 200, 16), (3, 8, 2), (2, 64, 4)])
def test_gated_norm_is_the_layers_output_norm_in_token_order(dtype, seqs, n, heads):
    _cuda()
    gen = torch.Generator(device="cuda").manual_seed(seqs * n + heads)
    chunk = min(64, n)
    chunks = -(-n // chunk)
    o = torch.randn(chunks, seqs, heads, chunk, 128, device="cuda", generator=gen)
    zrows = torch.randn(seqs * n, heads * 128 + 40, device="cuda", generator=gen).to(dtype)
    z = zrows[:, 40:]  # z follows the convolution's channels in the projection: strided rows
    w = (1 + torch.randn(128, device="cuda", generator=gen) / 4).to(dtype)
    assert gated_norm_supported(o, z, w, seqs, n) is None
    got = gated_norm(o, z, w, seqs, n, 1e-6)
    tokens = o.double().permute(1, 0, 3, 2, 4).reshape(seqs, chunks * chunk, heads, 128)[:, :n]
    want = tokens / torch.sqrt((tokens ** 2).mean(-1, keepdim=True) + 1e-6) * w.double()
    zz = z.double().view(seqs, n, heads, 128)
    want = (want * zz * torch.sigmoid(zz)).reshape(seqs * n, heads * 128)
    assert got.dtype == dtype and got.shape == (seqs * n, heads * 128)
    tol = 8e-3 if dtype == torch.bfloat16 else 1e-3  # one rounding to the output dtype
    assert float((got.double() - want).abs().max() / want.abs().max()) < tol


def test_scan_refuses_shapes_it_does_not_compile():
    _cuda()
    m = torch.zeros(2, 1, 64, 64, device="cuda")
    assert "not [chunks, heads, 128, 128]" in scan_supported(m, torch.zeros(3, 1, 64, 64, device="cuda"))
    m = torch.zeros(2, 1, 128, 128, device="cuda")
    assert "a multiple of 16" in scan_supported(m, torch.zeros(3, 1, 128, 40, device="cuda"))
    assert "float32" in scan_supported(m.half(), torch.zeros(3, 1, 128, 32, device="cuda").half())
    x = torch.zeros(10, 512, device="cuda", dtype=torch.bfloat16)
    w4 = torch.zeros(512, 4, device="cuda", dtype=torch.bfloat16)
    assert conv_chunks_supported(x, w4, 5, 1, 2) is None
    assert "whole sequences of 4" in conv_chunks_supported(x, w4, 4, 1, 2)
    assert "both bf16" in conv_chunks_supported(x, w4.float(), 5, 1, 2)
    assert "heads of 128" in conv_chunks_supported(x, w4, 5, 1, 1)
    assert "[512, 4]" in conv_chunks_supported(x, w4[:, :3], 5, 1, 2)
    o = torch.zeros(2, 1, 2, 64, 128, device="cuda")
    zb, wb = torch.zeros(100, 256, device="cuda", dtype=torch.bfloat16), torch.ones(128, device="cuda")
    assert "do not hold 1 sequences of 200" in gated_norm_supported(o, zb, wb.bfloat16(), 1, 200)
    assert "both bf16" in gated_norm_supported(o, zb, wb, 1, 100)
    assert "not a contiguous float32" in gated_norm_supported(o[..., :64], zb, wb.bfloat16(), 1, 100)


@pytest.mark.parametrize("mats,dk,dv", [(1, 128, 128), (2048, 128, 128), (5, 64, 32), (3, 32, 96)])
def test_solve_is_the_unit_lower_triangular_solve(mats, dk, dv):
    """A = beta_i (K K^T)[i][t] exp(G_i - G_t) below the diagonal, then (I + A) [U | W] = [beta V | beta exp(G) K]
    solved in float64 by torch (solve_triangular) against the kernel's forward substitution in fp32."""
    _cuda()
    gen = torch.Generator(device="cuda").manual_seed(mats + dk + dv)
    c = 64
    k = torch.randn(mats, c, dk, device="cuda", generator=gen)
    k = k / k.norm(dim=-1, keepdim=True)
    v = torch.randn(mats, c, dv, device="cuda", generator=gen)
    cum = (-torch.rand(mats, c, device="cuda", generator=gen) * 0.3).cumsum(-1)
    beta = torch.rand(mats, c, device="cuda", generator=gen)
    kk = k @ k.transpose(-1, -2)
    assert solve_supported(kk, k, v, cum, beta) is None
    u, w = solve_chunks(kk, k, v, cum, beta)
    torch.cuda.synchronize()
    g, b = cum.double(), beta.double()
    a = b[:, :, None] * kk.double() * torch.exp(g[:, :, None] - g[:, None, :])
    lower = torch.eye(c, dtype=torch.float64, device="cuda") + a.tril(-1)
    rhs = torch.cat([b[..., None] * v.double(), (b * torch.exp(g))[..., None] * k.double()], dim=-1)
    want = torch.linalg.solve_triangular(lower, rhs, upper=False, unitriangular=True)
    got = torch.cat([u, w], dim=-1).double()
    assert float((got - want).abs().max() / want.abs().max()) < 1e-5


def test_chunked_delta_rule_with_the_scan_is_the_recurrence():
    """Qwen3-Next's head dims (128 x 128) over 3 chunks and a tail, one sequence and two heads, on the GPU (the
    solve and scan kernels between torch's products)."""
    _cuda()
    from kvplan.gpu.deltanet import CHUNK, chunked_delta_rule

    gen = torch.Generator(device="cuda").manual_seed(11)
    r, n, h, d = 1, 3 * CHUNK + 9, 2, 128
    q = torch.randn(r, n, h, d, device="cuda", generator=gen) / math.sqrt(d)
    k = torch.randn(r, n, h, d, device="cuda", generator=gen)
    k = k / k.norm(dim=-1, keepdim=True)
    v = torch.randn(r, n, h, d, device="cuda", generator=gen)
    g = -torch.rand(r, n, h, device="cuda", generator=gen) * 0.2
    beta = torch.rand(r, n, h, device="cuda", generator=gen)
    s0 = torch.randn(r, h, d, d, device="cuda", generator=gen) * 0.1
    out, s = chunked_delta_rule(q, k, v, g, beta, s0.clone())
    state = s0[0].double().clone()  # [h, dk, dv]
    want = torch.empty(n, h, d, dtype=torch.float64, device="cuda")
    for t in range(n):  # S <- a S;  S <- S + k (beta (v - S^T k))^T;  o = S^T q
        kk, vv = k[0, t].double(), v[0, t].double()
        state = state * torch.exp(g[0, t].double())[:, None, None]
        delta = beta[0, t].double()[:, None] * (vv - (kk[:, None, :] @ state)[:, 0])
        state = state + kk[:, :, None] * delta[:, None, :]
        want[t] = (q[0, t].double()[:, None, :] @ state)[:, 0]
    # the chunks' matmuls run in TF32 on a GPU (10-bit mantissas: ~1e-3 relative), the recurrence in fp32
    assert float((out[0].double() - want).abs().max() / want.abs().max()) < 5e-3
    assert float((s[0].double() - state).abs().max() / state.abs().max()) < 5e-3


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("tokens,k,h,shared", [(1, 1, 8, None), (257, 10, 2048, None), (33, 6, 136, "plain"),
                                               (64, 4, 2880, "gated")])
def test_gather_sum_is_each_tokens_weighted_rows(dtype, tokens, k, h, shared):
    _cuda()
    gen = torch.Generator(device="cuda").manual_seed(tokens + k + h)
    pairs = tokens * k
    y = torch.randn(pairs + 5, h, device="cuda", generator=gen).to(dtype)  # 5 rows no pair points at
    where = torch.randperm(pairs + 5, device="cuda", generator=gen)[:pairs]
    weights = torch.rand(tokens, k, device="cuda", generator=gen)
    extra = gate = None
    if shared:
        extra = torch.randn(tokens, h, device="cuda", generator=gen).to(dtype)
    if shared == "gated":  # the gate as the last column of a joint router output: a strided [T, 1] view
        joint = torch.randn(tokens, 9, device="cuda", generator=gen).to(dtype)
        gate = joint[:, 8:]
    assert gather_sum_supported(y, where, weights, extra, gate) is None
    got = gather_sum(y, where, weights, extra, gate)
    want = torch.zeros(tokens, h, dtype=torch.float64, device="cuda")
    for j in range(k):
        want += weights[:, j, None].double() * y[where.view(tokens, k)[:, j]].double()
    if extra is not None:
        s = torch.sigmoid(gate.double()).view(tokens, 1) if gate is not None else 1.0
        want += extra.double() * s
    assert got.dtype == dtype and got.shape == (tokens, h)
    tol = 8e-3 if dtype == torch.bfloat16 else 1e-3  # one rounding of the fp32 sum to the output dtype
    assert float((got.double() - want).abs().max() / want.abs().max()) < tol


def test_gather_sum_refuses_what_it_does_not_take():
    _cuda()
    y = torch.zeros(8, 12, device="cuda", dtype=torch.bfloat16)
    w = torch.zeros(4, 2, device="cuda")
    where = torch.arange(8, device="cuda")
    assert "multiple of 8" in gather_sum_supported(y, where, w)
    y = torch.zeros(8, 16, device="cuda", dtype=torch.bfloat16)
    assert "int64" in gather_sum_supported(y, where.int(), w)
    assert "float32" in gather_sum_supported(y, where, w.half())
    assert "shared expert's rows" in gather_sum_supported(y, where, w, torch.zeros(4, 16, device="cuda"))


def _tiny_qwen3_next():
    """The tiny Qwen3-Next of the GPU forward tests with DeltaNet heads of 128 x 128 (the prefill kernels' shape),
    bf16, on the GPU, its state slots zeroed."""
    from tiny_models import TINY

    from kvplan.gpu.caches import small_caches
    from kvplan.gpu.model import Runtime, Transformer
    from kvplan.gpu.weights import engine_layout, full_weights
    from kvplan.model import parse_config
    from kvplan.verify.arch import architecture

    raw = dict(TINY["qwen3_next"], head_dim=64, hidden_size=128, linear_key_head_dim=128, linear_value_head_dim=128)
    arch = architecture(raw, parse_config(raw, "qwen3_next"), 1)
    full = full_weights(arch, seed=3)
    model = Transformer(arch, engine_layout({k: v.to("cuda", torch.bfloat16 if v.is_floating_point() else v.dtype)
                                             for k, v in full.items()}), Runtime("cuda"))
    model.caches = small_caches(arch, 64, 16, 2, torch.bfloat16, "cuda")
    for c in model.caches.values():
        if c.kind == "state":
            c.tensors[0].zero_()
    return arch, model


def test_deltanet_prefill_kernels_give_the_torch_forms_logits_and_states(monkeypatch):
    """Two prompts of 150 tokens (chunks of 64, 64 and a padded 22) through the tiny Qwen3-Next, the DeltaNet
    prefill kernels against their torch forms (each refused): the same last logits and stored states, up to the
    bf16 roundings of the layers' outputs."""
    _cuda()
    from kvplan.gpu.generate import prefill

    gen = torch.Generator().manual_seed(5)
    arch, _ = _tiny_qwen3_next()
    tokens = torch.randint(0, arch.vocab, (2, 150), generator=gen).cuda()
    results = []
    for refuse in (False, True):
        if refuse:
            for name in ("conv_chunks_supported", "scan_supported", "gated_norm_supported"):
                monkeypatch.setattr(f"kvplan.kernels.deltanet_prefill.{name}", lambda *a: "refused by the test")
        _, model = _tiny_qwen3_next()
        groups = {c.group for c in model.caches.values() if c.kind != "state"}
        tables = {g: [list(range(0, 10)), list(range(10, 20))] for g in groups}
        logits = prefill(model, tokens, tables, torch.tensor([0, 1], device="cuda")).float()
        states = [c.tensors[0][:2].float() for c in model.caches.values() if c.kind == "state"]
        results.append((logits, states))
    (got, got_states), (want, want_states) = results
    assert float((got - want).abs().max() / want.abs().max()) < 2e-2
    assert want_states and all(float((a - b).abs().max() / b.abs().max()) < 2e-2
                               for a, b in zip(got_states, want_states))
