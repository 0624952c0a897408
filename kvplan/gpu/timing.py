"""Timing on the GPU: CUDA events around eager launches or CUDA-graph replays, medians, never host clocks."""

from __future__ import annotations

import statistics

GiB = 2**30
DEVICE = "cuda"  # torch's current CUDA device
COPY_BYTES = 2 * GiB  # each of the two copy buffers
TIME_PER_MEASUREMENT_S = 0.25


def time_step(torch, step, *, graph: bool, budget_s: float = TIME_PER_MEASUREMENT_S, min_reps: int = 5,
              max_reps: int = 100) -> dict:
    """Median milliseconds of `step` (one decode step) after a warm-up. With graph=True the step is captured
    once in a CUDA graph and its replays are timed (no launch gaps); CUDA events around each replay or
    each eager call; never host clocks."""
    step()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    step()
    end.record()
    end.synchronize()
    estimate_ms = max(start.elapsed_time(end), 1e-3)
    run, method, cuda_graph = step, "CUDA events around eager launches", None
    if graph:
        try:
            cuda_graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(cuda_graph):
                step()
            cuda_graph.replay()
            torch.cuda.synchronize()
            run, method = cuda_graph.replay, "CUDA graph replay, CUDA events"
        except Exception as exc:  # a step that syncs cannot be captured: time it eagerly, and say so
            cuda_graph = None
            torch.cuda.synchronize()
            first = (str(exc).splitlines() or [""])[0][:120]
            method += f" (graph capture failed: {type(exc).__name__}: {first})"
    reps = int(min(max_reps, max(min_reps, budget_s * 1e3 / estimate_ms)))
    times = []
    try:
        for _ in range(reps):
            start.record()
            run()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    finally:
        del run, cuda_graph
    return {"ms": statistics.median(times), "ms_min": min(times), "reps": reps, "method": method}


def copy_bandwidth(torch, nbytes: int = COPY_BYTES, reps: int = 50) -> dict:
    """Device-to-device copy bandwidth, counting bytes read plus bytes written; median of `reps`."""
    src = torch.empty(nbytes, dtype=torch.uint8, device=DEVICE)
    src.random_(0, 256)
    dst = torch.empty_like(src)
    try:
        for _ in range(5):
            dst.copy_(src)
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        times = []
        for _ in range(reps):
            start.record()
            dst.copy_(src)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        median = statistics.median(times)
        return {"bytes_per_s": 2 * nbytes / median, "buffer_bytes": nbytes, "reps": reps,
                "method": "device-to-device copy, bytes read + written, CUDA events, median"}
    finally:
        del src, dst
