#!/usr/bin/env bash
# Session 36, call 1: fp8 (per-tensor, W8A8) linears in verify's forward (issue 13): the GEMV's e4m3 kernel against
# float64, verify's tiny fp8 forward through every GEMV form, then kvplan verify on Devstral-Small-2-24B (fp8).
set -u
cd "$(dirname "$0")/../.."  # the repository root
LOG=$OUT/s36_call${CALL:-1}_h200_2026-12-03.txt
python3 -m pytest -q -x -p no:cacheprovider tests/test_gemv_stream_gpu.py -k "e4m3" 2>&1 | tail -4 | tee "$LOG"
python3 -m pytest -q -x -p no:cacheprovider tests/test_verify_gpu.py -k "fp8" 2>&1 | tail -4 | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --only=devstral-small-fp8 --budget=150 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | tail -8 | tee -a "$LOG"
python3 benchmarks/probes/gemm_forms_md.py "$OUT/results.jsonl" --shapes 2>&1 | head -40 | tee -a "$LOG"
grep -h -i "error\|traceback" -A3 "$OUT/progress.txt" | head -30 | tee -a "$LOG"
