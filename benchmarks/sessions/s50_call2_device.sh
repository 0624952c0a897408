#!/usr/bin/env bash
# Session 50, call 2: issue 13's ten models through verify on the current tree (session 47's list), then memcheck
# and racecheck on the MLA three-stage cases. Timeouts sum to 560 s.
# Device: bash benchmarks/sessions/s50_call2_device.sh   (writes $OUT/s50_call2_h200.txt, $OUT/verify_h200_s50.jsonl)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_REQUIRE_NVRTC=1
LOG=$OUT/s50_call2_h200.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 410 python3 benchmarks/verify_device_run.py models --budget=395 \
  --only=llama8b-8k,llama8b-32k-fp8,qwen3-14b,gemma3-27b,gpt-oss-20b,dsv2-lite,mixtral-tp2,llama70b-tp2,qwen3next-tp2,llama1b \
  2>&1 | tail -12 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -16 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_s50.jsonl" 2>/dev/null
SAN="compute-sanitizer --report-api-errors no"
echo "== memcheck, MLA three-stage cases" | tee -a "$LOG"
timeout 60 $SAN --tool memcheck python3 benchmarks/kernel_memcheck.py --mla3 2>&1 \
  | grep -E "ERROR SUMMARY|cases OK|Error|rror:" | head -8 | tee -a "$LOG"
echo "== racecheck, MLA three-stage cases" | tee -a "$LOG"
timeout 85 $SAN --tool racecheck --racecheck-report all --print-limit 5 python3 benchmarks/kernel_memcheck.py --mla3 \
  2>&1 | grep -E "RACECHECK SUMMARY|Potential|Race reported|cases OK|rror:" | head -12 | tee -a "$LOG"
