"""The GQA split merge for few splits (kvp_merge_few: several rows a CTA) against the one-row-a-CTA merge, on the
shapes whose default splits are 2-8, same tensors, CUDA graphs, pages shuffled, alternating (few / one row, twice).

    python3 benchmarks/probes/merge_few_ab.py
"""

from __future__ import annotations

import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
import kernel_vs_flashinfer as kvf  # noqa: E402

from kvplan.kernels import paged_decode_plan, probes  # noqa: E402

DEV = torch.device("cuda")
BF, F8 = torch.bfloat16, torch.float8_e4m3fn
SHAPES = [("B64 8K", 64, 8192, 8, 128, BF), ("B32 4K", 32, 4096, 8, 128, BF), ("B16 32K", 16, 32768, 8, 128, BF),
          ("B8 8K", 8, 8192, 8, 128, BF), ("fp8 B64 8K", 64, 8192, 8, 128, F8),
          ("head_dim 64 B64 8K", 64, 8192, 8, 64, BF), ("64q/4kv B16 16K", 16, 16384, 4, 128, BF)]


def main():
    bw = probes.read_bandwidth().bytes_per_s
    l2 = getattr(torch.cuda.get_device_properties(DEV), "L2_cache_size", 50 << 20)
    print(f"# {torch.cuda.get_device_name()}, read {bw / 1e12:.3f} TB/s\n| shape | splits | merge few, us | "
          "one row a CTA, us | few / one |\n|---|---|---|---|---|")
    for label, B, ctx, hkv, D, kvd in SHAPES:
        hq = 64 if hkv == 4 else 32
        _, _, k, v, bts, qs, outs, sl = kvf.gqa_tensors(B, ctx, hq, hkv, D, kvd, l2)
        plans, got = {}, {}
        for few in (True, False):
            p = paged_decode_plan(hq, hkv, D, 16, kvd, BF, B, ctx // 16, DEV)
            p._few_merge = few
            plans[few] = p
            got[few] = p.run(qs[0], k, v, bts[0], sl, out=outs[0]).clone()
        same = torch.equal(got[True], got[False])
        ts = kvf.time_alternating(plans, qs, k, v, bts, sl, outs)
        a, b = sum(ts[True]) / 2, sum(ts[False]) / 2
        print(f"| {label} | {plans[True].launch_for(B).splits} | {ts[True][0]:.1f} / {ts[True][1]:.1f} | "
              f"{ts[False][0]:.1f} / {ts[False][1]:.1f} | {a / b:.3f}{'' if same else ' (outputs differ)'} |",
              flush=True)
        del k, v, qs, outs
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
