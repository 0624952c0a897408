#!/usr/bin/env bash
# Session 36, call 7: verify's GPU tests and every model of issue 13 (and Nemotron-H, Devstral-Small-2 fp8) after
# this session's changes (the GEMV's release, the norm's and the activation's e4m3 outputs).
set -u
cd "$(dirname "$0")/../.."  # the repository root
LOG=$OUT/s36_call7_h200_2026-12-03.txt
python3 benchmarks/verify_device_run.py tests models --budget=540 2>&1 | tail -16 | tee "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | tee -a "$LOG"
python3 benchmarks/probes/gemm_forms_md.py "$OUT/results.jsonl" 2>&1 | tee -a "$LOG"
tail -3 "$OUT/pytest.txt" | tee -a "$LOG"
