"""The router's matmul inside the router kernel (kvplan/kernels/router.cu kvp_router_fused, FusedRouterPlan), for
decode's few tokens. GPU (skips without CUDA): on inputs whose dot products float32 sums exactly (multiples of 1/8
up to 1/2), the fused launch must route exactly as the plain router kernel does on the logits torch computes in
float64 and rounds to the same dtype: same experts, same weights to the bit, joined shared expert and its gate row,
the general rules and the router's own bias included; on random float32 inputs it must agree with torch's matmul
followed by verify's torch routing; replayed in a CUDA graph, the arrival counter must start each launch at zero.
CPU: the arguments it refuses, and where verify takes the fused path (MoE layers) and reports it."""

import pytest

from kvplan.kernels.router import MAX_FUSED_TOKENS, FusedRouterPlan, RouterPlan

# (name, experts, top_k, hidden, options): the routers of issue 13's MoE models at one rank, and DeepSeek-V3's rule
CASES = [
    ("mixtral", 8, 2, 4096, {}),
    ("gpt_oss", 32, 4, 2880, {"logit_bias": True}),
    ("v2_lite", 64, 6, 2048, {"shared": 2}),
    ("qwen3_next", 512, 10, 2048, {"shared": 1, "gate_row": True}),
    ("deepseek_v3", 256, 8, 7168, {"scoring": "sigmoid", "groups": 8, "topk_groups": 4, "correction": True}),
]


def test_arguments_it_refuses_before_touching_a_gpu():
    with pytest.raises(ValueError, match=r"hidden must be a multiple of 8 \(16-byte rows of bfloat16\) up to 8,192, "
                                         r"got 2884"):
        FusedRouterPlan(32, 4, "bfloat16", True, hidden=2884)
    with pytest.raises(ValueError, match=r"hidden must be a multiple of 4 \(16-byte rows of float32\)"):
        FusedRouterPlan(32, 4, "float32", True, hidden=2)
    with pytest.raises(ValueError, match=r"up to 8,192, got 8200"):
        FusedRouterPlan(32, 4, "bfloat16", True, hidden=8200)
    with pytest.raises(ValueError, match=r"gate_row needs shared > 0"):
        FusedRouterPlan(32, 4, "bfloat16", True, hidden=2048, gate_row=True)
    with pytest.raises(ValueError, match=r"experts must be an int in 1\.\.512, got 513"):
        FusedRouterPlan(513, 4, "bfloat16", True, hidden=2048)


def _exact_inputs(torch, gen, tokens, rows, hidden, dtype):
    """x [tokens, hidden] and w [rows, hidden] of multiples of 1/8 in [-1/2, 1/2]: every product a multiple of 1/64,
    every sum below 2^24 / 64 in size, so float32 sums them exactly in any order."""
    def draw(*shape):
        return (torch.randint(-4, 5, shape, device="cuda", generator=gen).float() / 8).to(dtype)
    return draw(tokens, hidden), draw(rows, hidden)


def _biases(torch, gen, experts, options, dtype):
    correction = torch.rand(experts, device="cuda", generator=gen) * 0.1 if options.get("correction") else None
    bias = (torch.randn(experts, device="cuda", generator=gen)).to(dtype) if options.get("logit_bias") else None
    return correction, bias


@pytest.mark.parametrize("name, experts, k, hidden, options", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_routes_exactly_as_the_router_kernel_on_torchs_logits(kernel_torch, name, experts, k, hidden, options, dtype):
    torch = kernel_torch
    td = getattr(torch, dtype)
    gen = torch.Generator(device="cuda").manual_seed(experts * 7 + hidden)
    plain_options = {key: v for key, v in options.items() if key != "gate_row"}
    fused = FusedRouterPlan(experts, k, dtype, True, 1.5, hidden=hidden, ids_dtype="int32", **options)
    plain = RouterPlan(experts, k, dtype, True, 1.5, ids_dtype="int32", **plain_options)
    rows = experts + int(bool(options.get("gate_row")))
    padded = rows + 3  # a stacked weight's zero rows past the router's (weights.py stack_rows)
    correction, bias = _biases(torch, gen, experts, options, td)
    for tokens in (1, 3, 8, MAX_FUSED_TOKENS):
        x, w = _exact_inputs(torch, gen, tokens, padded, hidden, td)
        w[rows:] = 0
        weights, ids = fused.run(x, w, correction=correction, logit_bias=bias)
        logits = (x.double() @ w.double().T).to(td)  # exact, then rounded once, as the kernel rounds its sums
        gate = logits[:, experts] if options.get("gate_row") else None
        want_w, want_i = plain.run(logits[:, :experts], gate, correction=correction, logit_bias=bias)
        torch.cuda.synchronize()
        assert torch.equal(ids, want_i), (name, tokens)
        assert torch.equal(weights, want_w), (name, tokens)
        if options.get("shared"):
            assert (ids[:, k:] >= experts).all()


@pytest.mark.parametrize("name, experts, k, hidden, options", CASES, ids=[c[0] for c in CASES])
def test_random_float32_inputs_route_as_torchs_matmul_and_routing(kernel_torch, name, experts, k, hidden, options):
    """Float32 logits of random inputs: the kernel's sums and torch's differ in the last bits only, so the experts
    chosen are the same and the weights agree to float32 rounding."""
    torch = kernel_torch
    from kvplan.gpu.ffn import route_torch
    from kvplan.model.routing import Routing

    gen = torch.Generator(device="cuda").manual_seed(experts + 3)
    rows = experts + int(bool(options.get("gate_row")))
    x = torch.randn(MAX_FUSED_TOKENS, hidden, device="cuda", generator=gen)
    w = torch.randn(rows, hidden, device="cuda", generator=gen) / hidden ** 0.5
    correction, bias = _biases(torch, gen, experts, options, torch.float32)
    fused = FusedRouterPlan(experts, k, "float32", True, 1.0, hidden=hidden, **options)
    weights, ids = fused.run(x, w, correction=correction, logit_bias=bias)
    logits = x @ w.T
    r = Routing(options.get("scoring", "softmax"), True, 1.0, options.get("groups", 1), options.get("topk_groups", 1),
                correction_bias=bool(correction is not None), logit_bias=bias is not None)
    want_w, want_i = route_torch(r, k, logits[:, :experts], correction, bias)
    order, want_order = ids[:, :k].argsort(1), want_i.argsort(1)
    assert torch.equal(ids[:, :k].gather(1, order), want_i.gather(1, want_order))
    assert torch.allclose(weights[:, :k].gather(1, order), want_w.gather(1, want_order), rtol=1e-5, atol=1e-6)
    if options.get("gate_row"):
        assert torch.allclose(weights[:, k], torch.sigmoid(logits[:, experts]), rtol=1e-5, atol=1e-6)


def test_graph_replays_start_every_launch_with_the_counter_at_zero(kernel_torch):
    """Three launches of one plan in one CUDA graph, replayed three times: each launch's last CTA leaves the
    arrival counter at zero for the next, so every replay routes as the eager launches did."""
    torch = kernel_torch
    gen = torch.Generator(device="cuda").manual_seed(5)
    fused = FusedRouterPlan(32, 4, "bfloat16", True, hidden=2880, ids_dtype="int32")
    xs = [_exact_inputs(torch, gen, t, 32, 2880, torch.bfloat16) for t in (1, 4, 16)]
    eager = [fused.run(x, w) for x, w in xs]
    torch.cuda.synchronize()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.stream(stream):
        fused.run(*xs[0])  # warm-up on the capture stream
        torch.cuda.current_stream().synchronize()
        with torch.cuda.graph(graph, stream=stream):
            captured = [fused.run(x, w) for x, w in xs]
    for _ in range(3):
        for out in captured:
            out[0].zero_(), out[1].zero_()
        graph.replay()
        torch.cuda.synchronize()
        for (w0, i0), (w1, i1) in zip(eager, captured):
            assert torch.equal(i0, i1) and torch.equal(w0, w1)


def test_its_inputs_are_checked(kernel_torch):
    torch = kernel_torch
    fused = FusedRouterPlan(8, 2, "bfloat16", True, hidden=4096)
    x = torch.zeros(MAX_FUSED_TOKENS + 1, 4096, dtype=torch.bfloat16, device="cuda")
    w = torch.zeros(8, 4096, dtype=torch.bfloat16, device="cuda")
    with pytest.raises(ValueError, match=rf"x must be a CUDA .* \[tokens <= {MAX_FUSED_TOKENS}, 4096\]"):
        fused.run(x, w)
    with pytest.raises(ValueError, match=r"w must be a contiguous CUDA .* \[>= 8, 4096\]"):
        fused.run(x[:2], w[:7])
    with pytest.raises(ValueError, match=r"logit_bias must be"):
        fused.run(x[:2], w, logit_bias=torch.zeros(8, dtype=torch.bfloat16, device="cuda"))
    empty_w, empty_i = fused.run(x[:0], w)
    assert empty_w.shape == (0, 2) and empty_i.shape == (0, 2)


def test_the_weight_stream_line_says_where_the_routers_went():
    """verify's report (render/verify.py gemm_line): routers read by the router kernel are named as outside the
    dense linears' stream."""
    from kvplan.render.verify import gemm_line

    r = {"gemm": {"stream": {1: {"bytes_per_s": 3.0e12, "fraction_of_read": 0.9}}, "shapes": [],
                  "routers_in_router_kernel": 24}, "gpu": {}}
    assert "the routers of 24 MoE layers are read by the router kernel" in gemm_line(r)
    del r["gemm"]["routers_in_router_kernel"]
    assert "router kernel" not in gemm_line(r)
