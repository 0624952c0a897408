"""Small launches of the Mamba-2 step kernel (mamba_step.cu), for compute-sanitizer (memcheck, racecheck, synccheck):

    compute-sanitizer --tool racecheck python3 benchmarks/probes/mamba_step_check.py
"""

import sys

import torch

sys.path.insert(0, ".")
from kvplan.kernels.mamba_step import MambaStepPlan  # noqa: E402


def main() -> None:
    total = 0.0
    for heads, groups, p, n, b, state in ((16, 2, 64, 128, 3, torch.bfloat16), (6, 3, 24, 64, 2, torch.float32)):
        plan = MambaStepPlan(heads, groups, p, n, 4, "bfloat16", str(state).split(".")[1])
        proj = torch.randn(b, heads * p + plan.channels + heads, device="cuda", dtype=torch.bfloat16)
        z, xbc, dt = proj.split([heads * p, plan.channels, heads], dim=-1)
        pool = torch.randn(b + 2, plan.row_elements, device="cuda").to(state)
        weights = [torch.randn(*s, device="cuda", dtype=torch.bfloat16) for s in
                   ((plan.channels, 4), (plan.channels,), (heads,), (heads,), (heads,), (heads * p,))]
        out = plan.run(xbc, dt, z, pool, torch.arange(b, device="cuda", dtype=torch.int32) + 1, *weights, 1e-5)
        total += float(out.float().abs().sum())
    torch.cuda.synchronize()
    print("ok", total)


if __name__ == "__main__":
    main()
