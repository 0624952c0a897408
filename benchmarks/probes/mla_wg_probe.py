"""MLA decode with its latents resident in L2 against the same from DRAM: how much of a step is the step itself.

`python3 benchmarks/probes/mla_wg_probe.py` (GPU): for each shape and path, µs per call (CUDA graphs) on one copy of
the tensors (fits L2: the step's own rate) and on enough copies to stay out of L2 (kernel_vs_flashinfer.py's
inputs); prints one JSON line per row.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: kernel_vs_flashinfer

import torch  # noqa: E402

from kernel_vs_flashinfer import BF, DEV, mla_inputs, time_calls  # noqa: E402
from kvplan.kernels import paged_mla_decode_plan  # noqa: E402

SHAPES = [(4, 4096, 16), (32, 8192, 16), (8, 32768, 16), (2, 4096, 128), (8, 8192, 128)]
PATHS = {"heads in M / head tiles": {}, "wgmma": {"wgmma": True}}


def main() -> None:
    l2 = torch.cuda.get_device_properties(DEV).L2_cache_size
    for B, ctx, H in SHAPES:
        for resident in (True, False):
            kv_bytes, copies, lat, bts, qn, qr, outs, sl = mla_inputs(B, ctx, H, BF, 0 if resident else l2)
            if resident and kv_bytes > l2 // 2:
                continue
            for name, kw in PATHS.items():
                plan = paged_mla_decode_plan(H, 512, 64, 64, BF, B, ctx // 64, DEV, **kw)
                t = time_calls([lambda r=r: plan.run(qn[r], qr[r], lat, bts[r], sl, out=outs[r])
                                for r in range(copies)])
                print(json.dumps(dict(B=B, ctx=ctx, heads=H, path=name, l2_resident=resident, copies=copies,
                                      kv_mb=kv_bytes / 1e6, us=round(t * 1e6, 2), splits=plan.splits_for(B),
                                      gb_per_s=round(kv_bytes / t / 1e9, 1))), flush=True)
            del lat, bts, qn, qr, outs
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
