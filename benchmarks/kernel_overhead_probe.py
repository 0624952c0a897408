"""Where the split-K shapes lose time: fixed cost per call vs streaming rate, and the paged layout's cost.

    python benchmarks/kernel_overhead_probe.py [--json PATH]

1. B=1 context sweep (Llama-3-8B layer, 16 splits throughout): kernel with and without programmatic
   dependent launch, and SDPA on a contiguous cache. A least-squares fit t = t0 + bytes / bw per contender
   separates the fixed cost per call (t0: launch, pipeline fill, merge) from the streaming rate (bw).
2. Layout: the same 537 MB read as 8 KV heads of one 128K sequence (each head's 256-byte rows 2 KB apart:
   vLLM's [blocks, block, Hkv, D]) and as 8 sequences of one KV head (rows back to back), each with the
   pages in order and shuffled; SDPA beside each.
3. Ring depth and PDL on the four split shapes.
Graph-timed like decode_kernel.py (same Case and time_calls).
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from decode_kernel import probe_setup, Case, run_case, time_calls  # noqa: E402


def fit(points):
    """Least squares t = t0 + x / bw over (bytes, seconds) points: (t0 µs, bw TB/s)."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    slope = sxy / sxx
    return (my - slope * mx) * 1e6, 1 / slope / 1e12


def sdpa_us(case):
    t, _ = time_calls([case.sdpa_fn(r) for r in range(case.rot)])
    return t * 1e6


def main():
    json_path, l2, bw = probe_setup("overhead_probe.json")
    out = dict(copy_bw=bw, sweep=[], layout=[], depth=[])

    # 1. context sweep
    pts = {"pdl": [], "no pdl": [], "sdpa": []}
    for ctx in (8192, 16384, 32768, 65536, 131072, 262144):
        c = Case(1, ctx, 32, 8, 128, l2_bytes=l2)
        row = dict(context=ctx, kv_bytes=c.kv_bytes)
        for name, kw in (("pdl", dict(_pdl=True, num_splits=16)), ("no pdl", dict(_pdl=False, num_splits=16))):
            r = run_case(f"B=1 {ctx} {name}", c, bw, baselines=False, **kw)
            row[name] = r["kernel_us"]
            row[name + " err"] = r["rel_err_vs_sdpa"]
            pts[name].append((c.kv_bytes, r["kernel_us"] * 1e-6))
        row["sdpa"] = sdpa_us(c)
        pts["sdpa"].append((c.kv_bytes, row["sdpa"] * 1e-6))
        out["sweep"].append(row)
        print(f"B=1 ctx={ctx:6d} {c.kv_bytes / 1e6:7.1f} MB  pdl {row['pdl']:7.1f}  no-pdl {row['no pdl']:7.1f}  "
              f"sdpa {row['sdpa']:7.1f} us  err {row['pdl err']:.1e}", flush=True)
        c.free()
    out["fit"] = {}
    for name, p in pts.items():
        t0, rate = fit(p)
        out["fit"][name] = dict(t0_us=t0, tbps=rate)
        print(f"fit {name:7s}: fixed {t0:5.1f} us per call, streams at {rate:.3f} TB/s "
              f"({100 * rate * 1e12 / bw:.1f}% of copy)", flush=True)

    # 2. layout
    for B, Hq, Hkv in ((1, 32, 8), (8, 4, 1)):
        for permuted in (False, True):
            c = Case(B, 131072, Hq, Hkv, 128, l2_bytes=l2, permuted=permuted)
            r = run_case(f"layout B={B} {Hq}/{Hkv}", c, bw, baselines=False, num_splits=16)
            s = sdpa_us(c)
            row = dict(B=B, q_heads=Hq, kv_heads=Hkv, permuted=permuted, kernel_us=r["kernel_us"], sdpa_us=s,
                       kernel_tbps=c.kv_bytes / r["kernel_us"] / 1e6, err=r["rel_err_vs_sdpa"])
            out["layout"].append(row)
            print(f"layout B={B} {Hq:2d}q/{Hkv}kv {'shuffled' if permuted else 'in order'}: kernel {r['kernel_us']:.1f} us "
                  f"({row['kernel_tbps']:.3f} TB/s), sdpa {s:.1f} us, err {r['rel_err_vs_sdpa']:.1e}", flush=True)
            c.free()

    # 3. ring depth x PDL on the split shapes
    for B, ctx in ((1, 4096), (1, 32768), (1, 131072), (8, 8192)):
        c = Case(B, ctx, 32, 8, 128, l2_bytes=l2)
        for name, kw in (("default", {}), ("no pdl", dict(_pdl=False)), ("stages 3", dict(_stages=3)),
                         ("stages 3 no pdl", dict(_stages=3, _pdl=False)), ("4x3", dict(_slices=4, _stages=3)),
                         ("default#2", {})):
            r = run_case(f"B={B} {ctx} {name}", c, bw, baselines=False, **kw)
            out["depth"].append(dict(B=B, context=ctx, variant=name, kernel_us=r["kernel_us"], splits=r["splits"],
                                     slices=r["slices"], stages=r["stages"], err=r["rel_err_vs_sdpa"]))
            print(f"B={B:2d} ctx={ctx:6d} {name:16s} {r['kernel_us']:7.1f} us {r['pct_copy_bw']:5.1f}% "
                  f"splits={r['splits']} slices={r['slices']} stages={r['stages']} err={r['rel_err_vs_sdpa']:.1e}",
                  flush=True)
        c.free()
    Path(json_path).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
