#!/usr/bin/env bash
# Session 56, on an H200 (two calls that each fit the 600 s limit):
#   bash benchmarks/sessions/s56_device.sh kernels   issue 14: memcheck + racecheck over every kernel case, then the table
#                                           against FlashInfer and SDPA (carry .peers; $OUT/s56_kernels.txt)
#   bash benchmarks/sessions/s56_device.sh verify    issue 13: Qwen3-Next-80B tp 2 (does not fit an 80 GB rank), Llama-3.1-8B
#                                           at 8K under vllm 0.34.0, then verify's GPU test files ($OUT/s56_verify.txt)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
mode=${1:-kernels}
LOG=$OUT/s56_$mode.txt
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$LOG"
if [ "$mode" = kernels ]; then
  timeout 580 python3 benchmarks/kernel_device_run.py env sanitize bench >"$OUT/s56_kernel_run.txt" 2>&1
  tail -90 "$OUT/s56_kernel_run.txt" | tee -a "$LOG"
  exit 0
fi
for args in "Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2" "meta-llama/Llama-3.1-8B-Instruct -c 8192 --engine vllm==0.34.0"; do
  f=$OUT/v_$(echo "$args" | tr ' /=' '___').txt
  echo "== verify $args" | tee -a "$LOG"
  timeout 150 python3 -m kvplan verify $args >"$f" 2>&1
  echo "rc=$?" | tee -a "$LOG"
  grep -E "^Verdict|furthest|KV budget" "$f" | head -8 | tee -a "$LOG"
done
files=$(grep -l "kernel_torch\|cuda.is_available\|needs a CUDA" tests/test_verify_*.py)
timeout 280 python3 -m pytest -q -p no:cacheprovider -rfE --durations=5 $files 2>&1 | tail -20 | tee -a "$LOG"
