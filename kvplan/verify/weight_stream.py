"""The weight stream of a verify run shape by shape, from its recorded matmul timings (gpu/gemm.py choose_forms:
every layer's weight of one shape multiplied in one CUDA graph, the chosen form timed again): each shape's share of
the measured read bandwidth at each skinny batch, and what its launches spend beyond reading their bytes at that
bandwidth. Issue 13 holds the stream to >= 90% of read at batch 1-8; the shapes below it are named with their size,
since a launch's fixed start and drain weigh against a weight read in a few microseconds (no torch here)."""

from __future__ import annotations

from typing import Optional

BAR = 0.90  # the stream's bar: a fraction of the measured read bandwidth
BYTES_PER_ELEMENT = {"16-bit": 2}  # any 8-bit kind (e4m3, block-scaled e4m3: its scales are ~1/4096 of it) 1


def weight_bytes(row: dict) -> int:
    """Bytes of one weight of a shape row (its block scales left out)."""
    rows, cols = row["shape"]
    return rows * cols * BYTES_PER_ELEMENT.get(row["kind"], 1)


def by_shape(r: dict) -> list:
    """[{shape, kind, layers, mb, batches: {batch: {fraction, extra_us}}}] in the order the run timed them: per
    batch the chosen form's bandwidth as a fraction of the measured read, and the microseconds a launch takes over
    reading its weight at the read bandwidth."""
    read = r["gpu"].get("bandwidth_read_bytes_per_s")
    shapes: dict = {}
    for row in r["gemm"]["shapes"]:
        rate = row.get("chosen, timed again TB/s")
        if rate is None or not read or "kind" not in row:  # older results name no kind: not split
            continue
        nbytes = weight_bytes(row)
        key = (tuple(row["shape"]), row["kind"])
        entry = shapes.setdefault(key, {"shape": row["shape"], "kind": row["kind"], "layers": row["layers"],
                                        "bytes": nbytes, "batches": {}, "refused": refusals(r, row["shape"])})
        seconds = nbytes / (rate * 1e12)
        entry["batches"][row["batch"]] = {"fraction": rate * 1e12 / read,
                                          "extra_us": (seconds - nbytes / read) * 1e6}
    return list(shapes.values())


def refusals(r: dict, shape: list) -> dict:
    """{form: reason} of the bundled kernels' forms that refused `shape` (gpu/gemm.py forms_refused; results
    recorded before session 63 carry only the skinny kernel's and the in-order GEMV's)."""
    g, name = r["gemm"], f"{shape[0]}x{shape[1]}"
    recorded = g.get("forms_refused") or {"kvplan skinny kernel": g.get("skinny_refused") or {},
                                          "kvplan streaming GEMV": g.get("stream_refused") or {}}
    return {form: where[name] for form, where in recorded.items() if name in where}


def under_bar(shapes: list) -> list:
    """The shapes below BAR at some batch, with their worst fraction (the figure the reader checks)."""
    return [s for s in shapes if min(b["fraction"] for b in s["batches"].values()) < BAR]


def share_of_time(shapes: list, batch: int) -> Optional[float]:
    """The fraction of the stream's time at `batch` spent in the shapes under BAR (all layers of each)."""
    def seconds(s: dict) -> float:
        b = s["batches"].get(batch)
        return 0.0 if b is None else s["layers"] * s["bytes"] / b["fraction"]

    total = sum(seconds(s) for s in shapes)
    return sum(seconds(s) for s in under_bar(shapes)) / total if total else None
