#!/usr/bin/env bash
# Session 41, call 5: the MoE pairs kernel's down launch with fewer warps where its k is short (skinny_config.
# pair_warps: DeepSeek-V3 tp 8 two, Qwen3-Next tp 2 four). GPU tests of the skinny / MoE kernels and the tiny MoE
# forwards; memcheck and racecheck over fp8 and 16-bit pair-slot launches with two warps; DeepSeek-V3's experts
# (block_gemv_probe.py, calls 2-4 before: 50.2-50.6 us a layer at batch 1); verify on DeepSeek-V3 tp 8 and
# Qwen3-Next tp 2; DeepSeek-V3's batch-1 step kernel by kernel.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s41_call5_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_gpu.py 2>&1 | tail -3 | tee -a "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py \
  -k "deepseek or qwen3_next or mixtral or gpt_oss or glm" 2>&1 | tail -3 | tee -a "$LOG"
K="(test_moe_pairs_fp8 and small and 3) or (test_moe_pairs_random_routing and 9-silu-None)"
for tool in memcheck racecheck; do
  echo "== $tool (pair slots, two warps)" | tee -a "$LOG"
  timeout 100 compute-sanitizer --report-api-errors no --tool $tool python3 -m pytest -q -x -p no:cacheprovider \
    tests/test_skinny_gpu.py -k "$K" 2>&1 | tail -2 | tee -a "$LOG"
done
timeout 120 python3 benchmarks/probes/block_gemv_probe.py --experts --default-only 2>&1 | grep -v -i warn | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --budget=200 --only=dsv3-tp8,qwen3next-tp2 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -10 | tee -a "$LOG"
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s41_call5.jsonl" 2>/dev/null
echo "== DeepSeek-V3 tp 8 (one rank), batch 1, 8K context, kernel by kernel" | tee -a "$LOG"
timeout 120 python3 benchmarks/forward_profile.py deepseek-ai/DeepSeek-V3 --tp 8 --batch 1 --context 8192 --top 12 \
  2>&1 | grep -v -i warn | tail -16 | tee -a "$LOG"
