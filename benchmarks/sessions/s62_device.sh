#!/usr/bin/env bash
# Session 62: session 61's last tree on the GPU (the calls it could not make), then this session's merges.
#   bash benchmarks/sessions/s62_device.sh final    gated DeltaNet's and KDA's two-tensor slots through verify, Nemotron-H, then
#                                          the GPU tests of the files session 61 touched and every verify GPU test file
#   bash benchmarks/sessions/s62_device.sh last     the session's last tree: the state-step and every verify GPU test file, then
#                                          Kimi-Linear tp 2 and Qwen3-Next tp 2 float32 (an H200 rank), Llama-3.1-8B
#   bash benchmarks/sessions/s62_device.sh list     issue 13's whole list through verify (8K, vLLM 0.32.0)
#   bash benchmarks/sessions/s62_device.sh tests    verify's GPU test files
#   bash benchmarks/sessions/s62_device.sh state    the state-step kernels' GPU tests, then Qwen3.5-9B (gated DeltaNet over two
#                                          pools), Kimi-Linear tp 2 (the KDA step kernel), Qwen3-Next tp 2 float32
#                                          state (where the rank fits), and verify's csv on Llama-3.2-1B
set -u
session=s62 mode=${1:-final}
source "$(dirname "$0")/../device_verify_lib.sh"
if [ "$mode" = final ]; then
  run qwen3next_ssm_fp32 Qwen/Qwen3-Next-80B-A3B-Thinking -c 8192 --tp 2 --mamba-ssm-cache-dtype float32
  run kimi_linear_tp2 moonshotai/Kimi-Linear-48B-A3B-Instruct -c 8192 --tp 2
  run qwen35_9b Qwen/Qwen3.5-9B -c 8192
  run nemotron_h nvidia/Nemotron-H-8B-Base-8K -c 8192
  files=$(verify_gpu_test_files)
  timeout 330 python3 -m pytest -q -p no:cacheprovider -rfE tests/test_api_verify_s61.py \
    tests/test_state_dtypes_s61.py \
    $files 2>&1 | tail -8 | tee -a "$LOG"
elif [ "$mode" = state ]; then
  timeout 150 python3 -m pytest -q -p no:cacheprovider -rfE tests/test_statestep_s62.py tests/test_deltanet_step.py \
    tests/test_mamba_step.py tests/test_verify_kda.py \
    tests/test_state_dtypes_s61.py 2>&1 | tail -12 | tee -a "$LOG"
  run qwen35_9b Qwen/Qwen3.5-9B -c 8192
  run kimi_linear_tp2 moonshotai/Kimi-Linear-48B-A3B-Instruct -c 8192 --tp 2
  run qwen3next_ssm_fp32 Qwen/Qwen3-Next-80B-A3B-Thinking -c 8192 --tp 2 --mamba-ssm-cache-dtype float32
  timeout 80 python3 -m kvplan verify meta-llama/Llama-3.2-1B-Instruct -c 8192 -f csv >"$OUT/v_llama1b_csv.txt" 2>&1
  echo "llama1b csv rc=$?" | tee -a "$LOG"; head -30 "$OUT/v_llama1b_csv.txt" | cut -c1-170 | tee -a "$LOG"
elif [ "$mode" = last ]; then
  files=$(verify_gpu_test_files)
  timeout 330 python3 -m pytest -q -p no:cacheprovider -rfE tests/test_statestep_s62.py tests/test_deltanet_step.py \
    tests/test_mamba_step.py tests/test_state_dtypes_s61.py tests/test_api_verify_s61.py $files 2>&1 | tail -8 \
    | tee -a "$LOG"
  run kimi_linear_tp2 moonshotai/Kimi-Linear-48B-A3B-Instruct -c 8192 --tp 2
  run qwen3next_ssm_fp32 Qwen/Qwen3-Next-80B-A3B-Thinking -c 8192 --tp 2 --mamba-ssm-cache-dtype float32
  run llama8b meta-llama/Llama-3.1-8B-Instruct -c 8192
elif [ "$mode" = list ]; then
  run_issue13_list
else
  files=$(verify_gpu_test_files)
  timeout 500 python3 -m pytest -q -p no:cacheprovider -rfE $files 2>&1 | tail -8 | tee -a "$LOG"
fi
pack_runs
