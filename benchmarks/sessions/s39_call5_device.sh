#!/usr/bin/env bash
# Session 39, call 5: the Mamba-1 scan in two forms, sixteen states a thread for prompts and four for decode steps
# (call 4: decode slower with sixteen). GPU tests, compute-sanitizer (memcheck, racecheck, synccheck)
# over the kernel's tests, the layer's timings, Jamba's prefill profile, verify on AI21-Jamba-1.5-Mini.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s39_call5_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
python3 -m pytest -q tests/test_mamba1_scan.py tests/test_verify_gpu.py tests/test_mamba_step.py -k "mamba1 or jamba or scan or decode_conv or segments or eight \
  or continue" 2>&1 | grep -E "passed|failed|Error|assert" | tail -12 | tee -a "$LOG"
for tool in memcheck racecheck synccheck; do
  echo "== $tool" | tee -a "$LOG"
  timeout 100 compute-sanitizer --report-api-errors no --tool $tool python3 -m pytest -q -x tests/test_mamba1_scan.py \
    -k "not thousand" 2>&1 | tail -2 | tee -a "$LOG"
done
echo "== Mamba-1 layer timings" | tee -a "$LOG"
timeout 120 python3 benchmarks/probes/mamba1_scan_time.py 2>&1 | grep -v -i warn | tail -8 | tee -a "$LOG"
echo "== prefill profile, Jamba-1.5-Mini" | tee -a "$LOG"
timeout 150 python3 benchmarks/prefill_profile.py benchmarks/configs/ai21labs--AI21-Jamba-1.5-Mini.json --top 14 2>&1 \
  | grep -v -i warn | tail -16 | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --budget=150 --only=jamba-mini 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -4 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s39_call5.jsonl" 2>/dev/null
