#!/usr/bin/env bash
# Session 36, call 3: the e4m3 GEMV's second-run errors (gemv_e4m3_check.py: per run, with the 16-bit kernel on the
# same bytes), compute-sanitizer on that case, and Devstral-Small-2-24B (fp8) with the quantisation released first.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s36_call3_h200_2026-12-03.txt
python3 benchmarks/probes/gemv_e4m3_check.py 4096 5120 2>&1 | tail -14 | tee "$LOG"
python3 benchmarks/probes/gemv_e4m3_check.py 2048 512 2>&1 | tail -10 | tee -a "$LOG"
compute-sanitizer --report-api-errors no --tool memcheck python3 benchmarks/probes/gemv_e4m3_check.py 4096 5120 --quick 2>&1 | grep -E "ERROR SUMMARY|Invalid|rel" | head -8 | tee -a "$LOG"
compute-sanitizer --report-api-errors no --tool racecheck python3 benchmarks/probes/gemv_e4m3_check.py 4096 5120 --quick 2>&1 | grep -E "RACECHECK SUMMARY|hazard" | head -8 | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --only=devstral-small-fp8 --budget=150 2>&1 | tail -2 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | tail -8 | tee -a "$LOG"
python3 benchmarks/probes/gemm_forms_md.py "$OUT/results.jsonl" --shapes 2>&1 | head -6 | tee -a "$LOG"
