#!/usr/bin/env bash
# Session 45, call 1: F.linear kept only on a 1% tie (was 3%) and the weight stream the chosen forms timed again:
# verify's GPU tests, then verify on the dense models (weight stream at batch 1-8, the shapes' choices at batch 8).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s45_call1_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== verify tests" | tee -a "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py 2>&1 | tail -2 | tee -a "$LOG"
echo "== verify" | tee -a "$LOG"
timeout 330 python3 benchmarks/verify_device_run.py models --budget=320 \
  --only=llama8b-8k,qwen3-14b,gemma3-27b,llama1b 2>&1 | tail -7 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -14 | tee -a "$LOG"
python3 - "$OUT/results.jsonl" <<'PY' 2>&1 | tee -a "$LOG"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line).get("result") or {}
    g = r.get("gemm") or {}
    print(r.get("model"), {b: round(100 * v["fraction_of_read"], 1) for b, v in g.get("stream", {}).items()})
    for s in g.get("shapes", []):
        if s["batch"] == 8:
            tb = {k[:-5][-24:]: round(v, 2) for k, v in s.items() if k.endswith(" TB/s")}
            print("  ", s["shape"], s["chosen"][-30:], tb)
PY
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s45_call1.jsonl" 2>/dev/null
