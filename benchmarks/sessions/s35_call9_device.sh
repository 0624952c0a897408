#!/usr/bin/env bash
# Session 35, call 9: the Mamba-2 gated norm in 1,024-row slices (the profile run's activation peak); verify's GPU
# forward tests and kvplan verify on the bundled Nemotron-H-8B (issue 13).
set -u
cd "$(dirname "$0")/../.."  # the repository root
LOG=$OUT/s35_call9_h200_2026-12-03.txt
python3 -m pytest -q -x -p no:cacheprovider tests/test_verify_gpu.py -k "forward_on_gpu and nemotron" 2>&1 | tail -2 | tee "$LOG"
python3 benchmarks/verify_device_run.py models --only=nemotron-h-8b --budget=100 2>&1 | tail -2 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | tail -6 | tee -a "$LOG"
