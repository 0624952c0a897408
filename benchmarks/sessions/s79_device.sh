#!/usr/bin/env bash
# Session 79: one device call with whichever GPU comes, within LIMIT seconds (default 560). Session 78's queue (no GPU
# was lent then): the KDA spill test that failed in session 77, then
#   h200: Qwen3-Next tp 2 as issue 13 lists it on a cold machine, verify's GPU tests, issue 14's table (carry .peers),
#         the four of the list session 77's H200 call did not reach;
#   h100: verify's GPU tests first (sessions 78-79 changed verify's flags and plan steps), issue 14's table, the four.
#   bash benchmarks/sessions/s79_device.sh h200|h100 [LIMIT]
set -u
session=s79 mode=${1:-h200}
source "$(dirname "$0")/../device_verify_lib.sh"
limit=${2:-560}
python3 -m pytest -q -p no:cacheprovider -rfE tests/test_statestep_s62.py -k compiles_without_spills 2>&1 | tail -30 \
  | tee -a "$LOG"
if [ "$mode" = h200 ]; then
  run_json qwen3next Qwen/Qwen3-Next-80B-A3B-Thinking -c 8192 --tp 2
  head -20 "$OUT/v_qwen3next.err" | tee -a "$LOG"
  run_verify_tests 210  # after the H100 call: the graph decision by engine (V0 / V1) moved into verify's plan
  [ -d .peers ] && BENCH_LIMIT=100 run_kernel_bench
  run_four_json
else
  run_verify_tests 200
  [ -d .peers ] && BENCH_LIMIT=120 run_kernel_bench
  run_four_json
fi
echo "stopped at $(date -u)" | tee -a "$LOG"
pack_runs
