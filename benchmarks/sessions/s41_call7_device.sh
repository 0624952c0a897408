#!/usr/bin/env bash
# Session 41, call 7: DeepSeek-V3's long-prompt experts through a bundled e4m3 -> bf16 dequantisation, 32 experts at
# a time, and grouped GEMMs (kvplan/gpu/ffn.py FP8_GROUPED_TOKENS). GPU tests of the kernel (bit for bit against
# torch) and of the chunked MoE against float64, the tiny DeepSeek forwards; memcheck over the kernel's tests; one
# MoE layer by expert vs in chunks over 128-8,192 tokens; verify on DeepSeek-V3 tp 8 (TTFT).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s41_call7_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_fp8_quant.py 2>&1 | tail -3 | tee -a "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py -k "deepseek or block" 2>&1 | tail -3 \
  | tee -a "$LOG"
echo "== memcheck (dequantisation)" | tee -a "$LOG"
timeout 100 compute-sanitizer --report-api-errors no --tool memcheck python3 -m pytest -q -x -p no:cacheprovider \
  tests/test_fp8_quant.py -k "block_dequant or chunks" 2>&1 | tail -2 | tee -a "$LOG"
timeout 150 python3 benchmarks/probes/block_gemv_probe.py --prefill 2>&1 | grep -v -i warn | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --budget=120 --only=dsv3-tp8 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -8 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s41_call7.jsonl" 2>/dev/null
