#!/usr/bin/env bash
# Session 51, call 2: the decode kernel at few (sequence, KV head) pairs with groups of 12-16 (GLM-4.x ranks), the MoE
# pairs kernel at 192-352 rows a rank, and the GPU tests of the float32 grouped-GEMM fix. Timeouts sum to 500 s.
# Device: bash benchmarks/sessions/s51_call2_device.sh   (writes $OUT/s51_call2_h200.txt, $OUT/s51_few_kv_heads.json)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
LOG=$OUT/s51_call2_h200.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== few KV heads" | tee -a "$LOG"
timeout 280 python3 benchmarks/probes/s51_few_kv_heads_probe.py --json "$OUT/s51_few_kv_heads.json" 2>&1 | tail -20 | tee -a "$LOG"
echo "== MoE at small intermediate" | tee -a "$LOG"
timeout 100 python3 benchmarks/probes/s51_moe_small_inter_probe.py 2>&1 | tail -8 | tee -a "$LOG"
echo "== float32 grouped GEMM fix: GPU tests" | tee -a "$LOG"
timeout 120 python3 -m pytest -q -p no:cacheprovider -rf tests/test_verify_sparse_mla.py tests/test_verify_model.py \
  -k "graph or gpu or grouped" 2>&1 | tail -6 | tee -a "$LOG"
