"""The tuning knobs of the decode kernels, in one documented place.

``KernelOptions()`` (every field ``None`` / default) means "what kvplan measured best on this device";
benchmarks and tests pass explicit values. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from . import limits


@dataclass(frozen=True)
class KernelOptions:
    """How a decode plan launches. ``None`` picks the per-device default (benchmarks/NOTES_kernel.md).

    bulk         Hopper ``cp.async.bulk`` row copies + mbarriers instead of the cp.async ring. Default: on
                 for sm_90 and rows of a multiple of 128 bytes with one head tile: 16-bit caches always, fp8
                 caches where KV heads share a ring (see kv_per_cta); ``True`` where it cannot apply falls
                 back to the ring.
    pdl          programmatic dependent launch (sm_90): a grid may start while the previous kernel of the
                 stream drains. Default on for sm_90, ignored elsewhere.
    fuse_merge   merge the splits in the last CTA of each (sequence, KV head) instead of a second kernel
                 (measured no faster: off by default).
    num_splits   sequence splits per (sequence, KV head); default from the SM count and the work.
    slices       token slices (independent warps streaming one CTA's range); default 8 when splitting few
                 sequences or on the sm_90 bulk path, else 4 / head tiles (1 where KV heads share a ring).
    stages       ring depth in 16-token steps; default from the bytes in flight the device's bandwidth needs.
    kv_per_cta   KV heads per CTA (only with one slice and one head tile). On the bulk path they share one
                 ring, one copy per token bringing all their rows; default 8 (2 stages) on sm_90 for more
                 (sequence, KV head) pairs than SMs / 2, head_dim 64/128 and KV heads a multiple of 8, else 1.
    heads_per_warp  query heads per warp, 8 or 16; default 8 for groups up to 8 and head_dim 256, else 16.
    min_split_tokens  shortest chunk a split may get.
    l2_prefetch  cp.async L2 prefetch hint: 0 none, 1 = 128 B, 2 = 256 B (never past a row).
    k_coalesced  ring path: K copied as whole rows into a swizzled tile (True) or per lane (False).
    early_page   first page ids loaded together with seq_lens.
    lazy_rescale rescale the output accumulators only when a head's running max grows by more than 2^8 (the
                 probabilities of a step may then reach 256: exact in fp32, and in range of the 16-bit P).
                 Default: on where a warp holds 16 query heads in the default layout, off otherwise.
    heads_in_m   a warp's 16 query heads as the MMAs' M side, K and V as their B operands (FlashAttention-2's
                 layout; groups above 8, head_dim <= 128, one token slice). Default: on wherever it applies and
                 no token slices are asked for (H200: MQA 64q/1kv B8 32K 87 -> 72 us).
    page_runs    with heads_in_m on the sm_90 bulk path: tiles row after row, and a step's K and V each in one bulk
                 copy where the CTA holds every KV head (MQA) and the step lies in one page. Opt-in: on the H200 it
                 took 10% off MQA with 128-byte rows (fp8 B8 32K 83.6 -> 75.2 us, head_dim 64 53.3 -> 48.2) and
                 added 12% with 256-byte rows (bf16 head_dim 128: 71.4 -> 79.9; B1 29.0 -> 31.1).
    max_registers  a register cap per thread for ptxas (instead of the launch bounds), e.g. 128 so that four 4-warp
                 CTAs fit an SM; default none (168 with page_runs).
    sort_steps   each CTA of 64-512 steps takes them in the address order of their pages (ranked at its start), so
                 that all CTAs sweep the cache together and DRAM sees neighbouring pages at once. Off by default
                 (H200, session 30: the ranking cost more than it took back, but at head_dim 64).
    wgmma        Hopper's warpgroup MMAs (paged_decode_wg.cu): one warpgroup takes 16, 32 or 64 query heads of a KV
                 head and 64 tokens a step (16-bit caches of q's dtype, head_dim 64 / 128, groups of a multiple of
                 16, no window; sm_90, driver launcher). None: where configs.decode_wg_default says; True where it
                 cannot run is an error. Of the options above it takes num_splits, min_split_tokens and pdl.
    wg_heads     (wgmma) query heads a CTA: 16, 32 or 64 dividing the group; default the largest that divides it.
    wg_stages    (wgmma) 64-token steps of K and V in flight per warpgroup; default configs.decode_wg_stages.
    wg_warpgroups  (wgmma) 1, or 2 taking alternate steps (one's softmax beside the other's MMAs); default
                 configs.decode_wg_warpgroups.
    trace        compile in the per-CTA timeline (``run(..., trace=int64 buffer)``; benchmarks only).
    launcher     "driver": pre-packed arguments straight to cuLaunchKernelEx (lowest host time);
                 "cuda.core": cuda.core's launch (reference path).
    """

    bulk: bool | None = None
    pdl: bool | None = None
    fuse_merge: bool = False
    num_splits: int | None = None
    slices: int | None = None
    stages: int | None = None
    kv_per_cta: int | None = None
    heads_per_warp: int | None = None
    min_split_tokens: int = limits.MIN_SPLIT_TOKENS
    l2_prefetch: int = 2
    k_coalesced: bool = True
    early_page: bool = True
    lazy_rescale: bool | None = None
    heads_in_m: bool | None = None
    page_runs: bool = False
    max_registers: int | None = None
    sort_steps: bool | None = None
    wgmma: bool | None = None
    wg_heads: int | None = None
    wg_stages: int | None = None
    wg_warpgroups: int | None = None
    trace: bool = False
    launcher: str = "driver"

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            # True, False or None (the default)
            tri = ("bulk", "pdl", "lazy_rescale", "heads_in_m", "sort_steps", "wgmma")
            if f.name in tri and v is not None and not isinstance(v, bool):
                raise ValueError(f"KernelOptions.{f.name} must be True, False or None, got {v!r}")
            if f.name in ("fuse_merge", "k_coalesced", "early_page", "trace",
                          "page_runs") and not isinstance(v, bool):
                raise ValueError(f"KernelOptions.{f.name} must be True or False, got {v!r}")
        _int_range("num_splits", self.num_splits, 1, limits.MAX_SPLITS * 64)
        _int_range("slices", self.slices, 1, 16)
        _int_range("stages", self.stages, 2, limits.MAX_STAGES)
        _int_range("kv_per_cta", self.kv_per_cta, 1, 8)
        if self.heads_per_warp not in (None, 8, 16):
            raise ValueError(f"KernelOptions.heads_per_warp must be 8, 16 or None, got {self.heads_per_warp!r}")
        _int_range("min_split_tokens", self.min_split_tokens, 16, 1 << 30)
        _int_range("l2_prefetch", self.l2_prefetch, 0, 2)
        _int_range("max_registers", self.max_registers, 64, 255)
        if self.wg_heads not in (None,) + limits.DECODE_WG_HEAD_GROUPS or isinstance(self.wg_heads, bool):
            raise ValueError(f"KernelOptions.wg_heads must be one of {limits.DECODE_WG_HEAD_GROUPS} or None, got "
                             f"{self.wg_heads!r}")
        _int_range("wg_stages", self.wg_stages, 2, limits.DECODE_WG_MAX_STAGES)
        _int_range("wg_warpgroups", self.wg_warpgroups, 1, 2)
        if self.launcher not in ("driver", "cuda.core"):
            raise ValueError(f"KernelOptions.launcher must be 'driver' or 'cuda.core', got {self.launcher!r}")


def _int_range(name: str, v, lo: int, hi: int) -> None:
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"KernelOptions.{name} must be an int in {lo}..{hi} or None, got {v!r}")
