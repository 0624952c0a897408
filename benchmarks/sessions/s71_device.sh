#!/usr/bin/env bash
# Session 71: what one device call does with whichever GPU comes, within LIMIT seconds (default 560).
#   bash benchmarks/sessions/s71_device.sh h200 [LIMIT]   Qwen3-Next tp 2 through verify (the one plan of issue 13 an 80 GB rank
#                                                cannot hold), issue 14's kernel table (carry .peers), then verify's
#                                                GPU tests and the nine of the list with the time left
#   bash benchmarks/sessions/s71_device.sh h100 [LIMIT]   the NVRTC-arch check, verify's GPU tests, issue 14's table (carry
#                                                .peers) and the nine of the list with the time left
set -u
session=s71 mode=${1:-h200}
source "$(dirname "$0")/../device_verify_lib.sh"
limit=${2:-560}
python3 -m pytest -q -p no:cacheprovider -rfE tests/test_nvrtc_arch_s70.py 2>&1 | tail -2 | tee -a "$LOG"
[ "$mode" = h200 ] && run_json qwen3next Qwen/Qwen3-Next-80B-A3B-Thinking -c 8192 --tp 2
finish_call 180
