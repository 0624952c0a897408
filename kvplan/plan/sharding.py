"""Tensor- and pipeline-parallel sharding, as vLLM enforces it (vllm/config/model.py and QKVParallelLinear):
query heads split evenly; each layer kind says whether a TP degree can shard it (KV heads split when tp
divides them or are replicated one per GPU when they divide tp; MLA latents are replicated on every rank;
linear-attention state heads split evenly)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..model.kinds import LinearState, kv_heads_per_gpu
from ..model.spec import ModelSpec
from ..units import require_positive
from .capacity import layer_kinds


@dataclass(frozen=True)
class Sharding:
    tp: int
    pp: Optional[int]
    errors: tuple  # each a sentence quoting the numbers that do not divide
    warnings: tuple
    kv_heads_per_gpu: Optional[int]  # None when the model has no per-head KV (MLA, linear only)
    replicated: bool  # KV heads copied on several GPUs

    @property
    def valid(self) -> bool:
        return not self.errors


def _unique(messages) -> tuple:
    return tuple(dict.fromkeys(messages))


def shard(spec: ModelSpec, tp: int, pp: Optional[int] = None) -> Sharding:
    require_positive("tp", tp)
    if pp is not None:
        require_positive("pp", pp)
    heads = spec.num_attention_heads
    errors = []
    if heads % tp:
        errors.append(f"num_attention_heads ({heads}) is not divisible by tp {tp}: vLLM splits query heads "
                      f"evenly, so tp must divide {heads}.")
    # attention kinds, then linear ones, each once (layer_kinds: not a walk over every layer per TP degree)
    kinds = sorted((kind for kind, _ in layer_kinds(spec)), key=lambda kind: isinstance(kind, LinearState))
    errors += _unique(m for kind in kinds for m in kind.tp_errors(tp))
    warnings = _unique(m for kind in kinds for m in kind.tp_warnings(tp))
    if pp is not None and spec.num_hidden_layers % pp:
        errors.append(f"num_hidden_layers ({spec.num_hidden_layers}) is not divisible by pp {pp}.")
    per_gpu, replicated = None, False
    kv = spec.kv_heads
    if kv is not None and (kv % tp == 0 or tp % kv == 0):
        per_gpu, replicated = kv_heads_per_gpu(kv, tp), kv % tp != 0
    return Sharding(tp, pp, tuple(errors), warnings, per_gpu, replicated)


def weights_per_gpu(spec: ModelSpec, tp: int, pp: int = 1) -> int:
    """Checkpoint bytes one GPU holds: an even share of the whole (rounded up)."""
    return -(-spec.weights.bytes // (tp * pp))


def valid_tp_degrees(spec: ModelSpec, limit: int = 64) -> list:
    return [s for s in (shard(spec, tp) for tp in range(1, limit + 1)) if s.valid]
