"""The one place a raw config.json is read. `Config` flattens multimodal wrappers to the language model, fills
the defaults a family's config class supplies, and checks every field the rules use once, when it is built
(FIELDS: type and range; then the consistency of fields with each other), so that every getter hands out a
value already known good: integers are integers (an integral float is accepted; a fractional float, a bool,
NaN or Infinity is not), inside a stated range, with an error naming the field and what would be valid.
Nothing downstream sees the raw dict."""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Optional

from ..errors import json_kind, json_value, KvplanError, quote
from ..units import MAX_TOKENS
from .class_defaults import family_defaults, no_default_error, with_defaults

# Sane ceilings, far above any real model, so that a typo or an attack cannot ask for unbounded work or
# overflow an arithmetic result. Layers get their own, lower ceiling: planning walks every layer a few hundred
# times per plan (TP and context searches), and 1,024 is 8x the deepest published model (Llama-3.1-405B, 126).
MAX_COUNT = 2**20  # heads, dims, experts
MAX_LAYERS = 2**10
MAX_VOCAB = 2**24  # tokens: MAX_TOKENS, kvplan/units.py


# Multimodal wrappers keep the language model's fields one level down.
NESTED_TEXT_KEYS = ("text_config", "llm_config", "language_config")
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
HEAD_KEYS = ("num_attention_heads", "n_head", "num_heads", "n_heads")
EXPERT_KEYS = ("n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts")  # the last: ERNIE-4.5
# top_k_experts: Gemma 4's MoE block (vLLM 0.32.0 gemma4.py:648 top_k=config.top_k_experts)
EXPERTS_PER_TOKEN_KEYS = ("num_experts_per_tok", "num_experts_per_token", "moe_topk", "moe_k", "top_k_experts")
POSITION_KEYS = ("max_position_embeddings", "n_positions", "seq_length", "max_seq_len")
VOCAB_KEYS = ("vocab_size", "padded_vocab_size")


def _ints(names: str, minimum: int, maximum: int) -> dict:
    return {name: ("int", minimum, maximum) for name in names.split()}


# Every field a rule reads: (kind, minimum, maximum) for integers, or the kind of value. A field that is
# present (not null) must hold to this whether or not this model's rules end up reading it. Names too generic
# to mean the same in every family ("bias", "use_bias"), or whose type differs between families
# (sliding_window_pattern: 6 in Gemma 3, "LLLG" in EXAONE 4), are checked by the getter that reads them instead.
FIELDS = {
    **_ints("num_hidden_layers n_layer num_layers n_layers", 1, MAX_LAYERS),
    **_ints("num_attention_heads n_head num_heads n_heads num_key_value_heads num_kv_heads n_head_kv n_kv_heads "
            "multi_query_group_num hidden_size n_embd d_model dim head_dim kv_channels kv_lora_rank "
            "linear_num_key_heads linear_num_value_heads linear_key_head_dim linear_value_head_dim "
            "linear_conv_kernel_dim mamba_num_heads mamba_n_heads mamba_head_dim mamba_d_head ssm_state_size "
            "mamba_d_state n_groups "
            "mamba_n_groups conv_kernel mamba_d_conv mamba_expand attn_layer_period full_attention_interval "
            "conv_L_cache conv_dim block_dim block_multiple_of block_ff_dim "
            "no_rope_layer_interval expert_layer_period num_ln_in_parallel_attn n_group topk_group moe_layer_interval "
            "mm_tokens_per_image swa_num_attention_heads swa_num_key_value_heads swa_head_dim",
            1, MAX_COUNT),
    # zero means "none" for these (no q low-rank, dense model, no shared expert, every layer MoE...)
    **_ints("intermediate_size n_inner ffn_hidden_size moe_intermediate_size intermediate_size_mlp "
            "shared_expert_intermediate_size n_shared_experts n_routed_experts num_local_experts num_experts "
            "num_experts_per_tok num_experts_per_token moe_topk top_k_experts first_k_dense_replace "
            "interleave_moe_layer_step decoder_sparse_step q_lora_rank qk_rope_head_dim qk_nope_head_dim v_head_dim "
            "attn_layer_offset max_window_layers expert_layer_offset moe_shared_expert_intermediate_size "
            "num_dense_layers num_shared_experts num_expert_group swa_v_head_dim moe_num_experts moe_k "
            "moe_num_shared_experts moe_layer_start_index", 0, MAX_COUNT),
    **_ints("moe_layer_end_index", -1, MAX_COUNT),  # -1: the last layer (transformers' Ernie4_5_MoeConfig)
    **_ints("vocab_size padded_vocab_size", 1, MAX_VOCAB),
    **_ints("max_position_embeddings n_positions seq_length max_seq_len attention_chunk_size model_max_length "
            "sliding_window_size mamba_chunk_size", 1, MAX_TOKENS),
    # one window for every layer (0 or null: none), or a list of per-layer windows (WINDOW_LIST)
    "sliding_window": ("window",),
    **{name: ("bool",) for name in "multi_query new_decoder_architecture use_sliding_window tie_word_embeddings "
       "attention_bias mlp_bias parallel_attn mamba_proj_bias mamba_conv_bias use_conv_bias norm_topk_prob "
       "tie_embedding conv_bias block_auto_adjust_ff_dim use_expert_bias add_swa_attention_sink_bias".split()},
    **{name: ("str",) for name in "model_type torch_dtype dtype topk_method scoring_func".split()},
    "quantization_config": ("dict",),
    "compression_config": ("dict",),
    "linear_attn_config": ("dict",),
    "vision_config": ("dict",),
    # transformers reads either as a mapping (rope_config_validation: rope_scaling.get("rope_type")), per layer type
    # a mapping of mappings; anything else stops its config class, so vLLM never loads such a model
    "rope_scaling": ("dict",),
    "rope_parameters": ("dict",),
    **{name: ("list",) for name in "layer_types no_rope_layers moe_layers mlp_only_layers full_attn_idxs "
       "hybrid_layer_pattern".split()},
    # an integer period in DeepSeek (checked where layers.ffn_kinds reads it), a per-layer list in MiMo-V2
    "moe_layer_freq": ("int or list",),
    "hybrid_override_pattern": ("list or str",),
    # transformers' PretrainedConfig.architectures: a list of class names, of which vLLM's registry serves the first
    # its release lists (engines/vllm_registry.py served_name) and kvplan's reader keys its own rules on the first
    # (Config.architecture); a bare string would read as its first character
    "architectures": ("names",),
    # a wrapper's language model (NESTED_TEXT_KEYS): a mapping, else nothing of it could be read
    **{name: ("dict",) for name in NESTED_TEXT_KEYS},
}

# The use_bidirectional_attention value on which a family's transformers config class rewrites the file's
# sliding_window W to W // 2 + 1, a two-sided window's radius ("due to fa we set exclusive bounds"). vLLM's config is
# that object (AutoConfig; 0.34.0 transformers_utils/config.py:404-415 builds gemma4_text's by Gemma4TextConfig) and
# builds the sliding layers from the rewritten attribute (gemma3.py:155, gemma4.py:473 per_layer_sliding_window), so
# each holds W // 2 + 1 tokens. Google's Gemma 4 checkpoints ship null (E2B, E4B) or "vision" (26B-A4B, 31B): "all"
# is a derivative's (a fine-tuned reranker's). EmbeddingGemma (architecture Gemma3TextModel, gemma3_text, true) is
# not sized at all: vLLM makes its layers encoder-only, with no cache (0.34.0 models/config.py:218-222,
# gemma3.py:165-174), so model/unmodelled.py ENCODER_ONLY refuses it; the gemma3_text entry serves only a causal
# gemma3_text architecture that sets the flag, whose decoder layers vLLM builds from the rewritten window.
BIDIRECTIONAL_WINDOW = {
    "gemma3_text": True,  # Gemma3TextConfig, from 4.57.0 (configuration_gemma3.py:228-229; 5.22.2 :102-103)
    # Gemma4TextConfig, since Gemma 4's first release (5.5.0 configuration_gemma4.py:178-179; 5.22.2 :186-188;
    # 5.25.0 :181-183); from 5.16.1 (not 5.12.0) to_dict writes W back, so a saved config is halved once on load
    "gemma4_text": "all",
    "gemma4_unified_text": "all",  # Gemma4UnifiedTextConfig (5.22.2 configuration_gemma4_unified.py:153-155)
    "diffusion_gemma_text": "all",  # DiffusionGemmaTextConfig (5.22.2 configuration_diffusion_gemma.py:106-108)
}


def first_architecture(value: Any) -> str:
    """The first class name of an `architectures` value FIELDS has checked (a list of strings), "" for none."""
    return value[0] if isinstance(value, list) and value else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def as_int(value: Any) -> Optional[int]:
    """`value` as an int when it is one (or an integral, finite float), else None."""
    if _is_int(value):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _range_error(key: str, value: Any, minimum: int, maximum: int) -> KvplanError:
    number = as_int(value)
    if number is not None and number > maximum:
        return KvplanError(f"config field '{key}' must be at most {maximum:,} (far above any real model), got "
                           f"{json_value(value)}.")
    kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    return KvplanError(f"config field '{key}' must be {kind}, got {json_value(value)}.")


def checked_int(key: str, value: Any, minimum: int, maximum: int) -> int:
    number = as_int(value)
    if number is None or not minimum <= number <= maximum:
        raise _range_error(key, value, minimum, maximum)
    return number


# sliding_window as a list: layer i attends within entry i % len (null: in full), as vLLM 0.6.5-0.10.0's llama.py reads
# it (LlamaAttention, 0.6.6:171-182, 0.10.0:170-181); what each release makes of it: engines/vllm_window_list.py
WINDOW_LIST = ("config field 'sliding_window' must be an integer >= 0 (0 or null: no window) or a non-empty list of "
               "per-layer windows (positive integers, null for a full-attention layer), got {value}.")


def _check_window(key: str, value: Any) -> None:
    if not isinstance(value, list):
        if as_int(value) is None:
            raise KvplanError(WINDOW_LIST.format(value=json_value(value)))
        checked_int(key, value, 0, MAX_TOKENS)
        return
    numbers = [as_int(item) for item in value if item is not None]
    if not value or len(value) > MAX_LAYERS or None in numbers or \
            any(not 1 <= number <= MAX_TOKENS for number in numbers):
        raise KvplanError(WINDOW_LIST.format(value=json_value(value)))


def _check_field(key: str, value: Any) -> None:
    spec = FIELDS[key]
    kind = spec[0]
    if kind == "int":
        checked_int(key, value, spec[1], spec[2])
    elif kind == "window":
        _check_window(key, value)
    elif kind == "bool" and not isinstance(value, bool):
        raise KvplanError(f"config field '{key}' must be true or false, got {json_value(value)}.")
    elif kind == "str" and not isinstance(value, str):
        raise KvplanError(f"config field '{key}' must be a string, got {json_value(value)}.")
    elif kind == "dict" and not isinstance(value, dict):
        raise KvplanError(f"config field '{key}' must be a mapping of fields, got {json_value(value)}.")
    elif kind == "list" and not isinstance(value, list):
        raise KvplanError(f"config field '{key}' must be a list (one entry per layer), got {json_value(value)}.")
    elif kind == "int or list" and as_int(value) is None and not isinstance(value, list):
        raise KvplanError(f"config field '{key}' must be an integer or a list (one entry per layer), got "
                          f"{json_value(value)}.")
    elif kind == "list or str" and not isinstance(value, (list, str)):
        raise KvplanError(f"config field '{key}' must be a string or list of per-layer codes, got {json_value(value)}.")
    elif kind == "names" and not (isinstance(value, list) and all(isinstance(name, str) for name in value)):
        raise KvplanError(f"config field '{key}' must be a list of class names (such as [\"LlamaForCausalLM\"]), "
                          f"got {json_value(value)}.")


def _per_layer_widths(cfg: dict) -> dict:
    """Gemma 3n names one MLP width per layer (transformers Gemma3nTextConfig.intermediate_size, a list, which vLLM
    0.32.0 gemma3n.py:468 indexes by layer): kept whole as 'intermediate_sizes', its first entry as intermediate_size
    for the readers that want one width."""
    widths = cfg.get("intermediate_size")
    if not (isinstance(widths, list) and str(cfg.get("model_type") or "").lower().startswith("gemma3n")):
        return cfg
    for width in widths:
        checked_int("intermediate_size", width, 1, MAX_COUNT)
    return {**cfg, "intermediate_size": widths[0] if widths else None, "intermediate_sizes": widths}


def _first_text_config(raw: dict) -> dict:
    """The first nested language-model config that names its layers, or whose family's config class fills them
    (class_defaults.FAMILY_FIELDS: a Gemma 4 Unified text_config may hold only its model_type), over the outer one;
    else raw."""
    inner = language_model_config(raw)
    if inner is raw:
        _check_null_text_config(raw)
        return raw
    outer = {k: v for k, v in raw.items() if k not in NESTED_TEXT_KEYS}
    merged = {**outer, **inner}  # the language model wins; the outer config fills gaps (torch_dtype)
    # but not the quantization_config: vLLM reads the wrapper's before its text_config's, for the method (config/
    # model.py 0.11.0:886-890; model_arch_config_convertor.py get_quantization_config 0.14.0:175-181, 0.34.0:285-292)
    # and the weights (model_loader/weight_utils.py get_quant_config 0.11.0:239-244, 0.32.0:235-240), and an
    # hf_quant_config.json is set as the wrapper's (quantization.MODELOPT_FILE)
    if outer.get("quantization_config") is not None:
        merged["quantization_config"] = outer["quantization_config"]
    return merged


# compressed-tensors checkpoints of 2024 (llm-compressor before it wrote quantization_config) keep their settings
# under "compression_config". vLLM reads the top-level one where hf_config has no quantization_config, in every
# release 0.11-0.34: for the method (config/model.py 0.11.0:857-861 _parse_quant_hf_config;
# model_arch_config_convertor.py 0.14.0:138-142, 0.32.0:263-267, 0.34.0:241-245) and for the weights
# (model_loader/weight_utils.py get_quant_config 0.11.0:245-247, 0.32.0:240-242, 0.34.0:261-263). kvplan reads it as
# the wrapper's quantization_config, so that it comes before a text_config's, as in the method's reader (the weights'
# reader takes the text_config's first; no checkpoint with both is known). A text_config's compression_config alone
# (no quantization_config above or beside it) makes the method compressed-tensors (config/model.py 0.11.0:886-890;
# model_arch_config_convertor.py 0.34.0:285-292) but the weights' reader never reads it (weight_utils.py 0.34.0
# :256-263) and, CompressedTensorsConfig naming no settings file (compressed_tensors.py 0.34.0:388-389), calls
# CompressedTensorsConfig() without its arguments (weight_utils.py 0.34.0:381-396): a TypeError. kvplan refuses it
# (TEXT_COMPRESSION).
COMPRESSION_KEY = "compression_config"
TEXT_COMPRESSION = ("config field 'text_config.compression_config' makes vLLM's quantization method compressed-tensors "
                    "but its weight loader never reads it and calls CompressedTensorsConfig() with no settings, a "
                    "TypeError at start-up; move compression_config to the top level of config.json, where vLLM "
                    "reads it for both.")
COMPRESSION_NOTE = ("quantization settings read from config.json's compression_config (compressed-tensors' key before "
                    "quantization_config), as vLLM does")


SETTINGS_KEY = "quantization_config"


class CompressionSettings(dict):
    """compression_config's settings, read as the quantization_config: they remember the key they came from, so
    that an error about them names it (settings_key)."""

    key = COMPRESSION_KEY


def settings_key(qcfg) -> str:
    """The config.json key a quantization settings object came from: compression_config or quantization_config."""
    return getattr(qcfg, "key", SETTINGS_KEY)


def _check_text_compression(raw: dict, compressed: bool) -> None:
    """A text_config's compression_config that vLLM would read for the method alone (TEXT_COMPRESSION)."""
    text = raw.get("text_config")
    if compressed or raw.get("quantization_config") is not None or not isinstance(text, dict):
        return
    if text.get("quantization_config") is None and text.get(COMPRESSION_KEY) is not None:
        raise KvplanError(TEXT_COMPRESSION)


def _names_layers(config: dict) -> bool:
    """Whether `config` names its layer count, or its family's config class fills one in (class_defaults)."""
    filled = family_defaults(str(config.get("model_type") or "").lower())
    return any({**filled, **config}.get(key) is not None for key in LAYER_KEYS)


def _check_null_text_config(raw: dict) -> None:
    """A wrapper whose language model is a null text_config and whose outer config names no layers either: the
    fields are nowhere (transformers would build its config class's default model, a guess kvplan does not make)."""
    empty = next((key for key in NESTED_TEXT_KEYS if key in raw and raw[key] is None), None)
    if empty and not _names_layers(raw):
        raise KvplanError(f"config field '{empty}' is null and the config names no layers of its own "
                          f"(num_hidden_layers); give {empty} the language model's fields.")


def language_model_config(raw: dict) -> dict:
    """The nested language-model config _first_text_config reads over the outer one, as its file has it (vLLM's
    hf_text_config), or raw where none is nested. A nested config that is not a mapping is refused here, before
    anything reads around it."""
    for key in NESTED_TEXT_KEYS:
        if raw.get(key) is not None:
            _check_field(key, raw[key])
        inner = raw.get(key)
        if isinstance(inner, dict) and _names_layers(inner):
            return inner
    return raw


def in_nested_config(exc: KvplanError, raw: Any) -> KvplanError:
    """`exc` with each config field the nested language-model config gave (language_model_config: text_config,
    llm_config, language_config) written under it, 'text_config.num_hidden_layers' as vision_config.* fields are:
    Config flattens the nested config, so its readers name the bare key. The wrapper's own quantization_config and
    architectures, which win over a nested one, keep their name; other errors (FieldError...) come back as they are."""
    if type(exc) is not KvplanError or not isinstance(raw, dict):
        return exc
    nested = next((key for key in NESTED_TEXT_KEYS if isinstance(raw.get(key), dict) and _names_layers(raw[key])),
                  None)  # the one language_model_config reads
    if nested is None:
        return exc
    inner = raw[nested]
    own = {key for key in ("quantization_config", "architectures") if raw.get(key) is not None}

    def prefixed(match) -> str:
        key = match.group(1)
        return f"config field '{nested}.{key}'" if key in inner and key not in own else match.group(0)

    text = re.sub(r"config field '([^'.]+)'", prefixed, str(exc))
    return exc if text == str(exc) else KvplanError(text)


class Config:
    """A config.json, flattened to its language model, with validated access to its fields. `notes` holds
    the consistency warnings (a window longer than the model's positions) for the reader to pass on."""

    def __init__(self, raw: Any, name: str, transformers: Optional[str] = None):
        if not isinstance(raw, dict):
            raise KvplanError(f"config for {quote(name)} must be a JSON object of fields, got {json_kind(raw)}.")
        compressed = raw.get("quantization_config") is None and raw.get(COMPRESSION_KEY) is not None
        _check_text_compression(raw, compressed)
        if compressed:
            _check_field(COMPRESSION_KEY, raw[COMPRESSION_KEY])
        settings = CompressionSettings(raw[COMPRESSION_KEY]) if compressed else None
        cfg = _first_text_config({**raw, "quantization_config": settings} if compressed else raw)
        if cfg is not raw and raw.get("architectures") is not None:  # the registry's key (parse.py reads it)
            _check_field("architectures", raw["architectures"])
        if cfg.get("model_type") is not None:
            _check_field("model_type", cfg["model_type"])
        family = str(cfg.get("model_type") or "").lower()
        self.fields = _per_layer_widths(with_defaults(cfg, family, transformers))  # as that transformers fills them
        self.name = name
        self.notes: list = [COMPRESSION_NOTE] if compressed else []
        for key, value in self.fields.items():
            if value is not None and key in FIELDS:
                _check_field(key, value)
        if missing := no_default_error(self.fields, family, self.optional_int(EXPERT_KEYS)):
            raise missing
        # the top-level config's first class, which vLLM's registry and config handlers key on (a nested
        # language-model config's own `architectures` win in fields); model/ reads no registry, so the first
        self.top_architecture = first_architecture(raw.get("architectures")) or self.architecture
        self._bidirectional_window(family)
        self._check_consistency()

    def _bidirectional_window(self, family: str) -> None:
        """sliding_window as the family's config class rewrites it for a two-sided window (BIDIRECTIONAL_WINDOW)."""
        trigger, flag = BIDIRECTIONAL_WINDOW.get(family), self.fields.get("use_bidirectional_attention")
        if trigger is None or isinstance(self.fields.get("sliding_window"), list):
            return
        window = self.optional_int("sliding_window", maximum=MAX_TOKENS)
        if trigger is None or flag != trigger or not isinstance(flag, type(trigger)) or not window:
            return
        self.fields = {**self.fields, "sliding_window": window // 2 + 1}
        self.notes.append(f"sliding_window {window:,} reads as {window // 2 + 1:,}: with use_bidirectional_attention "
                          f"{json_value(flag)}, transformers' config (which vLLM builds from) keeps the two-sided "
                          f"window's radius, W // 2 + 1")

    def _check_consistency(self) -> None:
        """Fields that are each fine but contradict each other."""
        experts = self.optional_int(EXPERT_KEYS)
        key, per_token = self.first(EXPERTS_PER_TOKEN_KEYS)
        if experts and per_token is not None and as_int(per_token) > experts:
            raise KvplanError(f"config field '{key}' ({per_token}) must be at most the number of routed experts "
                              f"({experts}).")
        if self.has("attn_layer_period"):
            period, offset = self.int("attn_layer_period"), self.optional_int("attn_layer_offset")
            if offset >= period:
                raise KvplanError(f"config field 'attn_layer_offset' ({offset}) must be less than "
                                  f"attn_layer_period ({period}): otherwise no layer is attention.")
        positions = self.int(POSITION_KEYS, required=False, maximum=MAX_TOKENS)
        for window_key in ("sliding_window", "attention_chunk_size"):
            value = self.fields.get(window_key)
            window = max((as_int(w) for w in value if w is not None), default=0) if isinstance(value, list) else \
                self.optional_int(window_key, maximum=MAX_TOKENS)
            in_use = window_key != "sliding_window" or self.fields.get("use_sliding_window") is not False
            if positions and in_use and window > positions:
                self.notes.append(f"{window_key} ({window:,}) exceeds max_position_embeddings ({positions:,}): "
                                  f"such layers hold every token, as full attention does")

    # ---- raw access (values of FIELDS are checked already) -------------------------------------------------

    def has(self, key: str) -> bool:
        return self.fields.get(key) is not None

    def get(self, key: str, default: Any = None) -> Any:
        value = self.fields.get(key)
        return default if value is None else value

    def first(self, keys: Iterable[str]) -> tuple[Optional[str], Any]:
        for key in keys:
            if self.fields.get(key) is not None:
                return key, self.fields[key]
        return None, None

    @property
    def model_type(self) -> str:
        value = self.fields.get("model_type")
        return value.lower() if isinstance(value, str) else ""

    @property
    def architecture(self) -> str:
        """The first of `architectures` (checked a list of class names), or "" where the config names none."""
        return first_architecture(self.fields.get("architectures"))

    def vocab_size(self) -> int:
        """The vocabulary, the rows of the embedding and LM head (vLLM 0.34.0 llama.py:375 config.vocab_size).
        Required: where a file leaves it out, transformers' config class fills its own default (LlamaConfig's 32,000,
        transformers 5.22.2 configuration_llama.py:64), rarely the checkpoint's, so kvplan asks rather than guess;
        a family whose published configs rely on that default has it in class_defaults.FAMILY_FIELDS."""
        return self.int(VOCAB_KEYS, maximum=MAX_VOCAB)

    # ---- checked access ------------------------------------------------------------------------------------

    def int(self, keys, *, required: bool = True, minimum: int = 1, maximum: int = MAX_COUNT,
            default: Optional[int] = None) -> Optional[int]:
        """The first of `keys` present, as an integer in [minimum, maximum] (and in its FIELDS range). Missing:
        `default`, or an error when required."""
        keys = (keys,) if isinstance(keys, str) else tuple(keys)
        key, value = self.first(keys)
        if key is None:
            if default is not None or not required:
                return default
            also = f" (nor {', '.join(keys[1:])})" if len(keys) > 1 else ""
            raise KvplanError(f"config field '{keys[0]}' is missing{also}; it must be a positive integer.")
        if key == "sliding_window" and isinstance(value, list):
            raise KvplanError(f"config field 'sliding_window' is a list of per-layer windows, which kvplan reads only "
                              f"where no other field types the layers ({self.name}'s rules want one window); give "
                              f"one integer.")
        return checked_int(key, value, minimum, maximum)

    def window_list(self) -> tuple:
        """sliding_window where it is a list of per-layer windows (WINDOW_LIST; None: a full-attention layer), with
        use_sliding_window not false; () otherwise."""
        value = self.fields.get("sliding_window")
        if not isinstance(value, list) or self.fields.get("use_sliding_window") is False:
            return ()
        return tuple(None if item is None else as_int(item) for item in value)

    def optional_int(self, keys, *, minimum: int = 0, maximum: int = MAX_COUNT) -> int:
        """An optional count: 0 when absent; checked like int() when present."""
        return self.int(keys, required=False, minimum=minimum, maximum=maximum) or 0

    def flag(self, key: str, default: bool) -> bool:
        value = self.fields.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise KvplanError(f"config field '{key}' must be true or false, got {json_value(value)}.")
        return value

    def int_list(self, key: str) -> list:
        """A list of layer indices (non-negative integers below MAX_LAYERS)."""
        value = self.fields.get(key)
        if value is None:
            return []
        items = [as_int(v) for v in value] if isinstance(value, list) and len(value) <= MAX_LAYERS else None
        if items is None or any(v is None or not 0 <= v < MAX_LAYERS for v in items):
            raise KvplanError(f"config field '{key}' must be a list of layer indices, got {json_value(value)}.")
        return items

    def per_layer(self, key: str, n: int, mapping: dict, value: Any = None) -> list:
        """One entry per layer (a list, or a string of one-letter codes), each mapped through `mapping`; `value`:
        the field as the caller has trimmed it (else the file's)."""
        value = self.fields[key] if value is None else value
        if not isinstance(value, (list, str)) or len(value) != n:
            count = f"{len(value)} entries: " if isinstance(value, (list, str)) else ""
            raise KvplanError(f"config field '{key}' must give one entry per layer ({n}), got {count}"
                              f"{json_value(value)}.")
        kinds = []
        for item in value:
            kind = mapping.get(str(item).lower()) if isinstance(item, str) or _is_int(item) else None
            if kind is None:
                valid = ", ".join(sorted(mapping))
                raise KvplanError(f"config field '{key}' has unknown layer type {json_value(item)}; known: {valid}.")
            kinds.append(kind)
        return kinds
