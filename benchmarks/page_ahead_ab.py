"""Where shuffled pages cost the shared-ring GQA decode its time, and whether touching the pages ahead takes it back.

Part 1, page orders (same kernel, same tensors): block tables shuffled over the whole cache, shuffled only inside
2 MB spans (the GPU's page size: the spans in address order), whole 2 MB spans shuffled (pages in order inside), and
in address order. If shuffling inside the spans costs little and shuffling the spans costs the rest, the cost is
the address translation; if the reverse, the DRAM neighbourhood.
Part 2, the kernel with `KernelOptions(ahead=N)` (one L2 line of step k + N's K and V touched when step k's copies
are issued) and `ahead_bulk=True` (the step's rows prefetched into L2 in one bulk prefetch), on shuffled pages,
alternating with the default. Outputs must be bit-identical to the default's (a prefetch changes no data).

    python3 benchmarks/page_ahead_ab.py
"""

from __future__ import annotations

import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
import kernel_vs_flashinfer as kvf  # noqa: E402

from kvplan.kernels import KernelOptions, paged_decode_plan, probes  # noqa: E402

DEV = torch.device("cuda")
BF, F8 = torch.bfloat16, torch.float8_e4m3fn
SPAN = 2 << 20  # bytes of one GPU page (2 MB)
SHAPES = [("fp8 B64 8K", 64, 8192, F8), ("fp8 B16 32K", 16, 32768, F8), ("B64 8K", 64, 8192, BF),
          ("B16 32K", 16, 32768, BF), ("B32 4K", 32, 4096, BF)]
VARIANTS = [("ahead 2", KernelOptions(ahead=2)), ("ahead 4", KernelOptions(ahead=4)),
            ("ahead 8", KernelOptions(ahead=8)), ("ahead 1 bulk", KernelOptions(ahead=1, ahead_bulk=True)),
            ("ahead 2 bulk", KernelOptions(ahead=2, ahead_bulk=True)),
            ("ahead 4 bulk", KernelOptions(ahead=4, ahead_bulk=True))]


def order(nb: int, per_span: int, how: str) -> torch.Tensor:
    """A permutation of nb page ids: 'shuffled', 'in spans' (shuffled inside each span of per_span pages),
    'spans shuffled' (whole spans moved, pages in order inside), 'in order'."""
    if how == "in order":
        return torch.arange(nb, device=DEV)
    if how == "shuffled":
        return torch.randperm(nb, device=DEV)
    spans = nb // per_span
    ids = torch.arange(nb, device=DEV).view(spans, per_span)
    if how == "in spans":
        return torch.stack([row[torch.randperm(per_span, device=DEV)] for row in ids]).view(-1)
    return ids[torch.randperm(spans, device=DEV)].reshape(-1)


def timed(plan, qs, k, v, bts, sl, outs) -> float:
    return kvf.time_calls([lambda r=r: plan.run(qs[r], k, v, bts[r], sl, out=outs[r]) for r in range(len(qs))]) * 1e6


def main():
    bw = probes.read_bandwidth().bytes_per_s
    l2 = getattr(torch.cuda.get_device_properties(DEV), "L2_cache_size", 50 << 20)
    print(f"# {torch.cuda.get_device_name()}, read {bw / 1e12:.3f} TB/s; us, two alternating runs each")
    hq, hkv, D, BS = 32, 8, 128, 16
    for label, B, ctx, kvd in SHAPES:
        es = 1 if kvd == F8 else 2
        kv_bytes = 2 * B * ctx * hkv * D * es
        floor_us = kv_bytes / bw * 1e6
        copies = max(1, min(8, -(-3 * l2 // kv_bytes)))
        nb = B * ctx // BS
        k = torch.randn(nb * copies, BS, hkv, D, device=DEV).to(kvd)
        v = torch.randn(nb * copies, BS, hkv, D, device=DEV).to(kvd)
        per_span = SPAN // (BS * hkv * D * es)
        qs = [torch.randn(B, hq, D, device=DEV).to(BF) for _ in range(copies)]
        outs = [torch.empty(B, hq, D, device=DEV, dtype=BF) for _ in range(copies)]
        sl = torch.full((B,), ctx, dtype=torch.int32, device=DEV)
        tables = {how: [(order(nb, per_span, how).to(torch.int32) + r * nb).view(B, ctx // BS).contiguous()
                        for r in range(copies)] for how in ("shuffled", "in spans", "spans shuffled", "in order")}
        base = paged_decode_plan(hq, hkv, D, BS, kvd, BF, B, ctx // BS, DEV)
        ref = base.run(qs[0], k, v, tables["shuffled"][0], sl, out=outs[0]).clone()
        print(f"\n## {label} ({kv_bytes / 1e6:.0f} MB, read floor {floor_us:.1f} us, {base.launch_for(B).splits} "
              f"splits, {per_span} pages a 2 MB span)\n| pages | run 1 | run 2 | % of read |\n|---|---|---|---|")
        for how, bts in tables.items():
            ts = [timed(base, qs, k, v, bts, sl, outs) for _ in range(2)]
            print(f"| {how} | {ts[0]:.1f} | {ts[1]:.1f} | {100 * floor_us / (sum(ts) / 2):.1f}% |", flush=True)
        print("| kernel (shuffled pages) | default | variant | default | variant | variant / default | same out |\n"
              "|---|---|---|---|---|---|---|")
        for name, opts in VARIANTS:
            plan = paged_decode_plan(hq, hkv, D, BS, kvd, BF, B, ctx // BS, DEV, options=opts)
            same = torch.equal(plan.run(qs[0], k, v, tables["shuffled"][0], sl, out=outs[0]), ref)
            ts = []
            for _ in range(2):
                for p in (base, plan):
                    ts.append(timed(p, qs, k, v, tables["shuffled"], sl, outs))
            ratio = (ts[1] + ts[3]) / (ts[0] + ts[2])
            print(f"| {name} | {ts[0]:.1f} | {ts[1]:.1f} | {ts[2]:.1f} | {ts[3]:.1f} | {ratio:.3f} | {same} |",
                  flush=True)
        del k, v, qs, outs, tables
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
