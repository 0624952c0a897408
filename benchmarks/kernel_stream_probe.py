"""Why the kernel streams at 3.00 TB/s where SDPA on a contiguous cache streams at 3.12 (kernel_overhead_probe.py).

    python benchmarks/kernel_stream_probe.py [--json PATH]

1. Page order, B=1 (Llama-3-8B layer): pages in order; shuffled only within each 2 MB span (64 pages of
   32 KB: DRAM neighbourhood changes, address-translation pages do not); 2 MB spans shuffled with pages in
   order inside; fully shuffled.
2. Per-CTA timeline (globaltimer, `_trace`) of one call: start spread, first-data latency, end spread.
(An L2-prefetch variant ahead of the bulk copies was measured with this script on 2026-11-22 and removed:
4-40% slower everywhere; benchmarks/NOTES_kernel.md v9.)
"""

import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from decode_kernel import probe_setup, DEV, Case, plan_of, run_case  # noqa: E402

from kvplan.kernels import paged_decode_attention  # noqa: E402

SPAN = 64  # pages of 32 KB (16 tokens x 8 heads x 128 x 2 B) per 2 MB


def order(nb, kind):
    idx = torch.arange(nb, device=DEV)
    if kind == "in order":
        return idx
    if kind == "full shuffle":
        return torch.randperm(nb, device=DEV)
    g = idx.view(-1, SPAN)
    if kind == "shuffle inside 2 MB":
        return torch.stack([row[torch.randperm(SPAN, device=DEV)] for row in g]).flatten()
    return g[torch.randperm(g.shape[0], device=DEV)].flatten()  # 2 MB spans shuffled


def set_order(case, kind):
    for r in range(case.rot):
        case.bt[r] = (order(case.nb, kind).to(torch.int32) + r * case.nb).view(case.B, -1).contiguous()


def timeline(case, **kw):
    launch = plan_of(case, **kw)
    n = launch.splits * (case.Hkv // launch.kv_per_cta) * case.B
    tr = torch.zeros(4 * n, dtype=torch.int64, device=DEV)
    for _ in range(3):
        paged_decode_attention(case.q[0], case.k, case.v, case.bt[0], case.sl, check_block_ids=False, _trace=tr, **kw)
    torch.cuda.synchronize()
    t = tr.view(n, 4).cpu().tolist()
    t0 = min(x[0] for x in t)
    starts = [(x[0] - t0) / 1e3 for x in t]
    firsts = [(x[1] - x[0]) / 1e3 for x in t]
    ends = [(x[2] - t0) / 1e3 for x in t]
    per_cta = case.kv_bytes / n
    rates = [per_cta / ((x[2] - x[1]) * 1e-9) / 1e9 for x in t]  # GB/s per CTA after its first data
    return dict(ctas=n, start_spread_us=max(starts), first_data_us=statistics.median(firsts),
                first_data_max_us=max(firsts), end_min_us=min(ends), end_median_us=statistics.median(ends),
                end_max_us=max(ends), cta_gbps_min=min(rates), cta_gbps_median=statistics.median(rates),
                cta_gbps_max=max(rates), sms=len({x[3] for x in t}))


def main():
    json_path, l2, bw = probe_setup("stream_probe.json")
    out = dict(copy_bw=bw, order=[], timeline=[])

    for ctx in (32768, 131072):
        c = Case(1, ctx, 32, 8, 128, l2_bytes=l2, with_baselines=False)
        for kind in ("in order", "shuffle inside 2 MB", "2 MB spans shuffled", "full shuffle"):
            set_order(c, kind)
            r = run_case(f"order {kind}", c, bw, baselines=False)
            out["order"].append(dict(context=ctx, order=kind, kernel_us=r["kernel_us"], err=r["rel_err_vs_sdpa"]))
            print(f"B=1 ctx={ctx:6d} {kind:20s} {r['kernel_us']:7.1f} us {r['pct_copy_bw']:5.1f}% "
                  f"err {r['rel_err_vs_sdpa']:.1e}", flush=True)
        c.free()

    for B, ctx in ((1, 4096), (1, 32768), (1, 131072), (8, 8192), (64, 8192)):
        c = Case(B, ctx, 32, 8, 128, l2_bytes=l2, with_baselines=False)
        r = run_case("default", c, bw, baselines=False)
        tl = timeline(c)
        tl.update(B=B, context=ctx, kernel_us=r["kernel_us"])
        out["timeline"].append(tl)
        print(f"B={B:2d} ctx={ctx:6d} {r['kernel_us']:7.1f} us graph-timed; one call: {tl['ctas']} CTAs on {tl['sms']} SMs, "
              f"starts within {tl['start_spread_us']:.1f} us, first data after {tl['first_data_us']:.2f} us "
              f"(max {tl['first_data_max_us']:.2f}), ends {tl['end_min_us']:.1f} / {tl['end_median_us']:.1f} / "
              f"{tl['end_max_us']:.1f} us (min/med/max), per-CTA GB/s {tl['cta_gbps_min']:.1f} / "
              f"{tl['cta_gbps_median']:.1f} / {tl['cta_gbps_max']:.1f}", flush=True)
        c.free()
    Path(json_path).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
