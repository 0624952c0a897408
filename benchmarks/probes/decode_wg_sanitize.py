"""A few small warpgroup-MMA decode calls for compute-sanitizer (racecheck / memcheck): one and two warpgroups, one
split and several, ragged lengths around the 64-token step, 16-token pages; each against the float64 reference.

    compute-sanitizer --tool racecheck python3 benchmarks/probes/decode_wg_sanitize.py
"""

from __future__ import annotations

import sys

import torch

sys.path.insert(0, ".")
from kvplan.kernels import KernelOptions, paged_decode_attention, reference_paged_decode_attention  # noqa: E402

DEV = torch.device("cuda")


def main():
    wgs_list = [int(a) for a in sys.argv[1:]] or [1, 2]  # warpgroups to run
    torch.manual_seed(0)
    lens = [65, 200, 1, 64]
    BS, Hq, D = 16, 64, 128
    nb = len(lens) * 16 + 2  # 16 blocks a sequence (200 tokens need 13), shuffled
    k = torch.randn(nb, BS, 1, D, device=DEV).bfloat16()
    v = torch.randn(nb, BS, 1, D, device=DEV).bfloat16()
    bt = torch.randperm(nb, device=DEV, dtype=torch.int32)[: len(lens) * 16].reshape(len(lens), 16).contiguous()
    sl = torch.tensor(lens, dtype=torch.int32, device=DEV)
    q = torch.randn(len(lens), Hq, D, device=DEV).bfloat16()
    ref = reference_paged_decode_attention(q, k, v, bt, sl, compute_dtype=torch.float64, out_dtype=torch.float64)
    worst = 0.0
    for wgs in wgs_list:
        for splits in (1, 3):
            opts = KernelOptions(wgmma=True, wg_warpgroups=wgs, wg_heads=64 if wgs == 2 else 32)
            got = paged_decode_attention(q, k, v, bt, sl, num_splits=splits, options=opts).double()
            worst = max(worst, float((got - ref).norm() / ref.norm()))
    torch.cuda.synchronize()
    verdict = "ok" if worst < 1e-2 else "WRONG"
    print(f"decode_wg_sanitize: {2 * len(wgs_list)} launches, worst rel err {worst:.1e}", verdict)


if __name__ == "__main__":
    main()
