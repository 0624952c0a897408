#!/usr/bin/env bash
# Session 70: what one device call does with whichever GPU comes, within LIMIT seconds (default 560).
#   bash benchmarks/sessions/s70_device.sh h200 [LIMIT]   Qwen3-Next tp 2 through verify (the one plan of issue 13 an 80 GB rank
#                                                cannot hold), issue 14's kernel table (carry .peers), then verify's
#                                                GPU tests and the nine of the list with the time left
#   bash benchmarks/sessions/s70_device.sh h100 [LIMIT]   verify's GPU tests (session 69's float64 reference as matmuls and
#                                                rank.py's served name, never run on a GPU) and the NVRTC-arch check
set -u
session=s70 mode=${1:-h200}
source "$(dirname "$0")/../device_verify_lib.sh"
limit=${2:-560} start=$SECONDS
left() { echo $((limit - (SECONDS - start))); }
python3 -m pytest -q -p no:cacheprovider -rfE tests/test_nvrtc_arch_s70.py 2>&1 | tail -2 | tee -a "$LOG"
if [ "$mode" = h200 ]; then
  run_json qwen3next Qwen/Qwen3-Next-80B-A3B-Thinking -c 8192 --tp 2
  [ -d .peers ] && BENCH_LIMIT=200 run_kernel_bench
  run_verify_tests $(( $(left) > 240 ? 200 : $(left) / 2 ))
  export -f run_json run_issue13_list_80gb
  export LOG OUT
  [ "$(left)" -gt 30 ] && timeout "$(left)" bash -c 'run_issue13_list_80gb run_json'
else
  run_verify_tests $(( $(left) - 20 ))
fi
echo "stopped at $(date -u)" | tee -a "$LOG"
pack_runs
