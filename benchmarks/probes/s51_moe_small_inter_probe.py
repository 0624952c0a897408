"""Session 51: the routed experts of GLM-4.5-Air (tp 4: 352 rows a rank) and GLM-4.6 (tp 8: 192) at one token read at
~49% of read bandwidth in the pairs kernel (benchmarks/forward_profile.py, call 1). The pairs plan under its default
and its tuning arguments, and the one-token GEMVs, 8 layers of distinct weights in one CUDA graph, us a layer and % of
read over the token's experts' bytes (moe_one_token_probe.py's method).

    python3 benchmarks/probes/s51_moe_small_inter_probe.py
"""
import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from moe_one_token_probe import LAYERS, weights  # noqa: E402
from kvplan.gpu.timing import capture, time_replays  # noqa: E402
from kvplan.kernels.moe_one_token import one_token_moe_plan  # noqa: E402
from kvplan.kernels.probes import read_bandwidth  # noqa: E402
from kvplan.kernels.skinny import moe_pairs_plan  # noqa: E402

SHAPES = {  # experts (the joined shared one counted), hidden, rows a rank, pairs
    "GLM-4.5-Air tp 4": (129, 4096, 352, 9), "GLM-4.6 tp 8": (161, 5120, 192, 9),
    "DeepSeek-V2-Lite (control)": (66, 2048, 1408, 8),
}
VARIANTS = {"default": {}, "ksplit 1": {"ksplit": 1}, "ksplit 2": {"ksplit": 2}, "ksplit 4": {"ksplit": 4},
            "rule fill": {"ksplit_rule": "fill"}, "row_stages 4": {"row_stages": 4}}


def main():
    dev = torch.device("cuda")
    read = read_bandwidth(4 * 2**30).bytes_per_s
    print(f"{torch.cuda.get_device_name(0)}; read {read / 1e12:.3f} TB/s; us a layer (% of read)", flush=True)
    for name, (e, h, inter, pairs) in SHAPES.items():
        layers = [(weights(e, 2 * inter, h, "bf16", dev), weights(e, h, inter, "bf16", dev)) for _ in range(LAYERS)]
        x = torch.randn(1, h, device=dev).bfloat16()
        ids = torch.cat([torch.randperm(e - 1, device=dev)[:pairs - 1], torch.tensor([e - 1], device=dev)])
        ids = ids.to(torch.int32).view(1, pairs)
        wts = torch.softmax(torch.rand(1, pairs, device=dev), -1)
        nbytes = 3 * inter * h * 2 * pairs
        cells, ref = [], None
        forms = {}
        for label, kw in VARIANTS.items():
            try:
                pp = moe_pairs_plan(e, h, inter, pairs, dtype=torch.bfloat16, device=0, **kw)
                forms[label] = (lambda pp=pp: [pp.run(x, wts, ids, w13, w2) for w13, w2 in layers])
            except Exception as exc:  # noqa: BLE001 - a variant a shape does not take
                cells.append(f"{label}: {type(exc).__name__} {str(exc)[:50]}")
        try:  # the streaming GEMV takes k in steps of 64: GLM-4.5-Air's 352 rows a rank are refused (session 54)
            op = one_token_moe_plan(e, h, inter, pairs, torch.bfloat16, device=0)
            forms["one-token GEMVs"] = lambda op=op: [op.run(x, wts, ids, w13, w2) for w13, w2 in layers]
        except ValueError as exc:
            cells.append(f"one-token GEMVs: {str(exc)[:60]}")
        for label, fn in forms.items():
            try:
                graph, out = capture(fn)
                us = time_replays(graph.replay, reps=30)["ms"] * 1e3 / LAYERS
                del graph
                got = out[-1].float()
                ref = got if ref is None else ref
                err = float((got - ref).norm() / ref.norm())
                cells.append(f"{label} {us:.1f} ({nbytes / (us / 1e6) / read:.0%}, {err:.0e})")
            except Exception as exc:  # noqa: BLE001
                cells.append(f"{label}: {type(exc).__name__} {str(exc)[:50]}")
        print(f"{name}, {pairs} experts, {nbytes / 1e6:.1f} MB: " + " | ".join(cells), flush=True)
        del layers
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
