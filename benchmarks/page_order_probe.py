"""Where shuffled pages cost the large-batch GQA decode its time: the same kernel and tensors with block tables
shuffled over the whole cache, shuffled only inside 2 MB spans (the GPU's page size; the spans in address order),
whole 2 MB spans shuffled (pages in order inside), and in address order. If shuffling the spans cost the time, it
would be the address translation; if shuffling inside them, the order in which DRAM sees a stream's pages. Then
finer spans (128 KB, 512 KB), and shuffled tables whose pages are sorted by address inside each CTA's chunk (what a
kernel that sorts its chunk's block ids first would read: every CTA then sweeps the cache from low to high addresses
with all the others).
(Session 30 ran this with a second part, L2 touches of the pages ahead, on branch `l2-ahead`:
`benchmarks/page_ahead_ab.py` there.)

    python3 benchmarks/page_order_probe.py
"""

from __future__ import annotations

import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
import kernel_vs_flashinfer as kvf  # noqa: E402

from kvplan.kernels import paged_decode_plan, probes  # noqa: E402

DEV = torch.device("cuda")
BF, F8 = torch.bfloat16, torch.float8_e4m3fn
SPAN = 2 << 20  # bytes of one GPU page (2 MB)
SHAPES = [("fp8 B64 8K", 64, 8192, F8), ("fp8 B16 32K", 16, 32768, F8), ("B64 8K", 64, 8192, BF),
          ("B16 32K", 16, 32768, BF), ("B32 4K", 32, 4096, BF), ("B1 128K", 1, 131072, BF)]
ORDERS = ("shuffled", "in spans", "spans shuffled", "in order", "in 128 KB spans", "in 512 KB spans",
          "sorted in chunks", "sorted in sequences")


def order(nb: int, per_span: int, how: str, chunk_pages: int, seq_pages: int) -> torch.Tensor:
    """A permutation of nb page ids: 'shuffled', 'in spans' (shuffled inside each span of per_span pages; 'in N KB
    spans': spans of N KB), 'spans shuffled' (whole spans moved, pages in order inside), 'in order', 'sorted in
    chunks' / 'sorted in sequences' (shuffled, then sorted inside each run of chunk_pages / seq_pages entries)."""
    if how == "in order":
        return torch.arange(nb, device=DEV)
    if how == "shuffled":
        return torch.randperm(nb, device=DEV)
    if how.startswith("sorted"):
        run = chunk_pages if how == "sorted in chunks" else seq_pages
        return torch.randperm(nb, device=DEV).view(-1, run).sort(dim=1).values.reshape(-1)
    if how.startswith("in ") and how.endswith("KB spans"):
        per_span = max(1, per_span * int(how.split()[1]) // 2048)
    spans = nb // per_span
    ids = torch.arange(nb, device=DEV).view(spans, per_span)
    if how == "in spans":
        return torch.stack([row[torch.randperm(per_span, device=DEV)] for row in ids]).view(-1)
    return ids[torch.randperm(spans, device=DEV)].reshape(-1)


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
        base = paged_decode_plan(hq, hkv, D, BS, kvd, BF, B, ctx // BS, DEV)
        chunk_pages = max(1, min(ctx, base.launch_for(B).chunk) // BS)
        tables = {how: [(order(nb, per_span, how, chunk_pages, ctx // BS).to(torch.int32) + r * nb)
                        .view(B, ctx // BS).contiguous() for r in range(copies)] for how in ORDERS}
        print(f"\n## {label} ({kv_bytes / 1e6:.0f} MB, read floor {floor_us:.1f} us, {base.launch_for(B).splits} "
              f"splits, {per_span} pages a 2 MB span)\n| pages | run 1 | run 2 | % of read |\n|---|---|---|---|")
        for how, bts in tables.items():
            ts = kvf.time_alternating({how: base}, qs, k, v, bts, sl, outs)[how]
            print(f"| {how} | {ts[0]:.1f} | {ts[1]:.1f} | {100 * floor_us / (sum(ts) / 2):.1f}% |", flush=True)
        del k, v, qs, outs, tables
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
