"""Split-K shapes (B x Hkv <= 66 CTAs before splitting): splits per SM count, slices x stages (CTAs per SM),
and the split merge fused into the last CTA, on the Llama-3-8B layer, same data, same run.

    python benchmarks/kernel_split_sweep.py [--json PATH]

For each (slices, stages) the occupancy API gives CTAs per SM n; the splits tried are the largest count
that fits one wave (floor(SMs * n / (B * Hkv))) and twice that. Each is timed with the kvp_merge launch and
with the fused merge. The default plan is timed first and last (drift shows as a spread).
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from decode_kernel import probe_setup, Case, run_case  # noqa: E402

from kvplan.kernels import paged_decode as pd  # noqa: E402

SHAPES = [(1, 4096), (1, 32768), (1, 131072), (8, 8192)]
CONFIGS = [(8, 2), (8, 3), (4, 3), (4, 2), (2, 3), (2, 2), (1, 4)]


def occupancy(case, sl, st):
    a = pd.validate(case.q[0], case.k, case.v, case.bt[0], case.sl, None, 1.0, 1.0, None, require_cuda=True)
    dev = pd._device(0)
    launch, ld = pd.plan(a, dev, case.ctx, slices=sl, stages=st, num_splits=1)
    return pd._occupancy_ctas(ld, dev, launch.warps * 32, launch.smem), launch.smem, dev.sm_count


def main():
    json_path, l2, bw = probe_setup("split_sweep.json")
    rows = []
    for B, ctx in SHAPES:
        c = Case(B, ctx, 32, 8, 128, l2_bytes=l2, with_baselines=True)
        pairs = B * 8
        variants = [("default", {}), ("default fused", dict(_fuse_merge=True))]
        for sl, st in CONFIGS:
            n, smem, sms = occupancy(c, sl, st)
            s1 = max(1, sms * n // pairs)
            for s in sorted({s1, 2 * s1}):
                for fuse in (False, True):
                    variants.append((f"sl{sl}x st{st} n{n} s{s}{' fused' if fuse else ''}",
                                     dict(_slices=sl, _stages=st, num_splits=s, _fuse_merge=fuse)))
        variants.append(("default#2", {}))
        for i, (name, kw) in enumerate(variants):
            r = run_case(f"{name} B={B} ctx={ctx}", c, bw, baselines=(i == 0), **kw)
            r["variant"] = name
            rows.append(r)
            extra = (f" SDPA {r['sdpa_us']:.1f} gather {r['gather_sdpa_us']:.1f}" if "sdpa_us" in r else "")
            print(f"B={B:2d} ctx={ctx:6d} {name:28s} {r['kernel_us']:7.1f} us {r['pct_copy_bw']:5.1f}% "
                  f"splits={r['splits']} slices={r['slices']} stages={r['stages']} smem={r['smem']} "
                  f"err={r['rel_err_vs_sdpa']:.1e}{extra}", flush=True)
        c.free()
    print()
    for B, ctx in SHAPES:
        rs = [r for r in rows if r["B"] == B and r["context"] == ctx]
        d = [r for r in rs if r["variant"].startswith("default") and "fused" not in r["variant"]]
        best = sorted(rs, key=lambda r: r["kernel_us"])[:4]
        dd = " / ".join("%.1f" % r["kernel_us"] for r in d)
        bb = "; ".join("%s %.1f" % (r["variant"], r["kernel_us"]) for r in best)
        print(f"B={B} ctx={ctx}: default {dd} us; best: {bb}")
    Path(json_path).write_text(json.dumps(dict(copy_bw=bw, rows=rows), indent=1))


if __name__ == "__main__":
    main()
