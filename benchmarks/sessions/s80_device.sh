#!/usr/bin/env bash
# Session 80: one device call within LIMIT seconds (default 560). Session 79's H200 queue, reordered so that issue 14's
# table comes before verify's tests (the tests passed on an H100 in session 79; the table has not run on an H200 since
# session 77):
#   h200: Qwen3-Next tp 2 as issue 13 lists it (bf16 state, never measured), issue 14's table (carry .peers), the four of
#         the list session 77's H200 call did not reach, then verify's GPU tests with the time left;
#   h100: issue 14's table, the four, verify's GPU tests with the time left.
#   bash benchmarks/sessions/s80_device.sh h200|h100 [LIMIT]
set -u
session=s80 mode=${1:-h200}
source "$(dirname "$0")/../device_verify_lib.sh"
limit=${2:-560}
if [ "$mode" = h200 ]; then
  run_json qwen3next Qwen/Qwen3-Next-80B-A3B-Thinking -c 8192 --tp 2
  head -20 "$OUT/v_qwen3next.err" | tee -a "$LOG"
fi
[ -d .peers ] && BENCH_LIMIT=130 run_kernel_bench
run_four_json
[ "$(left)" -gt 40 ] && run_verify_tests $(( $(left) - 15 ))
echo "stopped at $(date -u)" | tee -a "$LOG"
pack_runs
