"""A model in words and numbers: the accounting rules it triggered and the summary every command's JSON
carries."""

from __future__ import annotations

from collections import Counter

from ..model.kinds import (ChunkedAttention, FullAttention, IndexerKeys, LinearState, MLALatent, SharedKV,
                           V4Compressed, V4CompressorState, V4IndexerKeys, V4Window)
from ..model.spec import ModelSpec


def layout_rules(spec: ModelSpec, drafter=None) -> list:
    """One line per accounting rule this model triggered; `drafter`: spec.draft as served on the GPU planned on (its
    cache dtype there: engines/vllm_draft_cache.py drafter_caches), where known."""
    # --speculative-config's decoder layers (a sparse MTP layer's indexer keys sit in its layer)
    drafted = sum(layer.kind != "indexer" for layer in spec.draft.layers) if spec.draft is not None else 0
    n = spec.num_hidden_layers + drafted
    whose = ("draft model's" if getattr(spec.draft, "whole", False) else "EAGLE head's"
             if getattr(spec.draft, "model", None) is not None else "drafter's MTP modules'")
    cached = (drafter or spec.draft).cache_rule if drafted else ""  # its own cache dtype, where it keeps one
    rules = [f"{drafted} of {n} cache layers are the {whose} (--speculative-config), {cached}"] if drafted else []
    shapes = Counter((layer.kv_heads, layer.head_dim, layer.value_dim) for layer in spec.layers
                     if isinstance(layer, FullAttention))
    if len(shapes) == 1:
        kv, heads, dim = spec.kv_heads, spec.num_attention_heads, spec.head_dim
        style = "MHA" if kv == heads else "MQA" if kv == 1 else "GQA"
        rules.append(f"{style}: {kv} KV heads for {heads} query heads, head_dim {dim}")
    elif shapes:  # Gemma 4, MiMo-V2: sliding and full layers of their own head shapes
        each = ", ".join(f"{kv} KV heads of {dim}{f' (values {value})' if value != dim else ''} on {count}"
                         for (kv, dim, value), count in shapes.items())
        rules.append(f"attention shapes per layer ({spec.num_attention_heads} query heads): {each} layers")
    shared = [layer for layer in spec.layers if isinstance(layer, SharedKV)]
    if shared:
        sources = " or ".join(str(source) for source in sorted({layer.source for layer in shared}))
        rules.append(f"KV sharing: the last {len(shared)} of {n} layers hold no cache; each reads again the cache "
                     f"of layer {sources} (the last earlier layer of its type)")
    mla = [layer for layer in spec.layers if isinstance(layer, MLALatent)]
    if mla:
        rules.append(f"MLA latent {mla[0].latent_dim} ({mla[0].kv_lora_rank} + rope {mla[0].qk_rope_head_dim}) "
                     f"per token on {len(mla)} of {n} layers, replicated over TP")
    v4 = v4_rules(spec, n)
    if v4:
        return rules + v4 + list(spec.notes)
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


def v4_rules(spec: ModelSpec, n: int) -> list:
    """DeepSeek-V4's compressed sparse attention in words (empty for other models)."""
    windows = [layer for layer in spec.layers if isinstance(layer, V4Window)]
    if not windows:
        return []
    compressed = Counter(layer.ratio for layer in spec.layers if isinstance(layer, V4Compressed))
    topk = next((layer.index_topk for layer in spec.layers if isinstance(layer, V4Compressed) and layer.index_topk), 0)
    key = next((layer for layer in spec.layers if isinstance(layer, V4IndexerKeys)), None)
    states = sum(isinstance(layer, V4CompressorState) for layer in spec.layers)
    rules = [f"compressed sparse attention (DeepSeek-V4): a window of the last {windows[0].window} tokens' "
             f"{windows[0].head_dim}-wide latents on {len(windows)} of {n} layers, replicated over TP"]
    if compressed.get(4):
        rules.append(f"one compressed latent per 4 tokens on {compressed[4]} layers, each with indexer keys of "
                     f"{key.stored_bytes()} bytes per 4 tokens; decode attends {topk} of the compressed latents "
                     f"and scores every key")
    if compressed.get(128):
        rules.append(f"one compressed latent per 128 tokens on {compressed[128]} layers, attended whole")
    if states:
        rules.append(f"{states} compressor states: float32 rows of the last 8 or 128 tokens (not yet compressed), "
                     f"paged as windows are, so counted in the per-token bytes like a window")
    return rules


def kv_shapes(spec: ModelSpec) -> list:
    """What one layer caches a token, per shape, in the order the shapes first appear: KV heads x head_dim (/ the
    value width where it differs) and the layer kinds of that shape ("16x256 sliding", "4x512 full": Gemma 4's
    layers of their own heads), MLA's latent width, DeepSeek-V4's latent and a linear layer's state. Layers that
    cache nothing of their own (KV sharing, indexer keys beside a latent) are left to layer_kinds."""
    shapes = {}
    for layer in spec.layers:
        if isinstance(layer, FullAttention):
            value = f"/{layer.value_dim}" if layer.value_dim != layer.head_dim else ""
            shapes.setdefault(f"{layer.kv_heads}x{layer.head_dim}{value}", {})[layer.kind] = None
        elif isinstance(layer, MLALatent):
            shapes.setdefault(f"MLA {layer.latent_dim}{' sparse' if layer.sparse else ''}", {})
        elif isinstance(layer, V4Window):
            shapes.setdefault(f"V4 latent {layer.head_dim}", {})
        elif isinstance(layer, LinearState):
            shapes.setdefault(f"{layer.flavor} state", {})
    return [" ".join((shape, "/".join(kinds))).strip() for shape, kinds in shapes.items()]


def _config_length(spec: ModelSpec):
    """The config's own length, also where --disable-sliding-window capped the one served."""
    capped = getattr(spec, "length_key", "") == "sliding_window"
    return spec.config_length if capped else spec.max_position_embeddings


def _length_cap(spec: ModelSpec) -> dict:
    """{'max_model_len_cap': {...}} where --disable-sliding-window capped the length to the window, as vLLM's
    _get_and_verify_max_len does (config/model.py 0.32.0:2544-2550); {} otherwise."""
    if getattr(spec, "length_key", "") != "sliding_window":
        return {}
    return {"max_model_len_cap": {"max_model_len": spec.max_position_embeddings, "key": "sliding_window",
                                  "by": "disable_sliding_window"}}


def model_summary(spec: ModelSpec) -> dict:
    return {
        "id": spec.name,
        "num_hidden_layers": spec.num_hidden_layers,
        "num_attention_heads": spec.num_attention_heads,
        "num_key_value_heads": spec.kv_heads,
        "head_dim": spec.head_dim,
        "hidden_size": spec.hidden_size,
        "dtype": spec.dtype,
        "max_position_embeddings": _config_length(spec),
        **_length_cap(spec),
        "layer_kinds": dict(Counter(layer.kind for layer in spec.layers)),
        "windows": {str(k): v for k, v in spec.windows.items()},
        "parameters": spec.weights.parameters,
        "weights_bytes": spec.weights.bytes,
        "weights_dtype": spec.weights.dtype,
        "weights_source": spec.weights.source,
        "rules": layout_rules(spec),
    }
