"""An MoE layer's routed experts at one token: the pairs kernel (skinny_gemm.cu, three launches) against the streaming
GEMV's gather form (kvplan/kernels/moe_one_token.py), each over 8 layers of distinct weights in one CUDA graph, us a
layer and % of read bandwidth over the bytes of the token's experts (each read once).

    python3 benchmarks/probes/moe_one_token_probe.py [--only=NAME,...]
"""

from __future__ import annotations

import sys

import torch

sys.path.insert(0, ".")
from kvplan.gpu.timing import capture, time_replays  # noqa: E402
from kvplan.kernels.moe_one_token import one_token_moe_plan  # noqa: E402
from kvplan.kernels.probes import read_bandwidth  # noqa: E402
from kvplan.kernels.skinny import moe_pairs_plan  # noqa: E402

LAYERS = 8
# experts (a joined shared one counted), hidden, per-rank intermediate, pairs, format, activation, gated
SHAPES = {
    "DeepSeek-V3 tp 8 (fp8)": (257, 7168, 256, 9, "fp8", "silu", True),
    "GLM-4.7-Flash": (65, 2048, 1536, 5, "bf16", "silu", True),
    "Qwen3-Next-80B tp 2": (513, 2048, 256, 11, "bf16", "silu", True),
    "DeepSeek-V2-Lite": (66, 2048, 1408, 8, "bf16", "silu", True),
    "Mixtral-8x7B tp 2": (8, 4096, 7168, 2, "bf16", "silu", True),
    "Nemotron-3-Nano (relu2)": (129, 2688, 1856, 7, "bf16", "relu2", False),
}


def weights(e, rows, cols, fmt, dev):
    if fmt == "bf16":
        return torch.randn(e, rows, cols, device=dev).mul_(cols ** -0.5).bfloat16()
    q = (torch.randn(e, rows, cols, device=dev) * 16).clamp(-448, 448).to(torch.float8_e4m3fn)
    return q, torch.rand(e, rows // 128, cols // 128, device=dev) * 1e-3 + 1e-3


def main(argv):
    dev = torch.device("cuda")
    only = next((a.split("=", 1)[1].split(",") for a in argv if a.startswith("--only=")), None)
    read = read_bandwidth(4 * 2**30).bytes_per_s
    print(f"read bandwidth {read / 1e12:.3f} TB/s; us a layer (% of read over the token's experts' bytes)")
    for name, (e, h, inter, pairs, fmt, act, gated) in SHAPES.items():
        if only and not any(o in name for o in only):
            continue
        up = (2 if gated else 1) * inter
        layers = [(weights(e, up, h, fmt, dev), weights(e, h, inter, fmt, dev)) for _ in range(LAYERS)]
        x = torch.randn(1, h, device=dev).bfloat16()
        ids = torch.cat([torch.randperm(e - 1, device=dev)[:pairs - 1], torch.tensor([e - 1], device=dev)])
        ids = ids.to(torch.int32).view(1, pairs)
        wts = torch.softmax(torch.rand(1, pairs, device=dev), -1)
        per_expert = (up * h + h * inter) * (2 if fmt == "bf16" else 1 + 4 / 128 ** 2)
        forms = {}
        try:
            pp = moe_pairs_plan(e, h, inter, pairs, dtype=torch.bfloat16,
                                weight_format="fp8" if fmt == "fp8" else "bf16", activation=act, gated=gated,
                                device=0)
            forms["pairs kernel"] = lambda: [pp.run(x, wts, ids, w13, w2) for w13, w2 in layers]
        except Exception as exc:  # noqa: BLE001  (a form that cannot build is reported, the rest go on)
            print(f"{name}: pairs kernel refused: {exc}")
        op = one_token_moe_plan(e, h, inter, pairs, torch.bfloat16, weight_format="fp8" if fmt == "fp8" else "16bit",
                                activation=act, gated=gated, device=0)
        forms["one-token GEMVs"] = lambda: [op.run(x, wts, ids, w13, w2) for w13, w2 in layers]
        cells, outs = [], {}
        for form, fn in forms.items():
            graph, out = capture(fn)
            us = time_replays(graph.replay, reps=30)["ms"] * 1e3 / LAYERS
            outs[form] = out[-1].float()
            del graph
            cells.append(f"{form} {us:.1f} ({per_expert * pairs / (us / 1e6) / read:.0%})")
        if len(outs) >= 2:
            a, b = list(outs.values())[:2]
            cells.append(f"outputs differ by {float((a - b).norm() / b.norm()):.2e} (relative)")
        print(f"{name}, {pairs} experts of {per_expert / 1e6:.1f} MB: " + " | ".join(cells))
        del layers
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main(sys.argv[1:])
