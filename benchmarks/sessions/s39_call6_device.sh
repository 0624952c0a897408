#!/usr/bin/env bash
# Session 39, call 6: where GLM-4.7-Flash's batch-1 decode step goes (it misses the 15% verdict by one point at
# batch 1: 4.81 against 4.16 ms in session 37), kernel by kernel; verify on it as the tree stands.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s39_call6_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 150 python3 benchmarks/forward_profile.py zai-org/GLM-4.7-Flash --batch 1 --context 8192 --top 30 2>&1 \
  | grep -v -i warn | tail -34 | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --budget=150 --only=glm47-flash 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -4 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s39_call6.jsonl" 2>/dev/null
