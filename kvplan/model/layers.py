"""Which decoder layer is which kind: the rules each family's config uses to say it, in one place. The
parameter groups and the cache layout both follow from this one answer."""

from __future__ import annotations

import math
from typing import Optional
from dataclasses import replace

from ..errors import json_value, KvplanError
from .config import EXPERT_KEYS, MAX_COUNT, MAX_TOKENS, Config, checked_int
from .kda import kda_config, kda_mixers, kda_state
from .kinds import (ChunkedAttention, FullAttention, IndexerKeys, LinearState, MLALatent, SharedKV,
                    SlidingWindow, V4Compressed, V4CompressorState, V4IndexerKeys, V4Window)

LAYER_TYPE_NAMES = {
    "full_attention": "full", "attention": "full", "global_attention": "full", "full": "full",
    "global": "full",
    "sliding_attention": "sliding", "sliding_window": "sliding", "local_attention": "sliding",
    "sliding": "sliding", "local": "sliding",
    "chunked_attention": "chunked",
    "linear_attention": "linear", "linear": "linear", "gated_deltanet": "linear",
    "mamba": "linear", "mamba2": "linear",
    "conv": "linear",  # LFM2's short convolution blocks: a fixed window per sequence
    "mlp": "none", "moe": "none",  # Nemotron-H as transformers 5 writes it: feed-forward-only blocks
}
# Nemotron-H: M mamba, * attention, - MLP, E MoE (each block is one of them, no block has both)
NEMOTRON_H_CODES = {"m": "linear", "*": "full", "-": "none", "e": "none"}
NEMOTRON_H_FFN = {"m": "none", "*": "none", "-": "dense", "e": "moe"}
NEMOTRON_H_FFN_TYPES = {"mlp": "dense", "moe": "moe"}
HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model", "dim")
MAMBA2_HEADS = ("mamba_num_heads", "mamba_n_heads")  # Nemotron-H, Granite 4.0 (granitemoehybrid)
# Attention-free models, Mamba blocks only (vLLM models/mamba.py MambaForCausalLM, falcon_mamba.py, mamba2.py
# Mamba2ForCausalLM: IsAttentionFree): every layer a mixer without an MLP, no attention heads
MAMBA1_ONLY = ("mamba", "falcon_mamba")
ERNIE_MOE_RANGE = ("moe_layer_start_index", "moe_layer_end_index", "moe_layer_interval")  # ERNIE-4.5 MoE
ATTENTION_FREE = MAMBA1_ONLY + ("mamba2",)
# Families whose every decoder layer is an MoE block with no dense fallback, and the field their expert count is in
# (vLLM 0.32.0 mixtral.py:247, olmoe.py:232, phimoe.py:404, granitemoe.py:266, gpt_oss.py:392, minimax_m2.py:97: a
# FusedMoE of config's count; Qwen2/3-MoE, DeepSeek, Jamba, GraniteMoeHybrid fall back to a dense MLP at 0)
ALWAYS_MOE = {"mixtral": "num_local_experts", "olmoe": "num_experts", "phimoe": "num_local_experts",
              "granitemoe": "num_local_experts", "gpt_oss": "num_local_experts", "minimax_m2": "num_local_experts"}
# Families whose vLLM model builds each layer's feed-forward block from mlp_layer_types, "dense" or "sparse" (MoE)
# per layer (0.34.0: laguna.py:517-535, cohere2_moe.py:447-457, exaone_moe.py:336-350, AXK1.py:98-100 and
# :657-664, step3p5.py:112-118, models/beam/nvidia/model.py:101-115, models/muse_spark/nvidia/model.py:1464-1499;
# 0.32.0: laguna.py:519-535, cohere2_moe.py:351-362, exaone_moe.py:336-350; its AXK1.py reads first_k_dense_replace,
# from which transformers' config derives the list). A dense layer is an MLP of
# intermediate_size (Cohere2 MoE: prefix_dense_intermediate_size, tensors.feed_forward_sizes). Other families whose
# transformers config class writes the list (DeepSeek-V3.2, GLM-5, Kimi Linear, ...) keep the fields vLLM reads
# there (first_k_dense_replace), from which the list was derived.
MLP_LAYER_TYPES_FAMILIES = ("laguna", "cohere2_moe", "exaone_moe", "axk1", "step3p5", "beam", "muse_spark_text")
MLP_LAYER_TYPE_NAMES = {"dense": "dense", "sparse": "moe"}
MAMBA2_HEAD_DIM = ("mamba_head_dim", "mamba_d_head")


def _window_on(cfg: Config) -> bool:
    window = cfg.get("sliding_window")
    on = isinstance(window, (int, float)) and not isinstance(window, bool) and window > 0
    return (on or any(cfg.window_list())) and cfg.get("use_sliding_window", True) is not False


def listed_window(cfg: Config, i: int) -> Optional[int]:
    """Layer i's entry of a per-layer sliding_window list (config.WINDOW_LIST): entry i % len, None for full."""
    windows = cfg.window_list()
    return windows[i % len(windows)]


# Families whose attention layers vLLM builds with a learned sink a query head (Attention(..., sinks=...)), which the
# attention backend must take (v1/attention/backend.py validate_configuration 0.32.0 :316-317 "attention sinks not
# supported"; an NVFP4 cache's fa2 path refuses them: engines/vllm_nvfp4.py): gpt-oss on every layer (models/
# gpt_oss.py 0.32.0:187, 0.34.0:186), Laguna on its sliding layers when swa_attention_sink_enabled (laguna.py 0.32.0
# :482-490), Granite and GraniteMoE where attention_sinks says so, else wherever the config has layer_types
# (granite.py 0.32.0:109 granite_layer_attn_params, granitemoe.py 0.32.0:195). MiMo-V2's sliding-layer sinks go to
# the DiffKV backend its attention picks itself (mimo_v2.py 0.32.0:300-322), which kvplan does not check. Flint (0.34
# on) on every layer (models/flint/model.py 0.34.0:296-307, sinks=self.softmax_offset).
SINK_FAMILIES = ("gpt_oss", "laguna", "granite", "granitemoe", "flint")


def attention_sinks(cfg: Config, kinds) -> bool:
    """Whether vLLM builds any attention layer of this config with sinks (SINK_FAMILIES); `kinds`: mixer_kinds'."""
    if cfg.model_type in ("gpt_oss", "flint"):
        return True
    if cfg.model_type == "laguna":
        return "sliding" in kinds and cfg.flag("swa_attention_sink_enabled", False)
    if cfg.model_type in ("granite", "granitemoe"):
        return cfg.flag("attention_sinks", cfg.has("layer_types"))
    return False


# Families whose attention layers vLLM builds with a logit soft-cap (Attention(..., logits_soft_cap=...)), which the
# attention backend must take (engines/vllm_backend_refusals.softcap_refusal): Gemma 2, from attn_logit_softcapping
# (gemma2.py 0.5.4:155 and :194, 0.6.4:157 and :196; 0.5.1-0.5.3 pass none). Where the file leaves the field out,
# Gemma2Config fills 50.0 (transformers 4.45.2 configuration_gemma2.py:127; the class's default since 4.42, the first
# with Gemma 2), read here since class_defaults' frozen tables do not probe it; null turns the cap off. Gemma 3 builds
# its layers with none (gemma3.py 0.8.5:297 attn_logits_soft_cap=None).
SOFTCAP_FAMILIES = {"gemma2": 50.0}


def attention_softcap(cfg: Config) -> bool:
    """Whether vLLM builds this config's attention layers with a logit soft-cap (SOFTCAP_FAMILIES)."""
    if cfg.model_type not in SOFTCAP_FAMILIES:
        return False
    cap = cfg.fields.get("attn_logit_softcapping", SOFTCAP_FAMILIES[cfg.model_type])  # a null stays None
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, (int, float))):
        raise KvplanError(f"config field 'attn_logit_softcapping' must be a number or null, got {json_value(cap)}.")
    return cap is not None


def mixer_kinds(cfg: Config, n: int) -> tuple[list, str]:
    """One of full | sliding | chunked | linear | parallel | none per layer, and the rule that decided it."""
    window_on = _window_on(cfg)
    if is_v4(cfg):  # every layer attends (its window and, by compress_ratios, a compressed cache)
        return ["full"] * n, "compress_ratios"
    if cfg.model_type in ATTENTION_FREE:
        return ["linear"] * n, "attention-free: every layer Mamba"
    if cfg.model_type == "falcon_h1":  # falcon_h1.py FalconH1ParallelHybrid: attention and Mamba-2 side by side
        return ["parallel"] * n, "Falcon-H1: attention and Mamba-2 side by side in every layer"
    if is_gemma4(cfg):
        return gemma4_mixers(cfg, n)
    if is_gemma3n(cfg) and not cfg.has("layer_types"):  # transformers Gemma3nTextConfig: every 5th layer full
        return ["full" if (i + 1) % 5 == 0 else "sliding" for i in range(n)], "Gemma 3n default: every 5th full"
    if is_mimo_v2(cfg):  # before attention_chunk_size: vLLM deletes MiMo's, which names no chunked layer
        return mimo_mixers(cfg, n)
    if kda_config(cfg) is not None:  # Kimi Linear: KDA where linear_attn_config.kda_layers says, MLA elsewhere
        return kda_mixers(cfg, n), "linear_attn_config.kda_layers"
    if cfg.has("layer_types"):
        return cfg.per_layer("layer_types", n, LAYER_TYPE_NAMES), "layer_types"
    if cfg.model_type.startswith("lfm2") and cfg.has("full_attn_idxs"):  # LFM2 configs without layer_types
        attention = set(cfg.int_list("full_attn_idxs"))
        return ["full" if i in attention else "linear" for i in range(n)], "full_attn_idxs"
    if cfg.has("hybrid_override_pattern"):
        return cfg.per_layer("hybrid_override_pattern", n, NEMOTRON_H_CODES), "hybrid_override_pattern"
    if cfg.has("attn_layer_period"):  # Jamba
        period = cfg.int("attn_layer_period")
        offset = cfg.optional_int("attn_layer_offset")
        return ["full" if i % period == offset else "linear" for i in range(n)], "attn_layer_period"
    if cfg.has("full_attention_interval"):  # Qwen3-Next
        every = cfg.int("full_attention_interval")
        return ["full" if (i + 1) % every == 0 else "linear" for i in range(n)], "full_attention_interval"
    if cfg.model_type == "gemma2" and window_on:  # Gemma 2 alternates, starting with a local layer
        return ["sliding" if i % 2 == 0 else "full" for i in range(n)], "Gemma 2 alternation"
    if cfg.has("sliding_window_pattern") and window_on:  # Gemma 3, Cohere 2: every P-th is global
        every = cfg.int("sliding_window_pattern")
        return ["full" if (i + 1) % every == 0 else "sliding" for i in range(n)], "sliding_window_pattern"
    if cfg.has("attention_chunk_size"):  # Llama 4: RoPE layers chunked, NoPE layers global
        if cfg.get("no_rope_layers"):
            return cfg.per_layer("no_rope_layers", n, {"1": "chunked", "0": "full"}), "no_rope_layers"
        every = cfg.int("no_rope_layer_interval", default=4)
        return ["full" if (i + 1) % every == 0 else "chunked" for i in range(n)], "attention_chunk_size"
    if window_on and cfg.window_list():  # per-layer windows, the list repeated over the layers
        return ["full" if listed_window(cfg, i) is None else "sliding" for i in range(n)], "the sliding_window list"
    if window_on and cfg.has("max_window_layers") and "use_sliding_window" in cfg.fields:
        first = cfg.int("max_window_layers", minimum=0)  # Qwen2: layers from max_window_layers on slide
        return ["sliding" if i >= first else "full" for i in range(n)], "max_window_layers"
    if window_on:
        return ["sliding"] * n, "sliding_window"
    return ["full"] * n, "all layers full attention"


def gemma4_mixers(cfg: Config, n: int) -> tuple[list, str]:
    """transformers' Gemma4TextConfig: layer_types, or every 6th layer full without them; the last layer is made
    full whatever the file says (it warns), and vLLM builds from that config."""
    if cfg.has("layer_types"):
        kinds, rule = cfg.per_layer("layer_types", n, LAYER_TYPE_NAMES), "layer_types"
    else:
        kinds, rule = ["full" if (i + 1) % 6 == 0 else "sliding" for i in range(n)], "Gemma 4 default: every 6th full"
    return kinds[:-1] + ["full"], rule


def ffn_kinds(cfg: Config, n: int) -> tuple[list, str]:
    """One of dense | moe | none per decoder layer (its feed-forward block), and the rule that decided it. Each
    family's rule as its modeling code applies it; configs without routed experts are dense throughout."""
    if cfg.model_type in ATTENTION_FREE:  # a Mamba block is the whole layer
        return ["none"] * n, "attention-free: no MLP"
    if cfg.has("hybrid_override_pattern"):  # Nemotron-H: an MLP or MoE block is a layer of its own
        return cfg.per_layer("hybrid_override_pattern", n, NEMOTRON_H_FFN), "hybrid_override_pattern"
    if cfg.model_type.startswith("nemotron_h") and cfg.has("layer_types"):
        kinds = cfg.per_layer("layer_types", n, {**{k: "none" for k in LAYER_TYPE_NAMES}, **NEMOTRON_H_FFN_TYPES})
        return kinds, "layer_types"
    if is_mimo_v2(cfg):
        return mimo_ffn_kinds(cfg, n)
    experts = cfg.optional_int(EXPERT_KEYS)
    if experts == 0 and cfg.model_type in ALWAYS_MOE:
        raise KvplanError(f"config field '{ALWAYS_MOE[cfg.model_type]}' is 0 or missing: {cfg.model_type}'s every "
                          f"decoder layer routes its tokens to experts (vLLM builds a FusedMoE of that many); give "
                          f"1 or more.")
    if experts == 0 or (experts == 1 and cfg.model_type == "jamba"):
        return ["dense"] * n, "no routed experts"
    if cfg.model_type in MLP_LAYER_TYPES_FAMILIES:
        kinds = mlp_layer_kinds(cfg, n)
        if kinds is not None:
            return kinds, "mlp_layer_types"
    if cfg.model_type == "jamba" or cfg.has("expert_layer_period"):  # JambaConfig defaults: period 2, offset 1
        period = cfg.int("expert_layer_period", default=2)
        offset = cfg.int("expert_layer_offset", minimum=0, default=1)
        return ["moe" if i % period == offset else "dense" for i in range(n)], "expert_layer_period"
    if cfg.model_type == "lfm2_moe":  # lfm2_moe.py: the first num_dense_layers layers dense, the rest MoE
        first = cfg.int("num_dense_layers", minimum=0, default=2)
        return ["dense" if i < first else "moe" for i in range(n)], "num_dense_layers"
    if cfg.has("first_k_dense_replace") or cfg.model_type.startswith("deepseek"):
        first = cfg.int("first_k_dense_replace", minimum=0, default=0)  # vLLM deepseek_v2.py DeepseekV2DecoderLayer
        every = cfg.int("moe_layer_freq", default=1)
        return ["moe" if i >= first and i % every == 0 else "dense" for i in range(n)], "first_k_dense_replace"
    if cfg.model_type == "ernie4_5_moe" or any(cfg.has(key) for key in ERNIE_MOE_RANGE):
        return ernie_ffn_kinds(cfg, n), "moe_layer_start_index"
    if cfg.has("moe_layers"):  # Llama 4: the explicit list wins over interleave_moe_layer_step
        moe = set(cfg.int_list("moe_layers"))
        return ["moe" if i in moe else "dense" for i in range(n)], "moe_layers"
    if cfg.has("interleave_moe_layer_step"):  # Llama 4: layers step-1, 2*step-1, ... are MoE
        step = cfg.int("interleave_moe_layer_step")
        return ["moe" if (i + 1) % step == 0 else "dense" for i in range(n)], "interleave_moe_layer_step"
    if cfg.has("decoder_sparse_step") or cfg.has("mlp_only_layers"):  # Qwen2/3 MoE, Qwen3-Next
        step = cfg.int("decoder_sparse_step", default=1)
        dense = set(cfg.int_list("mlp_only_layers"))
        kinds = ["moe" if i not in dense and (i + 1) % step == 0 else "dense" for i in range(n)]
        return kinds, "decoder_sparse_step"
    return ["moe"] * n, "every layer MoE"  # Mixtral, gpt-oss, Qwen3-MoE without the keys


def mlp_layer_kinds(cfg: Config, n: int):
    """dense / moe per layer from mlp_layer_types (MLP_LAYER_TYPES_FAMILIES), None when the file names none. AXK1
    reads the first num_hidden_layers entries (AXK1.py:100); without the list, Laguna's config class fills in one
    dense layer then MoE (transformers 5.22 configuration_laguna.py:132-133), vLLM's laguna.py:62-66 reading it."""
    value = cfg.get("mlp_layer_types")
    if value is None:
        return ["dense"] + ["moe"] * (n - 1) if cfg.model_type == "laguna" else None
    if cfg.model_type == "axk1" and isinstance(value, list):
        value = value[:n]
    return cfg.per_layer("mlp_layer_types", n, MLP_LAYER_TYPE_NAMES, value)


def laguna_before_031_note(cfg: Config, n: int) -> str:
    """Laguna's MoE layers as vLLM before 0.31 builds them, said where they differ from mlp_layer_types (kvplan
    plans 0.31's reading, mlp_layer_kinds, for every release); "" otherwise. Up to 0.30 vLLM reads the config with its
    own class (0.30.0 transformers_utils/config.py:154; configs/laguna.py:59 decoder_sparse_step 1, :67-68
    mlp_only_layers [0] when unset) and makes layer i MoE when i is not in mlp_only_layers and (i + 1) %
    decoder_sparse_step == 0 (models/laguna.py:509-517); 0.31 reads mlp_layer_types (0.31.0 laguna.py:59-67,
    :519-522). Weights load by module name, so a checkpoint loads under one reading only (model_executor/models/
    utils.py:404-417 raises on a tensor with no module): the published configs carry both, agreeing."""
    if cfg.model_type != "laguna" or not cfg.optional_int(EXPERT_KEYS):
        return ""
    step = cfg.int("decoder_sparse_step", default=1)
    dense = set(cfg.int_list("mlp_only_layers")) if cfg.has("mlp_only_layers") else {0}
    before = ["dense" if i in dense or (i + 1) % step else "moe" for i in range(n)]
    now = mlp_layer_kinds(cfg, n)
    if before == now:
        return ""
    return (f"vLLM before 0.31 reads mlp_only_layers and decoder_sparse_step, {before.count('moe')} MoE layers where "
            f"mlp_layer_types (0.31 on) has {now.count('moe')}: a checkpoint loads under one reading only, and kvplan "
            f"plans 0.31's")


def ernie_ffn_kinds(cfg: Config, n: int) -> list:
    """ERNIE-4.5 MoE (vLLM 0.32.0 ernie45_moe.py:335-350 Ernie4_5_MoeDecoderLayer): layer i is MoE when use_moe
    (default: experts > 0), start <= i <= end and (i + 1) % interval == 0. The defaults are transformers'
    Ernie4_5_MoeConfig's (the config object vLLM reads, so its getattr defaults never apply): start 1, end -1 (the
    last layer, as its __post_init__ maps it), interval 1."""
    if not cfg.flag("use_moe", True):
        return ["dense"] * n
    start = cfg.int("moe_layer_start_index", minimum=0, default=1)
    end = cfg.int("moe_layer_end_index", minimum=-1, default=-1)
    end = n - 1 if end == -1 else end
    every = cfg.int("moe_layer_interval", default=1)
    return ["moe" if start <= i <= end and (i + 1) % every == 0 else "dense" for i in range(n)]


def mamba1_inner(cfg: Config) -> int:
    """A Mamba-1 layer's channels: Jamba's mamba_expand x hidden; the attention-free configs' intermediate_size
    (transformers' MambaConfig derives it from expand only when the file does not state it: Falcon-Mamba-7B states
    8,192 beside an expand of 16)."""
    hidden = cfg.int(HIDDEN_KEYS)
    if cfg.model_type in MAMBA1_ONLY:
        return cfg.int("intermediate_size", required=False) or cfg.int("expand", default=2) * hidden
    return cfg.int("mamba_expand", default=2) * hidden


def mamba2_shape(cfg: Config) -> tuple:
    """(heads, head_dim, state, groups, conv kernel) of a Mamba-2 layer: Nemotron-H's and Granite 4.0's mamba_*
    fields, or a pure Mamba-2 config's own (transformers' Mamba2Config and its defaults: 128 heads of 64, state
    128, 8 groups, kernel 4)."""
    if cfg.model_type == "mamba2":
        return (cfg.int("num_heads", default=128), cfg.int("head_dim", default=64),
                cfg.int("state_size", default=128), cfg.int("n_groups", default=8), cfg.int("conv_kernel", default=4))
    return (cfg.int(MAMBA2_HEADS), cfg.int(MAMBA2_HEAD_DIM), cfg.int(("ssm_state_size", "mamba_d_state")),
            cfg.int(("n_groups", "mamba_n_groups"), default=1), cfg.int(("conv_kernel", "mamba_d_conv"), default=4))


# The Mamba kernel's chunk (tokens) as vLLM reads it, ModelConfig.get_mamba_chunk_size (config/model.py 0.11.1
# :1463-1478, 0.15.0 :1267-1282, 0.20.0 :1331-1346, 0.27.1 :1531-1546, unchanged): the text config's
# mamba_chunk_size, else its chunk_size, else 2048 ("Mamba1 does not have a chunk notion"). The text config is
# transformers' class (vLLM registers none of its own for these types: transformers_utils/config.py _CONFIG_REGISTRY,
# 0.11.1-0.27.1), which fills the field a file leaves out (transformers 5.22.2: configuration_nemotron_h.py:130
# chunk_size 128, :167 mamba_chunk_size read into it; configuration_granitemoehybrid.py:102, configuration_bamba.py:73,
# configuration_falcon_h1.py:84 mamba_chunk_size 256; configuration_zamba2.py:89 chunk_size 256; JambaConfig none).
MAMBA_CHUNK_KEYS = ("mamba_chunk_size", "chunk_size")
MAMBA_CHUNK_DEFAULTS = {"nemotron_h": ("chunk_size", 128), "granitemoehybrid": ("mamba_chunk_size", 256),
                        "bamba": ("mamba_chunk_size", 256), "falcon_h1": ("mamba_chunk_size", 256),
                        "zamba2": ("chunk_size", 256)}
MAMBA_CHUNK_FALLBACK = 2048


def mamba_chunk_size(cfg: Config) -> int:
    """vLLM's get_mamba_chunk_size for this config (MAMBA_CHUNK_KEYS): each field as the file writes it, or its
    class's default where the file leaves it out (a field written null stays None, as transformers keeps it);
    the first set, else 2048."""
    default = MAMBA_CHUNK_DEFAULTS.get(cfg.model_type)
    for key in MAMBA_CHUNK_KEYS:
        if key in cfg.fields:
            value = cfg.int(key, maximum=MAX_TOKENS, required=False)
        else:
            value = default[1] if default is not None and default[0] == key else None
        if value is not None:
            return value
    return MAMBA_CHUNK_FALLBACK


def linear_state(cfg: Config) -> LinearState:
    """The fixed per-sequence state of a linear-attention or Mamba layer."""
    if kda_config(cfg) is not None:  # Kimi Delta Attention
        return kda_state(cfg)
    if cfg.has("linear_num_value_heads"):  # Qwen3-Next gated DeltaNet
        nk, nv = cfg.int("linear_num_key_heads"), cfg.int("linear_num_value_heads")
        dk, dv = cfg.int("linear_key_head_dim"), cfg.int("linear_value_head_dim")
        kernel = cfg.int("linear_conv_kernel_dim")
        conv = (kernel - 1) * (2 * nk * dk + nv * dv)
        return LinearState(math.gcd(nk, nv), conv, nv * dk * dv, "gated-deltanet", conv_window=kernel - 1)
    if any(cfg.has(key) for key in MAMBA2_HEADS) or cfg.model_type == "mamba2":  # Mamba-2
        heads, head_dim, state, groups, kernel = mamba2_shape(cfg)
        inner = heads * head_dim
        # one group is replicated on every rank (its B / C conv window whole), more are split with the heads
        one = groups == 1
        return LinearState(heads if one else math.gcd(heads, groups), (kernel - 1) * (inner + 2 * groups * state),
                           heads * head_dim * state, "mamba2", (kernel - 1) * 2 * state if one else 0, kernel - 1,
                           chunk_size=mamba_chunk_size(cfg))
    if cfg.has("conv_L_cache"):  # LFM2 short convolution (vLLM short_conv.py): a window of L - 1 inputs, no state
        width = cfg.int(("conv_dim", "hidden_size"))
        return LinearState(width, (cfg.int("conv_L_cache") - 1) * width, 0, "shortconv",
                           conv_window=cfg.int("conv_L_cache") - 1)
    if cfg.has("mamba_d_state") or cfg.model_type in MAMBA1_ONLY:  # Mamba-1 (Jamba; Mamba, Falcon-Mamba)
        inner = mamba1_inner(cfg)
        kernel = cfg.int(("mamba_d_conv", "conv_kernel"), default=4)
        return LinearState(inner, (kernel - 1) * inner, inner * cfg.int(("mamba_d_state", "state_size")), "mamba",
                           chunk_size=mamba_chunk_size(cfg))
    raise KvplanError(
        "config declares linear-attention layers but no state shape: expected linear_num_value_heads "
        "(gated DeltaNet), linear_attn_config (Kimi Delta Attention), mamba_num_heads / mamba_n_heads (Mamba-2) or "
        "mamba_d_state (Mamba)."
    )


# DeepSeek sparse attention as vLLM 0.32.0 serves it: both architectures build models/deepseek_v32/attention.py
# DeepseekV32Attention (GLM-5.x through the same module, models/deepseek_v32/__init__.py), whose layers either run
# a lightning indexer or reuse the top-k of the last layer that ran one. DeepSeek-V4 compresses its cache
# (compress_ratios), which kvplan does not model.
DSA_ARCHITECTURES = ("DeepseekV32ForCausalLM", "GlmMoeDsaForCausalLM")
DSA_UNMODELLED_KEYS = ("compress_ratios",)
INDEX_SKIP_OFFSET = 2  # vLLM's default index_skip_topk_offset
PATTERN_MARKS = {"F": True, "S": False}  # index_topk_pattern: F runs its indexer, S reuses the last top-k


def indexer_keys(cfg: Config):
    """The lightning-indexer key cache of a DeepSeek sparse-attention model (None without index_topk); a config
    with index_topk that kvplan cannot size is refused rather than sized as dense attention."""
    if not cfg.has("index_topk") or is_v4(cfg):
        return None
    arch = cfg.architecture or "?"
    unmodelled = [key for key in DSA_UNMODELLED_KEYS if cfg.get(key) not in (None, 1)]
    if arch not in DSA_ARCHITECTURES or unmodelled or not cfg.has("kv_lora_rank"):
        why = f"sets {', '.join(unmodelled)}" if unmodelled else f"is {arch}"
        raise KvplanError(f"config has index_topk (DeepSeek sparse attention) but {why}: kvplan sizes sparse "
                          f"attention only for {' and '.join(DSA_ARCHITECTURES)} (MLA, an indexer every "
                          f"index_topk_freq layers), so it will not size this model as dense attention.")
    return IndexerKeys(cfg.int("index_head_dim"), cfg.int("index_n_heads"))


# The model types whose language model vLLM builds with model_executor/models/gemma4.py's Gemma4Model: Gemma 4's
# (gemma4_text under gemma4 / gemma4_unified) and DiffusionGemma's (diffusion_gemma_text under diffusion_gemma), whose
# DiffusionGemmaForConditionalGeneration holds one Gemma4Model run two ways, causal while it writes a committed block
# into the paged cache and bidirectional while it denoises a canvas against it (diffusion_gemma.py 0.24.0:230,
# 0.32.0:236, 0.34.0:238; DiffusionGemmaModelState.prepare_attn's per-request causal flag, 0.34.0:1087-1137).
GEMMA4_BACKBONES = ("gemma4", "diffusion_gemma")


def is_gemma4(cfg: Config) -> bool:
    """A language model vLLM builds as Gemma 4's (GEMMA4_BACKBONES), whatever wrapper the checkpoint names."""
    return cfg.model_type.startswith(GEMMA4_BACKBONES)


def is_diffusion_gemma(cfg: Config) -> bool:
    """DiffusionGemma (diffusion_gemma / diffusion_gemma_text): Gemma 4's backbone with a self-conditioning MLP
    (tensors.gemma4_model_tensors), K = V full layers whatever the file says (gemma4_k_eq_v)."""
    return cfg.model_type.startswith("diffusion_gemma")


# DiffusionGemmaConfig's canvas_length where the file has none: transformers 5.22.2 configuration_diffusion_gemma.py
# (canvas_length: int | None = 256), vLLM 0.24-0.31's own class (transformers_utils/configs/diffusion_gemma.py
# 0.24.0:31) and the hook's fallback (models/config.py 0.24.0 DiffusionGemmaModelForBlockDiffusionConfig, 0.34.0:677
# getattr(hf_config, "canvas_length", 256))
DIFFUSION_CANVAS = 256


def diffusion_canvas(cfg: Config) -> int:
    """The denoising canvas of a DiffusionGemma config (0 for any other, and for a null canvas_length, which makes
    no diffusion model: ModelConfig.is_diffusion is `canvas_length is not None`, config/model.py 0.34.0:1983-1985).
    vLLM schedules it as the draft tokens of each denoising step (VllmConfig.num_speculative_tokens falls back to
    diffusion_config.canvas_length: config/vllm.py 0.24.0:515-518, 0.34.0:587-598)."""
    if not is_diffusion_gemma(cfg):
        return 0
    if "canvas_length" not in cfg.fields:
        return DIFFUSION_CANVAS
    return cfg.int("canvas_length", required=False, maximum=MAX_TOKENS) or 0


def gemma4_k_eq_v(cfg: Config) -> bool:
    """Whether the full-attention layers take K = V (no v_proj: k_proj loaded into both shards, and
    num_global_key_value_heads KV heads). Gemma 4: attention_k_eq_v as the file says. DiffusionGemma: always, as
    vLLM sets it on the text config before building the layers (diffusion_gemma.py 0.24.0:190, 0.32.0:189,
    0.34.0:190 `text_config.attention_k_eq_v = True`; vLLM's own DiffusionGemmaTextConfig does the same in
    0.24-0.31, transformers_utils/configs/diffusion_gemma.py 0.24.0:15), and transformers' DiffusionGemmaTextConfig,
    which declares no such field, takes num_global_key_value_heads whatever the file says (5.22.2
    configuration_diffusion_gemma.py:136)."""
    return is_diffusion_gemma(cfg) or cfg.flag("attention_k_eq_v", False)


def is_gemma3n(cfg: Config) -> bool:
    """Gemma 3n's language model (gemma3n_text under gemma3n): vLLM 0.32.0 model_executor/models/gemma3n.py."""
    return cfg.model_type.startswith("gemma3n")


def gemma3n_cache_layers(cfg: Config, kinds: list, attention: FullAttention) -> tuple:
    """Gemma 3n: sliding and full layers of one head shape; the last num_kv_shared_layers layers hold no cache and
    read a fixed layer's (vLLM 0.32.0 gemma3n.py:367-374 Gemma3nAttention: a sliding layer the one 2 before the
    first shared layer, a full layer the one 1 before, whatever their types; such a layer gets no KV cache spec)."""
    first = first_shared_layer(cfg, len(kinds))
    window = cfg.int("sliding_window", maximum=MAX_TOKENS)
    own = [SlidingWindow(attention.kv_heads, attention.head_dim, sliding_window=window) if kind == "sliding"
           else attention for kind in kinds[:first]]
    layers = list(own)
    for i, kind in enumerate(kinds[first:], start=first):
        source = first - (2 if kind == "sliding" else 1)
        if source < 0 or kinds[source] != kind:
            raise KvplanError(f"config field 'num_kv_shared_layers' makes layer {i} ({kind}) read layer {source}'s "
                              f"cache, which vLLM's Gemma 3n takes from {'2' if kind == 'sliding' else '1'} before "
                              f"the first shared layer and which is not a {kind} layer: the layer_types before the "
                              f"shared block must end in a sliding then a full layer.")
        layers.append(SharedKV(own[source], source))
    return tuple(layers)


def first_shared_layer(cfg: Config, n: int) -> int:
    """The first of the last num_kv_shared_layers layers, which keep no cache (n when none do)."""
    return n - cfg.int("num_kv_shared_layers", minimum=0, maximum=n, default=0)


def _gemma4_override(cfg: Config, i: int) -> dict:
    """Layer i's entry of per_layer_config. transformers reads each key as int(key) (integrations/heterogeneity/
    configuration_utils.py 5.22.2:183-186) and writes them zero-padded to the widest index (:371-376: "05" among
    "29"), so a config it saved names layer 5 "05"."""
    table = cfg.get("per_layer_config")
    if not isinstance(table, dict):
        return {}
    for key, entry in table.items():
        if _layer_key(key) == i:
            return entry if isinstance(entry, dict) else {}
    return {}


def _layer_key(key) -> int:
    """A per_layer_config key as transformers reads it (int(key)), or -1 where it is no layer number."""
    try:
        return int(key)
    except (TypeError, ValueError):
        return -1


def gemma4_attention(cfg: Config, kind: str, i: int, kv_heads: int, head_dim: int) -> FullAttention:
    """Layer i's attention shape as transformers' Gemma4TextConfig gives it (per_layer_config, built when the file
    has none): full layers take global_head_dim and, with attention_k_eq_v, num_global_key_value_heads; sliding
    layers head_dim and num_key_value_heads (vLLM gemma4.py Gemma4DecoderLayer reads per_layer_config[i]). A
    k_eq_v layer still caches K and V: vLLM loads k_proj into both shards and V is normed without a weight."""
    heads_field = "num_key_value_heads"
    if kind == "full":
        global_kv = cfg.int("num_global_key_value_heads", required=False) if gemma4_k_eq_v(cfg) else None
        kv_heads, head_dim = global_kv or kv_heads, cfg.int("global_head_dim", default=512)
        heads_field = "num_global_key_value_heads" if global_kv else heads_field
    override = _gemma4_override(cfg, i)
    if override.get("num_key_value_heads"):
        heads_field = f"per_layer_config layer {i}'s num_key_value_heads"
        kv_heads = checked_int(f"per_layer_config.{i}.num_key_value_heads", override["num_key_value_heads"], 1,
                               MAX_COUNT)
    if override.get("head_dim"):
        head_dim = checked_int(f"per_layer_config.{i}.head_dim", override["head_dim"], 1, MAX_COUNT)
    if kind == "sliding":
        return SlidingWindow(kv_heads, head_dim, heads_field=heads_field,
                             sliding_window=cfg.int("sliding_window", maximum=MAX_TOKENS))
    return FullAttention(kv_heads, head_dim, heads_field=heads_field)


def gemma4_cache_layers(cfg: Config, kinds: list, attention: FullAttention) -> tuple:
    """Gemma 4: each layer's own head shape, and the last num_kv_shared_layers layers reading the cache of the last
    earlier layer of their type (vLLM 0.32.0 gemma4.py Gemma4Attention: kv_sharing_target_layer_name; such a
    layer gets no KV cache spec, v1/worker/gpu_model_runner.py get_kv_cache_spec)."""
    first = first_shared_layer(cfg, len(kinds))
    own = [gemma4_attention(cfg, kind, i, attention.kv_heads, attention.head_dim)
           for i, kind in enumerate(kinds[:first])]
    layers = list(own)
    for i, kind in enumerate(kinds[first:], start=first):
        source = max((j for j in range(first) if kinds[j] == kind), default=None)
        if source is None:
            raise KvplanError(f"config field 'num_kv_shared_layers' leaves layer {i} ({kind}) no earlier "
                              f"{kind} layer to share a cache with: it must be less than the layers before the "
                              f"first {kind} layer of the shared block.")
        layers.append(SharedKV(own[source], source))
    return tuple(layers)


# MiMo-V2 (Flash, V2.5 text) as vLLM 0.32.0 builds it: model_executor/models/mimo_v2.py MiMoV2FlashDecoderLayer.
# MiMoV2OmniForCausalLM (a vision and an audio tower) stays refused (unmodelled.py).
MIMO_ARCHITECTURES = ("MiMoV2FlashForCausalLM", "MiMoV2ForCausalLM")
MIMO_PATTERN = {"0": "full", "1": "sliding"}  # hybrid_layer_pattern: 1 is a sliding ("compressed softmax") layer


def is_mimo_v2(cfg: Config) -> bool:
    return cfg.architecture in MIMO_ARCHITECTURES


def mimo_mixers(cfg: Config, n: int) -> tuple[list, str]:
    """MiMo-V2's layers by hybrid_layer_pattern (vLLM reads it for every layer, with no default)."""
    if not cfg.has("hybrid_layer_pattern"):
        raise KvplanError(f"config field 'hybrid_layer_pattern' is missing: a {cfg.architecture} config "
                          f"must give each of its {n} layers 0 (full attention) or 1 (sliding window).")
    return cfg.per_layer("hybrid_layer_pattern", n, MIMO_PATTERN), "hybrid_layer_pattern"


def mimo_ffn_kinds(cfg: Config, n: int) -> tuple[list, str]:
    """MiMo-V2's MoE layers: those whose moe_layer_freq entry is set, when it is a list; an integer (or no field)
    leaves every layer dense (MiMoV2FlashDecoderLayer.is_moe_layer)."""
    if not isinstance(cfg.get("moe_layer_freq"), list):
        return ["dense"] * n, "moe_layer_freq not a list: every layer dense"
    return cfg.per_layer("moe_layer_freq", n, {"0": "dense", "1": "moe"}), "moe_layer_freq"


def mimo_shape(cfg: Config, kind: str) -> dict:
    """Query heads, KV heads, key and value widths of a MiMo-V2 layer of this kind: a sliding layer's own swa_*
    fields (swa_v_head_dim defaults to swa_head_dim), a full layer's num_* / head_dim / v_head_dim (v_head_dim
    defaults to head_dim), as MiMoV2FlashDecoderLayer passes them to MiMoV2Attention."""
    prefix = "swa_" if kind == "sliding" else ""
    head_dim = cfg.int(f"{prefix}head_dim")
    return {"heads": cfg.int(f"{prefix}num_attention_heads"), "kv_heads": cfg.int(f"{prefix}num_key_value_heads"),
            "head_dim": head_dim, "v_head_dim": cfg.int(f"{prefix}v_head_dim", required=False) or head_dim,
            "heads_field": f"{prefix}num_key_value_heads"}


def mimo_attention(cfg: Config, kind: str) -> FullAttention:
    """A MiMo-V2 layer's cache: a sliding layer keeps sliding_window_size tokens (vLLM reads that field, not
    sliding_window) of its own KV heads; both kinds cache keys and values of different widths (DiffKV backends)."""
    shape = mimo_shape(cfg, kind)
    if shape["heads"] % shape["kv_heads"]:
        prefix = "swa_" if kind == "sliding" else ""
        raise KvplanError(f"config field '{prefix}num_key_value_heads' ({shape['kv_heads']}) must divide "
                          f"{prefix}num_attention_heads ({shape['heads']}): each KV head serves a whole group of "
                          f"query heads.")
    dims = (shape["kv_heads"], shape["head_dim"], shape["v_head_dim"], shape["heads_field"])
    if kind == "sliding":
        return SlidingWindow(*dims, sliding_window=cfg.int("sliding_window_size", maximum=MAX_TOKENS))
    return FullAttention(*dims)


# DeepSeek-V4 (compressed sparse attention) as vLLM 0.32.0 builds it: models/deepseek_v4/attention.py
# DeepseekV4Attention. The vision variant and V4.1 (shared KV / index sources, engram) stay refused (unmodelled.py).
V4_ARCHITECTURE = "DeepseekV4ForCausalLM"
V4_RATIOS = (0, 4, 128)  # 0: window only; 4: compressed + indexer (C4A); 128: compressed, attended whole (C128A)


def is_v4(cfg: Config) -> bool:
    return cfg.architecture == V4_ARCHITECTURE


def v4_ratios(cfg: Config, n: int) -> list:
    """compress_ratios of the n decoder layers (the file lists one more per MTP layer, which vLLM skips)."""
    value = cfg.get("compress_ratios")
    if not isinstance(value, list) or len(value) < n or any(r not in V4_RATIOS for r in value[:n]):
        raise KvplanError(f"config field 'compress_ratios' must list 0, 4 or 128 for each of the {n} layers "
                          f"(DeepSeek-V4), got {json_value(value)}.")
    return [int(r) for r in value[:n]]


def v4_layer_caches(cfg: Config, ratio: int) -> list:
    """The caches one V4 layer registers: its window cache first, then its own compressed cache and its compressor's
    state, then a ratio-4 layer's indexer keys and its compressor's state. vLLM registers the indexer's two first
    (DeepseekV4Indexer is built inside the attention); no group or page depends on the order within a layer
    (vllm_specs.packed_groups buckets by type and lists each page size's layers in layer order), and leading with
    the window lets every cache after it join its decoder layer (kinds joins_layer: pipeline stages)."""
    dim, rope = cfg.int("head_dim"), cfg.int("qk_rope_head_dim")
    window = [V4Window(dim, rope, cfg.int("sliding_window", maximum=MAX_TOKENS), cfg.int("o_groups"))]
    if ratio == 0:
        return window
    coff = 2 if ratio == 4 else 1
    own = [V4Compressed(dim, rope, ratio, cfg.int("index_topk") if ratio == 4 else 0),
           V4CompressorState(2 * coff * dim, ratio)]
    if ratio == 128:
        return window + own
    index_dim = cfg.int("index_head_dim")
    indexer = [V4IndexerKeys(index_dim, cfg.int("index_n_heads"), ratio=ratio),
               V4CompressorState(2 * coff * index_dim, ratio)]
    return window + own + indexer


def _pattern_marks(cfg: Config) -> list:
    pattern = cfg.get("index_topk_pattern")
    marks = list(pattern) if isinstance(pattern, (str, list)) else None
    if not marks or any(mark not in PATTERN_MARKS for mark in marks):
        raise KvplanError(f"config field 'index_topk_pattern' is {json_value(pattern)}; it must be a string (or "
                          f"list) of 'F' (the layer runs its indexer) and 'S' (it reuses the last top-k), one per "
                          f"layer.")
    return marks


def indexer_layers(cfg: Config, n: int) -> tuple:
    """Whether each of the n decoder layers runs its own lightning indexer, as vLLM decides it
    (models/deepseek_v32/attention.py DeepseekV32Attention.__init__, skip_topk): with index_topk_pattern, every
    layer but those marked 'S' (layers past the pattern's end run one); otherwise layer i when
    max(i - index_skip_topk_offset + 1, 0) % index_topk_freq == 0 (offset 2, freq 1 by default: every layer).
    vLLM reads these keys, not indexer_types. () without index_topk."""
    if not cfg.has("index_topk"):
        return ()
    if cfg.get("index_topk_pattern") is not None:
        marks = _pattern_marks(cfg)
        return tuple(PATTERN_MARKS[marks[i]] if i < len(marks) else True for i in range(n))
    freq = cfg.int("index_topk_freq", default=1)
    offset = cfg.int("index_skip_topk_offset", minimum=0, default=INDEX_SKIP_OFFSET)
    return tuple(max(i - offset + 1, 0) % freq == 0 for i in range(n))


def cache_layers(cfg: Config, kinds: list, attention) -> tuple:
    """One layer kind per cache a decoder layer holds (MLP-only layers are left out; a sparse-attention layer
    holds its latent and then, when it runs its own indexer, the indexer's keys; a Gemma 4 KV-sharing layer holds
    none but is kept, as SharedKV, for the reads and the attention it does)."""
    if is_v4(cfg):
        return tuple(cache for ratio in v4_ratios(cfg, len(kinds)) for cache in v4_layer_caches(cfg, ratio))
    if is_mimo_v2(cfg):
        return tuple(mimo_attention(cfg, kind) for kind in kinds)
    if is_gemma4(cfg):
        if any(kind not in ("full", "sliding") for kind in kinds):
            raise KvplanError("config field 'layer_types' of a Gemma 4 model must name only full_attention and "
                              "sliding_attention layers.")
        return gemma4_cache_layers(cfg, kinds, attention)
    if is_gemma3n(cfg):
        if any(kind not in ("full", "sliding") for kind in kinds):
            raise KvplanError("config field 'layer_types' of a Gemma 3n model must name only full_attention and "
                              "sliding_attention layers.")
        return gemma3n_cache_layers(cfg, kinds, attention)
    mla = isinstance(attention, MLALatent)
    indexer = indexer_keys(cfg)
    leads = indexer_layers(cfg, len(kinds))
    layers, linear = [], None
    for i, kind in enumerate(kinds):
        if kind == "full" and indexer is not None:
            layers.append(replace(attention, leads_index_group=leads[i]))
            if leads[i]:
                layers.append(indexer)
        elif kind == "full":
            layers.append(attention)
        elif kind in ("sliding", "chunked"):
            key = "attention_chunk_size" if kind == "chunked" else "sliding_window"
            window = listed_window(cfg, i) if kind == "sliding" and cfg.window_list() else \
                cfg.int(key, maximum=MAX_TOKENS)
            if window is None:
                raise KvplanError(f"config field 'sliding_window' gives layer {i} no window (null) where the config's "
                                  f"other fields make it a sliding layer; give it a window.")
            if mla:
                raise KvplanError(f"config combines MLA (kv_lora_rank) with windowed layers ({key}); "
                                  "kvplan does not model that pairing.")
            cls = ChunkedAttention if kind == "chunked" else SlidingWindow
            layers.append(cls(attention.kv_heads, attention.head_dim, sliding_window=window))
        elif kind in ("linear", "parallel"):  # a parallel layer holds an attention cache and a state slot
            if kind == "parallel":
                layers.append(attention)
            linear = linear or linear_state(cfg)
            layers.append(linear)
    return tuple(layers)


def attention_kind(cfg: Config, kv_heads: int, head_dim: int):
    """The full-attention layer of this model: MLA latents when the config has kv_lora_rank."""
    if cfg.has("kv_lora_rank"):
        return MLALatent(cfg.int("kv_lora_rank"), cfg.int("qk_rope_head_dim", minimum=0),
                         cfg.int("index_topk", required=False, minimum=1) or 0,
                         qk_nope_head_dim=cfg.int("qk_nope_head_dim", minimum=0, default=1))  # vLLM's getattr default
    return FullAttention(kv_heads, head_dim)
