"""The decode step term by term (issue 13: where a decode verdict misses, the term responsible, measured, and why).

The calibrated engine estimate is a sum of terms (plan/speed.py engine_ms; verify/terms.py decode_prediction's
estimate_terms): roofline (bytes / the catalog's bandwidth) + per-layer fixed cost (layers x the fitted us) +
all-reduce + compute (FLOPs at the fitted efficiency). The measured step is split into the same terms:

- roofline: the same bytes over the measured read bandwidth;
- per-layer fixed cost: batch 1's step less its roofline and all-reduces, per layer, taken at every batch (at one
  token the matmuls' FLOPs are a few percent of that time, so batch 1's compute reads 0 by this split);
- all-reduce: a real TP group's collectives timed alone at the same batch (gpu/rank.py time_all_reduce); none in a
  step on one GPU or on one simulated rank (whose estimate leaves the term out as well);
- compute: what remains of the step.

A term the run did not measure (no batch-1 step; a group's all-reduces not timed at that batch) is taken at its
estimate, as a budget term not measured is (verify/terms.py measured_kv_budget)."""

from __future__ import annotations

from typing import Optional

TERMS = ("roofline", "per_layer_fixed", "allreduce", "compute")  # the estimate's terms, in plan/speed.py's order
NAMES = {"roofline": "roofline", "per_layer_fixed": "per-layer fixed cost", "allreduce": "all-reduce",
         "compute": "compute", "step": "step"}


def _row(term: str, estimate: float, measured: float, **basis) -> dict:
    return {"term": term, "estimate_ms": estimate, "measured_ms": measured, "difference_ms": measured - estimate,
            **basis}


def step_terms(points: list, planner_bandwidth: Optional[float] = None, read_bandwidth: Optional[float] = None,
               allreduce_ms: Optional[dict] = None) -> dict:
    """{batch: rows} for the points carrying estimate_terms: one row a term and one for the whole step, each with the
    estimate, the measured figure and their difference (ms). `allreduce_ms`: {batch: ms} of a real group's
    collectives timed alone. Without the two bandwidths the measured roofline is the estimate's."""
    ratio = planner_bandwidth / read_bandwidth if planner_bandwidth and read_bandwidth else 1.0
    timed = allreduce_ms or {}
    judged = [p for p in points if p.get("estimate_terms") and p.get("estimate_ms") is not None]

    def reduce(p: dict) -> float:
        return timed.get(p["batch"], p["estimate_terms"]["allreduce_ms"])

    first = next((p for p in judged if p["batch"] == 1), None)
    layer_us = None if first is None else (first["measured_ms"] - first["estimate_terms"]["roofline_ms"] * ratio
                                           - reduce(first)) / first["estimate_terms"]["layers"] * 1e3
    rows = {}
    for p in judged:
        t = p["estimate_terms"]
        roofline = t["roofline_ms"] * ratio
        fixed = t["fixed_ms"] if layer_us is None else t["layers"] * layer_us * 1e-3
        allreduce = reduce(p)
        rows[p["batch"]] = [
            _row("roofline", t["roofline_ms"], roofline,
                 bytes=None if not planner_bandwidth else round(t["roofline_ms"] * 1e-3 * planner_bandwidth),
                 estimate_bandwidth_bytes_per_s=planner_bandwidth, measured_bandwidth_bytes_per_s=read_bandwidth),
            _row("per_layer_fixed", t["fixed_ms"], fixed, layers=t["layers"], estimate_us=t["layer_us"],
                 measured_us=t["layer_us"] if layer_us is None else layer_us,
                 measured_how="batch 1's step over its roofline and all-reduces, per layer" if layer_us is not None
                 else "no batch-1 step: taken at the estimate"),
            _row("allreduce", t["allreduce_ms"], allreduce,
                 measured_how="timed alone" if p["batch"] in timed else "none in this step" if not allreduce
                 else "not timed: taken at the estimate"),
            _row("compute", t["compute_ms"], p["measured_ms"] - roofline - fixed - allreduce),
            _row("step", p["estimate_ms"], p["measured_ms"],
                 error=(p["measured_ms"] - p["estimate_ms"]) / p["estimate_ms"])]
    return rows


def of_result(r: dict) -> dict:
    """{batch: rows} of a verify result: the rows it carries, or for a result recorded before it carried them,
    worked out from its recorded figures (points, bandwidths, a real group's all-reduce timings)."""
    points = r["decode"]["points"]
    if any(p.get("terms") for p in points):
        return {p["batch"]: p["terms"] for p in points if p.get("terms")}
    if not any(p.get("estimate_terms") for p in points):
        return {}
    return of_run(points, r["gpu"], r.get("tp"))


def of_run(points: list, gpu: dict, tp: Optional[dict]) -> dict:
    """step_terms at a verify run's bandwidths (its `gpu` record: the catalog's, the measured read) with a real TP
    group's all-reduces timed alone (its `tp` record, None where none ran)."""
    timed = {q["batch"]: q["ms"] for q in (tp or {}).get("points", ()) if "ms" in q}
    return step_terms(points, gpu.get("bandwidth_planner_bytes_per_s"), gpu.get("bandwidth_read_bytes_per_s"), timed)


def furthest(rows: list) -> dict:
    """The estimate term whose measured figure is furthest from it: the one a miss names."""
    return max((row for row in rows if row["term"] in TERMS), key=lambda row: abs(row["difference_ms"]))


def why(row: dict) -> str:
    """One plain sentence on why `row`'s term misses, from what the term holds (plan/speed.py)."""
    below = row["difference_ms"] < 0
    if row["term"] == "compute" and below:
        return ("the compute term is fitted on serving engines' whole step times, so it prices as matmul FLOPs "
                "whatever their steps add as the batch grows, and a bare forward pass does not spend that time")
    if row["term"] == "compute":
        return "this forward pass's matmuls and attention run slower than the efficiency fitted on engines' kernels"
    if row["term"] == "per_layer_fixed":
        return (f"this forward pass spends {row['measured_us']:.1f} us a layer beyond its roofline against the "
                f"{row['estimate_us']:.1f} us fitted on engines' launches and small kernels")
    if row["term"] == "roofline":
        off = row["estimate_ms"] / row["measured_ms"] - 1 if row["measured_ms"] else 0.0
        return (f"the measured read bandwidth is {off:+.0%} against the catalog's, which the estimate divides the "
                f"step's bytes by")
    return (f"the all-reduces, timed alone, take {'less' if below else 'more'} than the planner's latency and "
            f"link terms price them")


def responsible_line(missed: list) -> str:
    """The term responsible at each missed batch, measured, and why: `missed`, (batch, rows) of the batches outside
    the tolerance. Batches that name the same term share one clause."""
    named: dict = {}
    for batch, rows in missed:
        row = furthest(rows)
        named.setdefault(row["term"], []).append((batch, row))
    clauses = []
    for term, found in named.items():
        figures = "; ".join(f"batch {b}: {row['estimate_ms']:.3f} ms estimated vs "
                            f"{round(row['measured_ms'], 3) + 0.0:.3f} ms measured" for b, row in found)
        clauses.append(f"{NAMES[term]} ({figures}): {why(found[-1][1])}")
    return "term responsible: " + "; ".join(clauses)
