"""torch.topk sorted vs unsorted on router shapes (CUDA graphs, us per call): python3 benchmarks/probes/topk_probe.py"""
import sys

import torch

sys.path.insert(0, ".")
from kvplan.gpu.timing import capture, time_replays  # noqa: E402

for t, e, k in [(1, 32, 4), (1, 64, 6), (1, 512, 10), (599, 32, 4), (8192, 32, 4), (8192, 64, 6), (8192, 512, 10)]:
    p = torch.softmax(torch.randn(t, e, device="cuda"), -1)
    row = [f"T={t} E={e} k={k}"]
    for s in (True, False):
        g, _ = capture(lambda: [torch.topk(p, k, dim=-1, sorted=s) for _ in range(20)])
        row.append(f"sorted={s} {time_replays(g.replay, reps=10)['ms'] * 1e3 / 20:.1f} us")
        del g
    print("  ".join(row), flush=True)
