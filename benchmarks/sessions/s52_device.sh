#!/usr/bin/env bash
# Session 52 (prepared, not run: no GPU lent): Qwen3.5-9B through verify now that its gated-DeltaNet recurrent state is
# float32 in its own pool (vLLM's mamba_ssm_dtype; the state layout of kvplan/verify/layout.py, decoded in torch by
# kvplan/gpu/deltanet.py since the step kernel reads one pool), and the two-pool CPU test on the GPU. Run after
# benchmarks/sessions/s51_call3_device.sh. Timeouts sum to 300 s.
# Device: bash benchmarks/sessions/s52_device.sh   (writes $OUT/s52_h200.txt and JSON beside it)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
LOG=$OUT/s52_h200.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== DeltaNet tests (the step kernel, two state pools)" | tee -a "$LOG"
timeout 100 python3 -m pytest -q -p no:cacheprovider -rf tests/test_deltanet_step.py tests/test_verify_deltanet_pools.py \
  2>&1 | tail -5 | tee -a "$LOG"
echo "== verify Qwen/Qwen3.5-9B (float32 recurrent state)" | tee -a "$LOG"
timeout 200 python3 -m kvplan verify Qwen/Qwen3.5-9B -c 8192 --format json >"$OUT/s52_verify_qwen35_9b.json" \
  2>"$OUT/s52_verify_qwen35_9b.err"
echo "rc=$?" | tee -a "$LOG"
python3 benchmarks/probes/verify_result_summary.py "$OUT/s52_verify_qwen35_9b.json" 2>&1 | head -30 | tee -a "$LOG"
