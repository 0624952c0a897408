"""How long one residual add + RMS norm takes on the GPU, alone: a CUDA graph of `--launches` calls on distinct
buffers (so each call reads fresh rows), us per call, for torch's add + F.rms_norm, F.rms_norm alone and
kvplan's add + RMS norm kernel (kvplan/kernels/norm.cu). In verify's decode step the norm read 6-10 us per
launch; this says whether that is the kernel or what runs around it.

    python3 benchmarks/probes/norm_probe.py [--launches 200] [--kernel-only]
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, ".")
from kvplan.gpu.timing import capture, time_replays  # noqa: E402
from kvplan.kernels.norm import AddRmsNormPlan  # noqa: E402


def main(argv) -> None:
    n = int(argv[argv.index("--launches") + 1]) if "--launches" in argv else 200
    kernel_only = "--kernel-only" in argv
    print(f"{'hidden':>6} {'tokens':>6}  {'add+F.rms_norm':>14} {'F.rms_norm':>10} {'kvplan':>8}   us per call")
    for hidden in (2048, 4096, 8192):
        plan = AddRmsNormPlan(hidden, "bfloat16")
        w = torch.rand(hidden, device="cuda", dtype=torch.bfloat16)
        for tokens in (1, 8, 64):
            xs = [torch.randn(tokens, hidden, device="cuda", dtype=torch.bfloat16) for _ in range(n)]
            hs = [torch.randn(tokens, hidden, device="cuda", dtype=torch.bfloat16) for _ in range(n)]
            forms = {"kvplan": lambda: [plan.run(x, h, w, 1e-6) for x, h in zip(xs, hs)]}
            if not kernel_only:
                forms["torch"] = lambda: [F.rms_norm(x + h, (hidden,), w, 1e-6) for x, h in zip(xs, hs)]
                forms["norm"] = lambda: [F.rms_norm(x, (hidden,), w, 1e-6) for x in xs]
            us = {}
            for name, fn in forms.items():
                graph, _ = capture(fn)
                us[name] = time_replays(graph.replay, reps=10)["ms"] * 1e3 / n
                del graph
            print(f"{hidden:>6} {tokens:>6}  {us.get('torch', 0):>14.2f} {us.get('norm', 0):>10.2f} "
                  f"{us['kvplan']:>8.2f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
