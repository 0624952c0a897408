# What every session's device script shares (source it after setting `session` and `mode`): the environment, a log
# under $OUT opened with the GPU and the date, `run NAME VERIFY-ARGS...` (one verify run, its output in
# $OUT/v_NAME.txt, its verdict lines in the log), `verify_gpu_test_files` (every tests/test_verify_*.py that needs
# CUDA) and `pack_runs` (the per-run outputs as one runs.tgz: the device returns only a few files a call).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
LOG=$OUT/${session}_$mode.txt
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$LOG"
date -u | tee -a "$LOG"
run() {  # name, then verify's arguments
  local name=$1; shift
  local t0=$SECONDS
  timeout 80 python3 -m kvplan verify "$@" >"$OUT/v_$name.txt" 2>&1
  echo "$name ($*) rc=$? $((SECONDS - t0)) s" | tee -a "$LOG"
  grep -E "^Verdict|^Decode graphs|^Capacity|^Budget|^Decode|^TTFT|^Weight" "$OUT/v_$name.txt" | cut -c1-170 \
    | tee -a "$LOG"
}
verify_gpu_test_files() { grep -l "kernel_torch\|cuda.is_available\|needs a CUDA" tests/test_verify_*.py; }
pack_runs() { (cd "$OUT" && tar czf runs.tgz v_*.txt && rm -f v_*.txt); }
