#!/usr/bin/env bash
# Session 47, call 1: the streaming GEMV with 128-row steps (mma_tiles=2) at batch 1 and 8 against verify's forms,
# shape by shape and in decode order (Qwen3-14B, Llama-3.1-8B): issue 13's weight stream at batch 8.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s47_call1_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 500 python3 benchmarks/probes/mt2_probe.py --batches 1,8 2>&1 | tee -a "$LOG"
