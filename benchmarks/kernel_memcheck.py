"""Small cases for compute-sanitizer (memcheck / racecheck) over every code path of the kernel.

    compute-sanitizer --tool memcheck --error-exitcode 1 python benchmarks/kernel_memcheck.py

Covers: one split and several (merge kernel), token slices merged in shared memory, head tiles
sharing a ring (named barriers), fp8, head dims 64/256, sliding window, empty sequences, partial
last blocks with NaN tails, B=1.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kvplan.kernels import paged_decode_attention, reference_paged_decode_attention  # noqa: E402

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
        (dict(B=2, Hq=8, Hkv=2, D=128, BS=16, lens=[300, 17]), dict(num_splits=1, _slices=1)),
        (dict(B=2, Hq=16, Hkv=1, D=64, BS=8, lens=[129, 5], kv_dtype=F8), dict(num_splits=2)),
        (dict(B=2, Hq=32, Hkv=1, D=128, BS=32, lens=[250, 1]), {}),            # 2 head tiles x 2 slices
        (dict(B=1, Hq=64, Hkv=1, D=256, BS=16, lens=[100]), dict(num_splits=2)),  # 8 head tiles
        (dict(B=1, Hq=128, Hkv=1, D=256, BS=16, lens=[40]), {}),              # 16 warps
        (dict(B=2, Hq=4, Hkv=4, D=256, BS=128, lens=[300, 129], kv_dtype=F8, dtype=torch.float16),
         dict(sliding_window=70)),
        (dict(B=2, Hq=32, Hkv=8, D=128, BS=16, lens=[333, 0]), dict(_kv_per_cta=8, num_splits=2)),  # 8 kv heads/CTA
        (dict(B=3, Hq=16, Hkv=4, D=64, BS=16, lens=[70, 5, 16]), dict(_kv_per_cta=2)),
        # the cp.async ring where the sm_90 default is the bulk-copy variant (and vice versa elsewhere)
        (dict(B=3, Hq=8, Hkv=2, D=128, BS=16, lens=[0, 37, 700]), dict(num_splits=5, _variant=dict(bulk=0))),
        (dict(B=2, Hq=32, Hkv=8, D=128, BS=16, lens=[333, 0]), dict(_kv_per_cta=8, _variant=dict(bulk=0))),
        (dict(B=3, Hq=16, Hkv=2, D=128, BS=8, lens=[0, 37, 700], kv_dtype=F8), dict(_variant=dict(bulk=1))),
        (dict(B=2, Hq=8, Hkv=8, D=256, BS=32, lens=[300, 9]), dict(_variant=dict(bulk=1), sliding_window=50)),
        # split merge fused into the last CTA (atomic counters): bulk, ring, fp8, KV heads per CTA, head tiles
        (dict(B=3, Hq=32, Hkv=8, D=128, BS=16, lens=[0, 37, 700]), dict(num_splits=9, _fuse_merge=True)),
        (dict(B=3, Hq=8, Hkv=2, D=128, BS=16, lens=[0, 37, 700]), dict(num_splits=5, _fuse_merge=True,
                                                                        _variant=dict(bulk=0))),
        (dict(B=2, Hq=16, Hkv=1, D=64, BS=8, lens=[129, 5], kv_dtype=F8), dict(num_splits=4, _fuse_merge=True)),
        (dict(B=2, Hq=32, Hkv=8, D=128, BS=16, lens=[333, 0]), dict(_kv_per_cta=4, num_splits=3, _fuse_merge=True)),
        (dict(B=1, Hq=64, Hkv=1, D=128, BS=16, lens=[900]), dict(num_splits=6, _fuse_merge=True)),
        (dict(B=1, Hq=64, Hkv=1, D=128, BS=16, lens=[900]), dict(num_splits=6)),  # same, kvp_merge
    ]
    if len(sys.argv) > 1:  # --only I: one case (to localise a sanitizer report)
        runs = [runs[int(sys.argv[-1])]]
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
    print(f"memcheck cases OK ({len(runs)} runs, worst rel err {worst:.2e})")


if __name__ == "__main__":
    main()
