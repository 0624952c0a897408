#!/usr/bin/env bash
# Session 38, call 1: (a) the Mamba-2 prefill's state space through ssd_prefill.cu (new): its GPU tests, the tiny
# Nemotron-H forward, Nemotron-H-8B's verify (TTFT); (b) the tiny Falcon through verify's GPU forward; (c) the bf16
# MLA warpgroup kernel with QK's wgmmas in independent accumulator chains and PV's issued k-step major
# (paged_mla_wg.cu KVP_MLA_QKC / KVP_MLA_PVI): GPU tests, then DRAM / L2-resident times against the default order.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s38_call1_h200_2026-12-03.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
python3 -m pytest -q tests/test_ssd_prefill.py 2>&1 | tail -3 | tee -a "$LOG"
python3 -m pytest -q tests/test_verify_gpu.py -k "nemotron or falcon" 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --budget=150 --only=nemotron-h-8b 2>&1 | tail -2 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -3 | tee -a "$LOG"
python3 -m pytest -q -x tests/test_kernel_mla_gpu.py -k "issue_orders or refuses" 2>&1 | tail -3 | tee -a "$LOG"
V="qk_chains=2;qk_chains=4;pv_interleave=True;qk_chains=4 pv_interleave=True"
S="16h B32 8K,16h B8 32K,16h B128 4K,16h B1 32K,128h B8 8K,128h B32 4K"
for run in 1 2; do
  echo "== mla_probe run $run" | tee -a "$LOG"
  timeout 150 python3 benchmarks/mla_probe.py "$V" "$S" 2>&1 | tee -a "$LOG"
done
