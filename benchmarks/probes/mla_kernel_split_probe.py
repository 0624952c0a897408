"""Where an MLA decode call's time goes: the main kernel and the split merge, each timed by the CUDA profiler.

`python3 benchmarks/probes/mla_kernel_split_probe.py` (GPU): for each shape and path (heads in M, warpgroup MMAs), the
mean GPU time of each kernel over 50 calls on tensors out of L2 (kernel_vs_flashinfer.py's inputs), beside the
wall time of the whole call in a CUDA graph; one JSON line per row.
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: kernel_vs_flashinfer

import torch  # noqa: E402

from kernel_vs_flashinfer import BF, DEV, mla_inputs, time_calls  # noqa: E402
from kvplan.kernels import paged_mla_decode_plan  # noqa: E402

SHAPES = [(8, 32768, 16), (32, 8192, 16), (64, 16384, 16), (32, 4096, 128)]
PATHS = {"heads in M / head tiles": {"wgmma": False}, "wgmma": {"wgmma": True}}


def kernel_times(fns, calls=50) -> dict:
    for f in fns:
        f()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for i in range(calls):
            fns[i % len(fns)]()
        torch.cuda.synchronize()
    sums = defaultdict(float)
    for ev in prof.events():
        if ev.device_type == torch.autograd.DeviceType.CUDA:
            sums[ev.name] += ev.device_time
    return {name: round(us / calls, 2) for name, us in sums.items()}


def main() -> None:
    l2 = torch.cuda.get_device_properties(DEV).L2_cache_size
    for B, ctx, H in SHAPES:
        kv_bytes, copies, lat, bts, qn, qr, outs, sl = mla_inputs(B, ctx, H, BF, l2)
        for name, kw in PATHS.items():
            plan = paged_mla_decode_plan(H, 512, 64, 64, BF, B, ctx // 64, DEV, **kw)
            fns = [lambda r=r: plan.run(qn[r], qr[r], lat, bts[r], sl, out=outs[r]) for r in range(copies)]
            row = dict(B=B, ctx=ctx, heads=H, path=name, kv_mb=round(kv_bytes / 1e6), splits=plan.splits_for(B),
                       graph_us=round(time_calls(fns) * 1e6, 1), kernels_us=kernel_times(fns))
            print(json.dumps(row), flush=True)
        del lat, bts, qn, qr, outs
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
