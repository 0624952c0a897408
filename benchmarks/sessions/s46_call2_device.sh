#!/usr/bin/env bash
# Session 46, call 2: verify's weight stream in decode order beside its shape-by-shape figure (gpu/gemm.py
# decode_order_stream): verify's GPU tests, then verify on the dense models and two MoE ones.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s46_call2_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== verify tests" | tee -a "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py 2>&1 | tail -2 | tee -a "$LOG"
echo "== verify" | tee -a "$LOG"
timeout 380 python3 benchmarks/verify_device_run.py models --budget=370 \
  --only=llama8b-8k,qwen3-14b,gemma3-27b,llama1b,dsv2-lite,gpt-oss-20b 2>&1 | tail -9 | tee -a "$LOG"
python3 - "$OUT/results.jsonl" <<'PY' 2>&1 | tee -a "$LOG"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line).get("result") or {}
    g = r.get("gemm") or {}
    pct = lambda d: {b: round(100 * v["fraction_of_read"], 1) for b, v in d.items()}
    print(r.get("model"), "shape by shape", pct(g.get("stream", {})), "decode order", pct(g.get("decode_order", {})))
PY
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s46_call2.jsonl" 2>/dev/null
