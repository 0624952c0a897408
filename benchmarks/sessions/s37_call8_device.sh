#!/usr/bin/env bash
# Session 37, call 8: every GPU test the routing work touches (the router kernel, verify's tiny forwards with sigmoid
# routers at x 2, mxfp4 experts, the prefill kernels with the gather-sum) and verify on every MoE model it changes.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s37_call8_h200_2026-12-03.txt
python3 -m pytest -q -p no:cacheprovider tests/test_router.py tests/test_verify_gpu.py tests/test_mxfp4_gpu.py \
  tests/test_prefill_kernels.py tests/test_mamba_step.py 2>&1 | tail -4 | tee "$LOG"
python3 benchmarks/verify_device_run.py models --budget=470 \
  --only=gpt-oss-20b,dsv2-lite,mixtral-tp2,qwen3next-tp2,glm47-flash,llama4-scout-tp2,nemotron3-nano 2>&1 | tail -9 \
  | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | tee -a "$LOG"
