#!/usr/bin/env bash
# Session 37, call 6: the gather-sum kernel inside the tiny Nemotron-H MoE forward against torch's combine, call by
# call (call 5: switching it off alone brings the forward from 1.146 to 0.012 of the reference); its unit tests.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s37_call6_h200_2026-12-03.txt
python3 benchmarks/probes/gather_sum_check.py nemotron_h_moe 2>&1 | grep -v Warn | cut -c1-330 | tail -14 | tee "$LOG"
python3 -m pytest -q -p no:cacheprovider tests/test_prefill_kernels.py -k gather_sum 2>&1 | tail -3 | tee -a "$LOG"
