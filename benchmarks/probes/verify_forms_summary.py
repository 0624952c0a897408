"""Which matmul form verify chose per weight shape and batch, and its weight stream, from the results.jsonl that
benchmarks/verify_device_run.py wrote into $OUT (used by the device scripts after a verify run):

    python3 benchmarks/probes/verify_forms_summary.py [RESULTS_JSONL]
"""
import json
import os
import sys


def find(d, key):
    """The first value under ``key`` anywhere in nested dicts."""
    if isinstance(d, dict):
        if key in d:
            return d[key]
        for v in d.values():
            f = find(v, key)
            if f is not None:
                return f
    return None


path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.environ["OUT"], "results.jsonl")
for line in open(path):
    r = json.loads(line)
    res = r["result"] or {}
    g = find(res, "shapes")
    print(r["name"], "rc", r["rc"], "wall", round(r["wall_s"]))
    for s in g or []:
        print("  ", s["shape"], "b", s["batch"], "->", s["chosen"],
              {k[:-5]: round(v, 2) for k, v in s.items() if k.endswith("TB/s")})
    st = find(res, "stream")
    if st:
        print("   stream", {b: round(v.get("fraction_of_read") or 0, 3) for b, v in st.items()})
