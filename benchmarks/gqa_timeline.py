"""Where a GQA decode call's time goes beyond its bytes: the per-CTA timeline (KernelOptions(trace=True): start,
first data, end, SM) of one call in the middle of a run of calls, pages shuffled and in address order, beside the
call's graph-timed length. Splits a call into: the start (first CTA start -> median first data), the stream (median
first data -> median end), the tail (median end -> last end) and what is outside the main kernel (graph time minus
first start -> last end: launch, the merge). Llama-3-8B layouts.

    python3 benchmarks/gqa_timeline.py
"""

from __future__ import annotations

import statistics as st
import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
import kernel_vs_flashinfer as kvf  # noqa: E402

from kvplan.kernels import KernelOptions, paged_decode_plan, probes  # noqa: E402

DEV = torch.device("cuda")
BF, F8 = torch.bfloat16, torch.float8_e4m3fn
SHAPES = [("B64 8K", 64, 8192, BF), ("B32 4K", 32, 4096, BF), ("B1 128K", 1, 131072, BF), ("fp8 B64 8K", 64, 8192, F8)]


def timeline(B, ctx, kvd, ordered, bw, l2):
    kvf.ORDERED_PAGES = ordered
    es = 1 if kvd == F8 else 2
    kv_bytes = 2 * B * ctx * 8 * 128 * es
    copies = max(1, min(8, -(-3 * l2 // kv_bytes)))
    k, v, bts = kvf.paged(B, ctx, 8, 128, 16, kvd, copies, l2)
    qs = [torch.randn(B, 32, 128, device=DEV).to(BF) for _ in range(copies)]
    outs = [torch.empty(B, 32, 128, device=DEV, dtype=BF) for _ in range(copies)]
    sl = torch.full((B,), ctx, dtype=torch.int32, device=DEV)
    plain = paged_decode_plan(32, 8, 128, 16, kvd, BF, B, ctx // 16, DEV)
    t_call = kvf.time_calls([lambda r=r: plain.run(qs[r], k, v, bts[r], sl, out=outs[r]) for r in range(copies)])
    plan = paged_decode_plan(32, 8, 128, 16, kvd, BF, B, ctx // 16, DEV, options=KernelOptions(trace=True))
    ln = plan.launch_for(B)
    ctas = ln.splits * (8 // ln.kv_per_cta) * B
    tr, scratch = (torch.zeros(4 * ctas, dtype=torch.int64, device=DEV) for _ in range(2))
    for r in range(copies):  # warm, then the traced call between two others
        plan.run(qs[r], k, v, bts[r], sl, out=outs[r], trace=scratch)
    plan.run(qs[0], k, v, bts[0], sl, out=outs[0], trace=tr)
    plan.run(qs[1 % copies], k, v, bts[1 % copies], sl, out=outs[1 % copies], trace=scratch)
    torch.cuda.synchronize()
    t = tr.view(ctas, 4).cpu().tolist()
    t0 = min(x[0] for x in t)
    starts, firsts, ends = ([(x[i] - t0) / 1e3 for x in t] for i in range(3))
    sms = len({x[3] for x in t})
    m_first, m_end, last = st.median(firsts), st.median(ends), max(ends)
    ideal = kv_bytes / bw * 1e6
    print(f"| {'fp8 ' if kvd == F8 else ''}B{B} {ctx // 1024}K | {'in order' if ordered else 'shuffled'} | "
          f"{t_call * 1e6:.1f} ({100 * kv_bytes / t_call / bw:.1f}%) | {ideal:.1f} | {ctas} on {sms} SMs | "
          f"{max(starts):.1f} | {m_first:.1f} | {m_end - m_first:.1f} | {last - m_end:.1f} | "
          f"{t_call * 1e6 - last:.1f} | {kv_bytes / ((m_end - m_first) * 1e-6) / bw * 100:.1f}% |",
          flush=True)
    del k, v, qs, outs
    torch.cuda.empty_cache()


def main():
    bw = probes.read_bandwidth().bytes_per_s
    l2 = getattr(torch.cuda.get_device_properties(DEV), "L2_cache_size", 50 << 20)
    print(f"# {torch.cuda.get_device_name()}, read {bw / 1e12:.3f} TB/s; us from the first CTA's start\n"
          "| shape | pages | call us (% read) | bytes / read us | CTAs | last start | median first data | "
          "stream (median first -> median end) | tail (median end -> last end) | outside the kernel | "
          "bytes / stream |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for label, B, ctx, kvd in SHAPES:
        for ordered in (False, True):
            timeline(B, ctx, kvd, ordered, bw, l2)


if __name__ == "__main__":
    main()
