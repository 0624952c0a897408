#!/usr/bin/env bash
# Session 74: verify reads a config's omitted fields with the planned release's transformers defaults (new this
# session): a Gemma-2-9B config without its widths verified on the GPU under 0.6.4 (transformers 4.45.2: 16 KV heads,
# MLP 24,576) and 0.34.0 (newest: 4 and 9,216); then verify's GPU test files and the state-step tests, and issue 13's
# nine an 80 GB rank holds with the time left, within LIMIT seconds (default 540).
#   bash benchmarks/sessions/s74_device.sh [LIMIT]
set -u
session=s74 mode=${MODE:-h100}
source "$(dirname "$0")/../device_verify_lib.sh"
limit=${1:-540}
test_config test_release_defaults_s74 GEMMA2 /tmp/g2
run_json gemma2_064 /tmp/g2/config.json --engine vllm==0.6.4 -c 4096
run_json gemma2_034 /tmp/g2/config.json --engine vllm==0.34.0 -c 4096
run_verify_tests 220
export -f run_json run_issue13_list_80gb
export LOG OUT
[ "$(left)" -gt 30 ] && timeout "$(left)" bash -c 'run_issue13_list_80gb run_json'
echo "stopped at $(date -u)" | tee -a "$LOG"
pack_runs
