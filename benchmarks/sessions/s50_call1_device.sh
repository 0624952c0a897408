#!/usr/bin/env bash
# Session 50, call 1 (first GPU since session 47): every verify forward written in session 49 on the GPU (tiny models
# against float64, eager and CUDA graphs; one pytest process so kernels compile once), then the MLA third stage
# of session 48 (its GPU tests in their own process, then the probe). Timeouts sum to 540 s.
# Device: bash benchmarks/sessions/s50_call1_device.sh   (writes $OUT/s50_call1_h200.txt)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 COLUMNS=100 KVPLAN_REQUIRE_NVRTC=1
LOG=$OUT/s50_call1_h200.txt
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$LOG"
echo "== session 49's forwards + test_verify_gpu.py" | tee -a "$LOG"
timeout 320 python3 -m pytest -q -p no:cacheprovider -rfE --durations=8 tests/test_verify_ernie.py \
  tests/test_verify_mimo_v2.py tests/test_verify_kda.py tests/test_verify_sparse_mla.py tests/test_glm4_moe.py \
  tests/test_verify_gemma4.py tests/test_verify_gpu.py 2>&1 | tail -45 | tee -a "$LOG"
echo "== MLA three-stage GPU tests (and the refusals)" | tee -a "$LOG"
timeout 110 python3 -m pytest -q -p no:cacheprovider -rf tests/test_kernel_mla_gpu.py \
  -k "three_stages or refuses_what" 2>&1 | tail -12 | tee -a "$LOG"
V="early_free=0;wg_stages=3;wg_stages=3 early_free=2"
S="16h B32 8K,16h B8 32K,16h B128 4K,16h B1 32K"
echo "== mla_probe ({} = the default: two stages, early refill)" | tee -a "$LOG"
timeout 100 python3 benchmarks/mla_probe.py "$V" "$S" 2>&1 | grep -v Warn | tee -a "$LOG"
