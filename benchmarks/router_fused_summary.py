"""One line per verify result (JSON) of benchmarks/s65_device.sh router: decode at batch 1 and at the largest batch
(measured against the estimate), the dense linears' stream in decode order at batches 1-8 (% of read), how many MoE
layers' routers the router kernel read, and the router's labels.

    python3 benchmarks/router_fused_summary.py v_gptoss_apart.json v_gptoss.json ...
"""

import json
import sys
from pathlib import Path


def line(path: Path) -> str:
    r = json.loads(path.read_text())
    points = r["decode"]["points"]
    first, last = points[0], points[-1]

    def point(p):
        est = p.get("estimate_ms")
        return f"b{p['batch']} {p['measured_ms']:.3f} ms" + (f" ({p['measured_ms'] / est - 1:+.1%})" if est else "")

    order = r["gemm"].get("decode_order") or {}
    stream = "/".join(f"{s['fraction_of_read']:.0%}" for s in order.values() if s.get("fraction_of_read"))
    labels = r["forward"]["labels"]
    router = labels.get("router fused", labels.get("router", ""))
    return (f"{path.stem}: {point(first)}, {point(last)}; linears in decode order b1-b8 {stream}; routers in the "
            f"router kernel: {r['gemm'].get('routers_in_router_kernel', 0)}; {router[:90]}")


if __name__ == "__main__":
    for name in sys.argv[1:]:
        try:
            print(line(Path(name)))
        except (OSError, ValueError, KeyError) as exc:
            print(f"{name}: unreadable ({exc})")
