#!/usr/bin/env bash
# Session 36, call 10: the GPU test files this session touched, on the final tree.
set -u
cd "$(dirname "$0")/.."
LOG=$OUT/s36_call10_h200_2026-12-03.txt
python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py tests/test_norm.py tests/test_gated_act.py tests/test_fp8_quant.py 2>&1 | tail -2 | tee "$LOG"
python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py -k "forward_on_gpu or fp8" 2>&1 | tail -2 | tee -a "$LOG"
