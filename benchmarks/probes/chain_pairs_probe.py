"""Which neighbours slow a chain of GEMVs (session 45, call 6: Qwen3-14B's linears in decode order read 58% of
the read probe, each shape alone 89-91%). The forms verify chooses for each shape, then graphs of every layer's
pair of neighbouring shapes alternating (qkv o qkv o ..., o gate_up ..., gate_up down ..., down qkv ...), and the
whole chain; % of read each. Run with KVPLAN_PDL=0 too to see what programmatic dependent launch does to it.

    python3 benchmarks/probes/chain_pairs_probe.py [--model 14b] [--batch 1]
"""

import argparse
import json
import os

import torch

from kvplan.gpu.gemm import choose_forms
from kvplan.gpu.ops import Matmul
from kvplan.gpu.timing import capture, read_bandwidth, time_replays

MODELS = {"8b": (32, 4096, 6144, 14336), "14b": (40, 5120, 7168, 17408)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="14b")
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    read = read_bandwidth()["bytes_per_s"]
    layers, hidden, qkv, inter = MODELS[args.model]
    shapes = {"qkv": (qkv, hidden), "o": (hidden, hidden), "gate_up": (2 * inter, hidden), "down": (hidden, inter)}
    weights = {f"layers.{i}.{part}": torch.randn(*shape, device="cuda", dtype=torch.bfloat16) * 0.02
               for i in range(layers) for part, shape in shapes.items()}
    mm = Matmul()
    choose_forms(mm, weights, tied=False, read_bw=read, batches=(args.batch,))
    xs = {k: torch.randn(args.batch, k, device="cuda", dtype=torch.bfloat16) for k in {hidden, inter}}
    parts = list(shapes)
    runs = {f"{a}+{b}": (a, b) for a, b in zip(parts, parts[1:] + parts[:1])}
    runs.update({part: (part,) for part in parts})
    runs["chain"] = tuple(parts)
    out = {"model": args.model, "batch": args.batch, "pdl": os.environ.get("KVPLAN_PDL", "1"),
           "forms": {p: mm.forms.get((*shapes[p], args.batch), "x @ W^T")[-26:] for p in parts}}
    for label, run in runs.items():
        order = [f"layers.{i}.{p}" for i in range(layers) for p in run]
        nbytes = sum(weights[n].numel() * 2 for n in order)
        graph, _ = capture(lambda: [mm(xs[weights[n].shape[1]], weights[n]) for n in order])
        ms = time_replays(graph.replay, reps=10)["ms"]
        del graph
        out[label] = round(100 * nbytes / (ms * 1e-3) / read, 1)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
