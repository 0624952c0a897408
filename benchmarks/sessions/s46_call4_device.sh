#!/usr/bin/env bash
# Session 46, call 4: the GEMV launch padding for every launch (the MoE gather and block-scaled ones too, the new
# default): their GPU tests, verify's decode step at batch 1 for two 16-bit MoE models both ways, verify on
# DeepSeek-V3 (one rank of tp 8).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s46_call4_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py tests/test_moe_one_token_gpu.py \
  -k "block_scaled or gather or one_token or chain" 2>&1 | tail -2 | tee -a "$LOG"
for m in zai-org/GLM-4.7-Flash deepseek-ai/DeepSeek-V2-Lite; do
  for spread in 1 0 1 0; do
    KVPLAN_GV_SPREAD=$spread timeout 100 python3 benchmarks/forward_profile.py $m --batch 1 --context 8192 --top 1 \
      2>&1 | grep "graph step" | sed "s|^|spread=$spread |" | tee -a "$LOG"
  done
done
timeout 120 python3 benchmarks/verify_device_run.py models --budget=110 --only=dsv3-tp8 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -4 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s46_call4.jsonl" 2>/dev/null
