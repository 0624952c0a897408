#!/usr/bin/env bash
# Session 36, call 4: the fp8 forward with its quantisation fused into the norms (QKV, gate/up inputs) and the gated
# activation (down input): the kernels' GPU tests, verify's tiny forwards, then Devstral-Small-2-24B (fp8) and
# Llama-3.1-8B (bf16: the norm and activation kernels took an argument more) through kvplan verify (issue 13).
set -u
cd "$(dirname "$0")/../.."  # the repository root
LOG=$OUT/s36_call4_h200_2026-12-03.txt
python3 -m pytest -q -p no:cacheprovider tests/test_norm.py tests/test_gated_act.py tests/test_fp8_quant.py tests/test_gemv_stream_gpu.py 2>&1 | grep -E "passed|failed|Error|rel err" | head -12 | tee "$LOG"
python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py -k "forward_on_gpu or fp8" 2>&1 | grep -E "passed|failed|assert|Error" | head -12 | tee -a "$LOG"
PYTHONPATH=$PWD python3 benchmarks/probes/gemv_e4m3_check.py --variants 2>&1 | tail -7 | tee -a "$LOG"
KVPLAN_PDL=0 PYTHONPATH=$PWD python3 benchmarks/probes/gemv_e4m3_check.py --variants 2>&1 | tail -7 | sed "s/^/PDL off: /" | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --only=devstral-small-fp8,llama8b-8k --budget=200 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | tail -9 | tee -a "$LOG"
python3 benchmarks/probes/gemm_forms_md.py "$OUT/results.jsonl" --shapes 2>&1 | grep -v "131072x" | head -20 | tee -a "$LOG"
grep -h -i "error\|traceback" -A3 "$OUT/progress.txt" | head -20 | tee -a "$LOG"
