"""How a paged-decode plan launches on one device: warps, ring depth and shared memory per CTA, and the split of
each sequence over CTAs (Flash-Decoding), from the device's SM count, shared memory and bandwidth."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from . import _runtime as rt
from . import configs, limits
from .options import KernelOptions

_IN_FLIGHT_BYTES = 16384  # target bytes in flight per token slice (beyond the step being computed)
_REF_BW = 3.35e12  # H100 SXM peak: the in-flight targets were tuned there
PDL_ARCHS = configs.PDL_ARCHS
# ring depth where head tiles share a bulk ring (MQA-like groups, 2 CTAs per SM at 178 registers): H200, MQA 64q/1kv
# B8 32K, 2 / 3 / 4 / 6 stages 94.2 / 92.2 / 92.6 / 93.0 us (benchmarks/RESULTS.md, session 10): flat from 3 on
TILES_RING_STAGES = 4


@dataclass(frozen=True)
class Launch:
    """What one call launches (exposed for benchmarks and tests)."""

    config: configs.KernelConfig
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


def _inflight_scale(dev: rt.Device) -> float:
    """Bytes in flight grow with bandwidth at a fixed latency (Little's law): >= 1 on faster HBM."""
    return max(1.0, dev.mem_bw / _REF_BW) if dev.mem_bw > 0 else 1.0


def _smem_bytes(head_dim, kv_dtype, hpw, ht, nws, stages, kh, bulk, sort=False) -> int:
    step = limits.bulk_step_bytes(head_dim, kv_dtype) if bulk else limits.ring_step_bytes(head_dim, kv_dtype)
    ring = kh * nws * stages * step
    epi = nws * ht * hpw * (head_dim + 2) * 4 if nws > 1 else 0
    keys = limits.SORT_KEY_BYTES if sort else 0  # the sort's keys sit in the ring before the first copy
    return max(ring, epi, keys, 16) + (limits.MBAR_AREA if bulk else 0) + (limits.SORT_BYTES if sort else 0)


def choose_splits(pairs: int, span: int, slots: int, min_chunk: int = limits.MIN_SPLIT_TOKENS) -> int:
    """Splits per sequence: fill about one wave of ``slots`` CTAs over ``pairs`` (sequence, kv head).

    Picks the fewest splits whose wave-quantised time is within 5% of the best, with chunks of at
    least ``min_chunk`` tokens.
    """
    if span <= 0 or pairs <= 0:
        return 1
    max_splits = max(1, min(limits.MAX_SPLITS, -(-span // min_chunk)))
    cost = [(-(-pairs * s // slots)) / s * (1.05 if s > 1 else 1.0) for s in range(1, max_splits + 1)]
    best = min(cost)
    for s, c in enumerate(cost, start=1):  # splitting costs partials and a merge
        if c <= best * 1.05:
            return s
    return 1


@dataclass(frozen=True)
class CtaShape:
    """Launch shape independent of batch: warps, ring, shared memory, CTAs per SM."""

    config: configs.KernelConfig
    head_tiles: int
    slices: int
    kv_per_cta: int
    stages: int
    smem: int
    slots: int  # CTAs that fit the GPU at once


def resolve_options(opts: KernelOptions, dev: rt.Device) -> KernelOptions:
    pdl = configs.pdl_enabled(dev.arch) if opts.pdl is None else (opts.pdl and dev.arch in PDL_ARCHS)
    return dataclasses.replace(opts, pdl=pdl)


def _shared_ring_heads(head_dim: int, kv_heads: int, head_tiles: int) -> int:
    """KV heads per CTA sharing one bulk-copy ring by default for many (sequence, kv head) pairs, or 1.

    One copy then brings a token's rows of all 8 heads (the per-lane bulk-copy issue is serial: H200 ncu at
    B64 8K, 55% of warp samples in it with one head per warp). H200 sweeps against 8 slices x 3 stages
    (benchmarks/RESULTS.md, "KV heads sharing one ring"), 8 heads x 2 stages: head_dim 128 B16 32K 515 -> 502 us,
    B64 8K 519 -> 505, B128 2K 275 -> 252; head_dim 64 B16 32K 300 -> 255, B64 8K 300 -> 259, B32 4K 79 -> 70.
    3 stages were 10-15% slower, and so were 2 or 4 heads per CTA (4 to 10 CTAs per SM); few pairs keep their
    split slices (B8 8K: 69.5 us against 72 with 8 heads). Measured on H200 only; H100 (also sm_90) not lent."""
    return 8 if head_tiles == 1 and head_dim in (64, 128) and kv_heads % 8 == 0 else 1


def pair_tier(pairs: int, sm_count: int) -> str:
    """How many (sequence, KV head) pairs a launch streams against the GPU's SMs: "lone" up to an eighth of them,
    "few" up to half, else "many"."""
    return "lone" if pairs <= sm_count // 8 else "few" if pairs <= sm_count // 2 else "many"


def lone_leaves_heads_in_m(group: int, head_dim: int, kv_dtype: str) -> bool:
    """Whether lone pairs run the default layout's 8 token slices a CTA instead of heads in M's one warp: groups of
    9-16 query heads, 16-bit caches at head_dim 128 (what was measured). With heads in M a lone pair's sequence is
    split into one-warp CTAs (at most span / MIN_SPLIT_TOKENS of them), too few to stream: H200, session 51
    (benchmarks/probes/s51_few_kv_heads_probe.py), a TP rank of GLM-4.5-Air (24q / 2kv) B1 8K 32.6 -> 12.3 us, B1 32K
    35.6 -> 19.4, B4 8K 34.4 -> 17.5; GLM-4.6 tp 8 (12q / 1kv) B1 8K 32.3 -> 12.2, B8 8K 33.7 -> 17.5; 32q / 2kv B1 8K
    32.6 -> 13.2. From 32 pairs on heads in M keeps up (B16 8K 41.2 vs 41.9; 64q / 4kv B16 16K 132.9 vs 136.9), and
    larger groups keep it (MQA 64q / 1kv B8 32K 55.5 vs 86.0)."""
    return 8 < group <= 16 and head_dim == 128 and kv_dtype != "float8_e4m3fn"


def plan_cta(a_heads: tuple, dev: rt.Device, opts: KernelOptions, few: bool,
             lone: bool = False) -> tuple[CtaShape, rt.Loaded]:
    """``a_heads`` = (group, kv_heads, head_dim, q_dtype, kv_dtype); ``few``: few (sequence, kv head) pairs;
    ``lone``: fewer still (pair_tier)."""
    group, kv_heads, head_dim, q_dtype, kv_dtype = a_heads
    shape = configs.launch_shape(group, head_dim, opts.heads_per_warp)
    ht = shape.head_tiles
    hm = (configs.heads_in_m_default(shape.heads_per_warp, head_dim) and (opts.slices or 1) == 1
          and not (lone and lone_leaves_heads_in_m(group, head_dim, kv_dtype))
          if opts.heads_in_m is None else opts.heads_in_m)
    if hm and not (shape.heads_per_warp == 16 and head_dim <= 128 and (opts.slices or 1) == 1):
        raise ValueError("KernelOptions.heads_in_m needs 16 query heads per warp (more than 8 per KV head), "
                         f"head_dim <= 128 and one token slice; got {shape.heads_per_warp} heads per warp, head_dim "
                         f"{head_dim}, slices {opts.slices}")
    # KV heads sharing one ring, unless the options fix the launch's shape themselves
    ring_heads = (_shared_ring_heads(head_dim, kv_heads, ht) if not few and opts.kv_per_cta is None
                  and opts.slices is None and opts.stages is None else 1)
    # fp8 rows take bulk copies only through a shared ring (one per token per 8 heads): H200, B64 8K and B16 32K
    # 325 -> 265 us (73 -> 90% of read); one row per copy they were 6-10% slower than cp.async (NOTES_kernel v7)
    want_bulk = (configs.bulk_default(kv_dtype, ht) or ring_heads > 1) if opts.bulk is None else opts.bulk
    # head tiles share a bulk ring only within one token slice
    eligible = configs.bulk_eligible(kv_dtype, head_dim) and not (ht > 1 and (opts.slices or 1) > 1)
    bulk = int(want_bulk and dev.arch in configs.BULK_ARCHS and eligible)
    if opts.page_runs and not (hm and bulk):
        raise ValueError("KernelOptions.page_runs needs heads_in_m and the bulk-copy path (sm_90, rows of a multiple "
                         "of 128 bytes)")
    # page runs at 168 registers: three 4-warp CTAs per SM (ptxas chose 171 otherwise; session 11)
    max_regs = opts.max_registers or (168 if opts.page_runs else 0)
    config = configs.KernelConfig(q_dtype, kv_dtype, head_dim, shape.heads_per_warp, shape.max_warps,
                                  l2_prefetch=opts.l2_prefetch, k_coalesced=int(opts.k_coalesced), bulk=bulk,
                                  trace=int(opts.trace), early_page=int(opts.early_page),
                                  lazy_rescale=int(configs.lazy_default(shape.heads_per_warp, hm)
                                                   if opts.lazy_rescale is None else opts.lazy_rescale),
                                  heads_in_m=int(hm), page_runs=int(opts.page_runs),
                                  max_regs=max_regs, sort_steps=int(bool(opts.sort_steps)))
    ld = rt.load(config, dev)
    shared_ring = bool(bulk) and ring_heads > 1
    tiles_ring = bool(bulk) and ht > 1  # the head tiles' warps share one ring (one slice)
    kh = ring_heads if shared_ring else opts.kv_per_cta if opts.kv_per_cta is not None else 1
    while kh > 1 and (kv_heads % kh or ht > 1 or kh > shape.max_warps):
        kh //= 2
    # few pairs: the sequences get split into long CTAs filling one wave. Measured on H100 for 16-bit
    # caches at head_dim 128 only; fp8 and other head dims keep 4 slices.
    few = few and kv_dtype != "float8_e4m3fn" and head_dim == 128
    if kh > 1 or tiles_ring or hm:
        nws = 1
    elif opts.slices is not None:
        nws = opts.slices
    else:
        # measured on H100 (benchmarks/NOTES_kernel.md): 8 token slices x 2 stages when splitting,
        # 4 x 3 otherwise; either way 64-128 KB of copies in flight per SM
        nws = 8 if (few and ht == 1) else max(1, 4 // ht)
    # bulk copies, head_dim 64/128, many pairs: 8 slices x 3 stages (H200 sweep, v10: head_dim 64 B16 32K
    # 407 -> 292 us, B64 8K 593 -> 558 us against 4 x 5 / 4 x 3)
    wide = (bulk and ht == 1 and kh == 1 and head_dim in (64, 128) and not few and opts.slices is None
            and opts.stages is None and not hm)
    if wide:
        nws = 8
    if kh * ht * nws > shape.max_warps:
        raise ValueError(f"KernelOptions.slices={nws} gives more than {shape.max_warps} warps per CTA")
    step = limits.bulk_step_bytes(head_dim, kv_dtype) if bulk else limits.ring_step_bytes(head_dim, kv_dtype)
    stages = 3 if wide else 2 if shared_ring else opts.stages
    if tiles_ring and stages is None:
        stages = TILES_RING_STAGES
    if stages is None:
        target = _IN_FLIGHT_BYTES // 2 if nws >= 8 else _IN_FLIGHT_BYTES
        if nws >= 8:
            # split shapes, one CTA per SM: scale the ring with peak bandwidth (H200: 3 stages, measured
            # 9-10% faster than 2; H100: 2 stages, see benchmarks/NOTES_kernel.md v8)
            target = int(target * _inflight_scale(dev))
        stages = min(limits.MAX_STAGES, max(2, 1 + -(-target // step)))
    hpw = shape.heads_per_warp

    def smem_of():
        return _smem_bytes(head_dim, kv_dtype, hpw, ht, nws, stages, kh, bulk, bool(opts.sort_steps))

    while smem_of() > dev.smem_optin and stages > 2:
        stages -= 1
    while smem_of() > dev.smem_optin and kh > 1:
        kh //= 2
    while smem_of() > dev.smem_optin and nws > 1:
        nws //= 2
    smem = smem_of()
    threads = kh * ht * nws * 32
    if max_regs and threads * max_regs > 65536:
        raise ValueError(f"KernelOptions.max_registers={max_regs} x {threads} threads per CTA exceeds an SM's 65,536 "
                         "registers")
    slots = dev.sm_count * rt.occupancy(ld, "kvp_decode", dev, threads, smem)
    return CtaShape(config, ht, nws, kh, stages, smem, slots), ld
