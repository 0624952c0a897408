#!/usr/bin/env bash
# Session 68: issue 13's list on an H200 rank within LIMIT seconds (default 420), Qwen3-Next tp 2 first (the one plan
# an 80 GB rank cannot hold), then the nine; whatever has run by then is packed (the device returns a few files).
#   bash benchmarks/sessions/s68_device.sh [LIMIT]
set -u
session=s68 mode=h200
source "$(dirname "$0")/../device_verify_lib.sh"
export -f run_json run_issue13_list_80gb
export LOG OUT
timeout "${1:-420}" bash -c 'run_json qwen3next Qwen/Qwen3-Next-80B-A3B-Thinking -c 8192 --tp 2
  run_issue13_list_80gb run_json'
echo "stopped at $(date -u)" | tee -a "$LOG"
pack_runs
