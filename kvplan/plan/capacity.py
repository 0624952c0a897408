"""Arithmetic capacity of one GPU: bytes per token and per sequence, blocks and sequences a KV budget holds,
with ideal paging (no engine reserves: those are the engine model's, kvplan/engines/). Every per-layer answer
comes from the layer kinds."""

from __future__ import annotations

from dataclasses import dataclass

from ..model.kinds import LinearState
from ..model.precision import DTYPE_BYTES, Precision
from ..model.spec import ModelSpec



def layer_kinds(spec: ModelSpec) -> tuple:
    """(layer kind, number of layers) pairs of the model (ModelSpec.layer_counts)."""
    return spec.layer_counts


def token_bytes(spec: ModelSpec, tp: int, precision: Precision) -> int:
    """Cache bytes one token occupies over all layers on one GPU."""
    return sum(n * layer.bytes_per_token(tp, precision) for layer, n in layer_kinds(spec))


def state_bytes(spec: ModelSpec, tp: int, kinds: tuple = ()) -> int:
    """Fixed per-sequence linear-attention / Mamba state on one GPU (of `kinds`, by default the model's layers):
    each state in the dtype the engine keeps it in (ModelSpec.state_dtypes), else the model dtype."""
    conv, ssm = (DTYPE_BYTES[spec.dtype], None) if not spec.state_dtypes else \
        (DTYPE_BYTES[name] for name in spec.state_dtypes)
    return sum(n * layer.state_bytes(tp, conv, ssm) for layer, n in kinds or layer_kinds(spec)
               if isinstance(layer, LinearState))  # the other kinds hold no state


def sequence_bytes(spec: ModelSpec, tp: int, precision: Precision, tokens: int, block_size: int) -> int:
    """Paged bytes one sequence of `tokens` holds on one GPU (window caps and block rounding), state apart."""
    return sum(n * layer.sequence_bytes(tokens, block_size, tp, precision) for layer, n in layer_kinds(spec))


def read_bytes(spec: ModelSpec, tp: int, precision: Precision, context: int) -> int:
    """Cache bytes one decode step reads for one sequence: each layer its tokens read (a KV-sharing layer its
    target's again), the recurrent state read and written back."""
    kv = sum(n * layer.read_bytes(context, tp, precision) for layer, n in layer_kinds(spec))
    return kv + 2 * state_bytes(spec, tp)


@dataclass(frozen=True)
class Capacity:
    kv_bytes_per_token: int  # all GPUs of the TP group, replicas counted
    kv_bytes_per_token_per_gpu: int
    kv_bytes_per_sequence_per_gpu: int
    state_bytes_per_sequence_per_gpu: int
    kv_blocks: int
    kv_capacity_tokens: int
    max_concurrency: int
    contiguous_bytes_per_sequence_per_gpu: int
    contiguous_max_concurrency: int


def capacity(spec: ModelSpec, tp: int, precision: Precision, context: int, block_size: int, budget: int) -> Capacity:
    per_token = token_bytes(spec, tp, precision)
    per_sequence = sequence_bytes(spec, tp, precision, context, block_size)
    state = state_bytes(spec, tp)
    usable = max(budget, 0)
    max_concurrency = usable // (per_sequence + state) if per_sequence + state else 0
    blocks = usable // (block_size * per_token) if per_token else 0
    max_len = max(spec.max_position_embeddings or context, context)
    contiguous = sum(n * layer.held_bytes(max_len, tp, precision) for layer, n in layer_kinds(spec))
    contiguous += state
    return Capacity(
        kv_bytes_per_token=per_token * tp,
        kv_bytes_per_token_per_gpu=per_token,
        kv_bytes_per_sequence_per_gpu=per_sequence,
        state_bytes_per_sequence_per_gpu=state,
        kv_blocks=blocks,
        # Uniform full attention: the pool's token count, as vLLM logs "GPU KV cache size". With windows or
        # linear state the pool has no single token count: report what max_concurrency sequences hold.
        kv_capacity_tokens=blocks * block_size if spec.uniform else max_concurrency * context,
        max_concurrency=max_concurrency,
        contiguous_bytes_per_sequence_per_gpu=contiguous,
        contiguous_max_concurrency=usable // contiguous if contiguous else 0,
    )
