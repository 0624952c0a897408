#!/usr/bin/env bash
# Session 43, call 2: the one-token experts' down launch takes the activation in (act(gate) * up from the gate/up
# output as it is read) and reads the router's ids before its wait: two launches a layer for 16-bit experts. Tests,
# sanitizers, the probe against the pairs kernel, verify on the 16-bit MoE models (fp8 keeps the pairs kernel).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s43_call2_h200_2026-12-04.txt
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
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s43_call2.jsonl" 2>/dev/null
