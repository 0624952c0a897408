"""The mxfp4 -> bf16 kernel (kvplan/kernels/mxfp4.cu) and the MoE path that uses it above
ffn.MXFP4_GROUPED_TOKENS tokens (GPU only): bit for bit against torch's dequantisation, and the layer's output
against the float64 reference, eager and in a CUDA graph."""

import os
import types

import pytest

torch = pytest.importorskip("torch")

if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

from kvplan.gpu import ffn  # noqa: E402
from kvplan.gpu.weights import dequantize_mxfp4  # noqa: E402
from kvplan.kernels.mxfp4 import Mxfp4DequantPlan  # noqa: E402
from kvplan.kernels.skinny import reference_moe_pairs  # noqa: E402
from kvplan.model.routing import Routing  # noqa: E402

DEV = torch.device("cuda")
SEED = int.from_bytes(os.urandom(4), "little")
GEN = torch.Generator(device=DEV).manual_seed(SEED)
print(f"test_mxfp4_gpu seed {SEED}")


def _mxfp4(experts, rows, cols, scale_range):
    blocks = torch.randint(0, 256, (experts, rows, cols // 2), dtype=torch.uint8, device=DEV, generator=GEN)
    scales = torch.randint(*scale_range, (experts, rows, cols // 32), dtype=torch.uint8, device=DEV, generator=GEN)
    return blocks, scales


@pytest.mark.parametrize("shape, scale_range", [((3, 37, 96), (0, 255)), ((8, 192, 320), (118, 125)),
                                                ((1, 1, 32), (126, 132)), ((32, 64, 2880), (100, 140))])
def test_dequant_matches_torch_bit_for_bit(shape, scale_range):
    # every packed byte, scales from 2^-127 (the subnormal one) to 2^127; group counts not a multiple of the CTA
    experts, rows, cols = shape
    blocks, scales = _mxfp4(experts, rows, cols, scale_range)
    plan = Mxfp4DequantPlan(DEV)
    scratch = torch.full((blocks.numel() * 2 + 4096,), float("nan"), dtype=torch.bfloat16, device=DEV)
    out = scratch[:blocks.numel() * 2].view(experts, rows, cols)
    got = plan.run(blocks, scales, out)
    ref = dequantize_mxfp4(blocks, scales, torch.bfloat16)
    assert got.data_ptr() == out.data_ptr()
    assert torch.equal(got.view(torch.int16), ref.view(torch.int16)), f"seed {SEED}"  # -0.0 included
    assert torch.isnan(scratch[blocks.numel() * 2:]).all()  # nothing written past out


def test_dequant_every_byte_at_every_scale():
    """All 256 packed bytes under each scale 0..254 (255 is NaN in the MX format: NaN here, inf or NaN in torch):
    subnormal products at the low scales, inf past bf16's range at the high ones."""
    blocks = torch.arange(256, dtype=torch.int32, device=DEV).to(torch.uint8).repeat(255, 2).view(1, 255, 512)
    scales = torch.arange(255, dtype=torch.int32, device=DEV).to(torch.uint8)[:, None].expand(255, 32)
    scales = scales.contiguous().view(1, 255, 32)
    got = Mxfp4DequantPlan(DEV).run(blocks, scales, torch.empty(1, 255, 1024, dtype=torch.bfloat16, device=DEV))
    ref = dequantize_mxfp4(blocks, scales, torch.bfloat16)
    bad = (got.view(torch.int16) != ref.view(torch.int16)).nonzero()
    assert bad.numel() == 0, f"{len(bad)} values differ, first at scale {int(bad[0, 1])} value {int(bad[0, 2])}"
    nan = Mxfp4DequantPlan(DEV).run(blocks[:, :1], torch.full_like(scales[:, :1], 255),
                                    torch.empty(1, 1, 1024, dtype=torch.bfloat16, device=DEV))
    assert torch.isnan(nan).all()


def test_dequant_refuses_bad_arguments():
    plan = Mxfp4DequantPlan(DEV)
    blocks, scales = _mxfp4(2, 8, 64, (120, 125))
    out = torch.empty(2, 8, 64, dtype=torch.bfloat16, device=DEV)
    for args in ((blocks, scales, out.float()), (blocks, scales[:, :, :1], out), (blocks, scales, out[:, :, :32]),
                 (blocks.cpu(), scales, out), (blocks[:, :, ::2], scales[:, :, ::2], out[:, :, ::2])):
        with pytest.raises(ValueError, match="mxfp4 dequantisation needs"):
            plan.run(*args)


def _gpt_oss_like_layer(experts=8, hidden=320, inter=192, top_k=4):
    arch = types.SimpleNamespace(experts=experts, top_k=top_k, activation="silu", gated_mlp=True,
                                 experts_format="mxfp4", shared_intermediate=0, shared_gate=False, hidden=hidden,
                                 routing=Routing())
    (b13, s13), (b2, s2) = _mxfp4(experts, 2 * inter, hidden, (118, 125)), _mxfp4(experts, hidden, inter, (118, 125))
    w = {"router": torch.randn(experts, hidden, dtype=torch.bfloat16, device=DEV, generator=GEN),
         "w13_blocks": b13, "w13_scales": s13, "w2_blocks": b2, "w2_scales": s2}
    return ffn.MoE(arch, w, types.SimpleNamespace(labels={})), dequantize_mxfp4(b13, s13, torch.float32), \
        dequantize_mxfp4(b2, s2, torch.float32)


def _assert_close(got, ref, what):
    assert torch.isfinite(got).all(), f"{what}: NaN/Inf (seed {SEED})"
    rel = (got.double() - ref).norm(dim=-1) / ref.norm(dim=-1).clamp_min(1e-30)
    assert float(rel.max()) <= 2e-2, f"{what}: rel err {float(rel.max()):.3g} (seed {SEED})"


@pytest.mark.parametrize("tokens", [ffn.MXFP4_GROUPED_TOKENS - 1, ffn.MXFP4_GROUPED_TOKENS, 700])
def test_moe_layer_by_expert_below_grouped_from_the_threshold(tokens):
    moe, w13, w2 = _gpt_oss_like_layer()
    assert moe.mx_dequant is not None and "dequantised to bf16 by the bundled mxfp4 kernel" in moe.label()
    x = (torch.randn(tokens, 320, device=DEV, generator=GEN) * 0.05).bfloat16()
    ids = torch.rand(tokens, 8, device=DEV, generator=GEN).topk(4, dim=-1).indices.int()
    weights = torch.rand(tokens, 4, device=DEV, generator=GEN)
    assert moe._kernel_takes(x, ids) == (tokens < ffn.MXFP4_GROUPED_TOKENS)
    got = moe.experts(x, weights, ids)
    _assert_close(got, reference_moe_pairs(x, weights, ids.long(), w13, w2), f"gpt-oss-like layer T={tokens}")
    if tokens >= ffn.MXFP4_GROUPED_TOKENS:  # the scratch holds the larger projection (w13), shared by the layers
        scratch = moe.rt.mxfp4_scratch[torch.cuda.current_device()]
        assert scratch.numel() == moe.w["w13_blocks"].numel() * 2


def test_moe_grouped_mxfp4_in_a_cuda_graph_two_layers():
    """Two layers share one scratch: each projection is dequantised just before its GEMM, in stream order, so the
    second layer's w13 cannot overwrite what the first layer's w2 GEMM still reads; replays see new inputs."""
    (m1, a13, a2), (m2, b13, b2) = _gpt_oss_like_layer(), _gpt_oss_like_layer()
    m2.rt = m1.rt
    tokens = 300
    x = (torch.randn(tokens, 320, device=DEV, generator=GEN) * 0.05).bfloat16()
    ids = torch.rand(tokens, 8, device=DEV, generator=GEN).topk(4, dim=-1).indices.int()
    weights = torch.rand(tokens, 4, device=DEV, generator=GEN)

    def step():
        return m2.experts(m1.experts(x, weights, ids) * 20, weights, ids)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = step()
    for _ in range(2):
        x.copy_((torch.randn(tokens, 320, device=DEV, generator=GEN) * 0.05).bfloat16())
        graph.replay()
        mid = reference_moe_pairs(x, weights, ids.long(), a13, a2) * 20
        ref = reference_moe_pairs(mid.bfloat16(), weights, ids.long(), b13, b2)
        rel = (y.double() - ref).norm() / ref.norm()
        assert float(rel) <= 3e-2, f"two layers in a graph: rel err {float(rel):.3g} (seed {SEED})"
