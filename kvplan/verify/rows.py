"""verify's csv (`kvplan verify --format csv`): one row a figure verify predicted and then measured, so a script can
track every error across runs without walking the JSON. Columns: rank (the GPU the row is of: 0 for a one-GPU run),
section, item, unit, predicted, measured, error ((measured - predicted) / predicted throughout, blank where either is
missing: the sign says which way the measurement fell, where the verdict lines quote the plan's error against the
measurement), verdict (on the three verdict rows: the verdict and its reason).

Sections: `budget` (every budget term and the KV budget they leave, bytes), `capacity` (the count the budget verdict
judges, max concurrency or, where max_num_seqs caps both plans, the resident sequences; the pools' bytes as laid out
vs as torch and NVML saw them; the sequences the boundary admitted), `decode` (the calibrated estimate vs the step at
batch 1 and at max concurrency, ms, items stable across runs: the batch itself is its own row; each term of the
estimate vs the same term of the measured step, `<batch> term roofline|per_layer_fixed|allreduce|compute`
(verify/decode_terms.py); the bandwidth the roofline divides by, the catalog's vs the measured read; the per-layer
fixed cost, fitted vs batch 1's), `allreduce` (a real TP group's measured all-reduce per layer vs the planner's term),
`weight stream` (the dense linears' stream per batch, shape by shape and in decode order, then each weight shape
per batch, bytes/s against the measured read bandwidth: issue 13's bar is 90% of it), `prefill` (TTFT, ms), the
three verdicts, and in a real TP group every other rank's budget, allocation and boundary."""

from __future__ import annotations

from typing import Optional

from . import weight_stream
from .decode_terms import TERMS, of_result
from .recorded import known, recorded

COLUMNS = ("rank", "section", "item", "unit", "predicted", "measured", "error", "verdict")


def _row(section: str, item: str, unit: str, predicted, measured, error: Optional[float] = None,
         verdict: str = "", rank: int = 0) -> dict:
    if error is None and predicted and known(measured):
        error = (measured - predicted) / predicted
    return dict(zip(COLUMNS, (rank, section, item, unit, predicted, measured, error, verdict)))


def _word(value: Optional[bool], yes: str, no: str) -> str:
    return {True: yes, False: no, None: "not judged"}[value]


def _counts(r: dict) -> tuple:
    """(item, planned, measured) of the budget verdict (judge.budget_counts, recorded by verify_run); a result
    written before session 62 carries the plans' max concurrency only."""
    c = r["budget"].get("verdict_counts")
    if c is None:
        return "max_concurrency", r["plan"]["max_concurrency"], r["measured_plan"]["max_concurrency"]
    item = "max_concurrency" if c["what"] == "max concurrency" else "resident_sequences"
    return item, c["planned"], c["measured"]


def _decode_rows(r: dict) -> list:
    points, split = r["decode"]["points"], of_result(r)
    rows = []
    for i, p in enumerate(points):
        at = "batch 1" if p["batch"] == 1 else "at max concurrency" if i == len(points) - 1 else f"batch {p['batch']}"
        how = "eager" if p.get("eager") else "graph"
        if at == "at max concurrency":
            rows.append(_row("decode", "max concurrency batch", "sequences", None, p["batch"]))
        rows.append(_row("decode", f"{at} ({how})", "ms", p.get("estimate_ms"), p["measured_ms"]))
        rows.append(_row("decode", f"{at} roofline", "ms", p["roofline_ms"], p["measured_ms"]))
        rows += [_row("decode", f"{at} term {t['term']}", "ms", t["estimate_ms"], t["measured_ms"])
                 for t in split.get(p["batch"], ()) if t["term"] in TERMS]
    first = next(iter(split.values()), None)
    if first:  # what the roofline and per-layer rows are made of, once: they are the same at every batch
        roofline, fixed = first[0], first[1]
        rows += [_row("decode", "read bandwidth", "bytes/s", roofline["estimate_bandwidth_bytes_per_s"],
                      roofline["measured_bandwidth_bytes_per_s"]),
                 _row("decode", "per-layer fixed cost", "us", fixed["estimate_us"], fixed["measured_us"])]
    return rows


def _stream_rows(r: dict) -> list:
    """The weight stream against the measured read bandwidth (issue 13's bar: 90% of it), bytes/s: all dense linears
    shape by shape and in decode order per batch, then each shape per batch (verify/weight_stream.py)."""
    g, read = r.get("gemm") or {}, r["gpu"].get("bandwidth_read_bytes_per_s")
    rows = [_row("weight stream", f"batch {b}{how}", "bytes/s", read, s["bytes_per_s"])
            for part, how in (("stream", ""), ("decode_order", ", decode order"))
            for b, s in (g.get(part) or {}).items() if s.get("bytes_per_s")]
    for shape in weight_stream.by_shape(r) if g.get("shapes") else ():
        name = f"{shape['shape'][0]}x{shape['shape'][1]}" + ("" if shape["kind"] == "16-bit" else f" {shape['kind']}")
        rows += [_row("weight stream", f"{name} x {shape['layers']} batch {b}", "bytes/s", read, read * x["fraction"])
                 for b, x in shape["batches"].items()]
    return rows


def _rank_rows(s: dict) -> list:
    """Another rank of a real TP group (gpu/tp.py _rank_summary): what it measured, where rank 0 holds the plan."""
    n, a = s["rank"], s["allocation"]
    rows = [_row("budget", term, "bytes", None, measured, rank=n) for term, measured in s["terms"].items()]
    rows += [_row("budget", "kv_budget", "bytes", None, s.get("rank_kv_budget_bytes") or s["measured_kv_budget_bytes"],
                  rank=n),
             _row("capacity", "kv_pools_torch", "bytes", a["layout_bytes"], a["torch_bytes"], a["torch_error"],
                  rank=n),
             _row("capacity", "boundary_sequences", "sequences", None, s["served"], rank=n,
                  verdict="confirmed" if s["boundary_confirmed"] else "not confirmed")]
    return rows


def verify_rows(r: dict) -> list:
    """The rows of one verify result (`VerifyResult.result`)."""
    v, a, b = r["verdict"], r["allocation"], r["budget"]
    rows = [_row("budget", t["term"], "bytes", t["predicted_bytes"], t["measured_bytes"], t["error"])
            for t in r["terms"]]
    rows.append(_row("budget", "kv_budget", "bytes", b["predicted_kv_budget_bytes"], b["measured_kv_budget_bytes"]))
    item, planned, measured = _counts(r)
    rows += [_row("capacity", item, "sequences", planned, measured),
             _row("capacity", "kv_pools_torch", "bytes", a["layout_bytes"], a["torch_bytes"], a["torch_error"]),
             _row("capacity", "kv_pools_nvml", "bytes", a["layout_bytes"], a["nvml_bytes"], a["nvml_error"]),
             _row("capacity", "boundary_sequences", "sequences", recorded(r["measured_plan"], "pool_sequences"),
                  r["boundary"]["served"])]
    rows += _decode_rows(r) + _stream_rows(r)
    rows += [_row("allreduce", f"batch {q['batch']} per layer", "us", q.get("planner_per_layer_us"), q["per_layer_us"])
             for q in (r.get("tp") or {}).get("points", ())]
    p = r["prefill"]
    rows += [_row("prefill", "prompt tokens", "tokens", None, p["input_len"]),
             _row("prefill", "ttft", "ms", p.get("estimate_ms"), p["ttft_ms"])]
    verdicts = (("capacity", _word(v["capacity_confirmed"], "confirmed", "not confirmed"), v["capacity_reason"]),
                ("budget", _word(v["budget_within"], "within", "not within"), v["budget_reason"]),
                ("decode", _word(v["decode_within"], "within", "not within"), v["decode_reason"]))
    rows += [_row("verdict", name, "", None, None, None, f"{word}: {reason}") for name, word, reason in verdicts]
    for s in r.get("ranks", ())[1:]:
        rows += _rank_rows(s)
    return rows
