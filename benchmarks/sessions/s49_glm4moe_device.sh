#!/usr/bin/env bash
# Session 49 (branch s49-glm4moe; prepared without a GPU, run by a later session with one): verify runs GLM-4.5 /
# 4.6 / 4.7 (glm4_moe) as vLLM 0.32.0 glm4_moe.py builds them: q / k / v biased and o_proj not, per-head q / k norms
# (GLM-4.6), rotary on half of each head (the 0.5 default), a float32 router with sigmoid scores chosen on the
# correction bias, the routed sum times routed_scaling_factor, one shared expert joined to the routed ones. In order of
# value if time runs out: the tiny glm4_moe on the GPU against the float64 reference (eager and CUDA graph; labels: no
# torch stand-in), then verify of GLM-4.5-Air's shape at tp 4 (one rank of four simulated on one GPU: 49.8 GiB of
# bf16 weights, vLLM's own 53,509,292,544 bytes), then GLM-4.6's shape at tp 8 (82.4 GiB, 88,474,617,472 bytes).
# Both configs are shape configs (benchmarks/configs/README.md: no verbatim config.json was found).
# ~9.5 minutes at most (timeouts sum to 560 s; run with timeout_s 600).
# Device: bash benchmarks/sessions/s49_glm4moe_device.sh   (writes $OUT/s49_glm4moe_h200.txt and $OUT/s49_glm4moe_*.json)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 COLUMNS=100
LOG=$OUT/s49_glm4moe_h200.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== the tiny glm4_moe on the GPU (tests/test_glm4_moe.py -k gpu, test_verify_gpu.py -k glm4_moe)" | tee -a "$LOG"
timeout 120 python3 -m pytest -q -p no:cacheprovider -rf tests/test_glm4_moe.py tests/test_verify_gpu.py \
  -k "gpu and glm4_moe or test_gpu_forward_runs_the_bundled_kernels" 2>&1 | tail -15 | tee -a "$LOG"
verify() {  # name, config, tp, timeout, the rank's bytes vLLM builds
  echo "== kvplan verify $2 -tp $3 (vLLM's rank: $5 bytes)" | tee -a "$LOG"
  timeout "$4" python3 -m kvplan verify "$2" -tp "$3" --format json >"$OUT/s49_glm4moe_$1.json" \
    2>"$OUT/s49_glm4moe_$1.err"
  echo "rc=$?" | tee -a "$LOG"
  tail -5 "$OUT/s49_glm4moe_$1.err" | tee -a "$LOG"
  python3 - "$OUT/s49_glm4moe_$1.json" <<'PY' 2>&1 | tee -a "$LOG"
import json, sys
r = json.load(open(sys.argv[1]))
print("rank", json.dumps(r.get("rank"))[:800])
print("verdict", json.dumps(r.get("verdict"))[:1500])
print("forward", json.dumps(r.get("forward"))[:2500])
PY
}
verify air_tp4 benchmarks/configs/zai-org--GLM-4.5-Air-shape.json 4 230 53509292544
verify glm46_tp8 benchmarks/configs/zai-org--GLM-4.6-shape.json 8 210 88474617472
