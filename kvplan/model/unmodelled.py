"""Cache layouts vLLM serves that kvplan does not size. A config of one of these architectures reads as an
ordinary decoder to the generic reader (it names layers, heads and a head_dim) while its cache, or its weights,
follow rules kvplan has no layer kind for: sized anyway, the answer would look right and be wrong. So the reader
refuses them in one sentence that names what it saw. Each entry is what vLLM 0.32.0's model code reads
(model_executor/models/registry.py names the module); a field also catches a derivative under another name."""

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
    "WhisperForConditionalGeneration": _ENCODER_DECODER,
}

# A field present (and, for a count, above 0) marks the layout whatever the architecture is called, but in the
# families kvplan models it for (layers.py: Gemma 4's and Gemma 3n's KV sharing, Gemma 3n's AltUp, Kimi Linear's KDA
# layers, by model_type) and for the fields an architecture kvplan models declares itself (DeepSeek-V4's
# compress_ratios, MiMo-V2's sliding heads).
MODELLED_IN = {"num_kv_shared_layers": ("gemma4", "gemma3n"), "linear_attn_config": ("kimi_linear",),
               "altup_num_inputs": ("gemma3n",)}
MODELLED_FIELDS = {"DeepseekV4ForCausalLM": ("compress_ratios",),
                   **dict.fromkeys(("MiMoV2FlashForCausalLM", "MiMoV2ForCausalLM"), ("swa_num_key_value_heads",))}
# vLLM builds these as MiMoV2OmniForCausalLM when the config has a vision_config
# (transformers_utils/model_arch_config_convertor.py MimoV2ModelArchConfigConvertor)
OMNI_WHEN_VISION = ("MiMoV2FlashForCausalLM", "MiMoV2ForCausalLM")
FIELDS = {
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
}


def _present(value) -> bool:
    return value not in (None, 0, False, [], {}, "")


def unmodelled_layout(architecture: str, get) -> Optional[str]:
    """Why kvplan cannot size this config (None when it can): `get` reads a config field (Config.get, which
    looks through a multimodal wrapper to its language model)."""
    if architecture in ARCHITECTURES:
        return f"architecture {architecture} has {ARCHITECTURES[architecture]}"
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


def refuse_unmodelled(architecture: str, get, name: str) -> None:
    reason = unmodelled_layout(architecture, get)
    if reason is not None:
        raise KvplanError(f"{name}: {reason}, which kvplan does not model; it refuses rather than mis-size the "
                          f"KV cache and weights ({SIZED}).")
