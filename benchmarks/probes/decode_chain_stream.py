"""The weight stream of a whole decode step's linears in decode order, against verify's per-shape figure.

verify's weight stream (kvplan/gpu/gemm.py choose_forms) times each weight shape alone: a CUDA graph of every
layer's weight of that shape back to back (qkv, qkv, qkv, ...). A decode step runs them in layer order instead
(qkv, o, gate_up, down, next layer's qkv, ...), so each GEMV follows a different shape, and launch forms that
differ sit next to each other. Here: random 16-bit weights of a dense model's shapes, the forms chosen as verify
chooses them, then one graph of every linear in decode order per batch (nothing between them: attention, norms
and activations left out), % of the read probe beside the per-shape figure.

    python3 benchmarks/probes/decode_chain_stream.py [--models 8b,14b,1b] [--batches 1,8]
"""

import argparse
import json

import torch

from kvplan.gpu.gemm import choose_forms
from kvplan.gpu.ops import Matmul
from kvplan.gpu.timing import capture, read_bandwidth, time_replays

MODELS = {  # name: (layers, hidden, qkv rows, intermediate, vocab)
    "8b": (32, 4096, 6144, 14336, 128256),
    "14b": (40, 5120, 7168, 17408, 151936),
    "1b": (16, 2048, 3072, 8192, 128256),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="8b,14b,1b")
    ap.add_argument("--batches", default="1,8")
    args = ap.parse_args()
    read = read_bandwidth()["bytes_per_s"]
    print(f"read bandwidth {read / 1e12:.3f} TB/s", flush=True)
    batches = tuple(int(b) for b in args.batches.split(","))
    for name in args.models.split(","):
        layers, hidden, qkv, inter, vocab = MODELS[name]
        shapes = {"qkv": (qkv, hidden), "o": (hidden, hidden), "gate_up": (2 * inter, hidden), "down": (hidden, inter)}
        weights = {f"layers.{i}.{part}": torch.randn(*shape, device="cuda", dtype=torch.bfloat16) * 0.02
                   for i in range(layers) for part, shape in shapes.items()}
        weights["lm_head"] = torch.randn(vocab, hidden, device="cuda", dtype=torch.bfloat16) * 0.02
        mm = Matmul()
        report = choose_forms(mm, weights, tied=False, read_bw=read, batches=batches)
        order = [f"layers.{i}.{part}" for i in range(layers) for part in shapes] + ["lm_head"]
        nbytes = sum(weights[n].numel() * 2 for n in order)
        for batch in batches:
            xs = {k: torch.randn(batch, k, device="cuda", dtype=torch.bfloat16) for k in {hidden, inter}}
            graph, _ = capture(lambda: [mm(xs[weights[n].shape[1]], weights[n]) for n in order])
            ms = time_replays(graph.replay, reps=10)["ms"]
            del graph
            chain = round(100 * nbytes / (ms * 1e-3) / read, 1)
            print(json.dumps({"model": name, "batch": batch, "chain_pct_of_read": chain,
                              "per_shape_pct_of_read": round(100 * report["stream"][batch]["fraction_of_read"], 1),
                              "chosen": {f"{s[0]}x{s[1]}": mm.forms.get((*s, batch), "x @ W^T")[-26:]
                                         for s in (*shapes.values(), (vocab, hidden))}}), flush=True)
        del weights, mm
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
