#!/usr/bin/env bash
# Session 37, call 2: the forward passes that route by the general rule on the GPU against the float64 reference
# (the correction bias now held in float32 by the MoE), verify on Llama-4-Scout (tp 2, one rank; its chunked caches)
# and NVIDIA-Nemotron-3-Nano-30B-A3B (Mamba-2 + MoE, sigmoid routing).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s37_call2_h200_2026-12-03.txt
python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py -k "deepseek_v3_groups or llama4 or nemotron or gpt_oss" \
  2>&1 | tail -15 | tee "$LOG"
python3 benchmarks/verify_device_run.py models --only=llama4-scout-tp2,nemotron3-nano --budget=420 2>&1 | tail -4 \
  | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | tee -a "$LOG"
grep -h "internal error\|Error" "$OUT/progress.txt" | cut -c1-300 | tail -10 | tee -a "$LOG"
