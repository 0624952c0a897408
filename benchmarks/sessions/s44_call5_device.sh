#!/usr/bin/env bash
# Session 44, call 5: the row-owned GEMV with 3-4 CTAs an SM (one 16-row slice a CTA where slices outnumber 2 x SMs:
# Qwen3-14B's o [5120, 5120] has 320 on 132 SMs), against F.linear; the own tests at 3 / 4 CTAs an SM.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export PYTHONPATH=$PWD
LOG=$OUT/s44_call5_h200_2026-12-04.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$LOG"
echo "== probe" | tee -a "$LOG"
timeout 300 python3 benchmarks/own_ring_probe.py 2>&1 | tail -20 | tee -a "$LOG"
echo "== tests" | tee -a "$LOG"
timeout 150 python3 - <<'PY' 2>&1 | tail -5 | tee -a "$LOG"
import torch
from kvplan.kernels.gemv_stream import gemv_stream_plan
torch.manual_seed(0)
bad = 0
for n, k in ((5120, 5120), (1001, 1024), (6144, 1024), (14779, 256), (16, 256), (5376, 4096)):
    w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * k ** -0.5
    for cps, depth in ((3, 4), (3, 5), (4, 4)):
        plan = gemv_stream_plan(n, k, torch.bfloat16, device=0, own=True, ctas_per_sm=cps, depth=depth)
        for b in range(1, 9):
            x = torch.randn(b, k, device="cuda", dtype=torch.bfloat16)
            ref = x.double() @ w.double().t()
            for rep in range(2):
                err = (plan.run(x, w).double() - ref).abs().max().item() / ref.abs().max().item()
                bad += err > 1e-2
print("own 3-4 CTAs/SM cases with error > 1%:", bad)
PY
