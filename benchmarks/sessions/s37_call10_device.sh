#!/usr/bin/env bash
# Session 37, call 10: verify on Llama-4-Scout (tp 2, one rank) after the plan counts chunked layers while decoding
# (call 8: planned 131, the layout admitted 34).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s37_call10_h200_2026-12-03.txt
python3 benchmarks/verify_device_run.py models --budget=200 --only=llama4-scout-tp2 2>&1 | tail -2 | tee "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -3 | tee -a "$LOG"
