#!/usr/bin/env bash
# Session 45, call 10: GEMV launches spread to their intended CTAs an SM by default (KVPLAN_GV_SPREAD=0 the old
# way): verify's decode step (forward_profile.py, b1 8K) both ways for Qwen3-14B and Llama-3.1-8B; the GEMV and
# verify GPU tests on the default.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s45_call10_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
for m in Qwen/Qwen3-14B meta-llama/Llama-3.1-8B-Instruct; do
  for spread in 1 0; do
    KVPLAN_GV_SPREAD=$spread timeout 100 python3 benchmarks/forward_profile.py $m --batch 1 --context 8192 --top 2 \
      2>&1 | grep "graph step" | sed "s/^/spread=$spread /" | tee -a "$LOG"
  done
done
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py tests/test_gemv_stream_gpu.py -x \
  -k "not every_batch_twice" 2>&1 | tail -2 | tee -a "$LOG"
