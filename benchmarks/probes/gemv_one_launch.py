"""A few launches of one dense decode matmul for a profiler: the streaming GEMV or F.linear (cuBLAS).

    python3 benchmarks/probes/gemv_one_launch.py N K BATCH [gemv | linear] [CTAS_PER_SM] [DEPTH]

Eight weight copies in turn (2 GB at 28672 x 4096), so that every launch reads from HBM, not L2."""
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, ".")
from kvplan.kernels.gemv_stream import gemv_stream_plan  # noqa: E402

N, K, B = (int(a) for a in sys.argv[1:4])
FORM = sys.argv[4] if len(sys.argv) > 4 else "gemv"
CTAS = int(sys.argv[5]) if len(sys.argv) > 5 else 1
DEPTH = int(sys.argv[6]) if len(sys.argv) > 6 else None
ws = [torch.randn(N, K, dtype=torch.bfloat16, device="cuda") * K ** -0.5 for _ in range(8)]
x = torch.randn(B, K, dtype=torch.bfloat16, device="cuda")
plan = gemv_stream_plan(N, K, torch.bfloat16, ctas_per_sm=CTAS, depth=DEPTH)
for i in range(6):
    plan.run(x, ws[i % 8]) if FORM == "gemv" else F.linear(x, ws[i % 8])
torch.cuda.synchronize()
