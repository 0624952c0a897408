#!/usr/bin/env bash
# Session 39, call 1: Jamba's Mamba-1 layer in verify (kvplan/kernels/mamba1_scan.cu, kvplan/gpu/mamba1.py). GPU tests
# of the new kernel and of every tiny forward (the Mamba-2 convolution moved to module functions); compute-sanitizer
# over the Mamba-1 kernel tests; the layer's timings; verify on AI21-Jamba-1.5-Mini (tp 1) and Nemotron-H-8B (the
# moved convolution helpers).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s39_call1_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
python3 -m pytest -q tests/test_mamba1_scan.py tests/test_verify_gpu.py tests/test_mamba_step.py \
  tests/test_ssd_prefill.py 2>&1 | tail -4 | tee -a "$LOG"
for tool in memcheck racecheck; do
  echo "== $tool" | tee -a "$LOG"
  timeout 100 compute-sanitizer --report-api-errors no --tool $tool python3 -m pytest -q -x tests/test_mamba1_scan.py \
    -k "not thousand" 2>&1 | tail -2 | tee -a "$LOG"
done
echo "== Mamba-1 layer timings" | tee -a "$LOG"
timeout 120 python3 benchmarks/probes/mamba1_scan_time.py 2>&1 | grep -v -i warn | tail -8 | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --budget=200 --only=jamba-mini,nemotron-h-8b 2>&1 | tail -4 \
  | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -5 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s39_call1.jsonl" 2>/dev/null
ls $OUT
