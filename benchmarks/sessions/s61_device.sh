#!/usr/bin/env bash
# Session 61: issue 13's list and verify's GPU tests on the tree of session 60 (and 61's merges).
#   bash benchmarks/sessions/s61_device.sh verify   four of issue 13's models through verify (8K, vLLM 0.32.0) + verify's GPU tests
#   bash benchmarks/sessions/s61_device.sh list     issue 13's whole list through verify (after the session's merges)
#   bash benchmarks/sessions/s61_device.sh tests    verify's GPU test files
#   bash benchmarks/sessions/s61_device.sh final    the session's last tree: gated DeltaNet's two-dtype slots through verify, then the
#                                          GPU tests of the files the session touched
#   bash benchmarks/sessions/s61_device.sh mamba    Nemotron-H with its float32 SSM state in two-dtype slots, the Mamba GPU tests,
#                                          the list's three runs whose files did not come back in call 1
set -u
session=s61 mode=${1:-verify}
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
elif [ "$mode" = mamba ]; then
  run nemotron_h nvidia/Nemotron-H-8B-Base-8K -c 8192
  run qwen3_14b Qwen/Qwen3-14B -c 8192
  run v2lite deepseek-ai/DeepSeek-V2-Lite -c 8192
  run qwen3next Qwen/Qwen3-Next-80B-A3B-Thinking -c 8192 --tp 2
  run nemotron_h_ssm_bf16 nvidia/Nemotron-H-8B-Base-8K -c 8192 --mamba-ssm-cache-dtype bfloat16
  run llama8b_eager meta-llama/Llama-3.1-8B-Instruct -c 8192 --enforce-eager
  timeout 400 python3 -m pytest -q -p no:cacheprovider -rfE tests/test_state_dtypes_s61.py tests/test_mamba_step.py \
    tests/test_verify_engine_flags.py tests/test_verify_gpu.py 2>&1 | tail -8 | tee -a "$LOG"
elif [ "$mode" = final ]; then  # little device time left: the GDN two-tensor run and the tests the session touched
  run qwen3next_ssm_fp32 Qwen/Qwen3-Next-80B-A3B-Thinking -c 8192 --tp 2 --mamba-ssm-cache-dtype float32
  timeout 200 python3 -m pytest -q -p no:cacheprovider -rfE tests/test_api_verify_s61.py tests/test_state_dtypes_s61.py \
    tests/test_verify_engine_flags.py tests/test_verify_gpu.py 2>&1 | tail -8 | tee -a "$LOG"
else
  files=$(verify_gpu_test_files)
  timeout 500 python3 -m pytest -q -p no:cacheprovider -rfE $files 2>&1 | tail -8 | tee -a "$LOG"
fi
(cd "$OUT" && tar czf runs.tgz v_*.txt && rm -f v_*.txt)  # one file back: the device returns a few
