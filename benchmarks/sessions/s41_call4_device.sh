#!/usr/bin/env bash
# Session 41, call 4: DeepSeek-V3's experts with each stage's k split set apart (call 3 forced both: slower);
# verify on DeepSeek-V3 tp 8 with the pools' NVML view counting what torch took from its own cache.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s41_call4_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 150 python3 benchmarks/probes/block_gemv_probe.py --experts --stages 2>&1 | grep -v -i warn | tee -a "$LOG"
python3 benchmarks/verify_device_run.py models --budget=120 --only=dsv3-tp8 2>&1 | tail -3 | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -8 | tee -a "$LOG"
python3 - "$OUT/results.jsonl" <<'PY' 2>&1 | tee -a "$LOG"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(json.dumps((r.get("result") or {}).get("allocation")))
PY
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s41_call4.jsonl" 2>/dev/null
