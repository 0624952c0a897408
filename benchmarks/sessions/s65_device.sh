#!/usr/bin/env bash
# SESSION=sNN names the log and the raw-output folder of a later session that reuses this script.
# Session 65.
#   bash benchmarks/sessions/s65_device.sh h200     issue 13's whole list on an H200 rank as JSON (Qwen3-Next tp 2 first, as
#                                          listed and with a float32 SSM state, then the nine)
#   bash benchmarks/sessions/s65_device.sh bench    issue 14's kernel table against FlashInfer and SDPA (carry .peers)
#   bash benchmarks/sessions/s65_device.sh skinny   the skinny GEMM's GPU tests by expert and in pair slots, the MoE one-token and
#                                          mxfp4 tests (skinny_gemm.cu's by-expert kernels now sit behind an #if)
#   bash benchmarks/sessions/s65_device.sh tests    every verify GPU test file and the state-step tests
#   bash benchmarks/sessions/s65_device.sh public   verify at the batch and length of public vLLM decode measurements
#                                          (decode-measurements.yaml D01/D04, D08/D11, D10/D13, D09/D12)
#   bash benchmarks/sessions/s65_device.sh list80   the nine of issue 13's list an 80 GB rank holds (all but Qwen3-Next tp 2)
#   bash benchmarks/sessions/s65_device.sh kernels  every other GPU test file (the kernels and forward parts), four workers
set -u
session=${SESSION:-s65} mode=${1:-h200}
source "$(dirname "$0")/../device_verify_lib.sh"
if [ "$mode" = h200 ]; then
  run_h200_list
elif [ "$mode" = bench ]; then
  run_kernel_bench
elif [ "$mode" = skinny ]; then
  timeout "${2:-400}" python3 -m pytest -q -p no:cacheprovider -rfE tests/test_moe_one_token_gpu.py \
    tests/test_mxfp4_gpu.py tests/test_skinny_gpu.py -k "by_expert or row_tiles or pairs or moe" 2>&1 | tail -5 \
    | tee -a "$LOG"
elif [ "$mode" = public ]; then  # verify's forward at public measurements' own batch and length (cases D01-D13)
  run_json qwen3_8b_d01 Qwen/Qwen3-8B -c 512 --max-num-seqs 8
  run_json llama3_8b_d11 meta-llama/Meta-Llama-3-8B -c 160 --max-num-seqs 8
  run_json mixtral_tp2_d13 mistralai/Mixtral-8x7B-v0.1 -c 160 --tp 2 --max-num-seqs 8
  run_json llama3_70b_tp4_d12 meta-llama/Meta-Llama-3-70B -c 160 --tp 4 --max-num-seqs 8
elif [ "$mode" = list80 ]; then  # the nine of issue 13's list an 80 GB rank holds, as JSON
  run_issue13_list_80gb run_json
elif [ "$mode" = kernels ]; then
  run_kernel_tests "${2:-400}"
else
  run_verify_tests "${2:-500}"
fi
pack_runs
