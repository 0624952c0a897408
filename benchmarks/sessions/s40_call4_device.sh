#!/usr/bin/env bash
# Session 40, call 4 (calls 1-3 and two short diagnostics before it): block-scaled fp8 after the fixes. GPU tests
# of the group quantisation (its reference now divides truly), the block matmul forms and the tiny forwards; verify on
# DeepSeek-V3 and DeepSeek-R1 at tp 8 (one simulated rank; the estimate now counts the replicated weights); then
# DeepSeek-V3's batch-1 step kernel by kernel.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s40_call4_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_fp8_quant.py 2>&1 | tail -3 | tee -a "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py \
  -k "deepseek or block_matmul or llama_fp8 or mixtral or gpt_oss" 2>&1 | tail -4 | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --budget=200 --only=dsv3-tp8,dsr1-tp8 2>&1 | tail -4 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -12 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s40_call4.jsonl" 2>/dev/null
echo "== DeepSeek-V3 tp 8 (one rank), batch 1, 8K context, kernel by kernel" | tee -a "$LOG"
timeout 120 python3 benchmarks/forward_profile.py deepseek-ai/DeepSeek-V3 --tp 8 --batch 1 --context 8192 --top 22 \
  2>&1 | grep -v -i warn | tail -32 | tee -a "$LOG"
