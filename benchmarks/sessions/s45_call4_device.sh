#!/usr/bin/env bash
# Session 45, call 4: F.linear's speed at each capture (benchmarks/probes/flinear_capture_probe.py); verify's GPU tests with
# the re-time fallback; verify on Gemma-3-27B, Qwen3-14B and Llama-3.1-8B (weight stream at batch 1-8).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s45_call4_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== F.linear captures" | tee -a "$LOG"
timeout 150 python3 benchmarks/probes/flinear_capture_probe.py 2>&1 | tail -8 | tee -a "$LOG"
echo "== verify tests" | tee -a "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py 2>&1 | tail -2 | tee -a "$LOG"
echo "== verify" | tee -a "$LOG"
timeout 200 python3 benchmarks/verify_device_run.py models --budget=190 \
  --only=gemma3-27b,qwen3-14b,llama8b-8k 2>&1 | tail -5 | tee -a "$LOG"
python3 - "$OUT/results.jsonl" <<'PY' 2>&1 | tee -a "$LOG"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line).get("result") or {}
    g = r.get("gemm") or {}
    print(r.get("model"), {b: round(100 * v["fraction_of_read"], 1) for b, v in g.get("stream", {}).items()})
    for s in g.get("shapes", []):
        t = {k[:-5][-22:]: round(v, 2) for k, v in s.items() if k.endswith(" TB/s")}
        print("  ", s["shape"], s["batch"], s["chosen"][-26:], t.get("x @ W^T"), t.get("chosen, timed again"))
PY
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s45_call4.jsonl" 2>/dev/null
