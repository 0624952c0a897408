"""How fast decode runs, two numbers per batch size:

- roofline: the bytes one step must read (plan/work.py) / achievable bandwidth. The physical floor: no engine
  decodes faster, and none reaches it (measured steps are 1.1x to 4x it).
- engine estimate: what a serving engine takes per step, calibrated on public measurements:
      roofline
    + layer_us x layers                                      launches and small kernels, per layer
    + 2 x layers x (allreduce_us x log2(TP) + bytes / link)  two all-reduces per layer at TP > 1
  With D > 1 data-parallel ranks of an MoE model the MoE's all-reduce gives way to the default all2all backend's
  all-gather of the D ranks' tokens and reduce-scatter back (allgather_reducescatter, vLLM 0.32): per layer one
  all-reduce over TP (attention) + those two over the T x D ranks, each at allreduce_us x log2(ranks) + bytes / link
  (every layer priced as an MoE layer).
  With -dcp D > 1 each attention layer adds three collectives over its D ranks (plan/work.py dcp_exchange: the query
  all-gather, the LSE all-gather, the output reduce-scatter; under --dcp-comm-backend a2a the query all-gather and
  one all-to-all of outputs and LSEs, two before vLLM 0.21), each at allreduce_us x log2(D) + bytes / link; a
  prefill chunk after a cache adds its own (MLA: the cached latent rows all-gathered; chunk_basis's `dcp`).
  With -pcp P > 1 (vLLM 0.32+ gives each decode request one PCP owner) a step is one rank's ceil(batch / P)
  requests through the TP group's weights and their own cache, the MoE layers over the P ranks' tokens with the
  experts split over T x P, plus the rank's collectives over its P ranks (plan/work.py pcp_exchange: the latent KV
  gathered each layer, the MoE's all-gathers and reduce-scatter, the hidden states gathered to sample), each at
  allreduce_us x log2(P) + bytes / link. On 0.27-0.31 every rank runs the whole batch (engines/vllm_pcp.py
  decodes_replicated): pcp 1's step at that batch, but the MoE layers over P copies of each token with the experts
  split over T x P, and the same collectives less the latent KV's.
    + matmul FLOPs / (dense peak x gemm_efficiency)          rows padded to the MMA tile; + attention FLOPs
  A prefill chunk divides its FLOPs by prefill_efficiency instead, but never costs less than one tile of rows at
  gemm_efficiency (compute_ms: a 1-token chunk runs a batch-1 decode step's GEMMs).
  The three constants per GPU are fitted offline (benchmarks/calibrate_decode.py) with each source left out
  in turn, and shipped as data in plan/catalog.py."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Optional

from ..model.precision import DTYPE_BYTES, Precision
from ..model.spec import ModelSpec
from .catalog import Compute, SpeedProfile
from .work import PassWork, decode_work

ROOFLINE_LABEL = ("physical floor: (weights read by stored precision, routed experts as far as the batch touches "
                  "them, + batch x KV read) / achievable bandwidth (datasheet x 0.89)")
ENGINE_LABEL = ("engine estimate: roofline + per-layer fixed cost + all-reduce latency at TP > 1 + matmul FLOPs "
                "over the dense peak, constants fitted on public vLLM/SGLang/TensorRT-LLM/LMDeploy measurements")


@dataclass(frozen=True)
class Basis:
    """The parts of one forward pass's time that need no fitted constant, and what the constants multiply."""

    roofline_ms: float  # bytes / achievable bandwidth
    layer_units: int  # decoder layers: what layer_us multiplies
    allreduce_calls: float  # 2 x layers x log2(TP): what allreduce_us multiplies
    allreduce_bytes_ms: float  # the all-reduces' bytes over the link
    peak_ms: float  # FLOPs at the dense peak: what 1/efficiency multiplies
    tile_ms: float  # one MMA tile of rows through the weights at the dense peak: the compute term's floor (engine_ms)


def basis(work: PassWork, bandwidth: float, compute: Compute) -> Basis:
    flops_ms = sum(f / compute.peak(stored) for stored, f in work.linear_flops.items()) * 1e3
    flops_ms += work.attention_flops / compute.peak(work.dtype) * 1e3
    latency, moved = collectives(work)
    tile_ms = sum(f / compute.peak(stored) for stored, f in (work.tile_flops or {}).items()) * 1e3
    return Basis(work.bytes / bandwidth * 1e3, work.layers, latency, moved / compute.link * 1e3, flops_ms, tile_ms)


def collectives(work: PassWork) -> tuple:
    """(what allreduce_us multiplies, bytes one GPU sends) of the pass's collectives."""
    tp = work.tp
    calls = 2 * work.layers if tp > 1 else 0
    activation = work.tokens * work.hidden_size * DTYPE_BYTES.get(work.dtype, 2)
    ring = 2 * (tp - 1) / tp  # bytes each GPU sends in a ring all-reduce, per byte reduced
    if work.dp > 1:  # attention's all-reduce over TP; the MoE's all-gather + reduce-scatter over T x D ranks
        ranks = tp * work.dp
        latency = work.layers * math.log2(tp) + 2 * work.layers * math.log2(ranks)
        moved = work.layers * (ring * activation + 2 * (ranks - 1) / ranks * activation * work.dp)
    else:
        latency, moved = calls * math.log2(tp) if tp > 1 else 0, calls * ring * activation
    # -dcp D: attention's query / LSE all-gathers and output reduce-scatter over D ranks; -pcp P: the KV, MoE and
    # output gathers over P ranks (work.pcp_exchange)
    for exchange in (work.dcp, work.pcp):
        if exchange is not None:
            latency += exchange.calls * math.log2(exchange.ranks)
            moved += exchange.bytes_sent
    return latency, moved


def chunk_basis(work: PassWork, bandwidth: float, compute: Compute):
    """basis() of `work` with other kv_bytes, attention_flops and -dcp exchange (`dcp`: work.dcp_exchange of the
    chunk, which depends on the cache it follows), as a function of those: the prefill chunks of one size differ in
    nothing else (plan/prefill.py walks up to 32,768 of them). The same arithmetic in the same order as basis(), the
    rest worked out once, so each chunk's figures are basis()'s to the last bit."""
    fixed = basis(work, bandwidth, compute)
    weights = sum(work.weight_bytes.values())
    linear_ms = sum(f / compute.peak(stored) for stored, f in work.linear_flops.items()) * 1e3
    attention_peak = compute.peak(work.dtype)

    def at(kv_bytes: float, attention_flops: float, dcp=None) -> Basis:
        flops_ms = linear_ms
        flops_ms += attention_flops / attention_peak * 1e3
        calls, moved_ms = fixed.allreduce_calls, fixed.allreduce_bytes_ms
        if dcp is not None:
            latency, moved = collectives(replace(work, dcp=dcp))
            calls, moved_ms = latency, moved / compute.link * 1e3
        return Basis((weights + kv_bytes) / bandwidth * 1e3, fixed.layer_units, calls, moved_ms, flops_ms,
                     fixed.tile_ms)
    return at


def engine_ms(b: Basis, layer_us: float, allreduce_us: float, efficiency: float,
              tile_efficiency: Optional[float] = None) -> float:
    """The engine estimate of one forward pass (the formula the calibration fits, term by term). The compute term is
    at least one MMA tile of rows through the weights at `tile_efficiency` (decode's gemm_efficiency, fitted on steps
    of a tile or more): a prefill chunk of a few tokens runs the GEMMs of a batch-1 decode step, whatever prefill's
    own efficiency (fitted on long chunks) says. A decode step's FLOPs are never below the tile's: no floor there."""
    return (b.roofline_ms + b.layer_units * layer_us * 1e-3 + b.allreduce_calls * allreduce_us * 1e-3
            + b.allreduce_bytes_ms + compute_ms(b, efficiency, tile_efficiency))


def compute_ms(b: Basis, efficiency: float, tile_efficiency: Optional[float] = None) -> float:
    """engine_ms' compute term: FLOPs at the peak / efficiency, at least the tile's at `tile_efficiency`."""
    compute = b.peak_ms / efficiency
    floor = b.tile_ms / (efficiency if tile_efficiency is None else tile_efficiency)
    # the larger of the two, for floats and the calibration's arrays alike: x * True + y * False is x to the bit
    return compute * (compute >= floor) + floor * (compute < floor)


@dataclass(frozen=True)
class DecodePoint:
    batch: int
    itl_ms: float  # engine estimate: ms per decode step = per output token of each sequence
    roofline_itl_ms: float  # the physical floor
    tokens_per_s: float  # output tokens per second of the whole batch (engine estimate)
    fits: bool  # the batch's sequences of `context` tokens fit the KV budget


@dataclass(frozen=True)
class Decode:
    context: int
    points: tuple  # DecodePoint per batch: 1, max concurrency and every asked batch, ascending
    bandwidth_bytes_per_s: float
    weights_bytes_read_batch1: int
    kv_bytes_read_per_sequence: int
    constants: dict  # the fitted constants used, the peaks, and where they come from
    roofline: str = ROOFLINE_LABEL
    engine: str = ENGINE_LABEL

    def at(self, batch: int) -> Optional[DecodePoint]:
        return next((p for p in self.points if p.batch == batch), None)


def profile_constants(profile: SpeedProfile, bandwidth: float) -> dict:
    fit, compute = profile.fit, profile.compute
    return {"gpu": profile.gpu, "fitted_on": profile.fitted_on, "fallback": profile.fallback,
            "layer_us": fit.layer_us, "allreduce_us": fit.allreduce_us, "gemm_efficiency": fit.gemm_efficiency,
            "prefill_efficiency": fit.prefill_efficiency, "bandwidth_bytes_per_s": bandwidth,
            "peak_flops": {"bf16": compute.bf16, "fp8": compute.fp8 or compute.bf16, "fp32": compute.fp32},
            "link_bytes_per_s": compute.link, "compute_source": compute.source,
            "fit_source": f"fitted on {fit.decode_cases} decode cases on {profile.fitted_on}: leave-one-source-out "
                          f"median error {fit.decode_loso_median:.1%}, max {fit.decode_loso_max:.1%} "
                          f"(benchmarks/calibrate_decode.py, tests/data/)"}


# profile_constants' keys as a CSV flattens them (its peak_flops record's as peak_flops_<dtype>)
CONSTANT_COLUMNS = ("gpu", "fitted_on", "fallback", "layer_us", "allreduce_us", "gemm_efficiency", "prefill_efficiency",
                    "bandwidth_bytes_per_s", "peak_flops_bf16", "peak_flops_fp8", "peak_flops_fp32", "link_bytes_per_s",
                    "compute_source", "fit_source")


def decode_columns() -> tuple:
    """Every key a Decode's JSON holds, flattened as a CSV writes it (constants_peak_flops_bf16): a CSV's decode columns
    whatever the plan, empty where it has no decode (an unshardable TP degree)."""
    return tuple(key for f in fields(Decode)
                 for key in ([f"constants_{c}" for c in CONSTANT_COLUMNS] if f.name == "constants" else [f.name]))


def decode_point(spec: ModelSpec, tp: int, precision: Precision, context: int, batch: int, profile: SpeedProfile,
                 bandwidth: float, fits: bool, moe=None, dcp: int = 1, pcp: int = 1,
                 replicated: bool = False, comm=None) -> DecodePoint:
    # -pcp P: the busiest PCP rank's requests (round robin over the ranks: pcp_manager.py 0.32.0:264-272); all of
    # them on every rank where decodes are `replicated` (0.27-0.31: pcp_manager.py 0.29.0:221)
    rows = batch if replicated else -(-batch // pcp)
    b = basis(decode_work(spec, tp, precision, context, rows, moe, dcp, pcp, batch, replicated, comm), bandwidth,
              profile.compute)
    fit = profile.fit
    itl = engine_ms(b, fit.layer_us, fit.allreduce_us, fit.gemm_efficiency)
    return DecodePoint(batch, itl, b.roofline_ms, batch * 1e3 / itl, fits)


def decode(spec: ModelSpec, tp: int, precision: Precision, context: int, max_concurrency: int, batches,
           profile: SpeedProfile, bandwidth: float, moe=None, dcp: int = 1, pcp: int = 1,
           replicated: bool = False, comm=None) -> Decode:
    """Decode at batch 1, at max concurrency (when anything fits) and at every asked batch size; batches
    beyond max concurrency are estimated too and marked fits=False. Under DP (`moe`: sharding.MoeLayout) a batch
    is one DP rank's, every rank running one as large in the same step. Under -dcp D (`dcp`) `context` is a GPU's
    share of each sequence (work.decode_work; `comm`: its work.DcpComm). Under -pcp P (`pcp`) a batch is the
    engine's (one scheduler, the cache on every rank: max concurrency is the engine's), each PCP rank decoding
    ceil(batch / P) of it, or all of it where decodes are `replicated` (vLLM 0.27-0.31)."""
    wanted = sorted({1, *(b for b in batches), *([max_concurrency] if max_concurrency > 0 else [])})
    points = tuple(decode_point(spec, tp, precision, context, b, profile, bandwidth, b <= max_concurrency, moe, dcp,
                                pcp, replicated, comm) for b in wanted)
    one = decode_work(spec, tp, precision, context, 1, moe, dcp, pcp, replicated=replicated, comm=comm)
    return Decode(context, points, bandwidth, int(sum(one.weight_bytes.values())), int(one.kv_bytes),
                  profile_constants(profile, bandwidth))
