#!/usr/bin/env bash
# Session 41, call 10: the chunked block-fp8 experts over the whole 8,192-token prompt with each chunk's outputs
# over its own rows (calls 7-9: whole prompt with a second buffer 3.2 GiB of profile peak, TTFT 448 ms; slices of
# 2,048 1.27 GiB, 946 ms). Verify on DeepSeek-V3 tp 8.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s41_call10_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_fp8_quant.py -k "chunks" 2>&1 | tail -2 | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --budget=120 --only=dsv3-tp8 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -8 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s41_call10.jsonl" 2>/dev/null
