"""What Gemma 4's KV-sharing layers (the last num_kv_shared_layers, which read an earlier layer's cache: E2B, E4B)
load in vLLM, by release. kvplan's weights are vLLM 0.30's build (model/tensors.py gemma4_layer_tensors: q_proj only
on such a layer, the checkpoint's k_proj / v_proj / k_norm dropped, ModelSpec.load_delta).

- 0.19.0-0.29.x build every layer alike: one QKVParallelLinear (q, k, v: its KV heads split over tp as any layer's,
  one whole head a rank where tp exceeds them) and a k_norm, the shared layer computing K and V it then ignores
  (model_executor/models/gemma4.py Gemma4Attention.__init__, 0.19.0:286-311, 0.29.0 the same; forward :402 skips
  them), and load_weights fills them from the checkpoint's k_proj / v_proj (stacked_params_mapping).
- 0.30.0 on give a shared layer a ColumnParallelLinear q_proj and no k_norm ("K/V come from the target layer's cache",
  gemma4.py 0.30.0 Gemma4Attention.__init__), and the weight mapper drops the rest (0.31.0
  _gemma4_layer_weights_mapper).
So up to 0.29 each rank holds those projections too, in the weights term the profiler measures.
"""

from __future__ import annotations

from ..model.kinds import SharedKV
from .vllm_versions import parse_version

Q_ONLY_SINCE = (0, 30)  # the first release whose KV-sharing layers build q_proj alone


def shared_kv_projections(spec, tp: int, stage=None, version: str = "0.30.0") -> int:
    """Bytes one rank of pipeline `stage` (None: the whole model) holds for the K / V projections and k_norms of
    Gemma 4's KV-sharing layers in vLLM `version`: 0 from Q_ONLY_SINCE, which kvplan's weights already follow; at
    the checkpoint's stored bytes of its attention weights."""
    if parse_version(version) >= Q_ONLY_SINCE:
        return 0
    attention = next((g for g in spec.params if g.name == "attention"), None)
    if attention is None:
        return 0
    first, end = (0, len(spec.layers)) if stage is None else (stage.first_layer, stage.end_layer)
    elements = sum(_kv_elements(layer, spec.hidden_size, tp) for layer in spec.layers[first:end]
                   if isinstance(layer, SharedKV))
    return round(elements * attention.bytes_per_param)


def _kv_elements(layer: SharedKV, hidden: int, tp: int) -> int:
    """K and V rows of the layer's own head shape (its target's: vLLM builds the same shape) on one rank, and its
    k_norm, whole on every rank."""
    target = layer.target
    return 2 * target.heads_per_gpu(tp) * target.head_dim * hidden + target.head_dim

