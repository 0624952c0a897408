#!/usr/bin/env bash
# Session 44, call 2: the final tree (engine settings now per model runner, the release table rebuilt) on the GPU:
# verify's GPU tests and verify on a sliding-window model (gpt-oss-20b: its reserve counts the batches in flight).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s44_call2_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== tests" | tee -a "$LOG"
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py 2>&1 | tail -3 | tee -a "$LOG"
echo "== verify" | tee -a "$LOG"
timeout 200 python3 benchmarks/verify_device_run.py models --budget=190 --only=gpt-oss-20b,qwen3-14b 2>&1 | tail -7 \
  | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -18 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s44_call2.jsonl" 2>/dev/null
