#!/usr/bin/env bash
# Session 36, call 8: compute-sanitizer over the GEMV with its release store (the launch that failed, e4m3, two
# CTAs per SM), and Devstral-2-123B (fp8, one rank of tp 2) through kvplan verify.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s36_call8_h200_2026-12-03.txt
for tool in memcheck racecheck synccheck; do
  compute-sanitizer --report-api-errors no --tool $tool python3 benchmarks/probes/gemv_e4m3_check.py 4096 5120 --quick 2>&1 | grep -E "SUMMARY|saturated" | cut -c1-160 | sed "s/^/$tool: /" | tee -a "$LOG"
done
python3 benchmarks/verify_device_run.py models --only=devstral2-123b-tp2 --budget=200 2>&1 | tail -2 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | tail -8 | tee -a "$LOG"
python3 benchmarks/probes/gemm_forms_md.py "$OUT/results.jsonl" 2>&1 | tee -a "$LOG"
