#!/usr/bin/env bash
# Session 36, call 6: a GEMV stage released only once its ldmatrix loads have landed (gemv_stream.cu gv_release):
# the launch that failed (--variants), every GEMV GPU test (bf16, f16, e4m3; the cut at two CTAs per SM allowed
# again), verify's tiny forwards, then Devstral-Small-2 (fp8), Llama-3.1-8B and Llama-3.2-1B through kvplan verify.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s36_call6_h200_2026-12-03.txt
python3 benchmarks/probes/gemv_e4m3_check.py --variants 2>&1 | tail -7 | tee "$LOG"
python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py 2>&1 | grep -E "passed|failed|rel err" | head -8 | tee -a "$LOG"
python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py -k "forward_on_gpu or fp8" 2>&1 | grep -E "passed|failed|assert" | head -8 | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --only=devstral-small-fp8,llama8b-8k,llama1b --budget=200 2>&1 | tail -4 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | tail -11 | tee -a "$LOG"
python3 benchmarks/probes/gemm_forms_md.py "$OUT/results.jsonl" 2>&1 | tee -a "$LOG"
