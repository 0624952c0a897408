#!/usr/bin/env bash
# Session 63: session 62's tree on an H200 (gated DeltaNet over two pools on the real Qwen3-Next rank, which needs an
# H200's memory), then this session's merges.
#   bash benchmarks/sessions/s63_device.sh h200     Qwen3-Next tp 2 (issue 13's list; its gated DeltaNet over two pools since
#                                          session 62) and with a float32 SSM state, then the state-step GPU tests
#   bash benchmarks/sessions/s63_device.sh h100     the decode terms on a real run (Llama-3.1-8B, Kimi-Linear tp 2 csv), then
#                                          every verify GPU test file and the state-step tests
#   bash benchmarks/sessions/s63_device.sh list     issue 13's list but Qwen3-Next tp 2 (an H200 rank) through verify as JSON
#                                          (v_NAME.json, progress in v_NAME.err), its verdict lines rendered here
#   bash benchmarks/sessions/s63_device.sh final    the session's last tree: gpt-oss-20b through verify (the weight-stream table
#                                          and its refused forms from a real run), then every verify GPU test file
#   bash benchmarks/sessions/s63_device.sh tests    every verify GPU test file and the state-step tests
set -u
session=s63 mode=${1:-h200}
source "$(dirname "$0")/../device_verify_lib.sh"
if [ "$mode" = h200 ]; then
  run_qwen3next_tp2 run
  sed -n '/^Decode step/,/^TTFT/p' "$OUT/v_qwen3next.txt" | tee -a "$LOG"
  timeout 150 python3 -m pytest -q -p no:cacheprovider -rfE $state_tests 2>&1 | tail -6 | tee -a "$LOG"
elif [ "$mode" = h100 ]; then
  run llama8b meta-llama/Llama-3.1-8B-Instruct -c 8192
  sed -n '/^Decode step/,/^TTFT/p' "$OUT/v_llama8b.txt" | tee -a "$LOG"
  timeout 80 python3 -m kvplan verify moonshotai/Kimi-Linear-48B-A3B-Instruct -c 8192 --tp 2 -f csv \
    >"$OUT/v_kimi_linear_tp2_csv.txt" 2>&1
  echo "kimi csv rc=$?" | tee -a "$LOG"; grep -E "term|decode|verdict" "$OUT/v_kimi_linear_tp2_csv.txt" | tee -a "$LOG"
  files=$(verify_gpu_test_files)
  timeout 400 python3 -m pytest -q -p no:cacheprovider -rfE $state_tests $files 2>&1 | tail -8 | tee -a "$LOG"
elif [ "$mode" = final ]; then
  run gptoss openai/gpt-oss-20b -c 8192
  sed -n '/^Weight stream by/,/^Decode step/p' "$OUT/v_gptoss.txt" | tee -a "$LOG"
  timeout 80 python3 -m kvplan verify openai/gpt-oss-20b -c 8192 -f json 2>/dev/null >"$OUT/v_gptoss.json"
  python3 -c "import json, sys; r = json.load(open(sys.argv[1])); print('forms_refused', r['gemm'].get('forms_refused'))
print('per_layer_fixed', r['decode']['per_layer_fixed_us'], r['decode']['per_layer_fixed_how'])" "$OUT/v_gptoss.json" \
    2>&1 | tee -a "$LOG"
  files=$(verify_gpu_test_files)
  timeout 400 python3 -m pytest -q -p no:cacheprovider -rfE $state_tests $files 2>&1 | tail -8 | tee -a "$LOG"
elif [ "$mode" = list ]; then
  run_issue13_list_80gb run_json
else
  files=$(verify_gpu_test_files)
  timeout 500 python3 -m pytest -q -p no:cacheprovider -rfE $state_tests $files 2>&1 | tail -8 | tee -a "$LOG"
fi
pack_runs
