#!/usr/bin/env bash
# Session 77: the second H200 call. The KDA spill test that failed in the first call (its report lost with the
# pytest run the box cut), then Qwen3-Next tp 2 as issue 13 lists it, cold (the first call's run spent 50 s compiling
# its kernels outside any progress step and met the script's 80 s box), then verify's GPU tests with the time left.
#   bash benchmarks/sessions/s77_h200_rerun.sh [LIMIT]
set -u
session=s77 mode=h200b
source "$(dirname "$0")/../device_verify_lib.sh"
limit=${1:-380}
python3 -m pytest -q -p no:cacheprovider -rfE tests/test_statestep_s62.py -k compiles_without_spills 2>&1 | tail -30 \
  | tee -a "$LOG"
run_json qwen3next Qwen/Qwen3-Next-80B-A3B-Thinking -c 8192 --tp 2
head -20 "$OUT/v_qwen3next.err" | tee -a "$LOG"
[ "$(left)" -gt 40 ] && run_verify_tests $(( $(left) - 15 ))
echo "stopped at $(date -u)" | tee -a "$LOG"
pack_runs
