"""Does the SM count bound the MLA kernel's one-wave shapes? The bar's 16-head shapes run 128 CTAs (B32 8K at 4
splits, B8 32K at 16, B128 4K at 1) on the H200's 132 SMs, one CTA per SM. The same work per CTA on 132 SMs (B33 8K
at 4 splits, B132 4K at 1): equal times per call mean each SM's own step bounds it (a split over all 132 SMs would
gain up to 3%); times longer by 33/32 mean the memory system does. CUDA graphs, pages shuffled, alternating twice.

    python3 benchmarks/probes/mla_sm_count.py
"""

from __future__ import annotations

import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from kernel_vs_flashinfer import mla_inputs, time_calls  # noqa: E402

from kvplan.kernels import paged_mla_decode_plan, probes  # noqa: E402

DEV = torch.device("cuda")
BF, F8 = torch.bfloat16, torch.float8_e4m3fn
PAIRS = [((32, 8192, BF, 4), (33, 8192, BF, 4)), ((128, 4096, BF, 1), (132, 4096, BF, 1)),
         ((32, 8192, F8, 4), (33, 8192, F8, 4))]


def time_one(B, ctx, kvd, splits, bw, l2):
    kv_bytes, copies, lat, bts, qn, qr, outs, sl = mla_inputs(B, ctx, 16, kvd, l2)
    plan = paged_mla_decode_plan(16, 512, 64, 64, kvd, B, ctx // 64, DEV, num_splits=splits)
    t = time_calls([lambda r=r: plan.run(qn[r], qr[r], lat, bts[r], sl, scale=0.07, out=outs[r])
                    for r in range(copies)])
    ctas = plan.splits_for(B) * B
    print(f"| {'fp8' if kvd == F8 else 'bf16'} B{B} {ctx // 1024}K | {plan.splits_for(B)} splits, {ctas} CTAs | "
          f"{t * 1e6:.1f} | {100 * kv_bytes / t / bw:.1f}% |", flush=True)
    del lat, qn, qr, outs
    torch.cuda.empty_cache()
    return t


def main():
    bw = probes.read_bandwidth().bytes_per_s
    l2 = getattr(torch.cuda.get_device_properties(DEV), "L2_cache_size", 50 << 20)
    print(f"# {torch.cuda.get_device_name()}, {torch.cuda.get_device_properties(DEV).multi_processor_count} SMs, "
          f"read {bw / 1e12:.3f} TB/s\n| shape | launch | us | % of read |\n|---|---|---|---|")
    for a, b in PAIRS:
        ts = [time_one(*a, bw, l2), time_one(*b, bw, l2), time_one(*a, bw, l2), time_one(*b, bw, l2)]
        ratio = (ts[1] + ts[3]) / (ts[0] + ts[2])
        print(f"# ratio {ratio:.3f} (work ratio {b[0] / a[0]:.3f})", flush=True)


if __name__ == "__main__":
    main()
