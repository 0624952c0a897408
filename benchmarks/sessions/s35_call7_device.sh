#!/usr/bin/env bash
# Session 35, call 7: Nemotron-H-8B's prefill with the convolution as shifted multiply-adds over token-major rows;
# verify's GPU forward tests; kvplan verify on it (issue 13).
set -u
cd "$(dirname "$0")/../.."  # the repository root
CFG=benchmarks/configs/nvidia--Nemotron-H-8B-Base-8K.json
LOG=$OUT/s35_call7_h200_2026-12-03.txt
{
  python3 benchmarks/prefill_profile.py $CFG --top 12 2>&1 | tail -13
  python3 -m pytest -q -x -p no:cacheprovider tests/test_verify_gpu.py -k "forward_on_gpu" 2>&1 | tail -2
} 2>&1 | tee "$LOG"
python3 benchmarks/verify_device_run.py models --only=nemotron-h-8b --budget=120 2>&1 | tail -2 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | tail -6 | tee -a "$LOG"
