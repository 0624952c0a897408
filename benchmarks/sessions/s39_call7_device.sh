#!/usr/bin/env bash
# Session 39, call 7 (the tree as landed): every GPU test file this session touched, in full; verify on
# AI21-Jamba-1.5-Mini at tp 2 (one simulated rank: x_proj split by channels) and NVIDIA-Nemotron-3-Nano (the Mamba-2
# convolution helpers moved to module functions).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s39_call7_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
python3 -m pytest -q tests/test_mamba1_scan.py tests/test_verify_gpu.py tests/test_mamba_step.py \
  tests/test_ssd_prefill.py tests/test_verify_model.py tests/test_kernel_compile.py 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --budget=200 --only=jamba-mini-tp2,nemotron3-nano 2>&1 | tail -4 \
  | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -5 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s39_call7.jsonl" 2>/dev/null
