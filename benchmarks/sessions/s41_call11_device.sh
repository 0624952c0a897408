#!/usr/bin/env bash
# Session 41, call 11: verify's GPU tests on the final tree (every tiny forward, the block matmul forms); DeepSeek-V3
# at tp 8, batch 84 (its max concurrency at 8K), kernel by kernel: where the +137% at max concurrency goes.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s41_call11_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 170 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py tests/test_gemv_stream_gpu.py -k \
  "not (every_batch_twice and (bfloat16 or float16))" 2>&1 | tail -3 | tee -a "$LOG"
echo "== DeepSeek-V3 tp 8 (one rank), batch 84, 8K context, kernel by kernel" | tee -a "$LOG"
timeout 90 python3 benchmarks/forward_profile.py deepseek-ai/DeepSeek-V3 --tp 8 --batch 84 --context 8192 --top 14 \
  2>&1 | grep -v -i warn | tail -18 | tee -a "$LOG"
