#!/usr/bin/env bash
# Session 46, call 6: verify on the rest of issue 13's list (every GEMV launch padded, MoE one-token GEMVs
# included) and on Devstral-Small-2 with its Pixtral tower now counted (held as its bytes beside the language model).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s46_call6_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 420 python3 benchmarks/verify_device_run.py models --budget=400 \
  --only=llama8b-32k-fp8,mixtral-tp2,llama70b-tp2,qwen3next-tp2,devstral-small-fp8 2>&1 | tail -7 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -16 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s46_call6.jsonl" 2>/dev/null
