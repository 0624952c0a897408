"""`kvplan models` and `kvplan gpus`: the bundled specs and the GPU catalog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..gpu.detect import detect_gpu
from ..model.sources import bundled_files, load_bundled
from ..plan.catalog import CATALOG, DEFAULT_GPU, GPU
from ..plan.max_len import default_max_model_len
from .describe import kv_shapes


@dataclass(frozen=True)
class ModelsResult:
    models: list  # one dict per bundled spec
    view = "models"

    def to_dict(self) -> dict:
        return {"models": self.models}

    def rows(self) -> list:
        return self.models


@dataclass(frozen=True)
class GpusResult:
    gpus: tuple
    detected: Optional[GPU]
    view = "gpus"

    def rows(self) -> list:
        return [{"name": g.name, "memory_bytes": g.memory_bytes, "bandwidth_bytes_per_s": g.bandwidth,
                 "aliases": list(g.aliases), "memory_source": g.memory_source, "node_gpus": g.node_gpus}
                for g in self.gpus]

    def to_dict(self) -> dict:
        found = self.detected
        return {"gpus": self.rows(), "default": DEFAULT_GPU,
                "detected": None if found is None else {"name": found.name, "memory_bytes": found.memory_bytes,
                                                        "bandwidth_bytes_per_s": found.bandwidth}}


def models() -> ModelsResult:
    rows = []
    for path in bundled_files():
        entry, spec = load_bundled(path)
        rows.append({
            "id": spec.name,
            "aliases": list(entry.get("aliases") or []),
            "layers": spec.num_hidden_layers,
            "attention_heads": spec.num_attention_heads,
            "kv_heads": spec.kv_heads,
            "head_dim": spec.head_dim,
            "kv_shapes": kv_shapes(spec),  # kv_heads and head_dim are each the largest, maybe of different layers
            "layer_kinds": sorted({layer.kind for layer in spec.layers}),
            "parameters": spec.weights.parameters,
            "weights_bytes": spec.weights.bytes,
            "dtype": spec.dtype,
            "max_position_embeddings": spec.max_position_embeddings,
            # what vLLM (and `kvplan estimate`) serves without --max-model-len: RoPE-scaled, else 2,048 where the
            # config names no length
            "default_max_model_len": default_max_model_len(spec),
            "source": entry.get("source"),
        })
    rows.sort(key=lambda row: row["id"].lower())  # as a reader looks a name up: ai21labs beside AllenAI, not after Qwen
    return ModelsResult(rows)


def gpus() -> GpusResult:
    return GpusResult(CATALOG, detect_gpu())
