"""Bandwidth probes: the floors decode attention is measured against.

Decode attention only reads the cache, so its floor is the device's read bandwidth, not the copy figure
(a device-to-device copy counts bytes read plus bytes written and runs a few percent slower).

    from kvplan.kernels.probes import read_bandwidth, copy_bandwidth, paged_read_bandwidth, paged_walk_bandwidth
    read_bandwidth().bytes_per_s, read_bandwidth().method
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

DEFAULT_BYTES = 4 << 30  # >> any L2 (60 MB on H200)


@dataclass(frozen=True)
class Bandwidth:
    bytes_per_s: float
    method: str
    nbytes: int

    def to_dict(self) -> dict:
        return {"bytes_per_s": self.bytes_per_s, "method": self.method, "nbytes": self.nbytes}


def _fit(torch, nbytes: int, device) -> int:
    free = torch.cuda.mem_get_info(device)[0]
    n = min(int(nbytes), free // 3)
    return max(1 << 20, n // 4096 * 4096)


def _time(torch, fn, reps: int, inner: int) -> float:
    """Median seconds of one ``fn`` call: CUDA events around ``inner`` back-to-back calls, ``reps`` times."""
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(inner):
            fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) * 1e-3 / inner)
    return statistics.median(ts)


def copy_bandwidth(nbytes: int = DEFAULT_BYTES, device=None, reps: int = 15) -> Bandwidth:
    """Device-to-device copy (torch ``copy_``), counting bytes read plus bytes written; median of ``reps``."""
    import torch

    dev = torch.device("cuda", torch.cuda.current_device() if device is None else device)
    half = _fit(torch, nbytes, dev) // 2
    x = torch.empty(half // 2, dtype=torch.bfloat16, device=dev).normal_()
    y = torch.empty_like(x)
    t = _time(torch, lambda: y.copy_(x), reps, 3)
    n = 2 * x.numel() * 2
    del x, y
    return Bandwidth(n / t, f"torch copy_ of {half / 2**30:.2f} GiB (read + write counted), median of {reps}", n)


def read_bandwidth(nbytes: int = DEFAULT_BYTES, device=None, reps: int = 15) -> Bandwidth:
    """Read-only stream over a buffer >> L2: the faster of kvplan's NVRTC read kernel (16-byte loads,
    result folded, nothing stored) and ``torch.sum``; bytes read / median time."""
    import torch

    from . import _runtime as rt
    from .configs import ReadProbeConfig

    idx = torch.cuda.current_device() if device is None else rt.device_index(device)
    dev = torch.device("cuda", idx)
    n = _fit(torch, nbytes, dev)
    buf = torch.empty(n // 2, dtype=torch.bfloat16, device=dev).normal_()
    best, how = 0.0, ""
    t_sum = _time(torch, lambda: buf.sum(dtype=torch.float32), reps, 3)
    best, how = n / t_sum, f"torch.sum over {n / 2**30:.2f} GiB"
    if rt.kernel_unavailable_reason() is None:
        d = rt.device_info(idx)
        ld = rt.load(ReadProbeConfig(), d)
        sink = torch.zeros(4, dtype=torch.int32, device=dev)
        launch = rt.PreparedLaunch(ld, "kvp_read_probe", ("u64", "u64", "u64"), 512, 0, False, "driver")
        launch.args[0].value, launch.args[1].value, launch.args[2].value = buf.data_ptr(), n // 16, sink.data_ptr()
        grid = (d.sm_count * 4, 1, 1)
        with torch.cuda.device(idx):
            t_k = _time(torch, lambda: launch.launch(grid, rt.current_stream_handle(torch, idx)), reps, 3)
        if n / t_k > best:
            best, how = n / t_k, f"kvplan read kernel (16-byte loads) over {n / 2**30:.2f} GiB"
        how += f"; torch.sum {n / t_sum / 1e12:.3f} TB/s, read kernel {n / t_k / 1e12:.3f} TB/s"
    del buf
    return Bandwidth(best, how + f", median of {reps}", n)


def _page_kernel(torch, page_bytes: int, device):
    """(device index, torch device, loaded read-probe module, device info) for the page probes; their checks."""
    from . import _runtime as rt
    from .configs import ReadProbeConfig

    reason = rt.kernel_unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    if page_bytes <= 0 or page_bytes % 16:
        raise ValueError(f"page_bytes must be a positive multiple of 16, got {page_bytes}")
    idx = torch.cuda.current_device() if device is None else rt.device_index(device)
    d = rt.device_info(idx)
    return idx, torch.device("cuda", idx), rt.load(ReadProbeConfig(), d), d


def _page_order(torch, pages: int, shuffled: bool, seed: int, dev):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randperm(pages, generator=gen) if shuffled else torch.arange(pages)).to(torch.int32).to(dev)


def paged_read_bandwidth(page_bytes: int, shuffled: bool = True, nbytes: int = DEFAULT_BYTES, device=None,
                         reps: int = 15, seed: int = 0) -> Bandwidth:
    """The read kernel over the buffer cut into pages of ``page_bytes`` (a paged cache block of one K or V tensor),
    taken in a random order (``shuffled``) or in address order: what scattered blocks cost a pure read. Needs
    NVRTC (no torch fallback: torch has no read-only gather)."""
    import torch

    from . import _runtime as rt

    idx, dev, ld, d = _page_kernel(torch, page_bytes, device)
    n = _fit(torch, nbytes, dev) // page_bytes * page_bytes
    pages = n // page_bytes
    buf = torch.empty(n // 2, dtype=torch.bfloat16, device=dev).normal_()
    order = _page_order(torch, pages, shuffled, seed, dev)
    sink = torch.zeros(4, dtype=torch.int32, device=dev)
    launch = rt.PreparedLaunch(ld, "kvp_read_pages", ("u64", "u64", "i32", "i32", "u64"), 256, 0, False, "driver")
    for arg, value in zip(launch.args, (buf.data_ptr(), order.data_ptr(), pages, page_bytes // 16, sink.data_ptr())):
        arg.value = value
    grid = (d.sm_count * 8, 1, 1)
    with torch.cuda.device(idx):
        t = _time(torch, lambda: launch.launch(grid, rt.current_stream_handle(torch, idx)), reps, 3)
    del buf, order
    how = "shuffled" if shuffled else "in address order"
    return Bandwidth(n / t, f"kvplan page-read kernel, {pages:,} pages of {page_bytes:,} bytes {how} over "
                            f"{n / 2**30:.2f} GiB, median of {reps}", n)


def paged_walk_bandwidth(page_bytes: int, walkers: int, chunk: int | None = None, stages: int = 3,
                         shuffled: bool = True, nbytes: int = DEFAULT_BYTES, device=None, reps: int = 15,
                         seed: int = 0, warps: int = 1, spin: int = 0) -> Bandwidth:
    """The decode kernel's copy pattern and ring protocol without its arithmetic (sm_90: bulk copies; read_probe.cu
    kvp_walk_bulk): two buffers (K and V caches) of pages; ``walkers`` CTAs of ``warps`` warps each bring their own
    run of the page list through a ring of ``stages`` shared-memory stages, page p of both buffers per stage, in bulk
    copies of ``chunk`` bytes (a token's row; None: the whole page) that the warps split, each step's "compute" a spin
    of ``spin`` SM cycles. With the list shuffled or in address order: what a paged walk costs the memory system, and
    what the kernel's copy size and ring protocol add."""
    import torch

    from . import _runtime as rt

    chunk = page_bytes if chunk is None else chunk
    if walkers < 1:
        raise ValueError(f"walkers must be >= 1, got {walkers}")
    if not 1 <= warps <= 8 or spin < 0:
        raise ValueError(f"warps must be 1..8 and spin >= 0, got {warps} and {spin}")
    if chunk <= 0 or chunk % 16 or page_bytes % chunk:
        raise ValueError(f"chunk must be a multiple of 16 dividing page_bytes {page_bytes}, got {chunk}")
    idx, dev, ld, d = _page_kernel(torch, page_bytes, device)
    if d.arch != "sm_90":
        raise RuntimeError(f"the page-walk probe needs Hopper bulk copies (sm_90), this GPU is {d.arch}")
    smem = 1024 + stages * 2 * page_bytes
    if not 2 <= stages <= 8 or smem > d.smem_optin:
        raise ValueError(f"stages must be 2..8 and fit shared memory: {stages} stages of two {page_bytes}-byte "
                         f"pages need {smem} bytes, the device has {d.smem_optin}")
    half = _fit(torch, nbytes, dev) // 2 // page_bytes * page_bytes
    pages = half // page_bytes
    per = pages // walkers
    if per < 1:
        raise ValueError(f"{walkers} walkers need at least {walkers} pages of {page_bytes} bytes in {half} bytes")
    k = torch.empty(half // 2, dtype=torch.bfloat16, device=dev).normal_()
    v = torch.empty_like(k).normal_()
    order = _page_order(torch, pages, shuffled, seed, dev)
    sink = torch.zeros(4, dtype=torch.int32, device=dev)
    launch = rt.PreparedLaunch(ld, "kvp_walk_bulk", ("u64", "u64", "u64", "i32", "i32", "i32", "i32", "i32", "u64"),
                               32 * warps, smem, False, "driver")
    values = (k.data_ptr(), v.data_ptr(), order.data_ptr(), per, page_bytes, chunk, stages, spin, sink.data_ptr())
    for arg, value in zip(launch.args, values):
        arg.value = value
    with torch.cuda.device(idx):
        t = _time(torch, lambda: launch.launch((walkers, 1, 1), rt.current_stream_handle(torch, idx)), reps, 3)
    n = 2 * walkers * per * page_bytes
    del k, v, order
    how = "shuffled" if shuffled else "in address order"
    return Bandwidth(n / t, f"kvplan page-walk kernel, {walkers} CTAs x {per:,} pages of {page_bytes:,} bytes in two "
                            f"buffers, {how}, bulk copies of {chunk:,} bytes by {warps} warp(s), {stages} stages, "
                            f"{spin} cycles a step, {n / 2**30:.2f} GiB read, median of {reps}", n)
