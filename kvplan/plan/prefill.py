"""Time to first token for one prompt at batch 1: the prompt runs through the model in chunks of at most
max_num_batched_tokens tokens (vLLM's chunked prefill), the last chunk yields the first token. Each chunk is
priced like a decode step (plan/speed.py: bytes / bandwidth + per-layer fixed cost + all-reduces), with its
matmul and attention FLOPs (causal, window-capped) over the dense peak x the GPU's prefill efficiency, a
constant fitted apart from decode on batch-1 first-token latencies (benchmarks/calibrate_decode.py), never below
the matmuls of a batch-1 decode step at decode's efficiency (speed.compute_ms' tile floor: a chunk of a few tokens
runs the same one-tile GEMMs). Under DP / EP (`moe`) the MoE layers run as decode's do (sharding.MoeLayout). So a
1-token prompt costs what a batch-1 decode step costs less its cache read. Engine time only: no HTTP, tokenizer or
queueing (serving benchmarks add 20-50 ms of those at short prompts).

Under -pcp P (vLLM 0.27+, Model Runner V2) each scheduler chunk splits over the P ranks in 2P pieces of
ceil(chunk / 2P) tokens, rank r taking pieces r and 2P - 1 - r (DualChunkSwap: v1/worker/gpu/pcp_manager.py
0.32.0:235-282, 0.34.0 the same; a prefill is never replicated at -dcp 1, :222-233); the ranks pad to the largest
rank's rows (:340-347). A rank runs its rows through the TP group's weights and the MoE layers over the P ranks' rows
(experts over T x P), each piece attending the prompt before it from the cache, which every rank keeps whole: the
piece's new latent KV is all-gathered each layer before the attention reads it (plan/work.py pcp_exchange). A step
takes its slowest rank. Not priced: the up-projection of the cached context (as at pcp 1), the cache writes of the
other ranks' rows.

Under -dcp D a chunk reads a GPU's share of the cache, ceil(start / D) tokens, and adds the exchange over its D ranks
(plan/work.py dcp_exchange): MLA all-gathers the cached latent rows each layer, GQA gathers the queries and merges the
partial outputs by their LSEs as in decode (FlashAttention from vLLM 0.26 skips it on a chunk with nothing cached;
FlashInfer and earlier FlashAttention do not: engines/vllm_dcp.py dcp_comm); the attention FLOPs are those of -dcp 1.

An MLA chunk of at most the backend's reorder_batch_threshold tokens (`decode_tokens`: 1, a 1-token prompt, by
default; 512 on Hopper's FLASH_ATTN_MLA for a 16-bit cache, 128 on its FLASHMLA without -dcp: engines/
vllm_mla_decode.py) runs MLA's decode path: absorbed attention against the latent, and under -dcp decode's exchange
(work.dcp_exchange) in place of the context gather."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

from ..model.precision import Precision
from ..model.spec import ModelSpec
from .catalog import SpeedProfile
from .speed import chunk_basis, engine_ms
from .work import MLA_DECODE_QUERY_LEN, attention_counter, dcp_exchange, kv_reader, layer_kinds, prefill_work

PREFILL_LABEL = ("engine estimate at batch 1: per chunk of max-num-batched-tokens, weights read + fixed costs + "
                 "matmul and causal attention FLOPs over the dense peak x the fitted prefill efficiency")


@dataclass(frozen=True)
class Prefill:
    input_len: int
    ttft_ms: float  # engine estimate
    floor_ms: float  # per chunk the larger of bytes / bandwidth and FLOPs / dense peak: the physical floor
    chunks: int
    chunk_tokens: int
    label: str = PREFILL_LABEL
    # why the prompt is shorter than the max model length where none was asked (plan.default_prompt); else None
    input_len_note: Optional[str] = None


def prefill_columns() -> tuple:
    """Every key a Prefill's JSON holds: a CSV's prefill columns whatever the plan, empty where no prompt is timed."""
    return tuple(f.name for f in fields(Prefill))


def chunk_ms(b, fit) -> float:
    """A chunk's engine estimate: decode's fixed costs, its FLOPs at the prefill efficiency, never below a batch-1
    decode step's matmuls (speed.engine_ms' tile floor: a prompt of a token or a few runs those GEMMs)."""
    return engine_ms(b, fit.layer_us, fit.allreduce_us, fit.prefill_efficiency, fit.gemm_efficiency)


def chunk_times(spec: ModelSpec, tp: int, precision: Precision, input_len: int, chunk_tokens: int,
                profile: SpeedProfile, bandwidth: float, dcp: int = 1, moe=None, comm=None,
                decode_tokens: int = MLA_DECODE_QUERY_LEN) -> list:
    """(engine ms, floor ms) per chunk. Chunks differ only in the cache they attend and read (under -dcp D a GPU's
    share of it, and the exchange over the D ranks: work.prefill_work, `comm` its work.DcpComm; a chunk of at most
    `decode_tokens` on MLA's decode path): the weights' part of a chunk of `count` tokens is worked out once (a
    10M-token prompt is 1,221 chunks)."""
    fit, kinds, first = profile.fit, layer_kinds(spec), {}
    read = kv_reader(spec, tp, precision, kinds)
    attention = attention_counter(spec, tp, False, kinds)
    absorbed = attention_counter(spec, tp, False, kinds, absorbed=True)  # a chunk MLA runs as a decode
    out = []
    for start in range(0, input_len, chunk_tokens):
        count = min(chunk_tokens, input_len - start)
        if count not in first:
            # (-dcp's comm for --dcp-q-replicate's weights and FLOPs; the exchange is the chunk's own, below)
            first[count] = chunk_basis(prefill_work(spec, tp, precision, 0, count, moe, dcp=dcp, comm=comm,
                                                    decode_tokens=decode_tokens), bandwidth, profile.compute)
        exchange = dcp_exchange(spec, tp, precision, count, dcp, start, comm, decode_tokens) if dcp > 1 else None
        attended = (absorbed if count <= decode_tokens else attention)(start, count)
        b = first[count](read(-(-start // dcp)) if start else 0, attended, exchange)
        out.append((chunk_ms(b, fit), max(b.roofline_ms, b.peak_ms)))
    return out


def pcp_pieces(start: int, count: int, pcp: int) -> list:
    """Each PCP rank's (start, tokens) pieces of a chunk of `count` tokens after `start` (DualChunkSwap)."""
    size = -(-count // (2 * pcp))
    return [[(start + j * size, min(size, count - j * size)) for j in (r, 2 * pcp - 1 - r) if count > j * size]
            for r in range(pcp)]


def pcp_chunk_times(spec: ModelSpec, tp: int, precision: Precision, input_len: int, chunk_tokens: int,
                    profile: SpeedProfile, bandwidth: float, moe, pcp: int) -> list:
    """chunk_times under -pcp P: per chunk the slowest rank's (engine ms, floor ms) (the module docstring)."""
    fit, kinds, first = profile.fit, layer_kinds(spec), {}
    read, attention = kv_reader(spec, tp, precision, kinds), attention_counter(spec, tp, False, kinds)
    out = []
    for start in range(0, input_len, chunk_tokens):
        ranks = pcp_pieces(start, min(chunk_tokens, input_len - start), pcp)
        rows = max(sum(n for _, n in pieces) for pieces in ranks)
        if rows not in first:
            first[rows] = chunk_basis(prefill_work(spec, tp, precision, 0, rows, moe, pcp), bandwidth,
                                      profile.compute)
        times = [first[rows](sum(read(s) for s, _ in pieces if s), sum(attention(s, n) for s, n in pieces))
                 for pieces in ranks]
        out.append((max(chunk_ms(b, fit) for b in times),
                    max(max(b.roofline_ms, b.peak_ms) for b in times)))
    return out


def prefill(spec: ModelSpec, tp: int, precision: Precision, input_len: int, chunk_tokens: int,
            profile: SpeedProfile, bandwidth: float, input_len_note: Optional[str] = None, moe=None,
            pcp: int = 1, dcp: int = 1, comm=None, decode_tokens: int = MLA_DECODE_QUERY_LEN) -> Prefill:
    """`decode_tokens`: the most tokens a chunk may bring and run MLA's decode path (the module docstring)."""
    times = pcp_chunk_times(spec, tp, precision, input_len, chunk_tokens, profile, bandwidth, moe, pcp) if pcp > 1 \
        else chunk_times(spec, tp, precision, input_len, chunk_tokens, profile, bandwidth, dcp, moe, comm,
                         decode_tokens)
    return Prefill(input_len, sum(t for t, _ in times), sum(f for _, f in times), len(times), chunk_tokens,
                   input_len_note=input_len_note)
