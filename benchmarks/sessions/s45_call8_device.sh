#!/usr/bin/env bash
# Session 45, call 8: does the GEMV chain's PDL interaction (call 7) reach verify's real decode step? Qwen3-14B and
# Llama-3.1-8B decode steps (benchmarks/forward_profile.py: graph step time, the top kernels), PDL on and off.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s45_call8_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
for m in Qwen/Qwen3-14B meta-llama/Llama-3.1-8B-Instruct; do
  for pdl in 1 0; do
    echo "== $m KVPLAN_PDL=$pdl" | tee -a "$LOG"
    KVPLAN_PDL=$pdl timeout 150 python3 benchmarks/forward_profile.py $m --batch 1 --context 8192 --top 8 2>&1 \
      | grep -v Warning | tail -11 | tee -a "$LOG"
  done
done
