#!/usr/bin/env bash
# Session 47, call 2: the final tree (engine model: speculative decoding, blocks override, expert / data parallelism,
# the Qwen-VL towers' pass; no kernel change) on the GPU: issue 13's list through verify, then verify's GPU tests.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s47_call2_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 420 python3 benchmarks/verify_device_run.py models --budget=400 \
  --only=llama8b-8k,llama8b-32k-fp8,qwen3-14b,gemma3-27b,gpt-oss-20b,dsv2-lite,mixtral-tp2,llama70b-tp2,qwen3next-tp2,llama1b \
  2>&1 | tail -12 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -16 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s47_call2.jsonl" 2>/dev/null
timeout 140 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py 2>&1 | tail -2 | tee -a "$LOG"
