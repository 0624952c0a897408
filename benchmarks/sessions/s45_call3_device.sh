#!/usr/bin/env bash
# Session 45, call 3: the final tree: verify's GPU tests; verify on the multimodal models (planned without the
# vision tower's profile pass, which verify does not build) and on Qwen3-14B again (the weight stream at batch 8).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s45_call3_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== verify tests" | tee -a "$LOG"
timeout 170 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py tests/test_gemv_stream_gpu.py -x \
  -k "not every_batch_twice" 2>&1 | tail -2 | tee -a "$LOG"
echo "== verify" | tee -a "$LOG"
timeout 300 python3 benchmarks/verify_device_run.py models --budget=290 \
  --only=gemma3-27b,llama4-scout-tp2,qwen3-14b 2>&1 | tail -5 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -12 | tee -a "$LOG"
python3 - "$OUT/results.jsonl" <<'PY' 2>&1 | tee -a "$LOG"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line).get("result") or {}
    g = r.get("gemm") or {}
    print(r.get("model"), {b: round(100 * v["fraction_of_read"], 1) for b, v in g.get("stream", {}).items()},
          [n for n in (r.get("verdict") or {}).get("notes", []) if "vision" in n])
PY
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s45_call3.jsonl" 2>/dev/null
