#!/usr/bin/env bash
# Session 76: what one device call does with whichever GPU comes, within LIMIT seconds (default 560).
#   bash benchmarks/s76_device.sh h200 [LIMIT]   Qwen3-Next tp 2 through verify as JSON (as listed and with a float32
#                                                SSM state: the plans of issue 13 an 80 GB rank cannot hold), issue 14's
#                                                kernel table (carry .peers), verify's GPU tests, then the nine of the
#                                                list with the time left
#   bash benchmarks/s76_device.sh h100 [LIMIT]   verify's GPU tests (session 75's merges touched engine rules and the
#                                                speed model), issue 14's table (carry .peers), the nine with the rest
set -u
session=s76 mode=${1:-h200}
source "$(dirname "$0")/device_verify_lib.sh"
limit=${2:-560}
if [ "$mode" = h200 ]; then
  run_qwen3next_tp2 run_json
  [ -d .peers ] && BENCH_LIMIT=200 run_kernel_bench
  run_verify_tests $(( $(left) > 240 ? 200 : $(left) / 2 ))
else
  run_verify_tests 220
  [ -d .peers ] && BENCH_LIMIT=$(( $(left) > 300 ? 180 : $(left) / 2 )) run_kernel_bench
fi
export -f run_json run_issue13_list_80gb
export LOG OUT
[ "$(left)" -gt 30 ] && timeout "$(left)" bash -c 'run_issue13_list_80gb run_json'
echo "stopped at $(date -u)" | tee -a "$LOG"
pack_runs
