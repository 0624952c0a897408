"""The bundled skinny GEMM / MoE pairs kernel (kvplan/kernels/skinny_gemm.cu) against the torch forms verify used
before it, on a GPU. Every timing is a CUDA graph over every layer's weights (so they stream from HBM, not L2),
CUDA events, median of the replays.

    python3 benchmarks/skinny_gemm.py [--out results.json]

Dense: the four linears of Llama-3.1-8B, Llama-3.2-1B and Qwen3-14B (tp 1) at batch 1, 2, 4, 8, F.linear vs
the kernel, bytes / time against kvplan.kernels.probes.read_bandwidth. MoE: the routed experts of one layer
(Mixtral-8x7B tp 2 shard, DeepSeek-V2-Lite, gpt-oss-20b mxfp4) at batch 1, 4, 8: verify's torch path of before
(kvplan/gpu/ffn.py MoE._pairs / _grouped as it chose them) vs the kernel, microseconds per layer.
"""

from __future__ import annotations

import json
import sys
import types

import torch
import torch.nn.functional as F

from kvplan.gpu.ffn import SLOT_FACTOR, MoE
from kvplan.gpu.timing import capture, time_replays
from kvplan.kernels.probes import read_bandwidth
from kvplan.kernels.skinny import moe_pairs_plan, skinny_gemm_plan

# (rows, cols) of qkv, o, gate_up, down from each config.json: hidden, heads x head_dim, kv heads, intermediate
DENSE = {
    "Llama-3.1-8B": (32, [(6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336)]),
    "Llama-3.2-1B": (16, [(3072, 2048), (2048, 2048), (16384, 2048), (2048, 8192)]),
    "Qwen3-14B": (40, [(7168, 5120), (5120, 5120), (34816, 5120), (5120, 17408)]),
}
# experts, hidden, intermediate on the rank, top_k, format, layers allocated (several GB: far past L2)
MOE = {
    "Mixtral-8x7B tp2": (8, 4096, 7168, 2, "bf16", 4),
    "DeepSeek-V2-Lite": (64, 2048, 1408, 6, "bf16", 4),
    "gpt-oss-20b": (32, 2880, 2880, 4, "mxfp4", 8),
}
BATCHES = (1, 2, 4, 8)
MOE_BATCHES = (1, 4, 8)


def timed(fn, reps=20):
    graph, _ = capture(fn)
    t = time_replays(graph.replay, reps=reps)["ms"]
    del graph
    return t


def dense(read_bw):
    rows = []
    for model, (layers, shapes) in DENSE.items():
        weights = {s: [torch.randn(*s, dtype=torch.bfloat16, device="cuda") * s[1] ** -0.5 for _ in range(layers)]
                   for s in shapes}
        plans = {s: skinny_gemm_plan(s[0], s[1], torch.bfloat16, max_batch=8) for s in shapes}
        for b in BATCHES:
            total = {"F.linear": 0.0, "kernel": 0.0, "best": 0.0}
            nbytes = 0
            for s in shapes:
                x = torch.randn(b, s[1], dtype=torch.bfloat16, device="cuda")
                ws = weights[s]
                t_lin = timed(lambda: [F.linear(x, w) for w in ws])
                t_k = timed(lambda: [plans[s].run(x, w) for w in ws])
                by = sum(w.numel() * 2 for w in ws)
                nbytes += by
                total["F.linear"] += t_lin
                total["kernel"] += t_k
                total["best"] += min(t_lin, t_k)
                rows.append({"model": model, "shape": list(s), "batch": b, "ksplit": plans[s].ksplits[b],
                             "F.linear_TBps": by / t_lin / 1e9, "kernel_TBps": by / t_k / 1e9,
                             "F.linear_read": by / t_lin * 1e3 / read_bw, "kernel_read": by / t_k * 1e3 / read_bw})
                print(json.dumps(rows[-1]))
            rows.append({"model": model, "shape": "all", "batch": b, "bytes": nbytes,
                         **{f"{k}_ms": v for k, v in total.items()},
                         **{f"{k}_read": nbytes / v * 1e3 / read_bw for k, v in total.items()}})
            print(json.dumps(rows[-1]))
        del weights, plans
        torch.cuda.empty_cache()
    return rows


def ksplit_sweep(read_bw):
    """Each Llama-3.1-8B / Llama-3.2-1B shape at batch 1 and 8 with the k split forced: the data behind
    skinny_config.choose_ksplit."""
    rows = []
    for model in ("Llama-3.1-8B", "Llama-3.2-1B"):
        layers, shapes = DENSE[model]
        for s in shapes:
            ws = [torch.randn(*s, dtype=torch.bfloat16, device="cuda") for _ in range(layers)]
            by = sum(w.numel() * 2 for w in ws)
            for b in (1, 8):
                x = torch.randn(b, s[1], dtype=torch.bfloat16, device="cuda")
                row = {"model": model, "shape": list(s), "batch": b,
                       "chosen": skinny_gemm_plan(s[0], s[1], torch.bfloat16, max_batch=8).ksplits[b]}
                for ks in (1, 2, 3, 4, 8):
                    plan = skinny_gemm_plan(s[0], s[1], torch.bfloat16, max_batch=8, ksplit=ks)
                    row[f"ks{ks}_read"] = by / timed(lambda: [plan.run(x, w) for w in ws]) * 1e3 / read_bw
                rows.append(row)
                print(json.dumps(row))
            del ws
    torch.cuda.empty_cache()
    return rows


def moe(read_bw):
    rows = []
    for model, (experts, hidden, inter, top_k, fmt, layers) in MOE.items():
        arch = types.SimpleNamespace(experts=experts, top_k=top_k, activation="silu", gated_mlp=True,
                                     experts_format="mxfp4" if fmt == "mxfp4" else "bf16", shared_intermediate=0,
                                     hidden=hidden)
        blocks = []
        for _ in range(layers):
            w = {"router": torch.randn(experts, hidden, dtype=torch.bfloat16, device="cuda")}
            if fmt == "mxfp4":
                w["w13_blocks"] = torch.randint(0, 256, (experts, 2 * inter, hidden // 2), dtype=torch.uint8,
                                                device="cuda")
                w["w13_scales"] = torch.randint(119, 125, (experts, 2 * inter, hidden // 32), dtype=torch.uint8,
                                                device="cuda")
                w["w2_blocks"] = torch.randint(0, 256, (experts, hidden, inter // 2), dtype=torch.uint8, device="cuda")
                w["w2_scales"] = torch.randint(119, 125, (experts, hidden, inter // 32), dtype=torch.uint8,
                                               device="cuda")
            else:
                w["w13"] = torch.randn(experts, 2 * inter, hidden, dtype=torch.bfloat16, device="cuda") * hidden ** -.5
                w["w2"] = torch.randn(experts, hidden, inter, dtype=torch.bfloat16, device="cuda") * inter ** -.5
            blocks.append(MoE(arch, w, types.SimpleNamespace(labels={})))
        per_expert = sum(t[0].numel() * t.element_size() for k, t in blocks[0].w.items() if k != "router")
        for b in MOE_BATCHES:
            x = torch.randn(b, hidden, dtype=torch.bfloat16, device="cuda")
            ids = torch.rand(b, experts, device="cuda").topk(top_k, dim=-1).indices
            weights = torch.softmax(torch.rand(b, top_k, device="cuda"), -1)
            distinct = int(ids.unique().numel())
            old = "_pairs" if SLOT_FACTOR * ids.numel() < experts else "_grouped"
            t_old = timed(lambda: [getattr(m, old)(x, weights, ids) for m in blocks], reps=10)
            t_new = timed(lambda: [m.experts(x, weights, ids) for m in blocks])
            touched = distinct * per_expert
            rows.append({"model": model, "batch": b, "distinct_experts": distinct, "before": f"torch {old}",
                         "before_us_per_layer": t_old / layers * 1e3, "kernel_us_per_layer": t_new / layers * 1e3,
                         "kernel_TBps_touched": touched / (t_new / layers) / 1e9,
                         "kernel_read": touched / (t_new / layers) * 1e3 / read_bw,
                         "ksplits": blocks[0].pairs.ksplits[b]})
            print(json.dumps(rows[-1]))
        del blocks
        torch.cuda.empty_cache()
    return rows


def main(argv):
    out = argv[argv.index("--out") + 1] if "--out" in argv else "skinny_bench.json"
    bw = read_bandwidth()
    print(f"read bandwidth {bw.bytes_per_s / 1e12:.3f} TB/s ({bw.method})")
    result = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "read_bandwidth": bw.to_dict()}
    result["dense"] = dense(bw.bytes_per_s)
    result["moe"] = moe(bw.bytes_per_s)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    result["ksplit_sweep"] = ksplit_sweep(bw.bytes_per_s)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
