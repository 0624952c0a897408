"""MLA decode at small batch: time against forced split counts (the default's choice among them), to set the
shortest chunk a split may get. CUDA graphs over enough input copies to stay out of L2, pages shuffled.

    python3 benchmarks/probes/mla_splits.py [--json PATH]
"""

from __future__ import annotations

import json
import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from kernel_vs_flashinfer import mla_inputs, rel, time_calls  # noqa: E402

from kvplan.kernels import paged_mla_decode_plan, probes  # noqa: E402

DEV = torch.device("cuda")
BF, F8 = torch.bfloat16, torch.float8_e4m3fn
SHAPES = [("16h B1 4K", 1, 4096, 16, BF), ("16h B1 32K", 1, 32768, 16, BF), ("16h B4 4K", 4, 4096, 16, BF),
          ("16h B8 8K", 8, 8192, 16, BF), ("16h B32 8K", 32, 8192, 16, BF), ("16h fp8 B1 8K", 1, 8192, 16, F8),
          ("128h B1 4K", 1, 4096, 128, BF), ("128h B8 8K", 8, 8192, 128, BF)]
SPLITS = (None, 8, 16, 32, 64, 128)


def main(argv):
    bw = probes.read_bandwidth().bytes_per_s
    l2 = getattr(torch.cuda.get_device_properties(DEV), "L2_cache_size", 50 << 20)
    print(f"read bandwidth {bw / 1e12:.3f} TB/s")
    rows = []
    for label, B, ctx, H, kvd in SHAPES:
        kv_bytes, copies, lat, bts, qn, qr, outs, sl = mla_inputs(B, ctx, H, kvd, l2)
        base = None
        for s in SPLITS:
            row = {"shape": label, "num_splits": s if s is not None else "default"}
            try:
                plan = paged_mla_decode_plan(H, 512, 64, 64, kvd, B, ctx // 64, DEV, num_splits=s)
                got = plan.run(qn[0], qr[0], lat, bts[0], sl, scale=0.07, out=outs[0]).clone()
                base = got if base is None else base
                t = time_calls([lambda r=r: plan.run(qn[r], qr[r], lat, bts[r], sl, scale=0.07, out=outs[r])
                                for r in range(copies)])
                row.update(us=round(t * 1e6, 2), pct_read=round(100 * kv_bytes / t / bw, 1),
                           splits=plan.splits_for(B), rel_vs_default=rel(got, base))
            except Exception as exc:  # noqa: BLE001
                row["error"] = f"{type(exc).__name__}: {exc}"[:200]
            rows.append(row)
            print(json.dumps(row), flush=True)
        del lat, qn, qr, outs
        torch.cuda.empty_cache()
    if "--json" in argv:
        with open(argv[argv.index("--json") + 1], "w") as f:
            json.dump({"gpu": torch.cuda.get_device_name(), "read_bw": bw, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
