"""The judged summary of a verify device run (RESULTS.md): per model the capacity, budget and decode verdicts
against the planner, and every budget term predicted vs measured.

    python3 benchmarks/verify_summary_md.py benchmarks/device_runs/early/verify_h200_2026-12-01_s4.jsonl

Records from before the plan carried a calibrated estimate (verify_h200_2026-12-01.jsonl) have none to compare: their
cells read "-" and their decode verdict "not judged", as recorded.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kvplan.verify.recorded import known  # noqa: E402

GiB = 2**30
DECODE_VERDICT = {True: "within 15%", False: "not within", None: "not judged"}


def short(args):
    return " ".join(args).replace("meta-llama/", "").replace("deepseek-ai/", "").replace("openai/", "") \
        .replace("Qwen/", "").replace("mistralai/", "").replace("google/", "")


def like_for_like(r: dict) -> bool:
    """Recordings made before verify judged a simulated TP rank without the planner's all-reduce term: apply it
    here (the rank runs no all-reduce). Returns whether it changed anything."""
    if "SIMULATED" not in r["rank"]["mode"]:
        return False
    changed = False
    for p in r["decode"]["points"]:
        if "estimate_includes_allreduce" not in p and known(p["estimate_ms"]):  # none to take the term out of
            p.update(engine_estimate_ms=p["estimate_ms"], estimate_ms=p["estimate_ms"] - p["tp_term_ms"],
                     estimate_includes_allreduce=False)
            changed = True
    pts = r["decode"]["points"]
    if all(known(p["estimate_ms"]) for p in pts):  # a record with no estimate keeps its verdict: not judged
        r["verdict"]["decode_within"] = all(abs(p["measured_ms"] / p["estimate_ms"] - 1) <= 0.15 for p in pts)
    return changed


def main(path):
    runs = [json.loads(line) for line in open(path)]
    for run in runs:
        if run["result"] and like_for_like(run["result"]):
            run["args"] = run["args"] + ["(rank judged without all-reduce)"]
    print("| model | wall | capacity: pools torch / NVML, boundary | budget: planned / measured max concurrency "
          "| decode b1 ms: measured / estimate | at max: batch, measured / estimate | decode verdict "
          "| TTFT ms: measured / estimate | fixed us/layer |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        r = run["result"]
        if r is None:
            print(f"| `{short(run['args'])}` | {run['wall_s']:.0f} s | failed: {run['stderr_tail'][-120:]} |||||||")
            continue
        a, bd, v, d = r["allocation"], r["boundary"], r["verdict"], r["decode"]
        first, last = d["points"][0], d["points"][-1]
        p = r["prefill"]["prefill"] if "prefill" in r["prefill"] else r["prefill"]
        planned, measured = r["plan"]["max_concurrency"], r["measured_plan"]["max_concurrency"]

        def err(pt):
            if not known(pt["estimate_ms"]):
                return f"{pt['measured_ms']:.2f} / -"
            error = pt['measured_ms'] / pt['estimate_ms'] - 1
            return f"{pt['measured_ms']:.2f} / {pt['estimate_ms']:.2f} ({error:+.0%})"

        ttft = (f"{p['ttft_ms']:.0f} / {p['estimate_ms']:.0f} ({p['error']:+.0%})" if known(p["estimate_ms"])
                else f"{p['ttft_ms']:.0f} / -")

        print(f"| `{short(run['args'])}` | {run['wall_s']:.0f} s | {a['torch_error']:+.3%} / {a['nvml_error']:+.3%}, "
              f"{'confirmed' if bd['confirmed'] else 'NOT confirmed'} ({bd['served']}) | {planned} / {measured} "
              f"{'within' if v['budget_within'] else 'NOT within'} | {err(first)} | b{last['batch']}: {err(last)} | "
              f"{DECODE_VERDICT[v['decode_within']]} | {ttft} | {d['per_layer_fixed_us']:.0f} |")
    print()
    print("| model | " + " | ".join(f"{t} GiB: predicted / measured" for t in
                                     ("weights", "activation_peak", "non_torch", "cuda_graphs")) + " |")
    print("|---|---|---|---|---|")
    for run in runs:
        r = run["result"]
        if r is None:
            continue
        terms = {t["term"]: t for t in r["terms"]}
        cells = []
        for name in ("weights", "activation_peak", "non_torch", "cuda_graphs"):
            t = terms[name]
            m = t.get("measured_bytes")
            cells.append(f"{t['predicted_bytes'] / GiB:.2f} / {m / GiB:.2f}" if m is not None else "-")
        print(f"| `{short(run['args'])}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
