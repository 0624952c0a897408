#!/usr/bin/env bash
# Session 44, call 1: the final tree's verify path on the GPU after the engine model learned vLLM's model runner
# (verify's profile run now asks the engine for its sampler pass per model): verify's GPU tests and two verify runs.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s44_call1_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== tests" | tee -a "$LOG"
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py 2>&1 | tail -4 | tee -a "$LOG"
echo "== verify" | tee -a "$LOG"
timeout 200 python3 benchmarks/verify_device_run.py models --budget=190 --only=llama8b-8k,mixtral-tp2 2>&1 | tail -7 \
  | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -18 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s44_call1.jsonl" 2>/dev/null
