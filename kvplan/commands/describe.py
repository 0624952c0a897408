"""A model in words and numbers: the accounting rules it triggered and the summary every command's JSON
carries."""

from __future__ import annotations

from collections import Counter

from ..model.kinds import ChunkedAttention, FullAttention, IndexerKeys, LinearState, MLALatent
from ..model.spec import ModelSpec


def layout_rules(spec: ModelSpec) -> list:
    """One line per accounting rule this model triggered."""
    # --speculative-config's decoder layers (a sparse MTP layer's indexer keys sit in its layer)
    drafted = sum(layer.kind != "indexer" for layer in spec.draft.layers) if spec.draft is not None else 0
    n = spec.num_hidden_layers + drafted
    whose = ("draft model's" if getattr(spec.draft, "whole", False) else "EAGLE head's"
             if getattr(spec.draft, "model", None) is not None else "drafter's MTP modules'")
    rules = [f"{drafted} of {n} cache layers are the {whose} (--speculative-config), cached as the model's"] \
        if drafted else []
    if any(isinstance(layer, FullAttention) for layer in spec.layers):
        kv, heads, dim = spec.kv_heads, spec.num_attention_heads, spec.head_dim
        style = "MHA" if kv == heads else "MQA" if kv == 1 else "GQA"
        rules.append(f"{style}: {kv} KV heads for {heads} query heads, head_dim {dim}")
    mla = [layer for layer in spec.layers if isinstance(layer, MLALatent)]
    if mla:
        rules.append(f"MLA latent {mla[0].latent_dim} ({mla[0].kv_lora_rank} + rope {mla[0].qk_rope_head_dim}) "
                     f"per token on {len(mla)} of {n} layers, replicated over TP")
    indexers = [layer for layer in spec.layers if isinstance(layer, IndexerKeys)]
    if indexers:
        key = indexers[0]
        reusing = sum(not layer.leads_index_group for layer in mla[:n])
        shared = f"; the other {reusing} layers reuse the top-k of the last indexer" if reusing else ""
        rules.append(f"sparse attention: an indexer key of {key.bytes_per_token(1, None)} bytes per token (fp8 "
                     f"{key.head_dim} + float32 scales) on {len(indexers)} of {n} layers, replicated over TP; "
                     f"decode attends {mla[0].index_topk} latents and scores every key{shared}")
    for window, count in sorted(spec.windows.items()):
        chunked = any(isinstance(layer, ChunkedAttention) and layer.window == window for layer in spec.layers)
        what = "chunked attention" if chunked else "sliding window"
        rules.append(f"{what} {window} on {count} of {n} layers (capped per sequence)")
    linear = [layer for layer in spec.layers if isinstance(layer, LinearState)]
    if linear:
        rules.append(f"{linear[0].flavor} state on {len(linear)} of {n} layers: fixed per sequence, no per-token KV")
    # negative for Falcon-H1 (a KV cache and a state slot a layer) and sparse attention (a latent and indexer keys)
    skipped = n - len(spec.layers) + len(indexers)
    if skipped > 0:
        rules.append(f"{skipped} of {n} layers hold no cache (MLP/MoE only)")
    return rules + list(spec.notes)


def model_summary(spec: ModelSpec) -> dict:
    return {
        "id": spec.name,
        "num_hidden_layers": spec.num_hidden_layers,
        "num_attention_heads": spec.num_attention_heads,
        "num_key_value_heads": spec.kv_heads,
        "head_dim": spec.head_dim,
        "hidden_size": spec.hidden_size,
        "dtype": spec.dtype,
        "max_position_embeddings": spec.max_position_embeddings,
        "layer_kinds": dict(Counter(layer.kind for layer in spec.layers)),
        "windows": {str(k): v for k, v in spec.windows.items()},
        "parameters": spec.weights.parameters,
        "weights_bytes": spec.weights.bytes,
        "weights_dtype": spec.weights.dtype,
        "weights_source": spec.weights.source,
        "rules": layout_rules(spec),
    }
