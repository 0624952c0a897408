#!/usr/bin/env bash
# Session 43, call 4: the gather form as in call 1 again (the next launch released at the top; call 3's release after
# the wait, which reading the ids early needs, cost 5-20 us a layer), ids and weights read through L2. The one-token
# GEMVs for 16-bit experts of >= 1,536 intermediate values a rank (ffn.ONE_TOKEN_MIN_INTER). Tests, sanitizers,
# probe, verify on the 16-bit MoE models.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s43_call4_h200_2026-12-04.txt
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
ONLY=glm47-flash,qwen3next-tp2,dsv2-lite,mixtral-tp2,nemotron3-nano
timeout 200 python3 benchmarks/verify_device_run.py models --budget=190 --only=$ONLY 2>&1 | tail -7 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -18 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s43_call4.jsonl" 2>/dev/null
