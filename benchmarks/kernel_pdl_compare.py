"""Programmatic dependent launch on and off, same data, same run, graph-timed (like decode_kernel.py).

    python benchmarks/kernel_pdl_compare.py [--json PATH]
"""

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from decode_kernel import F8, Case, copy_bandwidth, run_case  # noqa: E402

SHAPES = [  # label, B, ctx, Hq, Hkv, D, kv dtype
    ("Llama B=1 4K", 1, 4096, 32, 8, 128, torch.bfloat16),
    ("Llama B=1 32K", 1, 32768, 32, 8, 128, torch.bfloat16),
    ("Llama B=1 128K", 1, 131072, 32, 8, 128, torch.bfloat16),
    ("Llama B=8 8K", 8, 8192, 32, 8, 128, torch.bfloat16),
    ("Llama B=16 32K", 16, 32768, 32, 8, 128, torch.bfloat16),
    ("Llama B=64 8K", 64, 8192, 32, 8, 128, torch.bfloat16),
    ("Llama fp8 B=64 8K", 64, 8192, 32, 8, 128, F8),
    ("d64 B=16 32K", 16, 32768, 32, 8, 64, torch.bfloat16),
    ("d256 B=16 8K", 16, 8192, 16, 8, 256, torch.bfloat16),
    ("MQA 64/1 B=32 32K", 32, 32768, 64, 1, 128, torch.bfloat16),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default=os.path.join(os.environ.get("OUT", "."), "pdl_compare.json"))
    args = ap.parse_args()
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    bw = copy_bandwidth()
    print(f"{torch.cuda.get_device_name(0)}; copy bandwidth {bw / 1e12:.3f} TB/s", flush=True)
    rows = []
    for label, B, ctx, Hq, Hkv, D, dt in SHAPES:
        c = Case(B, ctx, Hq, Hkv, D, kv_dtype=dt, l2_bytes=l2, with_baselines=False)
        t = {}
        for name, pdl in (("pdl", True), ("no pdl", False), ("pdl#2", True)):
            r = run_case(label, c, bw, baselines=False, _pdl=pdl)
            t[name] = r["kernel_us"]
        rows.append(dict(label=label, splits=r["splits"], **t))
        print(f"{label:20s} splits={r['splits']:3d}  pdl {t['pdl']:7.1f} / {t['pdl#2']:7.1f}  no pdl {t['no pdl']:7.1f} us"
              f"  ({100 * (min(t['pdl'], t['pdl#2']) / t['no pdl'] - 1):+.1f}%)", flush=True)
        c.free()
    Path(args.json).write_text(json.dumps(dict(copy_bw=bw, rows=rows), indent=1))


if __name__ == "__main__":
    main()
