#!/usr/bin/env bash
# Session 45, call 2: the chosen forms timed again in a pass of their own; verify on issue 13's whole list but the
# three dense models of call 1 (and gemma-3-27b again: its F.linear re-time had read 8% slower in call 1).
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s45_call2_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== verify" | tee -a "$LOG"
timeout 520 python3 benchmarks/verify_device_run.py models --budget=510 \
  --only=gemma3-27b,llama8b-32k-fp8,gpt-oss-20b,dsv2-lite,mixtral-tp2,llama70b-tp2,qwen3next-tp2 2>&1 | tail -9 \
  | tee -a "$LOG"
python3 benchmarks/verify_summary_md.py "$OUT/results.jsonl" 2>&1 | head -20 | tee -a "$LOG"
python3 - "$OUT/results.jsonl" <<'PY' 2>&1 | tee -a "$LOG"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line).get("result") or {}
    g = r.get("gemm") or {}
    print(r.get("model"), {b: round(100 * v["fraction_of_read"], 1) for b, v in g.get("stream", {}).items()})
    for s in g.get("shapes", []):
        if s["batch"] == 8 and "gemma" in str(r.get("model")):
            tb = {k[:-5][-24:]: round(v, 2) for k, v in s.items() if k.endswith(" TB/s")}
            print("  ", s["shape"], s["chosen"][-30:], tb)
PY
cp "$OUT/results.jsonl" "$OUT/verify_h200_2026-12-04_s45_call2.jsonl" 2>/dev/null
