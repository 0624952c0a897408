#!/usr/bin/env bash
# Session 46, call 3: the GEMV launch padding (KVPLAN_GV_SPREAD) for the MoE gather and block-scaled launches too
# ("all") against dense only (the default since session 45): the one-token MoE probe and verify's real decode step
# at batch 1 for MoE models, alternating.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s46_call3_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
for rep in 1 2; do
  for spread in 1 all; do
    KVPLAN_GV_SPREAD=$spread timeout 60 python3 benchmarks/probes/moe_one_token_probe.py 2>&1 | grep -v "^read" \
      | sed "s/^/spread=$spread /" | tee -a "$LOG"
  done
done
for m in zai-org/GLM-4.7-Flash deepseek-ai/DeepSeek-V2-Lite; do
  for spread in 1 all 1 all; do
    KVPLAN_GV_SPREAD=$spread timeout 100 python3 benchmarks/forward_profile.py $m --batch 1 --context 8192 --top 1 \
      2>&1 | grep "graph step" | sed "s/^/$m spread=$spread /" | tee -a "$LOG"
  done
done
for spread in 1 all; do
  KVPLAN_GV_SPREAD=$spread timeout 150 python3 benchmarks/forward_profile.py deepseek-ai/DeepSeek-V3 --tp 8 --batch 1 \
    --context 8192 --top 1 2>&1 | grep "graph step" | sed "s/^/DeepSeek-V3 tp8 spread=$spread /" | tee -a "$LOG"
done
