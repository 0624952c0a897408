#!/usr/bin/env bash
# Session 38, call 4: the SSD products on tensor cores (TF32 mma.sync, ssd_prefill.cu's third form): GPU tests,
# compute-sanitizer over small launches, Nemotron-H-8B's prefill profile, verify on Nemotron-H-8B and -3-Nano.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s38_call4_h200_2026-12-03.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
python3 -m pytest -q tests/test_ssd_prefill.py tests/test_mamba_step.py tests/test_prefill_kernels.py 2>&1 | tail -3 \
  | tee -a "$LOG"
python3 -m pytest -q tests/test_verify_gpu.py -k "nemotron" 2>&1 | tail -3 | tee -a "$LOG"
for tool in memcheck racecheck synccheck; do
  echo "== $tool" | tee -a "$LOG"
  timeout 90 compute-sanitizer --report-api-errors no --tool $tool python3 benchmarks/probes/prefill_kernels_check.py 2>&1 \
    | tail -3 | tee -a "$LOG"
done
echo "== prefill profile, Nemotron-H-8B" | tee -a "$LOG"
timeout 200 python3 benchmarks/prefill_profile.py nvidia/Nemotron-H-8B-Base-8K --top 12 2>&1 | grep -v Warn | tail -14 \
  | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --budget=200 --only=nemotron-h-8b,nemotron3-nano 2>&1 | tail -3 \
  | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -4 | tee -a "$LOG"
