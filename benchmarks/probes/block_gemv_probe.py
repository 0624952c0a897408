"""Where the block-scaled fp8 linears of DeepSeek-V3 (tp 8) lose their time at decode batches, on a GPU: each shape's
61 layers of weights in one CUDA graph (so they stream from HBM), per form (us per matrix, % of read bandwidth):

    e4m3       the streaming GEMV's per-tensor e4m3 kernel over x already in e4m3 (the same bytes, no scales)
    block      its block-scaled kernel over x already quantised per token per 128 values (one shared qx, sx)
    quant      the per-token-group quantisation alone (fp8_quant.cu), one launch a layer
    quant+blk  both, as verify's Matmul runs them
    skinny     the skinny kernel's fp8 form (W8A16)
    chain      every shape's quant+blk in a layer's order, over all layers (the decode step's dense linears)

then the routed experts with the joined shared expert (257 x [512 + 256 rows at tp 8], top 8 + 1) through the MoE
pairs kernel's fp8 form, by variant (MOE_VARIANTS), us per layer and % of read over the bytes the layer touches.

    python3 benchmarks/probes/block_gemv_probe.py [--batches=1,8] [--rotate]
    python3 benchmarks/probes/block_gemv_probe.py --experts
    python3 benchmarks/probes/block_gemv_probe.py --experts --by-expert   # 32 / 84 / 256 tokens: k split vs row tiles
    python3 benchmarks/probes/block_gemv_probe.py --prefill     # one MoE layer of a long prompt: by expert vs in chunks
"""
from __future__ import annotations

import sys

import torch

from kvplan.gpu.timing import capture, time_replays
from kvplan.kernels.fp8_quant import fp8_group_quant
from kvplan.kernels.gemv_stream import gemv_stream_plan
from kvplan.kernels.probes import read_bandwidth
from kvplan.kernels.skinny import moe_pairs_plan, skinny_gemm_plan

SHAPES = [(2112, 7168), (3072, 1536), (7168, 2048)]  # q_a + kv_a, q_b, o at tp 8
LAYERS = 61
MOE_LAYERS = 8  # 257 experts of 5.5 MB a layer: 11 GB, the 9 touched a layer 400 MB over all (far past L2)
MOE_VARIANTS = {"default": {}, "u4": {"unroll": 4}, "fill": {"ksplit_rule": "fill"},
                "u4 fill": {"unroll": 4, "ksplit_rule": "fill"}, "pf1": {"prefetch": 1},
                "u8 mb1": {"unroll": 8, "min_blocks": 1}}
if "--ksplits" in sys.argv:  # both stages' CTAs along k forced (call 3)
    MOE_VARIANTS = {"default": {}, **{f"ks{k}": {"ksplit": k} for k in (2, 3, 4, 6, 8)},
                    "ks4 u1": {"ksplit": 4, "unroll": 1}}
if "--by-expert" in sys.argv:  # above the pair slots: the k-split by-expert kernel against the row-tile one
    MOE_VARIANTS = {"by expert (k split)": {}, "by expert (row tiles)": {"expert_rows": True}}
if "--default-only" in sys.argv:  # the plan as verify makes it (call 5: the down launch's warps from its k)
    MOE_VARIANTS = {"default": {}}
# --stages (call 4): (CTAs along k of the gate/up stage, of the down stage), set on a plan made with a split
STAGE_SPLITS = ((1, 1), (2, 1), (3, 1), (4, 1), (7, 1), (1, 2))
E4M3 = torch.float8_e4m3fn


def quant_block(plan, x, q, sc):
    qx, sx = fp8_group_quant(x)
    return plan.run(qx, q, w_scales=sc, x_scales=sx)


def timed(fn, reps=30):
    graph, _ = capture(fn)
    ms = time_replays(graph.replay, reps=reps)["ms"]
    del graph
    return ms


def prefill(sizes=(128, 256, 384, 512, 1024, 2048, 4096, 8192)):
    """verify's MoE layer (kvplan/gpu/ffn.py) on DeepSeek-V3's experts at tp 8 (256 routed + the joined shared
    one, top 8 + 1) over `sizes` tokens: the pairs kernel by expert against FP8_CHUNK_EXPERTS experts at a time
    dequantised and run as grouped GEMMs; ms a layer, eager (as a prefill runs), median of five."""
    import types

    from kvplan.gpu import ffn

    dev = torch.device("cuda")
    e, h, inter, top = 257, 7168, 256, 9

    def fp8(*shape):
        q = (torch.randn(*shape, device=dev) * 16).clamp(-448, 448).to(E4M3)
        return q, torch.rand(shape[0], -(-shape[1] // 128), shape[2] // 128, device=dev) * 1e-3 + 1e-3

    (q13, s13), (q2, s2) = fp8(e, 2 * inter, h), fp8(e, h, inter)
    arch = types.SimpleNamespace(experts=e - 1, top_k=top - 1, activation="silu", gated_mlp=True,
                                 experts_format="fp8_block", shared_intermediate=0, shared_gate=False, hidden=h,
                                 routing=types.SimpleNamespace(on_input=False, describe=lambda: "top-k"))
    moe = ffn.MoE(arch, {"router": torch.randn(e - 1, h, device=dev).bfloat16(), "w13": q13, "w13_scale": s13,
                         "w2": q2, "w2_scale": s2}, types.SimpleNamespace(labels={}))
    for t in sizes:
        x = torch.randn(t, h, device=dev).bfloat16()
        ids = torch.cat([torch.rand(t, e - 1, device=dev).topk(top - 1, dim=-1).indices,
                         torch.full((t, 1), e - 1, device=dev, dtype=torch.int64)], dim=1)
        wts = torch.softmax(torch.rand(t, top, device=dev), -1)
        ms = {}
        for name, threshold, slice_ in (("by expert", 10**9, 2048), ("chunks", 1, 2048), ("chunks 1K", 1, 1024),
                                        ("chunks whole", 1, 10**9)):
            ffn.FP8_GROUPED_TOKENS, ffn.FP8_SLICE_TOKENS = threshold, slice_
            times = []
            for _ in range(6):
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                moe.experts(x, wts, ids)
                b.record()
                torch.cuda.synchronize()
                times.append(a.elapsed_time(b))
            ms[name] = sorted(times[1:])[2]
        print(f"prefill MoE layer, {t} tokens, ms: " + ", ".join(f"{k} {v:.3f}" for k, v in ms.items()))


def main(argv):
    if "--prefill" in argv:
        return prefill()
    if "--experts" in argv:
        return experts(read_bandwidth(4 * 2**30).bytes_per_s, (32, 84, 256) if "--by-expert" in argv else (1, 8))
    arg = next((a.split("=", 1)[1] for a in argv if a.startswith("--batches=")), "1,8")
    batches = [int(b) for b in arg.split(",")]
    rotate = "--rotate" in argv
    read = read_bandwidth(4 * 2**30).bytes_per_s
    dev = torch.device("cuda")
    weights = {s: [((torch.randn(*s, device=dev) * 16).clamp(-448, 448).to(E4M3),
                    torch.rand(-(-s[0] // 128), s[1] // 128, device=dev) * 1e-3 + 1e-3) for _ in range(LAYERS)]
               for s in SHAPES}
    print(f"read bandwidth {read / 1e12:.3f} TB/s; rotate={rotate}")
    for b in batches:
        chain_parts = []
        for s in SHAPES:
            n, k = s
            ws = weights[s]
            nbytes = sum(q.numel() + sc.numel() * 4 for q, sc in ws)
            x = torch.randn(b, k, device=dev).bfloat16()
            qx, sx = fp8_group_quant(x)
            pe = gemv_stream_plan(n, k, E4M3, device=0, rotate=rotate)
            pb = gemv_stream_plan(n, k, E4M3, device=0, rotate=rotate, block_scaled=True)
            pb2 = gemv_stream_plan(n, k, E4M3, device=0, rotate=rotate, block_scaled=True, ctas_per_sm=2, depth=6)
            ps = skinny_gemm_plan(n, k, torch.bfloat16, max_batch=16, device=0, weight_format="fp8")
            forms = {
                "e4m3": lambda: [pe.run(qx, q, scale=1.0) for q, _ in ws],
                "block": lambda: [pb.run(qx, q, w_scales=sc, x_scales=sx) for q, sc in ws],
                "quant": lambda: [fp8_group_quant(x) for _ in ws],
                "block c2": lambda: [pb2.run(qx, q, w_scales=sc, x_scales=sx) for q, sc in ws],
                "quant+blk": lambda: [quant_block(pb, x, q, sc) for q, sc in ws],
                "skinny": lambda: [ps.run(x, (q, sc)) for q, sc in ws],
            }
            row = []
            for name, fn in forms.items():
                ms = timed(fn)
                us = ms * 1e3 / LAYERS
                pct = "" if name == "quant" else f" {nbytes / (ms / 1e3) / read:6.1%}"
                row.append(f"{name} {us:6.2f} us{pct}")
            print(f"b{b} {n}x{k} ({nbytes / LAYERS / 1e6:.1f} MB): " + " | ".join(row))
            chain_parts.append((pb, ws, x))

        def chain():
            for i in range(LAYERS):
                for pb, ws, x in chain_parts:
                    quant_block(pb, x, *ws[i])

        total = sum(sum(q.numel() + sc.numel() * 4 for q, sc in weights[s]) for s in SHAPES)
        ms = timed(chain)
        print(f"b{b} chain of the three shapes a layer: {ms * 1e3 / LAYERS:.2f} us a layer, "
              f"{total / (ms / 1e3) / read:.1%} of read")


def experts(read, batches):
    dev = torch.device("cuda")
    e, h, inter, top = 257, 7168, 256, 9

    def fp8(*shape):
        q = (torch.randn(*shape, device=dev) * 16).clamp(-448, 448).to(E4M3)
        return q, torch.rand(shape[0], -(-shape[1] // 128), shape[2] // 128, device=dev) * 1e-3 + 1e-3

    layers = [(fp8(e, 2 * inter, h), fp8(e, h, inter)) for _ in range(MOE_LAYERS)]
    touched = top * (2 * inter * h + h * inter) * (1 + 4 / 128 ** 2)
    for b in batches:
        x = torch.randn(b, h, device=dev).bfloat16()
        ids = torch.cat([torch.rand(b, e - 1, device=dev).topk(top - 1, dim=-1).indices,
                         torch.full((b, 1), e - 1, device=dev, dtype=torch.int64)], dim=1)
        wts = torch.softmax(torch.rand(b, top, device=dev), -1)
        distinct = int(ids.unique().numel())
        if "--stages" in sys.argv:
            plan = moe_pairs_plan(e, h, inter, top, weight_format="fp8", device=0, ksplit=2)
            for up, down in STAGE_SPLITS:
                plan.ksplits[b] = (up, down)
                ms = timed(lambda: [plan.run(x, wts, ids, w13, w2) for w13, w2 in layers])
                us = ms * 1e3 / MOE_LAYERS
                print(f"experts b{b} ({distinct} distinct) splits up {up} down {down}: {us:.2f} us a layer, "
                      f"{touched * distinct / top / (us / 1e6) / read:.1%} of read")
            continue
        for name, opts in MOE_VARIANTS.items():
            try:
                plan = moe_pairs_plan(e, h, inter, top, weight_format="fp8", device=0, **opts)
                ms = timed(lambda: [plan.run(x, wts, ids, w13, w2) for w13, w2 in layers])
                us = ms * 1e3 / MOE_LAYERS
                split = plan.ksplits.get(b, "by expert")
                print(f"experts b{b} ({distinct} distinct) {name}: {us:.2f} us a layer, "
                      f"{touched * distinct / top / (us / 1e6) / read:.1%} of read, ksplits {split}")
            except Exception as exc:  # noqa: BLE001  (a variant that cannot build or run is reported, the rest go on)
                print(f"experts b{b} {name}: {type(exc).__name__}: {str(exc)[:200]}")


if __name__ == "__main__":
    main(sys.argv[1:])
