"""What an MLA decode call costs beyond its bytes: time against context length at a fixed CTA count.

`python3 benchmarks/probes/mla_fixed_cost_probe.py` (GPU): for each path (heads in M, warpgroup MMAs) at 16 heads and 32
sequences, the CUDA-graph time of a call at contexts 1K-32K with the split count fixed (so the grid is the same
and only the bytes per CTA change), with and without the split merge launch (without it the output is wrong: a
timing probe only), then a split-count sweep at 8K, then the read kernel over buffers of the same sizes. A line
fit of time against bytes gives each path's fixed cost (intercept) and per-byte rate (slope). One JSON line per row.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: kernel_vs_flashinfer

import torch  # noqa: E402

from kernel_vs_flashinfer import BF, DEV, mla_inputs, time_calls  # noqa: E402
from kvplan.kernels import paged_mla_decode_plan  # noqa: E402
from kvplan.kernels.probes import read_bandwidth  # noqa: E402

B, H = 32, 16
CTXS = (1024, 2048, 4096, 8192, 16384, 32768)
PATHS = {"hm": {"wgmma": False}, "wgmma": {"wgmma": True}}


def timed(B, ctx, kw, merge=True):
    kv_bytes, copies, lat, bts, qn, qr, outs, sl = mla_inputs(B, ctx, H, BF, l2)
    plan = paged_mla_decode_plan(H, 512, 64, 64, BF, B, ctx // 64, DEV, **kw)
    if not merge:
        go = plan._go
        plan._go = lambda torch_, main, mg, grid, splits, b, out: go(torch_, main, mg, grid, 1, b, out)
    fns = [lambda r=r: plan.run(qn[r], qr[r], lat, bts[r], sl, out=outs[r]) for r in range(copies)]
    us = time_calls(fns) * 1e6
    splits = plan.splits_for(B)
    del lat, bts, qn, qr, outs
    torch.cuda.empty_cache()
    return kv_bytes, splits, us


def fit(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - slope * mx, slope


l2 = torch.cuda.get_device_properties(DEV).L2_cache_size
for name, kw in PATHS.items():
    _, auto, _ = timed(B, 8192, kw)
    for merge in (True, False):
        xs, ys = [], []
        for ctx in CTXS:
            kv, splits, us = timed(B, ctx, dict(kw, num_splits=auto), merge)
            xs.append(kv / 1e6)
            ys.append(us)
            print(json.dumps(dict(path=name, merge=merge, B=B, ctx=ctx, splits=splits, kv_mb=round(kv / 1e6),
                                  us=round(us, 1))), flush=True)
        a, b = fit(xs, ys)
        print(json.dumps(dict(path=name, merge=merge, fit_intercept_us=round(a, 2), fit_us_per_mb=round(b, 5),
                              slope_tb_s=round(1 / b, 3))), flush=True)
    for s in (1, 2, 4, 8, 16, 32):
        kv, splits, us = timed(B, 8192, dict(kw, num_splits=s))
        print(json.dumps(dict(path=name, sweep=True, B=B, ctx=8192, splits=splits, us=round(us, 1))), flush=True)
for mb in (38, 75, 151, 302, 604, 1208, 4096):
    bw = read_bandwidth(nbytes=mb * 10**6)
    us = bw.nbytes / bw.bytes_per_s * 1e6
    print(json.dumps(dict(read_mb=mb, tb_s=round(bw.bytes_per_s / 1e12, 3), us=round(us, 1), method=bw.method)),
          flush=True)
