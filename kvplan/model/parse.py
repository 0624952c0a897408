"""The one reader: any config.json shape -> ModelSpec. Field names and family quirks live in config.py (field
access), layers.py (which layer is which kind) and params.py (parameter groups); this module puts them
together. Bad fields raise KvplanError naming the field and what would be valid."""

from __future__ import annotations

import math
from typing import Any, Optional

from ..errors import json_value, KvplanError
from .class_defaults import HEAD_DIM_REQUIRED
from .config import (EXPERT_KEYS, EXPERTS_PER_TOKEN_KEYS, MAX_TOKENS, Config, in_nested_config,
                     language_model_config)
from .layers import (ATTENTION_FREE, HIDDEN_KEYS, attention_kind, attention_sinks, attention_softcap, cache_layers,
                     diffusion_canvas, ffn_kinds, is_v4, laguna_before_031_note, mixer_kinds)
from .kinds import FullAttention
from .params import (NO_METHOD_NOTE, checkpoint_kv_note, checkpoint_method, compressed_kv_cache, compressed_kv_scheme,
                     dynamic_overrides, estimate_weights, grouped, load_delta, modelopt_kv_cache, modelopt_legacy_form,
                     module_settings, mtp_module_groups, mtp_size, parameter_groups, quant_method, quantization_fields)
from .tensors import (eagle_head_tensors, expert_width, feed_forward_sizes, mla_query_projection, mla_up_projection,
                      mtp_blocks, per_layer_input, per_layer_table)
from .unmodelled import refuse_unmodelled
from .precision import normalize_dtype_name
from .spec import ModelSpec, RopeEntry, Weights
from .vision import media_prefix, vision_encoder

LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
HEAD_KEYS = ("num_attention_heads", "n_head", "num_heads", "n_heads")
KV_HEAD_KEYS = ("num_key_value_heads", "num_kv_heads", "n_head_kv", "n_kv_heads", "multi_query_group_num")
POSITION_KEYS = ("max_position_embeddings", "n_positions", "seq_length", "max_seq_len")


def _model_dtype(cfg: Config, notes: list) -> str:
    value = cfg.get("torch_dtype", cfg.get("dtype"))
    if value is None:
        notes.append("config names no torch_dtype: served as bf16, vLLM's default")
        return "bf16"
    name = normalize_dtype_name(value) if isinstance(value, str) else None
    if name not in ("bf16", "fp16", "fp32"):
        raise KvplanError(f"config field 'torch_dtype' must be bfloat16, float16 or float32, got {json_value(value)}.")
    if name == "fp32":
        # vLLM's dtype=auto serves float32 checkpoints in 16 bits.
        notes.append("float32 checkpoint served as bf16 (vLLM's dtype=auto), so KV 'auto' is bf16")
        return "bf16"
    return name


# vLLM kimi_k3/nvidia/model.py KimiMoE: min_moe_intermediate_per_partition (getattr default; no config sets it)
KIMI_MIN_EXPERT_PARTITION = 256


def _max_length(cfg: Config):
    """The model's own length as vLLM derives it (transformers_utils/model_arch_config_convertor.py
    derive_max_model_len_and_key): the smallest of the position keys, but model_max_length wins when present."""
    if cfg.has("model_max_length"):
        return cfg.int("model_max_length", maximum=MAX_TOKENS)
    return cfg.int(POSITION_KEYS, required=False, maximum=MAX_TOKENS)


def _rope_factors(cfg: Config) -> tuple:
    """The config's RoPE scaling entries (spec.RopeEntry): rope_scaling or else rope_parameters, one entry or one per
    layer type (vLLM's iter_rope_parameters: dict entries only), 'type' read as 'rope_type' (patch_rope_parameters).
    Where both are given vLLM reads rope_scaling: 0.12-0.19's patch_rope_parameters copies it over rope_parameters
    (transformers_utils/config.py 0.12.0:305-306), 0.29 / 0.34 through transformers 5 (measured), before 0.12 the
    length rule reads rope_scaling alone. engines/vllm_rope_len.py scales the model's length by them."""
    for key in ("rope_scaling", "rope_parameters"):
        value = cfg.get(key)
        entries = [value] if isinstance(value, dict) and ("rope_type" in value or "type" in value) else \
            [v for v in value.values() if isinstance(v, dict) and v] if isinstance(value, dict) else []
        if entries:
            return tuple(_rope_entry(entry, key) for entry in entries)
    return ()


def _rope_entry(entry: dict, key: str) -> RopeEntry:
    factor = entry.get("factor")
    numeric = isinstance(factor, (int, float)) and not isinstance(factor, bool) and 0 < factor < math.inf
    if "factor" in entry and factor is not None and not numeric:
        raise KvplanError(f"config field '{key}.factor' must be a positive number or null, got "
                          f"{json_value(factor)}.")
    original = _original_length(entry.get("original_max_position_embeddings"),
                                f"{key}.original_max_position_embeddings")
    return RopeEntry(str(entry.get("rope_type", entry.get("type", ""))), float(factor) if numeric else None,
                     "factor" in entry, original, key)


def _original_length(value, field: str) -> Optional[int]:
    """An original_max_position_embeddings, a token count vLLM uses as one: pre-0.30 YaRN's length before the factor
    (config/model.py 0.29.0:2458 `derived_max_model_len = rp["original_max_position_embeddings"]`, multiplied at
    :2469), the rotary's original length (model_executor/layers/rotary_embedding/__init__.py 0.34.0:171, :245). So
    0, text or a boolean is refused, not read past; None where absent or null."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_TOKENS:
        return value
    raise KvplanError(f"config field '{field}' must be a whole number of tokens, 1 to 2**40, got {json_value(value)}.")


def _rope_original(cfg: Config) -> Optional[int]:
    """The top-level original_max_position_embeddings (Phi-3's LongRoPE default; transformers moves it into the
    rope entries, over theirs)."""
    return _original_length(cfg.get("original_max_position_embeddings"), "original_max_position_embeddings")


def _kv_heads(cfg: Config, heads: int) -> int:
    if cfg.model_type == "falcon" and not cfg.get("new_decoder_architecture"):
        kv = 1 if cfg.get("multi_query") else heads  # transformers' Falcon ignores num_kv_heads here
        key = "multi_query"
    else:
        key, _ = cfg.first(KV_HEAD_KEYS)
        if key is None:  # a new-architecture Falcon's num_kv_heads defaults to its heads, whatever multi_query
            # says (FalconConfig's multi_query defaults to true; vLLM 0.34.0 falcon.py:116-117 reads num_kv_heads)
            multi_query = cfg.get("multi_query") and cfg.model_type != "falcon"
            key, kv = ("multi_query", 1) if multi_query else ("num_key_value_heads", heads)
        else:
            kv = cfg.int(KV_HEAD_KEYS)
    if kv > heads or heads % kv:
        raise KvplanError(
            f"config field '{key}' ({kv}) must divide num_attention_heads ({heads}): each KV head serves "
            f"a whole group of query heads."
        )
    return kv


def _head_dim(cfg: Config, hidden: int, heads: int) -> int:
    explicit = cfg.int(("head_dim", "kv_channels"), required=False)
    if explicit is not None:
        return explicit  # never derive when the config states it (Gemma, Qwen3, gpt-oss differ)
    if cfg.model_type in HEAD_DIM_REQUIRED:
        raise KvplanError(f"config field 'head_dim' is missing; {HEAD_DIM_REQUIRED[cfg.model_type]}.")
    if hidden % heads:
        raise KvplanError(
            f"config has no 'head_dim' and hidden_size ({hidden}) is not a multiple of "
            f"num_attention_heads ({heads}); add head_dim."
        )
    return hidden // heads


def parse_config(raw: Any, name: str, weights: Optional[Weights] = None,
                 transformers: Optional[str] = None) -> ModelSpec:
    """Turn a config.json (already loaded) into a ModelSpec. `weights` comes from safetensors metadata or a
    bundled spec when known; otherwise the size is estimated from the config. `transformers`: whose config classes
    fill the fields the file leaves out (class_defaults.transformers_for the planned release; None: the newest). A
    field of a nested text_config is named under it in errors (in_nested_config)."""
    try:
        return _parse_config(raw, name, weights, transformers)
    except KvplanError as exc:
        raise in_nested_config(exc, raw) from None


def _parse_config(raw: Any, name: str, weights: Optional[Weights], transformers: Optional[str]) -> ModelSpec:
    cfg = Config(raw, name, transformers)
    registered = _registered_architecture(raw, cfg)
    refuse_unmodelled(cfg.architecture, cfg.get, name, registered)
    notes: list = list(cfg.notes)
    n = cfg.int(LAYER_KEYS)
    hidden = cfg.int(HIDDEN_KEYS)
    dtype = _model_dtype(cfg, notes)
    kinds, rule = mixer_kinds(cfg, n)
    if cfg.model_type in ATTENTION_FREE:  # no attention heads (vLLM's IsAttentionFree models)
        heads = kv = head_dim = 0
        attention = None
    else:
        heads = cfg.int(HEAD_KEYS)
        kv = _kv_heads(cfg, heads)
        attention = attention_kind(cfg, kv, _head_dim(cfg, hidden, heads) if not cfg.has("kv_lora_rank") else 0)
        head_dim = getattr(attention, "head_dim", hidden // heads)
    layers = cache_layers(cfg, kinds, attention)
    if rule not in ("all layers full attention", "layer_types", "compress_ratios") and any(k != "full" for k in kinds):
        notes.append(f"layer kinds from {rule}")
    if note := laguna_before_031_note(cfg, n):
        notes.append(note)
    qcfg = cfg.get("quantization_config")
    if isinstance(qcfg, dict) and not quant_method(qcfg):
        notes.append(NO_METHOD_NOTE)
    checkpoint_kv = _checkpoint_kv(raw, cfg, layers, notes)

    expert_inter = expert_width(cfg)  # before the weights, which read it too
    groups = parameter_groups(cfg, hidden=hidden, layers=n, heads=heads, kv_heads=kv, head_dim=head_dim,
                              dtype=dtype)
    mtp = mtp_size(cfg, hidden=hidden, layers=n, heads=heads, kv_heads=kv, head_dim=head_dim, dtype=dtype)
    delta = load_delta(cfg, hidden=hidden, layers=n, heads=heads, kv_heads=kv, head_dim=head_dim, dtype=dtype)
    experts = cfg.optional_int(EXPERT_KEYS)
    # with routed experts each token takes 1 or more of them (vLLM's FusedMoE top_k); 0 planned as if every expert
    # were read (work.py touched_share's share for an unknown top-k)
    experts_per_token = cfg.optional_int(EXPERTS_PER_TOKEN_KEYS, minimum=1 if experts else 0)
    feed_forward = tuple(ffn_kinds(cfg, n)[0]) if experts else ()
    return ModelSpec(
        name=name,
        layers=layers,
        num_hidden_layers=n,
        num_attention_heads=heads,
        hidden_size=hidden,
        dtype=dtype,
        max_position_embeddings=_max_length(cfg),
        length_key="model_max_length" if cfg.has("model_max_length") else "max_position_embeddings",
        rope_factors=_rope_factors(cfg),
        rope_original=_rope_original(cfg),
        expert_min_partition=KIMI_MIN_EXPERT_PARTITION if cfg.model_type == "kimi_linear" else 0,
        weights=weights or estimate_weights(groups, dtype, delta),
        load_delta=delta,
        per_layer_input=per_layer_input(cfg),
        mla_up_elements=mla_up_projection(cfg, heads),
        mla_q_elements=mla_query_projection(cfg, heads, hidden),
        indexer_q_rank=cfg.optional_int("q_lora_rank") if cfg.has("index_topk") else 0,
        per_layer_table=per_layer_table(cfg, n),
        params=groups,
        # the width vLLM builds a dense MLP layer at (Llama 4: intermediate_size_mlp, LFM2: its adjusted ff dim),
        # not the experts' intermediate_size
        intermediate_size=feed_forward_sizes(cfg, hidden).dense,
        vocab_size=cfg.vocab_size(),
        experts=experts,
        moe_layers=feed_forward.count("moe"),
        ffn_kinds=feed_forward,
        experts_per_token=experts_per_token if experts else 0,
        expert_intermediate_size=expert_inter,
        notes=tuple(notes),
        model_type=cfg.model_type,
        architecture=cfg.architecture,
        registered_architecture=registered,
        architectures=_registry_names(raw, cfg),
        language_architectures=_language_names(raw),
        attention_switches=_attention_switches(raw),
        mtp=mtp,
        mtp_modules=mtp_blocks(cfg),
        mtp_module=mtp_module_groups(cfg, hidden=hidden, layers=n, heads=heads, kv_heads=kv, head_dim=head_dim,
                                     dtype=dtype),
        multimodal=_multimodal(cfg),
        vision_encoder=vision_encoder(cfg),
        media_prefix=media_prefix(cfg),
        audio_tower=isinstance(cfg.get("audio_config"), dict),
        canvas_length=diffusion_canvas(cfg),
        auto_kv_dtype="fp8_ds_mla" if is_v4(cfg) else checkpoint_kv,
        checkpoint_kv_dtype=checkpoint_kv,
        kv_cache_scheme=compressed_kv_scheme(cfg.get("quantization_config")) if checkpoint_kv == "fp8" else (),
        ssm_cache_dtype=_named_state_dtype(raw, "mamba_ssm_cache_dtype"),
        config_ssm_dtype=_named_state_dtype(raw, "mamba_ssm_dtype"),
        attention_sinks=attention_sinks(cfg, kinds),
        attention_softcap=attention_softcap(cfg),
        window_list=cfg.window_list(),
        quantization=checkpoint_method(cfg.get("quantization_config")),
        quantization_fields=quantization_fields(cfg.get("quantization_config")),
        module_settings=module_settings(cfg, hidden=hidden, layers=n, heads=heads, kv_heads=kv, head_dim=head_dim),
        dynamic_overrides=dynamic_overrides(cfg.get("quantization_config")),
        modelopt_legacy=modelopt_legacy_form(cfg.get("quantization_config")),
        transformers=transformers,
    )


# the values vLLM's mamba_ssm_cache_dtype takes (config/cache.py MambaDType: auto / float32 / float16 from 0.13.0 :32,
# bfloat16 too by 0.34.0 :175); the NemotronH and Qwen3.5 config handlers copy the config's value into it unchecked
# (engines/vllm_mamba_state.py)
MAMBA_DTYPES = ("auto", "float32", "float16", "bfloat16")


def _named_state_dtype(raw, key: str) -> str:
    """The SSM-state dtype the language model's own config names under `key`, as written; "" where it names none of
    MAMBA_DTYPES. mamba_ssm_cache_dtype is what vLLM's NemotronH handler reads (hf_config's, or a multimodal
    wrapper's text_config's: model_executor/models/config.py 0.34.0:1155-1158, :1173-1179), mamba_ssm_dtype what
    Qwen3.5's reads (hf_text_config's: 0.17.0:634-635, 0.32.0:862-863)."""
    value = language_model_config(raw).get(key) if isinstance(raw, dict) else None
    return value if value in MAMBA_DTYPES else ""


def _checkpoint_kv(raw: dict, cfg: Config, layers: tuple, notes: list) -> str:
    """The KV cache the checkpoint names: a ModelOpt one's (params.modelopt_kv_cache), read from the outer
    quantization_config only, as vLLM's resolve_kv_cache_dtype_string reads hf_config's (utils/torch_utils.py
    0.34.0:518-537); else a compressed-tensors kv_cache_scheme's fp8 (params.compressed_kv_cache) where vLLM builds an
    ordinary Attention layer, the one that reads it (model_executor/layers/attention/attention.py 0.34.0:308-312; an
    MLA layer does not: mla_attention.py 0.34.0 has no such step), with a note naming it. DeepSeek-V4 keeps its own
    fp8_ds_mla, which its attention makes of any fp8 dtype. Not mirrored: vLLM 0.15-0.31's own Kimi K2.5 config class
    copies its text_config's quantization_config outward (transformers_utils/configs/kimi_k25.py 0.15.0 and 0.16.0
    :116-117, 0.20.0-0.31.0 :118-119), so there a ModelOpt KV cache named only in text_config is stored under auto too;
    0.32 on takes transformers' Kimi_K25Config (transformers_utils/config.py 0.32.0:103), which copies nothing
    (transformers 5.22.2 configuration_kimi_k25.py): a rule by release on one family, for an MLA model."""
    if is_v4(cfg):
        return ""
    kv = modelopt_kv_cache(raw.get("quantization_config"))
    if not kv and any(isinstance(layer, FullAttention) for layer in layers):
        kv = compressed_kv_cache(cfg.get("quantization_config"))
    if kv:
        notes.append(checkpoint_kv_note(checkpoint_method(cfg.get("quantization_config")), kv))
    return kv


def eagle_head_groups(raw: dict, name: str, eagle3: bool, target_vocab: int, dtype: str,
                      transformers: Optional[str] = None) -> tuple:
    """ParamGroups of an EAGLE head's config as vLLM builds it (tensors.eagle_head_tensors), in `dtype` (the
    target's: the draft's ModelConfig takes it) and the head's own quantisation; its omitted fields filled by
    `transformers` (the head's spec's: ModelSpec.transformers)."""
    cfg = Config(raw, name, transformers)
    hidden, heads = cfg.int(HIDDEN_KEYS), cfg.int(HEAD_KEYS)
    kv = _kv_heads(cfg, heads)
    dims = {"hidden": hidden, "heads": heads, "kv_heads": kv, "head_dim": _head_dim(cfg, hidden, heads)}
    tensors = eagle_head_tensors(cfg, dims, eagle3, target_vocab)
    return tuple(g for g in grouped([(tensors, 1)], cfg.get("quantization_config"), dtype) if g.parameters)


def _multimodal(cfg: Config) -> bool:
    """A vision_config beside the language model, or an architecture named as vLLM names its multimodal models
    (Qwen3_5ForConditionalGeneration, Mistral3ForConditionalGeneration): vLLM loads and profiles their towers. The
    top-level name: the class vLLM serves (registry.py 0.32.0:1323-1374 inspects hf_config.architectures, config/
    model.py :730), whatever class a nested language-model config names."""
    return isinstance(cfg.get("vision_config"), dict) or cfg.top_architecture.endswith("ForConditionalGeneration")


# the config keys vLLM's decoder layers pick their attention by (engines/vllm_config_read.py ENCODER_ONLY_FROM): the
# switches to bidirectional attention, openpangu.py's keys for its MLA and sink attention (CAUSAL_BY_KEYS,
# build_refusal), and MiMo-V2's sinks on its sliding layers (mimo_v2_flash.py 0.20.0:360-362, mimo_v2.py
# 0.32.0:390-392; its full layers get none; the DiffKV backend they meet: engines/vllm_mimo.py)
SWITCH_KEYS = ("is_causal", "is_decoder", "param_sink_number", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
               "kv_lora_rank", "add_swa_attention_sink_bias")
# the keys a config handler reads from the outer config and the language model's both: ColQwen3_5Config's contract
# (models/config.py 0.27.0:845-857, 0.34.0:1418-1430: hf_config and hf_text_config, once where they are one)
BOTH_LEVELS_KEYS = ("retrieval_attention_contract",)


def _attention_switches(raw) -> tuple:
    """((key, value), ...) of SWITCH_KEYS as the language model's own config sets them. Of ENCODER_ONLY_FROM's
    modules only Qwen3.5's reads a nested config (hf_text_config, qwen3_5.py 0.34.0:132), and Qwen2's through
    get_text_config (qwen2.py 0.34.0:355), so there an outer config's key does not reach a nested text_config; the
    others are built from flat configs, where the two are one.
    BOTH_LEVELS_KEYS as both configs declare them: the one value, or a tuple of the two where they disagree."""
    if not isinstance(raw, dict):
        return ()
    own = language_model_config(raw)
    switches = [(key, own[key]) for key in SWITCH_KEYS if own.get(key) is not None]
    for key in BOTH_LEVELS_KEYS:
        declared = [config[key] for config in ((raw, own) if own is not raw else (raw,)) if config.get(key) is not None]
        if declared:
            switches.append((key, declared[0] if all(v == declared[0] for v in declared) else tuple(declared)))
    return tuple(switches)


def _registry_names(raw, cfg: Config) -> tuple:
    """The top-level config's `architectures` (the flattened one's where it names none) where it names more than one:
    vLLM's registry walks them all (engines/vllm_registry.py served_name), so which one it serves depends on the
    release. The reader's own rules key on the first (Config.architecture): model/ reads no registry."""
    top = raw.get("architectures") if isinstance(raw, dict) else None  # checked by Config
    names = top if isinstance(top, list) and top else cfg.get("architectures")
    return tuple(names) if isinstance(names, list) and len(names) > 1 else ()


def _language_names(raw) -> tuple:
    """The nested language-model config's own `architectures` (language_model_config's) where it names more than one:
    a wrapper that hands that config on has its language model built as the first the release lists
    (engines/vllm_registry.py language_model_architecture). The reader's own rules key on the first."""
    inner = language_model_config(raw) if isinstance(raw, dict) else raw
    names = inner.get("architectures") if inner is not raw else None  # checked by Config
    return tuple(names) if isinstance(names, list) and len(names) > 1 else ()


def _registered_architecture(raw, cfg: Config) -> str:
    """The top-level config's architecture where a nested language model's config (which the reader flattens over
    it: config._first_text_config) names another; vLLM picks its config handler and module by the top-level one
    (model_executor/models/registry.py by hf_config.architectures), so its encoder-only rules read that."""
    return cfg.top_architecture if cfg.top_architecture != cfg.architecture else ""
