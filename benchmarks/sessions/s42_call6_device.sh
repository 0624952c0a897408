#!/usr/bin/env bash
# Session 42, call 6: where DeepSeek-V3's TTFT goes (443 ms against a 192 ms estimate) and Qwen3-Next's (155 / 86),
# kernel by kernel, for the next session; DeepSeek-V3's batch-1 step on the final tree.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s42_call6_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== DeepSeek-V3 tp 8 (one rank), prefill of 8,192 tokens" | tee -a "$LOG"
timeout 150 python3 benchmarks/prefill_profile.py deepseek-ai/DeepSeek-V3 --tp 8 --tokens 8192 --top 16 2>&1 \
  | grep -v -i warn | tail -20 | tee -a "$LOG"
echo "== Qwen3-Next-80B tp 2 (one rank), prefill of 8,192 tokens" | tee -a "$LOG"
timeout 120 python3 benchmarks/prefill_profile.py Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2 --tokens 8192 --top 16 \
  2>&1 | grep -v -i warn | tail -20 | tee -a "$LOG"
echo "== DeepSeek-V3 tp 8 (one rank), batch 1, 8K context" | tee -a "$LOG"
timeout 100 python3 benchmarks/forward_profile.py deepseek-ai/DeepSeek-V3 --tp 8 --batch 1 --context 8192 --top 12 \
  2>&1 | grep -v -i warn | tail -15 | tee -a "$LOG"
