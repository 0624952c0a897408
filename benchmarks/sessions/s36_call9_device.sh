#!/usr/bin/env bash
# Session 36, call 9: what the GEMV's release store costs, A/B on one machine (skinny_gemm.py --gemv: every model's
# matmuls back to back, % of read bandwidth, batch 1-8; "nors": the store dropped, the racy form).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s36_call9_h200_2026-12-03.txt
python3 benchmarks/skinny_gemm.py --gemv --forms "own c2 d8,own c2 d8 nors,gemv,gemv nors,own c2 d8,gemv nors" --out $OUT/gemv_ab.json 2>&1 | grep -v "us lost" | cut -c1-170 | tee "$LOG"
