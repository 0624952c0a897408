#!/usr/bin/env bash
# Session 46, call 5: the final tree's verify GPU tests (every GEMV launch padded; the weight stream in decode order).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s46_call5_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 300 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py tests/test_skinny_gpu.py 2>&1 | tail -2 \
  | tee -a "$LOG"
