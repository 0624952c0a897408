"""The instructions of a kernel where Nsight Compute's warp-state sampling found its warps most often, with the
source line (cubins built with KVPLAN_NVRTC_LINEINFO=1) and the stall reasons: reads the CSV of
`ncu --import REPORT --page source --csv --print-source sass,cuda`.

    python3 benchmarks/ncu_top_stalls.py source.csv [N]
"""

import csv
import sys


def main(path, n=30):
    lines = open(path, newline="").read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('"Address"'))  # after "Kernel Name",...
    rows = list(csv.DictReader(lines[start:]))
    if not rows:
        print("no rows")
        return
    cols = list(rows[0])
    samp = next(c for c in cols if "Warp Stall Sampling (All" in c)
    total = sum(float(r[samp] or 0) for r in rows)
    print(f"{len(rows)} SASS rows; {total:.0f} samples; columns: {', '.join(cols[:12])} ...")
    top = sorted(rows, key=lambda r: -float(r[samp] or 0))[:n]
    for r in top:
        src = r.get("Source") or r.get("# Source") or ""
        print(f"{100 * float(r[samp] or 0) / total:5.1f}%  {r.get('Address', '')}  {src[:110]}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30)
