"""Activations to e4m3 for fp8 linears (kvplan/gpu/fp8.py; the kernel kvplan/kernels/fp8_quant.cu on a GPU): x / s
saturated at +-448 and rounded to nearest, checked by hand on the CPU form, and the kernel bit for bit against it on
a GPU (skipped without CUDA)."""

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
