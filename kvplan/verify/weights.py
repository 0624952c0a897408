"""The weights one decode step streams, as [rows, hidden_size] matrices over one held buffer."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..model.spec import ModelSpec
from ..plan.speed import expected_touched_share, weights_read_parts


@dataclass(frozen=True)
class WeightMatrix:
    """One GEMV of the weight stream: rows x cols elements at `offset` (elements) in the weights buffer,
    multiplied by `tokens` activation rows."""

    layer: int
    part: str  # dense | experts
    offset: int
    rows: int
    cols: int
    tokens: int


def weight_stream(spec: ModelSpec, weights_per_gpu: int, batch: int, element_bytes: int = 2) -> list:
    """Matrices of [rows, hidden_size] per decoder layer whose bytes add up to the planner's weights read at
    this batch (weights_read_bytes): the dense part always, the routed experts as far as the batch's tokens
    touch them, each touched expert multiplying only the tokens routed to it. Every matrix reads its own
    region of the weights buffer (dense regions first, then expert regions), so nothing is read twice.
    Quantised checkpoints (fp8, mxfp4) are streamed as bf16 matrices of the same byte count: decode is
    bandwidth-bound, and bytes are what the roofline counts."""
    layers, hidden = spec.num_hidden_layers, spec.hidden_size
    row_bytes = hidden * element_bytes
    moe = bool(spec.experts and spec.experts_per_token)
    dense_bytes, expert_read, expert_bytes = weights_read_parts(spec, weights_per_gpu, batch)
    tokens = batch
    if moe and expert_read:  # experts the batch is expected to touch, as weights_read_bytes counts them
        touched = spec.experts * expected_touched_share(spec, batch)
        tokens = min(batch, max(1, math.ceil(batch * spec.experts_per_token / touched - 1e-9)))

    def split(total_rows: int) -> list:
        base, extra = divmod(total_rows, layers)
        return [base + (1 if i < extra else 0) for i in range(layers)]

    dense_rows = split(dense_bytes // row_bytes)
    expert_capacity = expert_bytes // row_bytes // layers  # rows of each layer's expert region
    expert_rows = [min(r, expert_capacity) for r in split(expert_read // row_bytes)]
    matrices, offset = [], 0
    for i, rows in enumerate(dense_rows):
        if rows:
            matrices.append(WeightMatrix(i, "dense", offset, rows, hidden, batch))
        offset += rows * hidden
    for i, rows in enumerate(expert_rows):
        if rows:
            matrices.append(WeightMatrix(i, "experts", offset + i * expert_capacity * hidden, rows, hidden, tokens))
    return matrices


def stream_bytes(matrices: list, element_bytes: int = 2) -> int:
    return sum(m.rows * m.cols for m in matrices) * element_bytes


def sweep_batches(max_concurrency: int) -> list:
    """1, 2, 4, ... below max_concurrency, then max_concurrency itself."""
    batches, b = [], 1
    while b < max_concurrency:
        batches.append(b)
        b *= 2
    return batches + [max_concurrency] if max_concurrency >= 1 else []
