"""Steps in the address order of their pages (`KernelOptions(sort_steps=True)`) against the default order, on the
GQA shapes of the standing table: same tensors (pages shuffled), CUDA graphs, alternating (default / sorted, twice).

    python3 benchmarks/probes/sort_steps_ab.py [--ordered-pages]
"""

from __future__ import annotations

import argparse
import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
import kernel_vs_flashinfer as kvf  # noqa: E402

from kvplan.kernels import KernelOptions, paged_decode_plan, probes  # noqa: E402

DEV = torch.device("cuda")
BF, F8 = torch.bfloat16, torch.float8_e4m3fn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ordered-pages", action="store_true")
    kvf.ORDERED_PAGES = ap.parse_args().ordered_pages
    bw = probes.read_bandwidth().bytes_per_s
    l2 = getattr(torch.cuda.get_device_properties(DEV), "L2_cache_size", 50 << 20)
    print(f"# {torch.cuda.get_device_name()}, read {bw / 1e12:.3f} TB/s, pages "
          f"{'in address order' if kvf.ORDERED_PAGES else 'shuffled'}\n| shape | splits | default, us | sorted, us | "
          "sorted / default | % of read default / sorted |\n|---|---|---|---|---|---|")
    for label, B, ctx, (hq, hkv, D), kvd in kvf.GQA:
        kv_bytes, _, k, v, bts, qs, outs, sl = kvf.gqa_tensors(B, ctx, hq, hkv, D, kvd, l2)
        plans = {s: paged_decode_plan(hq, hkv, D, 16, kvd, BF, B, ctx // 16, DEV,
                                      options=KernelOptions(sort_steps=s)) for s in (False, True)}
        a = plans[False].run(qs[0], k, v, bts[0], sl, out=outs[0]).float().clone()
        b = plans[True].run(qs[0], k, v, bts[0], sl, out=outs[0]).float()
        rel = float((a - b).norm() / a.norm())
        ts = kvf.time_alternating(plans, qs, k, v, bts, sl, outs)
        d, s = sum(ts[False]) / 2, sum(ts[True]) / 2
        floor = kv_bytes / bw * 1e6
        print(f"| {label} | {plans[False].launch_for(B).splits} | {ts[False][0]:.1f} / {ts[False][1]:.1f} | "
              f"{ts[True][0]:.1f} / {ts[True][1]:.1f} | {s / d:.3f} | {100 * floor / d:.1f} / {100 * floor / s:.1f}% "
              f"(outputs differ by {rel:.1e}) |", flush=True)
        del k, v, qs, outs
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
