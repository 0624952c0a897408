#!/usr/bin/env bash
# Session 48 (branch s48-vminimax; prepared without a GPU, run by the next session with one): verify runs MiniMax-M2
# (MiniMaxAI/MiniMax-M2.7: q and k RMS-normed over the whole projections, rotary on 64 of 128 dims, a float32 router
# with sigmoid scores chosen on the correction bias, block-scaled fp8). In order of what matters most if time runs
# out: the tiny MiniMax-M2 on the GPU against the float64 reference (eager and CUDA graph), the real model at tp 4
# (one rank of four simulated on one H200: 53.7 GiB of weights), GLM-4.7-Flash as the control of the MoE change
# (its activations' dtype now read from the layer's norm), then the rest of verify's GPU tests. ~9 minutes at most
# (timeouts sum to 560 s).
# Device: bash benchmarks/sessions/s48_verify_minimax_device.sh   (writes $OUT/s48_verify_minimax_h200_2026-12-04.txt)
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
LOG=$OUT/s48_verify_minimax_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== the tiny MiniMax-M2 on the GPU (eager, graph)" | tee -a "$LOG"
timeout 90 python3 -m pytest -q -p no:cacheprovider -rf tests/test_verify_gpu.py -k "minimax" 2>&1 | tail -12 \
  | tee -a "$LOG"
echo "== kvplan verify MiniMaxAI/MiniMax-M2.7 --tp 4, then GLM-4.7-Flash (control)" | tee -a "$LOG"
timeout 300 python3 benchmarks/verify_device_run.py models --budget=290 --only=minimax-m27-tp4,glm47-flash 2>&1 \
  | tail -6 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -8 | tee -a "$LOG"
python3 - "$OUT/results.jsonl" <<'PY' 2>&1 | tee -a "$LOG"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    res = r.get("result") or {}
    print(r["name"], "rc", r["rc"], "weights a rank", (res.get("rank") or {}).get("weights_bytes_per_gpu"),
          "verdict", json.dumps(res.get("verdict"))[:1200])
    print("  forward", json.dumps(res.get("forward"))[:1500])
    if r["rc"] != 0:
        print(r.get("stderr_tail", "")[-1500:])
PY
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s48_minimax.jsonl" 2>/dev/null
echo "== the rest of verify's GPU tests" | tee -a "$LOG"
timeout 170 python3 -m pytest -q -p no:cacheprovider -rf tests/test_verify_gpu.py -k "not minimax" 2>&1 | tail -8 \
  | tee -a "$LOG"
