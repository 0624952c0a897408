"""kvplan's decode kernels vs FlashInfer (best of its CUDA-core and tensor-core modes) vs torch SDPA.

    PYTHONPATH=/tmp/site python benchmarks/kernel_vs_flashinfer.py [--json PATH] [--quick] [--no-flashinfer]

Every shape of /work/shared/kernel.md's table plus MLA shapes (DeepSeek-V3 at TP 8: 16 heads, TP 1: 128
heads). All contenders read the same paged tensors (pages shuffled); SDPA reads a contiguous copy; kvplan runs
again on the same tables with each sequence's full pages sorted by address (``plan.sorted_block_table``, once a
decode step for every layer: its own time is the last column). Each
timing is the median over CUDA-graph replays of many calls that cycle through enough input copies to
stay out of L2. "% read" = KV bytes / time over the measured read-only bandwidth
(kvplan.kernels.probes.read_bandwidth). FlashInfer (../shared/peers wheels) is optional: its JIT modules
are built in background processes at start while kvplan's rows run. Prints a markdown table last.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kvplan.kernels import paged_decode_attention, paged_decode_plan, paged_mla_decode_plan  # noqa: E402
from kvplan.kernels import probes  # noqa: E402

DEV = torch.device("cuda")
F8 = torch.float8_e4m3fn
BF = torch.bfloat16
LLAMA = (32, 8, 128)
GQA = [  # label, B, ctx, (Hq, Hkv, D), kv dtype
    ("Llama-3-8B B1 4K", 1, 4096, LLAMA, BF), ("B1 32K", 1, 32768, LLAMA, BF), ("B1 128K", 1, 131072, LLAMA, BF),
    ("B8 8K", 8, 8192, LLAMA, BF), ("B32 4K", 32, 4096, LLAMA, BF), ("B64 8K", 64, 8192, LLAMA, BF),
    ("B16 32K", 16, 32768, LLAMA, BF), ("head_dim 64 B16 32K", 16, 32768, (32, 8, 64), BF),
    ("MQA 64q/1kv B8 32K", 8, 32768, (64, 1, 128), BF), ("64q/4kv B16 16K", 16, 16384, (64, 4, 128), BF),
    ("fp8 B64 8K", 64, 8192, LLAMA, F8), ("fp8 B16 32K", 16, 32768, LLAMA, F8),
]
MLA = [  # label, B, ctx, heads, latent dtype
    ("MLA 16h B1 32K", 1, 32768, 16, BF), ("MLA 16h B8 32K", 8, 32768, 16, BF), ("MLA 16h B32 8K", 32, 8192, 16, BF),
    ("MLA 16h B128 4K", 128, 4096, 16, BF), ("MLA 16h fp8 B32 8K", 32, 8192, 16, F8),
    ("MLA 128h B1 4K", 1, 4096, 128, BF), ("MLA 128h B1 32K", 1, 32768, 128, BF), ("MLA 128h B8 8K", 8, 8192, 128, BF),
    ("MLA 128h B32 4K", 32, 4096, 128, BF), ("MLA 128h fp8 B8 8K", 8, 8192, 128, F8),
]
FI_VARIANTS = [  # (head_dim, kv dtype, tensor cores): the FlashInfer modules the table needs
    (128, "bfloat16", False), (128, "bfloat16", True), (64, "bfloat16", False), (64, "bfloat16", True),
    (128, "float8_e4m3fn", False), (128, "float8_e4m3fn", True),
]


# ---------------------------------------------------------------------------------------------
# timing


def time_alternating(plans: dict, qs, k, v, bts, sl, outs, rounds: int = 2) -> dict:
    """{key: [us per call, one per round]} for decode plans run on the same tensors (`len(qs)` copies that keep the
    timed loop out of L2), the plans taking turns within each round so that drift hits them alike."""
    ts = {key: [] for key in plans}
    for _ in range(rounds):
        for key, p in plans.items():
            ts[key].append(time_calls([lambda r=r, p=p: p.run(qs[r], k, v, bts[r], sl, out=outs[r])
                                       for r in range(len(qs))]) * 1e6)
    return ts


def time_calls(fns, reps=20, target_s=3e-3, min_calls=8):
    """Median seconds per call: many calls (cycling through fns) captured in one CUDA graph, replays timed."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for f in fns:
            f()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for f in fns:
        f()
    b.record()
    b.synchronize()
    est = max(a.elapsed_time(b) * 1e-3 / len(fns), 1e-6)
    n = max(min_calls, len(fns), min(300, int(target_s / est)))
    n = -(-n // len(fns)) * len(fns)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(n):
            fns[i % len(fns)]()
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
    return statistics.median(ts)


def host_time(fn, n=300):
    """Seconds of host time per eager call (back-to-back calls on a GPU that keeps up)."""
    for _ in range(20):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    dt = (time.perf_counter() - t) / n
    torch.cuda.synchronize()
    return dt


def rel(a, b):
    return float((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-30))


# ---------------------------------------------------------------------------------------------
# FlashInfer (optional)


def fi_import():
    sys.path.insert(0, str(ROOT / ".." / ".." / ".peers"))
    sys.path.insert(0, str(ROOT / ".peers"))
    import flashinfer_smoke  # noqa: F401  (sets up nvcc/ninja/libcuda for FlashInfer's JIT)

    flashinfer_smoke.setup_toolchain()
    import flashinfer

    return flashinfer


def fi_decode_runner(fi, bt, lens, Hq, Hkv, D, BS, kv_dtype, tensor_cores):
    """A FlashInfer decode wrapper planned for one block table; returns run(q, k, v, out)."""
    B = bt.shape[0]
    pages = [(int(n) + BS - 1) // BS for n in lens.tolist()]
    indptr = torch.tensor([0] + list(torch.tensor(pages).cumsum(0).tolist()), dtype=torch.int32, device=DEV)
    indices = torch.cat([bt[b, :p] for b, p in enumerate(pages)]).to(torch.int32)
    last = torch.tensor([n - (p - 1) * BS for n, p in zip(lens.tolist(), pages)], dtype=torch.int32, device=DEV)
    ws = torch.empty(64 << 20, dtype=torch.uint8, device=DEV)
    w = fi.BatchDecodeWithPagedKVCacheWrapper(ws, "NHD", use_cuda_graph=True, use_tensor_cores=tensor_cores,
                                              paged_kv_indptr_buffer=indptr, paged_kv_indices_buffer=indices,
                                              paged_kv_last_page_len_buffer=last)
    w.plan(indptr, indices, last, Hq, Hkv, D, BS, q_data_type=BF, kv_data_type=kv_dtype)
    w._keep = (ws, indptr, indices, last)
    return lambda q, k, v, out: w.run(q, (k, v), out=out)


def fi_mla_runner(fi, bt, lens, H, BS, kv_dtype, scale):
    B = bt.shape[0]
    pages = [(int(n) + BS - 1) // BS for n in lens.tolist()]
    kv_indptr = torch.tensor([0] + list(torch.tensor(pages).cumsum(0).tolist()), dtype=torch.int32, device=DEV)
    kv_indices = torch.cat([bt[b, :p] for b, p in enumerate(pages)]).to(torch.int32)
    qo_indptr = torch.arange(B + 1, dtype=torch.int32, device=DEV)
    kv_len = lens.to(torch.int32)
    ws = torch.empty(128 << 20, dtype=torch.uint8, device=DEV)
    w = fi.mla.BatchMLAPagedAttentionWrapper(ws, use_cuda_graph=True, qo_indptr=qo_indptr, kv_indptr=kv_indptr,
                                             kv_indices=kv_indices, kv_len_arr=kv_len)
    w.plan(qo_indptr, kv_indptr, kv_indices, kv_len, H, 512, 64, BS, False, scale, BF, kv_dtype)
    w._keep = (ws, kv_indptr, kv_indices, qo_indptr, kv_len)
    return lambda qn, qr, ckv, kpe, out: w.run(qn, qr, ckv, kpe, out=out)


def fi_warm(spec: str) -> None:
    """Child process: trigger FlashInfer's JIT build of one variant with a tiny problem (cached on disk)."""
    fi = fi_import()
    if spec == "mla":
        bt = torch.arange(4, dtype=torch.int32, device=DEV).view(1, 4)
        lens = torch.tensor([200], dtype=torch.int32, device=DEV)
        run = fi_mla_runner(fi, bt, lens, 16, 64, BF, 0.1)
        lat = torch.randn(4, 64, 576, device=DEV).to(BF)
        ckv, kpe = lat[..., :512], lat[..., 512:]
        run(torch.randn(1, 16, 512, device=DEV).to(BF), torch.randn(1, 16, 64, device=DEV).to(BF), ckv, kpe,
            torch.empty(1, 16, 512, device=DEV, dtype=BF))
    else:
        d, kvd, tc = spec.split(":")
        D, kv_dtype = int(d), getattr(torch, kvd)
        bt = torch.arange(8, dtype=torch.int32, device=DEV).view(1, 8)
        lens = torch.tensor([100], dtype=torch.int32, device=DEV)
        run = fi_decode_runner(fi, bt, lens, 32, 8, D, 16, kv_dtype, tc == "1")
        k = torch.randn(8, 16, 8, D, device=DEV).to(kv_dtype)
        run(torch.randn(1, 32, D, device=DEV).to(BF), k, k, torch.empty(1, 32, D, device=DEV, dtype=BF))
    torch.cuda.synchronize()
    print(f"FI_WARM_OK {spec}")


def start_fi_builds(log_dir: Path) -> dict:
    procs = {}
    specs = [f"{d}:{k}:{int(t)}" for d, k, t in FI_VARIANTS] + ["mla"]
    log = open(log_dir / "fi_warm.log", "a")  # one file: the device call returns at most 8
    for spec in specs:
        procs[spec] = (subprocess.Popen([sys.executable, __file__, "--fi-warm", spec], stdout=log,
                                        stderr=subprocess.STDOUT, env=os.environ.copy()), time.time())
    return procs


def fi_ready(procs, spec, wait_s) -> bool:
    p = procs.get(spec)
    if p is None:
        return False
    try:
        return p[0].wait(timeout=max(0.0, wait_s)) == 0
    except subprocess.TimeoutExpired:
        return False


# ---------------------------------------------------------------------------------------------
# cases


ORDERED_PAGES = False  # --ordered-pages: every sequence's blocks in address order (what scattered pages cost)


def block_order(nb):
    return torch.arange(nb, device=DEV) if ORDERED_PAGES else torch.randperm(nb, device=DEV)


def paged(B, ctx, Hkv, D, BS, kv_dtype, copies, l2):
    """KV cache with `copies` disjoint sets of pages (block tables shuffled) so timed loops miss L2."""
    nb = B * ctx // BS
    k = torch.randn(nb * copies, BS, Hkv, D, device=DEV).to(kv_dtype)
    v = torch.randn(nb * copies, BS, Hkv, D, device=DEV).to(kv_dtype)
    bts = [(block_order(nb).to(torch.int32) + r * nb).view(B, ctx // BS).contiguous() for r in range(copies)]
    return k, v, bts


def gqa_tensors(B, ctx, Hq, Hkv, D, kv_dtype, l2, BS=16):
    """One GQA shape's tensors, all sequences ctx long: (KV bytes, copies, k, v, block tables, q's, outs, seq_lens)
    with enough disjoint copies (one q, out and table each) that a timed loop cycling through them misses L2."""
    kv_bytes = 2 * B * ctx * Hkv * D * (1 if kv_dtype == F8 else 2)
    copies = max(1, min(8, math.ceil(3 * l2 / kv_bytes)))
    k, v, bts = paged(B, ctx, Hkv, D, BS, kv_dtype, copies, l2)
    qs = [torch.randn(B, Hq, D, device=DEV).to(BF) for _ in range(copies)]
    outs = [torch.empty(B, Hq, D, device=DEV, dtype=BF) for _ in range(copies)]
    sl = torch.full((B,), ctx, dtype=torch.int32, device=DEV)
    return kv_bytes, copies, k, v, bts, qs, outs, sl


def gqa_row(label, B, ctx, heads, kv_dtype, read_bw, l2, fi, fi_procs, quick):
    Hq, Hkv, D = heads
    BS = 16
    kv_bytes, copies, k, v, bts, qs, outs, sl = gqa_tensors(B, ctx, Hq, Hkv, D, kv_dtype, l2, BS)
    plan = paged_decode_plan(Hq, Hkv, D, BS, kv_dtype, BF, B, ctx // BS, DEV)
    launch = plan.launch_for(B)
    row = dict(label=label, B=B, ctx=ctx, q_heads=Hq, kv_heads=Hkv, head_dim=D, kv_dtype=str(kv_dtype)[6:],
               kv_bytes=kv_bytes, copies=copies, splits=launch.splits, kernel=launch.config.source,
               bulk=getattr(launch.config, "bulk", 0),
               slices=launch.slices, stages=launch.stages)
    kv_ref = reference(qs[0], k, v, bts[0], sl) if kv_dtype == F8 else None
    got = plan.run(qs[0], k, v, bts[0], sl, out=outs[0])
    t = time_calls([lambda r=r: plan.run(qs[r], k, v, bts[r], sl, out=outs[r]) for r in range(copies)])
    row["kvplan_us"] = t * 1e6
    row["pct_read"] = 100 * kv_bytes / t / read_bw
    got_sorted = time_sorted(row, plan, bts, sl, kv_bytes, read_bw,
                             lambda r, bt, out: plan.run(qs[r], k, v, bt, sl, out=out), outs)
    if kv_dtype != F8:  # SDPA on a contiguous copy (also the correctness yardstick here)
        kc = [k[bt.long()].reshape(B, ctx, Hkv, D).transpose(1, 2).contiguous() for bt in bts]
        vc = [v[bt.long()].reshape(B, ctx, Hkv, D).transpose(1, 2).contiguous() for bt in bts]
        sd = [lambda r=r: F.scaled_dot_product_attention(qs[r].unsqueeze(2), kc[r], vc[r], enable_gqa=True)
              for r in range(copies)]
        row["rel_err_kvplan"] = rel(got, sd[0]().squeeze(2))
        row["sdpa_us"] = time_calls(sd) * 1e6
        ref = sd[0]().squeeze(2)
        del kc, vc
    else:
        row["rel_err_kvplan"] = rel(got, kv_ref)
        ref = kv_ref
    row["rel_err_sorted"] = rel(got_sorted, ref)
    if fi is not None:
        best = None
        for tc in (False, True):
            spec = f"{D}:{str(kv_dtype)[6:]}:{int(tc)}"
            if not fi_ready(fi_procs, spec, 240):
                row[f"fi_{'tc' if tc else 'cc'}"] = "not built"
                continue
            try:
                runs = [fi_decode_runner(fi, bts[r], sl, Hq, Hkv, D, BS, kv_dtype, tc) for r in range(copies)]
                fo = [torch.empty(B, Hq, D, device=DEV, dtype=BF) for _ in range(copies)]
                runs[0](qs[0], k, v, fo[0])
                torch.cuda.synchronize()
                err = rel(fo[0], ref)
                tt = time_calls([lambda r=r: runs[r](qs[r], k, v, fo[r]) for r in range(copies)]) * 1e6
                row[f"fi_{'tc' if tc else 'cc'}"] = {"us": tt, "rel_err": err}
                if err < 5e-2 and (best is None or tt < best[0]):
                    best = (tt, "tensor cores" if tc else "CUDA cores")
            except Exception as exc:  # noqa: BLE001  (FlashInfer refuses some shapes, e.g. MQA)
                row[f"fi_{'tc' if tc else 'cc'}"] = f"fails: {type(exc).__name__}: {str(exc)[:120]}"
        if best:
            row["fi_us"], row["fi_mode"] = best
    if label.startswith("Llama-3-8B B1 4K"):  # host time per eager call
        q, bt, out = qs[0], bts[0], outs[0]
        row["host_us"] = {
            "plan.run": host_time(lambda: plan.run(q, k, v, bt, sl, out=out)) * 1e6,
            "one-call, check_block_ids=False": host_time(
                lambda: paged_decode_attention(q, k, v, bt, sl, out=out, check_block_ids=False)) * 1e6,
            "one-call, default (block-id check, one sync)": host_time(
                lambda: paged_decode_attention(q, k, v, bt, sl, out=out), n=100) * 1e6,
        }
        kc0 = k[bt.long()].reshape(B, ctx, Hkv, D).transpose(1, 2).contiguous()
        vc0 = v[bt.long()].reshape(B, ctx, Hkv, D).transpose(1, 2).contiguous()
        row["host_us"]["torch SDPA (contiguous)"] = host_time(
            lambda: F.scaled_dot_product_attention(q.unsqueeze(2), kc0, vc0, enable_gqa=True)) * 1e6
    del k, v, qs, outs
    torch.cuda.empty_cache()
    return row


def time_sorted(row, plan, bts, sl, kv_bytes, read_bw, run, outs):
    """The plan on its tables sorted once (``plan.sorted_block_table``, what a decode step does once for all its
    layers), and the sort's own time; returns the first copy's output."""
    srt = [plan.sorted_block_table(bt, sl) for bt in bts]
    outs = [torch.empty_like(o) for o in outs]  # the unsorted run's outputs stay as they were
    first = run(0, srt[0], torch.empty_like(outs[0])).clone()
    t = time_calls([lambda r=r: run(r, srt[r], outs[r]) for r in range(len(bts))])
    row["sorted_us"] = t * 1e6
    row["pct_read_sorted"] = 100 * kv_bytes / t / read_bw
    tab = torch.empty_like(bts[0])
    row["sort_us"] = time_calls([lambda: plan.sorted_block_table(bts[0], sl, out=tab)]) * 1e6
    return first


def reference(q, k, v, bt, sl):
    from kvplan.kernels import reference_paged_decode_attention

    return reference_paged_decode_attention(q, k, v, bt, sl, out_dtype=torch.float32)


def mla_inputs(B, ctx, H, kv_dtype, l2, BS=64):
    """An MLA shape's tensors in enough copies to stay out of L2: (KV bytes, copies, latent cache, shuffled block
    tables, q_nope, q_rope, outputs, seq_lens); every sequence ``ctx`` tokens long."""
    kv_bytes = B * ctx * 576 * (1 if kv_dtype == F8 else 2)
    copies = max(1, min(8, math.ceil(3 * l2 / kv_bytes)))
    nb = B * ctx // BS
    lat = torch.randn(nb * copies, BS, 576, device=DEV).to(kv_dtype)
    bts = [(block_order(nb).to(torch.int32) + r * nb).view(B, ctx // BS).contiguous() for r in range(copies)]
    qn = [torch.randn(B, H, 512, device=DEV).to(BF) for _ in range(copies)]
    qr = [torch.randn(B, H, 64, device=DEV).to(BF) for _ in range(copies)]
    outs = [torch.empty(B, H, 512, device=DEV, dtype=BF) for _ in range(copies)]
    sl = torch.full((B,), ctx, dtype=torch.int32, device=DEV)
    return kv_bytes, copies, lat, bts, qn, qr, outs, sl


def mla_row(label, B, ctx, H, kv_dtype, read_bw, l2, fi, fi_procs):
    BS = 64
    kv_bytes, copies, lat, bts, qn, qr, outs, sl = mla_inputs(B, ctx, H, kv_dtype, l2, BS)
    scale = 192 ** -0.5
    plan = paged_mla_decode_plan(H, 512, 64, BS, kv_dtype, B, ctx // BS, DEV)
    row = dict(label=label, B=B, ctx=ctx, q_heads=H, kv_dtype=str(kv_dtype)[6:], kv_bytes=kv_bytes, copies=copies,
               splits=plan.splits_for(B), head_group=plan.head_group, stages=plan.stages)
    got = plan.run(qn[0], qr[0], lat, bts[0], sl, scale=scale, out=outs[0])
    from kvplan.kernels import reference_paged_mla_decode

    nref = min(B, 2)
    ref = reference_paged_mla_decode(qn[0][:nref], qr[0][:nref], lat, bts[0][:nref], sl[:nref], scale=scale,
                                     out_dtype=torch.float32)
    row["rel_err_kvplan"] = rel(got[:nref], ref)
    t = time_calls([lambda r=r: plan.run(qn[r], qr[r], lat, bts[r], sl, scale=scale, out=outs[r])
                    for r in range(copies)])
    row["kvplan_us"] = t * 1e6
    row["pct_read"] = 100 * kv_bytes / t / read_bw
    got_sorted = time_sorted(row, plan, bts, sl, kv_bytes, read_bw,
                             lambda r, bt, out: plan.run(qn[r], qr[r], lat, bt, sl, scale=scale, out=out), outs)
    row["rel_err_sorted"] = rel(got_sorted[:nref], ref)
    if kv_dtype != F8:  # SDPA: heads as query rows over one contiguous latent per sequence
        try:
            cs = [lat[bt.long()].reshape(B, 1, ctx, 576) for bt in bts]
            qq = [torch.cat([qn[r], qr[r]], -1).unsqueeze(1) for r in range(copies)]  # [B, 1, H, 576]
            sd = [lambda r=r: F.scaled_dot_product_attention(qq[r], cs[r], cs[r][..., :512], scale=scale)
                  for r in range(copies)]
            row["rel_err_sdpa"] = rel(sd[0]()[:nref, 0], ref)
            row["sdpa_us"] = time_calls(sd) * 1e6
            del cs, qq
        except Exception as exc:  # noqa: BLE001
            row["sdpa"] = f"fails: {type(exc).__name__}: {str(exc)[:120]}"
    if fi is not None:
        if fi_ready(fi_procs, "mla", 300):
            try:
                runs = [fi_mla_runner(fi, bts[r], sl, H, BS, kv_dtype, scale) for r in range(copies)]
                ckv, kpe = lat[..., :512], lat[..., 512:]
                fo = [torch.empty(B, H, 512, device=DEV, dtype=BF) for _ in range(copies)]
                runs[0](qn[0], qr[0], ckv, kpe, fo[0])
                torch.cuda.synchronize()
                err = rel(fo[0][:nref], ref)
                tt = time_calls([lambda r=r: runs[r](qn[r], qr[r], ckv, kpe, fo[r]) for r in range(copies)]) * 1e6
                row["fi"] = {"us": tt, "rel_err": err}
                if err < 5e-2:
                    row["fi_us"], row["fi_mode"] = tt, "BatchMLAPagedAttentionWrapper"
            except Exception as exc:  # noqa: BLE001
                row["fi"] = f"fails: {type(exc).__name__}: {str(exc)[:160]}"
        else:
            row["fi"] = "not built"
    del lat, qn, qr, outs
    torch.cuda.empty_cache()
    return row


def parse_variants(text):
    """``"kv_per_cta=8 stages=2;slices=4"`` -> [KernelOptions(), KernelOptions(kv_per_cta=8, stages=2), ...]."""
    from kvplan.kernels import KernelOptions as O

    out = [O()]
    for part in filter(None, (p.strip() for p in text.split(";"))):
        kw = {}
        for item in part.split():
            key, _, val = item.partition("=")
            kw[key] = None if val == "None" else val == "True" if val in ("True", "False") else int(val)
        out.append(O(**kw))
    return out


def ctas_per_sm(plan, batch):
    """Resident CTAs per SM of the plan's main kernel for ``batch`` (its occupancy, which sizes the splits)."""
    if plan._wg:
        return plan._wg._slots // plan._dev.sm_count
    few = plan._splits(batch, plan.span)[0]
    return plan._shapes[few][0].slots // plan._dev.sm_count


def sweep(read_bw, l2, mla_only=False, gqa_only=None, variants_for_all=None):
    """Launch variants on the weak shapes (same data per shape); returns rows of (shape, variant, µs, % read).
    ``variants_for_all``: one list of KernelOptions that replaces every GQA shape's own."""
    from kvplan.kernels import KernelOptions as O

    out = []
    gqa = [("head_dim 64 B16 32K", 16, 32768, (32, 8, 64), BF,
            [O(), O(slices=8, stages=3), O(slices=4, stages=8), O(slices=2, stages=8), O(bulk=False),
             O(kv_per_cta=8), O(kv_per_cta=4)]),
           ("MQA 64q/1kv B8 32K", 8, 32768, (64, 1, 128), BF, [O(), O(num_splits=16), O(num_splits=64)]),
           ("fp8 B64 8K", 64, 8192, LLAMA, F8, [O(), O(bulk=True), O(bulk=True, stages=6)]),
           ("B64 8K", 64, 8192, LLAMA, BF, [O(), O(slices=8, stages=3), O(slices=4, stages=4), O(bulk=False),
                                            O(kv_per_cta=8), O(kv_per_cta=8, stages=2), O(kv_per_cta=4),
                                            O(kv_per_cta=2)]),
           ("B16 32K", 16, 32768, LLAMA, BF, [O(), O(bulk=False), O(kv_per_cta=8), O(kv_per_cta=4),
                                              O(kv_per_cta=2)]),
           ("B8 8K", 8, 8192, LLAMA, BF, [O(), O(bulk=False), O(kv_per_cta=8), O(kv_per_cta=4)]),
           ("B1 32K", 1, 32768, LLAMA, BF, [O(), O(kv_per_cta=8), O(kv_per_cta=4), O(kv_per_cta=2)]),
           ("B32 4K", 32, 4096, LLAMA, BF, [O()]), ("B1 4K", 1, 4096, LLAMA, BF, [O()]),
           ("B1 128K", 1, 131072, LLAMA, BF, [O()]), ("64q/4kv B16 16K", 16, 16384, (64, 4, 128), BF, [O()]),
           ("fp8 B16 32K", 16, 32768, LLAMA, F8, [O()]), ("head_dim 64 B64 8K", 64, 8192, (32, 8, 64), BF, [O()]),
           ("head_dim 64 B8 8K", 8, 8192, (32, 8, 64), BF, [O()]), ("head_dim 64 B1 32K", 1, 32768, (32, 8, 64), BF, [O()]),
           ("head_dim 64 B32 4K", 32, 4096, (32, 8, 64), BF, [O()]), ("8kv B128 2K", 128, 2048, LLAMA, BF, [O()]),
           ("head_dim 64 4kv B16 32K", 16, 32768, (16, 4, 64), BF, [O()]),
           ("MQA 64q/1kv B1 32K", 1, 32768, (64, 1, 128), BF, [O()]),
           ("MQA 64q/1kv fp8 B8 32K", 8, 32768, (64, 1, 128), F8, [O()]),
           ("MQA 64q/1kv head_dim 64 B8 32K", 8, 32768, (64, 1, 64), BF, [O()]),
           ("64q/4kv B64 4K", 64, 4096, (64, 4, 128), BF, [O()]), ("16q/1kv B32 8K", 32, 8192, (16, 1, 128), BF, [O()]),
           # every large-batch default lands on 128 of 132 SMs (128 or 256 CTAs): the same work per CTA on 132 SMs
           # (B66 / B132 against B64 / B128) tells whether the SM count or the bandwidth bounds those shapes
           ("B66 8K", 66, 8192, LLAMA, BF, [O(num_splits=2)]), ("B128 4K", 128, 4096, LLAMA, BF, [O(num_splits=1)]),
           ("B132 4K", 132, 4096, LLAMA, BF, [O(num_splits=1)]), ("fp8 B66 8K", 66, 8192, LLAMA, F8, [O(num_splits=4)]),
           ("B64 8K 2 splits", 64, 8192, LLAMA, BF, [O(num_splits=2)]),
           ("fp8 B64 8K 4 splits", 64, 8192, LLAMA, F8, [O(num_splits=4)])]
    gqa = [g for g in gqa if not gqa_only or g[0] in gqa_only]
    if variants_for_all:
        gqa = [g[:5] + (variants_for_all,) for g in gqa]
    for label, B, ctx, (Hq, Hkv, D), kvd, variants in ([] if mla_only else gqa):
        es = 1 if kvd == F8 else 2
        kv_bytes = 2 * B * ctx * Hkv * D * es
        copies = max(1, min(8, math.ceil(3 * l2 / kv_bytes)))
        k, v, bts = paged(B, ctx, Hkv, D, 16, kvd, copies, l2)
        qs = [torch.randn(B, Hq, D, device=DEV).to(BF) for _ in range(copies)]
        outs = [torch.empty(B, Hq, D, device=DEV, dtype=BF) for _ in range(copies)]
        sl = torch.full((B,), ctx, dtype=torch.int32, device=DEV)
        base = None
        for opt in variants:
            try:
                plan = paged_decode_plan(Hq, Hkv, D, 16, kvd, BF, B, ctx // 16, DEV, options=opt)
                got = plan.run(qs[0], k, v, bts[0], sl, out=outs[0]).clone()
                base = got if base is None else base
                t = time_calls([lambda r=r: plan.run(qs[r], k, v, bts[r], sl, out=outs[r]) for r in range(copies)])
                ln = plan.launch_for(B)
                out.append(dict(shape=label, variant=repr(opt).replace("KernelOptions", ""), us=t * 1e6,
                                pct_read=100 * kv_bytes / t / read_bw, rel_vs_default=rel(got, base),
                                launch=f"splits {ln.splits} slices {ln.slices} stages {ln.stages} "
                                       f"bulk {getattr(ln.config, 'bulk', 0)} "
                                       f"kh {ln.kv_per_cta} ctas/SM {ctas_per_sm(plan, B)}"))
            except Exception as exc:  # noqa: BLE001
                out.append(dict(shape=label, variant=repr(opt), error=f"{type(exc).__name__}: {exc}"[:200]))
            print(json.dumps(out[-1]), flush=True)
        del k, v, qs, outs
        torch.cuda.empty_cache()
    mla = [("MLA 16h B32 8K", 32, 8192, 16, BF), ("MLA 16h B8 32K", 8, 32768, 16, BF), ("MLA 16h B1 32K", 1, 32768, 16, BF),
           ("MLA 16h B128 4K", 128, 4096, 16, BF),
           ("MLA 16h fp8 B32 8K", 32, 8192, 16, F8), ("MLA 128h B32 4K", 32, 4096, 128, BF),
           ("MLA 16h B64 16K", 64, 16384, 16, BF), ("MLA 128h B8 8K", 8, 8192, 128, BF),
           ("MLA 128h B1 32K", 1, 32768, 128, BF), ("MLA 128h fp8 B8 8K", 8, 8192, 128, F8)]
    if gqa_only:
        mla = []
    for label, B, ctx, H, kvd in mla:
        kv_bytes, copies, lat, bts, qn, qr, outs, sl = mla_inputs(B, ctx, H, kvd, l2)
        base = None
        variants = [dict(stages=2), dict(stages=3), dict(tokens=16, stages=3), dict(tokens=16, stages=4),
                    dict(tokens=64, stages=2), dict(stages=2, bulk=False)]
        if kvd == F8:
            variants[2:5] = [dict(tokens=32, stages=3), dict(tokens=32, stages=4), dict(tokens=16, stages=6)]
        variants[1:1] = [dict(wgmma=True), dict(wgmma=True, head_group=16 if H > 16 else 32), dict(wgmma=False)]
        for kw in variants:
            try:
                plan = paged_mla_decode_plan(H, 512, 64, 64, kvd, B, ctx // 64, DEV, **kw)
                got = plan.run(qn[0], qr[0], lat, bts[0], sl, scale=0.07, out=outs[0]).clone()
                base = got if base is None else base
                t = time_calls([lambda r=r: plan.run(qn[r], qr[r], lat, bts[r], sl, scale=0.07, out=outs[r])
                                for r in range(copies)])
                out.append(dict(shape=label, variant=str(kw), us=t * 1e6, pct_read=100 * kv_bytes / t / read_bw,
                                rel_vs_default=rel(got, base), launch=f"splits {plan.splits_for(B)} smem {plan.smem}"))
            except Exception as exc:  # noqa: BLE001
                out.append(dict(shape=label, variant=str(kw), error=f"{type(exc).__name__}: {exc}"[:200]))
            print(json.dumps(out[-1]), flush=True)
        del lat, qn, qr, outs
        torch.cuda.empty_cache()
    return out


def table(rows, read_bw):
    lines = [f"read bandwidth {read_bw / 1e12:.3f} TB/s; times in µs, CUDA graphs, pages "
             f"{'in address order' if ORDERED_PAGES else 'shuffled'}", "",
             "| shape | KV MB | kvplan | FlashInfer best | SDPA contiguous | kvplan / FI | kvplan / SDPA | % read BW |"
             " splits | kvplan, table sorted | / FI | / SDPA | % read BW | sort µs (once a step) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        fi = f"{r['fi_us']:.1f} ({'TC' if 'tensor' in r['fi_mode'] else 'CC' if 'CUDA' in r['fi_mode'] else 'MLA'})" \
            if "fi_us" in r else ("fails" if any("fails" in str(r.get(x, "")) for x in ("fi_cc", "fi_tc", "fi"))
                                  else "–")
        sd = f"{r['sdpa_us']:.1f}" if "sdpa_us" in r else "–"
        x1 = f"{r['kvplan_us'] / r['fi_us']:.2f}" if "fi_us" in r else "–"
        x2 = f"{r['kvplan_us'] / r['sdpa_us']:.2f}" if "sdpa_us" in r else "–"
        srt = "| – " * 5 + "|"
        if "sorted_us" in r:
            y1 = f"{r['sorted_us'] / r['fi_us']:.2f}" if "fi_us" in r else "–"
            y2 = f"{r['sorted_us'] / r['sdpa_us']:.2f}" if "sdpa_us" in r else "–"
            srt = f"| {r['sorted_us']:.1f} | {y1} | {y2} | {r['pct_read_sorted']:.1f}% | {r['sort_us']:.1f} |"
        lines.append(f"| {r['label']} | {r['kv_bytes'] / 1e6:,.0f} | {r['kvplan_us']:.1f} | {fi} | {sd} | {x1} | {x2} | "
                     f"{r['pct_read']:.1f}% | {r['splits']} " + srt)
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=None)
    ap.add_argument("--quick", action="store_true", help="a few shapes only")
    ap.add_argument("--no-flashinfer", action="store_true")
    ap.add_argument("--sweep", action="store_true", help="also time launch variants on the weak shapes")
    ap.add_argument("--mla-only", action="store_true", help="the MLA shapes only (table and sweep)")
    ap.add_argument("--sweep-only", default=None, help="comma-separated GQA sweep shapes; no table, no MLA")
    ap.add_argument("--variants", default=None,
                    help='sweep variants for every shape, e.g. "kv_per_cta=8 stages=2;slices=4" (default first)')
    ap.add_argument("--ordered-pages", action="store_true", help="block tables in address order, not shuffled")
    ap.add_argument("--fi-warm", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    global ORDERED_PAGES
    ORDERED_PAGES = args.ordered_pages
    if args.fi_warm:
        return fi_warm(args.fi_warm)
    out_dir = Path(os.environ.get("OUT", "."))
    fi, procs = None, {}
    if not args.no_flashinfer:
        try:
            fi = fi_import()
            procs = start_fi_builds(out_dir)
            print(f"FlashInfer {fi.__version__}: building {len(procs)} JIT modules in the background", flush=True)
        except Exception as exc:  # noqa: BLE001
            print(f"FlashInfer unavailable ({type(exc).__name__}: {exc}); kvplan and SDPA only", flush=True)
            fi = None
    props = torch.cuda.get_device_properties(DEV)
    l2 = getattr(props, "L2_cache_size", 50 << 20)
    read = probes.read_bandwidth()
    copy = probes.copy_bandwidth()
    print(f"# {props.name}; read {read.bytes_per_s / 1e12:.3f} TB/s ({read.method}); copy "
          f"{copy.bytes_per_s / 1e12:.3f} TB/s; torch {torch.__version__}", flush=True)
    rows = []
    gqa = GQA[:3] + GQA[7:9] if args.quick else GQA
    mla = MLA[:2] + MLA[5:7] if args.quick else MLA
    if args.sweep_only:
        gqa, mla = [], []
    for label, B, ctx, heads, kvd in ([] if args.mla_only else gqa):
        rows.append(gqa_row(label, B, ctx, heads, kvd, read.bytes_per_s, l2, fi, procs, args.quick))
        print(json.dumps(rows[-1]), flush=True)
    for label, B, ctx, H, kvd in mla:
        try:
            rows.append(mla_row(label, B, ctx, H, kvd, read.bytes_per_s, l2, fi, procs))
            print(json.dumps(rows[-1]), flush=True)
        except Exception as exc:  # noqa: BLE001
            print(f"{label}: failed: {type(exc).__name__}: {exc}", flush=True)
    for p, _ in procs.values():
        if p.poll() is None:
            p.kill()
    sweeps = sweep(read.bytes_per_s, l2, mla_only=args.mla_only,
                   gqa_only=args.sweep_only.split(",") if args.sweep_only else None,
                   variants_for_all=parse_variants(args.variants) if args.variants else None) if args.sweep else []
    result = dict(sweep=sweeps, date=datetime.date.today().isoformat(), gpu=props.name, torch=torch.__version__,
                  flashinfer=getattr(fi, "__version__", None), read_bw=read.to_dict(), copy_bw=copy.to_dict(),
                  rows=rows, command=" ".join(sys.argv))
    path = Path(args.json) if args.json else out_dir / "kernel_vs_flashinfer.json"
    path.write_text(json.dumps(result, indent=1))
    print()
    print(f"## {props.name}, {result['date']}, torch {torch.__version__}, FlashInfer {result['flashinfer']}")
    print(table(rows, read.bytes_per_s))
    if sweeps:
        print("\n| sweep shape | variant | µs | % read | launch |\n|---|---|---|---|---|")
        for r in sweeps:
            print(f"| {r['shape']} | {r['variant']} | " + (f"{r['us']:.1f} | {r['pct_read']:.1f}% | {r['launch']} |"
                                                         if "us" in r else f"{r['error']} | | |"))
    host = next((r["host_us"] for r in rows if "host_us" in r), None)
    if host:
        print("\nhost time per eager call, Llama-3-8B B1 4K (µs): " + "; ".join(f"{k} {v:.1f}" for k, v in host.items()))


if __name__ == "__main__":
    main()
