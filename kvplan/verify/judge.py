"""Verdicts of `kvplan verify`:

- capacity: the KV pools sized from the measured budget are allocated within ALLOCATION_TOLERANCE of their
  layout in torch's and NVML's view, and the block allocator admits exactly the sequences they hold and
  refuses one more;
- budget: the plan's max concurrency is within BUDGET_TOLERANCE (or one sequence) of the concurrency the
  measured budget holds (where max_num_seqs caps both, the sequences each keeps resident before the cap:
  budget_counts); when it is not, the term furthest from its prediction is named. The engine's concurrency
  on the measured budget may not exceed what the ideal pool admits on it (more than BUDGET_TOLERANCE or one
  sequence): an engine cannot hold more than every block a sequence can use, so that would mean the engine model
  under-counts a request's blocks (it did for Llama 4's chunked layers: 134 against 34, session 37);
- decode: the measured decode step is within DECODE_TOLERANCE of the plan's calibrated engine estimate at
  batch 1 and at max concurrency. A plan that carries no calibrated estimate is not judged (the roofline is
  shown, but a forward pass is never expected to run at the roofline), nor is a step in which some layer kind ran
  a torch stand-in (a label carrying STAND_IN): its time says what torch takes, not what an engine's kernels do;
  nor a step timed eagerly (--enforce-eager): the calibrated estimate is a CUDA graph's. A miss names the estimate
  term furthest from the same term of the measured step (verify/decode_terms.py), its two figures and why.

Why 15%: the calibrated estimate already carries the per-layer fixed cost and the compute term the roofline
leaves out, so what remains is run-to-run and GPU-to-GPU spread; a larger miss would mislead sizing.
Why 3% on concurrency: the budget terms are a few GiB against a budget of tens, so each term within ~10%
keeps concurrency within 3%; a larger miss means a term is wrongly modelled."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Optional

from .allocator import Boundary
from .decode_terms import responsible_line, step_terms

ALLOCATION_TOLERANCE = 0.005  # allocated bytes vs the layout, in torch's view and in NVML's
BUDGET_TOLERANCE = 0.03  # planned vs measured max concurrency
DECODE_TOLERANCE = 0.15  # measured decode step vs the calibrated estimate
STAND_IN = "NOT a CUDA kernel"  # what a forward label says of a layer part that ran torch in place of a kernel


def stand_ins(labels: dict) -> list:
    """The layer parts whose label says they ran a torch stand-in, in label order."""
    return [part for part, label in labels.items() if STAND_IN in str(label)]


def stand_in_graphs_note(parts: list, responsible) -> list:
    """A note where the decode graphs, grown past their prediction, captured torch stand-ins: what they allocate is
    theirs, not an engine's (Kimi-Linear on an H200, session 50: 5.40 GiB of graphs against 1.25 predicted, its KDA
    step in float32 torch, and the budget verdict 300 vs 264 sequences)."""
    if not parts or responsible is None or responsible["term"] != "cuda_graphs" \
            or not (responsible["difference_bytes"] or 0) > 0:
        return []
    return [f"cuda_graphs: the captured decode graphs hold what the torch stand-ins ({', '.join(parts)}) allocate, "
            f"which an engine's fused kernels do not: the measured graph memory, and the budget verdict it moves, "
            f"are the stand-ins'"]


def relative_error(measured: float, predicted: float) -> float:
    if not predicted:
        return math.inf if measured else 0.0
    return (measured - predicted) / predicted


@dataclass(frozen=True)
class Verdict:
    capacity_confirmed: bool
    capacity_reason: str
    budget_within: bool
    budget_reason: str
    decode_within: Optional[bool]  # None: not judged (no calibrated estimate)
    decode_reason: str
    tolerance_allocation: float = ALLOCATION_TOLERANCE
    tolerance_budget: float = BUDGET_TOLERANCE
    tolerance_decode: float = DECODE_TOLERANCE
    notes: tuple = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.capacity_confirmed and self.budget_within and self.decode_within is not False


def pool_bytes_in_nvml_view(nvml_growth: int, torch_growth: int, reserved_growth: int) -> int:
    """The device memory the KV pools take as NVML counts it: its used-memory growth over their allocation, plus
    the part torch's caching allocator placed in memory it had reserved before (free parts of segments that
    empty_cache cannot hand back while live tensors share them; NVML counted those bytes as used already):
    torch_growth - reserved_growth. DeepSeek-V3 at tp 8 (H200, session 41): NVML grew 48,131,735,552 bytes, exactly
    torch's reserved growth, while the pools took 49,762,635,776 (+0.04% over the layout): 1.63 GB came from torch's
    cache, which read as NVML -3.2% in sessions 40-41. A driver that used more than torch reserved (granularity, page
    tables) still shows as NVML growth above reserved growth."""
    return nvml_growth + max(0, torch_growth - reserved_growth)


def capacity_errors(predicted_bytes: int, torch_bytes: int, nvml_bytes: int, rounding_bytes: int = 0,
                    torch_rounding_bytes: int = 0) -> dict:
    """torch's view (bytes in tensors) against the predicted pools plus the segment tails the caching allocator leaves
    in their blocks (Layout.torch_rounding_bytes); NVML's (device memory) against them plus what its rounding adds
    (Layout.rounding_bytes)."""
    return {"torch": relative_error(torch_bytes, predicted_bytes + torch_rounding_bytes),
            "NVML": relative_error(nvml_bytes, predicted_bytes + rounding_bytes)}


def judge_capacity(predicted_bytes: int, torch_bytes: int, nvml_bytes: int, boundary: Boundary,
                   rounding_bytes: int = 0, torch_rounding_bytes: int = 0) -> tuple:
    errors = capacity_errors(predicted_bytes, torch_bytes, nvml_bytes, rounding_bytes, torch_rounding_bytes)
    off = [f"{view} {err:+.3%}" for view, err in errors.items() if abs(err) > ALLOCATION_TOLERANCE]
    views = ", ".join(f"{view} {err:+.3%}" for view, err in errors.items())
    if off:
        return False, f"allocation off by more than {ALLOCATION_TOLERANCE:.1%}: {', '.join(off)}"
    if not boundary.confirmed:
        return False, f"allocation within {ALLOCATION_TOLERANCE:.1%} ({views}), but {boundary.reason}"
    return True, (f"allocation within {ALLOCATION_TOLERANCE:.1%} ({views}); {boundary.max_concurrency} sequences of "
                  f"{boundary.context:,} tokens admitted, one more refused")


def budget_counts(plan, engine_view) -> tuple:
    """(planned, measured, what they count) for the budget verdict: the plans' max concurrency, or, where max_num_seqs
    caps both, the sequences each budget keeps resident before the cap (EngineFigures.resident_sequences). Capped
    figures agree whatever the budget terms are: an attention-free model's state pool (one block a request) holds
    thousands of sequences at vLLM's defaults, against a cap of 1,024 (Falcon-Mamba-7B: 3,072 on an 80 GB GPU)."""
    capped = plan.max_concurrency_limited_by == engine_view.max_concurrency_limited_by == "max_num_seqs"
    if capped and plan.engine is not None and engine_view.engine is not None \
            and plan.engine.resident_sequences is not None and engine_view.engine.resident_sequences is not None:
        what = (f"resident sequences (before the max_num_seqs cap of {plan.engine.max_num_seqs:,} that both plans' "
                f"max concurrency meet)")
        return plan.engine.resident_sequences, engine_view.engine.resident_sequences, what
    return plan.max_concurrency, engine_view.max_concurrency, "max concurrency"


def judge_budget(planned: int, measured: int, responsible: Optional[dict], ideal: Optional[int] = None,
                 what: str = "max concurrency") -> tuple:
    """`measured`: the engine's concurrency on the measured budget; `ideal`: what the ideal pool admitted on it;
    `what`: what the two count (budget_counts)."""
    slack = max(1, math.floor(BUDGET_TOLERANCE * measured))
    within = abs(planned - measured) <= slack
    head = (f"planned {what} {planned:,} vs {measured:,} on the measured budget "
            f"({relative_error(planned, measured):+.1%}; tolerance {BUDGET_TOLERANCE:.0%} or one sequence)")
    if ideal is not None and measured - ideal > max(1, math.floor(BUDGET_TOLERANCE * ideal)):
        return False, (head + f"; but the engine's {measured:,} exceed the {ideal:,} the ideal pool admits on the "
                              f"same budget: the engine model under-counts a request's blocks")
    if responsible is not None and responsible["difference_bytes"]:
        d = responsible["difference_bytes"]
        head += (f"; furthest term: {responsible['term']} measured {d / 2**30:+.2f} GiB vs predicted"
                 + (f" ({responsible['error']:+.0%})" if responsible["error"] is not None else ""))
    return within, head


def judge_decode(points: list, torch_parts: tuple = ()) -> tuple:
    """points: [{'batch', 'measured_ms', 'estimate_ms' (None when the plan has none), 'roofline_ms',
    'estimate_terms' (optional: verify/terms.py decode_prediction's, to name the term a miss disputes), 'terms'
    (optional: the step term by term, verify/decode_terms.py step_terms; worked out from estimate_terms at the
    planner's bandwidth where absent)}]; torch_parts: the layer parts that ran a torch stand-in (stand_ins of the
    forward's labels). A miss names, once after the batches, the term furthest from its estimate at each batch
    outside the tolerance, its two figures and why (decode_terms.responsible_line)."""
    if not points:
        return False, "decode was not measured"
    steps = "; ".join(f"batch {p['batch']}: {p['measured_ms']:.3f} ms" + (
        f" (estimate {p['estimate_ms']:.3f} ms)" if p.get("estimate_ms") is not None else "") for p in points)
    if torch_parts:
        return None, (f"not judged: {', '.join(torch_parts)} ran a torch stand-in, not a CUDA kernel, so the step "
                      f"times torch rather than an engine; {steps}")
    if all(p.get("eager") for p in points):
        return None, (f"not judged: the step ran eagerly, as vLLM runs it with --enforce-eager or cudagraph_mode "
                      f"NONE, and the planner's calibrated estimate assumes CUDA graphs; {steps}")
    parts, within, judged, missed = [], True, True, []
    derived = step_terms(points)
    for p in points:
        if p.get("estimate_ms") is None:
            judged = False
            parts.append(f"batch {p['batch']}: {p['measured_ms']:.3f} ms; no calibrated estimate; roofline "
                         f"{p['roofline_ms']:.3f} ms ({relative_error(p['measured_ms'], p['roofline_ms']):+.0%})")
            continue
        err = relative_error(p["measured_ms"], p["estimate_ms"])
        within &= abs(err) <= DECODE_TOLERANCE
        parts.append(f"batch {p['batch']}: {p['measured_ms']:.3f} ms vs estimate {p['estimate_ms']:.3f} ms "
                     f"({err:+.1%})")
        rows = p.get("terms") or derived.get(p["batch"])
        if abs(err) > DECODE_TOLERANCE and rows:
            missed.append((p["batch"], rows))
    if not judged:
        return None, "the plan carries no calibrated decode estimate; " + "; ".join(parts)
    head = "within" if within else "not within"
    return within, (f"{head} {DECODE_TOLERANCE:.0%} of the calibrated estimate: " + "; ".join(parts)
                    + ("; " + responsible_line(missed) if missed else ""))


def judge(capacity: tuple, budget: tuple, decode: tuple, notes: tuple = ()) -> Verdict:
    return Verdict(capacity[0], capacity[1], budget[0], budget[1], decode[0], decode[1], notes=tuple(notes))


def verdict_dict(verdict: Verdict) -> dict:
    data = asdict(verdict)
    data["notes"] = list(verdict.notes)
    data["ok"] = verdict.ok
    return data
