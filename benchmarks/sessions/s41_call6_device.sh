#!/usr/bin/env bash
# Session 41, call 6: the skinny / MoE kernels' GPU tests again with room to compile the fewer-warp cubins (call 5's
# run printed no summary line inside its 200 s), each file on its own.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s41_call6_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
start=$(date +%s)
timeout 420 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_gpu.py 2>&1 | tail -4 | tee -a "$LOG"
echo "skinny GPU tests: $(( $(date +%s) - start )) s" | tee -a "$LOG"
