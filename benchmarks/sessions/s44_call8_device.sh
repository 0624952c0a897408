#!/usr/bin/env bash
# Session 44, call 8: the final tree (three-CTA form a default verify form, one warm-up stream): verify's GPU tests
# and Llama-3.1-8B's verify.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s44_call8_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py 2>&1 | tail -2 | tee -a "$LOG"
timeout 70 python3 benchmarks/verify_device_run.py models --budget=60 --only=llama8b-8k 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -8 | tee -a "$LOG"
python3 - "$OUT/results.jsonl" <<'PY' 2>&1 | tee -a "$LOG"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line).get("result") or {}
    g = r.get("gemm") or {}
    print(r.get("model"), {b: round(100 * v["fraction_of_read"], 1) for b, v in g.get("stream", {}).items()},
          round((r.get("graphs") or {}).get("bytes", 0) / 2**20))
PY
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s44_call8.jsonl" 2>/dev/null
