#!/usr/bin/env bash
# Session 41, call 1: the streaming GEMV's block-scaled e4m3 kernel (DeepSeek-V3's dense linears at decode). Its GPU
# tests against float64 and verify's block matmul forms; memcheck over a few of its launches; verify on DeepSeek-V3
# at tp 8 (the forms chosen per shape, the weight stream, the allocation fields behind NVML's -3%); the batch-1 step
# kernel by kernel.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s41_call1_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py -k "block or e4m3" 2>&1 | tail -4 \
  | tee -a "$LOG"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py -k "block_matmul or deepseek" 2>&1 \
  | tail -4 | tee -a "$LOG"
echo "== memcheck (block-scaled GEMV)" | tee -a "$LOG"
K="block_scaled_every and (100-256-1-1 or 16-128-1-1 or 2112-7168-2-1)"
timeout 120 compute-sanitizer --report-api-errors no --tool memcheck python3 -m pytest -q -x -p no:cacheprovider \
  tests/test_gemv_stream_gpu.py -k "$K" 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --budget=120 --only=dsv3-tp8 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -8 | tee -a "$LOG"
python3 benchmarks/probes/verify_forms_summary.py "$OUT/results.jsonl" 2>&1 | head -60 | tee -a "$LOG"
python3 - "$OUT/results.jsonl" <<'PY' 2>&1 | tee -a "$LOG"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    def walk(d, path=""):
        if isinstance(d, dict):
            for k, v in d.items():
                if any(s in k for s in ("driver_free", "torch_reserved", "nvml_bytes", "pool_bytes", "stream")):
                    print(path + k, json.dumps(v)[:300])
                else:
                    walk(v, path + k + ".")
    walk(r.get("result") or {})
PY
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s41_call1.jsonl" 2>/dev/null
echo "== DeepSeek-V3 tp 8 (one rank), batch 1, 8K context, kernel by kernel" | tee -a "$LOG"
timeout 120 python3 benchmarks/forward_profile.py deepseek-ai/DeepSeek-V3 --tp 8 --batch 1 --context 8192 --top 16 \
  2>&1 | grep -v -i warn | tail -22 | tee -a "$LOG"
