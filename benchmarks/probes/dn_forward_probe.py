"""Which DeltaNet kernel moves the tiny Qwen3-Next GPU forward test's error (tests/test_verify_gpu.py at 128 x 128
DeltaNet heads): the worst relative error against the float64 reference with every kernel, then with each of the
prefill kernels and the decode step kernel refused in turn (their torch forms run).

    python3 benchmarks/probes/dn_forward_probe.py
"""

import sys

sys.path.insert(0, "tests")
sys.path.insert(0, ".")

from test_verify_gpu import _run_tiny  # noqa: E402

from kvplan.kernels import deltanet_prefill, deltanet_step  # noqa: E402

REFUSE = {"conv_chunks": (deltanet_prefill, "conv_chunks_supported"),
          "scan": (deltanet_prefill, "scan_supported"),
          "gated_norm": (deltanet_prefill, "gated_norm_supported"),
          "step": (deltanet_step, "deltanet_step_supported")}


def main() -> None:
    for off in [(), *[(k,) for k in REFUSE], tuple(REFUSE)]:
        saved = {k: getattr(*REFUSE[k]) for k in off}
        for k in off:
            setattr(REFUSE[k][0], REFUSE[k][1], lambda *a, **kw: "refused by the probe")
        try:
            for graph in (False, True):
                worst, labels = _run_tiny("qwen3_next", graph)
                print(f"refused {','.join(off) or 'none':40s} graph {graph!s:5s} worst {worst:.4f}  "
                      f"linear: {labels.get('linear', '')[:60]}")
        finally:
            for k, fn in saved.items():
                setattr(REFUSE[k][0], REFUSE[k][1], fn)


if __name__ == "__main__":
    main()
