#!/usr/bin/env bash
# Session 36, call 5: the refused e4m3 launch (tiles cut between two CTAs per SM) under one change each, with and
# without programmatic dependent launch (benchmarks/probes/gemv_e4m3_check.py --variants).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s36_call5_h200_2026-12-03.txt
python3 benchmarks/probes/gemv_e4m3_check.py --variants 2>&1 | tail -7 | tee "$LOG"
KVPLAN_PDL=0 python3 benchmarks/probes/gemv_e4m3_check.py --variants 2>&1 | tail -7 | sed "s/^/PDL off: /" | tee -a "$LOG"
