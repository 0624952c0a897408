"""The skinny GEMM / MoE pairs kernel against float64 torch references on fresh random data (GPU only).

Outputs are poisoned with NaN before each call; shapes are odd (rows not a multiple of the 32-row tile, k not a
multiple of the 64-value step); the k split is exercised forced and chosen, twice in a row (the workspace and
counters must come back zeroed), and inside a CUDA graph.
"""

import os

import pytest

torch = pytest.importorskip("torch")

if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

from kvplan.kernels.skinny import (  # noqa: E402
    dequantize_block_fp8,
    moe_pairs_plan,
    reference_moe_pairs,
    reference_skinny_gemm,
    skinny_gemm_plan,
)
from kvplan.gpu.weights import dequantize_mxfp4  # noqa: E402
from kvplan.kernels.skinny_config import SWEEP  # noqa: E402

DEV = torch.device("cuda")
SEED = int.from_bytes(os.urandom(4), "little")
GEN = torch.Generator(device=DEV).manual_seed(SEED)
print(f"test_skinny_gpu seed {SEED}")


def randn(*shape, dtype=torch.bfloat16, scale=1.0):
    return (torch.randn(*shape, device=DEV, generator=GEN) * scale).to(dtype)


def assert_close(got, ref, tol, what):
    """Per output row (token) relative error, so that one wrong token cannot hide in the others' norm."""
    assert torch.isfinite(got).all(), f"{what}: NaN/Inf (seed {SEED})"
    diff = (got.double() - ref).norm(dim=-1)
    rel = diff / ref.norm(dim=-1).clamp_min(1e-30)
    assert float(rel.max()) <= tol, f"{what}: rel err {float(rel.max()):.3g} at row {int(rel.argmax())} (seed {SEED})"


@pytest.mark.parametrize("unroll", [None, 4])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("n, k", [(1001, 1000), (96, 8), (4096, 4096)])
def test_dense_every_batch(dtype, n, k, unroll):
    w = randn(n, k, dtype=dtype, scale=k ** -0.5)
    plan = skinny_gemm_plan(n, k, dtype, max_batch=16, unroll=unroll)
    for b in list(range(1, 9)) + [11, 16]:
        x = randn(b, k, dtype=dtype)
        out = torch.full((b, n), float("nan"), dtype=dtype, device=DEV)
        got = plan.run(x, w, out=out)
        assert got.data_ptr() == out.data_ptr()
        assert_close(got, reference_skinny_gemm(x, w), 1e-2, f"dense {n}x{k} batch {b}")


@pytest.mark.parametrize("ksplit", [2, 5, None])
def test_dense_split_k_twice(ksplit):
    n, k = 200, 8192  # 7 row tiles: the plan's own choice splits k too
    w = randn(n, k, scale=k ** -0.5)
    plan = skinny_gemm_plan(n, k, torch.bfloat16, max_batch=8, ksplit=ksplit)
    if ksplit is None:
        assert plan.ksplits[1] > 1
    for _ in range(2):
        for b in (1, 3, 8):
            x = randn(b, k)
            assert_close(plan.run(x, w), reference_skinny_gemm(x, w), 1e-2, f"split {plan.ksplits[b]} batch {b}")


@pytest.mark.parametrize("variant", [v for v in SWEEP if v != "u2"])
def test_dense_sweep_variants_split_k_twice(variant):
    """Every variant the benchmark sweeps, on shapes whose k is not a multiple of its step, k split forced and
    chosen, twice (the workspace must come back zeroed)."""
    for n, k, ksplit in ((200, 8200, None), (1001, 3000, 3), (64, 136, None)):
        w = randn(n, k, scale=k ** -0.5)
        plan = skinny_gemm_plan(n, k, torch.bfloat16, max_batch=16, ksplit=ksplit, **SWEEP[variant])
        for _ in range(2):
            for b in (1, 5, 8, 16):
                x = randn(b, k)
                assert_close(plan.run(x, w), reference_skinny_gemm(x, w), 1e-2,
                             f"{variant} {n}x{k} split {plan.ksplits[b]} batch {b}")


def test_dense_bad_run_arguments():
    plan = skinny_gemm_plan(256, 512, torch.bfloat16, max_batch=4)
    w = randn(256, 512)
    with pytest.raises(ValueError, match="x has 5 rows"):
        plan.run(randn(5, 512), w)
    with pytest.raises(ValueError, match="w must have shape"):
        plan.run(randn(2, 512), randn(255, 512))
    with pytest.raises(ValueError, match="x must be bfloat16"):
        plan.run(randn(2, 512, dtype=torch.float16), w)
    with pytest.raises(ValueError, match="contiguous"):
        plan.run(randn(512, 2).t(), w)


def _moe_case(experts, hidden, inter, top_k, tokens, ids=None, dtype=torch.bfloat16):
    x = randn(tokens, hidden, dtype=dtype)
    w13 = randn(experts, 2 * inter, hidden, dtype=dtype, scale=hidden ** -0.5)
    w2 = randn(experts, hidden, inter, dtype=dtype, scale=inter ** -0.5)
    if ids is None:
        ids = torch.rand(tokens, experts, device=DEV, generator=GEN).topk(top_k, dim=-1).indices
    weights = torch.rand(tokens, top_k, device=DEV, generator=GEN)
    return x, weights, ids, w13, w2


@pytest.mark.parametrize("unroll", [None, 4])
@pytest.mark.parametrize("activation", ["silu", "gelu_tanh"])
@pytest.mark.parametrize("tokens", [1, 3, 8, 9, 16])
def test_moe_pairs_random_routing(tokens, activation, unroll):
    experts, hidden, inter, top_k = 8, 264, 136, 2  # rows not a multiple of the tiles
    x, weights, ids, w13, w2 = _moe_case(experts, hidden, inter, top_k, tokens)
    plan = moe_pairs_plan(experts, hidden, inter, top_k, max_tokens=16, activation=activation, unroll=unroll)
    out = torch.full_like(x, float("nan"))
    got = plan.run(x, weights, ids, w13, w2, out=out)
    assert_close(got, reference_moe_pairs(x, weights, ids, w13, w2, activation), 2e-2, f"moe T={tokens}")


@pytest.mark.parametrize("tokens", [1, 3, 9, 16, 40, 150])
def test_moe_pairs_non_gated_relu2(tokens):
    """Nemotron-H's experts: one up projection, squared ReLU, down (mode 3); pair slots up to 16 tokens, by expert
    (a row tile per warp) above; a shared expert's rows added in the combine."""
    experts, hidden, inter, top_k = 8, 264, 136, 2
    x, weights, ids, _, w2 = _moe_case(experts, hidden, inter, top_k, tokens)
    w13 = randn(experts, inter, hidden, scale=hidden ** -0.5)
    shared = randn(tokens, hidden)
    plan = moe_pairs_plan(experts, hidden, inter, top_k, max_tokens=16, activation="relu2", gated=False)
    for _ in range(2):
        got = plan.run(x, weights, ids, w13, w2, out=torch.full_like(x, float("nan")), shared=shared)
        want = reference_moe_pairs(x, weights, ids, w13, w2, "relu2") + shared.double()
        assert_close(got, want, 2e-2, f"relu2 experts T={tokens}")
    with pytest.raises(ValueError, match="w13"):
        plan.run(x, weights, ids, randn(experts, 2 * inter, hidden), w2)


@pytest.mark.parametrize("tokens, gated", [(1, True), (3, False), (9, True), (40, True)])
def test_moe_pairs_with_a_shared_expert(tokens, gated):
    """The combine launch adds a shared expert's output, times sigmoid of its gate (Qwen) or as is (DeepSeek);
    40 tokens (more than the plan's 16 pair slots) take the by-expert launches."""
    experts, hidden, inter, top_k = 8, 264, 136, 2
    x, weights, ids, w13, w2 = _moe_case(experts, hidden, inter, top_k, tokens)
    shared = randn(tokens, hidden)
    gate = randn(tokens, 1, scale=2.0) if gated else None
    plan = moe_pairs_plan(experts, hidden, inter, top_k, max_tokens=16)
    got = plan.run(x, weights, ids, w13, w2, out=torch.full_like(x, float("nan")), shared=shared, shared_gate=gate)
    factor = torch.sigmoid(gate.double()) if gated else 1.0
    want = reference_moe_pairs(x, weights, ids, w13, w2) + shared.double() * factor
    assert_close(got, want, 2e-2, f"shared expert T={tokens} gated={gated}")
    with pytest.raises(ValueError, match="shared_gate must be"):
        plan.run(x, weights, ids, w13, w2, shared=shared, shared_gate=randn(tokens, 2))


@pytest.mark.parametrize("tokens", [1, 5, 16])
def test_moe_pairs_every_token_on_the_same_experts(tokens):
    """Repeated experts: all tokens pick experts 3 and 1 (16 columns of one expert in one CTA at 16 tokens)."""
    experts, hidden, inter, top_k = 6, 512, 256, 2
    ids = torch.tensor([[3, 1]] * tokens, device=DEV)
    x, weights, ids, w13, w2 = _moe_case(experts, hidden, inter, top_k, tokens, ids=ids)
    plan = moe_pairs_plan(experts, hidden, inter, top_k, max_tokens=16)
    assert_close(plan.run(x, weights, ids, w13, w2), reference_moe_pairs(x, weights, ids, w13, w2), 2e-2,
                 f"same experts T={tokens}")


@pytest.mark.parametrize("ksplit", [1, 3])
def test_moe_pairs_fp16_deepseek_like(ksplit):
    experts, hidden, inter, top_k = 64, 2048, 1408, 6
    for tokens in (1, 4):
        x, weights, ids, w13, w2 = _moe_case(experts, hidden, inter, top_k, tokens, dtype=torch.float16)
        plan = moe_pairs_plan(experts, hidden, inter, top_k, max_tokens=4, dtype=torch.float16,
                              weight_format="fp16", ksplit=ksplit)
        for _ in range(2):
            assert_close(plan.run(x, weights, ids, w13, w2), reference_moe_pairs(x, weights, ids, w13, w2), 2e-2,
                         f"fp16 T={tokens} ksplit {ksplit}")


def _mxfp4(experts, rows, cols, scale_range):
    blocks = torch.randint(0, 256, (experts, rows, cols // 2), dtype=torch.uint8, device=DEV, generator=GEN)
    scales = torch.randint(*scale_range, (experts, rows, cols // 32), dtype=torch.uint8, device=DEV, generator=GEN)
    return blocks, scales


@pytest.mark.parametrize("unroll", [None, 2])
@pytest.mark.parametrize("tokens", [1, 4, 12])
@pytest.mark.parametrize("scale_range", [(118, 125), (126, 132)])  # the second crosses 2^1 (the two-multiply path)
def test_moe_pairs_mxfp4(tokens, scale_range, unroll):
    experts, hidden, inter, top_k = 8, 320, 96, 4
    b13, s13 = _mxfp4(experts, 2 * inter, hidden, scale_range)
    b2, s2 = _mxfp4(experts, hidden, inter, scale_range)
    x = randn(tokens, hidden, scale=0.05)
    ids = torch.rand(tokens, experts, device=DEV, generator=GEN).topk(top_k, dim=-1).indices
    weights = torch.rand(tokens, top_k, device=DEV, generator=GEN)
    plan = moe_pairs_plan(experts, hidden, inter, top_k, max_tokens=16, weight_format="mxfp4", unroll=unroll)
    got = plan.run(x, weights, ids, (b13, s13), (b2, s2))
    w13 = dequantize_mxfp4(b13, s13, torch.float32)
    w2 = dequantize_mxfp4(b2, s2, torch.float32)
    assert_close(got, reference_moe_pairs(x, weights, ids, w13, w2), 2e-2,
                 f"mxfp4 T={tokens} scales {scale_range} unroll {unroll}")


def test_moe_bad_run_arguments():
    plan = moe_pairs_plan(4, 256, 64, 2, max_tokens=4)
    x, weights, ids, w13, w2 = _moe_case(4, 256, 64, 2, 2)
    with pytest.raises(ValueError, match="ids must be"):
        plan.run(x, weights, ids[:, :1], w13, w2)
    with pytest.raises(ValueError, match="w2 must have shape"):
        plan.run(x, weights, ids, w13, w2[:3])
    with pytest.raises(ValueError, match="x has no tokens"):
        plan.run(randn(0, 256), weights[:0], ids[:0], w13, w2)


@pytest.mark.parametrize("fmt, rows", [("bf16", False), ("bf16", None), ("mxfp4", None), ("mxfp4", False)])
@pytest.mark.parametrize("tokens, routing, tiles", [(17, "random", None), (40, "random", None),
                                                    (300, "random", None), (37, "same", None),
                                                    (150, "same", None), (150, "same", 2), (70, "same", 4),
                                                    (150, "chunks", None)])
def test_moe_by_expert_above_max_tokens(fmt, rows, tokens, routing, tiles, monkeypatch):
    """More tokens than the plan's pair slots: pairs sorted by expert, each expert's CTAs walk them 64 (tiles x 8)
    a pass with warps splitting k (rows=False), or with a row tile per warp (the default; 32 a pass, mxfp4 64 since
    session 64: 6 gate/up tiles and 10 down tiles leave warps idle in a CTA; k = 320 and 96 leave a partial last
    step of 256 values; an expert's passes dealt over ceil(T / 64) CTAs) ("same": every token on experts 3 and 1:
    37 columns of one expert fill part of one or two passes, 150 three or five, the last partial; "chunks": the
    launch pair repeated per 64 tokens)."""
    from kvplan.kernels import skinny_config as sc

    if routing == "chunks":
        monkeypatch.setattr(sc, "EXPERT_CHUNK_TOKENS", 64)
    experts, hidden, inter, top_k = 8, 320, 96, 2
    if fmt == "mxfp4":
        (b13, s13), (b2, s2) = _mxfp4(experts, 2 * inter, hidden, (118, 125)), _mxfp4(experts, hidden, inter,
                                                                                      (118, 125))
        w13_run, w2_run = (b13, s13), (b2, s2)
        w13, w2 = dequantize_mxfp4(b13, s13, torch.float32), dequantize_mxfp4(b2, s2, torch.float32)
        x = randn(tokens, hidden, scale=0.05)
    else:
        x, _, _, w13, w2 = _moe_case(experts, hidden, inter, top_k, tokens)
        w13_run, w2_run = w13, w2
    ids = (torch.tensor([[3, 1]] * tokens, device=DEV) if routing == "same" else
           torch.rand(tokens, experts, device=DEV, generator=GEN).topk(top_k, dim=-1).indices)
    weights = torch.rand(tokens, top_k, device=DEV, generator=GEN)
    plan = moe_pairs_plan(experts, hidden, inter, top_k, max_tokens=16, weight_format=fmt, expert_tiles=tiles,
                          expert_rows=rows)
    assert plan.expert_rows == (True if rows is None else rows)
    for _ in range(2):
        out = torch.full_like(x, float("nan"))
        got = plan.run(x, weights, ids, w13_run, w2_run, out=out)
        assert_close(got, reference_moe_pairs(x, weights, ids, w13, w2), 2e-2,
                     f"by expert {fmt} rows {plan.expert_rows} T={tokens} {routing} tiles {tiles}")



@pytest.mark.parametrize("tokens, joined, stages", [(150, 1, None), (150, 2, None), (33, 1, 2), (300, 1, 4),
                                                    (70, 0, 2), (200, 0, 4)])
def test_moe_row_tiles_with_joined_experts(tokens, joined, stages):
    """The row-tile kernel with the last `joined` experts taking every token (shared experts joined to the routed
    ones): their passes are dealt over ceil(T / 64) CTA rows launched first, every other expert is one CTA row
    walking all its passes; the weight ring at 2, 3 and 4 steps. Odd sizes: k = 328 and 72 leave a partial last
    step (zero-filled copies), n = 328 and 72 leave warps without a row tile."""
    experts, hidden, inter, top_k = 9, 328, 72, 3
    x, _, _, w13, w2 = _moe_case(experts, hidden, inter, top_k, tokens)
    routed = experts - joined
    ids = torch.rand(tokens, routed, device=DEV, generator=GEN).topk(top_k - joined, dim=-1).indices
    ids = torch.cat([ids, torch.arange(routed, experts, device=DEV).expand(tokens, joined)], 1).contiguous()
    weights = torch.rand(tokens, top_k, device=DEV, generator=GEN)
    plan = moe_pairs_plan(experts, hidden, inter, top_k, max_tokens=16, joined=joined, row_stages=stages)
    for _ in range(2):
        out = torch.full_like(x, float("nan"))
        got = plan.run(x, weights, ids, w13, w2, out=out)
        assert_close(got, reference_moe_pairs(x, weights, ids, w13, w2), 2e-2,
                     f"row tiles T={tokens} joined {joined} stages {stages}")

@pytest.mark.parametrize("tokens, joined, scale_range", [(150, 1, (118, 125)), (70, 0, (126, 132)),
                                                         (300, 1, (126, 132))])
def test_moe_mxfp4_row_tiles_joined_and_large_scales(tokens, joined, scale_range):
    """mxfp4 experts on row tiles (64 pairs a pass) with a joined expert taking every token (its passes dealt over
    ceil(T / 64) CTA rows: 150 tokens three passes, 300 five) and E8M0 scales past 2^1 (fp4_chunk's second multiply);
    k = 320 and 96 leave a partial last step of 256 values."""
    experts, hidden, inter, top_k = 9, 320, 96, 3
    (b13, s13), (b2, s2) = _mxfp4(experts, 2 * inter, hidden, scale_range), _mxfp4(experts, hidden, inter, scale_range)
    w13, w2 = dequantize_mxfp4(b13, s13, torch.float32), dequantize_mxfp4(b2, s2, torch.float32)
    x = randn(tokens, hidden, scale=0.05)
    routed = experts - joined
    ids = torch.rand(tokens, routed, device=DEV, generator=GEN).topk(top_k - joined, dim=-1).indices
    ids = torch.cat([ids, torch.arange(routed, experts, device=DEV).expand(tokens, joined)], 1).contiguous()
    weights = torch.rand(tokens, top_k, device=DEV, generator=GEN)
    plan = moe_pairs_plan(experts, hidden, inter, top_k, max_tokens=16, weight_format="mxfp4", joined=joined)
    assert plan.expert_rows
    out = torch.full_like(x, float("nan"))
    got = plan.run(x, weights, ids, (b13, s13), (b2, s2), out=out)
    assert_close(got, reference_moe_pairs(x, weights, ids, w13, w2), 2e-2,
                 f"mxfp4 row tiles T={tokens} joined {joined} scales {scale_range}")


def test_moe_by_expert_in_a_cuda_graph():
    """Sorting, counting and both launches capture (no host sync); replays see new routing."""
    experts, hidden, inter, top_k, tokens = 8, 256, 128, 2, 48
    x, weights, ids, w13, w2 = _moe_case(experts, hidden, inter, top_k, tokens)
    plan = moe_pairs_plan(experts, hidden, inter, top_k, max_tokens=16)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        plan.run(x, weights, ids, w13, w2)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = plan.run(x, weights, ids, w13, w2)
    for _ in range(3):
        x.copy_(randn(tokens, hidden))
        ids.copy_(torch.rand(tokens, experts, device=DEV, generator=GEN).topk(top_k, dim=-1).indices)
        weights.copy_(torch.rand(tokens, top_k, device=DEV, generator=GEN))
        graph.replay()
        assert_close(y, reference_moe_pairs(x, weights, ids, w13, w2), 2e-2, "by expert, graph replay")


def test_cuda_graph_capture_and_replay():
    n, k, b = 1000, 2048, 4
    w = randn(n, k, scale=k ** -0.5)
    dense = skinny_gemm_plan(n, k, torch.bfloat16, max_batch=8, ksplit=3)
    experts, hidden, inter, top_k, tokens = 8, 512, 128, 2, 4
    _, _, _, w13, w2 = _moe_case(experts, hidden, inter, top_k, tokens)
    moe = moe_pairs_plan(experts, hidden, inter, top_k, max_tokens=8, ksplit=2)
    x = randn(b, k)
    xm = randn(tokens, hidden)
    ids = torch.zeros(tokens, top_k, dtype=torch.int64, device=DEV)
    weights = torch.zeros(tokens, top_k, device=DEV)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        dense.run(x, w), moe.run(xm, weights, ids, w13, w2)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = dense.run(x, w)
        ym = moe.run(xm, weights, ids, w13, w2)
    for _ in range(3):  # new inputs in the captured buffers, then replay
        x.copy_(randn(b, k))
        xm.copy_(randn(tokens, hidden))
        ids.copy_(torch.rand(tokens, experts, device=DEV, generator=GEN).topk(top_k, dim=-1).indices)
        weights.copy_(torch.rand(tokens, top_k, device=DEV, generator=GEN))
        graph.replay()
        torch.cuda.synchronize()
        assert_close(y, reference_skinny_gemm(x, w), 1e-2, "graph dense")
        assert_close(ym, reference_moe_pairs(xm, weights, ids, w13, w2), 2e-2, "graph moe")


# ---------------------------------------------------------------------------------------------
# fp8 weights: e4m3 values with a float32 scale per 128 x 128 block (DeepSeek-V3/R1)
#
# Tolerances: the kernel applies a block's scale in bf16 (fp8_chunk): the scale is rounded to 8 significant bits (up
# to 2^-9 relative, the same error for a whole block: it does not average out) and so is each dequantised weight (a
# 4-bit times an 8-bit significand: up to 2^-9, random), and the output is bf16 (2^-9). A dense GEMM is therefore
# within ~3 x 2^-9 = 6e-3 of float64 at worst (1e-2); an MoE layer adds the gated stage (gate and up each, the bf16
# intermediate) to the down projection's, ~8 x 2^-9 = 1.6e-2 at worst (2e-2). The scales below are not powers of
# two, so these roundings happen (power-of-two scales would make the dequantisation exact). Seen on an H200 (2112 x
# 7168 and 7168 x 2048, batch 1 and 16): 2.8e-3 with these scales, 1.7e-3 with power-of-two ones (the output's own
# bf16 rounding, to the digit).
FP8_DENSE_TOL, FP8_MOE_TOL = 1e-2, 2e-2


def _fp8(*shape, scale_range=(0.5 * 2 ** -8, 2.0 * 2 ** -8), any_code=False):
    """(values, scales) of block-scaled fp8 weights [*lead, rows, cols]: e4m3 values of N(0, 1) x 32 (or, any_code,
    every finite e4m3 code: zeros, subnormals, +-448), scales [*lead, ceil(rows / 128), cols / 128] uniform in
    scale_range (almost surely not powers of two)."""
    *lead, rows, cols = shape
    if any_code:
        codes = torch.randint(0, 256, shape, dtype=torch.uint8, device=DEV, generator=GEN)
        q = torch.where((codes & 0x7F) == 0x7F, codes ^ 0x01, codes).view(torch.float8_e4m3fn)  # no NaN
    else:
        q = (torch.randn(*shape, device=DEV, generator=GEN) * 32).clamp(-448, 448).to(torch.float8_e4m3fn)
    lo, hi = scale_range
    s = lo + (hi - lo) * torch.rand(*lead, -(-rows // 128), cols // 128, device=DEV, generator=GEN)
    return q, s


def _routing(tokens, experts, top_k, joined=0):
    """ids [T, top_k]: top_k - joined distinct routed experts a token, then the last `joined` experts (every token)."""
    routed = experts - joined
    ids = torch.rand(tokens, routed, device=DEV, generator=GEN).topk(top_k - joined, dim=-1).indices
    return torch.cat([ids, torch.arange(routed, experts, device=DEV).expand(tokens, joined)], 1).contiguous()


FP8_LAYERS = {  # experts, hidden, intermediate, top_k, joined
    "small": (8, 512, 256, 2, 0),
    "three blocks": (16, 512, 384, 8, 0),  # intermediate 384: 3 blocks; 16 tokens x 8 over 16 experts: repeats
    "joined": (9, 512, 256, 3, 1),  # a shared expert joined as the last expert, on every token
    "deepseek hidden": (4, 7168, 256, 2, 0),  # k = 7168 (56 blocks) in the gated stage, 7168 rows in the down one
}


def _fp8_moe_runs(layer, tokens, what, **options):
    """One fp8 MoE layer of FP8_LAYERS at `tokens` tokens, run twice (a split k must leave workspace and counters
    zeroed) against the float64 reference over the dequantised experts; returns the plan."""
    experts, hidden, inter, top_k, joined = FP8_LAYERS[layer]
    (q13, s13), (q2, s2) = _fp8(experts, 2 * inter, hidden), _fp8(experts, hidden, inter)
    x = randn(tokens, hidden)
    ids = _routing(tokens, experts, top_k, joined)
    weights = torch.rand(tokens, top_k, device=DEV, generator=GEN)
    plan = moe_pairs_plan(experts, hidden, inter, top_k, max_tokens=16, weight_format="fp8", joined=joined, **options)
    want = reference_moe_pairs(x, weights, ids, dequantize_block_fp8(q13, s13), dequantize_block_fp8(q2, s2))
    for _ in range(2):
        got = plan.run(x, weights, ids, (q13, s13), (q2, s2), out=torch.full_like(x, float("nan")))
        assert_close(got, want, FP8_MOE_TOL, f"fp8 {what} {layer} T={tokens}")
    return plan


@pytest.mark.parametrize("layer", list(FP8_LAYERS))
@pytest.mark.parametrize("tokens", [1, 3, 8, 16])
def test_moe_pairs_fp8(layer, tokens):
    """Pair slots (1..16 tokens), gated SiLU."""
    _fp8_moe_runs(layer, tokens, "pair slots")


@pytest.mark.parametrize("tokens, layer", [(17, "three blocks"), (100, "three blocks"), (100, "joined"),
                                           (17, "deepseek hidden"), (300, "joined"), (84, "deepseek hidden")])
def test_moe_by_expert_rows_fp8(tokens, layer):
    """The row-tile kernel for fp8 experts (kvp_skinny_fp8_er, the default above the pair slots): a warp's 32 rows
    over the whole k, each 16-value chunk dequantised by its block's scale; three blocks of k, a joined expert's
    passes spread over CTA rows (300 tokens), DeepSeek-V3's hidden of 7,168 (56 blocks) at its max concurrency."""
    assert _fp8_moe_runs(layer, tokens, "row tiles").expert_rows


@pytest.mark.parametrize("tokens, layer", [(17, "three blocks"), (100, "three blocks"), (100, "joined"),
                                           (17, "deepseek hidden")])
def test_moe_by_expert_fp8(tokens, layer):
    """More tokens than the pair slots, asked for the k-split by-expert kernel (kvp_skinny_fp8_e), 64 pairs a pass."""
    assert not _fp8_moe_runs(layer, tokens, "by expert", expert_rows=False).expert_rows


@pytest.mark.parametrize("tokens", [2, 40])
def test_moe_fp8_non_gated_and_bad_weights(tokens):
    """A non-gated fp8 layer (one up projection, relu2: rows of the up matrix only), pair slots and by expert; and
    weights that do not match the plan are refused by name."""
    experts, hidden, inter, top_k = 8, 256, 384, 2
    (q1, s1), (q2, s2) = _fp8(experts, inter, hidden), _fp8(experts, hidden, inter)
    x = randn(tokens, hidden)
    ids = _routing(tokens, experts, top_k)
    weights = torch.rand(tokens, top_k, device=DEV, generator=GEN)
    plan = moe_pairs_plan(experts, hidden, inter, top_k, weight_format="fp8", activation="relu2", gated=False)
    want = reference_moe_pairs(x, weights, ids, dequantize_block_fp8(q1, s1), dequantize_block_fp8(q2, s2), "relu2")
    got = plan.run(x, weights, ids, (q1, s1), (q2, s2), out=torch.full_like(x, float("nan")))
    assert_close(got, want, FP8_MOE_TOL, f"fp8 relu2 T={tokens}")
    with pytest.raises(ValueError, match="w13 must be \\(values, scales\\)"):
        plan.run(x, weights, ids, q1, (q2, s2))
    with pytest.raises(ValueError, match="w2 scales must be a float32 tensor of shape \\(8, 2, 3\\)"):
        plan.run(x, weights, ids, (q1, s1), (q2, s2[:, :1].contiguous()))
    with pytest.raises(ValueError, match="w13 values must be a float8_e4m3fn tensor of shape \\(8, 384, 256\\)"):
        plan.run(x, weights, ids, _fp8(experts, 2 * inter, hidden), (q2, s2))


@pytest.mark.parametrize("n, k", [(2112, 7168), (7168, 2048)])
def test_dense_fp8(n, k):
    """DeepSeek-V3's fused q_a / kv_a projection (2112 rows: 16.5 row blocks, the last one partial) and a 7168-row
    projection of k = 2048, at batch 1, 4 and 16, twice (split k)."""
    q, s = _fp8(n, k)
    plan = skinny_gemm_plan(n, k, torch.bfloat16, max_batch=16, weight_format="fp8")
    w = dequantize_block_fp8(q, s)
    for _ in range(2):
        for b in (1, 4, 16):
            x = randn(b, k)
            out = torch.full((b, n), float("nan"), dtype=torch.bfloat16, device=DEV)
            got = plan.run(x, (q, s), out=out)
            assert got.data_ptr() == out.data_ptr()
            assert_close(got, reference_skinny_gemm(x, w), FP8_DENSE_TOL, f"dense fp8 {n}x{k} batch {b} split "
                                                                          f"{plan.ksplits[b]}")


def test_dense_fp8_every_code_and_large_scales():
    """Every finite e4m3 code (zeros, subnormals: bf16 multiplies keep them) and scales from 2^4 to 2^9.3 (those from
    2^7 take fp8_chunk's second factor); rows not a multiple of the 32-row tile, unroll 1 (a step of half a block)."""
    n, k = 200, 384
    q, s = _fp8(n, k, scale_range=(64.0, 512.0), any_code=True)
    s[:, 0] /= 4  # below 2^7: one factor
    s[:, 1] += 128  # from 2^7: two
    w = dequantize_block_fp8(q, s)
    for unroll in (None, 1):
        plan = skinny_gemm_plan(n, k, torch.bfloat16, max_batch=8, weight_format="fp8", unroll=unroll)
        for b in (1, 8):
            x = randn(b, k, scale=2 ** -10)
            assert_close(plan.run(x, (q, s)), reference_skinny_gemm(x, w), FP8_DENSE_TOL,
                         f"dense fp8 every code, unroll {unroll} batch {b}")
    with pytest.raises(ValueError, match="w values must be a float8_e4m3fn tensor"):
        plan.run(randn(1, k), (q.view(torch.uint8), s))
    with pytest.raises(ValueError, match="w must be \\(values, scales\\)"):
        plan.run(randn(1, k), q)


def test_fp8_in_a_cuda_graph():
    """A dense fp8 launch (k split) and an fp8 MoE layer (pair slots) captured, replayed with new inputs."""
    n, k, b = 2112, 1024, 4
    q, s = _fp8(n, k)
    dense = skinny_gemm_plan(n, k, torch.bfloat16, max_batch=8, ksplit=2, weight_format="fp8")
    experts, hidden, inter, top_k, tokens = 8, 512, 256, 2, 4
    w13, w2 = _fp8(experts, 2 * inter, hidden), _fp8(experts, hidden, inter)
    moe = moe_pairs_plan(experts, hidden, inter, top_k, max_tokens=8, weight_format="fp8")
    x, xm = randn(b, k), randn(tokens, hidden)
    ids = torch.zeros(tokens, top_k, dtype=torch.int64, device=DEV)
    weights = torch.zeros(tokens, top_k, device=DEV)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        dense.run(x, (q, s)), moe.run(xm, weights, ids, w13, w2)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = dense.run(x, (q, s))
        ym = moe.run(xm, weights, ids, w13, w2)
    w, w13d, w2d = dequantize_block_fp8(q, s), dequantize_block_fp8(*w13), dequantize_block_fp8(*w2)
    for _ in range(3):
        x.copy_(randn(b, k))
        xm.copy_(randn(tokens, hidden))
        ids.copy_(_routing(tokens, experts, top_k))
        weights.copy_(torch.rand(tokens, top_k, device=DEV, generator=GEN))
        graph.replay()
        torch.cuda.synchronize()
        assert_close(y, reference_skinny_gemm(x, w), FP8_DENSE_TOL, "graph dense fp8")
        assert_close(ym, reference_moe_pairs(xm, weights, ids, w13d, w2d), FP8_MOE_TOL, "graph moe fp8")
