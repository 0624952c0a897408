#!/usr/bin/env bash
# Session 38, call 2: (a) the MLA issue orders (call 1's plan factory did not pass them on): GPU tests, then DRAM /
# L2-resident times against the default order; (b) where Nemotron-H-8B's TTFT goes with the SSD kernels.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s38_call2_h200_2026-12-03.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
python3 -m pytest -q -x tests/test_kernel_mla_gpu.py -k "issue_orders or refuses" 2>&1 | tail -3 | tee -a "$LOG"
V="qk_chains=2;qk_chains=4;pv_interleave=True;qk_chains=4 pv_interleave=True"
S="16h B32 8K,16h B8 32K,16h B128 4K,128h B8 8K"
for run in 1 2; do
  echo "== mla_probe run $run" | tee -a "$LOG"
  timeout 120 python3 benchmarks/mla_probe.py "$V" "$S" 2>&1 | tee -a "$LOG"
done
echo "== prefill profile, Nemotron-H-8B" | tee -a "$LOG"
timeout 200 python3 benchmarks/prefill_profile.py nvidia/Nemotron-H-8B-Base-8K --top 25 2>&1 | tail -40 | tee -a "$LOG"
