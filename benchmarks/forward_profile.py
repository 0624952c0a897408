"""Where verify's decode step spends its time, kernel by kernel: one rank of a bundled model (dummy weights of its
real shapes, tp 1 unless given), every paged layer on its own small pool, `batch` sequences of `context` tokens on
shuffled blocks; the matmul forms chosen as verify chooses them; the step timed as a CUDA graph (what verify
reports) and profiled eagerly with torch.profiler (GPU time per kernel name, summed over the step's launches).

    python3 benchmarks/forward_profile.py MODEL [--batch 1] [--context 4096] [--tp 1] [--top 25] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

sys.path.insert(0, ".")
from kvplan.gpu.caches import small_caches  # noqa: E402
from kvplan.gpu.gemm import choose_forms  # noqa: E402
from kvplan.gpu.generate import decode  # noqa: E402
from kvplan.gpu.model import Runtime, Transformer  # noqa: E402
from kvplan.gpu.rank import fill_random  # noqa: E402
from kvplan.gpu.timing import capture, read_bandwidth, time_replays  # noqa: E402
from kvplan.gpu.weights import allocate_weights  # noqa: E402
from kvplan.model.sources import resolve  # noqa: E402
from kvplan.verify.arch import architecture  # noqa: E402

BLOCK = 16


def build(model_id: str, tp: int, batch: int, context: int):
    raw: list = []
    spec = resolve(model_id, None, raw_out=raw)
    arch = architecture(raw[0], spec, tp)
    weights = allocate_weights(arch, "cuda")
    model = Transformer(arch, weights, Runtime("cuda"))
    per_seq = -(-context // BLOCK)
    model.caches = small_caches(arch, batch * per_seq, BLOCK, batch, torch.bfloat16, "cuda", fill=0.0)
    for cache in model.caches.values():
        for t in cache.tensors:
            if cache.kind == "state":
                t.normal_(0.0, 0.1)
            else:
                fill_random(t)
    ids = torch.randperm(batch * per_seq, device="cuda").to(torch.int32).view(batch, per_seq)
    paged = {c.group for c in model.caches.values() if c.kind != "state"}
    tables = {g: ids for g in paged}
    return arch, weights, model, tables


def kernel_rows(prof, calls: int = 1) -> list:
    """(kernel name, launches, GPU us) per call of what torch.profiler `prof` recorded over `calls` calls, the most
    time first."""
    rows: dict = {}
    for ev in prof.events():
        if ev.device_type != torch.autograd.DeviceType.CUDA:
            continue
        r = rows.setdefault(ev.name, [0, 0.0])
        r[0] += 1
        r[1] += ev.time_range.elapsed_us()
    return sorted(((n, c / calls, us / calls) for n, (c, us) in rows.items()), key=lambda r: -r[2])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--context", type=int, default=4096)
    ap.add_argument("--tp", type=int, default=1)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--json")
    a = ap.parse_args()
    arch, weights, model, tables = build(a.model, a.tp, a.batch, a.context)
    bw = read_bandwidth(2 * 2**30)["bytes_per_s"]
    choose_forms(model.rt.mm, weights, arch.tied_embeddings, bw)
    tokens = torch.randint(0, arch.vocab, (a.batch,), device="cuda")
    positions = torch.full((a.batch,), a.context - 1, dtype=torch.int64, device="cuda")
    slots = torch.arange(a.batch, device="cuda")

    def step():
        return decode(model, tokens, positions, tables, slots).argmax(-1)

    graph, _ = capture(step)
    graph_ms = time_replays(graph.replay, reps=30)["ms"]
    del graph
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    steps = 5
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    table = kernel_rows(prof, steps)
    kernel_us = sum(r[2] for r in table)
    layers = len(arch.layers)
    print(f"{a.model} tp {a.tp} batch {a.batch} context {a.context}: graph step {graph_ms:.3f} ms, "
          f"sum of kernel times {kernel_us / 1e3:.3f} ms, {sum(r[1] for r in table):.0f} launches per step, "
          f"{layers} layers, read bandwidth {bw / 1e12:.2f} TB/s")
    print(f"{'us/step':>9} {'launches':>8} {'us/layer':>8}  kernel")
    for name, count, us in table[:a.top]:
        print(f"{us:9.1f} {count:8.0f} {us / layers:8.2f}  {name[:110]}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"model": a.model, "tp": a.tp, "batch": a.batch, "context": a.context, "graph_ms": graph_ms,
                       "kernel_us": kernel_us, "read_bw": bw,
                       "kernels": [{"name": n, "launches": c, "us": u} for n, c, u in table]}, f, indent=1)


if __name__ == "__main__":
    main()
