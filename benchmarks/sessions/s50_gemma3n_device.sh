#!/usr/bin/env bash
# Session 50 (branch s50-gemma3n; prepared without a GPU, run by a later session with one): verify runs Gemma 3n's
# language model (it refused it before): four AltUp streams predicted and corrected around every layer, Laurel
# blocks, activation-sparse MLPs (the first 10 layers at 0.95), KV-sharing layers 20-29 reading layer 18 / 19's
# cache, per-layer inputs, soft-capped logits; the towers held as a 1.83 GiB buffer, not run. Every attention layer
# is 256 wide: the bundled decode and RoPE + cache-write kernels. The sharing layers' q path and the sparse
# activation are torch (labelled NOT a CUDA kernel: decode is then not judged); capacity and the budget terms are.
#   1. the GPU tests: the tiny Gemma 3n in bf16 against float64, eager and as a CUDA graph
#      (tests/test_verify_gemma3n.py, and its TINY entry through tests/test_verify_gpu.py);
#   2. kvplan verify google/gemma-3n-E2B --context 8192 (one H200: 8.26 GiB of language model + 1.83 GiB of towers
#      + the 120 MiB per-layer-input buffer).
# What to look at: verdict.capacity_confirmed, allocation errors (< 0.5%), the weights term (rank.arch_weights_bytes
# 8,870,488,256 + vision_held_bytes 1,966,563,008 = the estimate's 10,837,051,264, plus the buffer), budget's
# responsible term, forward labels, decode and prefill times.
# Device: bash benchmarks/sessions/s50_gemma3n_device.sh   (writes $OUT/s50_gemma3n_h200.txt, $OUT/gemma3n_e2b.json/.err)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 COLUMNS=100
LOG=$OUT/s50_gemma3n_h200.txt
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$LOG"
echo "== GPU tests (tiny Gemma 3n, eager and graph)" | tee -a "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider -rf tests/test_verify_gemma3n.py tests/test_verify_gpu.py \
  -k "on_the_gpu or (on_gpu_matches and gemma3n)" 2>&1 | tail -12 | tee -a "$LOG"
echo "== kvplan verify google/gemma-3n-E2B --context 8192" | tee -a "$LOG"
timeout 300 python3 -m kvplan verify google/gemma-3n-E2B --context 8192 --format json > "$OUT/gemma3n_e2b.json" \
  2> "$OUT/gemma3n_e2b.err"
echo "rc $?" | tee -a "$LOG"
tail -4 "$OUT/gemma3n_e2b.err" | cut -c1-300 | tee -a "$LOG"
python3 benchmarks/probes/verify_result_summary.py "$OUT/gemma3n_e2b.json" 2>&1 | tee -a "$LOG"
