#!/usr/bin/env bash
# Session 40, call 3: block-scaled fp8 (DeepSeek-V3 / R1) on the H200. GPU tests of the group-quantisation kernel
# (the skinny fp8 format: 130 passed in its own run) and the tiny forwards (MoE, fp8); memcheck over the fp8 tests;
# then verify on DeepSeek-V3 at tp 8 (one simulated rank), and DeepSeek-V2-Lite / GLM-4.7-Flash (the MoE kernel's
# cubin changed).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s40_call3_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_fp8_quant.py 2>&1 | tail -4 | tee -a "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py \
  -k "deepseek or llama_fp8 or mixtral or gpt_oss or qwen3_next" 2>&1 | tail -6 | tee -a "$LOG"
echo "== memcheck (fp8 kernels)" | tee -a "$LOG"
timeout 100 compute-sanitizer --report-api-errors no --tool memcheck python3 -m pytest -q -x -p no:cacheprovider \
  tests/test_skinny_gpu.py tests/test_fp8_quant.py -k "(fp8 or group) and not graph" 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --budget=330 --only=dsv3-tp8,dsv2-lite,glm47-flash 2>&1 | tail -5 \
  | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -8 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s40_call3.jsonl" 2>/dev/null
ls $OUT
