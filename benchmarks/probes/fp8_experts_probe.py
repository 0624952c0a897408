"""Routed experts above the pair slots, graph-timed over 8 layers: DeepSeek-V3's at tp 8 (257 with the shared one
joined, hidden 7,168, intermediate 256, e4m3 with a float32 scale per 128 x 128 block), or with --qwen3-next
Qwen3-Next-80B's at tp 2 (513 with the shared one joined, hidden 2,048, intermediate 256, bf16). The by-expert
kernels (k split, row tiles) with and without the joined expert dealt over CTA rows, the row tiles' ring depth and
a joined expert's passes per CTA row.

    python3 benchmarks/probes/fp8_experts_probe.py [--qwen3-next]   # the table
    python3 benchmarks/probes/fp8_experts_probe.py --one=NAME       # one layer, one variant, 84 tokens, 3 runs (ncu)
"""

from __future__ import annotations

import sys

import torch

sys.path.insert(0, ".")
from kvplan.gpu.timing import capture, time_replays  # noqa: E402
from kvplan.kernels.probes import read_bandwidth  # noqa: E402
from kvplan.kernels.skinny import moe_pairs_plan  # noqa: E402

QWEN = "--qwen3-next" in sys.argv
# experts (the joined shared one last), hidden, intermediate, top k + 1, weight format, token counts
E, H, INTER, TOP, FMT, TOKENS = ((513, 2048, 256, 11, "bf16", (64, 128, 440)) if QWEN else
                                 (257, 7168, 256, 9, "fp8", (32, 84, 256)))
LAYERS = 8
VARIANTS = {"k split, joined": {"expert_rows": False, "joined": 1}, "rows, joined": {"joined": 1},
            "rows, joined, 1 pass a CTA": {"joined": 1, "passes_per_cta": 1},
            "rows, joined, 2 passes a CTA": {"joined": 1, "passes_per_cta": 2}}
if "--s42-call2" in sys.argv:  # the table of call 2 (k split, then row tiles, with and without the joined expert)
    VARIANTS = {"k split": {"expert_rows": False}, "k split, joined": {"expert_rows": False, "joined": 1},
                "rows": {"expert_rows": True}, "rows, joined": {"expert_rows": True, "joined": 1},
                "rows, joined, ring 3": {"expert_rows": True, "joined": 1, "row_stages": 3},
                "rows, joined, ring 4": {"expert_rows": True, "joined": 1, "row_stages": 4}}


def make_plan(name):
    """The variant's plan; passes_per_cta: how many of a joined expert's passes of 32 pairs one CTA row takes."""
    opts = dict(VARIANTS[name])
    passes = opts.pop("passes_per_cta", None)
    plan = moe_pairs_plan(E, H, INTER, TOP, weight_format=FMT, device=0, **opts)
    plan.passes_per_cta = passes or plan.passes_per_cta
    return plan


def weights(dev, *shape):
    if FMT == "bf16":
        return torch.randn(*shape, device=dev, dtype=torch.bfloat16) * 0.02
    q = (torch.randn(*shape, device=dev) * 16).clamp(-448, 448).to(torch.float8_e4m3fn)
    return q, torch.rand(shape[0], shape[1] // 128, shape[2] // 128, device=dev) * 1e-3 + 1e-3


def routing(tokens, dev):
    ids = torch.cat([torch.rand(tokens, E - 1, device=dev).topk(TOP - 1, dim=-1).indices,
                     torch.full((tokens, 1), E - 1, device=dev, dtype=torch.int64)], dim=1)
    return ids, torch.softmax(torch.rand(tokens, TOP, device=dev), -1)


def main(argv):
    dev = torch.device("cuda")
    one = next((a.split("=", 1)[1] for a in argv if a.startswith("--one=")), None)
    layers = [(weights(dev, E, 2 * INTER, H), weights(dev, E, H, INTER)) for _ in range(1 if one else LAYERS)]
    if one:
        plan = make_plan(one)
        x = torch.randn(84, H, device=dev).bfloat16()
        ids, wts = routing(84, dev)
        for _ in range(3):
            plan.run(x, wts, ids, *layers[0])
        torch.cuda.synchronize()
        return
    read = read_bandwidth(4 * 2**30).bytes_per_s
    per_expert = 3 * INTER * H * (2 if FMT == "bf16" else 1 + 4 / 128 ** 2)
    print(f"{FMT} experts; read bandwidth {read / 1e12:.2f} TB/s; us a layer, % of reading each distinct expert once")
    for tokens in TOKENS:
        x = torch.randn(tokens, H, device=dev).bfloat16()
        ids, wts = routing(tokens, dev)
        distinct = int(ids.unique().numel())
        cells = []
        for name in VARIANTS:
            try:
                plan = make_plan(name)
                graph, _ = capture(lambda: [plan.run(x, wts, ids, w13, w2) for w13, w2 in layers])
                us = time_replays(graph.replay, reps=20)["ms"] * 1e3 / LAYERS
                del graph
                cells.append(f"{name} {us:.1f} ({per_expert * distinct / (us / 1e6) / read:.0%})")
            except Exception as exc:  # noqa: BLE001  (a variant that cannot build or run is reported)
                cells.append(f"{name} {type(exc).__name__}: {str(exc)[:120]}")
        print(f"{tokens} tokens, {distinct} distinct: " + " | ".join(cells))


if __name__ == "__main__":
    main(sys.argv[1:])
