"""Timing on the GPU: CUDA graphs captured after a warm-up on a side stream, CUDA events around each replay,
medians; never host clocks around GPU work. And the read-bandwidth floor decode is held to."""

from __future__ import annotations

import statistics

import torch

GiB = 2**30
READ_BYTES = 4 * GiB  # read probe buffer: far larger than any L2


_SIDE: dict = {}  # device index -> the one side stream warm-ups run on


def side_stream():
    """The side stream warm-ups run on, one a device. A new torch.cuda.Stream() each time cycles through torch's
    pool of 32 streams, and cuBLAS keeps a 32 MiB workspace for every stream it has run on: verify's measured graph
    memory took 640 MiB of such workspaces whenever the stream count before it shifted (H200, session 44,
    benchmarks/probes/graph_pool_snapshot.py)."""
    device = torch.cuda.current_device()
    if device not in _SIDE:
        _SIDE[device] = torch.cuda.Stream()
    return _SIDE[device]


def warm_up(fn) -> None:
    """Run fn once on a side stream (as graph capture wants: lazy cuBLAS/kernel set-up happens outside it)."""
    side = side_stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()


def capture(fn, pool=None, warm: bool = True) -> tuple:
    """(CUDA graph, fn's outputs as captured) after one warm-up run."""
    if warm:
        warm_up(fn)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        out = fn()
    return graph, out


def time_replays(run, reps: int = 20, warmup: int = 2) -> dict:
    """Median and minimum milliseconds of `run` (a graph's replay, or any launch sequence), CUDA events around
    each call."""
    for _ in range(warmup):
        run()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        start.record()
        run()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return {"ms": statistics.median(times), "ms_min": min(times), "reps": reps}


def read_bandwidth(nbytes: int = READ_BYTES) -> dict:
    """Bytes per second a pure read streams: the kernel package's probe where it exists, else torch.sum over a
    buffer far larger than L2, replayed in a CUDA graph (kernel.md: the floor decode is held to is a read)."""
    try:
        from ..kernels.probes import read_bandwidth as probe  # the kernel helper's probe, when merged
    except ImportError:
        probe = None
    if probe is not None:
        result = probe(nbytes)
        data = result.to_dict() if hasattr(result, "to_dict") else dict(result)
        data.setdefault("method", "kvplan.kernels.probes.read_bandwidth")
        return data
    buffer = torch.empty(nbytes // 2, dtype=torch.bfloat16, device="cuda")
    buffer.normal_()
    try:
        graph, _ = capture(lambda: buffer.sum(dtype=torch.float32))
        t = time_replays(graph.replay, reps=15)
        del graph
    finally:
        del buffer
        torch.cuda.empty_cache()
    return {"bytes_per_s": nbytes / (t["ms"] / 1e3), "buffer_bytes": nbytes, "reps": t["reps"],
            "method": "torch.sum over a bf16 buffer, CUDA graph replays, CUDA events, median"}
