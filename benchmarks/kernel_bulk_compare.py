"""cp.async ring vs Hopper bulk-copy variant (KVP_BULK) on the Llama-3-8B shapes, same data, same run.

    python benchmarks/kernel_bulk_compare.py [--json PATH]

Each shape: the default path, then the bulk variant at the default slices/stages and a few others,
timed twice in alternation (ring, bulk, ring, bulk) so drift shows up as a spread.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from decode_kernel import probe_setup, LLAMA, Case, run_case  # noqa: E402


def main():
    json_path, l2, bw = probe_setup("bulk_compare.json")
    rows = []
    for B, ctx in LLAMA:
        c = Case(B, ctx, 32, 8, 128, l2_bytes=l2, with_baselines=False)
        variants = [("ring", dict(_variant=dict(bulk=0))), ("bulk", dict(_variant=dict(bulk=1))),
                    ("ring#2", dict(_variant=dict(bulk=0))), ("bulk#2", dict(_variant=dict(bulk=1))),
                    ("bulk s4x4", dict(_variant=dict(bulk=1), _slices=4, _stages=4)),
                    ("bulk s8x3", dict(_variant=dict(bulk=1), _slices=8, _stages=3)),
                    ("bulk s2x6", dict(_variant=dict(bulk=1), _slices=2, _stages=6)),
                    ("bulk kh2 st4", dict(_variant=dict(bulk=1), _kv_per_cta=2, _stages=4))]
        for name, kw in variants:
            r = run_case(f"{name} B={B} ctx={ctx}", c, bw, baselines=False, **kw)
            r["variant"] = name
            rows.append(r)
            print(f"B={B:3d} ctx={ctx:6d} {name:13s} {r['kernel_us']:8.1f} us {r['pct_copy_bw']:5.1f}% "
                  f"splits={r['splits']} slices={r['slices']} stages={r['stages']} kh={r['kv_per_cta']} "
                  f"smem={r['smem']} err={r['rel_err_vs_sdpa']:.1e}", flush=True)
        c.free()
    Path(json_path).write_text(json.dumps(dict(copy_bw=bw, rows=rows), indent=1))


if __name__ == "__main__":
    main()
