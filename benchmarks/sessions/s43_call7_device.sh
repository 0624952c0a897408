#!/usr/bin/env bash
# Session 43, call 7: the pairs kernel with each warp's first 8 / 16 steps sent to L2 once the CTA's expert is known
# (a variant, KVP_SK_PAIR_PF; outputs compared bit for bit with the default), on every probe shape at one token.
# (Slower on every shape; the variant and the probe options were removed after this call: commit 6e982d2 has the code.
# Kept as the record of what ran.)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s43_call7_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 150 python3 benchmarks/probes/moe_one_token_probe.py --pair-prefetch --pairs-only 2>&1 | tail -8 | tee -a "$LOG"
