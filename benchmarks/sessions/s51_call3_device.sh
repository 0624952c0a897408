#!/usr/bin/env bash
# Session 51, call 3: lone (sequence, KV head) pairs of groups 9-16 on 8 token slices (decode_launch.py
# lone_leaves_heads_in_m): the kernel's GPU tests, the probe's default against heads in M, GLM-4.5-Air verified at
# tp 4. Timeouts sum to 440 s.
# Device: bash benchmarks/sessions/s51_call3_device.sh   (writes $OUT/s51_call3_h200.txt and JSON beside it)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
LOG=$OUT/s51_call3_h200.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== decode kernel GPU tests" | tee -a "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider -rf tests/test_kernel_gpu.py 2>&1 | tail -6 | tee -a "$LOG"
echo "== few KV heads, default vs heads in M" | tee -a "$LOG"
timeout 100 python3 benchmarks/probes/s51_few_kv_heads_probe.py --json "$OUT/s51_few_kv_heads_after.json" \
  --options "default,hm off,min_split 64" 2>&1 | tail -14 | tee -a "$LOG"
echo "== verify GLM-4.5-Air shape tp 4" | tee -a "$LOG"
timeout 190 python3 -m kvplan verify benchmarks/configs/zai-org--GLM-4.5-Air-shape.json -tp 4 --format json \
  >"$OUT/s51_verify_air_tp4.json" 2>"$OUT/s51_verify_air_tp4.err"
echo "rc=$?" | tee -a "$LOG"
python3 benchmarks/probes/verify_result_summary.py "$OUT/s51_verify_air_tp4.json" 2>&1 | head -30 | tee -a "$LOG"
