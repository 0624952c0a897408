#!/usr/bin/env bash
# Session 42, call 7: the engine model now counts vLLM's fused-MoE workspace in the profile forward (engines/
# vllm_budget.py mlp_per_token): the budget verdicts of the MoE models whose hidden exceeds their per-rank
# intermediate (DeepSeek-V3 tp 8: 0.33 -> 1.98 GiB predicted; Qwen3-Next tp 2, DeepSeek-V2-Lite).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s42_call7_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
python3 benchmarks/verify_device_run.py models --budget=150 --only=dsv3-tp8,qwen3next-tp2,dsv2-lite 2>&1 | tail -4 \
  | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -10 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s42_call7.jsonl" 2>/dev/null
