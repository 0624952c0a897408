"""Prints verify's weight-stream figures from a results.jsonl of benchmarks/verify_device_run.py: per model the
stream's % of read bandwidth at batch 1-8, and per weight shape and batch the form chosen with each form's TB/s.

    python3 benchmarks/probes/gemm_forms_md.py results.jsonl [--shapes]"""

import json
import sys


def main(argv):
    show_shapes = "--shapes" in argv
    for line in open(next(a for a in argv if not a.startswith("--"))):
        row = json.loads(line)
        gemm = (row.get("result") or {}).get("gemm")
        if not gemm:
            continue
        stream = " / ".join(f"{100 * s['fraction_of_read']:.1f}" for s in gemm["stream"].values()
                            if s.get("fraction_of_read"))
        print(f"{row['name']}: weight stream % of read at batch {' / '.join(gemm['stream'])}: {stream}")
        if show_shapes:
            for s in gemm["shapes"]:
                forms = ", ".join(f"{k[:-5]} {v:.2f}" for k, v in s.items() if k.endswith(" TB/s"))
                print(f"  {s['shape'][0]}x{s['shape'][1]} x{s['layers']} b{s['batch']}: {s['chosen']} | {forms}")


if __name__ == "__main__":
    main(sys.argv[1:])
