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
                                             (8, 2, 128, 64, True), (4, 2, 40, 24, False), (2, 1, 72, 40, True)])
def test_matches_the_torch_path(kernel_torch, hq, hk, d, rot, fp8):
    """rot a multiple of 16 takes the eight-values-a-thread entry, the last two shapes the one-value entry."""
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
    plan = RopeCachePlan(hq, hk, d, rot, "bfloat16", fp8)
    got_q = plan.run(q, k, v, cos, sin, got_k, got_v, slots, k_scale, v_scale)
    torch.cuda.synchronize()
    assert plan.vectorized == (rot % 16 == 0)
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


@pytest.mark.parametrize("heads,rank,rot,fp8", [(16, 512, 64, False), (128, 512, 64, True), (3, 96, 32, False),
                                                (3, 96, 24, True)])
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
    plan = MlaRopeCachePlan(heads, rank, rot, "bfloat16", fp8)
    got_q = plan.run(q, kv, norm_w, 1e-6, cos, sin, got, slots)
    torch.cuda.synchronize()
    assert plan.vectorized == (rot % 16 == 0)
    assert got_q.shape == (t, heads, rot) and got_q.is_contiguous()
    assert torch.allclose(got_q.float(), want_q.float(), atol=0.04, rtol=0.02)
    assert torch.allclose(got.float(), want.float(), atol=0.03, rtol=0.13 if fp8 else 0.02)
    others = torch.ones(blocks * bs, dtype=torch.bool, device="cuda")
    others[slots] = False
    flat = (lambda c: c.view(blocks * bs, -1)[others].view(torch.uint8)) if fp8 else \
        (lambda c: c.view(blocks * bs, -1)[others])
    assert torch.equal(flat(got), flat(fill))


@pytest.mark.parametrize("fp8,with_cache,shift", [(False, True, 0), (True, True, 0), (False, False, 0),
                                                   (True, True, 1)])
def test_prefill_writes_the_rotated_keys_out_and_skips_slots_of_minus_one(kernel_torch, fp8, with_cache, shift):
    """Prefill's form: k rotated also into a contiguous k_out (attention over the prompt reads it); a slot of -1
    (a window's token kept out of the cache) stores nothing, and without caches (the profile run) nothing is
    stored at all. Against the torch path of verify's prefill (Rope.apply, write_cache with masked slots)."""
    torch = kernel_torch
    from kvplan.gpu.ops import Rope
    from kvplan.gpu.step import write_cache

    gen = torch.Generator(device="cuda").manual_seed(11 + fp8)
    hq, hk, d, rot, t, blocks, bs, act = 8, 2, 64, 64, 300, 40, 16, torch.bfloat16
    # shift 1: every row one value in (not 16-byte aligned), which takes the one-value entry
    qkv = torch.randn(t, (hq + 2 * hk) * d + shift, device="cuda", generator=gen).to(act)[:, shift:]
    q, k, v = (p.view(t, -1, d) for p in qkv.split([hq * d, hk * d, hk * d], dim=-1))
    cos, sin = Rope(rot, "cuda", act).tables(torch.arange(t, device="cuda"), 10000.0)
    cdt = torch.float8_e4m3fn if fp8 else act
    k_scale, v_scale = (0.5, 0.25) if fp8 else (1.0, 1.0)
    slots = torch.randperm(blocks * bs, device="cuda", generator=gen)[:t]
    slots[: t // 3] = -1  # the first third outside a window
    fill = torch.randn(blocks, bs, hk, d, device="cuda", generator=gen).to(cdt)
    want_k, want_v, got_k, got_v = fill.clone(), fill.clone(), fill.clone(), fill.clone()
    write_cache(want_k, Rope.apply(k, cos, sin), slots, k_scale, masked=True)
    write_cache(want_v, v, slots, v_scale, masked=True)
    plan = RopeCachePlan(hq, hk, d, rot, "bfloat16", fp8)
    caches = (got_k, got_v, slots) if with_cache else (None, None, None)
    got_q, got_k_out = plan.run(q, k, v, cos, sin, *caches, k_scale, v_scale, keys_out=True)
    torch.cuda.synchronize()
    assert plan.vectorized == (shift == 0)
    for got, want in ((got_q, Rope.apply(q, cos, sin)), (got_k_out, Rope.apply(k, cos, sin))):
        assert got.is_contiguous() and torch.allclose(got.float(), want.float(), atol=0.04, rtol=0.02)
    if not with_cache:
        return
    for got, want in ((got_k, want_k), (got_v, want_v)):
        assert torch.allclose(got.float(), want.float(), atol=0.03, rtol=0.13 if fp8 else 0.02)
        kept = torch.ones(blocks * bs, dtype=torch.bool, device="cuda")
        kept[slots[slots >= 0]] = False
        raw = (lambda c: c.view(blocks * bs, -1)[kept].view(torch.uint8)) if fp8 else \
            (lambda c: c.view(blocks * bs, -1)[kept])
        assert torch.equal(raw(got), raw(fill))


@pytest.mark.parametrize("with_cache", [True, False])
def test_mla_prefill_gives_the_whole_query_the_latent_and_the_key_part(kernel_torch, with_cache):
    """MLA prefill's form: the whole query (nope dims, then the rotated ones), the normed latent and the rotated
    key part written out for attention over the prompt, the cache written at slots >= 0 only (or not at all)."""
    torch = kernel_torch
    from kvplan.gpu.ops import Rope, rms_norm
    from kvplan.gpu.step import write_cache
    from kvplan.kernels.rope_cache import MlaRopeCachePlan

    gen = torch.Generator(device="cuda").manual_seed(3 + with_cache)
    heads, rank, rot, nope, t, blocks, bs, act = 16, 512, 64, 128, 200, 5, 64, torch.bfloat16
    q = torch.randn(t, heads * (nope + rot), device="cuda", generator=gen).to(act).view(t, heads, nope + rot)
    kv = (torch.randn(t, rank + rot, device="cuda", generator=gen) * 3).to(act)
    norm_w = torch.rand(rank, device="cuda", generator=gen).to(act) + 0.5
    cos, sin = Rope(rot, "cuda", act).tables(torch.arange(t, device="cuda") * 37, 10000.0)
    slots = torch.randperm(blocks * bs, device="cuda", generator=gen)[:t]
    slots[::4] = -1
    fill = torch.randn(blocks, bs, rank + rot, device="cuda", generator=gen).to(act)
    want, got = fill.clone(), fill.clone()
    latent = rms_norm(kv[:, :rank], norm_w, 1e-6)
    k_pe = Rope.apply(kv[:, None, rank:], cos, sin)[:, 0]
    write_cache(want, torch.cat([latent, k_pe], dim=-1), slots, masked=True)
    plan = MlaRopeCachePlan(heads, rank, rot, "bfloat16", False)
    q_whole, got_latent, got_k_pe = plan.run(q, kv, norm_w, 1e-6, cos, sin, got if with_cache else None,
                                             slots if with_cache else None, prefill=True)
    torch.cuda.synchronize()
    want_q = torch.cat([q[..., :nope], Rope.apply(q[..., nope:], cos, sin)], dim=-1)
    assert q_whole.shape == (t, heads, nope + rot) and q_whole.is_contiguous()
    assert torch.equal(q_whole[..., :nope], q[..., :nope])  # copied as they are
    for g, w in ((q_whole, want_q), (got_latent, latent), (got_k_pe, k_pe)):
        assert torch.allclose(g.float(), w.float(), atol=0.04, rtol=0.02)
    assert torch.allclose(got.float(), (want if with_cache else fill).float(), atol=0.03, rtol=0.02)
    kept = torch.ones(blocks * bs, dtype=torch.bool, device="cuda")
    kept[slots[slots >= 0]] = False
    assert torch.equal(got.view(blocks * bs, -1)[kept], fill.view(blocks * bs, -1)[kept])
