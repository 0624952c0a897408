#!/usr/bin/env bash
# Session 36, call 2: the e4m3 GEMV failures of call 1 taken apart (benchmarks/probes/gemv_e4m3_check.py), the fp8
# quantisation kernel's tests, verify's tiny fp8 forward, and Devstral-Small-2-24B (fp8) with the kernel (issue 13).
set -u
cd "$(dirname "$0")/../.."  # the repository root
LOG=$OUT/s36_call2_h200_2026-12-03.txt
python3 benchmarks/probes/gemv_e4m3_check.py 4096 5120 2>&1 | tail -12 | tee "$LOG"
python3 benchmarks/probes/gemv_e4m3_check.py 2048 512 2>&1 | tail -12 | tee -a "$LOG"
python3 -m pytest -q -p no:cacheprovider tests/test_fp8_quant.py tests/test_gemv_stream_gpu.py -k "e4m3 or kernel_matches" 2>&1 | grep -E "passed|failed|rel err|Error" | head -20 | tee -a "$LOG"
python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py -k "fp8" 2>&1 | grep -E "passed|failed|assert|Error" | head -20 | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --only=devstral-small-fp8 --budget=150 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | tail -8 | tee -a "$LOG"
python3 benchmarks/probes/gemm_forms_md.py "$OUT/results.jsonl" --shapes 2>&1 | head -24 | tee -a "$LOG"
grep -h -i "error\|traceback" -A3 "$OUT/progress.txt" | head -30 | tee -a "$LOG"
