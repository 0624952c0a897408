#!/usr/bin/env bash
# Session 43, call 5: the gather form's pairs read once into the lanes of each warp, a step's expert and weight by
# shuffle (call 4 read them through L2 every step: GLM-4.7-Flash 36 -> 41 us a layer). Tests, sanitizers, probe,
# verify on the models whose experts take it (16-bit, >= 1,536 intermediate values a rank).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s43_call5_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== tests" | tee -a "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_moe_one_token_gpu.py 2>&1 | tail -4 | tee -a "$LOG"
echo "== probe" | tee -a "$LOG"
timeout 150 python3 benchmarks/probes/moe_one_token_probe.py 2>&1 | tail -8 | tee -a "$LOG"
for tool in memcheck racecheck; do
  echo "== $tool" | tee -a "$LOG"
  timeout 70 compute-sanitizer --report-api-errors no --tool $tool python3 -m pytest -q -x -p no:cacheprovider \
    tests/test_moe_one_token_gpu.py -k "tiny and bfloat16 or relu2 and float16 or past or graph" 2>&1 | tail -3 \
    | tee -a "$LOG"
done
echo "== verify" | tee -a "$LOG"
ONLY=glm47-flash,mixtral-tp2,nemotron3-nano
timeout 200 python3 benchmarks/verify_device_run.py models --budget=190 --only=$ONLY 2>&1 | tail -7 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -18 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s43_call5.jsonl" 2>/dev/null
