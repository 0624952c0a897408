#!/usr/bin/env bash
# Session 56, last call: the final tree's verify (TTFT prompt one token short of the context under vLLM 0.34.0, as
# that release admits) on Llama-3.1-8B, then verify's GPU test files ($OUT/s56_final.txt).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
LOG=$OUT/s56_final.txt
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$LOG"
timeout 90 python3 -m kvplan verify meta-llama/Llama-3.1-8B-Instruct -c 8192 --engine vllm==0.34.0 \
  >"$OUT/v_llama8b_034_final.txt" 2>&1
echo "rc=$?" | tee -a "$LOG"
grep -E "^TTFT|^Verdict" "$OUT/v_llama8b_034_final.txt" | cut -c1-160 | tee -a "$LOG"
files=$(grep -l "kernel_torch\|cuda.is_available\|needs a CUDA" tests/test_verify_*.py)
timeout 330 python3 -m pytest -q -p no:cacheprovider -rfE $files 2>&1 | tail -6 | tee -a "$LOG"
