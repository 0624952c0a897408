#!/usr/bin/env bash
# Session 41, call 3: DeepSeek-V3's routed experts at batch 1 and 8 with the MoE pairs kernel's k split forced
# (call 2: the wave rule keeps one CTA along k, 144 CTAs of 229 KB each at batch 1: 22% of read).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s41_call3_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 250 python3 benchmarks/probes/block_gemv_probe.py --experts --ksplits 2>&1 | grep -v -i warn | tee -a "$LOG"
