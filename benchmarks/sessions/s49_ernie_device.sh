#!/usr/bin/env bash
# Session 49 (branch s49-ernie; prepared without a GPU, run by a later session with one): verify runs ERNIE-4.5
# (ernie4_5_moe and the dense ernie4_5): rotary on interleaved pairs (GPT-J style) in torch glue (the fused
# rope_cache.cu kernel turns halves), attention through the bundled kernel, a float32 router with softmax scores
# chosen on the correction bias, two shared experts joined to the routed ones. In order of value if time runs out:
# the tiny ERNIE models on the GPU against the float64 reference (eager and CUDA graph, labels: no torch stand-in),
# then verify of ERNIE-4.5-21B-A3B's shape at tp 1 (benchmarks/configs: not a verbatim config; 40.7 GiB of bf16
# weights), then the rest of verify's GPU tests as the control of the shared rope / attention changes.
# ~9.5 minutes at most (timeouts sum to 560 s; run with timeout_s 600).
# Device: bash benchmarks/sessions/s49_ernie_device.sh   (writes $OUT/s49_ernie_h200.txt and $OUT/s49_ernie_a3b_tp1.json)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 COLUMNS=100
LOG=$OUT/s49_ernie_h200.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== the tiny ERNIE-4.5 models on the GPU (tests/test_verify_ernie.py, test_verify_gpu.py -k ernie)" | tee -a "$LOG"
timeout 140 python3 -m pytest -q -p no:cacheprovider -rf tests/test_verify_ernie.py tests/test_verify_gpu.py \
  -k "ernie" 2>&1 | tail -15 | tee -a "$LOG"
echo "== kvplan verify ERNIE-4.5-21B-A3B's shape, tp 1" | tee -a "$LOG"
CFG=benchmarks/configs/baidu--ERNIE-4.5-21B-A3B-PT-shape.json
timeout 270 python3 -m kvplan verify "$CFG" --format json >"$OUT/s49_ernie_a3b_tp1.json" \
  2>"$OUT/s49_ernie_a3b_tp1.err"
echo "rc=$?" | tee -a "$LOG"
tail -5 "$OUT/s49_ernie_a3b_tp1.err" | tee -a "$LOG"
python3 - "$OUT/s49_ernie_a3b_tp1.json" <<'PY' 2>&1 | tee -a "$LOG"
import json, sys
r = json.load(open(sys.argv[1]))
print("rank (arch_weights_bytes: estimate 43,659,726,592)", json.dumps(r.get("rank"))[:800])
print("verdict", json.dumps(r.get("verdict"))[:1500])
print("forward", json.dumps(r.get("forward"))[:2500])
PY
echo "== the rest of verify's GPU tests (control)" | tee -a "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider -rf tests/test_verify_gpu.py -k "not ernie" 2>&1 | tail -8 \
  | tee -a "$LOG"
