#!/usr/bin/env bash
# Session 45, call 9: the chain's hypothesis (RESULTS session 45): each GEMV launch padded to its intended CTAs an SM
# (KVPLAN_GV_SPREAD=1) against as it is, Qwen3-14B b1 and b8 and Llama-3.1-8B b8 (benchmarks/probes/chain_pairs_probe.py).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s45_call9_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
for spread in 1 0; do
  for b in 1 8; do
    KVPLAN_GV_SPREAD=$spread timeout 90 python3 benchmarks/probes/chain_pairs_probe.py --model 14b --batch $b 2>&1 | tail -1 \
      | sed "s/^/spread=$spread /" | tee -a "$LOG"
  done
done
KVPLAN_GV_SPREAD=1 timeout 90 python3 benchmarks/probes/chain_pairs_probe.py --model 8b --batch 8 2>&1 | tail -1 \
  | sed "s/^/spread=1 /" | tee -a "$LOG"
