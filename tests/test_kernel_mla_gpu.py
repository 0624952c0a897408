"""The NVRTC absorbed-MLA decode kernel against a float64 reference on fresh random data (GPU only).

Every case fills unused latent slots with NaN, permutes block ids, writes garbage into block-table
entries past each sequence's end, and poisons the output before the call.
"""

import os

import pytest

torch = pytest.importorskip("torch")

if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

from cuda_graphs import graph_replay  # noqa: E402
from kvplan.kernels import paged_mla_decode_plan, reference_paged_mla_decode  # noqa: E402

DEV = torch.device("cuda")
F8 = torch.float8_e4m3fn
SEED = int.from_bytes(os.urandom(4), "little")
GEN = torch.Generator(device=DEV).manual_seed(SEED)
print(f"test_kernel_mla_gpu seed {SEED}")


def make_mla_case(H, BS, lens, kv_dtype=torch.bfloat16, kv_scale=1.0, extra_blocks=5):
    B = len(lens)
    nblk = [(n + BS - 1) // BS for n in lens]
    NB = sum(nblk) + extra_blocks
    MB = max(nblk + [1]) + 2
    qn = torch.randn(B, H, 512, device=DEV, generator=GEN).bfloat16()
    qr = torch.randn(B, H, 64, device=DEV, generator=GEN).bfloat16()
    lat = torch.randn(NB, BS, 576, device=DEV, generator=GEN) / kv_scale
    perm = torch.randperm(NB, device=DEV, generator=GEN).to(torch.int32)
    bt = torch.randint(-(2**31), 2**31 - 1, (B, MB), device=DEV, generator=GEN, dtype=torch.int32)
    used = torch.zeros(NB, BS, dtype=torch.bool, device=DEV)
    slot = torch.arange(BS, device=DEV)
    pos = 0
    for b, n in enumerate(lens):
        if nblk[b]:
            ids = perm[pos:pos + nblk[b]]
            pos += nblk[b]
            bt[b, :nblk[b]] = ids
            used[ids.long()] = (torch.arange(nblk[b], device=DEV)[:, None] * BS + slot[None, :]) < n
    lat[~used] = float("nan")
    return qn, qr, lat.to(kv_dtype), bt, torch.tensor(lens, dtype=torch.int32, device=DEV)


def plan_for(case, **kw):
    qn, qr, lat, bt, sl = case
    return paged_mla_decode_plan(qn.shape[1], 512, 64, lat.shape[1], lat.dtype, qn.shape[0], bt.shape[1], DEV, **kw)


def check(plan, case, tol=None, **kw):
    qn = case[0]
    out = torch.full_like(qn, float("nan"))
    got = plan.run(*case, out=out, **kw)
    assert got.data_ptr() == out.data_ptr()
    torch.cuda.synchronize()
    ref = reference_paged_mla_decode(*case, compute_dtype=torch.float64, out_dtype=torch.float64, **kw)
    assert torch.isfinite(got).all(), "NaN/Inf in kernel output"
    empty = case[4] == 0
    assert (got[empty] == 0).all(), "empty sequences must give zeros"
    diff = (got.double() - ref).flatten(1).norm(dim=1)
    rel = torch.where(empty, torch.zeros_like(diff), diff / ref.flatten(1).norm(dim=1).clamp_min(1e-30))
    tol = tol or (3e-2 if case[2].dtype == F8 else 1e-2)
    worst = int(rel.argmax())
    assert float(rel.max()) <= tol, (f"rel err {float(rel.max()):.3g} at b={worst} "
                                     f"len={int(case[4][worst])} (seed {SEED})")
    return got


def batch_subset(case, n):
    """The first n sequences of a case (the latent cache shared)."""
    qn, qr, lat, bt, sl = case
    return qn[:n].contiguous(), qr[:n].contiguous(), lat, bt[:n].contiguous(), sl[:n].contiguous()


@pytest.mark.parametrize("kv_dtype", [torch.bfloat16, F8], ids=["bf16", "fp8"])
@pytest.mark.parametrize("H,BS", [(16, 64), (16, 16), (128, 64)])
def test_mla_sorted_block_table_same_attention(kv_dtype, H, BS):
    case = make_mla_case(H, BS, [0, 1, BS, BS + 1, 3000, 9000, 70001], kv_dtype)
    plan = plan_for(case)
    qn, qr, lat, bt, sl = case
    srt = plan.sorted_block_table(bt, sl)
    assert not torch.equal(srt, bt)
    full = (sl // BS).tolist()
    assert all(torch.equal(srt[b, f:], bt[b, f:]) for b, f in enumerate(full))
    got = check(plan, (qn, qr, lat, srt, sl)).double()
    ref = reference_paged_mla_decode(*case, compute_dtype=torch.float64, out_dtype=torch.float64)  # the given table
    rel = (got - ref)[1:].flatten(1).norm(dim=1) / ref[1:].flatten(1).norm(dim=1)
    assert float(rel.max()) < (3e-2 if kv_dtype == F8 else 1e-2), (rel, SEED)


@pytest.mark.parametrize("kv_dtype", [torch.bfloat16, F8], ids=["bf16", "fp8"])
@pytest.mark.parametrize("H", [16, 32, 64, 128, 8, 40])
@pytest.mark.parametrize("BS", [16, 64])
def test_mla_matches_reference(kv_dtype, H, BS):
    lens = [0, 1, BS - 1, BS, BS + 1, 37, 1000, 3001]
    kw = dict(kv_scale=0.5) if kv_dtype == F8 else {}
    case = make_mla_case(H, BS, lens, kv_dtype, kv_scale=0.5 if kw else 1.0)
    plan = plan_for(case)
    check(plan, case, scale=0.07, **kw)
    check(plan, case, **kw)  # default scale 1/sqrt(576)


@pytest.mark.parametrize("kv_dtype", [torch.bfloat16, F8], ids=["bf16", "fp8"])
def test_mla_long_context_and_split_variants(kv_dtype):
    lens = [70000, 5, 65537]
    case = make_mla_case(16, 64, lens, kv_dtype)
    check(plan_for(case), case)  # automatic splits
    check(plan_for(case, num_splits=1), case)  # one CTA walks 70000 tokens
    check(plan_for(case, num_splits=7, stages=2), case)
    check(plan_for(case, num_splits=200), case)


@pytest.mark.parametrize("kv_dtype", [torch.bfloat16, F8], ids=["bf16", "fp8"])
@pytest.mark.parametrize("H", [16, 128])
def test_mla_merge_of_few_splits_and_of_many(kv_dtype, H):
    """Up to limits.MERGE_FEW_SPLITS splits the merge takes two rows a CTA (kvp_mla_merge_few), above that one row
    a CTA: both against the float64 reference at 2-8 and 9 splits (empty and short sequences leave splits with no
    tokens), and the two merges within a bf16 step of each other where both run."""
    from kvplan.kernels import limits

    case = make_mla_case(H, 64, [0, 3, 700, 4096, 9001], kv_dtype)
    for splits in (2, 3, 8, 9):
        few = check(plan_for(case, num_splits=splits), case)
        one = check(plan_for(case, num_splits=splits, few_merge=False), case)
        if splits <= limits.MERGE_FEW_SPLITS:
            assert torch.allclose(few.float(), one.float(), rtol=1e-2, atol=1e-3)
        else:
            assert torch.equal(few, one)  # the same merge


@pytest.mark.parametrize("tokens, stages", [(16, 4), (16, 3), (32, 3), (64, 2)])
@pytest.mark.parametrize("kv_dtype", [torch.bfloat16, F8], ids=["bf16", "fp8"])
@pytest.mark.parametrize("H", [16, 128])
def test_mla_stage_sizes(tokens, stages, kv_dtype, H):
    """Every latent-rows-per-stage option with ragged lengths (a stage part filled, 1-token and empty sequences),
    splits chosen and forced, bulk and cp.async copies."""
    lens = [0, 1, 15, 17, 300, 4099]
    case = make_mla_case(H, 64, lens, kv_dtype)
    for kw in (dict(), dict(num_splits=5), dict(bulk=False)):
        try:
            plan = plan_for(case, tokens=tokens, stages=stages, **kw)
        except ValueError as exc:  # 128 heads x 4 stages of 64 rows may not fit: the plan says so
            assert "shared memory" in str(exc)
            continue
        check(plan, case)


HOPPER = torch.cuda.get_device_capability(DEV)[0] == 9


@pytest.mark.skipif(not HOPPER, reason="heads in M needs bulk copies (sm_90)")
@pytest.mark.parametrize("H", [16, 8, 3])
@pytest.mark.parametrize("BS", [16, 64])
def test_mla_heads_in_m_and_head_tiles(H, BS):
    """The two mma.sync 16-head paths on the same ragged batch (a partial last step at every offset mod 32, empty and
    1-token sequences), one split and forced splits; the default there is heads in M on 16-token pages and the
    warpgroup-MMA path with the early refill on 64-token pages (session 26)."""
    lens = [0, 1, 2, 7, 31, 32, 33, 40, 63, 95, 300, 4099]
    case = make_mla_case(H, BS, lens)
    default = plan_for(case)
    assert (default.wgmma and default.config.early_free == 2) if BS >= 64 else default.heads_in_m
    assert plan_for(case, tma=False).heads_in_m and plan_for(case, wgmma=False).heads_in_m
    for kw in (dict(), dict(num_splits=1), dict(num_splits=9), dict(stages=3), dict(lazy_rescale=True, num_splits=3),
               dict(tma=False), dict(tma=False, num_splits=1), dict(tma=False, num_splits=9, lazy_rescale=True),
               dict(tma=False, stages=3)):
        a = check(plan_for(case, heads_in_m=True, **kw), case, scale=0.07)
        b = check(plan_for(case, heads_in_m=False,
                           **{k: v for k, v in kw.items() if k not in ("lazy_rescale", "tma")}), case,
                  scale=0.07)
        assert float((a.double() - b.double()).abs().max()) < 0.05


@pytest.mark.skipif(not HOPPER, reason="warpgroup MMAs need sm_90")
@pytest.mark.parametrize("kv_dtype", [torch.bfloat16, F8], ids=["bf16", "fp8"])
@pytest.mark.parametrize("H", [16, 3, 40, 128])
@pytest.mark.parametrize("BS", [16, 32, 64, 128])
def test_mla_wgmma_matches_reference(kv_dtype, H, BS):
    """The warpgroup-MMA path on a ragged batch (a partial last step at offsets around 0, 1, 63 mod 64; empty and
    1-token sequences; pages of every size), one split, forced and automatic splits, against float64 and against
    the other paths (heads in M / head tiles)."""
    lens = [0, 1, 2, 31, 63, 64, 65, 100, 127, 128, 129, 1000, 4099]
    kw8 = dict(kv_scale=0.5) if kv_dtype == F8 else {}
    case = make_mla_case(H, BS, lens, kv_dtype, kv_scale=0.5 if kw8 else 1.0)
    plan = plan_for(case, wgmma=True)
    assert plan.wgmma and plan.head_group == (32 if H > 16 and kv_dtype != F8 else 16)  # (fp8: the e4m3 tile)
    other = plan_for(case, wgmma=False)
    assert plan.path.startswith("warpgroup MMAs")
    assert other.path.endswith("(paged_mla_hm.cuh)" if other.heads_in_m else "(paged_mla_decode.cu)")
    base = check(other, case, scale=0.07, **kw8)
    for kw in (dict(), dict(num_splits=1), dict(num_splits=9), dict(head_group=48 - plan.head_group)):
        got = check(plan_for(case, wgmma=True, **kw), case, scale=0.07, **kw8)
        assert float((got.double() - base.double()).abs().max()) < 0.05
    check(plan, case, **kw8)  # default scale 1/sqrt(576)


@pytest.mark.skipif(not HOPPER, reason="warpgroup MMAs need sm_90")
@pytest.mark.parametrize("e4m3", [False, True], ids=["widened", "e4m3"])
def test_mla_wgmma_fp8_q_beyond_fp16(e4m3):
    """fp8 latents: heads whose q exceeds fp16's range (one head up to 3e6, one at 1e-3) are scaled per head by a
    power of two (into fp16's range for the widened path, into [128, 256) for the e4m3 MMAs) and come out right."""
    case = list(make_mla_case(16, 64, [5, 700, 3001], F8, kv_scale=0.5))
    case[0] = case[0].float()
    case[0][:, 3] *= 1e5
    case[0][:, 5] *= 1e-3
    case[0] = case[0].bfloat16()
    case[1] = (case[1].float() * 30).bfloat16()
    got = check(plan_for(case, wgmma=True, e4m3_mma=e4m3), case, scale=1e-6, kv_scale=0.5)
    assert torch.isfinite(got).all()


@pytest.mark.skipif(not HOPPER, reason="warpgroup MMAs need sm_90")
@pytest.mark.parametrize("H", [16, 3, 40])
@pytest.mark.parametrize("BS", [16, 32, 64, 128])
def test_mla_wgmma_e4m3_matches_reference(H, BS):
    """fp8 latents into e4m3 wgmmas (q and P in two e4m3 parts, PV's A fragments byte-transposed in registers) on the
    ragged batch of the wgmma test, one split, forced and automatic splits, against float64 and the widened path."""
    lens = [0, 1, 2, 31, 63, 64, 65, 100, 127, 128, 129, 1000, 4099]
    case = make_mla_case(H, BS, lens, F8, kv_scale=0.5)
    plan = plan_for(case, wgmma=True, head_group=16, e4m3_mma=True)
    assert "e4m3 MMAs" in plan.path
    base = check(plan_for(case, wgmma=True, head_group=16, e4m3_mma=False), case, scale=0.07, kv_scale=0.5)
    for kw in (dict(), dict(num_splits=1), dict(num_splits=9)):
        got = check(plan_for(case, wgmma=True, head_group=16, e4m3_mma=True, **kw), case, scale=0.07, kv_scale=0.5)
        assert float((got.double() - base.double()).abs().max()) < 0.05
    check(plan, case, kv_scale=0.5)


@pytest.mark.skipif(not HOPPER, reason="warpgroup MMAs need sm_90")
@pytest.mark.parametrize("groups", [2, 4])
@pytest.mark.parametrize("H", [16, 40])
@pytest.mark.parametrize("BS", [16, 64, 128])
def test_mla_wgmma_early_free_matches_reference(groups, H, BS):
    """bf16 latents with each step's blocks refilled as their MMAs complete (the rope block after QK, the value
    blocks after each of 2 or 4 PV groups; 2 is the default at 16 heads a CTA): the ragged batch of the wgmma test,
    one split and several, a > 64K-token sequence and a graph replay, against float64 and the wgmma path without."""
    lens = [0, 1, 2, 31, 63, 64, 65, 100, 127, 128, 129, 1000, 4099, 70000]
    case = make_mla_case(H, BS, lens)
    base = check(plan_for(case, wgmma=True, early_free=0), case, scale=0.07)
    for kw in (dict(), dict(num_splits=1), dict(num_splits=9)):
        plan = plan_for(case, wgmma=True, early_free=groups, **kw)
        got = check(plan, case, scale=0.07)
        assert float((got.double() - base.double()).abs().max()) < 0.05
    assert torch.equal(graph_replay(plan, case), check(plan, case))


@pytest.mark.skipif(not HOPPER, reason="warpgroup MMAs need sm_90")
@pytest.mark.parametrize("early", [0, 2])
@pytest.mark.parametrize("H,BS", [(16, 64), (3, 128), (40, 64)])
def test_mla_wgmma_three_stages_matches_reference(early, H, BS):
    """The opt-in third stage (wg_stages=3: value blocks in a ring of 3 stages, rope blocks in 2 slots with P written
    over the step's; all 232,448 bytes of an sm_90 CTA), without and with the early refill of the value blocks: 1-6
    steps a split and more (fewer steps than stages; every stage and slot parity), ragged ends at 0, 1 and 63 mod 64,
    empty and 1-token sequences, > 64K tokens, one split and several, 40 heads as three 16-head CTAs, a graph replay;
    against float64 and against the default two-stage kernel. Never taken by default."""
    lens = [0, 1, 2, 63, 64, 65, 127, 128, 129, 191, 192, 193, 255, 256, 257, 1000, 4099, 70000]
    case = make_mla_case(H, BS, lens)
    kw16 = dict(head_group=16) if H > 16 else {}
    default = plan_for(case, wgmma=True, **kw16)
    assert default.config.stages == 2 and plan_for(case).config.stages == 2
    base = check(default, case, scale=0.07)
    for kw in (dict(), dict(num_splits=1), dict(num_splits=9), dict(num_splits=200)):
        plan = plan_for(case, wgmma=True, wg_stages=3, early_free=early, **kw16, **kw)
        assert plan.config.stages == 3 and plan.config.early_free == early and plan.smem == 232448
        assert "three value stages" in plan.path
        got = check(plan, case, scale=0.07)
        assert float((got.double() - base.double()).abs().max()) < 0.05
    check(plan, case)  # default scale 1/sqrt(576)
    check(plan, batch_subset(case, 5))
    assert torch.equal(graph_replay(plan, case), check(plan, case))


@pytest.mark.skipif(not HOPPER, reason="warpgroup MMAs need sm_90")
@pytest.mark.parametrize("kv_dtype", [torch.bfloat16, F8], ids=["bf16", "fp8"])
def test_mla_wgmma_long_context_graph_and_subsets(kv_dtype):
    """> 64K tokens in one split and in many; batch subsets (their own split counts); a CUDA graph replay gives the
    same bytes (fp8: the e4m3 MMAs by default, the widened operand tile as well)."""
    case = make_mla_case(16, 64, [70000, 5, 65537, 0, 3000], kv_dtype)
    for kw in (dict(), dict(num_splits=1), dict(num_splits=200)) + ((dict(e4m3_mma=False),) if kv_dtype == F8 else ()):
        check(plan_for(case, wgmma=True, **kw), case)
    plan = plan_for(case, wgmma=True)
    full = check(plan, case)
    check(plan, batch_subset(case, 2))
    assert torch.equal(graph_replay(plan, case), full)


@pytest.mark.skipif(not HOPPER, reason="warpgroup MMAs need sm_90")
@pytest.mark.parametrize("kw,needle", [
    (dict(launcher="cuda.core"), "driver launcher"),
    (dict(tokens=32), "drop tokens"), (dict(stages=3, heads_in_m=True), "drop stages, heads_in_m"),
    (dict(early_free=3), "early_free"), (dict(early_free=2, kv_dtype=F8), "early_free"),
    (dict(wg_stages=3, kv_dtype=F8), "wg_stages=3 needs bf16"), (dict(wg_stages=3, block_size=32), "pages of 64"),
    (dict(wg_stages=3, q_heads=40), "16 heads a CTA"), (dict(wg_stages=4), "wg_stages must be"),
])
def test_mla_wgmma_refuses_what_it_cannot_run(kw, needle):
    base = dict(q_heads=16, kv_lora_rank=512, rope_dim=64, block_size=64, kv_dtype=torch.bfloat16, max_batch=4,
                max_blocks_per_seq=8, device=DEV, wgmma=True)
    with pytest.raises(ValueError, match=needle):
        paged_mla_decode_plan(**{**base, **kw})


@pytest.mark.parametrize("kw,needle", [
    (dict(q_heads=32, heads_in_m=True), "heads_in_m"), (dict(kv_dtype=F8, heads_in_m=True), "heads_in_m"),
    (dict(tokens=16, heads_in_m=True), "heads_in_m"), (dict(bulk=False, heads_in_m=True), "heads_in_m"),
    (dict(q_heads=32, tma=True), "heads-in-M"), (dict(tma=True, launcher="cuda.core"), "driver launcher"),
])
def test_mla_heads_in_m_refuses_what_it_cannot_run(kw, needle):
    base = dict(q_heads=16, kv_lora_rank=512, rope_dim=64, block_size=64, kv_dtype=torch.bfloat16, max_batch=4,
                max_blocks_per_seq=8, device=DEV)
    with pytest.raises(ValueError, match=needle):
        paged_mla_decode_plan(**{**base, **kw})


@pytest.mark.parametrize("bulk", [False, True])
@pytest.mark.parametrize("H", [16, 64])
def test_mla_copy_paths_and_launchers(bulk, H):
    lens = [0, 1, 63, 64, 65, 900]
    case = make_mla_case(H, 16, lens)
    a = check(plan_for(case, bulk=bulk, tma=False), case)  # (the cuda.core launcher keeps the row copies)
    b = check(plan_for(case, bulk=bulk, launcher="cuda.core"), case)
    assert torch.equal(a, b)
    check(plan_for(case, bulk=bulk), case)


def test_mla_batch_subsets_graph_and_streams():
    lens = [3000, 0, 17, 4096, 1, 700, 64, 65]
    case = make_mla_case(16, 64, lens)
    plan = plan_for(case)
    full = check(plan, case)
    for sub in (1, 3):
        check(plan, batch_subset(case, sub))
    assert torch.equal(graph_replay(plan, case), full)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        other = plan.run(*case)
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    assert torch.equal(other, full)


@pytest.mark.parametrize("kw,needle", [
    (dict(kv_lora_rank=256), "kv_lora_rank"), (dict(rope_dim=32), "rope_dim"), (dict(block_size=8), "block_size"),
    (dict(kv_dtype=torch.float16), "kv_dtype"), (dict(q_heads=129), "q_heads"), (dict(max_batch=0), "max_batch"),
    (dict(tokens=8), "tokens must be one of 16, 32, 64"),
])
def test_mla_plan_checks_arguments(kw, needle):
    base = dict(q_heads=16, kv_lora_rank=512, rope_dim=64, block_size=64, kv_dtype=torch.bfloat16, max_batch=4,
                max_blocks_per_seq=8, device=DEV)
    with pytest.raises(ValueError, match=needle):
        paged_mla_decode_plan(**{**base, **kw})


@pytest.mark.parametrize("i,needle", [(0, "q_nope"), (1, "q_rope"), (2, "latent_cache"), (3, "block_table"),
                                      (4, "seq_lens")])
def test_mla_run_checks_arguments(i, needle):
    case = list(make_mla_case(16, 64, [5, 100]))
    plan = plan_for(case)
    case[i] = case[i].float() if case[i].is_floating_point() else case[i].long()
    with pytest.raises(ValueError, match=needle):
        plan.run(*case)
