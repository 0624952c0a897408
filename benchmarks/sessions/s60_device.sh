#!/usr/bin/env bash
# Session 60: verify with the graphs beside vLLM's own estimator; the tree of session 59 and 60 on a GPU.
#   bash benchmarks/sessions/s60_device.sh verify   four of issue 13's models through verify (8K, vLLM 0.32.0) + verify's GPU tests
#   bash benchmarks/sessions/s60_device.sh list     issue 13's whole list through verify (after the session's merges)
#   bash benchmarks/sessions/s60_device.sh tests    verify's GPU test files
set -u
session=s60 mode=${1:-verify}
source "$(dirname "$0")/../device_verify_lib.sh"  # the environment, the log, run()
if [ "$mode" = verify ]; then
  run llama8b meta-llama/Llama-3.1-8B-Instruct -c 8192
  run gptoss openai/gpt-oss-20b -c 8192
  run v2lite deepseek-ai/DeepSeek-V2-Lite -c 8192
  run llama1b meta-llama/Llama-3.2-1B-Instruct -c 8192
  files=$(verify_gpu_test_files)
  timeout 300 python3 -m pytest -q -p no:cacheprovider -rfE $files 2>&1 | tail -8 | tee -a "$LOG"
elif [ "$mode" = list ]; then  # issue 13's whole list, after the session's merges
  run llama8b meta-llama/Llama-3.1-8B-Instruct -c 8192
  run llama8b_32k_fp8 meta-llama/Llama-3.1-8B-Instruct -c 32768 --kv-dtype fp8
  run qwen3_14b Qwen/Qwen3-14B -c 8192
  run gemma27b google/gemma-3-27b-it -c 8192
  run gptoss openai/gpt-oss-20b -c 8192
  run v2lite deepseek-ai/DeepSeek-V2-Lite -c 8192
  run mixtral_tp2 mistralai/Mixtral-8x7B-v0.1 -c 8192 --tp 2
  run llama70b_tp2 meta-llama/Llama-3.1-70B-Instruct -c 8192 --tp 2
  run qwen3next Qwen/Qwen3-Next-80B-A3B-Thinking -c 8192 --tp 2
  run llama1b meta-llama/Llama-3.2-1B-Instruct -c 8192
else
  files=$(verify_gpu_test_files)
  timeout 500 python3 -m pytest -q -p no:cacheprovider -rfE $files 2>&1 | tail -8 | tee -a "$LOG"
fi
