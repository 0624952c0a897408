#!/usr/bin/env bash
# Session 54: every test file with GPU tests (kernels, verify's forward passes, verify --engine) on the merged tree
# of the session (runner buffers at the served KV dtype, the media floor in verify's settings), then verify on
# Llama-3.1-8B-Instruct at 8K under 0.34 as the control. The whole list ran past 420 s on an H200 (76% of 1,698
# tests), so it runs in two calls: bash benchmarks/sessions/s54_device.sh kernels, then bash benchmarks/sessions/s54_device.sh verify
# (writes $OUT/s54_gpu.txt)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
LOG=$OUT/s54_gpu.txt
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$LOG"
files=$(grep -l "kernel_torch\|cuda.is_available\|needs a CUDA" tests/test_*.py | grep -v test_kernel_compile)
case "${1:-kernels}" in
  kernels) files=$(echo "$files" | grep -v test_verify_) ;;
  verify) files=$(echo "$files" | grep test_verify_) ;;
esac
timeout 420 python3 -m pytest -q -p no:cacheprovider -rfE $files 2>&1 | tail -15 | tee -a "$LOG"
echo "== verify Llama-3.1-8B-Instruct -c 8192 --engine vllm==0.34.0" | tee -a "$LOG"
timeout 60 python3 -m kvplan verify meta-llama/Llama-3.1-8B-Instruct -c 8192 --engine vllm==0.34.0 \
  >"$OUT/s54_verify_llama8b_034.txt" 2>&1
echo "rc=$?" | tee -a "$LOG"
grep -E "KV budget|verdict|Decode|capacity" "$OUT/s54_verify_llama8b_034.txt" | head -8 | tee -a "$LOG"
