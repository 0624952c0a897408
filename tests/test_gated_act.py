"""A gated MLP's act(gate) * up in one launch (kvplan/kernels/gated_act.cu) and the forward's mlp_activation
(kvplan/gpu/ops.py). CPU: what the kernel refuses and why, that CI compiles it, and the torch form by hand. GPU
(skips without CUDA): the kernel against a float64 reference written from the activations' formulas (SiLU
x / (1 + e^-x), GELU's tanh approximation), rounded where the kernel rounds, on contiguous, strided and 3-D rows."""

import math

import pytest

from kvplan.kernels.configs import INSTANTIATION_SETS, GatedActConfig

torch = pytest.importorskip("torch")

from kvplan.gpu.ops import GATED_KERNEL, UNGATED_KERNEL, mlp_activation  # noqa: E402
from kvplan.kernels.gated_act import gated_act, gated_act_supported, ungated_act, ungated_act_supported  # noqa: E402


def test_ci_compiles_it_for_every_arch():
    for arch in ("sm_80", "sm_89", "sm_90"):
        assert GatedActConfig().name in {c.name for make in INSTANTIATION_SETS for c in make(arch)}


def test_what_it_refuses_and_why():
    h = torch.zeros(4, 32, dtype=torch.bfloat16)
    assert gated_act_supported(h, "relu") == "the activation is 'relu', not one of silu, gelu_tanh"
    assert gated_act_supported(h, "silu") == "the rows are not on a CUDA device"
    with pytest.raises(ValueError, match="gated activation kernel cannot take these rows: the rows are not on"):
        gated_act(h, "silu")
    assert ungated_act_supported(h, "silu") == "the activation is 'silu', not one of relu2"
    assert ungated_act_supported(h, "relu2") == "the rows are not on a CUDA device"
    with pytest.raises(ValueError, match="activation kernel cannot take these rows: the rows are not on"):
        ungated_act(h, "relu2")


def test_the_torch_form_by_hand():
    """On the CPU mlp_activation is torch's split, activation and product: SiLU(2) * 3 and SiLU(-1) * 0.5."""
    h = torch.tensor([[2.0, -1.0, 3.0, 0.5]])
    labels: dict = {}
    got = mlp_activation("silu", h, gated=True, labels=labels)
    want = [2 / (1 + math.exp(-2)) * 3, -1 / (1 + math.exp(1)) * 0.5]
    assert torch.allclose(got, torch.tensor([want]))
    assert labels == {}  # nothing offered a kernel on the CPU


# ---- GPU ---------------------------------------------------------------------------------------------------------

def _reference(h, name):
    """act(gate) in float64 rounded to h's dtype (as the kernel, torch's two ops and vLLM round it), times up."""
    x = h.double()
    inter = x.shape[-1] // 2
    g, u = x[..., :inter], x[..., inter:]
    if name == "silu":
        a = g / (1 + torch.exp(-g))
    else:
        a = 0.5 * g * (1 + torch.tanh(math.sqrt(2 / math.pi) * (g + 0.044715 * g ** 3)))
    return a.to(h.dtype).double() * u


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", ["silu", "gelu_tanh"])
@pytest.mark.parametrize("shape", [(1, 16), (7, 2 * 2880), (300, 2 * 1024), (3, 5, 48)])
def test_kernel_is_the_formula(kernel_torch, dtype, name, shape):
    gen = torch.Generator(device="cuda").manual_seed(shape[-1] + len(shape))
    h = (torch.randn(*shape, device="cuda", generator=gen) * 3).to(dtype)
    assert gated_act_supported(h, name) is None
    got = gated_act(h, name)
    torch.cuda.synchronize()
    want = _reference(h, name)
    assert got.shape == (*shape[:-1], shape[-1] // 2) and got.dtype == dtype
    # the product's rounding (half a unit: 2^-8 relative in bf16, 2^-11 in fp16) plus, where fp32 and float64 put
    # the activation on either side of a rounding boundary, one unit of it (twice that): three half units
    half_unit = 2 ** -8 if dtype == torch.bfloat16 else 2 ** -11
    assert float(((got.double() - want).abs() - 3 * half_unit * want.abs()).max()) <= 1e-6


def test_strided_rows_and_the_forwards_label(kernel_torch):
    """Rows of a wider buffer (row stride > 2I), as a slice of a bigger projection, and mlp_activation on a GPU
    taking the kernel and saying so; a row width the kernel refuses falls back to torch with the reason."""
    gen = torch.Generator(device="cuda").manual_seed(5)
    wide = torch.randn(9, 2 * 64 + 32, device="cuda", generator=gen).bfloat16()
    h = wide[:, :128]
    labels: dict = {}
    got = mlp_activation("silu", h, gated=True, labels=labels)
    torch.cuda.synchronize()
    assert labels["activation"] == GATED_KERNEL
    assert torch.allclose(got.double(), _reference(h, "silu"), rtol=3 * 2 ** -8, atol=1e-6)
    odd = torch.randn(4, 2 * 12, device="cuda", generator=gen).bfloat16()
    got = mlp_activation("silu", odd, gated=True, labels=labels)
    assert "torch act(gate) * up (the kernel refused: the rows are not [..., 2I]" in labels["activation"]
    assert torch.allclose(got.double(), _reference(odd, "silu"), rtol=3 * 2 ** -8, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(1, 2 * 32768), (300, 2 * 1024)])
def test_e4m3_output_is_its_own_product_quantised(kernel_torch, dtype, shape):
    """quant_inv > 0: the product in e4m3 for an fp8 down projection, bit for bit the 16-bit product of the same
    kernel quantised by torch (kvplan/gpu/fp8.py quantize: / s, saturated)."""
    from kvplan.gpu import fp8
    from kvplan.kernels._runtime import device_info
    from kvplan.kernels.configs import E4M3_ARCHS
    from kvplan.kernels.gated_act import gated_act

    if device_info(0).arch not in E4M3_ARCHS:
        pytest.skip("the GPU converts to e4m3 from sm_89 on")
    g = torch.Generator(device="cuda").manual_seed(shape[0])
    h = (torch.randn(*shape, device="cuda", generator=g) * 4).to(dtype)  # products past 448 x 2^-5 saturate
    want = (gated_act(h, "silu").float() / fp8.INPUT_SCALE).clamp(-448, 448).to(torch.float8_e4m3fn)
    got = gated_act(h, "silu", quant_inv=1 / fp8.INPUT_SCALE)
    assert got.dtype == torch.float8_e4m3fn and torch.equal(got.view(torch.uint8), want.view(torch.uint8))
    assert (got.float().abs() == 448).any()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(1, 8), (7, 21504), (3, 5, 40)])
def test_squared_relu_is_torchs_two_ops_bit_for_bit(kernel_torch, dtype, shape):
    """Not gated (Nemotron-H's MLP and experts): relu(h)^2 rounded once, what torch.square(F.relu(h)) gives in the
    same dtype; through mlp_activation from rows of a wider buffer, labelled; e4m3 as its own output quantised."""
    from kvplan.gpu import fp8
    from kvplan.kernels._runtime import device_info
    from kvplan.kernels.configs import E4M3_ARCHS

    gen = torch.Generator(device="cuda").manual_seed(shape[-1])
    wide = (torch.randn(*shape[:-1], shape[-1] + 24, device="cuda", generator=gen) * 3).to(dtype)
    h = wide[..., 8:8 + shape[-1]]
    labels: dict = {}
    got = mlp_activation("relu2", h, gated=False, labels=labels)
    assert labels["activation"] == UNGATED_KERNEL and got.shape == h.shape and got.dtype == dtype
    assert torch.equal(got, torch.square(torch.nn.functional.relu(h)))
    if device_info(0).arch in E4M3_ARCHS:
        want = (got.float() / fp8.INPUT_SCALE).clamp(-448, 448).to(torch.float8_e4m3fn)
        q = ungated_act(h, "relu2", quant_inv=1 / fp8.INPUT_SCALE)
        assert torch.equal(q.view(torch.uint8), want.view(torch.uint8))
