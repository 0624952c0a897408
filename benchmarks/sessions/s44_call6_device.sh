#!/usr/bin/env bash
# Session 44, call 6: the three-CTA row-owned launch as verify's eighth matmul form: the GEMV GPU tests (every
# batch, 16-bit and e4m3, 1 / 2 / 3 CTAs an SM, split3), memcheck of the 3-CTA launch, verify's GPU tests, and verify
# on the models whose shapes it takes (Qwen3-14B, Llama-3.1-8B, gemma-3-27b): weight stream and decode.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s44_call6_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== gemv tests" | tee -a "$LOG"
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py -k "every_batch" 2>&1 | tail -3 \
  | tee -a "$LOG"
echo "== memcheck" | tee -a "$LOG"
timeout 90 compute-sanitizer --report-api-errors no --tool memcheck python3 -m pytest -q -x -p no:cacheprovider \
  tests/test_gemv_stream_gpu.py -k "test_every_batch_twice and own and 6144" 2>&1 \
  | tail -3 | tee -a "$LOG"
echo "== verify tests" | tee -a "$LOG"
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py 2>&1 | tail -3 | tee -a "$LOG"
echo "== verify" | tee -a "$LOG"
timeout 240 python3 benchmarks/verify_device_run.py models --budget=230 --only=qwen3-14b,llama8b-8k,gemma3-27b 2>&1 \
  | tail -7 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -12 | tee -a "$LOG"
python3 - "$OUT/results.jsonl" <<'PY' 2>&1 | tee -a "$LOG"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line).get("result") or {}
    g = r.get("gemm") or {}
    print(r.get("model"), {b: round(100 * v["fraction_of_read"], 1) for b, v in g.get("stream", {}).items()},
          [(s["shape"], s["batch"], s["chosen"][-28:]) for s in g.get("shapes", []) if "three" in s["chosen"]])
PY
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s44_call6.jsonl" 2>/dev/null
