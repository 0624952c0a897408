#!/usr/bin/env bash
# Session 73: DiffusionGemma's verify on a GPU (its DiffusionSampler passes, new this session: 0.34 the canvas pass,
# 0.32 the float32 softcap copy), then the verify GPU test files in reverse order (session 73's first call ran the
# first 76% of them in order) within LIMIT seconds (default 360).
#   bash benchmarks/sessions/s73_device.sh [LIMIT]
set -u
session=s73 mode=dgemma
source "$(dirname "$0")/../device_verify_lib.sh"
limit=${1:-360}
test_config test_dgemma_drafter_s72 CONFIG /tmp/dgemma
run_json dgemma_034 /tmp/dgemma/config.json --engine vllm==0.34.0 -c 4096
run_json dgemma_032 /tmp/dgemma/config.json --engine vllm==0.32.0 -c 4096
python3 -m pytest -q -p no:cacheprovider -rfE tests/test_dgemma_s73.py tests/test_dgemma_profile_s72.py 2>&1 | tail -3 \
  | tee -a "$LOG"
files=$(verify_gpu_test_files | sort -r)
[ "$(left)" -gt 30 ] && timeout "$(left)" python3 -m pytest -q -p no:cacheprovider -rfE $files 2>&1 | tail -8 \
  | tee -a "$LOG"
echo "stopped at $(date -u)" | tee -a "$LOG"
pack_runs
