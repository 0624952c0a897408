"""The recorded H200 measurements (benchmarks/device_runs/early/verify_h200_2026-12-01.jsonl, taken when kvplan's
planner still held generic reserves) judged against the planner as it is now: the budget terms of the vLLM release each
record names (options.engine; vLLM 0.32 for records from before --engine) for the same settings (gpu_memory_utilization
0.9, max_num_seqs 256, max_num_batched_tokens 8192, block 16) and the calibrated decode / prefill estimates at the
batches measured. Nothing is re-measured; one correction is applied to records taken before verify compared with
an engine model (their budget names no engine): the engine counts non-torch memory from after the CUDA context
exists, those recordings from before it, so the context (measured separately, 617.6 MiB) is taken out of that term.
Records sized after warmup (vLLM 0.34's extensible KV cache: budget.sizing "extensible") are refused, one line
each: their budget is not requested memory less the terms, and is not rebuilt here.

A term the plan subtracts but the record has no row for (runner_state, the model runner's buffers, which vLLM
counts from 0.27 and verify holds from session 51, after these records were taken) follows verify's own rule for a
term it does not measure (kvplan/verify/terms.py measured_kv_budget: "not measured: taken as predicted"): the
measured budget subtracts its prediction, as the plan does, its row reads "not recorded" instead of "yes", and a
line names the term and the predicted size taken. (Until 2026-12-05 the script left such a term out of the measured
budget, so the measured side had that much more room than the plan: see benchmarks/RESULTS.md.)

    python3 benchmarks/verify_rejudge.py benchmarks/device_runs/early/verify_h200_2026-12-01.jsonl
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as its usage line says, from the repo root

from kvplan.gpu.rank import Options, predicted_plan  # noqa: E402
from kvplan.gpu.verify_run import device_gpu  # noqa: E402
from kvplan.model.sources import resolve  # noqa: E402
from kvplan.verify.judge import judge_budget, judge_decode, relative_error  # noqa: E402
from kvplan.verify.layout import kernel_kv_dtype  # noqa: E402
from kvplan.verify.recorded import NOT_RECORDED  # noqa: E402
from kvplan.verify.terms import (decode_prediction, measured_kv_budget, predicted_terms,  # noqa: E402
                                 prefill_prediction, responsible_term, subtracted_terms, term_rows)

GiB = 2**30


class Refused(Exception):
    """A record this script cannot rejudge; its message is the one line said instead."""


def rejudge(run: dict) -> dict:
    r = run["result"]
    o = r["options"]
    if r["budget"].get("sizing") == "extensible":
        raise Refused(f"`{' '.join(run['args'])}`: not rejudged: sized after warmup ({r['budget'].get('engine')}'s "
                      f"extensible KV cache), which this script does not rebuild")
    spec = resolve(r["model"])
    opts = Options(o["tp"], o["context"], o["kv_dtype"], o["gpu_util"], o["block_size"], o["max_num_seqs"],
                   o["max_num_batched_tokens"], o.get("engine", "vllm"))
    total = r["gpu"]["memory_total_bytes"]
    gpu, _ = device_gpu(r["gpu"], total)
    plan = predicted_plan(spec, opts, gpu, total)
    precision = kernel_kv_dtype(opts.kv_dtype, spec)
    measured = {t["term"]: t["measured_bytes"] for t in r["terms"]}
    if r["budget"].get("engine") is None:  # recorded before the engine model: non-torch counted from before the context
        measured["non_torch"] -= r["gpu"]["cuda_context_bytes_nvml"]
    predicted = predicted_terms(plan)
    rows = term_rows(predicted, measured)
    subtracted = subtracted_terms(plan)
    unrecorded = unrecorded_terms(subtracted, measured, predicted)
    budget = measured_kv_budget(plan.budget.usable_bytes, measured, subtracted, predicted)  # unrecorded: as predicted
    view = predicted_plan(spec, opts, gpu, total, budget=budget)
    budget_ok, budget_why = judge_budget(plan.max_concurrency, view.max_concurrency, responsible_term(rows))
    points = []
    for p in r["decode"]["points"]:
        pred = decode_prediction(spec, plan, precision, p["batch"], gpu, gpu.decode_bandwidth)
        points.append({"batch": p["batch"], "measured_ms": p["measured_ms"], "estimate_ms": pred["estimate_ms"],
                       "roofline_ms": pred["roofline_ms"], "layer_us": pred["layer_us"]})
    decode_ok, decode_why = judge_decode(points)
    ttft = prefill_prediction(spec, plan, precision, r["prefill"]["input_len"], opts.max_num_batched_tokens, gpu,
                              gpu.decode_bandwidth)
    return {"args": " ".join(run["args"]), "rows": rows, "subtracted": subtracted, "unrecorded": unrecorded,
            "plan": plan, "view": view,
            "budget": budget, "budget_ok": budget_ok, "budget_why": budget_why, "points": points,
            "decode_ok": decode_ok, "decode_why": decode_why, "ttft": r["prefill"]["ttft_ms"], "ttft_estimate": ttft,
            "input_len": r["prefill"]["input_len"], "fixed_us": r["decode"]["per_layer_fixed_us"]}


def unrecorded_terms(subtracted: tuple, measured: dict, predicted: dict) -> dict:
    """{term: predicted bytes} of the terms the plan subtracts with a non-zero prediction that the record has no
    row for (a row measured None, like NCCL on one simulated rank, is a row). A term predicted 0 is not subtracted
    (subtracted_terms), so it never reaches here: 0 only where the plan's release predates it."""
    return {name: predicted[name] for name in subtracted if name not in measured and predicted.get(name)}


def subtracted_column(term: str, judged: dict) -> str:
    if term in judged["unrecorded"]:
        return str(NOT_RECORDED)
    return "yes" if term in judged["subtracted"] else "no"


def rejudged(runs: list) -> list:
    """Every run rejudged; a refused one said on stderr in one line and left out."""
    judged = []
    for run in runs:
        try:
            judged.append(rejudge(run))
        except Refused as why:
            print(f"verify_rejudge: {why}", file=sys.stderr)
    return judged


def main(path: str) -> None:
    runs = [json.loads(line) for line in open(path) if json.loads(line)["result"]]
    judged = rejudged(runs)
    if not judged:
        sys.exit(1)
    print("| command | max concurrency: plan / measured budget | budget verdict | decode ms batch 1: measured / "
          "estimate | at max: measured / estimate | decode verdict | TTFT ms: measured / estimate |")
    print("|---|---|---|---|---|---|---|")
    for j in judged:
        one, top = j["points"][0], j["points"][-1]
        print(f"| `{j['args']}` | {j['plan'].max_concurrency} / {j['view'].max_concurrency} | "
              f"{'within' if j['budget_ok'] else 'NOT within'} | {one['measured_ms']:.2f} / {one['estimate_ms']:.2f} "
              f"({relative_error(one['measured_ms'], one['estimate_ms']):+.0%}) | batch {top['batch']}: "
              f"{top['measured_ms']:.1f} / {top['estimate_ms']:.1f} "
              f"({relative_error(top['measured_ms'], top['estimate_ms']):+.0%}) | "
              f"{'within 15%' if j['decode_ok'] else 'NOT within 15%'} | {j['ttft']:.0f} / {j['ttft_estimate']:.0f} "
              f"({relative_error(j['ttft'], j['ttft_estimate']):+.0%}) |")
    print()
    print("| command | term | vLLM 0.32 model GiB | measured GiB | error | subtracted |")
    print("|---|---|---|---|---|---|")
    for j in judged:
        for row in j["rows"]:
            p, m = row["predicted_bytes"], row["measured_bytes"]
            print(f"| `{j['args']}` | {row['term']} | {(p or 0) / GiB:.2f} | "
                  f"{'-' if m is None else f'{m / GiB:.2f}'} | "
                  f"{'-' if row['error'] is None else format(row['error'], '+.0%')} | "
                  f"{subtracted_column(row['term'], j)} |")
    print()
    for j in judged:
        missing = "".join(f" Not recorded: {term}, taken as predicted ({size / GiB:.2f} GiB) in the measured budget."
                          for term, size in j["unrecorded"].items())
        print(f"- `{j['args']}`: budget: {j['budget_why']}.{missing} Engine estimate's per-layer constant "
              f"{j['points'][0]['layer_us']:.0f} us; this forward's measured per-layer fixed cost "
              f"{j['fixed_us']:.0f} us.")


if __name__ == "__main__":
    main(sys.argv[1])
