#!/usr/bin/env bash
# Session 42, call 4: a joined fp8 expert's passes one per CTA row (call 3: 84 tokens 803 -> 582 us a layer). Row-tile
# GPU tests (a joined expert over 10 CTA rows at 300 tokens); the probe for fp8 (DeepSeek-V3) and 16-bit
# (Qwen3-Next tp 2: is one pass a CTA row better there too?); verify on DeepSeek-V3 tp 8; its batch-84 step.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s42_call4_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_gpu.py -k "fp8 or rows" 2>&1 | tail -3 \
  | tee -a "$LOG"
timeout 120 python3 benchmarks/probes/fp8_experts_probe.py 2>&1 | grep -v -i warn | tee -a "$LOG"
timeout 120 python3 benchmarks/probes/fp8_experts_probe.py --qwen3-next 2>&1 | grep -v -i warn | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --budget=80 --only=dsv3-tp8 2>&1 | tail -2 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -3 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s42_call4.jsonl" 2>/dev/null
echo "== DeepSeek-V3 tp 8 (one rank), batch 84, 8K context" | tee -a "$LOG"
timeout 100 python3 benchmarks/forward_profile.py deepseek-ai/DeepSeek-V3 --tp 8 --batch 84 --context 8192 --top 8 \
  2>&1 | grep -v -i warn | tail -11 | tee -a "$LOG"
