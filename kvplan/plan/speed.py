"""How fast decode runs: the roofline (bytes a step reads / bandwidth), the physical floor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..model.precision import Precision
from ..model.spec import ModelSpec
from .capacity import read_bytes
from .sharding import weights_per_gpu

ROOFLINE_LABEL = ("predicted: (weights/TP read + batch x KV read) / achievable bandwidth (datasheet x 0.89); "
                  "`kvplan verify` measures it")


def expected_touched_share(spec: ModelSpec, batch: int) -> float:
    """Expected share of a layer's routed experts that `batch` tokens touch (each picks experts_per_token of
    `experts` uniformly)."""
    return 1 - (1 - spec.experts_per_token / spec.experts) ** batch


def weights_read_bytes(spec: ModelSpec, weights_per_gpu: int, batch: int) -> int:
    """Bytes of weights one decode step streams: dense parts always, routed experts only as far as the batch's
    tokens are expected to touch them."""
    if not spec.experts or not spec.experts_per_token:
        return weights_per_gpu
    touched = expected_touched_share(spec, batch)
    return int(weights_per_gpu * (1 - spec.expert_fraction + spec.expert_fraction * touched))


@dataclass(frozen=True)
class Decode:
    bandwidth_bytes_per_s: float
    weights_bytes_read_batch1: int
    kv_bytes_read_per_sequence: int
    ms_per_step_batch1: float
    tokens_per_s_batch1: float
    batch_at_max: int
    ms_per_step_at_max: Optional[float]
    tokens_per_s_at_max: Optional[float]
    label: str = ROOFLINE_LABEL


def decode_roofline(spec: ModelSpec, tp: int, precision: Precision, context: int, max_concurrency: int,
                    bandwidth: float) -> Decode:
    kv_read = read_bytes(spec, tp, precision, context)
    weights = weights_per_gpu(spec, tp)

    def step_seconds(batch: int) -> float:
        return (weights_read_bytes(spec, weights, batch) + batch * kv_read) / bandwidth

    one = step_seconds(1)
    at_max = step_seconds(max_concurrency) if max_concurrency > 0 else None
    return Decode(bandwidth, weights_read_bytes(spec, weights, 1), kv_read, one * 1e3, 1 / one, max_concurrency,
                  at_max and at_max * 1e3, at_max and max_concurrency / at_max)
