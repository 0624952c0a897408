"""Host side of the paged decode kernel: validation, split planning, NVRTC compile, launch."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import math
import os
import threading
from dataclasses import dataclass

from . import build
from ._checks import DecodeArgs, check_table, validate

LOG2E = 1.4426950408889634
_IN_FLIGHT_BYTES = 16384  # target bytes in flight per token slice (beyond the step being computed)
_MIN_SPLIT_TOKENS = 256
_KV_PER_CTA = 1  # default KH when the group fits one warp (tuned on H100, see benchmarks/NOTES_kernel.md)
# Hopper bulk-copy variant (KVP_BULK): the default on sm_90 for 16-bit caches (measured 7-9% faster, NOTES_kernel.md);
# KVPLAN_DECODE_BULK=0/1 overrides the default, _variant={"bulk": 0|1} overrides both (tuning, tests)
_BULK_DEFAULT = True
_BULK_BAR_BYTES = 1024  # mbarrier area at the front of shared memory (paged_decode.cu BARB)
# split merge fused into the last CTA of each (sequence, kv head) (atomic counter; no second launch);
# _fuse_merge=True/False overrides per call (tuning, tests)
_FUSE_MERGE_DEFAULT = False
# programmatic dependent launch on sm_90 (griddepcontrol in paged_decode.cu): each grid may be
# scheduled while the kernel before it drains; KVPLAN_DECODE_PDL=0/1 and _pdl=False/True override
_PDL_DEFAULT = True
PDL_ARCHS = ("sm_90",)


class KernelUnavailableError(RuntimeError):
    """The CUDA kernel cannot run here (no CUDA device, no cuda.core/NVRTC, no CUDA headers).

    ``str(err)`` is the reason; callers may fall back to ``reference_paged_decode_attention``.
    """


_lock = threading.RLock()
_reason: list = []  # cached kernel_unavailable_reason() result


def kernel_unavailable_reason() -> str | None:
    """None when the NVRTC kernel can run in this process, else a one-sentence reason."""
    with _lock:
        if _reason:
            return _reason[0]
        reason = None
        try:
            import torch
        except ImportError:
            reason = "torch is not installed"
        else:
            if not torch.cuda.is_available():
                reason = "no CUDA device (torch.cuda.is_available() is False)"
        if reason is None:
            try:
                build._import_cuda_core()
                build.nvrtc_version()
                build.cuda_include_dir()
            except build.NVRTCUnavailableError as exc:
                reason = str(exc)
        _reason.append(reason)
        return reason


def kernel_backend() -> str:
    """Return "nvrtc" when the CUDA kernel is usable, otherwise the reason it is not."""
    reason = kernel_unavailable_reason()
    return "nvrtc" if reason is None else reason


# ---------------------------------------------------------------------------------------------
# per-device state


@dataclass
class _Device:
    index: int
    arch: str
    sm_count: int
    smem_optin: int
    smem_per_sm: int
    regs_per_sm: int
    mem_bw: float = 0.0  # peak DRAM bytes/s from memory clock x bus width (0: unknown)


@dataclass
class _Loaded:
    obj: object
    main: object
    merge: object
    regs: int


_devices: dict[int, _Device] = {}
_kernels: dict[tuple, _Loaded] = {}
_streams: dict[int, object] = {}
_occupancy: dict[tuple, int] = {}
_counters: dict[tuple, object] = {}  # (device, stream) -> int32 zeros, re-armed to 0 by the kernel


def _device(index: int) -> _Device:
    d = _devices.get(index)
    if d is None:
        import torch

        cc = build._import_cuda_core()
        major, minor = torch.cuda.get_device_capability(index)
        dev = cc.Device(index)
        dev.set_current()
        p = dev.properties
        d = _Device(
            index=index,
            arch=f"sm_{major}{minor}",
            sm_count=int(p.multiprocessor_count),
            smem_optin=int(p.max_shared_memory_per_block_optin),
            smem_per_sm=int(p.max_shared_memory_per_multiprocessor),
            regs_per_sm=int(p.max_registers_per_multiprocessor),
            mem_bw=_peak_bw(p),
        )
        _devices[index] = d
    return d


def _peak_bw(p) -> float:
    try:  # kHz x 2 (double data rate) x bus bytes
        return float(p.memory_clock_rate) * 1e3 * 2 * float(p.global_memory_bus_width) / 8
    except Exception:
        return 0.0


_REF_BW = 3.35e12  # H100 SXM peak: the in-flight targets above were tuned there


def _inflight_scale(dev: _Device) -> float:
    """Bytes in flight grow with bandwidth at a fixed latency (Little's law): >= 1 on faster HBM."""
    return max(1.0, dev.mem_bw / _REF_BW) if dev.mem_bw > 0 else 1.0


def _check_driver(result, what: str):
    err = result[0] if isinstance(result, tuple) else result
    if int(err) != 0:
        raise RuntimeError(f"{what} failed: {err}")


def _load(config: build.KernelConfig, dev: _Device) -> _Loaded:
    key = (config, dev.index)
    ld = _kernels.get(key)
    if ld is not None:
        return ld
    cc = build._import_cuda_core()
    from cuda.bindings import driver

    cubin = build.compile_cubin(config, dev.arch)
    obj = cc.ObjectCode.from_cubin(cubin, name=config.name)
    main = obj.get_kernel("kvp_decode")
    merge = obj.get_kernel("kvp_merge")
    attr = driver.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
    h = main.handle
    if isinstance(h, driver.CUkernel):
        _check_driver(driver.cuKernelSetAttribute(attr, dev.smem_optin, h, driver.CUdevice(dev.index)),
                      "cuKernelSetAttribute")
    else:
        _check_driver(driver.cuFuncSetAttribute(h, attr, dev.smem_optin), "cuFuncSetAttribute")
    try:
        regs = int(main.attributes[dev.index].num_regs)
    except Exception:
        regs = 255
    ld = _Loaded(obj, main, merge, regs)
    _kernels[key] = ld
    return ld


class _TorchStream:
    """A torch stream handle in the ``__cuda_stream__`` protocol."""

    __slots__ = ("handle",)

    def __init__(self, handle: int):
        self.handle = handle

    def __cuda_stream__(self):
        return (0, self.handle)


def _stream(handle: int):
    s = _streams.get(handle)
    if s is None:
        cc = build._import_cuda_core()
        if handle == 0 and hasattr(cc, "LEGACY_DEFAULT_STREAM"):
            s = cc.LEGACY_DEFAULT_STREAM
        elif hasattr(cc.Stream, "from_handle"):
            s = cc.Stream.from_handle(handle)
        else:
            s = _TorchStream(handle)
        if len(_streams) > 64:
            _streams.clear()
        _streams[handle] = s
    return s


# ---------------------------------------------------------------------------------------------
# planning


@dataclass(frozen=True)
class Launch:
    """What one call launches (exposed for benchmarks and tests)."""

    config: build.KernelConfig
    head_tiles: int
    slices: int  # NWS: token slices per CTA
    kv_per_cta: int  # KH: kv heads per CTA (1 unless slices == head_tiles == 1)
    stages: int
    splits: int
    chunk: int
    smem: int

    @property
    def warps(self) -> int:
        return self.kv_per_cta * self.head_tiles * self.slices


def _slots_per_lane(head_dim: int, kv_dtype: str) -> int:
    es = 1 if kv_dtype == "float8_e4m3fn" else 2
    rowb = head_dim * es
    vcw = min(16, rowb // 8)
    return 2 * (rowb // 64) + 4 * (rowb // vcw // 8)


def _step_bytes(a: DecodeArgs, bulk: int = 0) -> int:
    """Shared memory of one 16-token ring stage."""
    if bulk:
        rowb = a.head_dim * (1 if a.kv_dtype == "float8_e4m3fn" else 2)
        return 32 * rowb + 384  # padded K and V tiles (paged_decode.cu STEP_B)
    return _slots_per_lane(a.head_dim, a.kv_dtype) * 512


def _smem_bytes(a: DecodeArgs, hpw: int, ht: int, nws: int, stages: int, kh: int = 1, bulk: int = 0) -> int:
    ring = kh * nws * stages * _step_bytes(a, bulk)
    epi = nws * ht * hpw * (a.head_dim + 2) * 4 if nws > 1 else 0
    return max(ring, epi, 16) + (_BULK_BAR_BYTES if bulk else 0)


def _pdl_enabled(dev: _Device, override) -> bool:
    if dev.arch not in PDL_ARCHS:
        return False
    if override is not None:
        return bool(override)
    env = os.environ.get("KVPLAN_DECODE_PDL")
    if env in ("0", "1"):
        return env == "1"
    return _PDL_DEFAULT


def _bulk_default() -> bool:
    env = os.environ.get("KVPLAN_DECODE_BULK")
    if env in ("0", "1"):
        return env == "1"
    return _BULK_DEFAULT


def _occupancy_ctas(ld: _Loaded, dev: _Device, threads: int, smem: int) -> int:
    key = (id(ld), threads, smem)
    n = _occupancy.get(key)
    if n is None:
        n = 0
        try:
            n = int(ld.main.occupancy.max_active_blocks_per_multiprocessor(threads, smem))
        except Exception:
            n = 0
        if n <= 0:  # estimate from the limits
            by_smem = dev.smem_per_sm // (smem + 1024)
            by_regs = dev.regs_per_sm // (max(ld.regs, 1) * threads)
            n = max(1, min(by_smem, by_regs, 2048 // threads, 32))
        _occupancy[key] = n
    return n


def choose_splits(pairs: int, span: int, slots: int, min_chunk: int = _MIN_SPLIT_TOKENS) -> int:
    """Splits per sequence: fill about one wave of ``slots`` CTAs over ``pairs`` (sequence, kv head).

    Picks the fewest splits whose wave-quantised time is within 5% of the best, with chunks of at
    least ``min_chunk`` tokens.
    """
    if span <= 0 or pairs <= 0:
        return 1
    max_splits = max(1, min(128, -(-span // min_chunk)))
    cost = {}
    for s in range(1, max_splits + 1):
        waves = -(-pairs * s // slots)
        cost[s] = waves / s * (1.05 if s > 1 else 1.0)  # splitting costs partials and a merge
    best = min(cost.values())
    for s in range(1, max_splits + 1):
        if cost[s] <= best * 1.05:
            return s
    return 1


def plan(a: DecodeArgs, dev: _Device, span: int, *, num_splits=None, slices=None, stages=None,
         min_chunk: int = _MIN_SPLIT_TOKENS, variant=None, kv_per_cta=None) -> tuple[Launch, _Loaded]:
    shape = build.launch_shape(a.group, a.head_dim)
    config = build.KernelConfig(a.q_dtype, a.kv_dtype, a.head_dim, shape.heads_per_warp, shape.max_warps)
    ht = shape.head_tiles
    bulk_ok = dev.arch in build.BULK_ARCHS and build.bulk_eligible(a.kv_dtype, a.head_dim, ht)
    variant = dict(variant or {})
    # tuning experiments only: {"l2_prefetch": 0|1|2, "k_coalesced": 0|1, "bulk": 0|1}
    # default for 16-bit caches only: fp8 rows (64-128 bytes) measured 6-10% slower with bulk copies
    want_bulk = bool(variant.pop("bulk", _bulk_default() and a.kv_dtype != "float8_e4m3fn"))
    if want_bulk and bulk_ok:  # a request where it does not apply falls back to the cp.async ring
        variant["bulk"] = 1
    if variant:
        config = dataclasses.replace(config, **variant)
    bulk = config.bulk
    ld = _load(config, dev)
    kh = 1
    if kv_per_cta is not None:
        kh = int(kv_per_cta)
    elif ht == 1 and slices is None:
        kh = _KV_PER_CTA
    while kh > 1 and (a.kv_heads % kh or ht > 1 or kh > shape.max_warps):
        kh //= 2
    # few (sequence, kv head) pairs: the sequences get split into long CTAs filling one wave. Measured
    # on H100 for 16-bit caches at head_dim 128 only; fp8 and other head dims keep 4 slices.
    few = (a.batch * a.kv_heads <= dev.sm_count // 2 and a.kv_dtype != "float8_e4m3fn"
           and a.head_dim == 128)
    if kh > 1:
        nws = 1
    elif slices is not None:
        nws = slices
    else:
        # measured on H100 (benchmarks/NOTES_kernel.md): 8 token slices x 2 stages when splitting,
        # 4 x 3 otherwise; either way 64-128 KB of copies in flight per SM
        nws = 8 if (few and ht == 1) else max(1, 4 // ht)
    if kh * ht * nws > shape.max_warps:
        raise ValueError(f"slices={nws} gives more than {shape.max_warps} warps per CTA")
    step_bytes = _step_bytes(a, bulk)
    if stages is None:
        target = _IN_FLIGHT_BYTES // 2 if nws >= 8 else _IN_FLIGHT_BYTES
        if nws >= 8:
            # split shapes, one CTA per SM: scale the ring with peak bandwidth (H200, 4.8 TB/s: 3 stages,
            # measured 9-10% faster than 2; H100: 2 stages as before, see benchmarks/NOTES_kernel.md v8)
            target = int(target * _inflight_scale(dev))
        stages = min(8, max(2, 1 + -(-target // step_bytes)))
    smem = _smem_bytes(a, shape.heads_per_warp, ht, nws, stages, kh, bulk)
    while smem > dev.smem_optin and stages > 2:
        stages -= 1
        smem = _smem_bytes(a, shape.heads_per_warp, ht, nws, stages, kh, bulk)
    while smem > dev.smem_optin and kh > 1:
        kh //= 2
        smem = _smem_bytes(a, shape.heads_per_warp, ht, nws, stages, kh, bulk)
    while smem > dev.smem_optin and nws > 1:
        nws //= 2
        smem = _smem_bytes(a, shape.heads_per_warp, ht, nws, stages, kh, bulk)
    threads = kh * ht * nws * 32
    if num_splits is None:
        slots = dev.sm_count * _occupancy_ctas(ld, dev, threads, smem)
        splits = choose_splits(a.batch * (a.kv_heads // kh), span, slots, min_chunk)
    else:
        splits = max(1, int(num_splits))
    chunk = max(16, -(-max(span, 1) // splits))
    chunk = -(-chunk // 16) * 16
    splits = max(1, -(-max(span, 1) // chunk))
    return Launch(config, ht, nws, kh, stages, splits, chunk, smem), ld


# ---------------------------------------------------------------------------------------------
# entry point


def paged_decode_attention(q, k_cache, v_cache, block_table, seq_lens, scale=None, k_scale=1.0, v_scale=1.0,
                           sliding_window=None, *, out=None, check_block_ids=True, num_splits=None,
                           _slices=None, _stages=None, _min_chunk=_MIN_SPLIT_TOKENS, _variant=None,
                           _kv_per_cta=None, _fuse_merge=None, _pdl=None, _trace=None):
    """Decode attention over a paged KV cache on the GPU (see ``kvplan.kernels`` for the contract).

    Keyword-only extras:
      out              preallocated ``[B, Hq, D]`` output in q's dtype (CUDA-graph friendly)
      check_block_ids  True (default): check seq_lens and every block id the call reads (one host
                       sync: tables up to 64K entries are copied and checked on the host, larger ones
                       reduced on the GPU). False skips it (no sync, capturable in a CUDA graph); the
                       caller then guarantees the table is valid.
      num_splits       force the number of sequence splits (default: chosen from the SM count)
    """
    reason = kernel_unavailable_reason()
    if reason is not None:
        raise KernelUnavailableError(f"the CUDA decode kernel is unavailable: {reason}")
    import torch

    a = validate(q, k_cache, v_cache, block_table, seq_lens, scale, k_scale, v_scale, sliding_window,
                 require_cuda=True)
    if out is not None:
        if not isinstance(out, torch.Tensor) or out.shape != q.shape or out.dtype != q.dtype \
                or out.device != q.device or not out.is_contiguous():
            raise ValueError("out must be a contiguous tensor with q's shape, dtype and device")
    else:
        out = torch.empty_like(q)
    if a.batch == 0:
        return out
    if check_block_ids:
        span = check_table(a, block_table, seq_lens)
    else:
        span = a.max_blocks * a.block_size
        if a.window is not None:
            span = min(span, a.window)
    dev_index = q.device.index if q.device.index is not None else torch.cuda.current_device()
    fuse = _FUSE_MERGE_DEFAULT if _fuse_merge is None else bool(_fuse_merge)
    if _trace is not None:  # the timeline is compiled in only when asked for
        _variant = dict(_variant or {}, trace=1)
    # the launch uses the calling thread's current context: make it q's device (switching costs host time)
    same = torch.cuda.current_device() == dev_index
    with contextlib.nullcontext() if same else torch.cuda.device(dev_index):
        _plan_and_launch(a, dev_index, span, num_splits, _slices, _stages, _min_chunk, _variant, _kv_per_cta,
                         q, k_cache, v_cache, block_table, seq_lens, out, fuse, _pdl, _trace)
    return out


_plans: dict[tuple, tuple] = {}  # call shape -> (Launch, _Loaded, pdl): eager callers repeat shapes


def _plan_and_launch(a, dev_index, span, num_splits, slices, stages, min_chunk, variant, kv_per_cta,
                     q, k_cache, v_cache, block_table, seq_lens, out, fuse, pdl_override, trace):
    key = (a, dev_index, span, num_splits, slices, stages, min_chunk,
           tuple(sorted((variant or {}).items())), kv_per_cta, pdl_override, os.environ.get("KVPLAN_DECODE_BULK"),
           os.environ.get("KVPLAN_DECODE_PDL"))
    hit = _plans.get(key)
    if hit is None:
        with _lock:
            dev = _device(dev_index)
            launch, ld = plan(a, dev, span, num_splits=num_splits, slices=slices, stages=stages,
                              min_chunk=min_chunk, variant=variant, kv_per_cta=kv_per_cta)
            hit = (launch, ld, _pdl_enabled(dev, pdl_override))
            if len(_plans) > 4096:
                _plans.clear()
            _plans[key] = hit
    launch, ld, pdl = hit
    _launch(a, launch, ld, q, k_cache, v_cache, block_table, seq_lens, out, fuse, pdl, trace)


def _counter_buffer(device, handle: int, n: int):
    """int32 zeros for the fused merge, one buffer per (device, stream): launches on one stream are
    ordered, and each launch's last CTA per (sequence, kv-head group) re-arms its counter to 0."""
    import torch

    key = (device.index, handle)
    buf = _counters.get(key)
    if buf is None or buf.numel() < n:
        buf = torch.zeros(max(n, 256), dtype=torch.int32, device=device)
        if len(_counters) > 64:
            _counters.clear()
        _counters[key] = buf
    return buf


def _launch(a: DecodeArgs, launch: Launch, ld: _Loaded, q, k_cache, v_cache, block_table, seq_lens, out,
            fuse: bool = False, pdl: bool = False, trace=None):
    import torch

    cc = build._import_cuda_core()
    handle = torch.cuda.current_stream(q.device).cuda_stream
    stream = _stream(handle)
    S = launch.splits
    ctr_ptr = 0
    if S > 1:
        # fp32 partials [B, Hq, S, D] then log-sum-exps [B, Hq, S] in one allocation
        n = a.batch * a.q_heads * S
        work = torch.empty(n * (a.head_dim + 1), dtype=torch.float32, device=q.device)
        op_ptr = work.data_ptr()
        lse_ptr = op_ptr + 4 * n * a.head_dim
        if fuse:
            ctr_ptr = _counter_buffer(q.device, handle, a.batch * (a.kv_heads // launch.kv_per_cta)).data_ptr()
    else:
        op_ptr = lse_ptr = 0
    u64, i32, f32 = ctypes.c_uint64, ctypes.c_int32, ctypes.c_float
    cbase = a.scale * a.k_scale * LOG2E
    args = (
        u64(q.data_ptr()), u64(k_cache.data_ptr()), u64(v_cache.data_ptr()),
        u64(block_table.data_ptr()), u64(seq_lens.data_ptr()),
        u64(out.data_ptr()), u64(op_ptr), u64(lse_ptr), u64(ctr_ptr),
        i32(a.group), i32(a.kv_heads), i32(launch.kv_per_cta), i32(launch.head_tiles), i32(launch.slices),
        i32(launch.stages),
        i32(launch.chunk), i32(a.max_blocks), i32(int(math.log2(a.block_size))),
        i32(a.window if a.window is not None else 0), f32(cbase), f32(a.v_scale),
        u64(_trace_ptr(trace, launch, a)),
    )
    cfg = _launch_config(cc, pdl, (S, a.kv_heads // launch.kv_per_cta, a.batch), launch.warps * 32, launch.smem)
    cc.launch(stream, cfg, ld.main, *args)
    if S > 1 and not ctr_ptr:
        rows = a.batch * a.q_heads
        mcfg = _launch_config(cc, pdl, (rows,), 256, 0)
        cc.launch(stream, mcfg, ld.merge, u64(op_ptr), u64(lse_ptr), u64(out.data_ptr()), i32(rows), i32(S))


_configs: dict[tuple, object] = {}


def _launch_config(cc, pdl: bool, grid: tuple, block: int, smem: int):
    key = (pdl, grid, block, smem)
    cfg = _configs.get(key)
    if cfg is None:
        kw = dict(grid=grid, block=block, shmem_size=smem)
        try:
            cfg = cc.LaunchConfig(programmatic_stream_serialization=pdl, **kw)
        except TypeError:  # cuda.core without the PDL option: a plain launch is just as correct
            cfg = cc.LaunchConfig(**kw)
        if len(_configs) > 4096:
            _configs.clear()
        _configs[key] = cfg
    return cfg


def _trace_ptr(trace, launch: Launch, a: DecodeArgs) -> int:
    """Timeline buffer (benchmarks): int64 [CTAs, 4] = start, first data, end (ns), SM id."""
    if trace is None:
        return 0
    n = launch.splits * (a.kv_heads // launch.kv_per_cta) * a.batch
    import torch

    if trace.dtype != torch.int64 or trace.numel() < 4 * n or not trace.is_contiguous() or not trace.is_cuda:
        raise ValueError(f"_trace must be a contiguous int64 CUDA tensor of at least {4 * n} elements")
    return trace.data_ptr()
