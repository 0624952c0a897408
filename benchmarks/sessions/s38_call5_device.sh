#!/usr/bin/env bash
# Session 38, call 5 (the tree as landed): the state passing at 32 registers (eight CTAs an SM); GPU tests of every
# file this session touched (router.cu's top-k helper: sm_90 SASS identical to the tested source, run anyway);
# compute-sanitizer over the SSD launches; Nemotron-H-8B's and Nemotron-3-Nano's prefill profiles; verify on
# Nemotron-H-8B, Nemotron-3-Nano and Qwen3-Next (tp 2, one rank: its DeltaNet prefill is untouched).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s38_call5_h200_2026-12-03.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
python3 -m pytest -q tests/test_ssd_prefill.py tests/test_mamba_step.py tests/test_prefill_kernels.py \
  tests/test_router.py tests/test_verify_gpu.py 2>&1 | tail -3 | tee -a "$LOG"
for tool in memcheck racecheck; do
  echo "== $tool" | tee -a "$LOG"
  timeout 90 compute-sanitizer --report-api-errors no --tool $tool python3 benchmarks/probes/prefill_kernels_check.py 2>&1 \
    | tail -2 | tee -a "$LOG"
done
for m in nvidia/Nemotron-H-8B-Base-8K benchmarks/configs/nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-BF16.json; do
  echo "== prefill profile, $m" | tee -a "$LOG"
  timeout 150 python3 benchmarks/prefill_profile.py $m --top 14 2>&1 | grep -v -i warn | tail -15 | tee -a "$LOG"
done
python3 benchmarks/verify_device_run.py models --budget=200 --only=nemotron-h-8b,nemotron3-nano,qwen3next-tp2 2>&1 \
  | tail -4 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -5 | tee -a "$LOG"
