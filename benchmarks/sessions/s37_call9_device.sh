#!/usr/bin/env bash
# Session 37, call 9: the MoE pairs kernel's non-gated form (mode 3: one up projection, squared ReLU; Nemotron-H's
# experts), its GPU tests and every other skinny / verify GPU test, then verify on NVIDIA-Nemotron-3-Nano (its
# experts through the kernel instead of gathered weights: call 8 had 5.03 ms at batch 1, 2.68 GiB of graphs).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s37_call9_h200_2026-12-03.txt
python3 -m pytest -q -p no:cacheprovider tests/test_skinny_gpu.py tests/test_verify_gpu.py tests/test_mxfp4_gpu.py \
  2>&1 | grep -E "passed|failed|Error" | cut -c1-300 | tail -12 | tee "$LOG"
python3 benchmarks/verify_device_run.py models --budget=300 --only=nemotron3-nano,gpt-oss-20b,dsv2-lite 2>&1 \
  | tail -5 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | tee -a "$LOG"
