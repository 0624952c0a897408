#!/usr/bin/env bash
# Session 44, call 7: warm-ups on one side stream (timing.side_stream): verify's measured graph memory with the
# three-CTA form refused and timed (it was 432 / 1,072 MiB on Llama-3.1-8B: cuBLAS workspaces of fresh streams),
# verify's GPU tests, and verify with the form on Qwen3-14B and gemma-3-27b.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s44_call7_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== graph memory A/B" | tee -a "$LOG"
timeout 60 python3 benchmarks/probes/graph_form_ab.py off meta-llama/Llama-3.1-8B-Instruct 2>/dev/null | tail -1 | tee -a "$LOG"
KVPLAN_GEMV_THREE_CTAS=1 timeout 60 python3 benchmarks/probes/graph_form_ab.py on meta-llama/Llama-3.1-8B-Instruct \
  2>/dev/null | tail -1 | tee -a "$LOG"
echo "== verify with the form" | tee -a "$LOG"
KVPLAN_GEMV_THREE_CTAS=1 timeout 120 python3 benchmarks/verify_device_run.py models --budget=110 \
  --only=qwen3-14b,gemma3-27b 2>&1 | tail -4 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -10 | tee -a "$LOG"
python3 - "$OUT/results.jsonl" <<'PY' 2>&1 | tee -a "$LOG"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line).get("result") or {}
    g = r.get("gemm") or {}
    print(r.get("model"), {b: round(100 * v["fraction_of_read"], 1) for b, v in g.get("stream", {}).items()},
          round((r.get("graphs") or {}).get("bytes", 0) / 2**20))
PY
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s44_call7.jsonl" 2>/dev/null
echo "== verify tests" | tee -a "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py 2>&1 | tail -2 | tee -a "$LOG"
