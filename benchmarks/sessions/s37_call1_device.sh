#!/usr/bin/env bash
# Session 37, call 1: the router kernel's general rule (sigmoid scores, correction bias, expert groups, the router's
# bias) and the forward passes that route by it (tiny DeepSeek-V3, Llama 4, Nemotron-H MoE on the GPU against the
# float64 reference), then verify on GLM-4.7-Flash and Llama-4-Scout (tp 2, one rank) and two MoE regressions.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s37_call1_h200_2026-12-03.txt
python3 -m pytest -q -p no:cacheprovider tests/test_router.py tests/test_verify_gpu.py tests/test_mxfp4_gpu.py \
  2>&1 | tail -25 | tee "$LOG"
python3 benchmarks/verify_device_run.py models --only=glm47-flash,llama4-scout-tp2,gpt-oss-20b,dsv2-lite \
  --budget=400 2>&1 | tail -8 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | tee -a "$LOG"
grep -h "router\|moe\|Error\|error" "$OUT/progress.txt" | cut -c1-300 | tail -20 | tee -a "$LOG"
