"""Prints, per verify run of results.jsonl files, the weight stream (% of read, batches 1/2/4/8), the GEMV's ahead
steps and the decode step at batch 1 and at max concurrency (benchmarks/s21_call4_device.sh's A/B).

    python3 benchmarks/ahead_summary.py DIR/results.jsonl ..."""
import json
import sys

for path in sys.argv[1:]:
    for line in open(path):
        run = json.loads(line)
        res = run.get("result") or {}
        gemm, points = res.get("gemm") or {}, (res.get("decode") or {}).get("points") or []
        stream = " / ".join(f"{100 * v['fraction_of_read']:.1f}" for v in (gemm.get("stream") or {}).values())
        steps = "; ".join(f"b{p['batch']} {p['measured_ms']:.3f} ms" for p in points)
        print(f"{path}: {run['name']} rc {run['rc']} {run['wall_s']:.0f} s; ahead {gemm.get('ahead_steps')}; "
              f"stream {stream}; decode {steps}")
