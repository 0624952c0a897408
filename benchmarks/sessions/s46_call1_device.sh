#!/usr/bin/env bash
# Session 46, call 1, on branch gemv-balanced-s46 (git checkout gemv-balanced-s46 && bash benchmarks/sessions/s46_call1_device.sh):
# the balanced row-owned GEMV (own=True, balanced=True; gemv_stream.cu gemv_bal), not merged: its GPU tests, memcheck
# and racecheck of one launch with slices cut between CTAs, then benchmarks/balanced_own_probe.py.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s46_call1_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py -x -k "balanced" 2>&1 | tail -3 \
  | tee -a "$LOG"
cat > /tmp/bal_one.py <<'PY'
import torch
from kvplan.kernels.gemv_stream import gemv_stream_plan
from kvplan.kernels.skinny import reference_skinny_gemm
for n, k, c in ((2048, 8192, 2), (40, 16384, 3), (5120, 5120, 3)):
    w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * k ** -0.5
    x = torch.randn(8, k, device="cuda", dtype=torch.bfloat16)
    p = gemv_stream_plan(n, k, torch.bfloat16, device=0, own=True, balanced=True, ctas_per_sm=c)
    for _ in range(2):
        y = p.run(x, w)
    ref = reference_skinny_gemm(x, w)
    print(n, k, c, float(((y.double() - ref).norm(dim=-1) / ref.norm(dim=-1)).max()))
PY
for tool in memcheck racecheck; do
  timeout 150 compute-sanitizer --tool $tool python3 /tmp/bal_one.py 2>&1 | tail -5 | sed "s/^/$tool: /" | tee -a "$LOG"
done
timeout 240 python3 benchmarks/balanced_own_probe.py --batches 1,8 2>&1 | tee -a "$LOG"
