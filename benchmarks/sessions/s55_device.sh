#!/usr/bin/env bash
# Session 55: every test file with GPU tests on the final tree, in two calls that each fit the 600 s limit
# (session 54's one call of 1,698 tests stopped at 76% after 420 s):
#   bash benchmarks/sessions/s55_device.sh kernels   kernel and forward-part test files ($OUT/s55_kernels.txt)
#   bash benchmarks/sessions/s55_device.sh verify    verify's test files, verify on Llama-3.1-8B-Instruct at 8K under
#                                           vllm 0.34.0, then the small-inter MoE probe ($OUT/s55_verify.txt)
#   bash benchmarks/sessions/s55_device.sh bench     issue 14's kernel table against FlashInfer and SDPA (carry .peers:
#                                           the FlashInfer wheels of ../shared/peers; $OUT/s55_bench.txt), for a GPU
#                                           not measured before (an H100)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
mode=${1:-kernels}
LOG=$OUT/s55_$mode.txt
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$LOG"
files=$(grep -l "kernel_torch\|cuda.is_available\|needs a CUDA" tests/test_*.py | grep -v test_kernel_compile)
if [ "$mode" = bench ]; then
  timeout 575 python3 benchmarks/kernel_device_run.py env bench >"$OUT/s55_bench_run.txt" 2>&1
  tail -70 "$OUT/s55_bench_run.txt" | tee -a "$LOG"
  exit 0
fi
if [ "$mode" = kernels ]; then
  timeout 560 python3 -m pytest -q -p no:cacheprovider -rfE --durations=8 $(echo "$files" | grep -v test_verify_) \
    2>&1 | tail -25 | tee -a "$LOG"
  exit 0
fi
timeout 330 python3 -m pytest -q -p no:cacheprovider -rfE --durations=5 $(echo "$files" | grep test_verify_) \
  2>&1 | tail -20 | tee -a "$LOG"
echo "== verify Llama-3.1-8B-Instruct -c 8192 --engine vllm==0.34.0" | tee -a "$LOG"
timeout 70 python3 -m kvplan verify meta-llama/Llama-3.1-8B-Instruct -c 8192 --engine vllm==0.34.0 \
  >"$OUT/s55_verify_llama8b_034.txt" 2>&1
echo "rc=$?" | tee -a "$LOG"
grep -E "KV budget|Verdict|verdict|capacity" "$OUT/s55_verify_llama8b_034.txt" | head -8 | tee -a "$LOG"
echo "== small-inter MoE probe" | tee -a "$LOG"
timeout 120 python3 benchmarks/probes/s51_moe_small_inter_probe.py 2>&1 | tail -30 | tee -a "$LOG"
