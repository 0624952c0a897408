#!/usr/bin/env bash
# Session 49 (branch s49-gemma4; prepared without a GPU, run by a later session with one): verify runs Gemma 4 (it
# refused it before): per-layer head shapes (sliding 256, full 512), the full layers' proportional RoPE, KV-sharing
# layers with no cache of their own, per-layer inputs, the MoE block beside the MLP, soft-capped logits. The 512-wide
# layers' decode attention is torch over gathered pages (labelled NOT a CUDA kernel: decode is then not judged);
# capacity and the budget terms are. In order of what matters most if time runs out:
#   1. the GPU tests: the tiny Gemma 4 (sharing + per-layer inputs) and its MoE form in bf16 against float64, eager
#      and as a CUDA graph (tests/test_verify_gemma4.py), and the TINY entry through tests/test_verify_gpu.py;
#   2. kvplan verify google/gemma-4-31B-it --context 8192 (one H200: 57.4 GiB of weights, 1.07 GiB vision held);
#   3. kvplan verify google/gemma-4-E4B-it --context 8192 (13.9 GiB + the 168 MiB per-layer-input buffer).
# Timeouts sum to 560 s. What to look at: verdict.capacity_confirmed, allocation errors (< 0.5%), budget's responsible
# term, forward labels (the 512-wide ones say torch; the 256-wide ones the bundled kernels), prefill ttft_ms (the
# 512-wide prefill runs torch SDPA in query blocks of 1,024: an OOM or a long TTFT there is the first suspect).
# Device: bash benchmarks/sessions/s49_gemma4_device.sh   (writes $OUT/s49_gemma4_h200.txt, $OUT/gemma4_{31b,e4b}.json/.err)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 COLUMNS=100
LOG=$OUT/s49_gemma4_h200.txt
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$LOG"
echo "== GPU tests (tiny Gemma 4, eager and graph)" | tee -a "$LOG"
timeout 140 python3 -m pytest -q -p no:cacheprovider -rf tests/test_verify_gemma4.py tests/test_verify_gpu.py \
  -k "on_the_gpu or (on_gpu_matches and gemma4)" 2>&1 | tail -12 | tee -a "$LOG"
for run in "31b google/gemma-4-31B-it 250" "e4b google/gemma-4-E4B-it 170"; do
  set -- $run
  echo "== kvplan verify $2 --context 8192" | tee -a "$LOG"
  timeout "$3" python3 -m kvplan verify "$2" --context 8192 --format json > "$OUT/gemma4_$1.json" \
    2> "$OUT/gemma4_$1.err"
  echo "rc $?" | tee -a "$LOG"
  tail -4 "$OUT/gemma4_$1.err" | cut -c1-300 | tee -a "$LOG"
  python3 benchmarks/probes/verify_result_summary.py "$OUT/gemma4_$1.json" 2>&1 | tee -a "$LOG"
done
