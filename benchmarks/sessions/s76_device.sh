#!/usr/bin/env bash
# Session 76: what one device call does with whichever GPU comes, within LIMIT seconds (default 560).
#   bash benchmarks/sessions/s76_device.sh h200 [LIMIT]   Qwen3-Next tp 2 through verify as JSON (as listed and with a float32
#                                                SSM state: the plans of issue 13 an 80 GB rank cannot hold), issue 14's
#                                                kernel table (carry .peers), verify's GPU tests, then the nine of the
#                                                list with the time left
#   bash benchmarks/sessions/s76_device.sh h100 [LIMIT]   verify's GPU tests (session 75's merges touched engine rules and the
#                                                speed model), issue 14's table (carry .peers), the nine with the rest
set -u
session=${SESSION:-s76} mode=${1:-h200}
source "$(dirname "$0")/../device_verify_lib.sh"
limit=${2:-560}
[ "$mode" = h200 ] && run_qwen3next_tp2 run_json
finish_call 220
