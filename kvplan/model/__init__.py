"""The model: any config.json (local file, model folder, bundled spec or Hub repo) -> ModelSpec, whose layers are
layer kinds that answer for themselves and whose weights are parameter groups with their stored precision."""

from .kinds import (ChunkedAttention, FullAttention, IndexerKeys, KVLayer, LinearState, MLALatent, SharedKV,
                    SlidingWindow)
from .parse import parse_config
from .spec import ModelSpec, ParamGroup, Weights

__all__ = ["ChunkedAttention", "FullAttention", "IndexerKeys", "KVLayer", "LinearState", "MLALatent", "ModelSpec",
           "ParamGroup", "SharedKV", "SlidingWindow", "Weights", "parse_config"]
