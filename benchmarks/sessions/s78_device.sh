#!/usr/bin/env bash
# Session 78: one H200 call. The KDA spill test that failed in session 77 (its report lost with the pytest run the box
# cut), Qwen3-Next tp 2 as issue 13 lists it on a cold machine, the four of the list session 77's call did not reach,
# then verify's GPU tests with the time left.
#   bash benchmarks/sessions/s78_device.sh [LIMIT]   (default 560; kind nvidia-h200, needs_h200)
set -u
session=s78 mode=h200
source "$(dirname "$0")/../device_verify_lib.sh"
limit=${1:-560}
python3 -m pytest -q -p no:cacheprovider -rfE tests/test_statestep_s62.py -k compiles_without_spills 2>&1 | tail -30 \
  | tee -a "$LOG"
run_json qwen3next Qwen/Qwen3-Next-80B-A3B-Thinking -c 8192 --tp 2
head -20 "$OUT/v_qwen3next.err" | tee -a "$LOG"
run_four_json
[ "$(left)" -gt 40 ] && run_verify_tests $(( $(left) - 15 ))
echo "stopped at $(date -u)" | tee -a "$LOG"
pack_runs
