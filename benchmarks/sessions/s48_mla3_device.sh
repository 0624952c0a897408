#!/usr/bin/env bash
# Session 48 (branch s48-mla3; prepared without a GPU, run by the next session with one): the bf16 MLA warpgroup
# kernel's opt-in third stage at 16 heads a CTA (paged_mla_decode_plan(..., wg_stages=3): value blocks in a ring of
# 3 stages, rope blocks in 2 slots with P over the step's, 232,448 bytes). In order of what matters most if time
# runs out: its GPU tests (own process: a trap would poison the rest), the probe (default / no early refill / three
# stages / three stages + early refill; DRAM and L2-resident), memcheck and racecheck on its two sanitizer cases, the
# other MLA GPU tests, a second probe run. ~8 minutes at most (timeouts sum to 570 s).
# Device: bash benchmarks/sessions/s48_mla3_device.sh   (writes $OUT/s48_mla3_h200_2026-12-04.txt)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_REQUIRE_NVRTC=1
LOG=$OUT/s48_mla3_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== three-stage GPU tests (and the refusals)" | tee -a "$LOG"
timeout 120 python3 -m pytest -q -p no:cacheprovider -rf tests/test_kernel_mla_gpu.py \
  -k "three_stages or refuses_what" 2>&1 | tail -12 | tee -a "$LOG"
V="early_free=0;wg_stages=3;wg_stages=3 early_free=2"
S="16h B32 8K,16h B8 32K,16h B128 4K,16h B1 32K"
echo "== mla_probe run 1 ({} = the default: two stages, early refill)" | tee -a "$LOG"
timeout 90 python3 benchmarks/mla_probe.py "$V" "$S" 2>&1 | grep -v Warn | tee -a "$LOG"
SAN="compute-sanitizer --report-api-errors no"
echo "== memcheck, three-stage cases" | tee -a "$LOG"
timeout 60 $SAN --tool memcheck python3 benchmarks/kernel_memcheck.py --mla3 2>&1 \
  | grep -E "ERROR SUMMARY|cases OK|Error|rror:" | head -8 | tee -a "$LOG"
echo "== racecheck, three-stage cases" | tee -a "$LOG"
timeout 90 $SAN --tool racecheck --racecheck-report all --print-limit 5 python3 benchmarks/kernel_memcheck.py --mla3 \
  2>&1 | grep -E "RACECHECK SUMMARY|Potential|Race reported|cases OK|rror:" | head -12 | tee -a "$LOG"
echo "== the other MLA GPU tests" | tee -a "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider -rf tests/test_kernel_mla_gpu.py -k "not three_stages" 2>&1 \
  | tail -8 | tee -a "$LOG"
echo "== mla_probe run 2" | tee -a "$LOG"
timeout 60 python3 benchmarks/mla_probe.py "$V" "$S" 2>&1 | grep -v Warn | tee -a "$LOG"
