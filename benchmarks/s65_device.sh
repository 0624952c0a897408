#!/usr/bin/env bash
# Session 65.
#   bash benchmarks/s65_device.sh h200     issue 13's whole list on an H200 rank as JSON (Qwen3-Next tp 2 first, as
#                                          listed and with a float32 SSM state, then the nine)
#   bash benchmarks/s65_device.sh bench    issue 14's kernel table against FlashInfer and SDPA (carry .peers)
#   bash benchmarks/s65_device.sh router   the router's matmul inside the router kernel: its GPU tests, the router and
#                                          MoE tests, then gpt-oss-20b, DeepSeek-V2-Lite and Mixtral tp 2 through verify
#                                          with the router apart (benchmarks/router_fused_ab.py) and fused, as JSON;
#                                          `router all`: then every verify GPU test file
#   bash benchmarks/s65_device.sh tests    every verify GPU test file and the state-step tests
set -u
session=s65 mode=${1:-h200}
source "$(dirname "$0")/device_verify_lib.sh"
if [ "$mode" = h200 ]; then
  run_qwen3next_tp2 run_json
  run_issue13_list_80gb run_json
elif [ "$mode" = bench ]; then
  timeout 580 python3 benchmarks/kernel_device_run.py env bench >"$OUT/v_kernel_run.txt" 2>&1
  tail -80 "$OUT/v_kernel_run.txt" | tee -a "$LOG"
elif [ "$mode" = router ]; then
  timeout 200 python3 -m pytest -q -p no:cacheprovider -rfE tests/test_router_fused_s65.py tests/test_router.py \
    tests/test_moe_one_token_gpu.py tests/test_mxfp4_gpu.py 2>&1 | tail -5 | tee -a "$LOG"
  apart() { local name=$1; shift; timeout 80 python3 benchmarks/router_fused_ab.py verify "$@" -f json \
    >"$OUT/v_$name.json" 2>"$OUT/v_$name.err"; echo "$name rc=$?" | tee -a "$LOG"; }
  for m in "gptoss openai/gpt-oss-20b" "v2lite deepseek-ai/DeepSeek-V2-Lite" \
           "mixtral_tp2 mistralai/Mixtral-8x7B-v0.1 --tp 2"; do
    set -- $m; name=$1; shift
    apart ${name}_apart "$@" -c 8192
    run_json ${name} "$@" -c 8192
  done
  python3 benchmarks/router_fused_summary.py "$OUT"/v_*.json 2>&1 | tee -a "$LOG"
  for how in apart fused; do
    pre=""; [ $how = apart ] && pre=benchmarks/router_fused_ab.py
    timeout 100 python3 $pre benchmarks/forward_profile.py openai/gpt-oss-20b --batch 1 --context 2048 --top 14 \
      >"$OUT/v_profile_gptoss_b1_$how.txt" 2>&1; echo "== $how"; tail -17 "$OUT/v_profile_gptoss_b1_$how.txt" | tee -a "$LOG"
  done
  if [ "${2:-}" = all ]; then
    files=$(verify_gpu_test_files)
    timeout 280 python3 -m pytest -q -p no:cacheprovider -rfE $files 2>&1 | tail -6 | tee -a "$LOG"
  fi
else
  files=$(verify_gpu_test_files)
  timeout 500 python3 -m pytest -q -p no:cacheprovider -rfE $state_tests $files 2>&1 | tail -8 | tee -a "$LOG"
fi
pack_runs
