#!/usr/bin/env bash
# Session 41, call 9: the chunked block-fp8 experts with each chunk's outputs written over its own sorted rows and
# the slices into one output (call 8: slices of 2,048 tokens still put the profile peak at 1.48 GiB, 88 / 85 NOT
# within). GPU tests of the dequantisation and the chunked MoE; verify on DeepSeek-V3 tp 8.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s41_call9_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_fp8_quant.py 2>&1 | tail -2 | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --budget=120 --only=dsv3-tp8 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -8 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s41_call9.jsonl" 2>/dev/null
