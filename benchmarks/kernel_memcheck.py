"""Small cases for compute-sanitizer (memcheck / racecheck) over every code path of the kernel.

    compute-sanitizer --tool memcheck --report-api-errors no --error-exitcode 1 \
        python benchmarks/kernel_memcheck.py [--mla | --moe | I]

(--report-api-errors no: since 2026-12-03 the GPU machine's cuda.core probes driver entry points that its driver
lacks, and each probe's CUDA_ERROR_INVALID_VALUE from cuGetProcAddress counted as an error: 34 a run, every case
alike, none from a kernel.)

(--mla: the MLA cases alone; --mla3: the three-stage MLA cases alone (wg_stages=3); --moe: the row-tile MoE
kernel's cases alone (skinny_gemm.cu); I: case I alone)

Covers: one split and several (merge kernel), token slices merged in shared memory, head tiles
sharing a ring (named barriers), fp8, head dims 64/256, sliding window, empty sequences, partial
last blocks with NaN tails, B=1.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kvplan.kernels import KernelOptions as O  # noqa: E402
from kvplan.kernels import (  # noqa: E402
    paged_decode_attention,
    paged_mla_decode_plan,
    reference_paged_decode_attention,
    reference_paged_mla_decode,
)

F8 = torch.float8_e4m3fn


def case(B, Hq, Hkv, D, BS, lens, kv_dtype=torch.bfloat16, dtype=torch.bfloat16):
    nblk = [(n + BS - 1) // BS for n in lens]
    NB = sum(nblk) + 2
    MB = max(nblk + [1]) + 1
    q = torch.randn(B, Hq, D, device="cuda").to(dtype)
    k = torch.randn(NB, BS, Hkv, D, device="cuda")
    v = torch.randn(NB, BS, Hkv, D, device="cuda")
    bt = torch.full((B, MB), 1 << 30, dtype=torch.int32, device="cuda")  # garbage past the end
    perm = torch.randperm(NB, device="cuda").to(torch.int32)
    p = 0
    for b, n in enumerate(lens):
        bt[b, :nblk[b]] = perm[p:p + nblk[b]]
        p += nblk[b]
        if n % BS:
            blk = int(bt[b, nblk[b] - 1])
            k[blk, n % BS:] = float("nan")
            v[blk, n % BS:] = float("nan")
    return q, k.to(kv_dtype), v.to(kv_dtype), bt, torch.tensor(lens, dtype=torch.int32, device="cuda")


def main():
    runs = [
        (dict(B=3, Hq=8, Hkv=2, D=128, BS=16, lens=[0, 37, 700]), {}),
        (dict(B=3, Hq=8, Hkv=2, D=128, BS=16, lens=[0, 37, 700]), dict(num_splits=5)),
        (dict(B=2, Hq=8, Hkv=2, D=128, BS=16, lens=[300, 17]), dict(options=O(num_splits=1, slices=1))),
        (dict(B=2, Hq=16, Hkv=1, D=64, BS=8, lens=[129, 5], kv_dtype=F8), dict(num_splits=2)),
        (dict(B=2, Hq=32, Hkv=1, D=128, BS=32, lens=[250, 1]), {}),            # 2 head tiles x 2 slices
        (dict(B=1, Hq=64, Hkv=1, D=256, BS=16, lens=[100]), dict(num_splits=2)),  # 8 head tiles
        (dict(B=1, Hq=128, Hkv=1, D=256, BS=16, lens=[40]), {}),              # 16 warps
        (dict(B=2, Hq=4, Hkv=4, D=256, BS=128, lens=[300, 129], kv_dtype=F8, dtype=torch.float16),
         dict(sliding_window=70)),
        (dict(B=2, Hq=32, Hkv=8, D=128, BS=16, lens=[333, 0]), dict(options=O(kv_per_cta=8, num_splits=2))),  # 8 kv heads/CTA
        (dict(B=3, Hq=16, Hkv=4, D=64, BS=16, lens=[70, 5, 16]), dict(options=O(kv_per_cta=2))),
        # kv heads sharing one bulk ring that wraps many times (empty mbarriers), fused merge
        (dict(B=3, Hq=32, Hkv=8, D=64, BS=16, lens=[700, 33, 0]), dict(options=O(kv_per_cta=4, stages=2, num_splits=2,
                                                                                fuse_merge=True))),
        (dict(B=40, Hq=32, Hkv=8, D=128, BS=16, lens=[300] * 39 + [7], kv_dtype=F8), {}),  # fp8 default: shared bulk ring
        # the cp.async ring where the sm_90 default is the bulk-copy variant (and vice versa elsewhere)
        (dict(B=3, Hq=8, Hkv=2, D=128, BS=16, lens=[0, 37, 700]), dict(options=O(num_splits=5, bulk=False))),
        (dict(B=2, Hq=32, Hkv=8, D=128, BS=16, lens=[333, 0]), dict(options=O(kv_per_cta=8, bulk=False))),
        (dict(B=3, Hq=16, Hkv=2, D=128, BS=8, lens=[0, 37, 700], kv_dtype=F8), dict(options=O(bulk=True))),
        (dict(B=2, Hq=8, Hkv=8, D=256, BS=32, lens=[300, 9]), dict(options=O(bulk=True), sliding_window=50)),
        # split merge fused into the last CTA (atomic counters): bulk, ring, fp8, KV heads per CTA, head tiles
        (dict(B=3, Hq=32, Hkv=8, D=128, BS=16, lens=[0, 37, 700]), dict(options=O(num_splits=9, fuse_merge=True))),
        (dict(B=3, Hq=8, Hkv=2, D=128, BS=16, lens=[0, 37, 700]), dict(options=O(num_splits=5, fuse_merge=True, bulk=False))),
        (dict(B=2, Hq=16, Hkv=1, D=64, BS=8, lens=[129, 5], kv_dtype=F8), dict(options=O(num_splits=4, fuse_merge=True))),
        (dict(B=2, Hq=32, Hkv=8, D=128, BS=16, lens=[333, 0]), dict(options=O(kv_per_cta=4, num_splits=3, fuse_merge=True))),
        (dict(B=1, Hq=64, Hkv=1, D=128, BS=16, lens=[900]), dict(options=O(num_splits=6, fuse_merge=True))),
        (dict(B=1, Hq=64, Hkv=1, D=128, BS=16, lens=[900]), dict(num_splits=6)),  # same, kvp_merge
        # head tiles in the default layout sharing one bulk ring (sm_90, large groups) that wraps many times, lazy
        # rescale; and the head tiles' cp.async ring with named barriers where that default is the bulk ring
        (dict(B=2, Hq=64, Hkv=1, D=128, BS=16, lens=[900, 3]), dict(options=O(stages=2, num_splits=2,
                                                                             heads_in_m=False))),
        (dict(B=2, Hq=32, Hkv=1, D=128, BS=32, lens=[250, 1], kv_dtype=F8), dict(options=O(lazy_rescale=True,
                                                                                        heads_in_m=False))),
        (dict(B=2, Hq=32, Hkv=1, D=128, BS=32, lens=[250, 1]), dict(options=O(bulk=False, heads_in_m=False))),
        # heads in M (paged_decode_hm.cuh, the default there): bulk ring with splits, fp8 on the cp.async ring
        (dict(B=2, Hq=64, Hkv=1, D=128, BS=16, lens=[900, 3]), dict(options=O(heads_in_m=True, num_splits=2))),
        (dict(B=2, Hq=16, Hkv=1, D=64, BS=8, lens=[129, 5], kv_dtype=F8), dict(options=O(heads_in_m=True,
                                                                                      bulk=False))),
    ]
    if torch.cuda.get_device_capability() == (9, 0):  # page runs (sm_90 bulk copies): one copy per step for K, one
        runs.append((dict(B=2, Hq=64, Hkv=1, D=128, BS=16, lens=[900, 3]),  # for V, the ring wrapping at 2 stages
                     dict(options=O(heads_in_m=True, page_runs=True, stages=2, num_splits=2))))
    # absorbed MLA: (heads, block size, lens, latent dtype, plan tuning)
    mla_runs = [
        (16, 64, [0, 1, 63, 64, 65, 700], torch.bfloat16, {}),
        (16, 16, [300, 5], torch.bfloat16, dict(num_splits=3)),
        (64, 64, [129, 0, 17], torch.bfloat16, dict(num_splits=2)),
        (128, 16, [40, 200], torch.bfloat16, {}),
        (16, 64, [700, 3], torch.float8_e4m3fn, dict(num_splits=2, wgmma=False)),  # (the head tiles)
        (64, 16, [90, 1], torch.float8_e4m3fn, {}),
        (8, 64, [150, 64], torch.bfloat16, dict(bulk=False, num_splits=2)),
        (64, 64, [300], torch.float8_e4m3fn, dict(bulk=False, stages=2)),
        (16, 64, [0, 1, 63, 64, 65, 700], torch.bfloat16, dict(heads_in_m=False)),  # (16 heads' other path)
        (16, 64, [0, 1, 63, 64, 65, 700, 2000], torch.bfloat16, dict(lazy_rescale=True, num_splits=2)),
        (16, 16, [0, 1, 63, 64, 65, 700, 2000], torch.bfloat16, dict(tma=True, num_splits=2)),
        (16, 64, [3, 100, 1000], torch.bfloat16, dict(tma=False)),  # (heads in M with row copies)
        # the warpgroup-MMA path (the default above 16 bf16 heads: the 64- and 128-head cases above take it)
        (128, 16, [40, 200], torch.bfloat16, dict(wgmma=False)),  # (the head tiles)
        (16, 64, [0, 1, 63, 64, 65, 700], torch.float8_e4m3fn, dict(wgmma=True, e4m3_mma=False)),
        (16, 16, [300, 5, 64], torch.float8_e4m3fn, dict(wgmma=True, e4m3_mma=False, num_splits=3)),
        (40, 64, [0, 1, 65, 700], torch.bfloat16, dict(wgmma=True, num_splits=2)),  # (32 heads a CTA)
        (20, 16, [0, 1, 65, 700], torch.float8_e4m3fn, dict(wgmma=True, head_group=32)),
        (16, 64, [0, 1, 63, 64, 65, 700], torch.float8_e4m3fn, dict(wgmma=True, e4m3_mma=True)),  # two warpgroups
        (3, 16, [300, 5, 64, 0], torch.float8_e4m3fn, dict(wgmma=True, e4m3_mma=True, num_splits=3)),
        # bf16 with each step's blocks refilled as their MMAs complete (opt-in early_free)
        (16, 64, [0, 1, 63, 64, 65, 700], torch.bfloat16, dict(wgmma=True, early_free=2)),
        (40, 16, [0, 1, 65, 700, 300], torch.bfloat16, dict(wgmma=True, early_free=4, num_splits=2)),
        # the opt-in third stage (wg_stages=3: value blocks in 3 stages, rope blocks in 2 slots with P over the step's),
        # without and with the early refill (the last two cases: --mla3, or --mla -2 and --mla -1)
        (16, 64, [0, 1, 63, 64, 65, 129, 200, 700], torch.bfloat16, dict(wgmma=True, wg_stages=3)),
        (20, 128, [0, 1, 65, 300, 2000], torch.bfloat16, dict(wgmma=True, wg_stages=3, head_group=16, early_free=2,
                                                             num_splits=2)),
    ]
    if "--moe" in sys.argv:  # the row-tile MoE kernel's cases alone (skinny_gemm.cu, its per-warp cp.async ring)
        return moe_cases()
    if "--mla" in sys.argv:  # the MLA cases alone
        runs = []
    if "--mla3" in sys.argv:  # the three-stage MLA cases alone (wg_stages=3)
        runs, mla_runs = [], [r for r in mla_runs if r[4].get("wg_stages") == 3]
    only = int(sys.argv[-1]) if sys.argv[-1].lstrip("-").isdigit() else None  # --only I: one case (I < 0: from
    if only is not None:  # the end); to localise a report
        only += len(runs) + len(mla_runs) if only < 0 else 0
        if only < len(runs):
            runs, mla_runs = [runs[only]], []
        else:
            runs, mla_runs = [], [mla_runs[only - len(runs)]]
    worst = 0.0
    for i, (shape, kw) in enumerate(runs):
        print(f"case {i}: {shape} {kw}", flush=True)  # attributes a sanitizer report to its case
        q, k, v, bt, sl = case(**shape)
        out = paged_decode_attention(q, k, v, bt, sl, **kw)
        torch.cuda.synchronize()
        ref = reference_paged_decode_attention(q, k, v, bt, sl, sliding_window=kw.get("sliding_window"),
                                               out_dtype=torch.float32)
        err = float((out.float() - ref).norm() / ref.norm().clamp_min(1e-30))
        worst = max(worst, err)
        assert torch.isfinite(out).all() and err < 5e-2, (shape, kw, err)
    for i, (H, BS, lens, kvd, kw) in enumerate(mla_runs):
        print(f"mla case {i}: H={H} BS={BS} lens={lens} {kvd} {kw}", flush=True)
        qn, qr, lat, bt, sl = mla_case(H, BS, lens, kvd)
        plan = paged_mla_decode_plan(H, 512, 64, BS, kvd, len(lens), bt.shape[1], "cuda", **kw)
        out = plan.run(qn, qr, lat, bt, sl, scale=0.1)
        torch.cuda.synchronize()
        ref = reference_paged_mla_decode(qn, qr, lat, bt, sl, scale=0.1, out_dtype=torch.float32)
        err = float((out.float() - ref).norm() / ref.norm().clamp_min(1e-30))
        worst = max(worst, err)
        assert torch.isfinite(out).all() and err < 5e-2, (H, BS, lens, kvd, kw, err)
    print(f"memcheck cases OK ({len(runs)} GQA + {len(mla_runs)} MLA runs, worst rel err {worst:.2e})")


def moe_cases():
    """MoE above the pair slots through the row-tile kernel: joined experts' CTA rows (1 and 2 joined), none, and
    weight rings of 2 / 3 / 4 steps; k = 328 and 72 leave partial steps, n = 328 and 72 idle warps."""
    from kvplan.kernels.skinny import moe_pairs_plan, reference_moe_pairs

    experts, hidden, inter, top_k = 9, 328, 72, 3
    g = torch.Generator(device="cuda").manual_seed(5)
    for tokens, joined, stages in ((40, 1, 2), (150, 2, 3), (70, 0, 4), (200, 1, 2)):
        print(f"moe case: tokens {tokens} joined {joined} stages {stages}", flush=True)
        x = torch.randn(tokens, hidden, device="cuda", generator=g).bfloat16()
        w13 = (torch.randn(experts, 2 * inter, hidden, device="cuda", generator=g) * hidden ** -.5).bfloat16()
        w2 = (torch.randn(experts, hidden, inter, device="cuda", generator=g) * inter ** -.5).bfloat16()
        routed = experts - joined
        ids = torch.rand(tokens, routed, device="cuda", generator=g).topk(top_k - joined, dim=-1).indices
        ids = torch.cat([ids, torch.arange(routed, experts, device="cuda").expand(tokens, joined)], 1).contiguous()
        wts = torch.rand(tokens, top_k, device="cuda", generator=g)
        plan = moe_pairs_plan(experts, hidden, inter, top_k, max_tokens=16, joined=joined, row_stages=stages)
        out = plan.run(x, wts, ids, w13, w2)
        torch.cuda.synchronize()
        ref = reference_moe_pairs(x, wts, ids, w13, w2)
        err = float((out.double() - ref).norm() / ref.norm())
        assert torch.isfinite(out).all() and err < 2e-2, (tokens, joined, stages, err)
    print("moe memcheck cases OK")


def mla_case(H, BS, lens, kv_dtype):
    nblk = [(n + BS - 1) // BS for n in lens]
    NB = sum(nblk) + 2
    bt = torch.full((len(lens), max(nblk + [1]) + 1), 1 << 30, dtype=torch.int32, device="cuda")
    lat = torch.randn(NB, BS, 576, device="cuda")
    perm = torch.randperm(NB, device="cuda").to(torch.int32)
    p = 0
    for b, n in enumerate(lens):
        bt[b, :nblk[b]] = perm[p:p + nblk[b]]
        p += nblk[b]
        if n % BS:
            lat[int(bt[b, nblk[b] - 1]), n % BS:] = float("nan")
    qn = torch.randn(len(lens), H, 512, device="cuda").bfloat16()
    qr = torch.randn(len(lens), H, 64, device="cuda").bfloat16()
    return qn, qr, lat.to(kv_dtype), bt, torch.tensor(lens, dtype=torch.int32, device="cuda")


if __name__ == "__main__":
    main()
