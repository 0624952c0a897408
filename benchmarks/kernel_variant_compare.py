"""v9 changes one at a time, same data, same run, graph-timed (like decode_kernel.py): the default, without
programmatic dependent launch, and with the first page ids loaded after seqlens (as before v9).

    python benchmarks/kernel_variant_compare.py [--json PATH]
"""

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from decode_kernel import probe_setup, F8, Case, run_case  # noqa: E402

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
    json_path, l2, bw = probe_setup("variant_compare.json")
    rows = []
    for label, B, ctx, Hq, Hkv, D, dt in SHAPES:
        c = Case(B, ctx, Hq, Hkv, D, kv_dtype=dt, l2_bytes=l2, with_baselines=False)
        t = {}
        variants = (("default", {}), ("no pdl", dict(_pdl=False)), ("late page", dict(_variant=dict(early_page=0))),
                    ("default#2", {}))
        for name, kw in variants:
            r = run_case(label, c, bw, baselines=False, **kw)
            t[name] = r["kernel_us"]
        rows.append(dict(label=label, splits=r["splits"], **t))
        print(f"{label:20s} splits={r['splits']:3d}  default {t['default']:7.1f} / {t['default#2']:7.1f}  "
              f"no pdl {t['no pdl']:7.1f}  late page {t['late page']:7.1f} us", flush=True)
        c.free()
    Path(json_path).write_text(json.dumps(dict(copy_bw=bw, rows=rows), indent=1))


if __name__ == "__main__":
    main()
