"""The bundled skinny GEMM / MoE pairs kernel (kvplan/kernels/skinny_gemm.cu) against the torch forms verify used
before it, on a GPU. Every timing is a CUDA graph over every layer's weights (so they stream from HBM, not L2),
CUDA events, median of the replays.

    python3 benchmarks/skinny_gemm.py [--out results.json]
    python3 benchmarks/skinny_gemm.py --sweep [--out sweep.json]   # default out: $OUT/skinny_sweep.json
    python3 benchmarks/skinny_gemm.py --moe-sweep                  # MoE pairs-kernel variants (MOE_VARIANTS)
    python3 benchmarks/skinny_gemm.py --moe-large [--dequant] [--sizes 295,512]   # gpt-oss experts above 16 tokens
    python3 benchmarks/skinny_gemm.py --stream                     # whole-model stream, PDL on and off
    python3 benchmarks/skinny_gemm.py --gemv [--out FILE]          # the streaming GEMV's forms against F.linear
    python3 benchmarks/skinny_gemm.py --moe-batch                  # 16-bit experts above 16 tokens: by expert or grouped

Dense: the four linears of Llama-3.1-8B, Llama-3.2-1B and Qwen3-14B (tp 1) at batch 1, 2, 4, 8, F.linear vs
the kernel, bytes / time against kvplan.kernels.probes.read_bandwidth (each shape's layers in one graph). MoE: the routed experts of one layer
(Mixtral-8x7B tp 2 shard, DeepSeek-V2-Lite, gpt-oss-20b mxfp4) at batch 1, 4, 8: verify's torch path of before
(kvplan/gpu/ffn.py MoE._pairs / _grouped as it chose them) vs the kernel, microseconds per layer.

--sweep: the dense shapes only, F.linear against every variant of skinny_config.SWEEP (weight chunks per lane
per step, CTAs per SM, L2 prefetch, k-split rule); one table of shape, batch, variant, us per layer, TB/s and %
of read bandwidth, then the best variant per shape and each variant's whole-model stream. A variant that fails
to compile, plan or run is recorded with its error and the sweep goes on. About a minute on an H200.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import types

import torch
import torch.nn.functional as F

from kvplan.gpu.ffn import SLOT_FACTOR, MoE
from kvplan.gpu.timing import capture, time_replays
from kvplan.kernels import batch, build
from kvplan.kernels import skinny_config as sc
from kvplan.kernels.probes import read_bandwidth
from kvplan.kernels.skinny import moe_pairs_plan, skinny_gemm_plan
from kvplan.model.routing import Routing

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
    "Qwen3-Next-80B tp2": (512, 2048, 256, 10, "bf16", 4),
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


def _model_weights(layers, shapes):
    """Every layer's bf16 weights of a DENSE model, in step order, and their bytes."""
    ws = [[torch.randn(*s, dtype=torch.bfloat16, device="cuda") * s[1] ** -0.5 for s in shapes]
          for _ in range(layers)]
    return ws, sum(w.numel() * 2 for layer in ws for w in layer)


def stream(read_bw):
    """--stream: one graph per model and batch of every linear of every layer in a decode step's order (qkv, o,
    gate_up, down; the inputs fixed), so each matmul follows a different one, as in a step: F.linear against the
    kernel launched with programmatic dependent launch (each GEMM's first weights prefetched while the one before
    drains) and without (KVPLAN_PDL=0), % of read bandwidth."""
    rows = []
    for model, (layers, shapes) in DENSE.items():
        ws, nbytes = _model_weights(layers, shapes)
        forms = {}
        for pdl in ("1", "0"):
            os.environ["KVPLAN_PDL"] = pdl  # read when a plan packs its launches
            forms[f"kernel pdl={pdl}"] = {s: skinny_gemm_plan(s[0], s[1], torch.bfloat16, max_batch=8) for s in shapes}
        os.environ.pop("KVPLAN_PDL")
        for b in BATCHES:
            xs = {s[1]: torch.randn(b, s[1], dtype=torch.bfloat16, device="cuda") for s in shapes}
            row = {"model": model, "batch": b, "bytes": nbytes}
            t = timed(lambda: [F.linear(xs[w.shape[1]], w) for layer in ws for w in layer])
            row["F.linear_ms"], row["F.linear_read"] = t, nbytes / t * 1e3 / read_bw
            for name, plans in forms.items():
                t = timed(lambda: [plans[tuple(w.shape)].run(xs[w.shape[1]], w) for layer in ws for w in layer])
                row[f"{name}_ms"], row[f"{name}_read"] = t, nbytes / t * 1e3 / read_bw
            rows.append(row)
            print(f"{model:13s} b{b}: " + ", ".join(f"{k[:-5]} {100 * v:5.1f}%" for k, v in row.items()
                                                     if k.endswith("_read")), flush=True)
        del ws, forms
        torch.cuda.empty_cache()
    return rows


# the plan's default ("gemv": 8 stages, or two CTAs per SM with 6 for tall shapes, 64-row boxes, 128-byte L2
# promotion, evict-first weights) and variants measured against it (sessions 17-22; "own": whole 16-row slices a
# CTA, gemv_stream.cu KVP_GV_OWN); --forms NAME[,NAME]
# keeps some (the first is the per-shape one)
GEMV_FORMS = {"gemv": {}, "c1 d8": {"ctas_per_sm": 1, "depth": 8}, "gemv d12": {"depth": 12}, "gemv d6 mt2": {"depth": 6, "mma_tiles": 2},
              "gemv d8 l2=256": {"l2_promotion": 256}, "gemv d8 l2=0": {"l2_promotion": 0},
              "no ef": {"evict_first": False}, "d10": {"depth": 10}, "d6": {"depth": 6},
              "c2 d4": {"ctas_per_sm": 2, "depth": 4}, "c2 d6": {"ctas_per_sm": 2, "depth": 6},
              "rot": {"rotate": True}, "c1 rot": {"ctas_per_sm": 1, "depth": 8, "rotate": True},
              "c2 rot": {"ctas_per_sm": 2, "depth": 6, "rotate": True},
              "own": {"own": True, "ctas_per_sm": 1, "depth": 8}, "own d6": {"own": True, "ctas_per_sm": 1, "depth": 6},
              "own d4": {"own": True, "ctas_per_sm": 1, "depth": 4},
              "own c2 d4": {"own": True, "ctas_per_sm": 2, "depth": 4},
              "own c2 d5": {"own": True, "ctas_per_sm": 2, "depth": 5},
              "own c2 d6": {"own": True, "ctas_per_sm": 2, "depth": 6}, "own auto": {"own": True},
              "own c2 d8": {"own": True, "ctas_per_sm": 2, "depth": 8}, "c2 d8": {"ctas_per_sm": 2, "depth": 8},
              "c2 d10": {"ctas_per_sm": 2, "depth": 10},
              # session 36: the release store's cost (gemv_stream.cu gv_release), A/B on one machine
              "gemv nors": {"release_store": False}, "own c2 d8 nors": {"own": True, "ctas_per_sm": 2, "depth": 8,
                                                                       "release_store": False}}


def gemv(read_bw, forms=None, per_shape_all=False):
    """--gemv: the streaming GEMV (kvplan/kernels/gemv_stream.py) against F.linear, % of read bandwidth: per shape
    (every layer's matrix of that shape back to back) at the default form, then the whole-model stream (as
    --stream) for every form of GEMV_FORMS and the default without PDL."""
    from kvplan.kernels.gemv_stream import gemv_stream_plan

    forms = forms or GEMV_FORMS
    rows = []
    for model, (layers, shapes) in DENSE.items():
        ws, nbytes = _model_weights(layers, shapes)
        plans = {}
        for name, opts in forms.items():
            plans[name] = {s: gemv_stream_plan(s[0], s[1], torch.bfloat16, device=0, **opts) for s in shapes}
        os.environ["KVPLAN_PDL"] = "0"
        plans["gemv pdl=0"] = {s: gemv_stream_plan(s[0], s[1], torch.bfloat16, device=0) for s in shapes}
        os.environ.pop("KVPLAN_PDL")
        first = next(iter(forms))
        regs = {name: p[shapes[0]].registers for name, p in plans.items()}
        print(f"{model}: registers {regs}", flush=True)
        for b in BATCHES:
            xs = {s[1]: torch.randn(b, s[1], dtype=torch.bfloat16, device="cuda") for s in shapes}
            row = {"model": model, "batch": b, "bytes": nbytes, "shapes": {}}
            for i, s in enumerate(shapes):
                by = layers * s[0] * s[1] * 2
                t_lin = timed(lambda: [F.linear(xs[s[1]], layer[i]) for layer in ws])
                cell = row["shapes"][f"{s[0]}x{s[1]}"] = {"F.linear": by / t_lin * 1e3 / read_bw}
                for name in (forms if per_shape_all else [first]):
                    t_gv = timed(lambda: [plans[name][s].run(xs[s[1]], layer[i]) for layer in ws])
                    cell[name] = by / t_gv * 1e3 / read_bw
                    # what one launch loses against the read rate (us): the figure the next steps aim at
                    row.setdefault("loss_us", {}).setdefault(f"{s[0]}x{s[1]}", {})[name] = \
                        (t_gv - by / read_bw * 1e3) / layers * 1e3
            t = timed(lambda: [F.linear(xs[w.shape[1]], w) for layer in ws for w in layer])
            row["F.linear_ms"], row["F.linear_read"] = t, nbytes / t * 1e3 / read_bw
            for name, p in plans.items():
                t = timed(lambda: [p[tuple(w.shape)].run(xs[w.shape[1]], w) for layer in ws for w in layer])
                row[f"{name}_ms"], row[f"{name}_read"] = t, nbytes / t * 1e3 / read_bw
            rows.append(row)
            per_shape = "; ".join(f"{k} " + "/".join(f"{100 * x:.1f}" for x in v.values())
                                  for k, v in row["shapes"].items())
            print(f"{model:13s} b{b}: " + ", ".join(f"{k[:-5]} {100 * v:5.1f}%" for k, v in row.items()
                                                     if k.endswith("_read"))
                  + f" | per shape F.linear/{'/'.join(forms if per_shape_all else [first])}: "
                  + per_shape, flush=True)
            print(f"{'':13s}     us lost per launch: " + "; ".join(
                f"{k} " + "/".join(f"{x:.1f}" for x in v.values()) for k, v in row["loss_us"].items()), flush=True)
        del ws, plans
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


# --moe-sweep: pairs-kernel variants per MoE layer (weight chunks per lane per step, CTAs per SM, forced k split)
MOE_VARIANTS = {"default": {}, "u2": dict(unroll=2), "u4": dict(unroll=4), "mb1": dict(min_blocks=1),
                "mb2": dict(min_blocks=2), "u4 mb1": dict(unroll=4, min_blocks=1), "ks1": dict(ksplit=1),
                "ks2": dict(ksplit=2), "ks4": dict(ksplit=4), "fill": dict(ksplit_rule="fill")}


def moe(read_bw, variants=None):
    """The routed experts of one layer, us per layer: verify's old torch path against the pairs kernel, or (with
    ``variants``: name -> moe_pairs_plan options) the kernel's variants against each other."""
    rows = []
    for model, (experts, hidden, inter, top_k, fmt, layers) in MOE.items():
        arch = types.SimpleNamespace(experts=experts, top_k=top_k, activation="silu", gated_mlp=True,
                                     experts_format="mxfp4" if fmt == "mxfp4" else "bf16", shared_intermediate=0,
                                     shared_gate=False, hidden=hidden)
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
            touched = distinct * per_expert
            if variants is not None:
                _moe_variants(rows, model, blocks, variants, x, weights, ids, b, distinct, touched, layers, read_bw)
                continue
            old = "_pairs" if SLOT_FACTOR * ids.numel() < experts else "_grouped"
            t_old = timed(lambda: [getattr(m, old)(x, weights, ids) for m in blocks], reps=10)
            t_new = timed(lambda: [m.experts(x, weights, ids) for m in blocks])
            rows.append({"model": model, "batch": b, "distinct_experts": distinct, "before": f"torch {old}",
                         "before_us_per_layer": t_old / layers * 1e3, "kernel_us_per_layer": t_new / layers * 1e3,
                         "kernel_TBps_touched": touched / (t_new / layers) / 1e9,
                         "kernel_read": touched / (t_new / layers) * 1e3 / read_bw,
                         "ksplits": blocks[0].pairs.ksplits[b]})
            print(json.dumps(rows[-1]))
        del blocks
        torch.cuda.empty_cache()
    return rows


# 16-bit experts at verify's large batches, shared experts joined (weights.join_shared_experts): experts, hidden,
# intermediate on the rank, pairs per token, layers allocated, token counts
MOE_BATCH = {  # experts and top k count the joined shared experts (the last `joined`: every token routes to them)
    "Mixtral-8x7B tp2": (8, 4096, 7168, 2, 4, (32, 64, 166, 512), 0),
    "DeepSeek-V2-Lite": (66, 2048, 1408, 8, 4, (32, 64, 128, 408, 1024), 2),
    "Qwen3-Next-80B tp2": (513, 2048, 256, 11, 4, (32, 64, 128, 256, 440, 1024), 1),
}


# --moe-batch: the row-tile kernel's variants timed (name -> moe_pairs_plan options). Session 14 timed rings of 2 / 3
# / 4 steps ({"row_stages": 3}...) and its first ring steps issued before pdl_wait (a variant since removed: level)
ROW_VARIANTS = {"rows": {}}


def moe_batch(read_bw, variants=None):
    """--moe-batch: one layer's 16-bit experts above 16 tokens, ms per layer: the grouped GEMMs (tokens sorted by
    expert, torch._grouped_mm) against the bundled kernel by expert with a row tile per warp (expert_rows, the
    default; joined experts' passes spread over CTA rows) in each of ``variants`` (ROW_VARIANTS: name -> plan
    options), with pairs per
    expert and the time of reading every expert once at the read bandwidth. Joined shared experts get every token
    (as verify routes them), the rest top k of random scores."""
    rows = []
    for model, (experts, hidden, inter, top_k, layers, sizes, joined) in MOE_BATCH.items():
        arch = types.SimpleNamespace(experts=experts, top_k=top_k, activation="silu", gated_mlp=True,
                                     experts_format="bf16", shared_intermediate=0, shared_gate=False,
                                     hidden=hidden)
        blocks = [MoE(arch, {"router": torch.randn(experts, hidden, dtype=torch.bfloat16, device="cuda"),
                             "w13": torch.randn(experts, 2 * inter, hidden, dtype=torch.bfloat16, device="cuda")
                             * hidden ** -.5,
                             "w2": torch.randn(experts, hidden, inter, dtype=torch.bfloat16, device="cuda")
                             * inter ** -.5}, types.SimpleNamespace(labels={})) for _ in range(layers)]
        floor = 3 * experts * inter * hidden * 2 / read_bw * 1e3
        plans = {v: moe_pairs_plan(experts, hidden, inter, top_k, dtype=torch.bfloat16, expert_rows=True,
                                   joined=joined, **opts) for v, opts in (variants or ROW_VARIANTS).items()}
        for t in sizes:
            x = torch.randn(t, hidden, dtype=torch.bfloat16, device="cuda")
            routed = experts - joined
            ids = torch.rand(t, routed, device="cuda").topk(top_k - joined, dim=-1).indices
            ids = torch.cat([ids, torch.arange(routed, experts, device="cuda").expand(t, joined)], 1).contiguous()
            weights = torch.softmax(torch.rand(t, top_k, device="cuda"), -1)
            grouped = timed(lambda: [m._grouped(x, weights, ids) for m in blocks], reps=10) / layers
            row = {"model": model, "tokens": t, "pairs_per_expert": t * top_k / experts, "grouped_ms": grouped,
                   "all_experts_once_ms": floor}
            for v, plan in plans.items():
                row[f"{v}_ms"] = timed(lambda: [plan.run(x, weights, ids, m.w["w13"], m.w["w2"])
                                                      for m in blocks], reps=10) / layers
            rows.append(row)
            print(json.dumps(row), flush=True)
        del blocks
        torch.cuda.empty_cache()
    return rows


def moe_large(read_bw, sizes=(17, 32, 64, 128, 256, 295, 384, 512, 1024), dequant=False):
    """gpt-oss-20b's routed experts (one layer's, 8 layers allocated) above 16 tokens, ms a layer: MoEPairsPlan.run's
    by-expert launches (below ffn.MXFP4_GROUPED_TOKENS) with a row tile per warp (the default since session 64) and
    with warps splitting k (expert_rows=False, the form before); with ``dequant`` also every expert dequantised to
    bf16 by the mxfp4 kernel into the layers' one scratch then the grouped GEMMs (ffn.MoE._grouped, what verify runs
    from the threshold on), and the dequantisation alone."""
    experts, hidden, inter, top_k, fmt, layers = MOE["gpt-oss-20b"]
    plans = {name: moe_pairs_plan(experts, hidden, inter, top_k, dtype=torch.bfloat16, weight_format=fmt,
                                  expert_rows=rows) for name, rows in (("rows", True), ("k_split", False))}
    ws = [((torch.randint(0, 256, (experts, 2 * inter, hidden // 2), dtype=torch.uint8, device="cuda"),
            torch.randint(119, 125, (experts, 2 * inter, hidden // 32), dtype=torch.uint8, device="cuda")),
           (torch.randint(0, 256, (experts, hidden, inter // 2), dtype=torch.uint8, device="cuda"),
            torch.randint(119, 125, (experts, hidden, inter // 32), dtype=torch.uint8, device="cuda")))
          for _ in range(layers)]
    per_layer_bytes = sum(t.numel() for pair in ws[0] for t in pair)
    if dequant:
        arch = types.SimpleNamespace(experts=experts, top_k=top_k, activation="silu", gated_mlp=True,
                                     experts_format="mxfp4", shared_intermediate=0, shared_gate=False, hidden=hidden,
                                     routing=Routing())
        rt = types.SimpleNamespace(labels={})
        blocks = [MoE(arch, {"router": torch.randn(experts, hidden, dtype=torch.bfloat16, device="cuda"),
                             "w13_blocks": w13[0], "w13_scales": w13[1], "w2_blocks": w2[0], "w2_scales": w2[1]}, rt)
                  for w13, w2 in ws]
    rows = []
    for t in sizes:
        x = torch.randn(t, hidden, dtype=torch.bfloat16, device="cuda")
        ids = torch.rand(t, experts, device="cuda").topk(top_k, dim=-1).indices
        wts = torch.softmax(torch.rand(t, top_k, device="cuda"), -1)
        out = torch.empty_like(x)
        row = {"tokens": t}
        for name, plan in plans.items():
            ms = timed(lambda: [plan.run(x, wts, ids, *w, out=out) for w in ws], reps=5) / layers
            row[f"{name}_ms_per_layer"] = ms
            row[f"{name}_read_once"] = per_layer_bytes / (ms / 1e3) / read_bw
        if dequant:
            row["dequant_grouped_ms_per_layer"] = timed(lambda: [m._grouped(x, wts, ids) for m in blocks],
                                                        reps=5) / layers
            row["dequant_only_ms_per_layer"] = timed(
                lambda: [(m._dequantized("w13", torch.bfloat16), m._dequantized("w2", torch.bfloat16))
                         for m in blocks], reps=5) / layers
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _moe_variants(rows, model, blocks, variants, x, weights, ids, b, distinct, touched, layers, read_bw):
    base, plan0 = None, blocks[0].pairs
    w = blocks[0].w
    for name, opts in variants.items():
        row = {"model": model, "batch": b, "distinct_experts": distinct, "variant": name}
        try:
            plan = moe_pairs_plan(plan0.experts, plan0.hidden, plan0.intermediate, plan0.top_k,
                                  dtype=plan0.dtype, weight_format=plan0.weight_format, activation="silu", **opts)
            args = [((m.w["w13_blocks"], m.w["w13_scales"]), (m.w["w2_blocks"], m.w["w2_scales"]))
                    if "w13_blocks" in m.w else (m.w["w13"], m.w["w2"]) for m in blocks]
            got = plan.run(x, weights, ids, *args[0]).float()
            base = got if base is None else base
            ms = timed(lambda: [plan.run(x, weights, ids, *a) for a in args])
            row.update(us_per_layer=ms / layers * 1e3, read=touched / (ms / layers) * 1e3 / read_bw,
                       ksplits=plan.ksplits[b], rel_vs_default=float((got - base).abs().max() / base.abs().max()))
        except Exception as exc:  # noqa: BLE001  (a variant that cannot build or run is recorded, the sweep goes on)
            row["error"] = f"{type(exc).__name__}: {exc}"[:300]
        rows.append(row)
        print(json.dumps(row), flush=True)


def _resources(arch: str) -> dict:
    """Per sweep variant: its cubin's name and ptxas's registers / spill stores of the bf16 kernels (compiled
    in parallel processes here, so the timing loop below only loads cubins)."""
    configs = {v: sc.variant("bf16", o.get("unroll"), o.get("min_blocks"), o.get("prefetch"))
               for v, o in sc.SWEEP.items()}
    unique = list({c.name: c for c in configs.values()}.values())
    out = {}
    try:
        batch.compile_all((arch,), unique, workers=min(len(unique), os.cpu_count() or 1))
    except Exception as exc:  # each variant is tried again below and fails on its own
        print(f"parallel compile failed: {exc}")
    for v, cfg in configs.items():
        info = {"config": cfg.name}
        try:
            report = build.compile_entry(cfg, arch)[1]
            for kern in ("kvp_skinny_bf16_c8", "kvp_skinny_bf16_c16"):
                body = report.split(f"Function properties for {kern}", 1)[1]
                info[kern[11:]] = {"registers": int(re.search(r"Used (\d+) registers", body).group(1)),
                                   "spill_stores": int(re.search(r"(\d+) bytes spill stores", body).group(1))}
        except Exception as exc:
            info["error"] = f"{type(exc).__name__}: {exc}"
        out[v] = info
    return out


def _plans(s):
    plans = {}
    for v, opts in sc.SWEEP.items():
        try:
            plans[v] = skinny_gemm_plan(s[0], s[1], torch.bfloat16, max_batch=8, **opts)
        except Exception as exc:
            plans[v] = f"{type(exc).__name__}: {exc}"
    return plans


def sweep(read_bw, reps=15):
    """Every dense shape at every batch: F.linear and each SWEEP variant; returns the rows (JSON)."""
    rows = []
    for model, (layers, shapes) in DENSE.items():
        for s in shapes:
            ws = [torch.randn(*s, dtype=torch.bfloat16, device="cuda") * s[1] ** -0.5 for _ in range(layers)]
            by = sum(w.numel() * 2 for w in ws)
            plans = _plans(s)
            for b in BATCHES:
                x = torch.randn(b, s[1], dtype=torch.bfloat16, device="cuda")
                done = {}  # (cubin, ksplit) -> ms: a variant that launches exactly what another did is not re-timed
                for v in ("F.linear",) + tuple(sc.SWEEP):
                    row = {"model": model, "shape": list(s), "batch": b, "variant": v}
                    plan = plans.get(v)
                    try:
                        if v == "F.linear":
                            ms = timed(lambda: [F.linear(x, w) for w in ws], reps)
                        elif isinstance(plan, str):
                            raise RuntimeError(plan)
                        else:
                            key = (plan.config.name, plan.ksplits[b])
                            row["ksplit"] = plan.ksplits[b]
                            if key in done:
                                ms, row["same_launch_as"] = done[key]
                            else:
                                ms = timed(lambda: [plan.run(x, w) for w in ws], reps)
                                done[key] = (ms, v)
                        row.update(us=ms / layers * 1e3, TBps=by / ms / 1e9, read=by / ms * 1e3 / read_bw, ms=ms, bytes=by)
                    except Exception as exc:
                        row["error"] = f"{type(exc).__name__}: {exc}"
                    rows.append(row)
                    print(_line(row), flush=True)
            del ws, plans
            torch.cuda.empty_cache()
    return rows


def _line(r) -> str:
    head = f"{r['model']:13s} {str(tuple(r['shape'])):15s} {r['batch']:>2d} {r['variant']:9s}"
    if "error" in r:
        return f"{head}  ERROR {r['error'][:200]}"
    extra = f" ks {r['ksplit']}" if "ksplit" in r else ""
    extra += f" (= {r['same_launch_as']})" if "same_launch_as" in r else ""
    return f"{head} {r['us']:9.1f} {r['TBps']:6.3f} {100 * r['read']:6.1f}%{extra}"


def summary(rows, read_bw) -> dict:
    """Best variant per shape (mean % of read over the batches) and each variant's whole-model % per batch."""
    ok = [r for r in rows if "error" not in r]
    cell = {}  # (model, shape, batch) -> {variant: row}
    for r in ok:
        cell.setdefault((r["model"], tuple(r["shape"]), r["batch"]), {})[r["variant"]] = r
    best = {}
    for m, (_, shapes) in DENSE.items():
        for s in shapes:
            cells = [cell.get((m, s, b), {}) for b in BATCHES]
            common = set.intersection(*(set(c) for c in cells))
            if not common:
                continue
            mean = {v: sum(c[v]["read"] for c in cells) / len(cells) for v in common}
            top = max(mean, key=mean.get)
            best[f"{m} {s}"] = {"best": top, "read": mean[top], "F.linear": mean.get("F.linear"), "u2": mean.get("u2")}
    model = {}
    for m, (_, shapes) in DENSE.items():
        for v in ("F.linear",) + tuple(sc.SWEEP) + ("best kernel", "best of all"):
            per = []
            for b in BATCHES:
                chosen = []
                for s in shapes:
                    c = cell.get((m, s, b), {})
                    if v == "best of all":
                        c = list(c.values())
                    elif v == "best kernel":
                        c = [r for k, r in c.items() if k != "F.linear"]
                    else:
                        c = [c[v]] if v in c else []
                    chosen.append(min(c, key=lambda r: r["ms"]) if c else None)
                if any(r is None for r in chosen):
                    per.append(None)
                else:
                    nbytes = sum(r["bytes"] for r in chosen)
                    per.append(nbytes / sum(r["ms"] for r in chosen) * 1e3 / read_bw)
            model[f"{m} {v}"] = per
    return {"best_per_shape": best, "model_read": model}


def _keep(argv, flag: str, table: dict) -> None:
    """``flag NAME[,NAME]`` on the command line: drop the other entries of ``table``."""
    if flag in argv:
        keep = argv[argv.index(flag) + 1].split(",")
        for name in [m for m in table if m not in keep]:
            del table[name]


def _bandwidth():
    bw = read_bandwidth()
    print(f"read bandwidth {bw.bytes_per_s / 1e12:.3f} TB/s ({bw.method})")
    return bw


def main_sweep(argv):
    out = argv[argv.index("--out") + 1] if "--out" in argv else os.path.join(os.environ.get("OUT", "."),
                                                                              "skinny_sweep.json")
    t0 = time.perf_counter()
    bw = _bandwidth()
    from kvplan.kernels import _runtime as rt

    arch = rt.device_info(torch.cuda.current_device()).arch
    result = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "read_bandwidth": bw.to_dict(),
              "variants": sc.SWEEP, "resources": _resources(arch)}
    for v, info in result["resources"].items():
        print(f"variant {v:9s} {json.dumps(info)}")
    print(f"{'model':13s} {'shape':15s} {'b':>2s} {'variant':9s} {'us/layer':>9s} {'TB/s':>6s} {'read':>7s}")
    result["sweep"] = sweep(bw.bytes_per_s)
    result["seconds"] = time.perf_counter() - t0
    with open(out, "w") as f:  # the rows first: a summary that fails loses nothing measured
        json.dump(result, f, indent=1)
    result.update(summary(result["sweep"], bw.bytes_per_s))
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print("\nbest variant per shape (mean % of read over batches 1, 2, 4, 8):")
    for k, v in result["best_per_shape"].items():
        fl, u2 = v["F.linear"], v["u2"]
        print(f"  {k:36s} {v['best']:9s} {100 * v['read']:5.1f}%  (F.linear {100 * fl if fl else float('nan'):5.1f}%, "
              f"u2 {100 * u2 if u2 else float('nan'):5.1f}%)")
    print("\nwhole-model weight stream, % of read at batch 1 / 2 / 4 / 8:")
    for k, per in result["model_read"].items():
        print(f"  {k:32s} " + " / ".join("  -  " if p is None else f"{100 * p:5.1f}" for p in per))
    print(f"sweep took {result['seconds']:.1f} s; JSON: {out}")


def main(argv):
    if "--sweep" in argv:
        return main_sweep(argv)
    if "--stream" in argv:
        return stream(_bandwidth().bytes_per_s)
    if "--gemv" in argv:  # [--out FILE]: the rows as JSON too; [--forms A,B]; [--per-shape-all]; [--only MODEL]
        _keep(argv, "--forms", GEMV_FORMS)
        _keep(argv, "--only", DENSE)
        rows = gemv(_bandwidth().bytes_per_s, per_shape_all="--per-shape-all" in argv)
        if "--out" in argv:
            with open(argv[argv.index("--out") + 1], "w") as f:
                json.dump(rows, f, indent=1)
        return rows
    if "--moe-batch" in argv:  # [--only NAME[,NAME]]: some of MOE_BATCH's models
        _keep(argv, "--only", MOE_BATCH)
        return moe_batch(_bandwidth().bytes_per_s)
    if "--moe-large" in argv:  # [--sizes N[,N]]: token counts
        sizes = tuple(int(v) for v in argv[argv.index("--sizes") + 1].split(",")) if "--sizes" in argv else None
        return moe_large(_bandwidth().bytes_per_s, dequant="--dequant" in argv, **({"sizes": sizes} if sizes else {}))
    if "--moe-sweep" in argv:  # [--only NAME[,NAME]]: some of MOE's models; [--variants NAME[,NAME]]: some variants
        _keep(argv, "--only", MOE)
        _keep(argv, "--variants", MOE_VARIANTS)
        return moe(_bandwidth().bytes_per_s, MOE_VARIANTS)
    out = argv[argv.index("--out") + 1] if "--out" in argv else "skinny_bench.json"
    bw = _bandwidth()
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
