#!/usr/bin/env bash
# Session 35, call 5: where Nemotron-H-8B's TTFT goes (8,192 tokens, tp 1), the torch SSD prefill as landed and with
# TF32 matmuls (issue 13).
set -u
cd "$(dirname "$0")/../.."  # the repository root
CFG=benchmarks/configs/nvidia--Nemotron-H-8B-Base-8K.json
{
  python3 benchmarks/prefill_profile.py $CFG --top 22 2>&1 | tail -30
  echo "== --tf32"
  python3 benchmarks/prefill_profile.py $CFG --top 8 --tf32 2>&1 | tail -14
} 2>&1 | tee "$OUT/s35_call5_h200_2026-12-03.txt"
