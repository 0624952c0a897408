"""CPU tests of the pure-torch reference paged decode attention (and the shared argument checks).

The reference is checked against two independent float64 implementations: a per-token loop that
walks the block table itself, and a dense softmax over a contiguous copy of each sequence.
"""

import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from kvplan.kernels import reference_paged_decode_attention as ref_attn  # noqa: E402
from kvplan.kernels.decode_launch import choose_splits  # noqa: E402
from kvplan.kernels import build  # noqa: E402


def scatter_pages(lens, BS, NB, MB, g):
    """Block tables [len(lens), MB] of shuffled page ids out of NB, garbage past each sequence's blocks, and the
    [NB, BS] mask of slots holding a token (the rest get NaN)."""
    nblk = [(n + BS - 1) // BS for n in lens]
    perm = torch.randperm(NB, generator=g).to(torch.int32)
    bt = torch.randint(-(2**30), 2**30, (len(lens), MB), generator=g, dtype=torch.int32)  # garbage everywhere
    used = torch.zeros(NB, BS, dtype=torch.bool)
    pos = 0
    for b, n in enumerate(lens):
        ids = perm[pos:pos + nblk[b]]
        pos += nblk[b]
        bt[b, :nblk[b]] = ids
        for i, blk in enumerate(ids.tolist()):
            used[blk, : min(BS, n - i * BS)] = True
    return bt, used


def make_case(B, Hq, Hkv, D, BS, lens, *, dtype=torch.bfloat16, kv_dtype=None, extra_blocks=3, seed=None,
              kv_fill_scale=1.0):
    """Random paged cache with permuted block ids, NaN in every unused slot, garbage past each end."""
    g = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % 2**31)
    kv_dtype = kv_dtype or dtype
    nblk = [(n + BS - 1) // BS for n in lens]
    NB = sum(nblk) + extra_blocks
    MB = max(max(nblk), 1) + 2
    q = torch.randn(B, Hq, D, generator=g).to(dtype)
    k = (torch.randn(NB, BS, Hkv, D, generator=g) * kv_fill_scale)
    v = (torch.randn(NB, BS, Hkv, D, generator=g) * kv_fill_scale)
    bt, used = scatter_pages(lens, BS, NB, MB, g)
    k[~used] = float("nan")
    v[~used] = float("nan")
    k, v = k.to(kv_dtype), v.to(kv_dtype)
    return q, k, v, bt, torch.tensor(lens, dtype=torch.int32)


def loop_reference(q, k, v, bt, lens, scale=None, k_scale=1.0, v_scale=1.0, window=None):
    """Token-by-token float64 implementation written from the contract."""
    B, Hq, D = q.shape
    _, BS, Hkv, _ = k.shape
    G = Hq // Hkv
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    out = torch.zeros(B, Hq, D, dtype=torch.float64)
    for b in range(B):
        n = int(lens[b])
        lo = max(0, n - window) if window else 0
        toks = list(range(lo, n))
        if not toks:
            continue
        rows_k = torch.stack([k[int(bt[b, t // BS]), t % BS].double() for t in toks]) * k_scale  # [T, Hkv, D]
        rows_v = torch.stack([v[int(bt[b, t // BS]), t % BS].double() for t in toks]) * v_scale
        for h in range(Hq):
            kh = h // G
            s = [float(q[b, h].double() @ rows_k[i, kh]) * scale for i in range(len(toks))]
            m = max(s)
            w = [math.exp(x - m) for x in s]
            tot = sum(w)
            out[b, h] = sum(w[i] / tot * rows_v[i, kh] for i in range(len(toks)))
    return out


def dense_reference(q, k, v, bt, lens, scale=None, k_scale=1.0, v_scale=1.0, window=None):
    """Gather each sequence contiguously, repeat KV heads, softmax in float64."""
    B, Hq, D = q.shape
    _, BS, Hkv, _ = k.shape
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    out = torch.zeros(B, Hq, D, dtype=torch.float64)
    for b in range(B):
        n = int(lens[b])
        if n == 0:
            continue
        nb = (n + BS - 1) // BS
        kk = k[bt[b, :nb].long()].double().reshape(nb * BS, Hkv, D)[:n] * k_scale
        vv = v[bt[b, :nb].long()].double().reshape(nb * BS, Hkv, D)[:n] * v_scale
        if window:
            kk, vv = kk[max(0, n - window):], vv[max(0, n - window):]
        kk = kk.repeat_interleave(Hq // Hkv, dim=1)  # [T, Hq, D]
        vv = vv.repeat_interleave(Hq // Hkv, dim=1)
        s = torch.einsum("hd,thd->ht", q[b].double(), kk) * scale
        out[b] = torch.einsum("ht,thd->hd", torch.softmax(s, -1), vv)
    return out


def rel_err(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


@pytest.mark.parametrize("Hq,Hkv,D,BS", [(8, 2, 64, 16), (4, 4, 128, 8), (16, 1, 64, 32), (6, 3, 256, 16)])
def test_reference_matches_loop_and_dense(Hq, Hkv, D, BS):
    lens = [0, 1, BS - 1, BS, BS + 1, 3 * BS + 5]
    q, k, v, bt, sl = make_case(len(lens), Hq, Hkv, D, BS, lens)
    got = ref_attn(q, k, v, bt, sl, compute_dtype=torch.float64, out_dtype=torch.float64)
    loop = loop_reference(q, k, v, bt, sl)
    dense = dense_reference(q, k, v, bt, sl)
    assert torch.isfinite(got).all()
    assert rel_err(got, loop) < 1e-12
    assert rel_err(got, dense) < 1e-12
    assert got[0].abs().max() == 0  # empty sequence -> zeros


def test_float32_compute_and_output_dtype():
    q, k, v, bt, sl = make_case(3, 8, 2, 128, 16, [5, 40, 77], dtype=torch.float16)
    out = ref_attn(q, k, v, bt, sl)
    assert out.dtype == torch.float16 and out.shape == q.shape
    ref64 = ref_attn(q, k, v, bt, sl, compute_dtype=torch.float64, out_dtype=torch.float64)
    assert rel_err(out, ref64) < 2e-3
    assert rel_err(ref_attn(q, k, v, bt, sl, out_dtype=torch.float32), ref64) < 1e-5


@pytest.mark.parametrize("window", [1, 7, 16, 33, 1000])
def test_sliding_window(window):
    lens = [0, 3, 16, 17, 50, 64]
    q, k, v, bt, sl = make_case(len(lens), 4, 2, 64, 16, lens)
    got = ref_attn(q, k, v, bt, sl, sliding_window=window, compute_dtype=torch.float64, out_dtype=torch.float64)
    assert rel_err(got, loop_reference(q, k, v, bt, sl, window=window)) < 1e-12
    assert torch.isfinite(got).all()


def test_window_skips_blocks_before_it():
    # blocks wholly before the window may hold garbage ids: never read
    q, k, v, bt, sl = make_case(2, 4, 2, 64, 8, [40, 9])
    bt[0, 0] = 10**6
    got = ref_attn(q, k, v, bt, sl, sliding_window=16, compute_dtype=torch.float64, out_dtype=torch.float64)
    bt[0, 0] = 0
    assert rel_err(got, loop_reference(q, k, v, bt, sl, window=16)) < 1e-12


def test_fp8_dequant_direction():
    # stored q8 = x / s; the result must equal attention over x (exactly representable here)
    s_k, s_v = 0.5, 4.0
    lens = [1, 31, 64]
    q, k16, v16, bt, sl = make_case(3, 8, 2, 64, 16, lens, dtype=torch.float16, kv_fill_scale=1.0)
    k8 = (k16.float() / s_k).to(torch.float8_e4m3fn)
    v8 = (v16.float() / s_v).to(torch.float8_e4m3fn)
    k_deq = (k8.float() * s_k).to(torch.float16)  # powers of two: exact in fp16
    v_deq = (v8.float() * s_v).to(torch.float16)
    got = ref_attn(q, k8, v8, bt, sl, k_scale=s_k, v_scale=s_v, compute_dtype=torch.float64, out_dtype=torch.float64)
    want = ref_attn(q, k_deq, v_deq, bt, sl, compute_dtype=torch.float64, out_dtype=torch.float64)
    assert rel_err(got, want) < 1e-12
    wrong = ref_attn(q, k8, v8, bt, sl, k_scale=1 / s_k, v_scale=1 / s_v, compute_dtype=torch.float64,
                     out_dtype=torch.float64)
    assert rel_err(wrong, want) > 0.1
    assert rel_err(got, loop_reference(q, k8, v8, bt, sl, k_scale=s_k, v_scale=s_v)) < 1e-12


def test_nan_in_unused_slots_never_leaks():
    lens = [1, 15, 17, 2]
    q, k, v, bt, sl = make_case(4, 4, 1, 64, 16, lens, extra_blocks=5)
    out = ref_attn(q, k, v, bt, sl, compute_dtype=torch.float64)
    assert torch.isfinite(out).all()


def test_scale_argument():
    q, k, v, bt, sl = make_case(2, 4, 2, 64, 16, [20, 33])
    got = ref_attn(q, k, v, bt, sl, scale=0.3, compute_dtype=torch.float64, out_dtype=torch.float64)
    assert rel_err(got, loop_reference(q, k, v, bt, sl, scale=0.3)) < 1e-12


def _args():
    return make_case(2, 8, 2, 64, 16, [5, 20], seed=1)


@pytest.mark.parametrize("mutate,needle", [
    (lambda a: a.__setitem__(0, a[0].float()), "q must be float16 or bfloat16"),
    (lambda a: a.__setitem__(0, a[0][:, :7].contiguous()), "not a multiple"),
    (lambda a: a.__setitem__(0, a[0][:, :, :32].contiguous()), "k_cache head_dim"),
    (lambda a: a.__setitem__(1, a[1].to(torch.float16)) or a.__setitem__(2, a[2].to(torch.float16)),
     "must match q dtype"),
    (lambda a: a.__setitem__(2, a[2][:, :, :1].contiguous()), "v_cache shape"),
    (lambda a: a.__setitem__(2, a[2].to(torch.float16)), "v_cache dtype"),
    (lambda a: a.__setitem__(3, a[3].long()), "block_table must be int32"),
    (lambda a: a.__setitem__(4, a[4].long()), "seq_lens must be int32"),
    (lambda a: a.__setitem__(4, a[4][:1].contiguous()), "seq_lens has 1 entries"),
    (lambda a: a.__setitem__(3, a[3][:1].contiguous()), "block_table has 1 rows"),
    (lambda a: a.__setitem__(0, a[0].transpose(0, 1).contiguous().transpose(0, 1)), "q must be contiguous"),
    (lambda a: a.__setitem__(1, a[1].transpose(1, 2).contiguous().transpose(1, 2)), "k_cache must be contiguous"),
    (lambda a: a.__setitem__(3, a[3].t().contiguous().t()), "block_table must be contiguous"),
    (lambda a: a.__setitem__(4, torch.tensor([5, -1], dtype=torch.int32)), "seq_lens[1] = -1 is negative"),
    (lambda a: a.__setitem__(4, torch.tensor([5, 10**6], dtype=torch.int32)), "exceeds block_table capacity"),
    (lambda a: a[3].__setitem__((1, 0), 10**6), "out of range"),
    (lambda a: a[3].__setitem__((1, 1), -3), "out of range"),
    (lambda a: a.__setitem__(1, a[1][:, :3].contiguous()) or a.__setitem__(2, a[2][:, :3].contiguous()),
     "block_size 3"),
    (lambda a: a.__setitem__(0, torch.randn(2, 8, 96).bfloat16()) or a.__setitem__(
        1, torch.randn(4, 16, 2, 96).bfloat16()) or a.__setitem__(2, torch.randn(4, 16, 2, 96).bfloat16()),
     "head_dim 96"),
    (lambda a: a.__setitem__(0, a[0][0]), "q must be 3-D"),
])
def test_value_errors(mutate, needle):
    args = list(_args())
    mutate(args)
    with pytest.raises(ValueError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        ref_attn(*args)


@pytest.mark.parametrize("kw,needle", [
    (dict(scale=-1.0), "scale must be finite and > 0"),
    (dict(k_scale=float("nan")), "k_scale"),
    (dict(v_scale=0), "v_scale"),
    (dict(sliding_window=0), "sliding_window must be >= 1"),
    (dict(sliding_window=2.5), "sliding_window must be a positive int"),
])
def test_value_errors_scalars(kw, needle):
    with pytest.raises(ValueError, match=needle):
        ref_attn(*_args(), **kw)


def test_import_is_lazy():
    code = "import sys, kvplan.kernels; print('torch' in sys.modules, 'cuda.core' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["False", "False"]


def test_backend_reports_reason_without_cuda():
    from kvplan.kernels import KernelUnavailableError, kernel_backend, paged_decode_attention

    backend = kernel_backend()
    assert isinstance(backend, str) and backend
    if torch.cuda.is_available():
        pytest.skip("CUDA present: covered by test_kernel_gpu.py")
    assert backend != "nvrtc"
    with pytest.raises(KernelUnavailableError, match="unavailable"):
        paged_decode_attention(*_args())


def test_choose_splits():
    # few sequences: fill about one wave; many: no split
    assert choose_splits(pairs=8, span=131072, slots=264) in (32, 33)
    assert choose_splits(pairs=8, span=4096, slots=264) == 16  # capped by the 256-token minimum chunk
    assert choose_splits(pairs=512, span=8192, slots=264) == 1
    assert choose_splits(pairs=128, span=32768, slots=264) == 2
    assert choose_splits(pairs=8, span=0, slots=264) == 1
    assert choose_splits(pairs=300, span=65536, slots=264) > 1  # 1.14 waves: split to balance


@pytest.mark.parametrize("batch, context, best", [
    (1, 4096, (32, 64)), (4, 4096, (26, 43)), (8, 8192, (29, 32)), (32, 8192, (8, 8)), (1, 32768, (114, 128))])
def test_mla_splits_land_where_the_h200_sweep_was_fastest(batch, context, best):
    """16 heads, 32-token steps, 264 resident CTAs (2 per SM on an H200): the default split count falls in the
    range that was fastest or within 8% of it (benchmarks/RESULTS.md, session 7: B1 4K 18.2 us at 64 splits,
    19.0 at 32, 26.1 at the old floor's 16; B4 4K 23.9 at 32, 25.7 at 43; B8 8K 41.6 at 32; B32 8K 104.7 at 8)."""
    from kvplan.kernels.paged_mla import mla_splits

    splits, chunk = mla_splits(batch, context, 264, 32)
    assert best[0] <= splits <= best[1]
    assert chunk % 32 == 0 and splits * chunk >= context > (splits - 1) * chunk


H200 = dict(index=0, arch="sm_90", sm_count=132, smem_optin=232448, smem_per_sm=233472, regs_per_sm=65536,
            mem_bw=4.8e12)


@pytest.mark.parametrize("head_dim,kv_heads,kv_dtype,few,opts,want", [
    # (bulk, KV heads per CTA, slices, stages) as measured best on the H200 (benchmarks/RESULTS.md, session 6)
    (128, 8, "bfloat16", False, {}, (1, 8, 1, 2)),           # B64 8K: 8 heads share one ring
    (64, 8, "bfloat16", False, {}, (1, 8, 1, 2)),            # head_dim 64 B16 32K
    (128, 8, "float8_e4m3fn", False, {}, (1, 8, 1, 2)),      # fp8 takes bulk copies through the shared ring
    (128, 8, "float8_e4m3fn", True, {}, (0, 1, 4, 5)),       # ... but not for few pairs (B8): cp.async ring
    (128, 8, "float8_e4m3fn", False, dict(slices=4), (0, 1, 4, 5)),  # options that fix the shape: no ring
    (128, 8, "bfloat16", True, {}, (1, 1, 8, 3)),            # few pairs keep split slices
    (128, 4, "bfloat16", False, {}, (1, 1, 8, 3)),           # 4 KV heads: 4 per CTA measured slower than 1
    (128, 8, "bfloat16", False, dict(kv_per_cta=4), (1, 4, 1, 3)),   # asked for: kept
    (256, 8, "bfloat16", False, {}, None),                   # head_dim 256: never a shared ring
])
def test_decode_launch_defaults_on_sm90(monkeypatch, head_dim, kv_heads, kv_dtype, few, opts, want):
    from kvplan.kernels import _runtime as rt
    from kvplan.kernels.decode_launch import plan_cta

    monkeypatch.setattr(rt, "load", lambda config, dev: config)  # no NVRTC or GPU: the plan, not the cubin
    monkeypatch.setattr(rt, "occupancy", lambda ld, name, dev, threads, smem: 1)
    shape, _ = plan_cta((4, kv_heads, head_dim, "bfloat16", kv_dtype), rt.Device(**H200), KernelOptions(**opts), few)
    got = (shape.config.bulk, shape.kv_per_cta, shape.slices, shape.stages)
    if want is None:
        assert shape.kv_per_cta == 1
    else:
        assert got == want
    assert shape.smem <= H200["smem_optin"]
    assert shape.kv_per_cta * shape.slices * shape.head_tiles <= 16


@pytest.mark.parametrize("group,head_dim,kv_dtype,opts,want", [
    # (bulk, head tiles, slices, stages): large groups on sm_90 share one bulk ring across their head tiles
    (64, 128, "bfloat16", {}, (1, 4, 1, 4)),
    (128, 128, "float8_e4m3fn", {}, (1, 8, 1, 4)),      # fp8 rows too: several warps share each copy's issue
    (64, 128, "bfloat16", dict(heads_per_warp=8), (1, 8, 1, 4)),
    (64, 128, "bfloat16", dict(stages=2), (1, 4, 1, 2)),
    (32, 128, "bfloat16", dict(slices=2), (0, 2, 2, None)),  # slices asked for: the cp.async ring
    (64, 64, "float8_e4m3fn", {}, (0, 4, 1, None)),     # 64-byte rows: no bulk copies
])
def test_head_tiles_share_a_bulk_ring_on_sm90(monkeypatch, group, head_dim, kv_dtype, opts, want):
    from kvplan.kernels import _runtime as rt
    from kvplan.kernels.decode_launch import plan_cta

    monkeypatch.setattr(rt, "load", lambda config, dev: config)
    monkeypatch.setattr(rt, "occupancy", lambda ld, name, dev, threads, smem: 1)
    shape, _ = plan_cta((group, 1, head_dim, "bfloat16", kv_dtype), rt.Device(**H200), KernelOptions(**opts), False)
    got = (shape.config.bulk, shape.head_tiles, shape.slices, shape.stages)
    assert got[:3] == want[:3] and (want[3] is None or got[3] == want[3])
    assert shape.kv_per_cta == 1 and shape.smem <= H200["smem_optin"]


def test_heads_in_m_is_checked_defaulted_and_takes_one_slice(monkeypatch):
    """Heads in M where it was asked for and applies, by default where a warp holds 16 heads at head_dim <= 128
    and no token slices are asked for (then without the lazy rescale), refused where it cannot run."""
    from kvplan.kernels import _runtime as rt
    from kvplan.kernels.decode_launch import plan_cta

    monkeypatch.setattr(rt, "load", lambda config, dev: config)
    monkeypatch.setattr(rt, "occupancy", lambda ld, name, dev, threads, smem: 1)
    dev = rt.Device(**H200)
    shape, _ = plan_cta((16, 4, 128, "bfloat16", "bfloat16"), dev, KernelOptions(heads_in_m=True), True)
    assert (shape.config.heads_in_m, shape.slices, shape.config.heads_per_warp) == (1, 1, 16)  # few pairs: not 8
    assert "_hm" in shape.config.name and ("KVP_HM", "1") in shape.config.macros()
    for group, head_dim, opts in ((4, 128, {}), (64, 256, {}), (64, 128, dict(slices=2)),
                                  (64, 128, dict(heads_per_warp=8))):
        with pytest.raises(ValueError, match="heads_in_m needs 16 query heads per warp"):
            plan_cta((group, 1, head_dim, "bfloat16", "bfloat16"), dev, KernelOptions(heads_in_m=True, **opts), False)
    def default(group, head_dim, **opts):
        c = plan_cta((group, 1, head_dim, "bfloat16", "bfloat16"), dev, KernelOptions(**opts), False)[0].config
        return c.heads_in_m, c.lazy_rescale

    assert default(64, 128) == default(16, 64) == default(9, 128) == (1, 0)
    assert default(64, 128, slices=2) == default(64, 128, heads_in_m=False) == (0, 1)  # 16 heads per warp: lazy
    assert default(64, 256) == default(8, 128) == default(64, 128, heads_per_warp=8) == (0, 0)
    shape, _ = plan_cta((64, 1, 128, "bfloat16", "bfloat16"), dev,
                        KernelOptions(heads_in_m=True, page_runs=True), False)
    assert (shape.config.page_runs, shape.config.bulk) == (1, 1) and ("KVP_RUN", "1") in shape.config.macros()
    for opts in (dict(page_runs=True, heads_in_m=False), dict(heads_in_m=True, page_runs=True, bulk=False)):
        with pytest.raises(ValueError, match="page_runs needs heads_in_m and the bulk-copy path"):
            plan_cta((64, 1, 128, "bfloat16", "bfloat16"), dev, KernelOptions(**opts), False)
    ampere = rt.Device(**dict(H200, arch="sm_80"))
    with pytest.raises(ValueError, match="page_runs needs"):
        plan_cta((64, 1, 128, "bfloat16", "bfloat16"), ampere, KernelOptions(heads_in_m=True, page_runs=True), False)


def test_lone_pairs_of_middling_groups_stream_8_slices_a_cta(monkeypatch):
    """A TP rank's few KV heads at batch 1-16 (GLM-4.5-Air tp 4: 24q / 2kv) leave heads in M's one-warp CTAs too
    few to stream (H200: B1 8K 32.6 -> 12.3 us with 8 slices): lone pairs (up to SMs / 8) of groups 9-16 at
    head_dim 128, 16-bit, take the default layout's 8 slices; few pairs, larger groups, fp8 and options keep theirs."""
    from kvplan.kernels import _runtime as rt
    from kvplan.kernels.decode_launch import pair_tier, plan_cta

    monkeypatch.setattr(rt, "load", lambda config, dev: config)
    monkeypatch.setattr(rt, "occupancy", lambda ld, name, dev, threads, smem: 1)
    dev = rt.Device(**H200)
    assert [pair_tier(p, 132) for p in (1, 16, 17, 66, 67)] == ["lone", "lone", "few", "few", "many"]

    def launch(group, lone, kv_dtype="bfloat16", head_dim=128, **opts):
        shape = plan_cta((group, 2, head_dim, "bfloat16", kv_dtype), dev, KernelOptions(**opts), True, lone)[0]
        return shape.config.heads_in_m, shape.slices

    assert launch(12, True) == launch(16, True) == (0, 8)
    assert launch(12, False) == launch(64, True) == launch(12, True, "float8_e4m3fn") == (1, 1)
    assert launch(12, True, head_dim=64) == launch(12, True, heads_in_m=True) == (1, 1)
    assert launch(8, True)[0] == 0  # 8 heads a warp: never heads in M


def test_register_cap_is_passed_and_checked(monkeypatch):
    """max_registers reaches ptxas as KVP_MAXREG (page runs take 168 by default, three 4-warp CTAs per SM); a cap
    that the CTA's threads cannot all get is refused before anything compiles."""
    from kvplan.kernels import _runtime as rt
    from kvplan.kernels.decode_launch import plan_cta

    monkeypatch.setattr(rt, "load", lambda config, dev: config)
    monkeypatch.setattr(rt, "occupancy", lambda ld, name, dev, threads, smem: 1)
    dev = rt.Device(**H200)
    base = plan_cta((64, 1, 128, "bfloat16", "bfloat16"), dev, KernelOptions(), False)[0]
    capped = plan_cta((64, 1, 128, "bfloat16", "bfloat16"), dev, KernelOptions(max_registers=128), False)[0]
    assert base.config.max_regs == 0 and ("KVP_MAXREG", "0") in base.config.macros()
    assert ("KVP_MAXREG", "128") in capped.config.macros() and capped.config.name == base.config.name + "_r128"
    runs = plan_cta((64, 1, 128, "bfloat16", "bfloat16"), dev, KernelOptions(page_runs=True), False)[0]
    assert runs.config.max_regs == 168
    with pytest.raises(ValueError, match="max_registers=255 x 512 threads"):
        plan_cta((128, 1, 256, "bfloat16", "bfloat16"), dev, KernelOptions(max_registers=255), False)
    with pytest.raises(ValueError, match="max_registers must be an int in 64..255"):
        KernelOptions(max_registers=32)


def test_sorted_steps_take_their_own_shared_memory(monkeypatch):
    """sort_steps reaches the kernel as KVP_SORT with its limits, and the plan asks for the order's bytes ahead of
    the rings (16-bit steps, limits.SORT_BYTES) and at least the keys' bytes in them (4 a step): by hand, B1-like
    8 slices x 3 stages of 16 bf16 rows of 128 dims (8,576 bytes a stage: 2 x 4,096 + 384 padding)."""
    from kvplan.kernels import _runtime as rt
    from kvplan.kernels import limits
    from kvplan.kernels.decode_launch import plan_cta

    monkeypatch.setattr(rt, "load", lambda config, dev: config)
    monkeypatch.setattr(rt, "occupancy", lambda ld, name, dev, threads, smem: 1)
    dev = rt.Device(**H200)
    a = (4, 8, 128, "bfloat16", "bfloat16")
    base = plan_cta(a, dev, KernelOptions(slices=8, stages=3, bulk=True), True)[0]
    srt = plan_cta(a, dev, KernelOptions(slices=8, stages=3, bulk=True, sort_steps=True), True)[0]
    assert base.smem == 8 * 3 * 8576 + 1024
    assert srt.smem == base.smem + 2 * 512 == base.smem + limits.SORT_BYTES
    assert srt.config.name == base.config.name + "_sort" and ("KVP_SORT", "1") in srt.config.macros()
    assert not any(k == "KVP_SORT" for k, _ in base.config.macros())  # default cubins: the source as before
    tiny = plan_cta((1, 1, 64, "bfloat16", "float8_e4m3fn"), dev,
                    KernelOptions(slices=1, stages=2, bulk=False, sort_steps=True), True)[0]
    assert tiny.smem >= 4 * limits.SORT_MAX_STEPS + limits.SORT_BYTES  # keys fit where the ring will be
    with pytest.raises(ValueError, match="sort_steps must be True, False or None"):
        KernelOptions(sort_steps=1)


@pytest.mark.parametrize("group,kv_heads,head_dim,kv_dtype", [(64, 1, 128, "bfloat16"), (128, 1, 128, "bfloat16"),
                                                               (16, 2, 64, "float16"), (64, 1, 128, "float8_e4m3fn"),
                                                               (16, 4, 128, "bfloat16"), (24, 1, 64, "float8_e4m3fn"),
                                                               (16, 8, 128, "bfloat16")])
@pytest.mark.parametrize("few", [True, False])
def test_heads_in_m_launches_keep_one_slice(monkeypatch, group, kv_heads, head_dim, kv_dtype, few):
    """Every launch the heads-in-M GPU tests ask for has one token slice (its step has no slice merge), also where
    the default would widen to 8 slices (one head tile, many pairs) or share a ring across KV heads."""
    from kvplan.kernels import _runtime as rt
    from kvplan.kernels.decode_launch import plan_cta

    monkeypatch.setattr(rt, "load", lambda config, dev: config)
    monkeypatch.setattr(rt, "occupancy", lambda ld, name, dev, threads, smem: 1)
    from kvplan.kernels import limits

    runs = (head_dim * limits.kv_bytes(kv_dtype)) % 128 == 0
    variants = [dict(), dict(bulk=False, num_splits=1), dict(num_splits=3, lazy_rescale=False), dict(fuse_merge=True),
                dict(kv_per_cta=kv_heads)] + ([dict(page_runs=True), dict(page_runs=True, stages=2)] if runs else [])
    q_dtype = "float16" if kv_dtype == "float16" else "bfloat16"
    for kw in variants:
        shape, _ = plan_cta((group, kv_heads, head_dim, q_dtype, kv_dtype), rt.Device(**H200),
                            KernelOptions(heads_in_m=True, **kw), few)
        assert (shape.slices, shape.config.heads_in_m, shape.config.heads_per_warp) == (1, 1, 16), kw
        assert shape.kv_per_cta * shape.head_tiles <= shape.config.max_warps and shape.smem <= H200["smem_optin"]


def test_launch_shapes_and_configs():
    assert build.launch_shape(4, 128).heads_per_warp == 8
    s = build.launch_shape(16, 128)
    assert (s.heads_per_warp, s.head_tiles) == (16, 1)
    s = build.launch_shape(128, 128)
    assert (s.heads_per_warp, s.head_tiles, s.max_warps) == (16, 8, 8)
    s = build.launch_shape(128, 256)
    assert (s.heads_per_warp, s.head_tiles, s.max_warps) == (8, 16, 16)
    for g in range(1, 129):
        for d in (64, 128, 256):
            s = build.launch_shape(g, d)
            assert s.heads_per_warp * s.head_tiles >= g
    assert len(build.all_configs()) == 24


# ---- absorbed MLA reference and argument checks ----------------------------------------------------------

from kvplan.kernels import KernelOptions, reference_paged_mla_decode  # noqa: E402


def make_mla_case(H, BS, lens, seed=0, kv_dtype=torch.bfloat16):
    g = torch.Generator().manual_seed(seed)
    nblk = [(n + BS - 1) // BS for n in lens]
    NB = sum(nblk) + 3
    MB = max(nblk + [1]) + 2
    qn = torch.randn(len(lens), H, 512, generator=g).bfloat16()
    qr = torch.randn(len(lens), H, 64, generator=g).bfloat16()
    lat = torch.randn(NB, BS, 576, generator=g)
    bt, used = scatter_pages(lens, BS, NB, MB, g)
    lat[~used] = float("nan")
    return qn, qr, lat.to(kv_dtype), bt, torch.tensor(lens, dtype=torch.int32)


def mla_loop(qn, qr, lat, bt, lens, scale, kv_scale=1.0):
    """Token-by-token float64 absorbed MLA written from the contract."""
    B, H, _ = qn.shape
    BS = lat.shape[1]
    out = torch.zeros(B, H, 512, dtype=torch.float64)
    for b in range(B):
        n = int(lens[b])
        if not n:
            continue
        rows = torch.stack([lat[int(bt[b, t // BS]), t % BS].double() * kv_scale for t in range(n)])  # [T, 576]
        q = torch.cat([qn[b], qr[b]], dim=1).double()
        s = (q @ rows.T) * scale
        out[b] = torch.softmax(s, dim=1) @ rows[:, :512]
    return out


@pytest.mark.parametrize("H,BS", [(16, 64), (3, 16), (128, 32)])
def test_mla_reference_matches_loop(H, BS):
    lens = [0, 1, BS - 1, BS + 1, 150]
    case = make_mla_case(H, BS, lens, seed=H)
    got = reference_paged_mla_decode(*case, scale=0.08, compute_dtype=torch.float64, out_dtype=torch.float64)
    want = mla_loop(*case, 0.08)
    assert torch.isfinite(got).all()
    assert torch.allclose(got, want, rtol=1e-10, atol=1e-12)
    # default scale and bf16 output
    d = reference_paged_mla_decode(*case)
    assert d.dtype == torch.bfloat16 and d.shape == (len(lens), H, 512)


def test_mla_reference_fp8_scale_direction():
    case = make_mla_case(16, 16, [40, 7], kv_dtype=torch.float8_e4m3fn)
    got = reference_paged_mla_decode(*case, kv_scale=0.25, compute_dtype=torch.float64, out_dtype=torch.float64)
    assert torch.allclose(got, mla_loop(*case, 1 / 24, kv_scale=0.25), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("i,value,needle", [
    (0, lambda c: c[0].float(), "bfloat16"), (0, lambda c: c[0][..., :256], "kv_lora_rank"),
    (1, lambda c: c[1][..., :32], "q_rope"), (2, lambda c: c[2][..., :512], "latent_cache"),
    (2, lambda c: c[2][:, :8], "block_size"), (2, lambda c: c[2].half(), "latent_cache must be"),
    (3, lambda c: c[3].long(), "block_table"), (4, lambda c: c[4].long(), "seq_lens"),
    (4, lambda c: torch.tensor([40, -1], dtype=torch.int32), "negative"),
    (4, lambda c: torch.tensor([40, 10**6], dtype=torch.int32), "capacity"),
    (3, lambda c: c[3].clone().fill_(10**6), r"block_table\[0, 0\]"),
])
def test_mla_reference_value_errors(i, value, needle):
    case = list(make_mla_case(16, 16, [40, 7]))
    case[i] = value(case)
    with pytest.raises(ValueError, match=needle):
        reference_paged_mla_decode(*case)


@pytest.mark.parametrize("kw,needle", [
    (dict(num_splits=0), "num_splits"), (dict(stages=1), "stages"), (dict(stages=9), "stages"),
    (dict(bulk=1), "bulk"), (dict(fuse_merge=None), "fuse_merge"), (dict(l2_prefetch=3), "l2_prefetch"),
    (dict(launcher="cupy"), "launcher"), (dict(slices=True), "slices"),
])
def test_kernel_options_validate(kw, needle):
    with pytest.raises(ValueError, match=f"KernelOptions.{needle}"):
        KernelOptions(**kw)


def test_kernel_options_are_frozen_and_hashable():
    o = KernelOptions(num_splits=4)
    assert hash(o) == hash(KernelOptions(num_splits=4))
    with pytest.raises(Exception):
        o.num_splits = 5


def test_limits_reach_the_cuda_sources_as_macros():
    from kvplan.kernels import configs, limits

    cfg = configs.KernelConfig("bfloat16", "bfloat16", 128, 8, 8, bulk=1)
    macros = dict(cfg.macros())
    assert int(macros["KVP_MBAR_AREA"]) == limits.MBAR_AREA
    assert int(macros["KVP_BULK_STEP_BYTES"]) == limits.bulk_step_bytes(128, "bfloat16")
    mla = dict(configs.MLAConfig("float8_e4m3fn", 64, 1).macros())
    assert int(mla["KVP_MLA_STAGE_OFFSET"]) == limits.mla_fixed_smem(64, "float8_e4m3fn")
    # no source repeats a size that limits.py owns
    for name in ("paged_decode.cu", "paged_mla_decode.cu"):
        text = (configs.HERE / name).read_text()
        assert "1024" not in text and "= 1216" not in text, name
