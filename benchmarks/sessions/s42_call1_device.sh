#!/usr/bin/env bash
# Session 42, call 1: the row-tile by-expert kernel for fp8 experts (kvp_skinny_fp8_er, written in session 41, never
# run): its GPU tests, memcheck and racecheck; timed against the k-split by-expert kernel at 32 / 84 / 256 tokens
# (DeepSeek-V3's experts, tp 8); DeepSeek-V3's batch-84 step kernel by kernel with each (s41 call 11: 107.8 ms, the
# k-split fp8 kernel 92 of it).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s42_call1_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_gpu.py -k "fp8" 2>&1 | tail -4 | tee -a "$LOG"
for tool in memcheck racecheck; do
  echo "== $tool (fp8 row tiles)" | tee -a "$LOG"
  timeout 120 compute-sanitizer --report-api-errors no --tool $tool python3 -m pytest -q -x -p no:cacheprovider \
    tests/test_skinny_gpu.py -k "test_moe_by_expert_rows_fp8" 2>&1 | tail -2 | tee -a "$LOG"
done
timeout 120 python3 benchmarks/probes/block_gemv_probe.py --experts --by-expert 2>&1 | grep -v -i warn | tee -a "$LOG"
for form in plain rows; do
  echo "== DeepSeek-V3 tp 8 (one rank), batch 84, 8K context, fp8 experts by expert: $form" | tee -a "$LOG"
  pre=""; [ $form = rows ] && pre="benchmarks/probes/with_fp8_expert_rows.py"
  timeout 100 python3 $pre benchmarks/forward_profile.py deepseek-ai/DeepSeek-V3 --tp 8 --batch 84 --context 8192 \
    --top 8 2>&1 | grep -v -i warn | tail -12 | tee -a "$LOG"
done
