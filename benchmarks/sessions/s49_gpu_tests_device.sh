#!/usr/bin/env bash
# Session 49 (prepared without a GPU): the GPU tests of every verify forward pass this session wrote, in one call,
# before any real-model run (benchmarks/s49_<family>_device.sh each verify a real model of one family: one call each).
# Tiny models on the GPU against the float64 reference, eager and in CUDA graphs, and their labels: ERNIE-4.5
# (interleaved rotary), MiMo-V2 (sinks, keys wider than values: torch stand-in), Kimi Linear (KDA stand-in, MLA
# without RoPE through the MLA kernel), DeepSeek-V3.2 / GLM-5.2 (indexer, top-k, sparse MLA stand-in), GLM-4.x
# (q/k norms, partial rotary), Gemma 4 (512-wide stand-in layers, KV sharing), then the rest of verify's GPU tests
# as the control. Device: bash benchmarks/sessions/s49_gpu_tests_device.sh   (writes $OUT/s49_gpu_tests_h200.txt)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 COLUMNS=100
OUT=${OUT:-/tmp/kvplan-s49-gpu-tests}
mkdir -p "$OUT"
LOG=$OUT/s49_gpu_tests_h200.txt
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$LOG"
for f in test_verify_ernie test_verify_mimo_v2 test_verify_kda test_verify_sparse_mla test_glm4_moe \
         test_verify_gemma4; do
  [ -f "tests/$f.py" ] || continue
  echo "== $f" | tee -a "$LOG"
  timeout 70 python3 -m pytest -q -p no:cacheprovider -rfs "tests/$f.py" 2>&1 | tail -12 | tee -a "$LOG"
done
echo "== test_verify_gpu.py (every tiny model, the new families included)" | tee -a "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider -rfs tests/test_verify_gpu.py 2>&1 | tail -25 | tee -a "$LOG"
