"""The row-owned streaming GEMV's launch per weight shape: CTAs per SM, ring depth and split3 (a CTA's group of three
16-row slices run as two then one: 8 KB a step instead of 6 KB with a warp idle), against F.linear, on the dense
models' shapes whose slices do not share out evenly over the SMs (Qwen3-14B's o [5120, 5120]: 320 slices on 132
SMs). Each shape's layers in one CUDA graph (distinct weights, so they stream from HBM), % of the read probe.

    python3 benchmarks/own_ring_probe.py [--batches 1,8]
"""

import argparse
import json

import torch
import torch.nn.functional as F

from kvplan.gpu.timing import capture, read_bandwidth, time_replays
from kvplan.kernels.gemv_stream import gemv_stream_plan

SHAPES = [  # (model, n, k, layers)
    ("Qwen3-14B o", 5120, 5120, 40), ("Qwen3-14B qkv", 7168, 5120, 40), ("Qwen3-14B down", 5120, 17408, 40),
    ("Llama-3.1-8B qkv", 6144, 4096, 32), ("Llama-3.1-8B o", 4096, 4096, 32), ("gemma-3-27b o", 5376, 4096, 62),
    ("Devstral-24B o", 5120, 4096, 40), ("Llama-3.2-1B qkv", 3072, 2048, 16),
]
FORMS = {  # name -> gemv_stream_plan options (None: F.linear)
    "F.linear": None,
    "own 2x6": dict(own=True, ctas_per_sm=2, depth=6),
    "own 2x8": dict(own=True, ctas_per_sm=2, depth=8),
    "own 1x8": dict(own=True, ctas_per_sm=1, depth=8),
    "own 1x12": dict(own=True, ctas_per_sm=1, depth=12),
    "own 2x6 s3": dict(own=True, ctas_per_sm=2, depth=6, split3=True),
    "own 1x8 s3": dict(own=True, ctas_per_sm=1, depth=8, split3=True),
    "own 1x12 s3": dict(own=True, ctas_per_sm=1, depth=12, split3=True),
    "own 3x4": dict(own=True, ctas_per_sm=3, depth=4),
    "own 3x5": dict(own=True, ctas_per_sm=3, depth=5),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="1,8")
    args = ap.parse_args()
    read = read_bandwidth()["bytes_per_s"]
    print(f"read bandwidth {read / 1e12:.3f} TB/s", flush=True)
    for label, n, k, layers in SHAPES:
        ws = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * k ** -0.5 for _ in range(layers)]
        nbytes = layers * n * k * 2
        for b in (int(v) for v in args.batches.split(",")):
            x = torch.randn(b, k, device="cuda", dtype=torch.bfloat16)
            ref = F.linear(x, ws[0]).float()
            row = {"shape": label, "n": n, "k": k, "batch": b}
            for name, opts in FORMS.items():
                if opts is None:
                    fn = lambda: [F.linear(x, w) for w in ws]  # noqa: E731
                else:
                    plan = gemv_stream_plan(n, k, torch.bfloat16, max_batch=8, device=0, **opts)
                    err = (plan.run(x, ws[0]).float() - ref).abs().max().item()
                    assert err < 0.05, (label, name, b, err)
                    fn = lambda plan=plan: [plan.run(x, w) for w in ws]  # noqa: E731
                graph, _ = capture(fn)
                ms = time_replays(graph.replay, reps=10)["ms"]
                del graph
                row[name] = round(100 * nbytes / (ms * 1e-3) / read, 1)
            print(json.dumps(row), flush=True)
        del ws
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
