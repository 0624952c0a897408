"""The compiled instantiations of the kernels: which exist, and which a call needs.

Everything that is not a compile-time constant (group size, head tiles, slices, stages, splits) is a
launch argument. Nothing here imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import limits
from .gemv_stream_config import ARCHS as GEMV_STREAM_ARCHS
from .gemv_stream_config import DEPTH as GEMV_DEPTH, OWN_LAUNCHES, OWN_THREE_LAUNCH, TALL_LAUNCH, GemvStreamConfig
from .skinny_config import skinny_configs

HERE = Path(__file__).parent
Q_DTYPES = {"float16": 0, "bfloat16": 1}
KV_DTYPES = {"float16": 0, "bfloat16": 1, "float8_e4m3fn": 2}
E4M3_ARCHS = ("sm_89", "sm_90")  # GPUs whose kernels convert to e4m3 (cvt ... e4m3x2: the fp8 linears' inputs)
DEFAULT_ARCHS = ("sm_80", "sm_89", "sm_90")
BULK_ARCHS = ("sm_90",)  # archs on which the bulk-copy variant may be selected
PDL_ARCHS = ("sm_90",)


def pdl_enabled(arch: str) -> bool:
    """Whether the package's kernels launch with programmatic dependent launch on ``arch``: every kernel calls
    pdl_wait (kvp_pdl.cuh) before touching what the kernel before it wrote, so each may start while that one
    drains and load its weights meanwhile. KVPLAN_PDL=0 turns it off (A/B timing, debugging)."""
    return arch in PDL_ARCHS and os.environ.get("KVPLAN_PDL", "1") != "0"


@dataclass(frozen=True)
class KernelConfig:
    """One instantiation of the paged GQA/MQA decode kernel (paged_decode.cu)."""

    q_dtype: str  # "float16" | "bfloat16"
    kv_dtype: str  # "float16" | "bfloat16" | "float8_e4m3fn"
    head_dim: int  # 64 | 128 | 256
    heads_per_warp: int  # 8 | 16
    max_warps: int  # 8 | 16 (launch bounds)
    l2_prefetch: int = 2  # cp.async L2 prefetch hint: 0 none, 1 = 128 B, 2 = 256 B
    k_coalesced: int = 1  # 1: K copied as whole rows (see paged_decode.cu)
    bulk: int = 0  # 1: Hopper cp.async.bulk rows + mbarriers instead of the cp.async ring (sm_90 only)
    trace: int = 0  # 1: per-CTA timeline into the trace buffer (benchmarks)
    early_page: int = 1  # 1: first page ids loaded together with seqlens
    lazy_rescale: int = 0  # 1: rescale the accumulators only when a head's running max grows by > 2^8
    heads_in_m: int = 0  # 1: 16 heads per warp as the MMAs' M side (paged_decode_hm.cuh; one token slice)
    page_runs: int = 0  # 1 (with heads_in_m, bulk): tiles row after row, a step's K / V in one copy where it can
    max_regs: int = 0  # > 0: a register cap in place of the launch bounds
    sort_steps: int = 0  # 1: a CTA takes its steps in the address order of their pages (KVP_SORT)

    source = "paged_decode.cu"
    kernels = ("kvp_decode", "kvp_merge", "kvp_merge_few")

    def macros(self) -> list[tuple[str, str]]:
        return [
            ("KVP_QT", str(Q_DTYPES[self.q_dtype])),
            ("KVP_KVT", str(KV_DTYPES[self.kv_dtype])),
            ("KVP_D", str(self.head_dim)),
            ("KVP_HPW", str(self.heads_per_warp)),
            ("KVP_MAXW", str(self.max_warps)),
            ("KVP_L2PF", str(self.l2_prefetch)),
            ("KVP_KCOAL", str(self.k_coalesced)),
            ("KVP_BULK", str(self.bulk)),
            ("KVP_TRACE", str(self.trace)),
            ("KVP_EARLY_PAGE", str(self.early_page)),
            ("KVP_LAZY", str(self.lazy_rescale)),
            ("KVP_HM", str(self.heads_in_m)),
            ("KVP_RUN", str(self.page_runs)),
            ("KVP_MAXREG", str(self.max_regs)),
        ] + ([("KVP_SORT", "1"), ("KVP_SORT_MIN", str(limits.SORT_MIN_STEPS)),
              ("KVP_SORT_MAX", str(limits.SORT_MAX_STEPS)), ("KVP_SORT_BYTES", str(limits.SORT_BYTES))]
             if self.sort_steps else []) + limits.gqa_macros(self.head_dim, self.kv_dtype)

    @property
    def compile_cost(self) -> float:
        """Rough NVRTC seconds on one CI core (NOTES_kernel.md v11): longest jobs start first."""
        return {64: 0.65, 128: 0.85, 256: 1.1}.get(self.head_dim, 1.0)

    @property
    def name(self) -> str:
        return (f"decode_q{self.q_dtype}_kv{self.kv_dtype}_d{self.head_dim}_h{self.heads_per_warp}"
                f"_w{self.max_warps}_p{self.l2_prefetch}_k{self.k_coalesced}" + ("_bulk" if self.bulk else "")
                + ("_trace" if self.trace else "") + ("" if self.early_page else "_late_page")
                + ("_lazy" if self.lazy_rescale else "") + ("_hm" if self.heads_in_m else "")
                + ("_run" if self.page_runs else "")
                + (f"_r{self.max_regs}" if self.max_regs else "") + ("_sort" if self.sort_steps else ""))


@dataclass(frozen=True)
class MLAConfig:
    """One instantiation of the absorbed-MLA decode kernel (paged_mla_decode.cu)."""

    kv_dtype: str  # "bfloat16" | "float8_e4m3fn" (q is bfloat16)
    head_group: int  # 16 | 32 | 64 query heads per CTA
    bulk: int = 0  # 1: Hopper cp.async.bulk rows + mbarriers (sm_90); 0: 16-byte cp.async from every thread
    tokens: int = 0  # tokens per pipeline stage; 0: limits.mla_step_tokens's default for the dtype
    heads_in_m: int = 0  # 1: paged_mla_hm.cuh (16 heads as the MMAs' M; bf16, bulk copies, 32 tokens a step)
    lazy_rescale: int = 0  # heads in M: running maxima move only by more than 8 (log2)
    tma: int = 0  # heads in M: one tensor copy (TMA, 128-byte swizzle) per box of a step instead of 32 row copies

    source = "paged_mla_decode.cu"
    kernels = ("kvp_mla_decode", "kvp_mla_merge", "kvp_mla_merge_few")

    def __post_init__(self):
        if self.heads_in_m and not mla_heads_in_m_eligible(self.kv_dtype, self.head_group, self.bulk, self.tokens):
            raise ValueError(f"heads in M needs bf16 latents, {limits.MLA_HM_HEADS}-head groups, bulk copies and "
                             f"{limits.MLA_HM_TOKENS}-token steps")
        if (self.lazy_rescale or self.tma) and not self.heads_in_m:
            raise ValueError("lazy_rescale and tma are heads-in-M options")

    def macros(self) -> list[tuple[str, str]]:
        return [("KVP_KVT", str(KV_DTYPES[self.kv_dtype])), ("KVP_MLA_BULK", str(self.bulk))] \
            + limits.mla_macros(self.head_group, self.kv_dtype, self.tokens or None, bool(self.heads_in_m),
                                bool(self.tma)) \
            + ([("KVP_MLA_LAZY", "1")] if self.lazy_rescale else [])

    @property
    def compile_cost(self) -> float:
        return {16: 0.6, 32: 0.9, 64: 1.5}.get(self.head_group, 1.0)

    @property
    def name(self) -> str:
        return f"mla_kv{self.kv_dtype}_hg{self.head_group}" + ("_bulk" if self.bulk else "") \
            + (f"_t{self.tokens}" if self.tokens else "") + ("_hm" if self.heads_in_m else "") \
            + ("_lazy" if self.lazy_rescale else "") + ("_tma" if self.tma else "")


WGMMA_ARCHS = ("sm_90",)  # archs whose arch-specific target ("sm_90a") has warpgroup MMAs


@dataclass(frozen=True)
class MLAWgConfig:
    """The warpgroup-MMA absorbed-MLA decode (paged_mla_wg.cu): bf16 or fp8 e4m3 latents, 16 heads a CTA; compiled
    for the arch-specific target (wgmma exists on sm_90a only)."""

    kv_dtype: str = "bfloat16"
    heads: int = 16  # query heads per CTA: limits.MLA_WG_HEAD_GROUPS
    e4m3_mma: bool = False  # fp8 latents straight into e4m3 wgmmas (16 heads), not widened to fp16
    early_free: int = 0  # bf16: PV in this many commit groups, each group's blocks refilled once it completes
    stages: int = 2  # 3: a third stage of value blocks, P in the rope block (bf16, 16 heads; KVP_MLA_STAGES)

    source = "paged_mla_wg.cu"
    kernels = ("kvp_mla_wg", "kvp_mla_merge", "kvp_mla_merge_few")
    arch_suffix = "a"
    compile_cost = 0.5

    def __post_init__(self):
        if self.kv_dtype not in ("bfloat16", "float8_e4m3fn"):
            raise ValueError("the warpgroup-MMA MLA path takes bf16 or fp8 e4m3 latents")
        if self.heads not in limits.MLA_WG_HEAD_GROUPS:
            raise ValueError(f"the warpgroup-MMA MLA path takes {limits.MLA_WG_HEAD_GROUPS} heads a CTA")
        if self.e4m3_mma and (self.kv_dtype != "float8_e4m3fn" or self.heads != 16):
            raise ValueError("e4m3 MMAs take fp8 e4m3 latents and 16 heads a CTA")
        if isinstance(self.early_free, bool) or self.early_free not in (0, 2, 4) \
                or (self.early_free and self.kv_dtype != "bfloat16"):
            raise ValueError(f"early_free must be 0, 2 or 4 (PV commit groups; bf16 latents), got {self.early_free!r}")
        if isinstance(self.stages, bool) or self.stages not in limits.MLA_WG_STAGES \
                or (self.stages == 3 and (self.kv_dtype != "bfloat16" or self.heads != 16)):
            raise ValueError(f"wg_stages must be 2, or 3 for bf16 latents at 16 heads a CTA, got {self.stages!r}")

    @property
    def smem(self) -> int:
        return limits.mla_wg_smem(self.kv_dtype, self.heads, self.e4m3_mma, self.stages)

    def macros(self) -> list[tuple[str, str]]:
        out = [("KVP_KVT", str(KV_DTYPES[self.kv_dtype])), ("KVP_MLA_WG_HEADS", str(self.heads)),
               ("KVP_MLA_WG_SMEM", str(self.smem)), ("KVP_MERGE_FEW", str(limits.MERGE_FEW_SPLITS))]
        if self.early_free:
            out.append(("KVP_MLA_EARLY", str(self.early_free)))
        if self.stages != 2:
            out.append(("KVP_MLA_STAGES", str(self.stages)))
        return out + [("KVP_MLA_F8MMA", "1"), ("KVP_MLA_VALUE_WGS", str(limits.MLA_WG_E4M3_VALUE_WGS)),
                      ("KVP_MLA_P_BUFFERS", str(limits.MLA_WG_E4M3_P_BUFFERS))] if self.e4m3_mma else out

    @property
    def threads(self) -> int:
        """One warpgroup; for the e4m3 MMAs one of scores and limits.MLA_WG_E4M3_VALUE_WGS of values."""
        return limits.MLA_WG_E4M3_THREADS if self.e4m3_mma else 128

    @property
    def name(self) -> str:
        return f"mla_wg_kv{self.kv_dtype}" + ("" if self.heads == 16 else f"_h{self.heads}") + \
            ("_e4m3mma" if self.e4m3_mma else "") + (f"_early{self.early_free}" if self.early_free else "") + \
            (f"_s{self.stages}" if self.stages != 2 else "")


@dataclass(frozen=True)
class DecodeWgConfig:
    """The warpgroup-MMA GQA / MQA decode (paged_decode_wg.cu): 16-bit caches (q's dtype), 16, 32 or 64 query heads
    of one KV head a CTA, ``stages`` 64-token steps in flight; compiled for the arch-specific target (sm_90a)."""

    dtype: str = "bfloat16"  # q, cache and output
    head_dim: int = 128
    heads: int = 64
    stages: int = 4  # per warpgroup
    warpgroups: int = 1  # 2: alternate steps, one's softmax beside the other's MMAs

    source = "paged_decode_wg.cu"
    kernels = ("kvp_decode_wg", "kvp_decode_wg_merge")
    arch_suffix = "a"
    compile_cost = 0.4

    def __post_init__(self):
        if self.dtype not in Q_DTYPES:
            raise ValueError(f"the warpgroup-MMA decode takes 16-bit caches ({', '.join(Q_DTYPES)}), "
                             f"got {self.dtype!r}")
        if self.head_dim not in limits.DECODE_WG_HEAD_DIMS or self.heads not in limits.DECODE_WG_HEAD_GROUPS:
            raise ValueError(f"the warpgroup-MMA decode takes head_dim {limits.DECODE_WG_HEAD_DIMS} and "
                             f"{limits.DECODE_WG_HEAD_GROUPS} heads a CTA")
        if isinstance(self.stages, bool) or not isinstance(self.stages, int) \
                or not 2 <= self.stages <= limits.DECODE_WG_MAX_STAGES:
            raise ValueError(f"stages must be an int in 2..{limits.DECODE_WG_MAX_STAGES}, got {self.stages!r}")
        if self.warpgroups not in (1, 2) or isinstance(self.warpgroups, bool):
            raise ValueError(f"warpgroups must be 1 or 2, got {self.warpgroups!r}")

    def macros(self) -> list[tuple[str, str]]:
        return [("KVP_QT", str(Q_DTYPES[self.dtype])), ("KVP_D", str(self.head_dim)),
                ("KVP_WG_HEADS", str(self.heads)), ("KVP_WG_STAGES", str(self.stages)),
                ("KVP_WG_GROUPS", str(self.warpgroups)), ("KVP_WG_SMEM", str(self.smem))]

    @property
    def smem(self) -> int:
        return limits.decode_wg_smem(self.head_dim, self.heads, self.stages, self.warpgroups)

    @property
    def threads(self) -> int:
        return 128 * self.warpgroups

    @property
    def name(self) -> str:
        return f"decode_wg_{self.dtype}_d{self.head_dim}_h{self.heads}_s{self.stages}" + \
            ("_wg2" if self.warpgroups == 2 else "")


def decode_wg_heads(group: int) -> int:
    """Query heads a CTA of the warpgroup-MMA decode takes: the largest of limits.DECODE_WG_HEAD_GROUPS dividing the
    group (one CTA then reads each KV step once for as many heads as it can), 0 where none does."""
    return next((h for h in sorted(limits.DECODE_WG_HEAD_GROUPS, reverse=True) if group % h == 0), 0)


def decode_wg_default(group: int, head_dim: int) -> bool:
    """Whether a plan that can take the warpgroup-MMA decode does so by default (16-bit caches on sm_90): groups of
    a multiple of 64 query heads per KV head. H200, session 31 (benchmarks/probes/decode_wg_ab.py, shuffled pages), µs
    default -> warpgroup MMAs (SDPA on a contiguous copy): MQA 64q/1kv B8 32K 71.3 -> 55.1 (63.4), B1 32K 28.6 ->
    17.5 (16.4), B64 4K 70.4 -> 58.7 (58.4), head_dim 64 B8 32K 52.8 -> 39.5 (42.8), 128q/1kv B8 16K 77.4 -> 54.6
    (62.3). Groups of 16 stay with heads in M (64q/4kv B16 16K 137 against 145-149: 80-82% of read against 86%);
    groups of 32 were not measured on their own shape."""
    return group % 64 == 0


def decode_wg_stages(head_dim: int, heads: int, warpgroups: int = 1) -> int:
    """Default depth per warpgroup: 4 steps for one (64 KB of K and V in flight at head_dim 128; 4 or 6 measured
    level), 2 for two at 64 heads and head_dim 128 (what fits 227 KB), else 3."""
    if warpgroups == 1:
        return 4
    return 2 if head_dim == 128 and heads == 64 else 3


def decode_wg_warpgroups(group: int, head_dim: int) -> int:
    """Default warpgroups a CTA: two on alternate steps at head_dim 128 (one's softmax runs beside the other's MMAs:
    H200, session 31, 64 heads a CTA, MQA B8 32K 70.2 -> 55.1 us, 128q/1kv B8 16K 68.6 -> 54.6), one at head_dim 64
    (64 heads a CTA, 4 steps: 39.5 us against 43.5 with two)."""
    return 2 if head_dim == 128 else 1


class _AsWritten:
    """A source compiled once, without macros (its class names the source, kernels, name and compile cost)."""

    def macros(self) -> list[tuple[str, str]]:
        return []


@dataclass(frozen=True)
class ReadProbeConfig(_AsWritten):
    """The read-bandwidth probe kernel (read_probe.cu)."""

    source = "read_probe.cu"
    kernels = ("kvp_read_probe", "kvp_read_pages", "kvp_walk_bulk")
    name = "read_probe"
    compile_cost = 0.05


DELTANET_ACT_DTYPES = {"float16": 0, "bfloat16": 1}
DELTANET_STATE_DTYPES = {"float16": 0, "bfloat16": 1, "float32": 2}
DELTANET_KEY_DIMS = (128,)  # head dims compiled (Qwen3-Next); others take the torch path


@dataclass(frozen=True)
class DeltaNetStepConfig:
    """One instantiation of deltanet_step.cu."""

    act_dtype: str
    state_dtype: str
    key_dim: int = 128

    source = "deltanet_step.cu"
    kernels = ("kvp_state_conv", "kvp_dn_delta")
    compile_cost = 0.35

    def macros(self) -> list[tuple[str, str]]:
        return [("KVP_DN_T", str(DELTANET_ACT_DTYPES[self.act_dtype])),
                ("KVP_DN_S", str(DELTANET_STATE_DTYPES[self.state_dtype])),
                ("KVP_DN_DK", str(self.key_dim))]

    @property
    def name(self) -> str:
        return f"deltanet_{self.act_dtype}_state{self.state_dtype}_dk{self.key_dim}"


@dataclass(frozen=True)
class MambaStepConfig:
    """One instantiation of mamba_step.cu (activations and state slots as for the DeltaNet step)."""

    act_dtype: str
    state_dtype: str

    source = "mamba_step.cu"
    kernels = ("kvp_state_conv", "kvp_mb_ssm", "kvp_mb_norm")
    compile_cost = 0.3

    def macros(self) -> list[tuple[str, str]]:
        return [("KVP_DN_T", str(DELTANET_ACT_DTYPES[self.act_dtype])),
                ("KVP_DN_S", str(DELTANET_STATE_DTYPES[self.state_dtype]))]

    @property
    def name(self) -> str:
        return f"mamba_{self.act_dtype}_state{self.state_dtype}"


@dataclass(frozen=True)
class Mamba1ScanConfig(MambaStepConfig):
    """One instantiation of mamba1_scan.cu (Jamba's Mamba-1 scan and decode step; dtypes as for Mamba-2's step)."""

    source = "mamba1_scan.cu"
    kernels = ("kvp_state_conv", "kvp_m1_scan16", "kvp_m1_scan4")
    compile_cost = 0.5

    @property
    def name(self) -> str:
        return f"mamba1_{self.act_dtype}_state{self.state_dtype}"


def all_mamba_configs() -> list[MambaStepConfig]:
    """The instantiations CI compiles, Mamba-2's step and Mamba-1's scan: state slots in the activations' dtype or
    float32."""
    return [make(a, s) for make in (MambaStepConfig, Mamba1ScanConfig) for a in DELTANET_ACT_DTYPES
            for s in (a, "float32")]


def all_deltanet_configs() -> list[DeltaNetStepConfig]:
    """The instantiations CI compiles: state slots in the activations' dtype or float32."""
    return [DeltaNetStepConfig(a, s, d) for a in DELTANET_ACT_DTYPES for s in (a, "float32")
            for d in DELTANET_KEY_DIMS]


KDA_HEAD_DIMS = (128,)  # head dims kda_step.cu is compiled for (Kimi Linear's); others take the torch path


@dataclass(frozen=True)
class KdaStepConfig:
    """One instantiation of kda_step.cu: the activations', and the convolution window's dtype (the recurrent state
    is float32 in every one, as vLLM keeps it: mamba_utils.py kda_state_dtype), and the head dim."""

    act_dtype: str
    conv_dtype: str
    head_dim: int = 128

    source = "kda_step.cu"
    kernels = ("kvp_kda_step",)
    compile_cost = 0.35

    def macros(self) -> list[tuple[str, str]]:
        return [("KVP_DN_T", str(DELTANET_ACT_DTYPES[self.act_dtype])),
                ("KVP_DN_S", str(DELTANET_STATE_DTYPES[self.conv_dtype])),
                ("KVP_KDA_D", str(self.head_dim))]

    @property
    def name(self) -> str:
        return f"kda_{self.act_dtype}_window{self.conv_dtype}_d{self.head_dim}"


def all_kda_configs() -> list[KdaStepConfig]:
    """The instantiations CI compiles: the window in the activations' dtype (the model's, vLLM's default) or float32
    (--mamba-cache-dtype float32)."""
    return [KdaStepConfig(a, w, d) for a in DELTANET_ACT_DTYPES for w in (a, "float32") for d in KDA_HEAD_DIMS]


@dataclass(frozen=True)
class RopeCacheConfig:
    """One instantiation of rope_cache.cu (GQA and MLA entry points): activations fp16/bf16, the cache in their
    dtype or fp8 (e4m3)."""

    act_dtype: str  # "float16" | "bfloat16"
    fp8_cache: bool = False

    source = "rope_cache.cu"
    kernels = ("kvp_rope_cache", "kvp_rope_cache_v8", "kvp_mla_rope_cache", "kvp_mla_rope_cache_v8")
    compile_cost = 0.3

    def macros(self) -> list[tuple[str, str]]:
        return [("KVP_RC_T", str(Q_DTYPES[self.act_dtype])), ("KVP_RC_FP8", str(int(self.fp8_cache)))]

    @property
    def kv_dtype(self) -> str:
        return "float8_e4m3fn" if self.fp8_cache else self.act_dtype

    @property
    def name(self) -> str:
        return f"rope_cache_{self.act_dtype}" + ("_fp8" if self.fp8_cache else "")


def all_rope_cache_configs() -> list[RopeCacheConfig]:
    return [RopeCacheConfig(a, f) for a in Q_DTYPES for f in (False, True)]


@dataclass(frozen=True)
class NormConfig:
    """One instantiation of norm.cu (residual add + RMS norm) per activations dtype."""

    act_dtype: str  # "float16" | "bfloat16"

    source = "norm.cu"
    kernels = tuple(f"kvp_add_rms_norm_{items}" for items in (1, 2, 4, 8, 16))  # norm.cu ITEMS
    compile_cost = 0.2

    def macros(self) -> list[tuple[str, str]]:
        return [("KVP_NORM_T", str(Q_DTYPES[self.act_dtype]))]

    @property
    def name(self) -> str:
        return f"norm_{self.act_dtype}"


@dataclass(frozen=True)
class Mxfp4Config(_AsWritten):
    """mxfp4.cu: mxfp4 experts -> bf16 (one instantiation)."""

    source = "mxfp4.cu"
    kernels = ("kvp_mxfp4_to_bf16",)
    name = "mxfp4_to_bf16"
    compile_cost = 0.2


@dataclass(frozen=True)
class PageOrderConfig(_AsWritten):
    """page_order.cu: block tables with each sequence's full pages sorted by address (one instantiation)."""

    source = "page_order.cu"
    kernels = ("kvp_sort_pages",)
    name = "page_order"
    compile_cost = 0.1


@dataclass(frozen=True)
class DeltaNetPrefillConfig(_AsWritten):
    """deltanet_prefill.cu: the DeltaNet prefill's causal convolution, per-chunk triangular solve, chunk-to-chunk
    state recurrence and gated output norm (one instantiation)."""

    source = "deltanet_prefill.cu"
    kernels = ("kvp_dn_conv_chunks_bf16", "kvp_dn_conv_chunks_f16", "kvp_dn_scan", "kvp_dn_gated_norm_bf16",
               "kvp_dn_gated_norm_f16", "kvp_dn_solve")
    name = "deltanet_prefill"
    compile_cost = 0.1


@dataclass(frozen=True)
class SsdPrefillConfig(_AsWritten):
    """ssd_prefill.cu: the Mamba-2 prefill's convolution, chunk states, state passing and chunk scan (one
    instantiation)."""

    source = "ssd_prefill.cu"
    kernels = ("kvp_ssd_conv_bf16", "kvp_ssd_conv_f16", "kvp_ssd_chunk_state", "kvp_ssd_state_pass",
               "kvp_ssd_chunk_scan")
    name = "ssd_prefill"
    compile_cost = 0.1


@dataclass(frozen=True)
class MoeGatherSumConfig(_AsWritten):
    """moe_gather_sum.cu: the grouped MoE path's weighted sum of each token's pair rows (one instantiation)."""

    source = "moe_gather_sum.cu"
    kernels = ("kvp_moe_gather_sum_bf16", "kvp_moe_gather_sum_f16")
    name = "moe_gather_sum"
    compile_cost = 0.1


@dataclass(frozen=True)
class GatedActConfig(_AsWritten):
    """gated_act.cu: a gated MLP's act(gate) * up in one pass (one instantiation)."""

    source = "gated_act.cu"
    kernels = ("kvp_gated_act_bf16", "kvp_gated_act_f16")
    name = "gated_act"
    compile_cost = 0.1


@dataclass(frozen=True)
class Fp8QuantConfig(_AsWritten):
    """fp8_quant.cu: activations to e4m3 for an fp8 linear, with a static scale or a scale per token and 128 columns,
    and block-scaled e4m3 weights back to bf16 (one instantiation; runs on sm_89 and later)."""

    source = "fp8_quant.cu"
    kernels = ("kvp_fp8_quant_bf16", "kvp_fp8_quant_f16", "kvp_fp8_group_quant_bf16", "kvp_fp8_group_quant_f16",
               "kvp_fp8_block_dequant_bf16")
    name = "fp8_quant"
    compile_cost = 0.1


@dataclass(frozen=True)
class RouterConfig:
    """One instantiation of router.cu per logits dtype."""

    logits_dtype: str  # "float16" | "bfloat16" | "float32"

    DTYPES = {"float16": 0, "bfloat16": 1, "float32": 2}
    source = "router.cu"
    kernels = ("kvp_router",)
    compile_cost = 0.2

    def macros(self) -> list[tuple[str, str]]:
        return [("KVP_RT_T", str(self.DTYPES[self.logits_dtype]))]

    @property
    def name(self) -> str:
        return f"router_{self.logits_dtype}"


@dataclass(frozen=True)
class LaunchShape:
    """Warp layout of one CTA for a group of ``G`` query heads per KV head."""

    heads_per_warp: int
    head_tiles: int  # warps sharing one token slice (HT)
    max_warps: int


def dtype_pairs() -> list[tuple[str, str]]:
    """(q dtype, kv dtype) pairs the GQA kernel supports: 16-bit caches match q; fp8 takes either."""
    return [("float16", "float16"), ("bfloat16", "bfloat16"),
            ("float16", "float8_e4m3fn"), ("bfloat16", "float8_e4m3fn")]


def launch_shape(group: int, head_dim: int, heads_per_warp: int | None = None) -> LaunchShape:
    """Heads per warp and head tiles for ``group`` query heads per KV head (1..128); ``heads_per_warp`` (8 or 16)
    overrides the default choice (benchmarks)."""
    if not 1 <= group <= limits.MAX_GROUP:
        raise ValueError(f"query heads per KV head must be 1..{limits.MAX_GROUP}, got {group}")
    # 16 heads per warp doubles the q and accumulator registers: too many at head_dim 256
    hpw = heads_per_warp or (8 if (group <= 8 or head_dim >= 256) else 16)
    tiles = 1
    while tiles * hpw < group:
        tiles *= 2
    return LaunchShape(hpw, tiles, 16 if tiles > 8 else 8)


def bulk_eligible(kv_dtype: str, head_dim: int) -> bool:
    """Shapes the bulk-copy variant handles: rows of 128*n bytes (head tiles > 1 share one ring, one slice)."""
    return (head_dim * limits.kv_bytes(kv_dtype)) % 128 == 0


def heads_in_m_default(heads_per_warp: int, head_dim: int) -> bool:
    """Heads in M (paged_decode_hm.cuh) by default where a warp holds 16 heads and head_dim <= 128 (one slice): the
    step is bound by each warp's instructions there (H200, session 11, 16-byte output stores: MQA 64q/1kv B8 32K
    87.4 -> 72.3 us with the lazy rescale off, 3 CTAs per SM instead of 2; benchmarks/RESULTS.md)."""
    return heads_per_warp == 16 and head_dim <= 128


def lazy_default(heads_per_warp: int, heads_in_m: bool = False) -> bool:
    """The lazy rescale by default where a warp holds 16 heads in the default layout: there the step is bound by the
    warp's instructions, not by memory (H200, session 10: MQA 64q/1kv B8 32K 92.6 -> 90.2 us, 64q/4kv B16 16K
    138.9 -> 136.6). Not with heads in M: its registers then allow 3 CTAs per SM instead of 2 (MQA 82.6 -> 72.3 us)."""
    return heads_per_warp == 16 and not heads_in_m


def bulk_default(kv_dtype: str, head_tiles: int = 1) -> bool:
    """Bulk copies by default for 16-bit caches, and for fp8 where warps share a ring (head tiles > 1 here; KV
    heads per CTA in decode_launch): fp8 rows one per copy measured 6-10% slower (NOTES_kernel.md v7)."""
    return kv_dtype != "float8_e4m3fn" or head_tiles > 1


def mla_head_group(q_heads: int) -> int:
    """Query heads per CTA for ``q_heads`` heads on a rank (the smallest group that holds them, at most 64)."""
    for hg in limits.MLA_HEAD_GROUPS:
        if q_heads <= hg:
            return hg
    return limits.MLA_HEAD_GROUPS[-1]


def all_configs(arch: str | None = None) -> list[KernelConfig]:
    """Every GQA instantiation a default launch can need on ``arch`` (every arch when None).

    On sm_90 a shape that takes the bulk path by default does not also build its cp.async-ring twin
    (``KernelOptions(bulk=False)`` compiles that on first use).
    """
    seen: dict[KernelConfig, None] = {}
    for qd, kvd in dtype_pairs():
        for d in limits.HEAD_DIMS:
            for g in range(1, limits.MAX_GROUP + 1):
                s = launch_shape(g, d)
                bulk = int(arch in BULK_ARCHS and bulk_default(kvd, s.head_tiles) and bulk_eligible(kvd, d))
                hm = heads_in_m_default(s.heads_per_warp, d)
                seen[KernelConfig(qd, kvd, d, s.heads_per_warp, s.max_warps, bulk=bulk,
                                  lazy_rescale=int(lazy_default(s.heads_per_warp, hm)), heads_in_m=int(hm))] = None
    return list(seen)


def mla_heads_in_m_eligible(kv_dtype: str, head_group: int, bulk: int, tokens: int = 0) -> bool:
    """Whether the heads-in-M MLA path can run this instantiation (paged_mla_hm.cuh): its 8 warps are 4 token tiles
    x 2 halves of the latent row over 32-token steps of bf16 rows brought by bulk copies."""
    return kv_dtype == "bfloat16" and head_group == limits.MLA_HM_HEADS and bool(bulk) \
        and tokens in (0, limits.MLA_HM_TOKENS)


def mla_heads_in_m_default(kv_dtype: str, head_group: int, bulk: int) -> bool:
    """Heads in M is the default wherever it can run (with TMA tensor copies under the default driver launcher)."""
    return mla_heads_in_m_eligible(kv_dtype, head_group, bulk)


def mla_wgmma_default(kv_dtype: str, q_heads: int, block_size: int = limits.MLA_WG_TOKENS) -> bool:
    """Where the warpgroup-MMA path is the default (on sm_90). More than 16 heads on a rank (H200, session 23, 32
    heads a CTA: 128 heads 2.5-2.6x faster than the head tiles with bf16 latents, 1.35x with fp8); fp8 latents
    through the e4m3 MMAs (session 25: 16 heads 1.6-1.9x faster than the head tiles from B8 32K to B64 16K, level
    at B1); bf16 at 16 heads with the early refill where pages hold a whole 64-token step (session 26, against heads
    in M: B32 8K 82.9 / 84.5 us, B8 32K 82.5 / 85.4, B128 4K 151.8 / 157.2, B1 32K 26.3 / 29.6, B1 4K 12.2 / 12.5).
    Smaller pages keep heads in M: the warpgroup kernel's step is then one tensor copy per (page, 64-dim block), 36
    a step at 16 tokens, and DeepSeek-V2-Lite's decode at 407 sequences with 16-token pages ran 53.6 ms against 43.2
    with heads in M (verify, session 26 call 3)."""
    return q_heads > limits.MLA_HM_HEADS or kv_dtype == "float8_e4m3fn" or block_size >= limits.MLA_WG_TOKENS


def mla_early_free_default(kv_dtype: str, head_group: int, stages: int = 2) -> int:
    """PV commit groups of the warpgroup-MMA path (each group's latent blocks refilled as soon as its MMAs complete,
    the rope block after QK; paged_mla_wg.cu KVP_MLA_EARLY): 2 for bf16 at 16 heads a CTA, where the kernel waits on
    memory (H200, session 26: L2-resident 54 against 85 us from DRAM at B32 8K) and the earlier refill gains 2.4-3.7%
    (4 groups: 10-11% slower, their barriers); none at 32 heads a CTA, compute-bound (128 heads B32 4K 166.2 against
    127.5 us with 2 groups), and none for fp8 (widened or e4m3, their own refill points). At many waves of CTAs
    (B400 8K: 18) it costs 5% against no early refill (1007.4 against 958.9 us), still ahead of heads in M (1047.0),
    while at one split and 2-8 waves heads in M is fastest (session 27): no per-launch choice is made, since every MLA
    shape of issue 14's bar (B 1-128) is one wave, where the early refill is ahead. None in the opt-in three-stage
    form (``stages=3``, not measured): its third stage gives each value copy a whole step more, the rope block holds
    P until PV is done (no refill after QK), and with the refill the two-stage kernel's own step grew (L2-resident
    B32 8K 54.4 -> 71.9 us, session 26); ``early_free=2`` with it is there for the probe's A/B."""
    return 2 if kv_dtype == "bfloat16" and head_group == 16 and stages == 2 else 0


def mla_e4m3_mma_default() -> bool:
    """Whether fp8 latents at 16 heads a CTA take the e4m3 wgmmas (two warpgroups, paged_mla_wg.cu) rather than
    being widened to fp16: yes (H200, session 25: 16 heads B32 8K 63.0 against 112.2 us widened, B64 16K 184.2
    against 415.6; B1 4K 15.8 against 13.2, its one loss, a fixed cost of 2.6 us)."""
    return True


def mla_wgmma_heads(q_heads: int, kv_dtype: str = "bfloat16") -> int:
    """Heads a CTA of the warpgroup-MMA path: 32 where a rank has more than 16 (half the CTAs, each latent read
    half as often from L2), else 16; fp8 latents always 16, the e4m3 MMAs' tile (H200, session 25: 128 heads B8 8K
    102.1 us against 123.5 widened at 32 heads a CTA, B32 4K 190.0 against 232.2; 64 heads B32 8K 177.6 against
    237.9)."""
    return 16 if q_heads <= 16 or kv_dtype == "float8_e4m3fn" else 32


def all_mla_configs(arch: str | None = None) -> list[MLAConfig]:
    """Every MLA instantiation a default launch can need on ``arch`` (bulk copies on sm_90; heads in M with TMA)."""
    bulk = int(arch in BULK_ARCHS)
    out = []
    for kvd in ("bfloat16", "float8_e4m3fn"):
        for hg in limits.MLA_HEAD_GROUPS:
            hm = int(mla_heads_in_m_default(kvd, hg, bulk))
            out.append(MLAConfig(kvd, hg, bulk, heads_in_m=hm, tma=hm))
    return out


# Every instantiation a default launch can need, per arch: what CI compiles (kvplan/kernels/batch.py). A new kernel
# source registers its configs here with one entry, a function ``arch -> [config, ...]``; a config is a frozen
# dataclass with ``source`` (the .cu file), ``kernels`` (entry points), ``name``, ``macros()`` and, optionally,
# ``compile_cost`` (rough seconds, for scheduling; 1.0 when absent).
INSTANTIATION_SETS = (
    all_configs,
    all_mla_configs,
    lambda arch: all_deltanet_configs(),
    lambda arch: all_mamba_configs(),
    lambda arch: all_kda_configs(),
    lambda arch: [ReadProbeConfig()],
    lambda arch: [MLAWgConfig(d, h, early_free=mla_early_free_default(d, h)) for d in ("bfloat16", "float8_e4m3fn")
                  for h in limits.MLA_WG_HEAD_GROUPS] + [MLAWgConfig("float8_e4m3fn", 16, e4m3_mma=True)]
    if arch in WGMMA_ARCHS else [],
    # the warpgroup-MMA GQA decode's defaults (groups of 64+: 64 heads a CTA); its opt-in forms compile at first use
    # and in tests/test_kernel_compile.py
    lambda arch: [DecodeWgConfig(d, hd, 64, decode_wg_stages(hd, 64, decode_wg_warpgroups(64, hd)),
                                 decode_wg_warpgroups(64, hd)) for d in Q_DTYPES for hd in limits.DECODE_WG_HEAD_DIMS]
    if arch in WGMMA_ARCHS else [],
    skinny_configs,
    lambda arch: all_rope_cache_configs(),
    lambda arch: [RouterConfig(d) for d in RouterConfig.DTYPES],
    lambda arch: [NormConfig(d) for d in Q_DTYPES],
    lambda arch: [Mxfp4Config()],
    lambda arch: [PageOrderConfig()],
    lambda arch: [DeltaNetPrefillConfig(), SsdPrefillConfig(), MoeGatherSumConfig(), GatedActConfig(),
                  Fp8QuantConfig()],
    # both launches, CTAs in order and rotated, and the row-owned form's three (verify times every form,
    # kvplan/gpu/gemm.py); an MoE layer's experts at one token in both launches (kvplan/gpu/ffn.py)
    lambda arch: [GemvStreamConfig(d, rotate=r) for d in (GEMV_DEPTH, TALL_LAUNCH[1]) for r in (False, True)]
    + [GemvStreamConfig(d, own=True) for _, d in OWN_LAUNCHES + (OWN_THREE_LAUNCH,)]
    + [GemvStreamConfig(d, gather=True) for d in (GEMV_DEPTH, TALL_LAUNCH[1])] if arch in GEMV_STREAM_ARCHS else [],
)
