"""The data behind `kvplan estimate --chart` and `--format html`: for each (KV dtype, TP degree) of an
estimate, the requests the KV cache holds and the predicted inter-token latency with all of them running, at
max lengths from 1K doubling up to the longest asked for, computed by the same planner as the table."""

from __future__ import annotations

from dataclasses import dataclass


SMALLEST = 1024


@dataclass(frozen=True)
class CurvePoint:
    context: int
    max_concurrency: int
    itl_ms_at_max: float | None  # predicted ms per output token with every resident request decoding
    # the field at fault where the engine refuses this configuration whatever the memory (context: a length past
    # the model's own), '' where it starts or runs out of memory; in the JSON only when set
    refused: str = ""


@dataclass(frozen=True)
class Curve:
    kv_dtype: str
    tp: int
    points: tuple

    def to_dict(self) -> dict:
        return {"kv_dtype": self.kv_dtype, "tp": self.tp,
                "points": [{"context": p.context, "max_concurrency": p.max_concurrency,
                            "itl_ms_at_max": p.itl_ms_at_max, **({"refused": p.refused} if p.refused else {})}
                           for p in self.points]}


def curve_contexts(longest: int, asked: list) -> list:
    lengths, n = set(asked) | {longest}, min(SMALLEST, longest)
    while n < longest:
        lengths.add(n)
        n *= 2
    return sorted(lengths)


def curves(plans: list, plan_at) -> tuple:
    """One Curve per distinct (kv_dtype, tp, cache kept) of `plans`' sweep; `plan_at(context, kv_dtype, tp,
    suggest, ttft)` is the estimate's own planner, so every point is what the table would say at that length; the
    points time no prompt (ttft False): a curve is decode, and an asked --input-len may exceed its shorter lengths."""
    asked = sorted({p.context for p in plans})
    contexts = curve_contexts(max(asked), asked)
    out = []
    # one curve per precision, TP and cache the engine keeps (fp8 and fp8_e4m3 are two caches for sparse MLA)
    first = {}
    for p in plans:
        if p.tp_valid:
            first.setdefault((p.kv_dtype, p.tp, getattr(p.engine, "kv_cache_dtype", None)), p.asked_kv_dtype)
    keys = [(spelled, kv_dtype, tp) for (kv_dtype, tp, _), spelled in first.items()]
    for spelled, kv_dtype, tp in keys:
        points = []
        for context in contexts:
            p = plan_at(context, spelled, tp, suggest=False, ttft=False)
            point = p.decode.at(p.max_concurrency) if p.decode and p.fits else None
            refusal = getattr(p.engine, "refusal", None)
            refused = refusal.field or "configuration" if getattr(refusal, "configuration", False) else ""
            points.append(CurvePoint(context, max(p.max_concurrency or 0, 0), point.itl_ms if point else None,
                                     refused))
        # two spellings of one precision (fp8, fp8_e4m3) may be two caches (sparse MLA): name them apart
        twins = sum(1 for _, name, t in keys if (name, t) == (kv_dtype, tp)) > 1
        out.append(Curve(f"{kv_dtype} ({spelled})" if twins else kv_dtype, tp, tuple(points)))
    return tuple(out)
