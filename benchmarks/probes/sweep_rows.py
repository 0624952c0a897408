"""One line per launch variant of `kernel_vs_flashinfer.py --sweep` output (stdin): shape, variant, µs, % of read,
relative difference to the shape's first variant, error if any."""

import json
import sys

for line in sys.stdin:
    if not line.startswith("{") or '"shape"' not in line:
        continue
    d = json.loads(line)
    print(d["shape"], d["variant"], round(d.get("us", 0), 1), round(d.get("pct_read", 0), 1), d.get("rel_vs_default"),
          d.get("error", "")[:150])
