"""Cache layouts vLLM serves that kvplan does not size. A config of one of these architectures reads as an
ordinary decoder to the generic reader (it names layers, heads and a head_dim) while its cache, or its weights,
follow rules kvplan has no layer kind for: sized anyway, the answer would look right and be wrong. So the reader
refuses them in one sentence that names what it saw. Each entry is what vLLM 0.32.0's model code reads
(model_executor/models/registry.py names the module; the architectures 0.33.0 and 0.34.0 add, as 0.34.0 reads them);
a field also catches a derivative under another name. Some newer architectures kvplan sizes only from an explicit
layer_types, as their config classes fill in a default pattern the generic reader does not know (LAYER_TYPES)."""

from __future__ import annotations

from typing import Optional

from ..errors import KvplanError

_COMPRESSED = ("compressed sparse attention (config field 'compress_ratios'; vllm/models/deepseek_v4/attention.py) "
               "in a form other than DeepseekV4ForCausalLM's")
_V4_VISION = ("DeepSeek-V4's vision variant: image spans widen the window caches and a vision tower is profiled "
              "(vllm/models/deepseek_v4/common/vl_model.py)")
_V41 = ("DeepSeek-V4.1's shared KV and index sources across layers and engram layers (config fields "
        "'kv_source_layers', 'index_source_layers', 'engram_layer_ids'; vllm/models/deepseek_v41)")
_KDA = ("Kimi Delta Attention recurrent layers outside Kimi Linear (config field 'linear_attn_config'; "
        "kvplan models them in KimiLinearForCausalLM checkpoints, model_type kimi_linear)")
_K3 = ("Kimi K3's attention residuals, gated MLA output, full-rank KDA gates and latent MoE (config fields "
       "'attn_res_block_size', 'mla_use_output_gate', 'linear_attn_config.use_full_rank_gate', "
       "'routed_expert_hidden_size'), whose weights and buffers kvplan does not size, beside its FlashKDA prefill "
       "buffers and checkpoint blocks and its MoonViT vision tower (vllm/models/kimi_k3/nvidia/model.py, kda.py; "
       "Kimi Linear's KDA and MLA layers are modelled)")
_KV_SHARING = ("KV sharing outside Gemma 4 and Gemma 3n: its last num_kv_shared_layers layers read earlier layers' "
               "caches by a rule kvplan knows only for those (model_executor/models/gemma4.py, gemma3n.py)")
_ALTUP = ("AltUp streams outside Gemma 3n (config field 'altup_num_inputs'; kvplan sizes them in Gemma3n "
          "checkpoints, model_type gemma3n, as model_executor/models/gemma3n.py builds them)")
_SWA_HEADS = ("sliding-window layers with their own KV head count and head sizes (config field "
              "'swa_num_key_value_heads') outside MiMoV2FlashForCausalLM / MiMoV2ForCausalLM, whose rule kvplan "
              "knows (model_executor/models/mimo_v2.py); Inkling's (vllm/models/inkling) adds short convolutions "
              "and relative-position layers")
_MIMO_OMNI = ("MiMo-V2-Omni's vision and audio towers, which vLLM profiles beside the language model "
              "(model_executor/models/mimo_v2_omni.py; a MiMoV2 config with a vision_config is built as it)")
_SWA_LATENT = "sliding-window MLA layers with their own latent rank (config field 'swa_kv_lora_rank'; dots3_note)"
_KPOOL = "a pooled sparse indexer (config field 'index_kpool'; vllm/models/glm5next)"
_M3_SPARSE = "MiniMax-M3's sparse attention and index cache (config field 'sparse_attention_config'; minimax_m3)"
_HYPER = "an indexer cache and hyper-connections (vllm/models/hy_v4, qwen4_exp)"
_ENCODER_DECODER = ("an encoder and a decoder with cross-attention caches over the encoder's output (config field "
                    "'is_encoder_decoder'; model_executor/models/whisper.py)")
# vLLM 0.33.0 / 0.34.0 additions (paths under vllm/ of 0.34.0)
_ALICE = ("Kimi Delta Attention layers set by Qwen3-Next's linear_* fields (not the gated DeltaNet those fields mean "
          "elsewhere) and attention residuals (model_executor/models/alice_ai.py:118-138, :151, :335-345)")
_DORY = ("recurrent loops over its layers, each loop with its own KV cache by default (config fields "
         "'n_recurrent_loops', 'recurrent_kv_cache_mode'; model_executor/models/dory.py:109-130)")
_DOMYN = ("a sliding window and a head size of its own in every layer (config fields 'window_sizes', "
          "'per_layer_config'; model_executor/models/domyn_edge.py:158-170)")
_STEP5 = ("sparse attention with an indexer and a summary cache, and per-layer attention settings (config fields "
          "'attention_other_setting', 'swa_num_attention_heads'; vllm/models/step5)")
# Step 3.5 (registered since before 0.32): KV heads in num_attention_groups, the sliding layers' query heads (and in
# 0.32 their KV groups and head size) in attention_other_setting, MoE layers by moe_layers_enum, a head-wise gate
_STEP3P5 = ("KV heads named 'num_attention_groups', sliding layers with attention settings of their own (config "
            "field 'attention_other_setting': query heads, and in vLLM 0.32 KV groups and head size), MoE layers "
            "listed in 'moe_layers_enum' and a head-wise attention gate (model_executor/models/step3p5.py "
            "0.32.0:412-476, 0.34.0:71-84, :112-122, :436-477)")
_ML4 = ("sparse MLA whose layers share latent caches and indexers (config fields 'kv_source_layers', "
        "'index_sharing'; vllm/models/mistral/common/layer_spec.py:24-40)")
# vLLM 0.32.0 nemotron_nas.py:133-170 (per layer: attention.no_op, KV heads num_attention_heads // n_heads_in_group,
# ffn_mult), nemotron_h.py:670-695 (a puzzle model's experts by block); DeciLM-7B's variable GQA (0.32.0's
# DeciLMForCausalLM, nemotron_nas.py, reads block_configs, which such a config lacks)
_BLOCKS = ("per-layer block settings (Nemotron-NAS / DeciLM layers without attention or with KV heads of their own, "
           "FFN widths by layer, NemotronH puzzle layers with experts of their own; "
           "model_executor/models/nemotron_nas.py, nemotron_h.py)")
_KV_PER_LAYER = "a KV head count by layer (DeciLM-7B's variable GQA)"
_CCA = ("Compressed Convolutional Attention: a convolution state of past queries and keys beside each layer's KV "
        "cache (config fields 'cca_time0', 'cca_time1'; model_executor/models/zaya.py:42-47)")

ARCHITECTURES = {
    "DeepseekV4ForConditionalGeneration": _V4_VISION,
    "DeepseekV41ForCausalLM": _V41,
    "KimiK3ForConditionalGeneration": _K3,
    "MiMoV2OmniForCausalLM": _MIMO_OMNI,
    **dict.fromkeys(("InklingForCausalLM", "InklingForConditionalGeneration"), _SWA_HEADS),
    "Dots3NoteForCausalLM": _SWA_LATENT,
    **dict.fromkeys(("Glm5NextForCausalLM", "Glm5NextForConditionalGeneration"), _KPOOL),
    **dict.fromkeys(("MiniMaxM3SparseForCausalLM", "MiniMaxM3SparseForConditionalGeneration"), _M3_SPARSE),
    **dict.fromkeys(("HYV4ForCausalLM", "Qwen4ExpForCausalLM", "Qwen4ExpForConditionalGeneration"), _HYPER),
    **dict.fromkeys(("WhisperForConditionalGeneration", "CanaryForConditionalGeneration"), _ENCODER_DECODER),
    "KimiK31ForConditionalGeneration": _K3,  # 0.34.0 registry.py:493: the KimiK3 class
    "AliceAIForCausalLM": _ALICE,
    "DoryForCausalLM": _DORY,
    "DomynEdgeForCausalLM": _DOMYN,
    **dict.fromkeys(("Step5ForCausalLM", "Step5ForConditionalGeneration"), _STEP5),
    **dict.fromkeys(("Step3p5ForCausalLM", "Step3p7ForConditionalGeneration"), _STEP3P5),
    "MistralLarge4ForCausalLM": _ML4,
    "ZayaForCausalLM": _CCA,
}

# Architectures whose config class fills in layer_types when the file names none (0.34.0 transformers_utils/configs:
# beam.py:50-51 every layer sliding, lfm3.py:61-68 attention at layers 2 mod 4 and 4 mod 4 among short convolutions,
# ricursive.py:51-55 every fifth full; models/flint/configs.py:74 every layer full): kvplan reads the file only.
LAYER_TYPES = {"BeamForCausalLM": "every layer sliding", "FlintForCausalLM": "every layer full",
               **dict.fromkeys(("Lfm3ForCausalLM", "Lfm3VlForConditionalGeneration",
                                "Lfm3AudioForConditionalGeneration"),
                               "full attention at layers 2 mod 4, sliding at 4 mod 4, short convolutions between"),
               "RicursiveForCausalLM": "every fifth layer full, the others sliding"}

# A field present (and, for a count, above 0) marks the layout whatever the architecture is called, but in the
# families kvplan models it for (layers.py: Gemma 4's and DiffusionGemma's (its Gemma4Model reads it) and Gemma 3n's
# KV sharing, Gemma 3n's AltUp, Kimi Linear's KDA layers, by model_type) and for the fields an architecture kvplan
# models declares itself (DeepSeek-V4's compress_ratios, MiMo-V2's sliding heads).
MODELLED_IN = {"num_kv_shared_layers": ("gemma4", "gemma3n", "diffusion_gemma"), "linear_attn_config": ("kimi_linear",),
               "altup_num_inputs": ("gemma3n",)}
MODELLED_FIELDS = {"DeepseekV4ForCausalLM": ("compress_ratios",),
                   **dict.fromkeys(("MiMoV2FlashForCausalLM", "MiMoV2ForCausalLM"), ("swa_num_key_value_heads",))}
# vLLM builds these as MiMoV2OmniForCausalLM when the config has a vision_config
# (transformers_utils/model_arch_config_convertor.py MimoV2ModelArchConfigConvertor)
OMNI_WHEN_VISION = ("MiMoV2FlashForCausalLM", "MiMoV2ForCausalLM")
FIELDS = {  # in the order they are asked: Mistral Large 4's index_sharing before the kv_source_layers it shares
    "index_sharing": _ML4,
    "compress_ratios": _COMPRESSED,
    "kv_source_layers": _V41,
    "kv_source_layer_ids": _V41,
    "vision_n_layers": _V4_VISION,
    "linear_attn_config": _KDA,
    "attn_res_block_size": _K3,
    "mla_use_output_gate": _K3,
    "routed_expert_hidden_size": _K3,
    "altup_num_inputs": _ALTUP,
    "num_kv_shared_layers": _KV_SHARING,
    "swa_num_key_value_heads": _SWA_HEADS,
    "swa_kv_lora_rank": _SWA_LATENT,
    "index_kpool": _KPOOL,
    "sparse_attention_config": _M3_SPARSE,
    "is_encoder_decoder": _ENCODER_DECODER,
    "n_recurrent_loops": _DORY,
    "window_sizes": _DOMYN,
    "attention_other_setting": _STEP3P5,
    "cca_time0": _CCA,
    "block_configs": _BLOCKS,
    "num_key_value_heads_per_layer": _KV_PER_LAYER,
}


def _present(value) -> bool:
    return value not in (None, 0, False, [], {}, "")


def named_layout(architecture: str, get) -> Optional[str]:
    """Why kvplan cannot size a config vLLM serves as `architecture`, by that name alone (ARCHITECTURES,
    LAYER_TYPES); None where the name says nothing."""
    if architecture in ARCHITECTURES:
        return f"architecture {architecture} has {ARCHITECTURES[architecture]}"
    if architecture in LAYER_TYPES and not _present(get("layer_types")):
        return (f"architecture {architecture} without a layer_types list has the default layer pattern of its config "
                f"class ({LAYER_TYPES[architecture]})")
    return None


def unmodelled_layout(architecture: str, get) -> Optional[str]:
    """Why kvplan cannot size this config (None when it can): `get` reads a config field (Config.get, which
    looks through a multimodal wrapper to its language model)."""
    named = named_layout(architecture, get)
    if named is not None:
        return named
    kda = get("linear_attn_config")
    if isinstance(kda, dict) and _present(kda.get("use_full_rank_gate")):
        return f"config field 'linear_attn_config.use_full_rank_gate' marks {_K3}"
    if architecture in OMNI_WHEN_VISION and _present(get("vision_config")):
        return f"architecture {architecture} with a vision_config has {_MIMO_OMNI}"
    family = str(get("model_type") or "").lower()
    own = MODELLED_FIELDS.get(architecture, ())
    field = next((key for key in FIELDS if key not in own and _present(get(key))
                  and not family.startswith(MODELLED_IN.get(key, ("\0",)))), None)
    return None if field is None else f"config field '{field}' marks {FIELDS[field]}"


# what the refusal says kvplan does size instead: every layout with a layer kind (model/kinds.py), in a few words
SIZED = ("kvplan sizes MHA / GQA / MQA, MLA and sparse MLA, sliding and chunked windows, per-layer-type heads "
         "(MiMo-V2), shared KV layers (Gemma 4, 3n), Mamba, linear-attention and KDA hybrids, DeepSeek-V4's compressed "
         "attention")


# Architectures whose attention vLLM builds encoder-only (EncoderOnlyAttention asks for no KV cache spec:
# layers/attention/encoder_only_attention.py 0.34.0:94-96), so vLLM allocates no cache to size, in every release that
# serves them: kvplan refuses them for every engine, --engine none included. Each entry reads the config's switch
# (key, the value that makes it encoder-only), or None where it is encoder-only whatever the config. The ones that
# depend on the release (a module that reads is_causal from some release on, an architecture registered late) are
# the vLLM engine's to decide: engines/vllm_config_read.py ENCODER_ONLY_FROM.
_BERT_FAMILY = (  # registry.py 0.32.0:215-328: the bert, roberta, modernbert, bert_with_rope, colbert and
    # openai_privacy_filter modules' pooling classes, each built of EncoderOnlyAttention (bert.py 0.32.0:266,
    # modernbert.py :110, bert_with_rope.py :137, openai_privacy_filter.py :41; roberta.py and colbert.py build bert's
    # and modernbert's layers)
    "BertModel BertForMaskedLM BertSpladeSparseEmbeddingModel BertForTokenClassification "
    "BertForSequenceClassification BgeM3EmbeddingModel RobertaModel RobertaForMaskedLM RobertaForTokenClassification "
    "RobertaForSequenceClassification "
    "XLMRobertaModel XLMRobertaForTokenClassification XLMRobertaForSequenceClassification ModernBertModel "
    "ModernBertForTokenClassification ModernBertForSequenceClassification GteModel GteNewModel "
    "GteNewForSequenceClassification NomicBertModel HF_ColBERT ColBERTModernBertModel ColBERTJinaRobertaModel "
    "OpenAIPrivacyFilterForTokenClassification").split()
ENCODER_ONLY = {
    **dict.fromkeys(_BERT_FAMILY),
    # Gemma3TextModelConfig: is_causal = not use_bidirectional_attention (models/config.py 0.32.0:81-85, 0.34.0
    # :218-222), read by gemma3.py 0.32.0:165-174 to pick EncoderOnlyAttention; EmbeddingGemma ships the flag true
    "Gemma3TextModel": ("use_bidirectional_attention", True),
    # LFM2's embedding class (registry.py 0.33.0:233, 0.34.0:238; none before): its attention layers are
    # EncoderOnlyAttention (lfm2.py 0.34.0:164, `bidirectional=True` from :514) and its short-convolution layers
    # Lfm2BidirectionalShortConv (:348-352), plain linear layers that keep no conv state (not ShortConv, a MambaBase):
    # no cache of any kind (@attn_type("encoder_only"), seq pooling CLS: :500-502)
    "Lfm2BidirectionalModel": None,
}


def switched_on(switch, get) -> bool:
    """Whether the config sets `switch` ((key, the value that makes the model encoder-only), None: always): a bool
    is read as vLLM's truth test of the key (is_causal false, use_bidirectional_attention true), any other value must
    be the key's exactly (ColQwen3.5's retrieval_attention_contract "bidirectional", not "causal")."""
    if switch is None:
        return True
    key, encoder_when = switch
    value = get(key)
    if not isinstance(encoder_when, bool):
        return value == encoder_when
    return bool(value) if encoder_when else value is not None and not value


def is_encoder_only(architecture: str, get) -> bool:
    """Whether vLLM builds this model's attention encoder-only in every release (ENCODER_ONLY); `architecture`: the
    config's top-level one, which vLLM picks its config handler and module by."""
    return architecture in ENCODER_ONLY and switched_on(ENCODER_ONLY[architecture], get)


def encoder_only_error(name: str, architecture: str, by: str = "vLLM", keeps_state: bool = False) -> KvplanError:
    """`keeps_state`: a hybrid whose linear-attention (Mamba, gated DeltaNet) layers keep their per-request state
    while its attention layers are built encoder-only; kvplan does not model that cache."""
    if keeps_state:
        return KvplanError(f"{name} ({architecture}) has its attention layers built encoder-only by {by}, with no KV "
                           f"cache, while its linear-attention layers keep their state: kvplan does not model that "
                           f"layout, so it refuses rather than mis-size the cache.")
    return KvplanError(f"{name} ({architecture}) is an encoder-only model: {by} builds no KV cache for it, so there "
                       f"is nothing for kvplan to size.")


def refuse_unmodelled(architecture: str, get, name: str, registered: str = "") -> None:
    """`registered`: the config's top-level architecture (vLLM's registry key) where a nested language model's
    config names another (`architecture`). The class vLLM serves is the top-level one (registry.py 0.32.0:1323-1374
    over hf_config.architectures, config/model.py :730), so its name refuses whatever the nested config names; the
    fields and the exemptions of a class kvplan models (MODELLED_FIELDS) are the language model's."""
    if is_encoder_only(registered or architecture, get):
        raise encoder_only_error(name, registered or architecture)
    reason = (named_layout(registered, get) if registered else None) or unmodelled_layout(architecture, get)
    if reason is not None:
        raise KvplanError(f"{name}: {reason}, which kvplan does not model; it refuses rather than mis-size the "
                          f"KV cache and weights ({SIZED}).")
