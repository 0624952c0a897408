#!/usr/bin/env bash
# Session 58, one call: the merged tree (vLLM 0.15.x rules, release ranges in remedies, the runner key, the fuzz
# fixes) through verify on five of issue 13's models at 8K (vLLM 0.32.0 rules; Llama-3.1-8B also under 0.34.0 and
# 0.15.1), then verify's and the kernels' GPU test files ($OUT/s58.txt).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
LOG=$OUT/s58.txt
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$LOG"
run() {  # name, then verify's arguments
  local name=$1; shift
  timeout 80 python3 -m kvplan verify "$@" >"$OUT/v_$name.txt" 2>&1
  echo "$name ($*) rc=$?" | tee -a "$LOG"
  grep -E "^Verdict|^Capacity|^Budget|^Decode|^TTFT|^Weight" "$OUT/v_$name.txt" | cut -c1-170 | tee -a "$LOG"
}
run llama8b meta-llama/Llama-3.1-8B-Instruct -c 8192
run llama8b_034 meta-llama/Llama-3.1-8B-Instruct -c 8192 --engine vllm==0.34.0
run llama8b_0151 meta-llama/Llama-3.1-8B-Instruct -c 8192 --engine vllm==0.15.1
run gptoss openai/gpt-oss-20b -c 8192
run v2lite deepseek-ai/DeepSeek-V2-Lite -c 8192
run llama1b meta-llama/Llama-3.2-1B-Instruct -c 8192
run qwen3next Qwen/Qwen3-Next-80B-A3B-Thinking -c 8192 --tp 2
files=$(grep -l "kernel_torch\|cuda.is_available\|needs a CUDA" tests/test_verify_*.py)
timeout 240 python3 -m pytest -q -p no:cacheprovider -rfE -x $files 2>&1 | tail -6 | tee -a "$LOG"
timeout 100 python3 -m pytest -q -p no:cacheprovider -rfE tests/test_kernel_gpu.py tests/test_kernel_mla_gpu.py \
  2>&1 | tail -4 | tee -a "$LOG"
