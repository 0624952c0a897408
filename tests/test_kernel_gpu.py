"""The NVRTC paged decode kernel against a float64 reference on fresh random data (GPU only).

Every case fills unused cache slots with NaN, permutes block ids, writes garbage into block-table
entries past each sequence's end, and poisons the output before the call.
"""

import functools
import math
import os

import pytest

torch = pytest.importorskip("torch")

if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

from kvplan.kernels import (  # noqa: E402
    KernelOptions,
    KernelUnavailableError,
    kernel_backend,
    paged_decode_attention,
    paged_decode_plan,
    reference_paged_decode_attention,
)
from kvplan.kernels import _runtime as rt  # noqa: E402
from cuda_graphs import graph_replay  # noqa: E402

DEV = torch.device("cuda")
F8 = torch.float8_e4m3fn
SEED = int.from_bytes(os.urandom(4), "little")
GEN = torch.Generator(device=DEV).manual_seed(SEED)
print(f"test_kernel_gpu seed {SEED}")


def make_case(B, Hq, Hkv, D, BS, lens, *, dtype=torch.bfloat16, kv_dtype=None, extra_blocks=7, kv_scale=1.0,
              min_block=0):
    kv_dtype = kv_dtype or dtype
    nblk = [(n + BS - 1) // BS for n in lens]
    NB = min_block + sum(nblk) + extra_blocks
    MB = max(nblk + [1]) + 3
    q = torch.randn(B, Hq, D, device=DEV, generator=GEN).to(dtype)
    k = torch.randn(NB, BS, Hkv, D, device=DEV, generator=GEN) / kv_scale
    v = torch.randn(NB, BS, Hkv, D, device=DEV, generator=GEN) / kv_scale
    perm = (torch.randperm(NB - min_block, device=DEV, generator=GEN) + min_block).to(torch.int32)
    bt = torch.randint(-(2**31), 2**31 - 1, (B, MB), device=DEV, generator=GEN, dtype=torch.int32)
    used = torch.zeros(NB, BS, dtype=torch.bool, device=DEV)
    slot = torch.arange(BS, device=DEV)
    pos = 0
    for b, n in enumerate(lens):
        if nblk[b]:
            ids = perm[pos:pos + nblk[b]]
            pos += nblk[b]
            bt[b, :nblk[b]] = ids
            starts = torch.arange(nblk[b], device=DEV) * BS
            used[ids.long()] = (starts[:, None] + slot[None, :]) < n
    k[~used] = float("nan")
    v[~used] = float("nan")
    return q, k.to(kv_dtype), v.to(kv_dtype), bt, torch.tensor(lens, dtype=torch.int32, device=DEV)


def check(q, k, v, bt, sl, tol=None, **kw):
    out = torch.full_like(q, float("nan"))
    got = paged_decode_attention(q, k, v, bt, sl, out=out, **kw)
    assert got.data_ptr() == out.data_ptr()
    torch.cuda.synchronize()
    ref = reference_paged_decode_attention(
        q, k, v, bt, sl, compute_dtype=torch.float64, out_dtype=torch.float64,
        **{x: y for x, y in kw.items() if x in ("scale", "k_scale", "v_scale", "sliding_window")})
    assert torch.isfinite(got).all(), "NaN/Inf in kernel output"
    if tol is None:
        tol = 5e-2 if k.dtype == F8 else 1e-2
    # per sequence, so one wrong sequence cannot hide in the norm of the others
    diff = (got.double() - ref).flatten(1).norm(dim=1)
    norm = ref.flatten(1).norm(dim=1)
    empty = sl == 0
    assert (got[empty] == 0).all(), "empty sequences must give zeros"
    rel = torch.where(empty, torch.zeros_like(diff), diff / norm.clamp_min(1e-30))
    worst = int(rel.argmax())
    assert float(rel.max()) <= tol, f"rel err {float(rel.max()):.3g} at b={worst} len={int(sl[worst])} (seed {SEED})"
    return got


def test_backend_is_nvrtc():
    assert kernel_backend() == "nvrtc"


DTYPES = [(torch.bfloat16, torch.bfloat16), (torch.float16, torch.float16), (torch.bfloat16, F8), (torch.float16, F8)]


@pytest.mark.parametrize("dtype,kv_dtype", DTYPES, ids=["bf16", "fp16", "bf16-fp8", "fp16-fp8"])
@pytest.mark.parametrize("D", [64, 128, 256])
@pytest.mark.parametrize("Hq,Hkv", [(32, 8), (8, 8), (12, 1), (16, 2)])
def test_dtypes_dims_groups(dtype, kv_dtype, D, Hq, Hkv):
    BS = 16
    lens = [0, 1, BS - 1, BS, BS + 1, 1000, 37, 300]
    kw = dict(k_scale=0.5, v_scale=2.0) if kv_dtype == F8 else {}
    check(*make_case(len(lens), Hq, Hkv, D, BS, lens, dtype=dtype, kv_dtype=kv_dtype, kv_scale=0.5 if kw else 1.0),
          **kw)


@pytest.mark.parametrize("BS", [8, 16, 32, 64, 128])
def test_block_sizes(BS):
    lens = [1, BS - 1, BS, BS + 1, 3 * BS + 2, 1000]
    check(*make_case(len(lens), 32, 8, 128, BS, lens))


@pytest.mark.parametrize("Hq,D", [(128, 128), (128, 64), (128, 256), (64, 128), (24, 128), (40, 256), (96, 64)])
def test_mqa_and_large_groups(Hq, D):
    lens = [0, 1, 17, 500, 2000]
    check(*make_case(len(lens), Hq, 1, D, 16, lens))


@pytest.mark.parametrize("kv_dtype", [torch.bfloat16, F8])
def test_long_context_split_k(kv_dtype):
    lens = [70000, 1, 65537]
    case = make_case(len(lens), 32, 8, 128, 16, lens, kv_dtype=kv_dtype)
    check(*case)  # auto splits (many)
    check(*case, num_splits=1)  # one CTA walks all 70000 tokens
    check(*case, num_splits=7)


def test_b1_split_and_many_sequences():
    check(*make_case(1, 32, 8, 128, 16, [4096]))
    g = torch.Generator().manual_seed(SEED)
    lens = torch.randint(0, 700, (300,), generator=g).tolist()
    lens[:4] = [0, 1, 15, 16]
    check(*make_case(len(lens), 32, 8, 128, 16, lens))


@pytest.mark.parametrize("window", [1, 15, 16, 100, 4096])
@pytest.mark.parametrize("kv_dtype", [torch.bfloat16, F8])
def test_sliding_window(window, kv_dtype):
    lens = [0, 1, 15, 16, 17, 100, 1000, 9000]
    q, k, v, bt, sl = make_case(len(lens), 16, 4, 128, 16, lens, kv_dtype=kv_dtype)
    # blocks wholly before the window are never read: garbage there must be harmless
    for b, n in enumerate(lens):
        first = max(0, n - window) // 16
        bt[b, :first] = -12345
    check(q, k, v, bt, sl, sliding_window=window)
    check(q, k, v, bt, sl, sliding_window=window, num_splits=3)


def test_slices_and_stages_variants():
    case = make_case(5, 32, 8, 128, 16, [1, 16, 333, 2047, 5000])
    for slices in (1, 2, 4, 8):
        for stages in (2, 3, 5):
            check(*case, options=KernelOptions(slices=slices, stages=stages))


def test_scale_and_offsets_64bit():
    # K and V each > 2^31 elements (> 4 GiB): byte offsets need 64 bits
    Hkv, D, BS = 1, 128, 16
    per_block = BS * Hkv * D
    NB = (2**31) // per_block + 64
    k = torch.empty(NB, BS, Hkv, D, dtype=torch.bfloat16, device=DEV)
    v = torch.empty_like(k)
    lens = [1000, 33, 4096]
    B = len(lens)
    MB = 300
    bt = torch.full((B, MB), -1, dtype=torch.int32, device=DEV)
    nxt = NB - 1
    for b, n in enumerate(lens):
        for i in range((n + BS - 1) // BS):
            bt[b, i] = nxt
            k[nxt] = torch.randn(BS, Hkv, D, device=DEV, generator=GEN).bfloat16()
            v[nxt] = torch.randn(BS, Hkv, D, device=DEV, generator=GEN).bfloat16()
            nxt -= 1
    q = torch.randn(B, 8, D, device=DEV, generator=GEN).bfloat16()
    sl = torch.tensor(lens, dtype=torch.int32, device=DEV)
    # the tails of the last blocks hold whatever torch.empty gave: exactly the slots never to read
    check(q, k, v, bt, sl, scale=0.05)
    del k, v
    torch.cuda.empty_cache()


def test_non_default_stream_and_graph_capture():
    q, k, v, bt, sl = make_case(4, 32, 8, 128, 16, [10, 3000, 0, 800])
    ref = paged_decode_attention(q, k, v, bt, sl)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        other = paged_decode_attention(q, k, v, bt, sl)
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    assert torch.equal(ref, other)  # also: deterministic
    # without the table check the splits follow the table's capacity, so compare like with like
    eager = paged_decode_attention(q, k, v, bt, sl, check_block_ids=False)  # also warms up outside capture
    out = torch.full_like(q, float("nan"))
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        paged_decode_attention(q, k, v, bt, sl, out=out, check_block_ids=False)
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(out, eager)
    assert float((eager.float() - ref.float()).norm() / ref.float().norm()) < 1e-2


def _base():
    return list(make_case(2, 8, 2, 64, 16, [5, 20]))


def _misaligned_q(a):
    buf = torch.empty(a[0].numel() + 1, dtype=a[0].dtype, device=DEV)
    a[0] = buf[1:].view(a[0].shape)


@pytest.mark.parametrize("mutate,needle", [
    (lambda a: a.__setitem__(0, a[0].float()), "q must be float16 or bfloat16"),
    (lambda a: a.__setitem__(0, a[0].cpu()), "q must be on a CUDA device"),
    (lambda a: a.__setitem__(1, a[1].cpu()), "k_cache is on cpu"),
    (lambda a: a.__setitem__(3, a[3].cpu()), "block_table is on cpu"),
    (lambda a: a.__setitem__(0, a[0][:, :7].contiguous()), "not a multiple"),
    (lambda a: a.__setitem__(0, torch.randn(2, 8 * 129, 64, device=DEV).bfloat16()) or a.__setitem__(
        1, a[1][:, :, :1].contiguous()) or a.__setitem__(2, a[2][:, :, :1].contiguous()), "at most 128"),
    (lambda a: a.__setitem__(1, a[1].half()) or a.__setitem__(2, a[2].half()), "must match q dtype"),
    (lambda a: a.__setitem__(2, a[2].half()), "v_cache dtype"),
    (lambda a: a.__setitem__(1, a[1].float()) or a.__setitem__(2, a[2].float()), "k_cache must be float16"),
    (lambda a: a.__setitem__(3, a[3].long()), "block_table must be int32"),
    (lambda a: a.__setitem__(4, a[4].long()), "seq_lens must be int32"),
    (lambda a: a.__setitem__(0, a[0].transpose(0, 1).contiguous().transpose(0, 1)), "q must be contiguous"),
    (lambda a: a.__setitem__(2, a[2].transpose(1, 2).contiguous().transpose(1, 2)), "v_cache must be contiguous"),
    (lambda a: a.__setitem__(4, torch.tensor([5, -2], dtype=torch.int32, device=DEV)), "negative"),
    (lambda a: a.__setitem__(4, torch.tensor([5, 10**6], dtype=torch.int32, device=DEV)), "capacity"),
    (lambda a: a[3].__setitem__((1, 1), 10**6), r"block_table\[1, 1\]"),
    (lambda a: a[3].__setitem__((0, 0), -1), r"block_table\[0, 0\]"),
    (lambda a: a.__setitem__(1, a[1][:, :12].contiguous()) or a.__setitem__(2, a[2][:, :12].contiguous()),
     "block_size 12"),
    (lambda a: a.__setitem__(0, torch.randn(2, 8, 32, device=DEV).bfloat16()) or a.__setitem__(
        1, a[1][..., :32].contiguous()) or a.__setitem__(2, a[2][..., :32].contiguous()), "head_dim 32"),
    (lambda a: a.__setitem__(1, a[1][..., :32].contiguous()) or a.__setitem__(2, a[2][..., :32].contiguous()),
     "k_cache head_dim"),
    (_misaligned_q, "16-byte aligned"),
])
def test_value_errors(mutate, needle):
    a = _base()
    mutate(a)
    with pytest.raises(ValueError, match=needle):
        paged_decode_attention(*a)


@pytest.mark.parametrize("kw,needle", [
    (dict(scale=0.0), "scale"), (dict(k_scale=-1.0), "k_scale"), (dict(v_scale=math.inf), "v_scale"),
    (dict(sliding_window=0), "sliding_window"),
])
def test_value_errors_scalars(kw, needle):
    with pytest.raises(ValueError, match=needle):
        paged_decode_attention(*_base(), **kw)


def test_out_argument_checked():
    a = _base()
    with pytest.raises(ValueError, match="out must be"):
        paged_decode_attention(*a, out=torch.empty(2, 8, 64, device=DEV))


def test_empty_batch_and_all_empty():
    q, k, v, bt, sl = make_case(3, 8, 2, 128, 16, [0, 0, 0])
    out = check(q, k, v, bt, sl)
    assert (out == 0).all()
    e = paged_decode_attention(q[:0], k, v, bt[:0], sl[:0])
    assert e.shape == (0, 8, 128)


def test_kernel_available_where_cuda_is():
    assert rt.kernel_unavailable_reason() is None


@pytest.mark.parametrize("variant", [dict(k_coalesced=False, bulk=False), dict(l2_prefetch=0, bulk=False),
                                     dict(l2_prefetch=2, bulk=False), dict(bulk=False), dict(bulk=True),
                                     dict(early_page=False), dict(launcher="cuda.core"), dict(pdl=False),
                                     dict(lazy_rescale=True), dict(lazy_rescale=True, bulk=False)])
def test_build_variants(variant):
    # compile-time variants and launch paths kept for tuning must stay correct too
    lens = [0, 1, 17, 1000, 3333]
    check(*make_case(len(lens), 32, 8, 128, 16, lens), options=KernelOptions(**variant))
    check(*make_case(len(lens), 16, 1, 64, 8, lens, kv_dtype=F8), options=KernelOptions(**variant))


@pytest.mark.parametrize("kh", [2, 4, 8])
@pytest.mark.parametrize("Hq,D,kv_dtype", [(32, 128, torch.bfloat16), (8, 64, F8), (16, 256, torch.bfloat16),
                                           (64, 128, torch.bfloat16)])
def test_kv_heads_per_cta(kh, Hq, D, kv_dtype):
    lens = [0, 1, 15, 16, 17, 900, 4000]
    case = make_case(len(lens), Hq, 8, D, 16, lens, kv_dtype=kv_dtype)
    check(*case, options=KernelOptions(kv_per_cta=kh))
    check(*case, options=KernelOptions(kv_per_cta=kh, num_splits=3))


def _is_sm90():
    return torch.cuda.get_device_capability(DEV) == (9, 0)


@pytest.mark.skipif(not _is_sm90(), reason="the bulk-copy variant is sm_90 only")
@pytest.mark.parametrize("D,kv_dtype,Hq,Hkv", [(128, torch.bfloat16, 32, 8), (64, torch.float16, 8, 8),
                                               (256, torch.bfloat16, 16, 8), (128, F8, 32, 8),
                                               (128, torch.bfloat16, 16, 1)])
@pytest.mark.parametrize("BS", [8, 16, 128])
def test_bulk_variant(D, kv_dtype, Hq, Hkv, BS):
    # Hopper cp.async.bulk rows + mbarriers: ragged lengths with NaN tails, splits, slices, KV heads per CTA
    lens = [0, 1, BS - 1, BS, BS + 1, 15, 17, 1000, 3333]
    dtype = torch.float16 if kv_dtype == torch.float16 else torch.bfloat16
    case = make_case(len(lens), Hq, Hkv, D, BS, lens, dtype=dtype, kv_dtype=kv_dtype)
    O = KernelOptions
    plan = paged_decode_plan(Hq, Hkv, D, BS, kv_dtype, dtype, len(lens), case[3].shape[1], DEV, options=O(bulk=True))
    assert plan.launch_for(len(lens)).config.bulk == 1
    check(*case, options=O(bulk=True))
    check(*case, options=O(bulk=True, num_splits=3))
    check(*case, options=O(bulk=True, num_splits=1, slices=1, stages=2))
    check(*case, options=O(bulk=True, slices=8, stages=4))
    check(*case, options=O(bulk=True), sliding_window=70)
    if Hkv == 8 and Hq <= 64:
        # KV heads per CTA share one ring (a token's rows of every head in one copy)
        check(*case, options=O(bulk=True, kv_per_cta=4, num_splits=2))
        check(*case, options=O(bulk=True, kv_per_cta=8, num_splits=1, stages=2))
        check(*case, options=O(bulk=True, kv_per_cta=2, stages=3), sliding_window=70)


@pytest.mark.skipif(not _is_sm90(), reason="the bulk-copy variant is sm_90 only")
@pytest.mark.parametrize("D,Hq,Hkv,kh,kv_dtype", [(128, 32, 8, 8, torch.bfloat16), (64, 32, 8, 8, torch.bfloat16),
                                                  (64, 64, 16, 8, torch.bfloat16), (128, 16, 4, 1, torch.bfloat16),
                                                  (128, 32, 8, 8, F8)])
def test_many_pairs_share_one_ring_by_default(D, Hq, Hkv, kh, kv_dtype):
    # many (sequence, kv head) pairs on sm_90: kv heads per CTA share one bulk ring of 2 stages by default
    # (8 heads per CTA); ragged lengths past 64K tokens, NaN tails, shuffled pages, fused merge
    lens = [0, 1, 17, 4095, 66000] + [(i * 997) % 3000 for i in range(131)]
    case = make_case(len(lens), Hq, Hkv, D, 16, lens, kv_dtype=kv_dtype)
    plan = paged_decode_plan(Hq, Hkv, D, 16, kv_dtype, torch.bfloat16, len(lens), case[3].shape[1], DEV)
    launch = plan.launch_for(len(lens))
    assert (launch.kv_per_cta, launch.slices, launch.config.bulk) == (kh, 1 if kh > 1 else 8, 1)
    assert launch.stages == (2 if kh > 1 else 3)
    check(*case)
    check(*case, options=KernelOptions(fuse_merge=True))
    check(*case, sliding_window=3000)


@pytest.mark.skipif(not _is_sm90(), reason="the bulk-copy variant is sm_90 only")
@pytest.mark.parametrize("Hq,D,kv_dtype,BS", [(64, 128, torch.bfloat16, 16), (128, 128, torch.bfloat16, 8),
                                              (32, 128, torch.float16, 128), (64, 128, F8, 16),
                                              (128, 256, torch.bfloat16, 16), (24, 64, torch.bfloat16, 32)])
def test_head_tiles_share_one_ring(Hq, D, kv_dtype, BS):
    # large groups on sm_90 in the default layout (heads in N; heads in M is the default where it applies and has
    # its own test): the head tiles' warps share one bulk ring (one slice) and split each step's copies;
    # ragged lengths, NaN tails, shuffled pages, splits, ring depths, 8 heads per warp, lazy rescale, windows
    lens = [0, 1, BS - 1, 17, 900, 4097]
    dtype = torch.float16 if kv_dtype == torch.float16 else torch.bfloat16
    q, k, v, bt, sl = make_case(len(lens), Hq, 1, D, BS, lens, dtype=dtype, kv_dtype=kv_dtype)
    O = functools.partial(KernelOptions, heads_in_m=False)
    plan = paged_decode_plan(Hq, 1, D, BS, kv_dtype, dtype, len(lens), bt.shape[1], DEV, options=O())
    launch = plan.launch_for(len(lens))
    assert launch.head_tiles > 1 and (launch.config.bulk, launch.slices, launch.kv_per_cta) == (1, 1, 1)
    assert launch.config.heads_in_m == 0
    check(q, k, v, bt, sl, options=O())
    check(q, k, v, bt, sl, options=O(num_splits=1, stages=2))
    check(q, k, v, bt, sl, options=O(num_splits=3, stages=6))
    check(q, k, v, bt, sl, options=O(heads_per_warp=8))
    check(q, k, v, bt, sl, options=O(lazy_rescale=True, num_splits=2))
    check(q, k, v, bt, sl, options=O(), sliding_window=70)
    check(q, k, v, bt, sl, options=O(fuse_merge=True, num_splits=4))
    # scores spread wide (the running max moves by more than 2^8 mid-range): the lazy rescale must still be exact
    check(q * 4, k, v, bt, sl, options=O(lazy_rescale=True))
    assert plan.launch_for(len(lens)).config.bulk == 1


@pytest.mark.parametrize("Hq,Hkv,D,kv_dtype,BS", [(64, 1, 128, torch.bfloat16, 16), (128, 1, 128, torch.bfloat16, 8),
                                                  (32, 2, 64, torch.float16, 32), (64, 1, 128, F8, 16),
                                                  (64, 4, 128, torch.bfloat16, 128), (24, 1, 64, F8, 16)])
def test_heads_in_m(Hq, Hkv, D, kv_dtype, BS):
    # the heads-in-M step (paged_decode_hm.cuh; the default for these groups): bulk ring (sm_90) and cp.async ring,
    # splits, windows, fused merge, KV heads per CTA, the lazy rescale on and off, scores spread wide
    lens = [0, 1, BS - 1, 17, 900, 4097]
    dtype = torch.float16 if kv_dtype == torch.float16 else torch.bfloat16
    q, k, v, bt, sl = make_case(len(lens), Hq, Hkv, D, BS, lens, dtype=dtype, kv_dtype=kv_dtype)
    O = KernelOptions
    plan = paged_decode_plan(Hq, Hkv, D, BS, kv_dtype, dtype, len(lens), bt.shape[1], DEV, options=O(wgmma=False))
    launch = plan.launch_for(len(lens))
    assert (launch.config.heads_in_m, launch.config.lazy_rescale, launch.slices) == (1, 0, 1)
    check(q, k, v, bt, sl)  # (on sm_90, groups of 64 with 16-bit caches: the warpgroup-MMA default)
    check(q, k, v, bt, sl, options=O(wgmma=False))
    check(q, k, v, bt, sl, options=O(heads_in_m=True))
    check(q, k, v, bt, sl, options=O(heads_in_m=True, bulk=False, num_splits=1))
    check(q, k, v, bt, sl, options=O(heads_in_m=True, num_splits=3, lazy_rescale=False))
    check(q, k, v, bt, sl, options=O(heads_in_m=True, fuse_merge=True, num_splits=4))
    check(q, k, v, bt, sl, options=O(heads_in_m=True), sliding_window=70)
    check(q * 4, k, v, bt, sl, options=O(heads_in_m=True, lazy_rescale=True))
    # a register cap that spills (four 4-warp CTAs per SM)
    check(q * 4, k, v, bt, sl, options=O(max_registers=128, num_splits=3))
    if Hkv > 1:
        check(q, k, v, bt, sl, options=O(heads_in_m=True, kv_per_cta=Hkv))
    if _is_sm90() and (D * k.element_size()) % 128 == 0:
        # page runs: one copy for a step's K and one for its V where the CTA holds every KV head (MQA, or all KV
        # heads per CTA) and the step lies in one page; row copies into the same row-after-row layout elsewhere
        # (block size 8, windows, KV heads split over CTAs)
        P = O(heads_in_m=True, page_runs=True)
        check(q, k, v, bt, sl, options=P)
        check(q, k, v, bt, sl, options=O(heads_in_m=True, page_runs=True, num_splits=3, stages=2))
        check(q, k, v, bt, sl, options=O(heads_in_m=True, page_runs=True, fuse_merge=True, num_splits=4))
        check(q, k, v, bt, sl, options=P, sliding_window=70)
        if Hkv > 1:
            check(q, k, v, bt, sl, options=O(heads_in_m=True, page_runs=True, kv_per_cta=Hkv))


@pytest.mark.skipif(not _is_sm90(), reason="the bulk-copy variant is sm_90 only")
def test_bulk_variant_long_and_graph():
    lens = [70000, 5, 16]
    case = make_case(len(lens), 32, 8, 128, 16, lens)
    bulk = KernelOptions(bulk=True)
    check(*case, options=bulk)
    q, k, v, bt, sl = case
    out = torch.empty_like(q)
    paged_decode_attention(q, k, v, bt, sl, out=out, check_block_ids=False, options=bulk)
    g = torch.cuda.CUDAGraph()
    out2 = torch.empty_like(q)
    with torch.cuda.graph(g):
        paged_decode_attention(q, k, v, bt, sl, out=out2, check_block_ids=False, options=bulk)
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(out, out2)


@pytest.mark.parametrize("D,kv_dtype,Hq,Hkv,BS", [(128, torch.bfloat16, 32, 8, 16), (64, torch.float16, 8, 8, 8),
                                                  (128, F8, 32, 8, 16), (128, torch.bfloat16, 64, 1, 32),
                                                  (256, torch.bfloat16, 16, 8, 128)])
def test_fused_merge(D, kv_dtype, Hq, Hkv, BS):
    # split merge in the last CTA of each (sequence, kv head): empty sequences and empty splits,
    # NaN tails, ring and bulk, slices, KV heads per CTA, head tiles, and repeated calls with other
    # split counts (each launch must leave its counters at 0 for the next)
    lens = [0, 1, BS - 1, BS + 1, 17, 1000, 3333]
    dtype = torch.float16 if kv_dtype == torch.float16 else torch.bfloat16
    case = make_case(len(lens), Hq, Hkv, D, BS, lens, dtype=dtype, kv_dtype=kv_dtype)
    for _ in range(2):
        check(*case, options=KernelOptions(fuse_merge=True, num_splits=7))
        check(*case, options=KernelOptions(fuse_merge=True, num_splits=33))
        check(*case, options=KernelOptions(fuse_merge=True, num_splits=2, slices=1, stages=2))
        check(*case, options=KernelOptions(fuse_merge=True, num_splits=64, slices=2, stages=3))
        check(*case, sliding_window=70, options=KernelOptions(fuse_merge=True, num_splits=5))
        check(*case, options=KernelOptions(fuse_merge=True, bulk=False, num_splits=9))
        if Hkv == 8 and Hq <= 64:
            check(*case, options=KernelOptions(fuse_merge=True, kv_per_cta=4, num_splits=3))


@pytest.mark.parametrize("D,kv_dtype,Hq,Hkv,BS", [(128, torch.bfloat16, 32, 8, 16), (64, torch.float16, 8, 8, 8),
                                                  (128, F8, 32, 8, 16), (128, torch.bfloat16, 64, 1, 32),
                                                  (256, torch.bfloat16, 16, 8, 128), (128, F8, 32, 8, 8)])
def test_sorted_steps(D, kv_dtype, Hq, Hkv, BS):
    # steps taken in the address order of their pages (the tables are shuffled) where a CTA has 64-512 of them
    # (limits.SORT_MIN_STEPS / SORT_MAX_STEPS): chunks of 282 and 188 steps sort, 563 (one chunk of 9000 tokens)
    # and 18 do not; empty and ragged sequences, NaN tails, token slices, the cp.async ring, shared rings, fused
    # merges, a window (no sort); the same launch gives the same bits twice
    lens = [0, 1, BS - 1, BS + 1, 17, 1000, 3333, 9000]
    dtype = torch.float16 if kv_dtype == torch.float16 else torch.bfloat16
    case = make_case(len(lens), Hq, Hkv, D, BS, lens, dtype=dtype, kv_dtype=kv_dtype)
    on = dict(sort_steps=True)
    first = check(*case, options=KernelOptions(num_splits=2, **on)).clone()
    assert torch.equal(check(*case, options=KernelOptions(num_splits=2, **on)), first)
    check(*case, options=KernelOptions(**on))
    check(*case, options=KernelOptions(num_splits=1, **on))
    check(*case, options=KernelOptions(num_splits=3, slices=2, stages=3, **on))
    check(*case, options=KernelOptions(num_splits=33, **on))
    check(*case, options=KernelOptions(num_splits=2, bulk=False, **on))
    check(*case, options=KernelOptions(fuse_merge=True, num_splits=3, **on))
    check(*case, sliding_window=2000, options=KernelOptions(num_splits=2, **on))
    if Hkv == 8 and Hq <= 64:
        check(*case, options=KernelOptions(kv_per_cta=8, num_splits=2, **on))


def test_sorted_steps_with_a_page_named_twice():
    # a table may name one page at two positions (shared prefixes): the ranks break the tie by step, so no step is
    # lost or taken twice (100 and 70 steps: both sort)
    BS = 16
    q, k, v, bt, sl = make_case(2, 32, 8, 128, BS, [100 * BS, 70 * BS + 5])
    for pos in (3, 6, 50, 99):
        bt[0, pos] = bt[0, 0]
    bt[1, 2] = bt[0, 5]
    bt[1, 69] = bt[0, 5]
    for opts in (KernelOptions(sort_steps=True, num_splits=1), KernelOptions(sort_steps=True, num_splits=1,
                                                                               kv_per_cta=8),
                 KernelOptions(sort_steps=True, num_splits=1, bulk=False)):
        check(q, k, v, bt, sl, options=opts)


@pytest.mark.skipif(not _is_sm90(), reason="warpgroup MMAs are sm_90 only")
@pytest.mark.parametrize("Hq,Hkv,D,dtype,BS", [(64, 1, 128, torch.bfloat16, 16), (64, 1, 128, torch.float16, 64),
                                               (32, 2, 64, torch.bfloat16, 32), (64, 4, 128, torch.bfloat16, 128),
                                               (16, 1, 128, torch.bfloat16, 8), (128, 2, 128, torch.bfloat16, 16)])
def test_warpgroup_mmas(Hq, Hkv, D, dtype, BS):
    # paged_decode_wg.cu: every head group that divides the group, ragged lengths around the 64-token step (0, 1,
    # 63, 64, 65), NaN tails, shuffled pages, one split, many splits (some empty), two steps in flight, scales
    lens = [0, 1, BS - 1, 63, 64, 65, 900, 4097]
    case = make_case(len(lens), Hq, Hkv, D, BS, lens, dtype=dtype)
    O = KernelOptions
    plan = paged_decode_plan(Hq, Hkv, D, BS, dtype, dtype, len(lens), case[3].shape[1], DEV,
                             options=O(wgmma=True))
    assert plan.launch_for(len(lens)).config.source == "paged_decode_wg.cu"
    for heads in (16, 32, 64):
        if (Hq // Hkv) % heads == 0:
            check(*case, options=O(wgmma=True, wg_heads=heads))
    check(*case, options=O(wgmma=True, num_splits=1))
    check(*case, options=O(wgmma=True, num_splits=5, wg_stages=2))
    check(*case, options=O(wgmma=True, num_splits=40, wg_stages=6, wg_warpgroups=1))
    check(*case, options=O(wgmma=True), scale=0.05, k_scale=1.5, v_scale=0.5)
    check(case[0] * 8, *case[1:], options=O(wgmma=True))  # scores spread wide
    # two warpgroups on alternate steps (one may have none), their results met in shared memory
    W = dict(wgmma=True, wg_warpgroups=2)
    check(*case, options=O(**W))
    check(*case, options=O(**W, num_splits=1))
    check(*case, options=O(**W, num_splits=40, wg_stages=2))
    check(case[0] * 8, *case[1:], options=O(**W, num_splits=3))


@pytest.mark.skipif(not _is_sm90(), reason="warpgroup MMAs are sm_90 only")
def test_warpgroup_mmas_long_and_graph():
    # one sequence past 64K tokens (its splits' partials merged), then the plan replayed in a CUDA graph
    lens = [70001, 5000]
    case = make_case(2, 64, 1, 128, 16, lens)
    for wgs in (1, 2):
        opts = KernelOptions(wgmma=True, wg_warpgroups=wgs)
        check(*case, options=opts)
        plan = paged_decode_plan(64, 1, 128, 16, torch.bfloat16, torch.bfloat16, 2, case[3].shape[1], DEV,
                                 options=opts)
        eager = plan.run(*case).clone()
        assert torch.equal(graph_replay(plan, case), eager)


def test_fused_merge_graph_and_streams():
    lens = [70000, 5, 16, 0]
    case = make_case(len(lens), 32, 8, 128, 16, lens)
    q, k, v, bt, sl = case
    ref = paged_decode_attention(q, k, v, bt, sl, num_splits=33)
    out = paged_decode_attention(q, k, v, bt, sl, options=KernelOptions(fuse_merge=True, num_splits=33))
    torch.cuda.synchronize()
    assert torch.isfinite(out).all()
    assert float((out.float() - ref.float()).norm() / ref.float().norm()) < 1e-2
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        out_s = paged_decode_attention(q, k, v, bt, sl, options=KernelOptions(fuse_merge=True, num_splits=16))
    torch.cuda.current_stream().wait_stream(s)
    out2 = torch.empty_like(q)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        paged_decode_attention(q, k, v, bt, sl, out=out2, check_block_ids=False,
                               options=KernelOptions(fuse_merge=True, num_splits=33))
        paged_decode_attention(q, k, v, bt, sl, out=out2, check_block_ids=False,
                               options=KernelOptions(fuse_merge=True, num_splits=20))
    for _ in range(3):
        out2.fill_(float("nan"))
        g.replay()
        torch.cuda.synchronize()
        assert float((out2.float() - ref.float()).norm() / ref.float().norm()) < 1e-2
    assert float((out_s.float() - ref.float()).norm() / ref.float().norm()) < 1e-2


@pytest.mark.skipif(not _is_sm90(), reason="programmatic dependent launch is sm_90 only")
def test_pdl_chain_reads_what_the_kernel_before_wrote():
    # each call's q is the previous call's output (written by the merge kernel when splits > 1, by the
    # main kernel otherwise), launched back to back on one stream, eagerly and inside a CUDA graph: a
    # grid that read q before griddepcontrol.wait would see the poison or the previous values
    lens = [70000, 5, 1000]
    q, k, v, bt, sl = make_case(len(lens), 32, 8, 128, 16, lens)
    for splits in (None, 1, 16):
        outs = {}
        for pdl in (False, True):
            x = q
            for _ in range(4):
                y = torch.full_like(q, float("nan"))
                paged_decode_attention(x, k, v, bt, sl, out=y, check_block_ids=False, num_splits=splits,
                                       options=KernelOptions(pdl=pdl))
                x = y
            torch.cuda.synchronize()
            outs[pdl] = x
        assert torch.isfinite(outs[True]).all()
        assert torch.equal(outs[True], outs[False])
        bufs = [torch.full_like(q, float("nan")) for _ in range(4)]
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            x = q
            for y in bufs:
                paged_decode_attention(x, k, v, bt, sl, out=y, check_block_ids=False, num_splits=splits,
                                       options=KernelOptions(pdl=True))
                x = y
        for _ in range(2):
            for y in bufs:
                y.fill_(float("nan"))
            g.replay()
            torch.cuda.synchronize()
            assert torch.equal(bufs[-1], outs[False])


def test_trace_timeline():
    lens = [3000, 0, 40]
    q, k, v, bt, sl = make_case(len(lens), 32, 8, 128, 16, lens)
    tr = torch.zeros(4 * 4 * 8 * len(lens), dtype=torch.int64, device=DEV)
    check(q, k, v, bt, sl, num_splits=4, options=KernelOptions(trace=True), trace=tr)
    t = tr.view(len(lens), 8, 4, 4).cpu()
    assert (t[..., 0] > 0).all() and (t[..., 2] >= t[..., 0]).all()
    busy = t[0, :, :, 1]  # sequence 0: every split has tokens, so every CTA records its first data
    if _is_sm90():
        assert ((busy >= t[0, :, :, 0]) & (busy <= t[0, :, :, 2])).all()
    assert (t[..., 3] < torch.cuda.get_device_properties(0).multi_processor_count).all()
    with pytest.raises(ValueError, match="trace"):
        paged_decode_attention(q, k, v, bt, sl, num_splits=4, options=KernelOptions(trace=True), trace=tr[:8])


def test_trace_plan_without_a_buffer_writes_nothing():
    # (session 29: such a run wrote its timeline through a null pointer, an illegal address)
    lens = [5000, 16]
    q, k, v, bt, sl = make_case(len(lens), 32, 8, 128, 16, lens)
    check(q, k, v, bt, sl, num_splits=4, options=KernelOptions(trace=True))


# ---- plan / run ------------------------------------------------------------------------------------------


def _plan_for(case, max_batch=None, **kw):
    q, k, v, bt, sl = case
    return paged_decode_plan(q.shape[1], k.shape[2], q.shape[2], k.shape[1], k.dtype, q.dtype,
                             max_batch or q.shape[0], bt.shape[1], DEV, **kw)


@pytest.mark.parametrize("Hq,Hkv,D,kv_dtype", [(32, 8, 128, torch.bfloat16), (64, 1, 128, torch.bfloat16),
                                               (16, 2, 64, F8), (16, 16, 256, torch.bfloat16)])
def test_plan_run_matches_reference(Hq, Hkv, D, kv_dtype):
    lens = [0, 1, 15, 16, 17, 300, 2100, 5000]
    case = make_case(len(lens), Hq, Hkv, D, 16, lens, kv_dtype=kv_dtype)
    plan = _plan_for(case, max_batch=12)
    q, k, v, bt, sl = case
    kw = dict(k_scale=0.5, v_scale=2.0) if kv_dtype == F8 else {}
    for sub in (len(lens), 3, 1):
        args = (q[:sub], k, v, bt[:sub].contiguous(), sl[:sub].contiguous())
        got = plan.run(*args, **kw)
        torch.cuda.synchronize()
        ref = reference_paged_decode_attention(*args, compute_dtype=torch.float64, out_dtype=torch.float64, **kw)
        rel = float((got.double() - ref).norm() / ref.norm().clamp_min(1e-30))
        assert torch.isfinite(got).all() and rel < (5e-2 if kv_dtype == F8 else 1e-2), (sub, rel)
    # the same launch as the one-call path
    one = paged_decode_attention(*case, check_block_ids=False, **kw)
    assert torch.equal(plan.run(*case, **kw), one)


@pytest.mark.parametrize("Hq,Hkv,D,kv_dtype,BS", [(32, 8, 128, torch.bfloat16, 16), (32, 8, 128, F8, 16),
                                                  (32, 8, 64, torch.bfloat16, 32), (64, 1, 128, torch.bfloat16, 16),
                                                  (64, 4, 128, torch.bfloat16, 8)])
def test_sorted_block_table_same_attention(Hq, Hkv, D, kv_dtype, BS):
    # ragged lengths around page and split edges, > 64K tokens, an empty sequence; NaN in unused slots
    lens = [0, 1, BS, BS + 1, 999, 4096, 20000, 70001]
    case = make_case(len(lens), Hq, Hkv, D, BS, lens, kv_dtype=kv_dtype)
    plan = _plan_for(case)
    q, k, v, bt, sl = case
    srt = plan.sorted_block_table(bt, sl)
    full = (sl // BS).tolist()
    assert all(torch.equal(srt[b, f:], bt[b, f:]) for b, f in enumerate(full))  # partial pages, garbage kept
    assert any(not torch.equal(srt[b, :f], bt[b, :f]) for b, f in enumerate(full))
    kw = dict(k_scale=0.5, v_scale=2.0) if kv_dtype == F8 else {}
    got = plan.run(q, k, v, srt, sl, **kw)
    torch.cuda.synchronize()
    ref = reference_paged_decode_attention(q, k, v, bt, sl, compute_dtype=torch.float64, out_dtype=torch.float64,
                                           **kw)
    rel = (got.double() - ref).flatten(1).norm(dim=1) / ref.flatten(1).norm(dim=1).clamp_min(1e-30)
    assert torch.isfinite(got).all() and (got[0] == 0).all()
    assert float(rel[1:].max()) < (5e-2 if kv_dtype == F8 else 1e-2), (rel, SEED)
    # captured with the kernel in one graph, as a decode step would (sort once, then the layers)
    out = torch.empty_like(q)
    tab = torch.empty_like(bt)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        plan.sorted_block_table(bt, sl, out=tab)
        plan.run(q, k, v, tab, sl, out=out, **kw)
    torch.cuda.current_stream().wait_stream(stream)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        plan.sorted_block_table(bt, sl, out=tab)
        plan.run(q, k, v, tab, sl, out=out, **kw)
    out.fill_(float("nan"))
    tab.fill_(-1)
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(tab, srt) and torch.equal(out, got)


@pytest.mark.parametrize("run", [None, 1, 7, 64, 1000, 1024])
@pytest.mark.parametrize("BS", [8, 16, 64])
def test_sort_kernel_matches_the_torch_ops(run, BS):
    """page_order.cu against the torch form that defines the result: random ids with repeats, garbage past the
    full pages, lengths 0 .. past the table, widths that runs do not divide; in place too."""
    from kvplan.kernels.page_order import MAX_RUN, sort_full_pages, sort_with_torch

    for B, W in ((1, 3000), (37, 129), (300, 17)):
        bt = torch.randint(-(2**31), 2**31 - 1, (B, W), device=DEV, generator=GEN, dtype=torch.int32)
        bt[:, : W - 2] = torch.randint(0, 5000, (B, W - 2), device=DEV, generator=GEN, dtype=torch.int32)
        sl = torch.randint(0, (W + 2) * BS, (B,), device=DEV, generator=GEN, dtype=torch.int32)
        sl[0] = W * BS
        want = sort_with_torch(bt, sl, BS, min(run or MAX_RUN, MAX_RUN))
        assert torch.equal(sort_full_pages(bt, sl, BS, run), want)
        inplace = bt.clone()
        assert sort_full_pages(inplace, sl, BS, run, out=inplace) is inplace and torch.equal(inplace, want)


def test_sorted_block_table_refused_for_windows():
    case = make_case(2, 8, 2, 64, 16, [50, 300])
    plan = _plan_for(case, sliding_window=64)
    with pytest.raises(ValueError, match="sliding_window"):
        plan.sorted_block_table(case[3], case[4])


def test_plan_workspace_covers_every_batch():
    case = make_case(64, 32, 8, 128, 16, [3000] * 64)
    plan = _plan_for(case)
    ptr = plan._workspace.data_ptr()
    q, k, v, bt, sl = case
    for b in range(1, 65):
        plan.run(q[:b], k, v, bt[:b].contiguous(), sl[:b].contiguous())
    assert plan._workspace.data_ptr() == ptr  # never regrown: safe to capture any batch size


def test_plan_run_in_graph():
    case = make_case(4, 32, 8, 128, 16, [10, 3000, 0, 800])
    plan = _plan_for(case)
    eager = plan.run(*case)
    assert torch.equal(graph_replay(plan, case), eager)


@pytest.mark.parametrize("mutate,needle", [
    (lambda a: a.__setitem__(0, a[0][:, :4].contiguous()), "q must be"),
    (lambda a: a.__setitem__(0, a[0].half()), "q must be"),
    (lambda a: a.__setitem__(1, a[1].half()), "k_cache must be"),
    (lambda a: a.__setitem__(2, a[2][:, :8].contiguous()), "v_cache must match"),
    (lambda a: a.__setitem__(3, a[3].long()), "block_table must be"),
    (lambda a: a.__setitem__(4, a[4][:1].contiguous()), "seq_lens must be"),
    (lambda a: a.__setitem__(3, a[3].cpu()), "block_table is on cpu"),
    (lambda a: a.__setitem__(0, a[0].transpose(0, 1).contiguous().transpose(0, 1)), "q must be contiguous"),
])
def test_plan_run_checks_arguments(mutate, needle):
    case = make_case(2, 8, 2, 64, 16, [5, 20])
    plan = _plan_for(case)
    a = list(case)
    mutate(a)
    with pytest.raises(ValueError, match=needle):
        plan.run(*a)


@pytest.mark.parametrize("kw,needle", [
    (dict(q_heads=12, kv_heads=8), "multiple"), (dict(head_dim=96), "head_dim"), (dict(block_size=12), "block_size"),
    (dict(max_batch=0), "max_batch"), (dict(kv_dtype=torch.float32), "kv_dtype"),
    (dict(kv_dtype=torch.float16, q_dtype=torch.bfloat16), "must match"), (dict(sliding_window=0), "sliding_window"),
    (dict(options="fast"), "options"), (dict(device="cpu"), "device"),
])
def test_plan_checks_arguments(kw, needle):
    base = dict(q_heads=32, kv_heads=8, head_dim=128, block_size=16, kv_dtype=torch.bfloat16, max_batch=4,
                max_blocks_per_seq=8, device=DEV)
    with pytest.raises(ValueError, match=needle):
        paged_decode_plan(**{**base, **kw})


def test_paged_read_probe_reads_pages_in_either_order():
    from kvplan.kernels.probes import paged_read_bandwidth, read_bandwidth

    linear = read_bandwidth(256 << 20, reps=5).bytes_per_s
    ordered = paged_read_bandwidth(32768, shuffled=False, nbytes=256 << 20, reps=5)
    shuffled = paged_read_bandwidth(32768, shuffled=True, nbytes=256 << 20, reps=5)
    # the same bytes in address order stream like the linear read; shuffled they cannot read faster than DRAM
    assert 0.5 * linear < ordered.bytes_per_s < 1.5 * linear
    assert 0 < shuffled.bytes_per_s < 1.5 * linear
    assert "shuffled" in shuffled.method and "address order" in ordered.method
    with pytest.raises(ValueError, match="page_bytes"):
        paged_read_bandwidth(100)


def test_paged_walk_probe_reads_both_buffers():
    import torch

    from kvplan.kernels.probes import paged_walk_bandwidth, read_bandwidth

    if torch.cuda.get_device_capability() != (9, 0):
        pytest.skip("the page-walk probe uses Hopper bulk copies")
    linear = read_bandwidth(256 << 20, reps=5).bytes_per_s
    for chunk in (1024, None):  # a token's row of a 16-token block, the whole block
        walk = paged_walk_bandwidth(16384, 128, chunk=chunk, shuffled=True, nbytes=256 << 20, reps=5)
        assert 0.2 * linear < walk.bytes_per_s < 1.5 * linear  # 128 CTAs, two of three stages in flight
        assert "128 CTAs" in walk.method and "two buffers" in walk.method
        assert f"bulk copies of {chunk or 16384:,} bytes" in walk.method
    # the decode kernel's shared-ring protocol: 8 warps split the copies, a spin stands for a step's arithmetic
    ring = paged_walk_bandwidth(16384, 128, chunk=1024, stages=2, warps=8, spin=500, nbytes=256 << 20, reps=5)
    assert 0.05 * linear < ring.bytes_per_s < 1.5 * linear and "by 8 warp(s), 2 stages, 500 cycles" in ring.method
    with pytest.raises(ValueError, match="walkers"):
        paged_walk_bandwidth(16384, 0)
    with pytest.raises(ValueError, match="chunk"):
        paged_walk_bandwidth(16384, 128, chunk=1000)
    with pytest.raises(ValueError, match="warps"):
        paged_walk_bandwidth(16384, 128, warps=9)
    with pytest.raises(ValueError, match="stages"):
        paged_walk_bandwidth(16384, 128, stages=1)
