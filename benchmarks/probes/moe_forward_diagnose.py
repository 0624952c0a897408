"""Which GPU part of a tiny MoE forward departs from the float64 reference (tests/test_verify_gpu.py's _run_tiny):
the forward's worst relative error with each bundled MoE piece switched off in turn (the router kernel, the MoE
pairs kernel, the gather-sum kernel) and with all of them off (torch only).

    python3 benchmarks/probes/moe_forward_diagnose.py deepseek_v3_groups llama4 nemotron_h_moe
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))

from kvplan.gpu import ffn  # noqa: E402
from kvplan.kernels import moe_gather_sum  # noqa: E402
from test_verify_gpu import _run_tiny  # noqa: E402

def _grouped_mm_loop(x, w, offsets):
    """torch._grouped_mm's product, one matmul per group."""
    import torch

    out = x.new_empty(x.shape[0], w.shape[1])
    start = 0
    for e, end in enumerate(offsets.tolist()):
        out[start:end] = x[start:end] @ w[e].T.to(x.dtype)
        start = end
    return out


OFF = {
    "router kernel": (ffn.MoE, "_router_plan", lambda self, logits: None),
    "pairs kernel": (ffn.MoE, "_kernel_takes", lambda self, x, ids: False),
    "gather-sum kernel": (moe_gather_sum, "gather_sum_supported", lambda *a, **k: "switched off"),
    "torch._grouped_mm": (ffn, "grouped_mm", _grouped_mm_loop),
}


def run(name, off):
    saved = {key: getattr(OFF[key][0], OFF[key][1]) for key in off}
    for key in off:
        setattr(OFF[key][0], OFF[key][1], OFF[key][2])
    try:
        worst, labels = _run_tiny(name, False)
    finally:
        for key, value in saved.items():
            setattr(OFF[key][0], OFF[key][1], value)
    return worst, labels


def main(names):
    for name in names:
        for off in ([], *([key] for key in OFF), list(OFF)):
            try:
                worst, labels = run(name, off)
            except Exception as exc:  # noqa: BLE001 (a diagnosis: say what failed and go on)
                print(f"{name:20s} off: {', '.join(off) or 'none':45s} failed: {exc}", flush=True)
                continue
            print(f"{name:20s} off: {', '.join(off) or 'none':45s} worst {worst:.4f}  router: "
                  f"{labels.get('router', '')[:60]}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
