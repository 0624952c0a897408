"""verify's csv (`kvplan verify --format csv`): one row a figure verify predicted and then measured, so a script can
track every error across runs without walking the JSON. Columns: section, item, unit, predicted, measured, error
((measured - predicted) / predicted, blank where either is missing), verdict (on the three verdict rows: the verdict
and its reason).

Sections: `budget` (every budget term, bytes), `capacity` (max concurrency as planned vs on the measured budget; the
pools' bytes as laid out vs as torch and NVML saw them; the sequences the boundary admitted), `decode` (a row a timed
batch, ms: the calibrated estimate vs the step), `prefill` (TTFT, ms), and the three verdicts with their reasons."""

from __future__ import annotations

from typing import Optional

COLUMNS = ("section", "item", "unit", "predicted", "measured", "error", "verdict")


def _row(section: str, item: str, unit: str, predicted, measured, error: Optional[float] = None,
         verdict: str = "") -> dict:
    if error is None and predicted and measured is not None:
        error = (measured - predicted) / predicted
    return dict(zip(COLUMNS, (section, item, unit, predicted, measured, error, verdict)))


def _word(value: Optional[bool], yes: str, no: str) -> str:
    return {True: yes, False: no, None: "not judged"}[value]


def verify_rows(r: dict) -> list:
    """The rows of one verify result (`VerifyResult.result`)."""
    v, a, m = r["verdict"], r["allocation"], r["measured_plan"]
    rows = [_row("budget", t["term"], "bytes", t["predicted_bytes"], t["measured_bytes"], t["error"])
            for t in r["terms"]]
    rows += [_row("capacity", "max_concurrency", "sequences", r["plan"]["max_concurrency"], m["max_concurrency"]),
             _row("capacity", "kv_pools_torch", "bytes", a["layout_bytes"], a["torch_bytes"], a["torch_error"]),
             _row("capacity", "kv_pools_nvml", "bytes", a["layout_bytes"], a["nvml_bytes"], a["nvml_error"]),
             _row("capacity", "boundary_sequences", "sequences", m["pool_sequences"], r["boundary"]["served"])]
    rows += [_row("decode", f"batch {p['batch']}", "ms", p.get("estimate_ms"), p["measured_ms"])
             for p in r["decode"]["points"]]
    p = r["prefill"]
    rows.append(_row("prefill", f"ttft {p['input_len']} tokens", "ms", p.get("estimate_ms"), p["ttft_ms"]))
    verdicts = (("capacity", _word(v["capacity_confirmed"], "confirmed", "not confirmed"), v["capacity_reason"]),
                ("budget", _word(v["budget_within"], "within", "not within"), v["budget_reason"]),
                ("decode", _word(v["decode_within"], "within", "not within"), v["decode_reason"]))
    rows += [_row("verdict", name, "", None, None, None, f"{word}: {reason}") for name, word, reason in verdicts]
    return rows
