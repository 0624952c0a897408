"""A few small streaming-GEMV launches for compute-sanitizer (racecheck / memcheck), one form:

    compute-sanitizer --tool racecheck python3 benchmarks/gemv_racecheck.py [evict_first=0] [depth=6] [rotate=1] [own=1]

Shapes whose CTAs share tiles at both ends, shapes shorter than the ring and shapes that refill it (16 and 31
steps a CTA on 132 SMs), batches 1 and 8, checked against
float64 (prints the worst relative error)."""
import sys

import torch

sys.path.insert(0, ".")
from kvplan.kernels.gemv_stream import gemv_stream_plan  # noqa: E402
from kvplan.kernels.skinny import reference_skinny_gemm  # noqa: E402

BOOLS = ("evict_first", "rotate", "own")  # the plan's True/False options; the rest take integers (depth, mma_tiles)
opts = {k: bool(int(v)) if k in BOOLS else int(v) for k, v in (a.split("=") for a in sys.argv[1:])}
worst = 0.0
# 1024, 4096: refills; own: 16x64, 3x192, 160x2880 (one slice a CTA) and 5120x2880 (groups of two slices) run boxes
# reaching past k (read as zeros)
for n, k in ((16, 64), (3, 192), (1500, 2048), (1024, 8192), (4096, 4096), (14779, 256), (160, 2880), (5120, 2880)):
    w = torch.randn(n, k, dtype=torch.bfloat16, device="cuda") * k ** -0.5
    plan = gemv_stream_plan(n, k, torch.bfloat16, **opts)
    for b in (1, 8):
        x = torch.randn(b, k, dtype=torch.bfloat16, device="cuda")
        ref = reference_skinny_gemm(x, w)
        for _ in range(2):
            got = plan.run(x, w).double()
            worst = max(worst, float(((got - ref).norm(dim=-1) / ref.norm(dim=-1)).max()))
torch.cuda.synchronize()
print(f"gemv {opts or 'default'}: worst rel err {worst:.2e}")
