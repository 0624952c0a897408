"""The add + RMS norm kernel (kvplan/kernels/norm.cu) and the forward's Norms (kvplan/gpu/ops.py). CPU: what the
kernel refuses, and Norms' torch path against hand arithmetic. GPU (skips without CUDA): the kernel against
torch's add and F.rms_norm (the torch path, itself checked against the float64 reference in
tests/test_verify_model.py), Gemma's 1 + w, in-place-free results."""

import pytest

from kvplan.kernels.norm import MAX_HIDDEN, items_for, norm_unsupported


def test_rows_it_refuses():
    assert norm_unsupported(4096, "bfloat16") is None
    assert norm_unsupported(MAX_HIDDEN, "float16") is None
    assert "multiple of 4" in norm_unsupported(2882, "bfloat16")
    assert "multiple of 4" in norm_unsupported(MAX_HIDDEN + 4, "bfloat16")
    assert "activations must be one of" in norm_unsupported(4096, "float32")


def test_each_row_takes_the_smallest_entry_that_holds_it():
    """256 threads of 4 values per item: 1,024 values an item (norm.cu's entries 1, 2, 4, 8, 16)."""
    assert [items_for(n) for n in (12, 1024, 1028, 2048, 2880, 4096, 5120, 8192, 8196, 16384)] == \
        [1, 1, 2, 2, 4, 4, 8, 8, 16, 16]


def test_norms_torch_path_by_hand():
    torch = pytest.importorskip("torch")
    from kvplan.gpu.ops import Norms

    labels: dict = {}
    norms = Norms("cpu", labels)
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    h = torch.tensor([[1.0, 0.0, -1.0, 0.0]])
    w = torch.tensor([1.0, 1.0, 2.0, 0.5])
    s, y = norms.add_norm(x, h, w, 0.0)
    # s = [2, 2, 2, 4]: mean square (4 + 4 + 4 + 16) / 4 = 7
    assert s.tolist() == [[2.0, 2.0, 2.0, 4.0]]
    r = 7 ** -0.5
    assert torch.allclose(y, torch.tensor([[2 * r, 2 * r, 4 * r, 2 * r]]))
    same, y1 = norms.add_norm(x, None, w, 0.0, plus_one=True)  # Gemma: (1 + w); mean square 30 / 4
    assert same is x and torch.allclose(y1, x * (7.5 ** -0.5) * (1 + w))
    assert labels["norm"] == Norms.TORCH


@pytest.mark.parametrize("tokens,hidden,plus_one,add", [(1, 2048, False, True), (3, 2880, False, True),
                                                        (2, 5376, True, True), (5, 16384, False, False),
                                                        (1, 12, False, True), (300, 2048, False, True),
                                                        (257, 4096, False, True), (64, 8192, True, False)])
def test_kernel_matches_torch(kernel_torch, tokens, hidden, plus_one, add):
    torch = kernel_torch
    from kvplan.gpu.ops import rms_norm
    from kvplan.kernels.norm import AddRmsNormPlan

    gen = torch.Generator(device="cuda").manual_seed(hidden)
    x = (torch.randn(tokens, hidden, device="cuda", generator=gen) * 4).bfloat16()
    h = torch.randn(tokens, hidden, device="cuda", generator=gen).bfloat16() if add else None
    w = (torch.rand(hidden, device="cuda", generator=gen) + 0.5).bfloat16()
    x_before = x.clone()
    s, y = AddRmsNormPlan(hidden, "bfloat16").run(x, h, w, 1e-6, plus_one)
    torch.cuda.synchronize()
    want_s = x + h if add else x
    assert torch.equal(s, want_s) and torch.equal(x, x_before)  # the sum rounds once, as torch's add does
    want_y = rms_norm(want_s, w, 1e-6, plus_one)
    assert torch.allclose(y.float(), want_y.float(), atol=0.02, rtol=0.016)


@pytest.mark.parametrize("tokens,hidden,add", [(1, 5120, True), (3, 2048, False), (300, 4096, True)])
def test_kernel_e4m3_output_is_its_own_norm_quantised(kernel_torch, tokens, hidden, add):
    """quant_inv > 0: y in e4m3 for an fp8 linear, bit for bit the 16-bit y of the same launch quantised by torch
    (kvplan/gpu/fp8.py quantize: y / s saturated), the residual sum unchanged."""
    torch = kernel_torch
    from kvplan.gpu import fp8
    from kvplan.kernels.norm import AddRmsNormPlan

    gen = torch.Generator(device="cuda").manual_seed(tokens)
    x = (torch.randn(tokens, hidden, device="cuda", generator=gen) * 4).bfloat16()
    h = torch.randn(tokens, hidden, device="cuda", generator=gen).bfloat16() if add else None
    w = (torch.rand(hidden, device="cuda", generator=gen) * 40).bfloat16()  # some of y saturates at 448 x 2^-5
    plan = AddRmsNormPlan(hidden, "bfloat16")
    if not plan.e4m3:
        pytest.skip("the GPU converts to e4m3 from sm_89 on")
    s16, y16 = plan.run(x, h, w, 1e-6)
    s8, y8 = plan.run(x, h, w, 1e-6, quant_inv=1 / fp8.INPUT_SCALE)
    want = (y16.float() / fp8.INPUT_SCALE).clamp(-448, 448).to(torch.float8_e4m3fn)
    assert y8.dtype == torch.float8_e4m3fn and torch.equal(s8, s16)
    assert torch.equal(y8.view(torch.uint8), want.view(torch.uint8))
    assert (y8.float().abs() == 448).any()
