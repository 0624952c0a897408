#!/usr/bin/env bash
# Session 35, calls 1-2 (CALL=2 names the log of the second): the Mamba-2 step kernel and verify's Nemotron-H
# forward on the GPU (issue 13).
# GPU tests (step kernels, verify's tiny forwards vs float64 incl. nemotron_h, end-to-end), sanitizers over small
# step launches, the step kernel against the torch path at Nemotron-H-8B's shapes, then kvplan verify on it.
set -u
cd "$(dirname "$0")/../.."  # the repository root
LOG=$OUT/s35_call${CALL:-1}_h200_2026-12-03.txt
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch; print('torch', torch.__version__)"
  python3 -m pytest -q -x -p no:cacheprovider tests/test_mamba_step.py tests/test_deltanet_step.py \
    tests/test_verify_gpu.py -k "mamba or step or forward_on_gpu" 2>&1 | tail -8
  for tool in memcheck racecheck synccheck; do
    echo "== $tool"
    compute-sanitizer --report-api-errors no --tool $tool python3 benchmarks/probes/mamba_step_check.py 2>&1 | tail -3
  done
  python3 benchmarks/probes/mamba_step_time.py --batches=1,16,64,256,630 2>&1 | tail -6
} 2>&1 | tee "$LOG"
python3 benchmarks/verify_device_run.py models --only=nemotron-h-8b --budget=200 2>&1 | tail -5 | tee -a "$LOG"
tail -c 3000 "$OUT/progress.txt" >> "$LOG" 2>/dev/null
python3 -c "
import json
for line in open('$OUT/results.jsonl'):
    r = json.loads(line); v = r.get('result') or {}
    print(r.get('name'), r.get('rc'), r.get('wall_s'), json.dumps(v.get('verdict')), json.dumps(v.get('forward')))
    for p in (v.get('decode') or {}).get('points', []): print('decode', p.get('batch'), p.get('measured_ms'), p.get('estimate_ms'))
    print('prefill', json.dumps(v.get('prefill')))
    print('terms', json.dumps(v.get('terms')))
    print('gemm', json.dumps((v.get('gemm') or {}).get('stream')))
    print('error', r.get('error'))
" 2>&1 | tee -a "$LOG"
