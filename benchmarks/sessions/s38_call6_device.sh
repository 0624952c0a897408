#!/usr/bin/env bash
# Session 38, call 6: the squared ReLU (not gated) in gated_act.cu, one launch instead of torch's relu and square:
# GPU tests of the activation kernel (the gated forms' SASS changed too) and of the Nemotron-H forwards; sanitizer;
# Nemotron-H-8B's prefill profile; verify on Nemotron-H-8B and Nemotron-3-Nano.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s38_call6_h200_2026-12-03.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
python3 -m pytest -q tests/test_gated_act.py tests/test_verify_gpu.py -k "act or nemotron or reference" 2>&1 \
  | tail -3 | tee -a "$LOG"
for tool in memcheck racecheck; do
  echo "== $tool" | tee -a "$LOG"
  timeout 90 compute-sanitizer --report-api-errors no --tool $tool python3 benchmarks/probes/prefill_glue_check.py 2>&1 \
    | tail -2 | tee -a "$LOG"
done
echo "== prefill profile, Nemotron-H-8B" | tee -a "$LOG"
timeout 150 python3 benchmarks/prefill_profile.py nvidia/Nemotron-H-8B-Base-8K --top 10 2>&1 | grep -v -i warn \
  | tail -11 | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --budget=200 --only=nemotron-h-8b,nemotron3-nano 2>&1 | tail -3 \
  | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -4 | tee -a "$LOG"
echo "== prefill profile, Qwen3-Next tp 2 (for the next session)" | tee -a "$LOG"
timeout 150 python3 benchmarks/prefill_profile.py Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2 --top 25 2>&1 \
  | grep -v -i warn | tail -26 | tee -a "$LOG"
