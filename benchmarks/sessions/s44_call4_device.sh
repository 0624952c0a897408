#!/usr/bin/env bash
# Session 44, call 4: the row-owned GEMV's split3 form (a group of three slices as two then one) and its launch per
# shape against F.linear; its GPU tests (own form, every batch, groups of 3 and 4-then-3) and memcheck.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s44_call4_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== probe" | tee -a "$LOG"
timeout 300 python3 benchmarks/own_ring_probe.py 2>&1 | tail -20 | tee -a "$LOG"
echo "== tests" | tee -a "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py -k "own and every_batch" 2>&1 | tail -3 \
  | tee -a "$LOG"
echo "== memcheck" | tee -a "$LOG"
timeout 100 compute-sanitizer --report-api-errors no --tool memcheck python3 -m pytest -q -x -p no:cacheprovider \
  tests/test_gemv_stream_gpu.py -k "every_batch_twice and own-split3 and (6144-1024 or 14779-256)" 2>&1 \
  | tail -3 | tee -a "$LOG"
