"""The once-a-step sort of block tables (kvplan/kernels/page_order.py): page_order.cu against the torch ops that
define its result, on the standing table's GQA shapes (16-token pages, the plan's runs), CUDA graphs, µs.

    python3 benchmarks/probes/sort_pages_time.py            # the timings
    python3 benchmarks/probes/sort_pages_time.py --check    # small sorts against the torch ops (compute-sanitizer)
"""

from __future__ import annotations

import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from kernel_vs_flashinfer import time_calls  # noqa: E402

from kvplan.kernels import paged_decode_plan  # noqa: E402
from kvplan.kernels.page_order import MAX_RUN, sort_with_torch  # noqa: E402

DEV = torch.device("cuda")
SHAPES = [("B1 4K", 1, 4096), ("B1 128K", 1, 131072), ("B8 8K", 8, 8192), ("B32 4K", 32, 4096),
          ("B64 8K", 64, 8192), ("B16 32K", 16, 32768), ("B256 32K", 256, 32768)]


def check():
    """Small tables through the kernel (runs of 1-1,024 pages, in place and not) against the torch ops."""
    from kvplan.kernels import sort_full_pages

    g = torch.Generator(device=DEV).manual_seed(7)
    for B, W, run in ((3, 40, 7), (2, 300, 64), (1, 2100, 1024), (5, 9, 1000), (4, 33, 1)):
        bt = torch.randint(0, 500, (B, W), device=DEV, generator=g, dtype=torch.int32)
        sl = torch.randint(0, W * 16 + 20, (B,), device=DEV, generator=g, dtype=torch.int32)
        want = sort_with_torch(bt, sl, 16, min(run, MAX_RUN))
        assert torch.equal(sort_full_pages(bt, sl, 16, run), want)
        assert torch.equal(sort_full_pages(bt, sl, 16, run, out=bt), want)
    torch.cuda.synchronize()
    print("sort checks OK")


def main():
    if "--check" in sys.argv:
        return check()
    print(f"# {torch.cuda.get_device_name()}\n| shape | run (pages) | kernel µs | torch µs |\n|---|---|---|---|")
    for label, B, ctx in SHAPES:
        W = ctx // 16
        plan = paged_decode_plan(32, 8, 128, 16, torch.bfloat16, torch.bfloat16, B, W, DEV)
        bt = torch.randperm(B * W, device=DEV, dtype=torch.int32).view(B, W).contiguous()
        sl = torch.full((B,), ctx - 5, dtype=torch.int32, device=DEV)
        out = torch.empty_like(bt)
        run = min(max(1, plan.launch_for(B).chunk // 16), MAX_RUN)
        assert torch.equal(plan.sorted_block_table(bt, sl), sort_with_torch(bt, sl, 16, run))
        k = time_calls([lambda: plan.sorted_block_table(bt, sl, out=out)]) * 1e6
        t = time_calls([lambda: sort_with_torch(bt, sl, 16, run, out=out)]) * 1e6
        print(f"| {label} | {run} | {k:.1f} | {t:.1f} |", flush=True)


if __name__ == "__main__":
    main()
