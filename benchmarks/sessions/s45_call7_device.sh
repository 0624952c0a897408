#!/usr/bin/env bash
# Session 45, call 7: which neighbouring GEMV forms slow Qwen3-14B's decode-order chain (benchmarks/probes/chain_pairs_probe.py),
# with programmatic dependent launch on and off, batch 1 and 8; Llama-3.1-8B for comparison.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s45_call7_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
for b in 1 8; do
  timeout 120 python3 benchmarks/probes/chain_pairs_probe.py --model 14b --batch $b 2>&1 | tail -1 | tee -a "$LOG"
  KVPLAN_PDL=0 timeout 120 python3 benchmarks/probes/chain_pairs_probe.py --model 14b --batch $b 2>&1 | tail -1 | tee -a "$LOG"
done
timeout 100 python3 benchmarks/probes/chain_pairs_probe.py --model 8b --batch 8 2>&1 | tail -1 | tee -a "$LOG"
