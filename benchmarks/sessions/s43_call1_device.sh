#!/usr/bin/env bash
# Session 43, call 1: an MoE layer's experts at one token as two streaming GEMVs (gemv_stream.cu's gather form,
# kvplan/kernels/moe_one_token.py, new). Its GPU tests, memcheck, the probe against the pairs kernel, the dense
# GEMV tests (the gather cubin is separate; the default cubins' SASS is unchanged), verify on the MoE models.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s43_call1_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== tests" | tee -a "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_moe_one_token_gpu.py 2>&1 | tail -15 | tee -a "$LOG"
echo "== probe" | tee -a "$LOG"
timeout 150 python3 benchmarks/probes/moe_one_token_probe.py 2>&1 | tail -12 | tee -a "$LOG"
echo "== memcheck" | tee -a "$LOG"
timeout 80 compute-sanitizer --report-api-errors no --tool memcheck python3 -m pytest -q -x -p no:cacheprovider \
  tests/test_moe_one_token_gpu.py -k "GLM and bfloat16 or fp8 or past or relu2 and float16" 2>&1 | tail -3 | tee -a "$LOG"
echo "== verify" | tee -a "$LOG"
ONLY=glm47-flash,dsv3-tp8,qwen3next-tp2,dsv2-lite
timeout 200 python3 benchmarks/verify_device_run.py models --budget=190 --only=$ONLY 2>&1 | tail -6 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -16 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s43_call1.jsonl" 2>/dev/null
