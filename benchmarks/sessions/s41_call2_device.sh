#!/usr/bin/env bash
# Session 41, call 2: where DeepSeek-V3's block-scaled fp8 linears lose their time at decode batches
# (benchmarks/probes/block_gemv_probe.py): the dense linears by form, then the routed experts by pairs-kernel variant.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s41_call2_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 150 python3 benchmarks/probes/block_gemv_probe.py --batches=1,8 2>&1 | grep -v -i warn | tee -a "$LOG"
timeout 100 python3 benchmarks/probes/block_gemv_probe.py --batches=1 --rotate 2>&1 | grep -v -i warn | tee -a "$LOG"
timeout 200 python3 benchmarks/probes/block_gemv_probe.py --experts 2>&1 | grep -v -i warn | tee -a "$LOG"
