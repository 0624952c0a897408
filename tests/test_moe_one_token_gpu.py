"""An MoE layer's experts at one token through the streaming GEMV's gather form (kvplan/kernels/moe_one_token.py),
against float64 on fresh random data (GPU only, sm_90): the bundled models' expert shapes (GLM-4.7-Flash, Qwen3-Next
at tp 2, DeepSeek-V2-Lite, Mixtral at tp 2, Nemotron-3-Nano's ungated experts, DeepSeek-V3's block-scaled e4m3 at
tp 8), each run twice (the workspaces come back zeroed), an expert id past the experts (reads zeros), and a CUDA
graph replayed after the router's ids and weights change in place (the kernel reads them at run time)."""

import os

import pytest

torch = pytest.importorskip("torch")

if not torch.cuda.is_available() or torch.cuda.get_device_capability() != (9, 0):
    pytest.skip("needs an sm_90 GPU (the streaming GEMV's TMA copies)", allow_module_level=True)

from kvplan.kernels.moe_one_token import one_token_moe_plan  # noqa: E402

DEV = torch.device("cuda")
SEED = int.from_bytes(os.urandom(4), "little")
GEN = torch.Generator(device=DEV).manual_seed(SEED)
print(f"test_moe_one_token_gpu seed {SEED}")


def randn(*shape, scale=1.0):
    return torch.randn(*shape, device=DEV, generator=GEN) * scale


def route(experts, pairs):
    ids = torch.randperm(experts, device=DEV, generator=GEN)[:pairs].to(torch.int32).view(1, pairs)
    return torch.softmax(randn(1, pairs), -1), ids


def act64(name, g):
    if name == "silu":
        return g / (1 + torch.exp(-g))
    if name == "gelu_tanh":
        return 0.5 * g * (1 + torch.tanh(0.7978845608028654 * (g + 0.044715 * g ** 3)))
    return torch.relu(g) ** 2


def reference(x64, wts, ids, w13, w2, activation, gated, experts, quant_h=None, dtype=torch.bfloat16):
    """sum_j wts[j] W2[e_j] act(W13[e_j] x) in float64 (an id past the experts adds nothing), rounded where the
    kernels round: the gate/up output and act(gate) to `dtype`, the activations too (then quantised by `quant_h`
    where given: fp8), so that an e4m3 rounding boundary sits where the kernels' does."""
    def rnd(t):
        return t.to(dtype).double()

    hs, wjs, es = [], [], []
    for j, e in enumerate(ids.view(-1).tolist()):
        if e >= experts:
            continue
        y = rnd(w13[e] @ x64.view(-1))
        inter = w2.shape[-1]
        h = rnd(act64(activation, y[:inter])) * y[inter:] if gated else act64(activation, y)
        hs.append(h), wjs.append(float(wts.view(-1)[j])), es.append(e)
    if not hs:
        return torch.zeros(1, w2.shape[1], dtype=torch.float64, device=DEV)
    h = torch.stack(hs).to(dtype)
    if quant_h is not None:
        h = quant_h(h)
    else:
        h = h.double()
    return sum(wj * (w2[e] @ h[i]) for i, (wj, e) in enumerate(zip(wjs, es))).view(1, -1)


def assert_close(got, ref, tol, what):
    assert torch.isfinite(got).all(), f"{what}: NaN/Inf (seed {SEED})"
    rel = float((got.double() - ref).norm() / ref.norm().clamp_min(1e-30))
    assert rel <= tol, f"{what}: rel err {rel:.3g} (seed {SEED})"


SHAPES = {  # experts (a joined shared one included), hidden, intermediate, pairs, activation, gated
    "GLM-4.7-Flash": (65, 2048, 1536, 5, "silu", True),
    "Qwen3-Next tp 2": (513, 2048, 256, 11, "silu", True),
    "DeepSeek-V2-Lite": (66, 2048, 1408, 8, "silu", True),
    "Mixtral tp 2": (8, 4096, 7168, 2, "silu", True),
    "gelu, tiny": (3, 128, 64, 3, "gelu_tanh", True),
    "Nemotron-3-Nano (relu2, no gate)": (129, 2688, 1856, 7, "relu2", False),
}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", list(SHAPES))
def test_16bit_experts_twice(name, dtype):
    e, hidden, inter, pairs, activation, gated = SHAPES[name]
    up = (2 if gated else 1) * inter
    w13 = (randn(e, up, hidden, scale=hidden ** -0.5)).to(dtype)
    w2 = (randn(e, hidden, inter, scale=inter ** -0.5)).to(dtype)
    plan = one_token_moe_plan(e, hidden, inter, pairs, dtype, activation=activation, gated=gated, device=0)
    for rep in range(2):
        x = randn(1, hidden).to(dtype)
        wts, ids = route(e, pairs)
        ref = reference(x.double(), wts, ids, w13.double(), w2.double(), activation, gated, e, dtype=dtype)
        out = torch.full((1, hidden), float("nan"), dtype=dtype, device=DEV)
        got = plan.run(x, wts, ids, w13, w2, out=out)
        assert got is out
        assert_close(got, ref, 5e-3, f"{name} {dtype} run {rep}")


def test_an_id_past_the_experts_adds_nothing():
    e, hidden, inter, pairs = 4, 256, 128, 3
    w13 = randn(e, 2 * inter, hidden, scale=hidden ** -0.5).bfloat16()
    w2 = randn(e, hidden, inter, scale=inter ** -0.5).bfloat16()
    plan = one_token_moe_plan(e, hidden, inter, pairs, torch.bfloat16, device=0)
    x = randn(1, hidden).bfloat16()
    wts = torch.tensor([[0.5, 0.3, 0.2]], device=DEV)
    ids = torch.tensor([[2, 7, 0]], dtype=torch.int32, device=DEV)
    ref = reference(x.double(), wts, ids, w13.double(), w2.double(), "silu", True, e)
    assert_close(plan.run(x, wts, ids, w13, w2), ref, 1e-2, "id 7 of 4 experts")


def test_block_scaled_e4m3_experts_as_deepseek_v3_at_tp8():
    """257 experts (256 + the joined shared one) of [512, 7168] and [7168, 256] e4m3 with a float32 scale per 128 x
    128 block drawn over a factor of 16; x and the activations quantised per 128 values by the bundled group
    kernel, the reference's activations by the same kernel from its own float64 values."""
    from kvplan.kernels.fp8_quant import fp8_group_quant

    e, hidden, inter, pairs = 257, 7168, 256, 9

    def fp8(rows, cols):
        q = (randn(e, rows, cols) * 32).clamp(-448, 448).to(torch.float8_e4m3fn)
        s = torch.exp2(torch.rand(e, rows // 128, cols // 128, device=DEV, generator=GEN) * 4 - 12)
        return q, s, q.double() * s.double().repeat_interleave(128, 1).repeat_interleave(128, 2)

    q13, s13, w13 = fp8(2 * inter, hidden)
    q2, s2, w2 = fp8(hidden, inter)

    def dequant(x):
        q, s = fp8_group_quant(x)
        return q.double() * s.double().repeat_interleave(128, 1)

    plan = one_token_moe_plan(e, hidden, inter, pairs, torch.bfloat16, weight_format="fp8", device=0)
    for rep in range(2):
        x = randn(1, hidden).bfloat16()
        wts, ids = route(e, pairs)
        ref = reference(dequant(x), wts, ids, w13, w2, "silu", True, e,
                        quant_h=lambda h: dequant(h.reshape(1, -1)).view(h.shape))
        assert_close(plan.run(x, wts, ids, (q13, s13), (q2, s2)), ref, 5e-3, f"DeepSeek-V3 fp8 run {rep}")


def test_a_graph_reads_the_routers_ids_and_weights_at_run_time():
    e, hidden, inter, pairs = 65, 2048, 1536, 5
    w13 = randn(e, 2 * inter, hidden, scale=hidden ** -0.5).bfloat16()
    w2 = randn(e, hidden, inter, scale=inter ** -0.5).bfloat16()
    plan = one_token_moe_plan(e, hidden, inter, pairs, torch.bfloat16, device=0)
    x = randn(1, hidden).bfloat16()
    wts, ids = route(e, pairs)
    out = torch.empty(1, hidden, dtype=torch.bfloat16, device=DEV)
    plan.run(x, wts, ids, w13, w2, out=out)  # compile and encode outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        plan.run(x, wts, ids, w13, w2, out=out)
    for rep in range(3):
        new_wts, new_ids = route(e, pairs)
        wts.copy_(new_wts), ids.copy_(new_ids), x.copy_(randn(1, hidden).bfloat16())
        graph.replay()
        torch.cuda.synchronize()
        ref = reference(x.double(), wts, ids, w13.double(), w2.double(), "silu", True, e)
        assert_close(out, ref, 1e-2, f"graph replay {rep}")


def test_bad_arguments_name_them():
    plan = one_token_moe_plan(8, 256, 128, 2, torch.bfloat16, device=0)
    w13 = torch.zeros(8, 256, 256, dtype=torch.bfloat16, device=DEV)
    w2 = torch.zeros(8, 256, 128, dtype=torch.bfloat16, device=DEV)
    x = torch.zeros(1, 256, dtype=torch.bfloat16, device=DEV)
    wts = torch.ones(1, 2, device=DEV)
    with pytest.raises(ValueError, match="ids must be int32"):
        plan.run(x, wts, torch.zeros(1, 2, dtype=torch.int64, device=DEV), w13, w2)
    with pytest.raises(ValueError, match="w must have shape"):
        plan.run(x, wts, torch.zeros(1, 2, dtype=torch.int32, device=DEV), w13[:4], w2)
    with pytest.raises(ValueError, match="activation"):
        one_token_moe_plan(8, 256, 128, 2, torch.bfloat16, activation="relu2", device=0)
