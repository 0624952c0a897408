#!/usr/bin/env bash
# Session 42, call 8: memcheck and racecheck of the row-tile kernels with a joined expert's passes one per CTA row
# (fp8 and 16-bit), on the final tree.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s42_call8_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
K="(test_moe_by_expert_rows_fp8 and joined) or (test_moe_row_tiles_with_joined_experts and 150 and None)"
for tool in memcheck racecheck; do
  echo "== $tool" | tee -a "$LOG"
  timeout 75 compute-sanitizer --report-api-errors no --tool $tool python3 -m pytest -q -x -p no:cacheprovider \
    tests/test_skinny_gpu.py -k "$K" 2>&1 | tail -2 | tee -a "$LOG"
done
