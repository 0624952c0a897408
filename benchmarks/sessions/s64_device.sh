#!/usr/bin/env bash
# Session 64.
#   bash benchmarks/sessions/s64_device.sh h200     issue 13's whole list on an H200 rank as JSON (Qwen3-Next tp 2 first, with
#                                          session 62's two-pool gated DeltaNet, then with a float32 SSM state, then
#                                          the nine), its decode tables and verdicts rendered in the log
#   bash benchmarks/sessions/s64_device.sh bench    issue 14's kernel table against FlashInfer and SDPA (carry .peers)
#   bash benchmarks/sessions/s64_device.sh ktail    the row-owned GEMV with k past its last box of four steps (gpt-oss's 2,880):
#                                          its GPU tests, memcheck and racecheck; gpt-oss-20b through verify; where
#                                          gpt-oss's step at 295 sequences and DeepSeek-V2-Lite's at 174 go, kernel by
#                                          kernel (benchmarks/forward_profile.py)
#   bash benchmarks/sessions/s64_device.sh profile  gpt-oss-20b's step at 295 sequences kernel by kernel (2K context: at 8K every
#                                          layer's own pool does not fit 80 GB), and at 64
#   bash benchmarks/sessions/s64_device.sh mx       mxfp4 experts through the row-tile by-expert kernel: the MoE GPU tests, gpt-oss-20b's
#                                          experts by tokens (row tiles, k split, dequantised + grouped GEMMs), then
#                                          gpt-oss-20b through verify and its step at 295 sequences kernel by kernel
#   bash benchmarks/sessions/s64_device.sh final    the session's last tree: the review's new GPU cases (gpt-oss's qkv past k in
#                                          groups of two slices, mxfp4 row tiles joined / large scales), memcheck and
#                                          racecheck of the row-owned GEMV, the mxfp4 threshold tests, every verify GPU
#                                          test file and the state-step tests, then gpt-oss-20b and DeepSeek-V2-Lite
#                                          (its 2048 x 10944 down past k) through verify as JSON
#   bash benchmarks/sessions/s64_device.sh tests    every verify GPU test file and the state-step tests
set -u
session=s64 mode=${1:-h200}
source "$(dirname "$0")/../device_verify_lib.sh"
if [ "$mode" = h200 ]; then
  run_h200_list
elif [ "$mode" = bench ]; then
  run_kernel_bench
elif [ "$mode" = ktail ]; then
  timeout 200 python3 -m pytest -q -p no:cacheprovider -rfE tests/test_gemv_stream_gpu.py 2>&1 | tail -4 | tee -a "$LOG"
  san="compute-sanitizer --report-api-errors no --error-exitcode 1"
  for tool in memcheck racecheck; do
    timeout 100 $san --tool $tool python3 benchmarks/gemv_racecheck.py own=1 2>&1 | tail -3 | tee -a "$LOG"
  done
  run_json gptoss openai/gpt-oss-20b -c 8192
  python3 -c "import json, sys; from kvplan.render import emit; from kvplan.commands.verify import VerifyResult
print(emit(VerifyResult(json.load(open(sys.argv[1]))), 'table'))" "$OUT/v_gptoss.json" 2>&1 \
    | sed -n '/^Weight stream by/,/^Decode step/p' | tee -a "$LOG"
  timeout 150 python3 benchmarks/forward_profile.py openai/gpt-oss-20b --batch 295 --context 8192 --top 20 \
    >"$OUT/v_profile_gptoss.txt" 2>&1; tail -30 "$OUT/v_profile_gptoss.txt" | tee -a "$LOG"
  timeout 120 python3 benchmarks/forward_profile.py deepseek-ai/DeepSeek-V2-Lite --batch 174 --context 8192 --top 20 \
    >"$OUT/v_profile_v2lite.txt" 2>&1; tail -30 "$OUT/v_profile_v2lite.txt" | tee -a "$LOG"
elif [ "$mode" = profile ]; then
  for b in 295 64; do
    timeout 200 python3 benchmarks/forward_profile.py openai/gpt-oss-20b --batch $b --context 2048 --top 24 \
      >"$OUT/v_profile_gptoss_b$b.txt" 2>&1; tail -27 "$OUT/v_profile_gptoss_b$b.txt" | tee -a "$LOG"
  done
elif [ "$mode" = mx ]; then
  timeout 280 python3 -m pytest -q -p no:cacheprovider -rfE tests/test_skinny_gpu.py -k "by_expert or row_tiles" 2>&1 \
    | tail -4 | tee -a "$LOG"
  timeout 150 python3 benchmarks/skinny_gemm.py --moe-large --dequant 2>&1 | tail -12 | tee -a "$LOG"
  if which ncu >/dev/null; then
    timeout 120 ncu --kernel-name kvp_skinny_mxfp4_er --launch-count 1 --section SpeedOfLight --section Occupancy \
      --section WarpStateStats --section MemoryWorkloadAnalysis python3 benchmarks/skinny_gemm.py --moe-large \
      --sizes 295 >"$OUT/v_ncu_mx.txt" 2>&1; grep -v "^==PROF==" "$OUT/v_ncu_mx.txt" | tail -90 | tee -a "$LOG"
  else echo "no ncu" | tee -a "$LOG"; fi
  if [ "${2:-}" = verify ]; then
    run_json gptoss openai/gpt-oss-20b -c 8192
    timeout 100 python3 benchmarks/forward_profile.py openai/gpt-oss-20b --batch 295 --context 2048 --top 12 \
      >"$OUT/v_profile_gptoss_b295.txt" 2>&1; tail -15 "$OUT/v_profile_gptoss_b295.txt" | tee -a "$LOG"
  fi
elif [ "$mode" = final ]; then
  timeout 150 python3 -m pytest -q -p no:cacheprovider -rfE tests/test_gemv_stream_gpu.py tests/test_skinny_gpu.py \
    -k "5120 or mxfp4_row_tiles" 2>&1 | tail -4 | tee -a "$LOG"
  timeout 100 python3 -m pytest -q -p no:cacheprovider -rfE tests/test_mxfp4_gpu.py 2>&1 | tail -4 | tee -a "$LOG"
  san="compute-sanitizer --report-api-errors no --error-exitcode 1"
  for tool in memcheck racecheck; do
    timeout 60 $san --tool $tool python3 benchmarks/gemv_racecheck.py own=1 ctas_per_sm=2 2>&1 | tail -2 | tee -a "$LOG"
  done
  files=$(verify_gpu_test_files)
  timeout 240 python3 -m pytest -q -p no:cacheprovider -rfE $state_tests $files 2>&1 | tail -6 | tee -a "$LOG"
  run_json gptoss openai/gpt-oss-20b -c 8192
  run_json v2lite deepseek-ai/DeepSeek-V2-Lite -c 8192
else
  run_verify_tests 500
fi
pack_runs
