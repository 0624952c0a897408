#!/usr/bin/env bash
# Session 59: the tree of sessions 57-58 (vLLM 0.15.x rules, remedies, runner key, fuzz fixes) on a GPU.
#   bash benchmarks/sessions/s59_device.sh verify   issue 13's models through verify (8K; vLLM 0.32.0 unless said) + kernel tests
#   bash benchmarks/sessions/s59_device.sh tests    verify's GPU test files
set -u
session=s59 mode=${1:-verify}
source "$(dirname "$0")/../device_verify_lib.sh"  # the environment, the log, run()
if [ "$mode" = verify ]; then
  run llama8b meta-llama/Llama-3.1-8B-Instruct -c 8192
  run llama8b_034 meta-llama/Llama-3.1-8B-Instruct -c 8192 --engine vllm==0.34.0
  run llama8b_0151 meta-llama/Llama-3.1-8B-Instruct -c 8192 --engine vllm==0.15.1
  run gptoss openai/gpt-oss-20b -c 8192
  run v2lite deepseek-ai/DeepSeek-V2-Lite -c 8192
  run llama1b meta-llama/Llama-3.2-1B-Instruct -c 8192
  run qwen3next Qwen/Qwen3-Next-80B-A3B-Thinking -c 8192 --tp 2
  timeout 150 python3 -m pytest -q -p no:cacheprovider -rfE tests/test_kernel_gpu.py tests/test_kernel_mla_gpu.py \
    2>&1 | tail -4 | tee -a "$LOG"
else
  files=$(verify_gpu_test_files)
  timeout 500 python3 -m pytest -q -p no:cacheprovider -rfE $files 2>&1 | tail -8 | tee -a "$LOG"
fi
