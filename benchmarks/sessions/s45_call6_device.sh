#!/usr/bin/env bash
# Session 45, call 6: a decode step's linears in decode order against verify's per-shape weight stream
# (benchmarks/probes/decode_chain_stream.py; Llama-3.1-8B, Qwen3-14B, Llama-3.2-1B shapes, batch 1 and 8).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s45_call6_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 400 python3 benchmarks/probes/decode_chain_stream.py --models 8b,14b,1b --batches 1,8 2>&1 | tail -8 | tee -a "$LOG"
