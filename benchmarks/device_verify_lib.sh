# What every session's device script shares (source it after setting `session` and `mode`): the environment, a log under
# $OUT opened with the GPU and the date, `run NAME VERIFY-ARGS...` (one verify run, its output in $OUT/v_NAME.txt, its
# verdict lines in the log), `run_json NAME VERIFY-ARGS...` (the whole result as JSON, its decode table and verdicts
# rendered in the log), `run_issue13_list` (issue 13's ten deployments), `run_qwen3next_tp2 RUNNER` (Qwen3-Next tp 2 as
# listed and with a float32 SSM state), `verify_gpu_test_files` (every tests/test_verify_*.py that needs CUDA),
# `$state_tests` (the state-step GPU tests), `run_h200_list` (issue 13's whole list as JSON on an H200 rank),
# `run_four_json` (the four of the list session 77's H200 call did not reach), `run_kernel_bench` (issue 14's table;
# carry .peers), `run_verify_tests` and `pack_runs` (the per-run outputs as one runs.tgz: the device returns only a few
# files a call), `finish_call [SECONDS]` (the rest of a session call: the kernel table, verify's tests, the nine,
# packed), `left` (seconds of the script's `limit` left since it sourced this) and `test_config MODULE NAME DIR`
# (DIR/config.json from a test module's config constant).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
LOG=$OUT/${session}_$mode.txt
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$LOG"
date -u | tee -a "$LOG"
start=$SECONDS
left() { echo $((limit - (SECONDS - start))); }  # the calling script sets `limit` (seconds)
test_config() {  # module, constant, folder: the folder's config.json from tests/MODULE.py's CONSTANT
  mkdir -p "$3"
  python3 -c "import json, sys; sys.path.insert(0, 'tests'); import $1 as m; json.dump(m.$2, open('$3/config.json', 'w'))"
}
run() {  # name, then verify's arguments
  local name=$1; shift
  local t0=$SECONDS
  timeout 80 python3 -m kvplan verify "$@" >"$OUT/v_$name.txt" 2>&1
  echo "$name ($*) rc=$? $((SECONDS - t0)) s" | tee -a "$LOG"
  grep -E "^Verdict|^Decode graphs|^Capacity|^Budget|^Decode|^TTFT|^Weight" "$OUT/v_$name.txt" | cut -c1-170 \
    | tee -a "$LOG"
}
run_json() {  # name, then verify's arguments: the whole result as JSON (progress in v_NAME.err), its decode table and
  # verdicts rendered again here by the table's render path (so that later render changes can be run on it)
  local name=$1; shift
  local t0=$SECONDS
  timeout 150 python3 -m kvplan verify "$@" -f json >"$OUT/v_$name.json" 2>"$OUT/v_$name.err"
  echo "$name ($*) rc=$? $((SECONDS - t0)) s" | tee -a "$LOG"
  python3 -c "import json, sys; from kvplan.render import emit; from kvplan.commands.verify import VerifyResult
print(emit(VerifyResult(json.load(open(sys.argv[1]))), 'table'))" "$OUT/v_$name.json" 2>&1 \
    | sed -n '/^Decode step/,/^TTFT/p;/^Verdict/,$p' | tee -a "$LOG"
}
verify_gpu_test_files() { grep -l "kernel_torch\|cuda.is_available\|needs a CUDA" tests/test_verify_*.py; }
# the state-step GPU tests (gated DeltaNet, Mamba, KDA steps and their state dtypes) that session scripts run beside them
state_tests="tests/test_statestep_s62.py tests/test_deltanet_step.py tests/test_mamba_step.py tests/test_verify_kda.py
  tests/test_state_dtypes_s61.py"
pack_runs() { (cd "$OUT" && tar czf runs.tgz v_* && rm -f v_*); }
run_issue13_list() {  # issue 13's list at 8K (vLLM 0.32.0's rules by default), one simulated rank at tp 2
  run_issue13_list_80gb run
  run qwen3next Qwen/Qwen3-Next-80B-A3B-Thinking -c 8192 --tp 2
}
run_qwen3next_tp2() {  # Qwen3-Next tp 2 (an H200 rank) as issue 13's list has it and with a float32 SSM state, through
  # RUNNER (run|run_json)
  $1 qwen3next Qwen/Qwen3-Next-80B-A3B-Thinking -c 8192 --tp 2
  $1 qwen3next_ssm_fp32 Qwen/Qwen3-Next-80B-A3B-Thinking -c 8192 --tp 2 --mamba-ssm-cache-dtype float32
}
run_issue13_list_80gb() {  # the nine of the list an 80 GB rank holds (not Qwen3-Next tp 2), through RUNNER (run|run_json)
  local runner=$1
  $runner llama8b meta-llama/Llama-3.1-8B-Instruct -c 8192
  $runner llama8b_32k_fp8 meta-llama/Llama-3.1-8B-Instruct -c 32768 --kv-dtype fp8
  $runner qwen3_14b Qwen/Qwen3-14B -c 8192
  $runner gemma27b google/gemma-3-27b-it -c 8192
  $runner gptoss openai/gpt-oss-20b -c 8192
  $runner v2lite deepseek-ai/DeepSeek-V2-Lite -c 8192
  $runner mixtral_tp2 mistralai/Mixtral-8x7B-v0.1 -c 8192 --tp 2
  $runner llama70b_tp2 meta-llama/Llama-3.1-70B-Instruct -c 8192 --tp 2
  $runner llama1b meta-llama/Llama-3.2-1B-Instruct -c 8192
}
run_four_json() {  # the four of issue 13's list session 77's H200 call did not reach, as JSON (run_json)
  run_json v2lite deepseek-ai/DeepSeek-V2-Lite -c 8192
  run_json mixtral_tp2 mistralai/Mixtral-8x7B-v0.1 -c 8192 --tp 2
  run_json llama70b_tp2 meta-llama/Llama-3.1-70B-Instruct -c 8192 --tp 2
  run_json llama1b meta-llama/Llama-3.2-1B-Instruct -c 8192
}
run_h200_list() {  # issue 13's whole list on an H200 rank as JSON: Qwen3-Next tp 2 first (as listed, then with a float32
  # SSM state), then the nine an 80 GB rank holds
  run_qwen3next_tp2 run_json
  run_issue13_list_80gb run_json
}
run_kernel_bench() {  # issue 14's kernel table against FlashInfer and SDPA (.peers carried)
  timeout "${BENCH_LIMIT:-580}" python3 benchmarks/kernel_device_run.py env bench >"$OUT/v_kernel_run.txt" 2>&1
  tail -80 "$OUT/v_kernel_run.txt" | tee -a "$LOG"
}
run_verify_tests() {  # every verify GPU test file and the state-step tests, within SECONDS (default 500)
  local files; files=$(verify_gpu_test_files)
  # the whole output kept (packed with the runs): a box that cuts pytest before its summary loses no failure's name
  timeout "${1:-500}" python3 -m pytest -q -p no:cacheprovider -rfE $state_tests $files >"$OUT/v_verify_tests.txt" 2>&1
  grep -E "^(FAILED|ERROR) |_{5,} .* _{5,}|Error|assert" "$OUT/v_verify_tests.txt" | head -40 | tee -a "$LOG"
  tail -8 "$OUT/v_verify_tests.txt" | tee -a "$LOG"
}
kernel_gpu_test_files() {  # every GPU test file that is not verify's or a state step's (kernels and forward parts;
  # not CI's compile test)
  grep -l 'needs a CUDA\|no CUDA device\|needs an sm_90\|cuda.is_available\|kernel_torch\|device="cuda"' tests/test_*.py \
    | grep -v -e "test_verify_" -e "_s6[0-9]\.py" -e test_kernel_compile.py \
      $(for f in $state_tests; do printf -- "-e %s " "$f"; done)
}
run_kernel_tests() {  # kernel_gpu_test_files within SECONDS (default 400), on four pytest-xdist workers where the
  # machine has xdist (the kernels' compiles are CPU-bound; verify's files stay serial, their pools fill the GPU)
  local workers=""; python3 -c "import xdist" 2>/dev/null && workers="-n 4 --dist loadfile"
  timeout "${1:-400}" python3 -m pytest -q -p no:cacheprovider -rfE $workers $(kernel_gpu_test_files) 2>&1 \
    | tail -8 | tee -a "$LOG"
}
finish_call() {  # the rest of a call after its first runs: on an H200 issue 14's table (carry .peers), then verify's
  # tests; on an H100 verify's tests (within SECONDS, default 180), then the table; then the nine of issue 13's list
  # an 80 GB rank holds with the time left, and the per-run outputs packed
  if [ "$mode" = h200 ]; then
    [ -d .peers ] && BENCH_LIMIT=200 run_kernel_bench
    run_verify_tests $(( $(left) > 240 ? 200 : $(left) / 2 ))
  else
    run_verify_tests "${1:-180}"
    [ -d .peers ] && BENCH_LIMIT=$(( $(left) > 300 ? 180 : $(left) / 2 )) run_kernel_bench
  fi
  export -f run_json run_issue13_list_80gb
  export LOG OUT
  [ "$(left)" -gt 30 ] && timeout "$(left)" bash -c 'run_issue13_list_80gb run_json'
  echo "stopped at $(date -u)" | tee -a "$LOG"
  pack_runs
}
