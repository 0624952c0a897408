"""Time to first token for one prompt at batch 1: the prompt runs through the model in chunks of at most
max_num_batched_tokens tokens (vLLM's chunked prefill), the last chunk yields the first token. Each chunk is
priced like a decode step (plan/speed.py: bytes / bandwidth + per-layer fixed cost + all-reduces), with its
matmul and attention FLOPs (causal, window-capped) over the dense peak x the GPU's prefill efficiency, a
constant fitted apart from decode on batch-1 first-token latencies (benchmarks/calibrate_decode.py). Engine
time only: no HTTP, tokenizer or queueing (serving benchmarks add 20-50 ms of those at short prompts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..model.precision import Precision
from ..model.spec import ModelSpec
from .catalog import SpeedProfile
from .speed import chunk_basis, engine_ms
from .work import attention_counter, kv_reader, layer_kinds, prefill_work

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


def chunk_times(spec: ModelSpec, tp: int, precision: Precision, input_len: int, chunk_tokens: int,
                profile: SpeedProfile, bandwidth: float) -> list:
    """(engine ms, floor ms) per chunk. Chunks differ only in the cache they attend and read: the weights' part
    of a chunk of `count` tokens is worked out once (a 10M-token prompt is 1,221 chunks)."""
    fit, kinds, first = profile.fit, layer_kinds(spec), {}
    read, attention = kv_reader(spec, tp, precision, kinds), attention_counter(spec, tp, False, kinds)
    out = []
    for start in range(0, input_len, chunk_tokens):
        count = min(chunk_tokens, input_len - start)
        if count not in first:
            first[count] = chunk_basis(prefill_work(spec, tp, precision, 0, count), bandwidth, profile.compute)
        b = first[count](read(start) if start else 0, attention(start, count))
        out.append((engine_ms(b, fit.layer_us, fit.allreduce_us, fit.prefill_efficiency),
                    max(b.roofline_ms, b.peak_ms)))
    return out


def prefill(spec: ModelSpec, tp: int, precision: Precision, input_len: int, chunk_tokens: int,
            profile: SpeedProfile, bandwidth: float, input_len_note: Optional[str] = None) -> Prefill:
    times = chunk_times(spec, tp, precision, input_len, chunk_tokens, profile, bandwidth)
    return Prefill(input_len, sum(t for t, _ in times), sum(f for _, f in times), len(times), chunk_tokens,
                   input_len_note=input_len_note)
