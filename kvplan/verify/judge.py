"""Verdicts of `kvplan verify`: capacity is confirmed when the allocation is within ALLOCATION_TOLERANCE of the
prediction in torch's and NVML's view and the boundary holds; decode is within DECODE_TOLERANCE of the
planner's roofline.

Why DECODE_TOLERANCE is 30%: the planner divides bytes by the achievable bandwidth (datasheet x 0.89, what
a plain copy reaches on H100 and H200), and decode kernels and skinny weight GEMMs reach 85-95% of that,
with a few microseconds of launch per layer on top, so a faithful plan lands 5-25% slower than its
roofline. 30% allows that with some margin, and a planner wrong by more would mislead the sizing that
`estimate` is used for. Measuring faster than predicted by more than 30% fails too: it would mean the
planner counts bytes that decode does not read."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .allocator import Boundary

ALLOCATION_TOLERANCE = 0.005  # predicted vs allocated bytes, in torch's view and in NVML's
DECODE_TOLERANCE = 0.30  # measured decode step vs the planner's roofline (see the module docstring)


def relative_error(measured: float, predicted: float) -> float:
    if not predicted:
        return math.inf if measured else 0.0
    return (measured - predicted) / predicted


def allocation_agrees(predicted: int, allocated: int) -> bool:
    return abs(relative_error(allocated, predicted)) <= ALLOCATION_TOLERANCE


def decode_agrees(measured_ms: float, predicted_ms: float) -> bool:
    return abs(relative_error(measured_ms, predicted_ms)) <= DECODE_TOLERANCE


@dataclass(frozen=True)
class Verdict:
    capacity_confirmed: bool
    capacity_reason: str
    decode_within: bool
    decode_reason: str
    tolerance_allocation: float = ALLOCATION_TOLERANCE
    tolerance_decode: float = DECODE_TOLERANCE
    notes: tuple = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.capacity_confirmed and self.decode_within


def judge(predicted_bytes: int, torch_bytes: int, nvml_bytes: int, boundary: Boundary, decode_points: list,
          notes: tuple = ()) -> Verdict:
    """decode_points: [{'batch', 'measured_ms', 'predicted_ms'}, optionally 'predicted_copy_bw_ms'] for the
    whole decode step (weights + attention) at the batches the verdict covers (verify uses batch 1 and
    max_concurrency). The verdict is against predicted_ms, the planner's own roofline; the copy-bandwidth
    figure is shown beside it, to tell datasheet optimism from everything else."""
    errors = {"torch": relative_error(torch_bytes, predicted_bytes), "NVML": relative_error(nvml_bytes, predicted_bytes)}
    off = [f"{view} {err:+.3%}" for view, err in errors.items() if abs(err) > ALLOCATION_TOLERANCE]
    views = ", ".join(f"{view} {err:+.3%}" for view, err in errors.items())
    if off:
        capacity, why = False, f"allocation off by more than {ALLOCATION_TOLERANCE:.1%}: {', '.join(off)}"
    elif not boundary.confirmed:
        capacity, why = False, f"allocation within {ALLOCATION_TOLERANCE:.1%} ({views}), but {boundary.reason}"
    else:
        capacity, why = True, (f"allocation within {ALLOCATION_TOLERANCE:.1%} ({views}); {boundary.max_concurrency} "
                               f"sequences of {boundary.context:,} tokens admitted, one more refused")
    if not decode_points:
        return Verdict(capacity, why, False, "decode was not measured", notes=tuple(notes))
    parts, within = [], True
    for point in decode_points:
        ok = decode_agrees(point["measured_ms"], point["predicted_ms"])
        within &= ok
        also = ""
        if point.get("predicted_copy_bw_ms"):
            also = f"; {relative_error(point['measured_ms'], point['predicted_copy_bw_ms']):+.1%} at the measured copy bandwidth"
        parts.append(f"batch {point['batch']}: {point['measured_ms']:.3f} ms vs {point['predicted_ms']:.3f} ms "
                     f"({relative_error(point['measured_ms'], point['predicted_ms']):+.1%}{also})")
    head = "within" if within else "not within"
    return Verdict(capacity, why, within, f"{head} {DECODE_TOLERANCE:.0%} of the planner's roofline: "
                   + "; ".join(parts), notes=tuple(notes))


def verdict_dict(verdict: Verdict) -> dict:
    data = asdict(verdict)
    data["notes"] = list(verdict.notes)
    data["ok"] = verdict.ok
    return data
