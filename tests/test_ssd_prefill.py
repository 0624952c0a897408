"""The Mamba-2 prefill through ssd_prefill.cu: the causal convolution and SiLU, and the state space (chunk states,
state passing, chunk scan).

CPU: what it takes, the reasons it gives for what it does not, and that CI compiles it. GPU (skips without CUDA):
the convolution against its taps summed by hand in float64; the state space against the token recurrence in float64
(S <- exp(dt a) S + dt x B^T, y = S C) over prompts that end inside, at and past a chunk's end, from the
convolution's strided output rows, and against the torch form (ssd_chunks), within TF32's rounding."""

import pytest

from kvplan.kernels.configs import INSTANTIATION_SETS, SsdPrefillConfig

torch = pytest.importorskip("torch")

from kvplan.gpu.mamba import ssd_chunks  # noqa: E402
from kvplan.kernels.ssd_prefill import (  # noqa: E402
    CHUNK, HEAD_DIM, STATE, TAPS, causal_conv, conv_supported, ssd_chunks_kernel, ssd_supported)

GPU = torch.cuda.is_available()
TF32 = 3e-3  # the kernels' products take TF32 operands (10-bit mantissas), as the torch form's matmuls do in verify


def inputs(r, n, h, g, device, p=HEAD_DIM, s=STATE, extra=24, seed=0):
    """x, dt, a, b, c as mamba.py hands them over: x, B and C views of one [R n, width] fp32 block of rows (`extra`
    columns past them, so that the rows' stride is not their width)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    width = h * p + 2 * g * s
    rows = torch.randn(r * n, width + extra, generator=gen, device=device)
    x, b, c = rows[:, :width].split([h * p, g * s, g * s], dim=-1)
    dt = torch.rand(r, n, h, generator=gen, device=device) * 0.2
    a = -torch.rand(h, generator=gen, device=device) * 2 - 0.1
    return (x.view(r, n, h, p), dt, a, b.view(r, n, g, s), c.view(r, n, g, s))


def recurrence(x, dt, a, b, c):
    """(y, final state) token by token in float64."""
    r, n, h, p = x.shape
    g = b.shape[2]
    head_group = torch.arange(h, device=x.device) // (h // g)
    state = torch.zeros(r, h, p, b.shape[3], dtype=torch.float64, device=x.device)
    ys = []
    for t in range(n):
        bt, ct = b[:, t, head_group].double(), c[:, t, head_group].double()  # [R, H, N]
        step = dt[:, t].double()  # [R, H]
        state = torch.exp(step * a.double())[..., None, None] * state + \
            (step[..., None] * x[:, t].double())[..., None] * bt[:, :, None, :]
        ys.append((state @ ct[..., None])[..., 0])
    return torch.stack(ys, dim=1), state


def test_ci_compiles_it_for_every_arch():
    for arch in ("sm_80", "sm_89", "sm_90"):
        assert SsdPrefillConfig().name in {c.name for make in INSTANTIATION_SETS for c in make(arch)}


def test_what_it_refuses_and_why():
    args = inputs(2, 5, 4, 2, "cpu")
    assert ssd_supported(*args) == "the tensors are not on one CUDA device"
    with pytest.raises(ValueError, match="SSD prefill kernels cannot take these tensors: the tensors are not"):
        ssd_chunks_kernel(*args)
    assert ssd_supported(*args, chunk=64) == "chunks of 64 tokens (the kernels take 128)"
    assert ssd_supported(*inputs(2, 5, 4, 2, "cpu", p=32)) == \
        "heads of 32 with states of 128 (the kernels take 64 x 128)"
    assert ssd_supported(*inputs(2, 5, 6, 4, "cpu")) == "6 heads are not a multiple of 4 groups, or a is not [6]"
    x, dt, a, b, c = args
    assert ssd_supported(x.double(), dt, a, b, c) == "the inputs are not float32"
    assert ssd_supported(x.contiguous(), dt, a, b, c) == "x, b and c do not share their rows' stride"
    shifted = inputs(2, 5, 4, 2, "cpu", extra=25)  # rows of an odd number of floats
    assert ssd_supported(*shifted) == "the rows are not 16-byte aligned"
    strided = torch.zeros(2, 5, HEAD_DIM, 4).transpose(2, 3)  # [R, n, H, P] with P's stride H
    assert ssd_supported(strided, dt, a, b, c) == "x's rows are not one token stride apart with contiguous heads"


def test_the_convolution_refuses_with_a_reason():
    rows, w = torch.zeros(8, 64, dtype=torch.bfloat16), torch.zeros(64, TAPS, dtype=torch.bfloat16)
    assert conv_supported(rows, w, None, 4) == "the tensors are not on one CUDA device"
    with pytest.raises(ValueError, match="SSD convolution kernel cannot take these tensors: the tensors are not"):
        causal_conv(rows, w, None, 4)
    assert conv_supported(rows, w, None, 3) == "8 tokens are not whole sequences of 3"
    assert conv_supported(rows.float(), w, None, 4) == "the inputs, weights and bias are not all bf16 or all fp16"
    assert conv_supported(rows, w[:, :3].contiguous(), None, 4).startswith("the inputs are not [tokens, C]")
    assert conv_supported(torch.zeros(8, 72, dtype=torch.bfloat16)[:, 1:65], w, None, 4).startswith(
        "the inputs' rows are not 16-byte aligned")


def conv_by_hand(rows, w, bias, n):
    """SiLU(bias + sum over taps) per sequence of n rows, float64."""
    x = rows.double().view(-1, n, rows.shape[1])
    out = torch.zeros_like(x) + (0 if bias is None else bias.double())
    for j in range(TAPS):
        back = TAPS - 1 - j
        out[:, back:] += w[:, j].double() * x[:, :n - back] if back < n else 0
    return torch.nn.functional.silu(out).view(rows.shape)


@pytest.mark.skipif(not GPU, reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("r,n,bias", [(1, 1, True), (3, 2, False), (2, 7, True), (1, 300, True)])
def test_the_convolution_matches_its_taps(dtype, r, n, bias):
    gen = torch.Generator(device="cuda").manual_seed(n)
    block = torch.randn(r * n, 200, generator=gen, device="cuda").to(dtype)
    rows = block[:, 40:200]  # 160 channels, rows 200 apart, starting 80 bytes in
    w = (torch.randn(160, TAPS, generator=gen, device="cuda") * 0.5).to(dtype)
    b = (torch.randn(160, generator=gen, device="cuda") * 0.5).to(dtype) if bias else None
    out = causal_conv(rows, w, b, n)
    assert out.dtype == torch.float32 and out.shape == rows.shape
    assert float((out.double() - conv_by_hand(rows, w, b, n)).abs().max()) < 1e-4


@pytest.mark.skipif(not GPU, reason="needs a CUDA GPU")
@pytest.mark.parametrize("r,n,h,g", [(1, 1, 4, 2), (2, 5, 4, 2), (1, CHUNK, 8, 1), (3, CHUNK + 1, 4, 4),
                                     (2, 2 * CHUNK + 45, 8, 2)])
def test_matches_the_recurrence_and_the_torch_form(r, n, h, g):
    args = inputs(r, n, h, g, "cuda", seed=n)
    y, state = ssd_chunks_kernel(*args)
    want_y, want_state = recurrence(*args)
    scale = float(want_y.abs().max())
    assert float((y.double() - want_y).abs().max()) <= TF32 * max(scale, 1.0)
    assert float((state.double() - want_state).abs().max()) <= TF32 * max(float(want_state.abs().max()), 1.0)
    d = torch.randn(h, device="cuda")
    with_d, _ = ssd_chunks_kernel(*args, d=d)  # the D term folded into the scan's store
    assert float((with_d - y - d[:, None] * args[0]).abs().max()) <= 1e-5 * max(scale, 1.0)
    torch_y, torch_state = ssd_chunks(*args)  # fp32 matmuls (TF32 off)
    assert float((y - torch_y).abs().max()) <= TF32 * max(scale, 1.0)
    assert float((state - torch_state).abs().max()) <= TF32 * max(float(want_state.abs().max()), 1.0)


@pytest.mark.skipif(not GPU, reason="needs a CUDA GPU")
def test_a_long_prompt_at_nemotron_h_8b_shapes():
    """One rank of Nemotron-H-8B (128 heads, 8 groups) over 1,000 tokens: eight chunks, the last one partial."""
    args = inputs(1, 1000, 128, 8, "cuda", seed=3, extra=0)
    y, state = ssd_chunks_kernel(*args)
    torch_y, torch_state = ssd_chunks(*args)
    assert float((y - torch_y).abs().max()) <= TF32 * max(float(torch_y.abs().max()), 1.0)
    assert float((state - torch_state).abs().max()) <= TF32 * max(float(torch_state.abs().max()), 1.0)
