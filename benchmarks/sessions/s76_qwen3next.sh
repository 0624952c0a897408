#!/usr/bin/env bash
# Session 76: issue 13's one plan an 80 GB rank cannot hold, alone (a short H200 call): Qwen3-Next tp 2 through
# verify as JSON, as listed and with a float32 SSM state, within LIMIT seconds (default 200).
#   bash benchmarks/sessions/s76_qwen3next.sh [LIMIT]
set -u
session=${SESSION:-s76} mode=h200q
source "$(dirname "$0")/../device_verify_lib.sh"
limit=${1:-200}
run_qwen3next_tp2 run_json
echo "stopped at $(date -u)" | tee -a "$LOG"
pack_runs
