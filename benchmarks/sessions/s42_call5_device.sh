#!/usr/bin/env bash
# Session 42, call 5: a joined expert's passes one per CTA row for 16-bit experts too (call 4's probe: Qwen3-Next tp 2
# at 440 tokens 527 vs 537 us a layer, the same below). The row-tile and fp8 GPU tests, verify's GPU tests, verify on
# the models with a joined shared expert (Qwen3-Next tp 2, DeepSeek-V2-Lite, GLM-4.7-Flash, Nemotron-3-Nano) and R1.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s42_call5_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_gpu.py -k "fp8 or rows or joined" 2>&1 \
  | tail -2 | tee -a "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py 2>&1 | tail -2 | tee -a "$LOG"
ONLY=qwen3next-tp2,dsv2-lite,glm47-flash,nemotron3-nano,dsr1-tp8
python3 benchmarks/verify_device_run.py models --budget=200 --only=$ONLY 2>&1 | tail -6 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -16 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s42_call5.jsonl" 2>/dev/null
