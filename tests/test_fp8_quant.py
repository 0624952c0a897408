"""Activations to e4m3 for fp8 linears (kvplan/gpu/fp8.py; the kernel kvplan/kernels/fp8_quant.cu on a GPU): x / s
saturated at +-448 and rounded to nearest, checked by hand on the CPU form, and the kernel bit for bit against it on
a GPU (skipped without CUDA). The same for the per-token-group form (a scale per token and 128 columns, column-major
over padded rows: fp8_group_quant, its torch form group_quant_reference), and its replay from a CUDA graph."""

import pytest

torch = pytest.importorskip("torch")

from kvplan.gpu import fp8  # noqa: E402


def test_quantize_by_hand():
    s = fp8.INPUT_SCALE  # 2^-5
    x = torch.tensor([1.0, -1.0, 1000.0, -1000.0, 0.0123, 3.0 * 2 ** -14, 0.0], dtype=torch.bfloat16)
    got = fp8.quantize(x, s).float().tolist()
    # 1 / 2^-5 = 32 exactly; 32,000 saturates at 448; bf16(0.0123) = 202 x 2^-14, x 32 = 0.3945 between e4m3's 0.375
    # and 0.40625 (steps of 2^-5 in [0.25, 0.5)): nearest 0.40625; 3 x 2^-9 is e4m3's third subnormal step exactly
    want = [32.0, -32.0, 448.0, -448.0, 0.40625, 3 * 2 ** -9, 0.0]
    assert got == want


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(1, 8), (3, 5120), (8192, 1024), (5, 40)])
def test_kernel_matches_the_torch_form_bit_for_bit(dtype, shape):
    from kvplan.kernels.fp8_quant import fp8_quant

    g = torch.Generator(device="cuda").manual_seed(0)
    x = (torch.randn(*shape, device="cuda", generator=g) * 20).to(dtype)  # a tail past 448 x 2^-5 = 14 saturates
    x.view(-1)[:4] = torch.tensor([float("nan"), 2 ** -20, -(2 ** -14), 1e4], dtype=dtype)
    want = (x.float() / fp8.INPUT_SCALE).clamp(-448, 448).to(torch.float8_e4m3fn)
    got = fp8_quant(x, 1 / fp8.INPUT_SCALE)
    assert got.dtype == torch.float8_e4m3fn and got.shape == x.shape
    nan = torch.isnan(want.float())
    assert torch.equal(torch.isnan(got.float()), nan)  # NaN stays NaN (its sign bit may differ)
    assert torch.equal(got.view(torch.uint8)[~nan], want.view(torch.uint8)[~nan])


# ---- per-token-group scales (fp8_group_quant: block-fp8 linears as W8A8) ----------------------------------------

def test_group_reference_by_hand():
    """One token, two groups: [7, -3.5, 1, 0.3, -2^-20, 3 x 2^-15, 1.1875, 0...] and zeros."""
    from kvplan.kernels.fp8_quant import GROUP_EPS, group_quant_reference

    x = torch.zeros(1, 256, dtype=torch.bfloat16)
    x[0, :7] = torch.tensor([7.0, -3.5, 1.0, 0.3, -(2.0 ** -20), 3 * 2.0 ** -15, 1.1875])
    q, s = group_quant_reference(x)
    assert q.shape == (1, 256) and q.dtype == torch.float8_e4m3fn
    assert s.shape == (1, 2) and s.dtype == torch.float32 and s.stride() == (1, 1)
    # amax 7: s = 7 / 448 = 2^-6 exactly. x / s = 448, -224, 64; bf16(0.3) = 0.30078125, x 64 = 19.25, between e4m3's
    # 18 and 20 (steps of 2 in [16, 32)): 20; -2^-14 is below half e4m3's least subnormal 2^-9: -0 (byte 0x80);
    # 3 x 2^-9 is its third subnormal step; 1.1875 x 64 = 76, halfway between 72 and 80 (steps of 8 in [64, 128)):
    # the even mantissa, 80
    assert s[0, 0].item() == 2.0 ** -6
    got = q[0, :8].float().tolist()
    assert got == [448.0, -224.0, 64.0, 20.0, 0.0, 3 * 2.0 ** -9, 80.0, 0.0]
    assert q.view(torch.uint8)[0, 4].item() == 0x80
    # the all-zero group: the smallest scale, zeros
    assert s[0, 1].item() == torch.tensor(GROUP_EPS, dtype=torch.float32).item()
    assert not q.view(torch.uint8)[0, 128:].any()


def test_group_reference_saturates_its_amax():
    """amax 1.1875: s = fl32(1.1875 / 448) is a little low, so amax / s = 448.00003 > 448: clamped to 448."""
    from kvplan.kernels.fp8_quant import group_quant_reference

    x = torch.zeros(1, 128, dtype=torch.float16)
    x[0, 0], x[0, 1] = 1.1875, -1.1875
    s32 = torch.tensor(1.1875) / 448
    assert (torch.tensor(1.1875) / s32).item() > 448
    q, s = group_quant_reference(x)
    assert s[0, 0].item() == s32.item()
    assert q[0, :2].float().tolist() == [448.0, -448.0]


def test_group_reference_pads_rows_column_major():
    from kvplan.kernels.fp8_quant import group_quant_reference

    x = torch.randn(3, 384, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16) * 50
    q, s = group_quant_reference(x, rows=16)
    assert q.shape == (16, 384) and s.shape == (16, 3) and s.stride() == (1, 16)
    assert not q.view(torch.uint8)[3:].any()  # padded rows: zeros
    assert torch.equal(s[3:], torch.ones(13, 3))  # at scale one
    q3, s3 = group_quant_reference(x)
    assert torch.equal(q[:3].view(torch.uint8), q3.view(torch.uint8)) and torch.equal(s[:3], s3)
    assert s3.stride() == (1, 3)
    # each row's scale is its groups' amax / 448, and dequantised it stays within e4m3's half step (2^-4 relative)
    # (to one ulp: torch may divide by a Python scalar as a product with its reciprocal, which rounds twice)
    assert torch.allclose(s3, x.float().view(3, 3, 128).abs().amax(-1) / 448, rtol=2 ** -23, atol=0)
    back = q3.float().view(3, 3, 128) * s3[..., None]
    assert torch.allclose(back, x.float().view(3, 3, 128), rtol=2 ** -4, atol=0)
    with pytest.raises(ValueError, match="rows=2 is fewer"):
        group_quant_reference(x, rows=2)
    with pytest.raises(ValueError, match="multiple of 128"):
        group_quant_reference(x[:, :200])


def test_group_supported_says_why_not():
    from kvplan.kernels.fp8_quant import fp8_group_quant, fp8_group_quant_supported

    assert "CUDA device" in fp8_group_quant_supported(torch.zeros(2, 256, dtype=torch.bfloat16))
    assert "bf16 or fp16" in fp8_group_quant_supported(torch.zeros(2, 256, dtype=torch.float32))
    assert "multiple of 128 columns" in fp8_group_quant_supported(torch.zeros(2, 200, dtype=torch.float16))
    assert "multiple of 128 columns" in fp8_group_quant_supported(torch.zeros(256, dtype=torch.float16))
    with pytest.raises(ValueError, match="cannot take this tensor: the tensor is not on a CUDA device"):
        fp8_group_quant(torch.zeros(2, 256, dtype=torch.bfloat16))


def _group_case(t, k, dtype, seed=0):
    """[t, k] with each group's magnitude its own (2^-12 .. 1e4), one group zeros, a few tiny values."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    groups = k // 128
    mag = torch.logspace(-12 * 0.30103, 4, steps=max(groups * t, 2), device="cuda")[: groups * t]
    mag = mag[torch.randperm(mag.numel(), generator=g, device="cuda")].view(t, groups, 1)
    x = torch.randn(t, groups, 128, device="cuda", generator=g) * mag / 4
    x = x.clamp(-1e4, 1e4)
    x[0, 0, :3] = torch.tensor([1e4, -1e4, 1.1875], device="cuda")
    x[-1, -1] = 0  # a group of zeros
    if groups > 1:
        x[-1, 0, :2] = torch.tensor([2.0 ** -20, -(2.0 ** -30)], device="cuda")
    return x.view(t, k).to(dtype)


def _gpu_group_kernel():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from kvplan.kernels.fp8_quant import fp8_group_quant_supported

    why = fp8_group_quant_supported(torch.zeros(1, 128, dtype=torch.bfloat16, device="cuda"))
    if why:
        pytest.skip(why)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("k", [128, 7168])
@pytest.mark.parametrize("t", [1, 5, 16, 300])
def test_group_kernel_matches_the_reference_bit_for_bit(t, k, dtype):
    _gpu_group_kernel()
    from kvplan.kernels.fp8_quant import fp8_group_quant, group_quant_reference

    x = _group_case(t, k, dtype)
    rows = 16 if t < 16 else t
    q, s = fp8_group_quant(x, rows=rows)
    want_q, want_s = group_quant_reference(x, rows=rows)
    assert q.shape == (rows, k) and q.dtype == torch.float8_e4m3fn
    assert s.shape == (rows, k // 128) and s.stride() == (1, rows)
    assert torch.equal(q.view(torch.uint8), want_q.view(torch.uint8))
    assert torch.equal(s, want_s)
    assert torch.isfinite(s).all() and (s > 0).all()
    if rows > t:
        assert not q[t:].view(torch.uint8).any() and torch.equal(s[t:], torch.ones_like(s[t:]))
    q1, s1 = fp8_group_quant(x)  # rows default to the tokens
    assert s1.shape == (t, k // 128) and torch.equal(q1.view(torch.uint8), want_q[:t].view(torch.uint8))
    assert torch.equal(s1, want_s[:t])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_group_kernel_nan_and_preallocated_outputs():
    """A NaN makes its group's scale and values NaN (as torch's amax); out / scales are written in place."""
    _gpu_group_kernel()
    from kvplan.kernels.fp8_quant import fp8_group_quant, group_quant_reference, group_scales_empty

    x = _group_case(7, 512, torch.bfloat16, seed=1)
    x[2, 130] = float("nan")
    out = torch.empty(8, 512, dtype=torch.float8_e4m3fn, device="cuda")
    sc = group_scales_empty(8, 4, "cuda")
    q, s = fp8_group_quant(x, rows=8, out=out, scales=sc)
    assert q is out and s is sc
    want_q, want_s = group_quant_reference(x, rows=8)
    nan_q, nan_s = torch.isnan(want_q.float()), torch.isnan(want_s)
    assert nan_s.sum() == 1 and nan_s[2, 1] and nan_q[2, 128:256].all() and nan_q.sum() == 128
    assert torch.equal(torch.isnan(s), nan_s) and torch.equal(torch.isnan(q.float()), nan_q)
    assert torch.equal(q.view(torch.uint8)[~nan_q], want_q.view(torch.uint8)[~nan_q])
    assert torch.equal(s[~nan_s], want_s[~nan_s])
    with pytest.raises(ValueError, match="strides"):
        fp8_group_quant(x, rows=8, scales=torch.empty(8, 4, device="cuda"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_group_kernel_replays_from_a_cuda_graph():
    _gpu_group_kernel()
    from kvplan.kernels.fp8_quant import fp8_group_quant, group_quant_reference, group_scales_empty

    x = _group_case(37, 1024, torch.bfloat16, seed=2)
    out = torch.empty(48, 1024, dtype=torch.float8_e4m3fn, device="cuda")
    sc = group_scales_empty(48, 8, "cuda")
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):  # warm-up (the module's load) off the capture
        fp8_group_quant(x, rows=48, out=out, scales=sc)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fp8_group_quant(x, rows=48, out=out, scales=sc)
    x.copy_(_group_case(37, 1024, torch.bfloat16, seed=3))  # new inputs, the same buffer
    out.view(torch.uint8).fill_(0x7F)
    sc.fill_(float("nan"))
    graph.replay()
    torch.cuda.synchronize()
    want_q, want_s = group_quant_reference(x, rows=48)
    assert torch.equal(out.view(torch.uint8), want_q.view(torch.uint8)) and torch.equal(sc, want_s)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("shape", [(3, 512, 7168), (2, 200, 256), (1, 128, 128), (5, 7168, 256)])
def test_block_dequant_matches_the_torch_form_bit_for_bit(shape):
    """The bundled e4m3 -> bf16 dequantisation (fp8_quant.cu) against kvplan/gpu/fp8.py's torch form: rows not a
    multiple of the 128-row block (200), every e4m3 code (NaN codes included) and scales over 2^-20..2^4."""
    from kvplan.gpu import fp8
    from kvplan.kernels.fp8_quant import fp8_block_dequant, fp8_block_dequant_supported

    why = fp8_block_dequant_supported(torch.empty(1, 128, dtype=torch.float8_e4m3fn, device="cuda"))
    if why is not None:
        pytest.skip(why)
    gen = torch.Generator(device="cuda").manual_seed(7)
    q = torch.randint(0, 256, shape, dtype=torch.uint8, device="cuda", generator=gen).view(torch.float8_e4m3fn)
    s = torch.exp2(torch.rand(shape[0], -(-shape[1] // 128), shape[2] // 128, device="cuda", generator=gen) * 24 - 20)
    got = fp8_block_dequant(q, s)
    want = fp8.dequantize_blocks(q, s, torch.bfloat16)
    assert got.dtype == torch.bfloat16 and got.shape == q.shape
    assert torch.equal(got.view(torch.int16), want.view(torch.int16))
    out = torch.empty_like(want)
    assert fp8_block_dequant(q, s, out=out).data_ptr() == out.data_ptr()
    with pytest.raises(ValueError, match="s must be a float32 tensor of shape"):
        fp8_block_dequant(q, s[:, :0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("slice_tokens", [None, 256])
def test_fp8_experts_of_a_long_prompt_by_chunks_against_float64(slice_tokens, monkeypatch):
    """verify's MoE at FP8_GROUPED_TOKENS and more tokens (kvplan/gpu/ffn.py): 40 block-fp8 experts in chunks of
    32 (the second one short), experts 36-39 routed to by no token (an empty end of a chunk), dequantised by the
    bundled kernel and run as grouped GEMMs, the whole prompt at once or in slices of 256 tokens (the last one
    short); against float64 over the dequantised weights."""
    import types

    from kvplan.gpu import ffn
    from kvplan.kernels.fp8_quant import fp8_block_dequant_supported
    from kvplan.kernels.skinny import dequantize_block_fp8, reference_moe_pairs

    if fp8_block_dequant_supported(torch.empty(1, 128, dtype=torch.float8_e4m3fn, device="cuda")) is not None:
        pytest.skip("the dequantisation kernel cannot run here")
    if slice_tokens:
        monkeypatch.setattr(ffn, "FP8_SLICE_TOKENS", slice_tokens)
    gen = torch.Generator(device="cuda").manual_seed(8)
    experts, hidden, inter, top_k, tokens = 40, 512, 256, 4, ffn.FP8_GROUPED_TOKENS + 88

    def fp8(*shape):
        q = (torch.randn(*shape, device="cuda", generator=gen) * 32).clamp(-448, 448).to(torch.float8_e4m3fn)
        return q, torch.rand(shape[0], -(-shape[1] // 128), shape[2] // 128, device="cuda", generator=gen) * 2e-3 + 1e-3

    (q13, s13), (q2, s2) = fp8(experts, 2 * inter, hidden), fp8(experts, hidden, inter)
    w = {"router": torch.randn(experts, hidden, device="cuda", generator=gen).bfloat16(), "w13": q13, "w13_scale": s13,
         "w2": q2, "w2_scale": s2}
    arch = types.SimpleNamespace(experts=experts, top_k=top_k, activation="silu", gated_mlp=True,
                                 experts_format="fp8_block", shared_intermediate=0, shared_gate=False, hidden=hidden,
                                 routing=types.SimpleNamespace(on_input=False, describe=lambda: "top-k"))
    moe = ffn.MoE(arch, w, types.SimpleNamespace(labels={}))
    x = torch.randn(tokens, hidden, device="cuda", generator=gen).bfloat16()
    ids = torch.rand(tokens, experts - 4, device="cuda", generator=gen).topk(top_k, dim=-1).indices
    weights = torch.rand(tokens, top_k, device="cuda", generator=gen)
    got = moe.experts(x, weights, ids)
    want = reference_moe_pairs(x, weights, ids, dequantize_block_fp8(q13, s13), dequantize_block_fp8(q2, s2))
    err = float((got.double() - want).abs().max() / want.abs().max())
    assert err < 2e-2, err
    assert "fp8_scratch" in vars(moe.rt) and "grouped GEMMs" in moe.label()


def test_fp8_experts_by_chunks_on_the_cpu_against_float64():
    """The chunked block-fp8 MoE's bookkeeping (kvplan/gpu/ffn.py _grouped with chunk, here in torch on the CPU:
    the dequantisation in torch, torch._grouped_mm): 11 experts in chunks of 4 (the last one short), expert 5 and
    experts 9-10 routed to by no token (an empty group inside a chunk and an empty chunk end), each chunk's
    outputs over its own sorted rows; against float64 over the dequantised weights."""
    import types

    from kvplan.gpu import ffn
    from kvplan.kernels.skinny import dequantize_block_fp8, reference_moe_pairs

    gen = torch.Generator().manual_seed(9)
    experts, hidden, inter, top_k, tokens = 11, 256, 128, 3, 40

    def fp8(*shape):
        q = (torch.randn(*shape, generator=gen) * 32).clamp(-448, 448).to(torch.float8_e4m3fn)
        return q, torch.rand(shape[0], -(-shape[1] // 128), shape[2] // 128, generator=gen) * 2e-3 + 1e-3

    (q13, s13), (q2, s2) = fp8(experts, 2 * inter, hidden), fp8(experts, hidden, inter)
    arch = types.SimpleNamespace(experts=experts, top_k=top_k, activation="silu", gated_mlp=True,
                                 experts_format="fp8_block", shared_intermediate=0, shared_gate=False, hidden=hidden,
                                 routing=types.SimpleNamespace(on_input=False, describe=lambda: "top-k"))
    w = {"router": torch.randn(experts, hidden, generator=gen).bfloat16(), "w13": q13, "w13_scale": s13, "w2": q2,
         "w2_scale": s2}
    moe = ffn.MoE(arch, w, types.SimpleNamespace(labels={}))
    routed = torch.tensor([0, 1, 2, 3, 4, 6, 7, 8])  # 5, 9 and 10 never chosen
    ids = routed[torch.rand(tokens, len(routed), generator=gen).topk(top_k, dim=-1).indices]
    x = torch.randn(tokens, hidden, generator=gen).bfloat16()
    weights = torch.rand(tokens, top_k, generator=gen)
    got = moe._grouped(x, weights, ids, chunk=4)
    want = reference_moe_pairs(x, weights, ids, dequantize_block_fp8(q13, s13), dequantize_block_fp8(q2, s2))
    err = float((got.double() - want).abs().max() / want.abs().max())
    assert err < 2e-2, err


def test_block_dequant_says_why_not():
    """The e4m3 -> bf16 dequantisation's refusals, one sentence each, on any machine: a dtype or shape it does not
    take, then a tensor off the GPU; its arguments are checked before the device."""
    from kvplan.kernels.fp8_quant import fp8_block_dequant, fp8_block_dequant_supported

    q = torch.zeros(2, 128, 256, dtype=torch.float8_e4m3fn)
    assert "float8_e4m3fn" in fp8_block_dequant_supported(torch.zeros(128, 256))
    assert "multiple of 128" in fp8_block_dequant_supported(torch.zeros(128, 200, dtype=torch.float8_e4m3fn))
    assert fp8_block_dequant_supported(q) == "the tensor is not on a CUDA device"
    with pytest.raises(ValueError, match="s must be a float32 tensor of shape \\(2, 1, 2\\)"):
        fp8_block_dequant(q, torch.ones(2, 2, 2))
    with pytest.raises(ValueError, match="cannot take these tensors: the tensor is not on a CUDA device"):
        fp8_block_dequant(q, torch.ones(2, 1, 2))


def test_block_matmul_takes_the_form_the_timing_chose():
    """verify's Matmul routes a block-scaled weight by the form gpu/gemm.py stored for (rows, cols, tokens): the
    streaming GEMV's plan (here a stand-in that multiplies what it is handed: x quantised per token per 128 values by
    fp8.block_gemv, the weight's own scales) where one is stored, else the skinny kernel's form (none on the CPU:
    the dequantised weight in torch); both against the float64 product."""
    from kvplan.gpu import fp8
    from kvplan.gpu.ops import BLOCK_FORMS, Matmul

    gen = torch.Generator().manual_seed(10)
    n, k, t = 200, 256, 3
    q = (torch.randn(n, k, generator=gen) * 16).clamp(-448, 448).to(torch.float8_e4m3fn)
    s = torch.rand(2, 2, generator=gen) * 2e-3 + 1e-3
    x = torch.randn(t, k, generator=gen).bfloat16()
    want = x.double() @ fp8.dequantize_blocks(q, s, torch.float64).t()

    class StandIn:
        calls = []

        def run(self, qx, w, w_scales=None, x_scales=None):
            self.calls.append((qx.dtype, tuple(x_scales.shape)))
            xs = qx.double() * x_scales.double().repeat_interleave(128, 1)
            return (xs @ fp8.dequantize_blocks(w, w_scales, torch.float64).t()).bfloat16()

    mm = Matmul()
    mm.register_block(q, s)
    plan = StandIn()
    mm.block_streams[(BLOCK_FORMS[1], n, k)] = plan
    for form, calls in ((BLOCK_FORMS[1], 1), (BLOCK_FORMS[0], 1), (BLOCK_FORMS[2], 1)):
        mm.forms[mm.form_key(q, t)] = form
        got = mm(x, q)
        assert float((got.double() - want).abs().max() / want.abs().max()) < 6e-2, form
        assert len(plan.calls) == calls  # only the form with a plan ran it
    assert plan.calls == [(torch.float8_e4m3fn, (t, k // 128))]
