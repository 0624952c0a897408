#!/usr/bin/env bash
# Session 40, calls 1-2: which block-scaled fp8 matmul torch offers on the H200 (DeepSeek-V3 / R1's 128x128 weight
# blocks), its error and speed over DeepSeek-V3's per-rank shapes at TP 8 (benchmarks/probes/block_fp8_probe.py).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s40_call1_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 400 python3 benchmarks/probes/block_fp8_probe.py 2>&1 | grep -v -i "warn" | tee -a "$LOG"
