#!/usr/bin/env bash
# Session 35, call 6: Nemotron-H-8B's prefill with the SSD in batched-matmul layouts and TF32, profiled; verify's
# GPU tests (tiny forwards vs float64, step kernels); kvplan verify on it (issue 13).
set -u
cd "$(dirname "$0")/../.."  # the repository root
CFG=benchmarks/configs/nvidia--Nemotron-H-8B-Base-8K.json
LOG=$OUT/s35_call6_h200_2026-12-03.txt
{
  python3 benchmarks/prefill_profile.py $CFG --top 14 2>&1 | tail -16
  python3 -m pytest -q -x -p no:cacheprovider tests/test_mamba_step.py tests/test_deltanet_step.py \
    tests/test_verify_gpu.py tests/test_prefill_kernels.py 2>&1 | tail -3
} 2>&1 | tee "$LOG"
python3 benchmarks/verify_device_run.py models --only=nemotron-h-8b,qwen3next-tp2 --budget=200 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | tail -8 | tee -a "$LOG"
