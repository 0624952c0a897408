"""The warpgroup-MMA GQA / MQA decode (`KernelOptions(wgmma=True)`, paged_decode_wg.cu) against the default launch
and torch SDPA on a contiguous copy, on large-group shapes: same tensors (pages shuffled), CUDA graphs, the plans
alternating twice. Variants: heads a CTA and 64-token steps in flight.

    python3 benchmarks/probes/decode_wg_ab.py
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
import kernel_vs_flashinfer as kvf  # noqa: E402

from kvplan.kernels import KernelOptions, paged_decode_plan, probes  # noqa: E402

DEV = torch.device("cuda")
BF = torch.bfloat16
SHAPES = [  # label, B, ctx, (Hq, Hkv, D)
    ("MQA 64q/1kv B8 32K", 8, 32768, (64, 1, 128)), ("MQA 64q/1kv B1 32K", 1, 32768, (64, 1, 128)),
    ("MQA 64q/1kv B64 4K", 64, 4096, (64, 1, 128)), ("64q/4kv B16 16K", 16, 16384, (64, 4, 128)),
    ("32q/2kv B16 16K", 16, 16384, (32, 2, 128)), ("MQA d64 64q/1kv B8 32K", 8, 32768, (64, 1, 64)),
    ("128q/1kv B8 16K", 8, 16384, (128, 1, 128)), ("32q/1kv B8 32K", 8, 32768, (32, 1, 128)),
]


WG_LAUNCHES = {64: ((1, 4), (2, 2)), 32: ((1, 3), (2, 2)), 16: ((1, 3),)}  # (warpgroups, stages)


def variants(group: int) -> dict:
    out = {"mma.sync (wgmma=False)": KernelOptions(wgmma=False), "default": KernelOptions()}
    for h in (64, 32, 16):
        if group % h == 0:
            for wgs, st in WG_LAUNCHES[h]:
                out[f"wg {h}h {wgs}wg {st}st"] = KernelOptions(wgmma=True, wg_heads=h, wg_stages=st,
                                                               wg_warpgroups=wgs)
    return out


def main():
    bw = probes.read_bandwidth().bytes_per_s
    l2 = getattr(torch.cuda.get_device_properties(DEV), "L2_cache_size", 50 << 20)
    print(f"# {torch.cuda.get_device_name()}, read {bw / 1e12:.3f} TB/s, pages shuffled; µs per call (two runs), "
          "rel. difference to SDPA, splits")
    for label, B, ctx, (hq, hkv, D) in SHAPES:
        kv_bytes, copies, k, v, bts, qs, outs, sl = kvf.gqa_tensors(B, ctx, hq, hkv, D, BF, l2)
        kc = [k[bt.long()].reshape(B, ctx, hkv, D).transpose(1, 2).contiguous() for bt in bts]
        vc = [v[bt.long()].reshape(B, ctx, hkv, D).transpose(1, 2).contiguous() for bt in bts]
        sd = [lambda r=r: F.scaled_dot_product_attention(qs[r].unsqueeze(2), kc[r], vc[r], enable_gqa=True)
              for r in range(copies)]
        ref = sd[0]().squeeze(2).float()
        sdpa = kvf.time_calls(sd) * 1e6
        del kc, vc
        plans = {n: paged_decode_plan(hq, hkv, D, 16, BF, BF, B, ctx // 16, DEV, options=o)
                 for n, o in variants(hq // hkv).items()}
        errs = {n: float((p.run(qs[0], k, v, bts[0], sl, out=outs[0]).float() - ref).norm() / ref.norm())
                for n, p in plans.items()}
        ts = kvf.time_alternating(plans, qs, k, v, bts, sl, outs)
        floor = kv_bytes / bw * 1e6
        print(f"\n## {label} ({kv_bytes / 1e6:.0f} MB, read floor {floor:.1f} µs, SDPA {sdpa:.1f} µs)\n"
              "| launch | splits | µs | % of read | / SDPA | rel. err |\n|---|---|---|---|---|---|")
        for n, p in plans.items():
            t = sum(ts[n]) / len(ts[n])
            print(f"| {n} | {p.launch_for(B).splits} | {ts[n][0]:.1f} / {ts[n][1]:.1f} | {100 * floor / t:.1f}% | "
                  f"{t / sdpa:.3f} | {errs[n]:.1e} |", flush=True)
        del k, v, qs, outs, plans
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
