"""A timeline of a chain of streaming GEMVs (kvplan/kernels/gemv_stream.py, its trace=True form): where a launch's
time goes at the kernel boundaries, which the whole-model stream loses 4-6 us per launch at (RESULTS.md, sessions
19-20), and why a chain mixing the one- and two-CTA-per-SM launches runs far slower than either (session 20).

    python3 benchmarks/gemv_trace.py [--model Llama-3.1-8B] [--layers 6] [--batch 1] [--forms c1,auto,c2] [--out F]

A form ending in "r" (c1r, autor, c2r) is that launch with rotate=True (gemv_stream.cu KVP_GV_ROTATE); o1 / o2 /
o2d5 / o2d8: whole 16-row slices a CTA (own=True, KVP_GV_OWN), one CTA per SM with a ring of 8, two with rings of
6 / 5 / 8.

Per form, the model's four matmuls (skinny_gemm.py's DENSE shapes) of ``layers`` layers back to back in one CUDA
graph, replayed; then one replay in which every launch's CTAs stamp globaltimer at entry, when the producer's and the
MMA warps' waits return, and at their end. Per shape (averaged over the layers, the chain's first launch left out),
in us from the end of the launch before it (its last CTA's end, "E"):
  entry   its first / last CTA's entry (negative: resident that long before E, programmatic dependent launch)
  wait    the producer's wait returning, first / median / last CTA (the handoff after E)
  first stage  median CTA's first stage full (its x landed; weights were copied before the wait)
  issued  median CTA's producer done issuing copies
  steps done  median / last CTA's last MMA step done; counting: median end - steps done (the split tiles' sums)
  end     median / last CTA's end; ideal: bytes / read bandwidth; lost = last end - ideal
  spread  last end - median end (the CTAs' uneven ends)
Timestamps are the GPU's global nanosecond timer; the traced chain's replay time is printed beside the plain one's.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys

import torch

sys.path.insert(0, ".")
from benchmarks.skinny_gemm import DENSE  # noqa: E402
from kvplan.gpu.timing import capture, time_replays  # noqa: E402
from kvplan.kernels.gemv_stream import gemv_stream_plan  # noqa: E402
from kvplan.kernels.gemv_stream_config import TRACE_STAMPS  # noqa: E402
from kvplan.kernels.probes import read_bandwidth  # noqa: E402

FORMS = {"c1": {"ctas_per_sm": 1, "depth": 8}, "c2": {"ctas_per_sm": 2, "depth": 6}, "auto": {}}
FORMS.update({f"{name}r": dict(opts, rotate=True) for name, opts in list(FORMS.items())})  # rotated order
FORMS.update(o1={"ctas_per_sm": 1, "depth": 8, "own": True}, o2={"ctas_per_sm": 2, "depth": 6, "own": True},
             o2d5={"ctas_per_sm": 2, "depth": 5, "own": True}, o2d8={"ctas_per_sm": 2, "depth": 8, "own": True})


def chain_time(plans, ws, xs, traces=None) -> tuple:
    def chain():
        for i, (shape, w) in enumerate(ws):
            plans[shape].run(xs[shape[1]], w, trace=None if traces is None else traces[i])

    graph, _ = capture(chain)
    ms = time_replays(graph.replay, reps=20)["ms"]
    return graph, ms


def launch_rows(buf, ctas: list[int]) -> list[dict]:
    """Per launch, its CTAs' stamps in us relative to the previous launch's last end (the first launch: None)."""
    rows, prev_end = [], None
    for i, n in enumerate(ctas):
        t = buf[i, :TRACE_STAMPS * n].view(n, TRACE_STAMPS).double()
        worked = t[t[:, 3] > 0]
        end_last = float(worked[:, 3].max())
        if prev_end is not None:
            rel = (worked - prev_end) / 1e3
            rows.append({"entry": float(rel[:, 0].min()), "entry_last": float(rel[:, 0].max()),
                         "wait_first": float(rel[:, 1].min()),
                         "wait_median": float(rel[:, 1].median()), "wait_last": float(rel[:, 1].max()),
                         "ready_median": float(rel[:, 4].median()), "issued_median": float(rel[:, 6].median()),
                         "steps_median": float(rel[:, 5].median()), "steps_last": float(rel[:, 5].max()),
                         "count_median": float((rel[:, 3] - rel[:, 5]).median()),
                         "end_median": float(rel[:, 3].median()), "end_last": float(rel[:, 3].max())})
        else:
            rows.append(None)
        prev_end = end_last
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="Llama-3.1-8B", choices=sorted(DENSE))
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--forms", default="c1,auto,c2")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    _, shapes = DENSE[args.model]
    bw = read_bandwidth().bytes_per_s
    print(f"read bandwidth {bw / 1e12:.3f} TB/s; {args.model}, {args.layers} layers, batch {args.batch}", flush=True)
    ws = [(s, torch.randn(*s, dtype=torch.bfloat16, device="cuda") * s[1] ** -0.5)
          for _ in range(args.layers) for s in shapes]
    xs = {s[1]: torch.randn(args.batch, s[1], dtype=torch.bfloat16, device="cuda") for s in shapes}
    total_bytes = sum(w.numel() * 2 for _, w in ws)
    result = {"read_bw": bw, "model": args.model, "layers": args.layers, "batch": args.batch, "forms": {}}
    for form in args.forms.split(","):
        opts = FORMS[form]
        plain = {s: gemv_stream_plan(s[0], s[1], torch.bfloat16, device=0, **opts) for s in shapes}
        traced = {s: gemv_stream_plan(s[0], s[1], torch.bfloat16, device=0, trace=True, **opts) for s in shapes}
        ctas = [traced[s].ctas for s, _ in ws]
        buf = torch.zeros(len(ws), TRACE_STAMPS * max(ctas), dtype=torch.int64, device="cuda")
        graph, ms_plain = chain_time(plain, ws, xs)
        del graph
        graph, ms_traced = chain_time(traced, ws, xs, traces=list(buf))
        buf.zero_()
        graph.replay()
        torch.cuda.synchronize()
        rows = launch_rows(buf.cpu(), ctas)
        del graph
        print(f"\n== {form}: chain {ms_plain * 1e3:.1f} us ({100 * total_bytes / (ms_plain / 1e3) / bw:.1f}% of read), "
              f"traced {ms_traced * 1e3:.1f} us; per shape, us from the previous launch's last end:", flush=True)
        print("| shape | CTAs | entry first / last | wait first / median / last | first stage | issued "
              "| steps done median / last | counting | end median / last | ideal | lost | spread |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        per_shape = {}
        for i, s in enumerate(shapes):
            picked = [r for j, r in enumerate(rows) if j % len(shapes) == i and r is not None]
            mean = {k: statistics.fmean(r[k] for r in picked) for k in picked[0]}
            ideal = s[0] * s[1] * 2 / bw * 1e6
            mean.update(ideal=ideal, lost=mean["end_last"] - ideal, spread=mean["end_last"] - mean["end_median"],
                        ctas=traced[s].ctas)
            per_shape[f"{s[0]}x{s[1]}"] = mean
            print(f"| {s[0]}x{s[1]} | {traced[s].ctas} | {mean['entry']:.1f} / {mean['entry_last']:.1f} | "
                  f"{mean['wait_first']:.1f} / "
                  f"{mean['wait_median']:.1f} / {mean['wait_last']:.1f} | {mean['ready_median']:.1f} | "
                  f"{mean['issued_median']:.1f} | {mean['steps_median']:.1f} / {mean['steps_last']:.1f} | "
                  f"{mean['count_median']:.1f} | {mean['end_median']:.1f} / "
                  f"{mean['end_last']:.1f} | {ideal:.1f} | {mean['lost']:.1f} | {mean['spread']:.1f} |", flush=True)
        result["forms"][form] = {"chain_us": ms_plain * 1e3, "traced_us": ms_traced * 1e3, "shapes": per_shape,
                                 "launches": rows}
        del plain, traced
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
