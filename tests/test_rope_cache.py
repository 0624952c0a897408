"""The fused RoPE + paged K/V write kernel (kvplan/kernels/rope_cache.cu) against verify's torch path
(kvplan/gpu/ops.py Rope.apply and step.write_cache, themselves checked against the float64 reference in
tests/test_verify_model.py). CPU: argument checks. GPU (skips without CUDA): bf16 and fp8 caches, partial
rotary dims, q/k/v as slices of one fused QKV row, permuted slots, untouched slots left alone."""

import pytest

from kvplan.kernels.configs import all_rope_cache_configs
from kvplan.kernels.rope_cache import RopeCachePlan


def test_shapes_it_refuses_before_touching_a_gpu():
    with pytest.raises(ValueError, match="rotary dims 130 must be even and at most head_dim 128"):
        RopeCachePlan(8, 2, 128, 130, "bfloat16", False)
    with pytest.raises(ValueError, match="activations must be one of float16, bfloat16"):
        RopeCachePlan(8, 2, 128, 128, "float32", False)
    with pytest.raises(ValueError, match="kv_heads must be a positive int"):
        RopeCachePlan(8, 0, 128, 128, "bfloat16", False)
    assert {c.name for c in all_rope_cache_configs()} == {"rope_cache_float16", "rope_cache_float16_fp8",
                                                          "rope_cache_bfloat16", "rope_cache_bfloat16_fp8"}


@pytest.mark.parametrize("hq,hk,d,rot,fp8", [(8, 2, 128, 128, False), (4, 4, 64, 32, False), (16, 1, 256, 256, True),
                                             (8, 2, 128, 64, True)])
def test_matches_the_torch_path(kernel_torch, hq, hk, d, rot, fp8):
    torch = kernel_torch
    from kvplan.gpu.ops import Rope
    from kvplan.gpu.step import write_cache

    gen = torch.Generator(device="cuda").manual_seed(hq * d + rot)
    t, blocks, bs, act = 5, 9, 16, torch.bfloat16
    qkv = torch.randn(t, (hq + 2 * hk) * d, device="cuda", generator=gen).to(act)
    q, k, v = (p.view(t, -1, d) for p in qkv.split([hq * d, hk * d, hk * d], dim=-1))
    positions = torch.tensor([0, 7, 100, 4095, 33], device="cuda")
    cos, sin = Rope(rot, "cuda", act).tables(positions, 10000.0)
    cdt = torch.float8_e4m3fn if fp8 else act
    k_scale, v_scale = (0.5, 0.25) if fp8 else (1.0, 1.0)
    slots = torch.randperm(blocks * bs, device="cuda", generator=gen)[:t]
    fill = torch.randn(blocks, bs, hk, d, device="cuda", generator=gen).to(cdt)
    want_k, want_v, got_k, got_v = fill.clone(), fill.clone(), fill.clone(), fill.clone()
    want_q = Rope.apply(q, cos, sin)
    write_cache(want_k, Rope.apply(k, cos, sin), slots, k_scale)
    write_cache(want_v, v, slots, v_scale)
    got_q = RopeCachePlan(hq, hk, d, rot, "bfloat16", fp8).run(q, k, v, cos, sin, got_k, got_v, slots, k_scale,
                                                               v_scale)
    torch.cuda.synchronize()
    assert got_q.is_contiguous() and torch.allclose(got_q.float(), want_q.float(), atol=0.04, rtol=0.02)
    for got, want in ((got_k, want_k), (got_v, want_v)):
        # one rounding vs torch's two or three: within two bf16 steps, or one fp8 e4m3 step (12.5%)
        assert torch.allclose(got.float(), want.float(), atol=0.03, rtol=0.13 if fp8 else 0.02)
        others = torch.ones(blocks * bs, dtype=torch.bool, device="cuda")
        others[slots] = False
        assert torch.equal(got.view(blocks * bs, -1)[others].view(torch.uint8) if fp8 else
                           got.view(blocks * bs, -1)[others], fill.view(blocks * bs, -1)[others].view(torch.uint8)
                           if fp8 else fill.view(blocks * bs, -1)[others])


def test_mla_shapes_it_refuses_before_touching_a_gpu():
    from kvplan.kernels.rope_cache import MlaRopeCachePlan

    with pytest.raises(ValueError, match="rank must be a positive int"):
        MlaRopeCachePlan(16, 0, 64, "bfloat16", False)
    with pytest.raises(ValueError, match="rotary dims 63 must be even"):
        MlaRopeCachePlan(16, 512, 63, "bfloat16", False)
    with pytest.raises(ValueError, match="activations must be one of"):
        MlaRopeCachePlan(16, 512, 64, "float8_e4m3fn", False)


@pytest.mark.parametrize("heads,rank,rot,fp8", [(16, 512, 64, False), (128, 512, 64, True), (3, 96, 32, False)])
def test_mla_matches_the_torch_path(kernel_torch, heads, rank, rot, fp8):
    """DeepSeek-V2-Lite (16 heads) and V3 at TP 1 (128 heads, fp8 latent cache), plus an odd small shape: the latent
    norm, both RoPEs and the latent write against verify's torch path (F.rms_norm, Rope.apply, write_cache)."""
    torch = kernel_torch
    from kvplan.gpu.ops import Rope, rms_norm
    from kvplan.gpu.step import write_cache
    from kvplan.kernels.rope_cache import MlaRopeCachePlan

    gen = torch.Generator(device="cuda").manual_seed(heads + rank)
    t, nope, blocks, bs, act = 4, 128, 7, 64, torch.bfloat16
    q = torch.randn(t, heads * (nope + rot), device="cuda", generator=gen).to(act).view(t, heads, nope + rot)
    kv = (torch.randn(t, rank + rot, device="cuda", generator=gen) * 3).to(act)
    norm_w = torch.rand(rank, device="cuda", generator=gen).to(act) + 0.5
    positions = torch.tensor([0, 9, 4095, 70000], device="cuda")
    cos, sin = Rope(rot, "cuda", act).tables(positions, 10000.0)
    cdt = torch.float8_e4m3fn if fp8 else act
    slots = torch.randperm(blocks * bs, device="cuda", generator=gen)[:t]
    fill = torch.randn(blocks, bs, rank + rot, device="cuda", generator=gen).to(cdt)
    want, got = fill.clone(), fill.clone()
    latent = rms_norm(kv[:, :rank], norm_w, 1e-6)
    k_pe = Rope.apply(kv[:, None, rank:], cos, sin)[:, 0]
    write_cache(want, torch.cat([latent, k_pe], dim=-1), slots)
    want_q = Rope.apply(q[..., nope:], cos, sin)
    got_q = MlaRopeCachePlan(heads, rank, rot, "bfloat16", fp8).run(q, kv, norm_w, 1e-6, cos, sin, got, slots)
    torch.cuda.synchronize()
    assert got_q.shape == (t, heads, rot) and got_q.is_contiguous()
    assert torch.allclose(got_q.float(), want_q.float(), atol=0.04, rtol=0.02)
    assert torch.allclose(got.float(), want.float(), atol=0.03, rtol=0.13 if fp8 else 0.02)
    others = torch.ones(blocks * bs, dtype=torch.bool, device="cuda")
    others[slots] = False
    flat = (lambda c: c.view(blocks * bs, -1)[others].view(torch.uint8)) if fp8 else \
        (lambda c: c.view(blocks * bs, -1)[others])
    assert torch.equal(flat(got), flat(fill))
