"""Decode-attention benchmark: kvplan's NVRTC paged kernel vs torch SDPA vs gather+SDPA vs roofline.

    python benchmarks/probes/decode_kernel.py [--json PATH] [--quick] [--sweep]

Prints one table. Every timing is the median over many CUDA-graph replays (each replay runs the op
several times, cycling through enough input copies that they do not fit in L2), measured with CUDA
events after warm-up. The roofline is KV bytes / the measured device-to-device copy bandwidth
(bytes read + written). JSON goes to --json, by default $OUT/decode_kernel.json when $OUT is set.

For the Llama-3-8B rows a second table repeats the three contenders the way /work/shared/kernel.md's
reference figures were taken (one call from Python between CUDA events on an idle GPU, median: host
overhead included) and times the kernel once more with each sequence's pages in order (physically
contiguous, as SDPA's cache is) instead of shuffled.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from kvplan.kernels import KernelOptions, paged_decode_attention, paged_decode_plan  # noqa: E402

DEV = torch.device("cuda")
F8 = torch.float8_e4m3fn

LLAMA = [(1, 4096), (1, 32768), (1, 131072), (8, 8192), (32, 4096), (64, 8192), (16, 32768)]
# /work/shared/kernel.md's reference figures (one H100, torch 2.11, per-call CUDA events): (SDPA µs, gather+SDPA µs)
KERNEL_MD = {(1, 4096): (59.6, 103.7), (1, 32768): (77.7, 169.0), (1, 131072): (210, 588), (8, 8192): (123, 311),
             (32, 4096): (204, 586), (64, 8192): (729, 2239), (16, 32768): (721, 2232)}


def copy_bandwidth(nbytes=2 << 30, reps=30):
    x = torch.empty(nbytes // 2, dtype=torch.bfloat16, device=DEV).normal_()
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        y.copy_(x)
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) * 1e-3)
    del x, y
    return 2 * nbytes / statistics.median(ts)


def probe_setup(json_name):
    """Shared start of the probe scripts: --json path (default $OUT/json_name), L2 size, measured copy bandwidth."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default=os.path.join(os.environ.get("OUT", "."), json_name))
    args = ap.parse_args()
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    bw = copy_bandwidth()
    print(f"{torch.cuda.get_device_name(0)}; copy bandwidth {bw / 1e12:.3f} TB/s", flush=True)
    return args.json, l2, bw


def time_calls(fns, min_calls=8, reps=25, target_s=2e-3):
    """Median seconds per call: capture the calls (cycling through fns) in one CUDA graph and time replays."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for f in fns:
            f()
            f()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    # estimate one call to size the graph
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for f in fns:
        f()
    b.record()
    b.synchronize()
    est = max(a.elapsed_time(b) * 1e-3 / len(fns), 1e-6)
    n = max(min_calls, len(fns), min(400, int(target_s / est)))
    n = -(-n // len(fns)) * len(fns)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(n):
            fns[i % len(fns)]()
    for _ in range(3):
        g.replay()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) * 1e-3 / n)
    del g
    return statistics.median(ts), (min(ts), max(ts))


def time_per_call(fns, reps=50):
    """Median seconds of one call from Python, CUDA events around it, GPU idle before (kernel.md's method)."""
    for f in fns:
        f()
    ts = []
    for i in range(reps):
        torch.cuda.synchronize()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fns[i % len(fns)]()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) * 1e-3)
    return statistics.median(ts)


class Case:
    def __init__(self, B, ctx, Hq, Hkv, D, kv_dtype=torch.bfloat16, BS=16, l2_bytes=50 << 20, with_baselines=True,
                 permuted=True):
        self.B, self.ctx, self.Hq, self.Hkv, self.D, self.kv_dtype, self.BS = B, ctx, Hq, Hkv, D, kv_dtype, BS
        es = 1 if kv_dtype == F8 else 2
        self.kv_bytes = 2 * B * ctx * Hkv * D * es
        self.rot = max(1, min(16, math.ceil(4 * l2_bytes / self.kv_bytes)))
        nb = B * ctx // BS
        self.nb = nb
        total = nb * self.rot
        self.k = torch.randn(total, BS, Hkv, D, device=DEV).to(kv_dtype)
        self.v = torch.randn(total, BS, Hkv, D, device=DEV).to(kv_dtype)
        self.q = [torch.randn(B, Hq, D, device=DEV).bfloat16() for _ in range(self.rot)]
        self.bt = []
        for r in range(self.rot):
            # permuted: pages scattered as in a long-running server; else each sequence contiguous
            order = torch.randperm(nb, device=DEV) if permuted else torch.arange(nb, device=DEV)
            perm = order.to(torch.int32) + r * nb
            self.bt.append(perm.view(B, ctx // BS).contiguous())
        self.sl = torch.full((B,), ctx, dtype=torch.int32, device=DEV)
        self.out = [torch.empty(B, Hq, D, device=DEV, dtype=torch.bfloat16) for _ in range(self.rot)]
        self.with_baselines = with_baselines and kv_dtype != F8
        if self.with_baselines:
            # contiguous cache in SDPA's layout [B, Hkv, ctx, D], one copy per rotation
            self.kc, self.vc = [], []
            for r in range(self.rot):
                idx = self.bt[r].long()
                self.kc.append(self.k[idx].reshape(B, ctx, Hkv, D).transpose(1, 2).contiguous())
                self.vc.append(self.v[idx].reshape(B, ctx, Hkv, D).transpose(1, 2).contiguous())

    def kernel_fn(self, r, **kw):
        return lambda: paged_decode_attention(self.q[r], self.k, self.v, self.bt[r], self.sl, out=self.out[r],
                                              check_block_ids=False, **kw)

    def sdpa_fn(self, r):
        q = self.q[r].unsqueeze(2)
        return lambda: F.scaled_dot_product_attention(q, self.kc[r], self.vc[r], enable_gqa=True)

    def gather_fn(self, r):
        q = self.q[r].unsqueeze(2)
        B, ctx, Hkv, D = self.B, self.ctx, self.Hkv, self.D

        def f():
            idx = self.bt[r].long()
            kk = self.k[idx].reshape(B, ctx, Hkv, D).transpose(1, 2)
            vv = self.v[idx].reshape(B, ctx, Hkv, D).transpose(1, 2)
            return F.scaled_dot_product_attention(q, kk, vv, enable_gqa=True)
        return f

    def check(self, **kw):
        """Kernel vs SDPA (same data) as a sanity check of the timed configuration."""
        got = self.kernel_fn(0, **kw)().float()
        if self.with_baselines:
            ref = self.sdpa_fn(0)().squeeze(2).float()
        else:
            from kvplan.kernels import reference_paged_decode_attention as r
            ref = r(self.q[0], self.k, self.v, self.bt[0], self.sl).float()
        return float((got - ref).norm() / ref.norm())

    def free(self):
        for name in ("k", "v", "q", "bt", "out", "kc", "vc"):
            if hasattr(self, name):
                delattr(self, name)
        torch.cuda.empty_cache()


def plan_of(case, **kw):
    plan = paged_decode_plan(case.Hq, case.Hkv, case.D, case.BS, case.kv_dtype, torch.bfloat16, case.B,
                             case.ctx // case.BS, DEV, options=kw.get("options"))
    return plan.launch_for(case.B)


def run_case(label, case, copy_bw, baselines=True, per_call=False, **kw):
    row = dict(label=label, B=case.B, context=case.ctx, q_heads=case.Hq, kv_heads=case.Hkv, head_dim=case.D,
               kv_dtype=str(case.kv_dtype).replace("torch.", ""), block_size=case.BS, kv_bytes=case.kv_bytes,
               rotations=case.rot)
    launch = plan_of(case, **kw)
    row.update(splits=launch.splits, slices=launch.slices, stages=launch.stages, warps=launch.warps,
               kv_per_cta=launch.kv_per_cta, smem=launch.smem, bulk=getattr(launch.config, "bulk", 0))
    row["rel_err_vs_sdpa"] = case.check(**kw)
    t, spread = time_calls([case.kernel_fn(r, **kw) for r in range(case.rot)])
    row["kernel_us"] = t * 1e6
    row["kernel_spread_us"] = [x * 1e6 for x in spread]
    row["kernel_tbps"] = case.kv_bytes / t / 1e12
    row["pct_copy_bw"] = 100 * case.kv_bytes / t / copy_bw
    row["roofline_us"] = case.kv_bytes / copy_bw * 1e6
    if baselines and case.with_baselines:
        t, _ = time_calls([case.sdpa_fn(r) for r in range(case.rot)])
        row["sdpa_us"] = t * 1e6
        t, _ = time_calls([case.gather_fn(r) for r in range(case.rot)], min_calls=4)
        row["gather_sdpa_us"] = t * 1e6
        row["speedup_vs_sdpa"] = row["sdpa_us"] / row["kernel_us"]
        row["speedup_vs_gather"] = row["gather_sdpa_us"] / row["kernel_us"]
    if per_call and baselines and case.with_baselines:
        for name, make in (("kernel", case.kernel_fn), ("sdpa", case.sdpa_fn), ("gather_sdpa", case.gather_fn)):
            row[f"per_call_{name}_us"] = time_per_call([make(r) for r in range(case.rot)]) * 1e6
        # same pages, each sequence's in order (attention does not depend on token order)
        shuffled = case.bt
        case.bt = [torch.arange(case.nb, device=DEV, dtype=torch.int32).add_(r * case.nb).view(case.B, -1)
                   for r in range(case.rot)]
        t, _ = time_calls([case.kernel_fn(r, **kw) for r in range(case.rot)])
        case.bt = shuffled
        row["kernel_in_order_us"] = t * 1e6
    return row


def fmt_table(rows):
    hdr = ("| shape | KV MB | kernel µs | % copy BW | SDPA µs | gather+SDPA µs | vs SDPA | vs gather "
           "| roofline µs | splits |")
    lines = [hdr, "|" + "---|" * 10]
    for r in rows:
        sd = f"{r['sdpa_us']:.1f}" if "sdpa_us" in r else "–"
        ga = f"{r['gather_sdpa_us']:.1f}" if "gather_sdpa_us" in r else "–"
        x1 = f"{r['speedup_vs_sdpa']:.2f}×" if "speedup_vs_sdpa" in r else "–"
        x2 = f"{r['speedup_vs_gather']:.2f}×" if "speedup_vs_gather" in r else "–"
        lines.append(f"| {r['label']} | {r['kv_bytes'] / 1e6:,.1f} | {r['kernel_us']:.1f} | {r['pct_copy_bw']:.1f}% | "
                     f"{sd} | {ga} | {x1} | {x2} | {r['roofline_us']:.1f} | {r['splits']} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=None)
    ap.add_argument("--quick", action="store_true", help="Llama bf16 shapes only, no baselines")
    ap.add_argument("--no-baselines", action="store_true", help="skip SDPA and gather+SDPA")
    ap.add_argument("--no-extra", action="store_true", help="skip the MQA / head-dim rows")
    ap.add_argument("--sweep", action="store_true", help="also time slices/stages/min-chunk variants")
    args = ap.parse_args()
    out_path = args.json or (os.path.join(os.environ["OUT"], "decode_kernel.json") if os.environ.get("OUT") else None)

    props = torch.cuda.get_device_properties(DEV)
    l2 = getattr(props, "L2_cache_size", 50 << 20)
    copy_bw = copy_bandwidth()
    print(f"# {props.name}, {props.multi_processor_count} SMs, L2 {l2 / 2**20:.0f} MiB, "
          f"copy bandwidth {copy_bw / 1e12:.3f} TB/s (read+write), torch {torch.__version__}", flush=True)

    rows, sweep, fp8 = [], [], []
    for B, ctx in LLAMA:
        baselines = not (args.quick or args.no_baselines)
        c = Case(B, ctx, 32, 8, 128, l2_bytes=l2, with_baselines=baselines)
        rows.append(run_case(f"Llama-3-8B B={B} ctx={ctx}", c, copy_bw, baselines=baselines, per_call=baselines))
        print(rows[-1], flush=True)
        if args.sweep:
            # (slices, stages, min_chunk, build variant, kv heads per CTA)
            variants = [(4, 3, 256, {}, 1), (4, 3, 256, dict(l2_prefetch=2), 1), (8, 2, 256, {}, 1),
                        (None, 2, 256, {}, 8), (None, 3, 256, {}, 8), (None, 2, 256, {}, 4), (None, 3, 256, {}, 4),
                        (None, 3, 256, {}, 2), (None, 2, 256, dict(l2_prefetch=2), 8),
                        (None, 3, 256, dict(l2_prefetch=2), 4), (None, 4, 256, {}, 2)]
            if B == 1:
                variants += [(None, 2, 128, {}, 8), (None, 3, 128, {}, 4)]
            for sl, st, mc, var, kh in variants:
                kw = dict(options=KernelOptions(slices=sl, stages=st, min_split_tokens=mc, kv_per_cta=kh, **var))
                r = run_case(f"sweep B={B} ctx={ctx} kh={kh} slices={sl} stages={st} min_chunk={mc} {var}", c,
                             copy_bw, baselines=False, **kw)
                sweep.append(r)
                print(f"  sweep kh={kh} slices={sl} stages={st} min_chunk={mc} {var}: {r['kernel_us']:.1f} us "
                      f"({r['pct_copy_bw']:.1f}%) splits={r['splits']} warps={r['warps']} "
                      f"stages_used={r['stages']} err={r['rel_err_vs_sdpa']:.1e}", flush=True)
            c.free()
            cs = Case(B, ctx, 32, 8, 128, l2_bytes=l2, with_baselines=False, permuted=False)
            r = run_case(f"sequential table B={B} ctx={ctx}", cs, copy_bw, baselines=False)
            sweep.append(r)
            print(f"  sequential block table: {r['kernel_us']:.1f} us ({r['pct_copy_bw']:.1f}%)", flush=True)
            c = cs
        c.free()
        if not args.quick and (B, ctx) in ((1, 131072), (8, 8192), (32, 4096), (64, 8192), (16, 32768)):
            c8 = Case(B, ctx, 32, 8, 128, kv_dtype=F8, l2_bytes=l2)
            r8 = run_case(f"Llama-3-8B fp8 B={B} ctx={ctx}", c8, copy_bw, baselines=baselines)
            r8["fp8_over_bf16"] = r8["kernel_us"] / rows[-1]["kernel_us"]
            fp8.append(r8)
            print(r8, flush=True)
            c8.free()
    extra = []
    if not (args.quick or args.no_extra):
        for label, B, ctx, Hq, Hkv, D in [
            ("MQA 64q/1kv d128 B=8 ctx=32768", 8, 32768, 64, 1, 128),
            ("MQA 64q/1kv d128 B=32 ctx=32768", 32, 32768, 64, 1, 128),
            ("MQA 128q/1kv d128 B=16 ctx=32768", 16, 32768, 128, 1, 128),
            ("d256 16q/8kv B=1 ctx=32768", 1, 32768, 16, 8, 256),
            ("d256 16q/8kv B=16 ctx=8192", 16, 8192, 16, 8, 256),
            ("d64 32q/8kv B=16 ctx=32768", 16, 32768, 32, 8, 64),
        ]:
            c = Case(B, ctx, Hq, Hkv, D, l2_bytes=l2, with_baselines=not args.no_baselines)
            extra.append(run_case(label, c, copy_bw, baselines=not args.no_baselines))
            print(extra[-1], flush=True)
            c.free()

    print()
    print(f"## {props.name}: copy bandwidth {copy_bw / 1e12:.3f} TB/s; bf16, block 16")
    print(fmt_table(rows + extra))
    print()
    print("| shape | kernel µs | kernel.md SDPA µs | vs it | kernel.md gather+SDPA µs | vs it |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ref = KERNEL_MD.get((r["B"], r["context"]))
        if ref:
            print(f"| {r['label']} | {r['kernel_us']:.1f} | {ref[0]} | {ref[0] / r['kernel_us']:.2f}× | {ref[1]} | "
                  f"{ref[1] / r['kernel_us']:.2f}× |")
    if any("per_call_kernel_us" in r for r in rows):
        print()
        print("| shape | kernel, pages in order µs | vs SDPA | per call: kernel µs | SDPA µs | gather+SDPA µs | "
              "vs SDPA | vs gather |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            if "per_call_kernel_us" not in r:
                continue
            k, sd, ga = r["per_call_kernel_us"], r["per_call_sdpa_us"], r["per_call_gather_sdpa_us"]
            print(f"| {r['label']} | {r['kernel_in_order_us']:.1f} | {r['sdpa_us'] / r['kernel_in_order_us']:.2f}× | "
                  f"{k:.1f} | {sd:.1f} | {ga:.1f} | {sd / k:.2f}× | {ga / k:.2f}× |")
    if fp8:
        print()
        print("| fp8 e4m3 shape | KV MB | kernel µs | % copy BW | fp8 / bf16 time |")
        print("|---|---|---|---|---|")
        for r in fp8:
            print(f"| {r['label']} | {r['kv_bytes'] / 1e6:,.1f} | {r['kernel_us']:.1f} | {r['pct_copy_bw']:.1f}% | "
                  f"{r['fp8_over_bf16']:.2f} |")
    if sweep:
        best = {}
        for r in sweep:
            key = (r["B"], r["context"])
            if key not in best or r["kernel_us"] < best[key]["kernel_us"]:
                best[key] = r
        print()
        print("best sweep variant per shape:")
        for key, r in best.items():
            print(f"  {key}: {r['label']} {r['kernel_us']:.1f} us ({r['pct_copy_bw']:.1f}%)")
    result = dict(
        date=datetime.date.today().isoformat(), gpu=props.name, sm_count=props.multi_processor_count,
        l2_bytes=l2, torch=torch.__version__, copy_bw_bytes_per_s=copy_bw, rows=rows, fp8=fp8, extra=extra,
        sweep=sweep, command=" ".join(sys.argv),
    )
    if out_path:
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        Path(out_path).write_text(json.dumps(result, indent=1))
        print(f"\nJSON: {out_path}")


if __name__ == "__main__":
    main()
