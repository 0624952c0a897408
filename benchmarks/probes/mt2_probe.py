"""The streaming GEMV with 128-row steps (mma_tiles=2: two MMA tiles a warp, one 16 KB TMA box a step) against the
forms verify chooses from, at batch 1 and 8, on the dense models' shapes. At batch 8 a 64-row step carries 1 KB of
x beside 8 KB of weights (x re-read from L2 by every CTA); a 128-row step halves that share. Session 17 measured
128-row boxes 4-6 points slower at batch 1, on an earlier kernel. Then each model's linears in decode order (one
graph, 40 / 32 layers) with each shape's fastest form, with and without the 128-row forms allowed.
Each shape's layers in one CUDA graph (distinct weights, so they stream from HBM), % of the read probe.

    python3 benchmarks/probes/mt2_probe.py [--batches 1,8]
"""

import argparse
import json

import torch
import torch.nn.functional as F

from kvplan.gpu.timing import capture, read_bandwidth, time_replays
from kvplan.kernels.gemv_stream import gemv_stream_plan

MODELS = {  # model -> [(linear, n, k)], layers
    "Qwen3-14B": ([("qkv", 7168, 5120), ("o", 5120, 5120), ("gate_up", 34816, 5120), ("down", 5120, 17408)], 40),
    "Llama-3.1-8B": ([("qkv", 6144, 4096), ("o", 4096, 4096), ("gate_up", 28672, 4096), ("down", 4096, 14336)], 32),
}
FORMS = {  # name -> gemv_stream_plan options (None: F.linear)
    "F.linear": None,
    "order": dict(),
    "rotate": dict(rotate=True),
    "own 2x8": dict(own=True, ctas_per_sm=2, depth=8),
    "own 3x5": dict(own=True, ctas_per_sm=3, depth=5),
    "mt2 1x8": dict(mma_tiles=2, ctas_per_sm=1, depth=8),
    "mt2 1x10": dict(mma_tiles=2, ctas_per_sm=1, depth=10),
    "mt2 1x12": dict(mma_tiles=2, ctas_per_sm=1, depth=12),
    "mt2 rot 1x8": dict(mma_tiles=2, ctas_per_sm=1, depth=8, rotate=True),
    "mt2 rot 1x12": dict(mma_tiles=2, ctas_per_sm=1, depth=12, rotate=True),
    "mt2 2x5": dict(mma_tiles=2, ctas_per_sm=2, depth=5),
}


def _ms(fn) -> float:
    graph, _ = capture(fn)
    ms = time_replays(graph.replay, reps=10)["ms"]
    del graph
    return ms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="1,8")
    args = ap.parse_args()
    read = read_bandwidth()["bytes_per_s"]
    print(f"read bandwidth {read / 1e12:.3f} TB/s", flush=True)
    batches = [int(v) for v in args.batches.split(",")]
    for model, (linears, layers) in MODELS.items():
        weights = {name: [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * k ** -0.5 for _ in range(layers)]
                   for name, n, k in linears}
        plans = {}
        for name, n, k in linears:
            for form, opts in FORMS.items():
                if opts is not None:
                    try:
                        plans[(name, form)] = gemv_stream_plan(n, k, torch.bfloat16, max_batch=8, device=0, **opts)
                    except (ValueError, RuntimeError) as exc:
                        print(json.dumps({"model": model, "linear": name, "form": form, "refused": str(exc)}))

        def run(name, form, x, w):
            return F.linear(x, w) if form == "F.linear" else plans[(name, form)].run(x, w)

        for b in batches:
            best = {True: {}, False: {}}  # mt2 allowed -> linear -> (ms, form)
            xs = {}
            for name, n, k in linears:
                x = xs.setdefault(k, torch.randn(b, k, device="cuda", dtype=torch.bfloat16))
                ref = F.linear(x, weights[name][0]).float()
                nbytes = layers * n * k * 2
                row = {"model": model, "linear": name, "n": n, "k": k, "batch": b}
                for form in FORMS:
                    if form != "F.linear" and (name, form) not in plans:
                        continue
                    err = (run(name, form, x, weights[name][0]).float() - ref).abs().max().item()
                    assert err < 0.05, (model, name, form, b, err)
                    ms = _ms(lambda: [run(name, form, x, w) for w in weights[name]])
                    row[form] = round(100 * nbytes / (ms * 1e-3) / read, 1)
                    for allowed in (True, False):
                        if (allowed or not form.startswith("mt2")) and ms < best[allowed].get(name, (1e9,))[0]:
                            best[allowed][name] = (ms, form)
                print(json.dumps(row), flush=True)
            total = layers * sum(n * k * 2 for _, n, k in linears)
            for allowed in (False, True):
                chosen = {name: best[allowed][name][1] for name, _, _ in linears}
                order = [(name, weights[name][i], xs[k]) for i in range(layers) for name, _, k in linears]
                ms = _ms(lambda: [run(name, chosen[name], x, w) for name, w, x in order])
                print(json.dumps({"model": model, "batch": b, "chain": "mt2 allowed" if allowed else "without mt2",
                                  "forms": chosen, "% read": round(100 * total / (ms * 1e-3) / read, 1),
                                  "shape by shape % read": round(100 * total / (sum(
                                      best[allowed][name][0] * 1e-3 for name, _, _ in linears)) / read, 1)}),
                      flush=True)
        del weights, plans
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
