#!/usr/bin/env bash
# Session 38, call 3: the SSD kernels' second form (float4 tile loads a tile ahead, causal tiles skipped, D x in the
# scan, state passing eight chunks a load) and the Mamba-2 prefill's gated norm through the step's norm launch:
# GPU tests, Nemotron-H-8B's prefill profile, verify on Nemotron-H-8B and Nemotron-3-Nano.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s38_call3_h200_2026-12-03.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
python3 -m pytest -q tests/test_ssd_prefill.py tests/test_mamba_step.py 2>&1 | tail -3 | tee -a "$LOG"
python3 -m pytest -q tests/test_verify_gpu.py -k "nemotron" 2>&1 | tail -3 | tee -a "$LOG"
echo "== prefill profile, Nemotron-H-8B" | tee -a "$LOG"
timeout 200 python3 benchmarks/prefill_profile.py nvidia/Nemotron-H-8B-Base-8K --top 16 2>&1 | grep -v Warn | tail -18 \
  | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --budget=200 --only=nemotron-h-8b,nemotron3-nano 2>&1 | tail -3 \
  | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -4 | tee -a "$LOG"
