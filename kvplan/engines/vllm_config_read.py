"""vLLM's first refusals, met while ModelConfig reads the config and before anything reads the GPU
(config_read_refusal), and the architectures a release builds with no KV cache at all.

Rules and where vLLM has them (paths under vllm/):
- an architecture the release's registry does not list: added later (ADDED_ARCHITECTURES), dropped or renamed
  (vllm_registry.py RETIRED, UNLISTED) (architecture_refusal: model_executor/models/registry.py
  _raise_for_unsupported).
- a max_model_len past the model's own (length_refusal: config/model.py _get_and_verify_max_len; the length the
  RoPE factor scales: vllm_rope_len.py), and --disable-sliding-window beside a RoPE scaling type 0.4.3-0.11.x cannot
  pair with it (rope_window_refusal).
- encoder-only builds, whose layers ask for no KV cache (ENCODER_ONLY_FROM: encoder_only_since, refuse_encoder_only;
  layers/attention/encoder_only_attention.py), and configs a release's model class refuses to build
  (BUILD_REFUSED_SINCE: build_refusal).
"""

from __future__ import annotations

from typing import Optional

from ..errors import KvplanError
from ..model.unmodelled import encoder_only_error, switched_on
from .figures import Refusal
from .vllm_pooling import pooling_runner
from .vllm_registry import (FIRST_LISTED, LAST_RUNS, PLUGINS, RETIRED, UNLISTED, last_serving, padded_release,
                            retirement, served_architecture, unlisted_span)
from .vllm_registry_names import LISTED_0_32
from .vllm_versions import NEWEST, parse_version

# Architectures vLLM dropped (_PREVIOUSLY_SUPPORTED_MODELS, message at registry.py 0.32.0:1186-1195), by release:
# vllm_registry.RETIRED, with the release each stops being listed, is named from and is named with.
# Architectures that came later, with the first release whose registry.py lists them (checked in each release's
# vllm/model_executor/models/registry.py); an older release refuses them in _raise_for_unsupported ("are not
# supported for now") instead of serving them by 0.32's rules. The generating ones 0.2.1-0.14.1 add and the pooling
# ones of every release are vllm_registry.py's (FIRST_LISTED, with their lines; a release that drops one: UNLISTED).
# 0.33.0 and 0.34.0: the generative architectures their registries add (the _TEXT_GENERATION_MODELS /
# _MULTIMODAL_MODELS dicts diffed against the release before; 0.33.0 registry.py:83, 111, 354, 528, 556, 648; 0.34.0
# :153, 209, 220, 507, 511, 533, 568, 661) that kvplan's reader takes;
# the rest it refuses as layouts it does not model (model/unmodelled.py: AliceAI, Dory, DomynEdge, Step5, Mistral
# Large 4, ZAYA1, Kimi K3.1, Canary):
# Qwen3.5: the ConditionalGeneration pair from 0.17.0 (registry.py:496-503), the CausalLM pair from 0.27.0 (:201-202);
# each release that lists them keeps their GDN recurrent state in the config's mamba_ssm_dtype (model/layers.py
# SSM_DTYPE_FROM_CONFIG). 0.15.0 and 0.15.1 (their wheels' registry.py diffed against 0.14.1's): the generative
# architectures 0.15.0 adds (registry.py 0.15.0:115 GLM-4.7-Flash's Glm4MoeLiteForCausalLM, :189, :306, :333, :362
# KimiK25ForConditionalGeneration, :396) and 0.15.1's Step3p5ForCausalLM (0.15.1 :191).
ADDED_ARCHITECTURES = {**FIRST_LISTED, "DeepseekV32ForCausalLM": "0.11.0", "KimiLinearForCausalLM": "0.11.1",
                       "GlmMoeDsaForCausalLM": "0.16.0", "Gemma4ForCausalLM": "0.19.0",
                       **dict.fromkeys(("Glm4MoeLiteForCausalLM", "Step1ForCausalLM",
                                        "Eagle2_5_VLForConditionalGeneration", "StepVLForConditionalGeneration",
                                        "KimiK25ForConditionalGeneration", "Molmo2ForConditionalGeneration"), "0.15.0"),
                       "Step3p5ForCausalLM": "0.15.1",
                       **dict.fromkeys(("Qwen3_5ForConditionalGeneration", "Qwen3_5MoeForConditionalGeneration"),
                                       "0.17.0"),
                       **dict.fromkeys(("Qwen3_5ForCausalLM", "Qwen3_5MoeForCausalLM"), "0.27.0"),
                       "Gemma4ForConditionalGeneration": "0.19.0", "DeepseekV4ForCausalLM": "0.20.0",
                       "Gemma4UnifiedForConditionalGeneration": "0.23.0",
                       **dict.fromkeys(("BeamForCausalLM", "FlintForCausalLM", "Alpamayo2Super",
                                        "MiniCPMOcrForConditionalGeneration", "MuseSparkForConditionalGeneration",
                                        "RadioMBartPrefixForCausalLM"), "0.33.0"),
                       **dict.fromkeys(("Lfm3ForCausalLM", "RicursiveForCausalLM", "UnlimitedOCR2TextForCausalLM",
                                        "Lfm3AudioForConditionalGeneration", "Lfm3VlForConditionalGeneration",
                                        "MingV3ASRForConditionalGeneration",
                                        "Nemotron3_5TranscribeForConditionalGeneration"), "0.34.0"),
                       # 0.16.0 to 0.32.0: every other generative architecture (_TEXT_GENERATION_MODELS,
                       # _MULTIMODAL_MODELS) a release's registry.py adds over the release before, listed from then
                       # on, that kvplan's reader does not refuse as unmodelled (model/unmodelled.py ARCHITECTURES):
                       # registry.py 0.16.0:168, 297, 318, 328, 342, 367, 421, 460, 478; 0.17.0:78, 85, 344, 348, 448,
                       # 449, 487; 0.18.0:135, 136, 176, 196, 197, 428; 0.19.0:534; 0.20.0:114, 137, 189, 362, 363,
                       # 380, 389, 413, 484, 485, 505; 0.21.0:92, 154, 177, 487, 488, 514; 0.22.0:439, 486, 507;
                       # 0.22.1:163; 0.23.0:372, 422; 0.24.0:135, 401, 503; 0.25.0:355, 450, 474; 0.26.0:148, 362;
                       # 0.27.0:100; 0.28.0:82, 186, 455, 534; 0.29.0:131, 132, 515; 0.30.0:145, 353, 363;
                       # 0.32.0:519. ExaoneMoEForCausalLM (0.14.0, FIRST_LISTED) is renamed ExaoneMoeForCausalLM in
                       # 0.27.0 (:100) and back beside it from 0.32.0 (:102): vllm_registry.UNLISTED
                       **dict.fromkeys(("NemotronHPuzzleForCausalLM", "MusicFlamingoForConditionalGeneration",
                                        "DeepseekOCR2ForCausalLM", "FunAudioChatForConditionalGeneration",
                                        "GlmOcrForConditionalGeneration", "InternS1ProForConditionalGeneration",
                                        "OpenPanguVLForConditionalGeneration", "Qwen3ASRForConditionalGeneration",
                                        "VoxtralRealtimeGeneration"), "0.16.0"),
                       **dict.fromkeys(("AXK1ForCausalLM", "BailingMoeV2_5ForCausalLM",
                                        "FireRedASR2ForConditionalGeneration", "FunASRForConditionalGeneration",
                                        "Ovis2_6ForCausalLM", "Ovis2_6_MoeForCausalLM", "Qwen3ASRRealtimeGeneration"
                                       ), "0.17.0"),
                       **dict.fromkeys(("HCXVisionV2ForCausalLM", "HyperCLOVAXForCausalLM", "OlmoHybridForCausalLM",
                                        "SarvamMoEForCausalLM", "SarvamMLAForCausalLM", "MoonshotKimiaForCausalLM"
                                       ), "0.18.0"),
                       "CohereAsrForConditionalGeneration": "0.19.0",
                       **dict.fromkeys(("Rnj1ForCausalLM", "HYV3ForCausalLM", "Param2MoEForCausalLM", "Cheers",
                                        "CheersForConditionalGeneration", "Exaone4_5_ForConditionalGeneration",
                                        "FireRedLIDForConditionalGeneration", "Granite4VisionForConditionalGeneration",
                                        "NemotronH_Nano_Omni_Reasoning_V3", "NemotronH_Super_Omni_Reasoning_V3",
                                        "Phi4ForCausalLMV"), "0.20.0"),
                       **dict.fromkeys(("Cohere2MoeForCausalLM", "LagunaForCausalLM", "MiMoV2ForCausalLM",
                                        "Moondream3ForCausalLM", "HfMoondream", "QianfanOCRForConditionalGeneration"
                                       ), "0.21.0"),
                       **dict.fromkeys(("InternS2PreviewForConditionalGeneration",
                                        "MiniCPMV4_6ForConditionalGeneration", "OpenVLAForActionPrediction"), "0.22.0"),
                       "MellumForCausalLM": "0.22.1",
                       **dict.fromkeys(("Cosmos3ForConditionalGeneration", "GraniteSpeechPlusForConditionalGeneration"
                                       ), "0.23.0"),
                       **dict.fromkeys(("HrmTextForCausalLM", "DiffusionGemmaForBlockDiffusion", "MossAudioModel"
                                       ), "0.24.0"),
                       **dict.fromkeys(("UnlimitedOCRForCausalLM", "MossTranscribeDiarizeForConditionalGeneration",
                                        "LlavaOnevision2ForConditionalGeneration"), "0.25.0"),
                       **dict.fromkeys(("LongcatFlashNgramForCausalLM", "Cosmos3EdgeForConditionalGeneration"
                                       ), "0.26.0"),
                       "ExaoneMoeForCausalLM": "0.27.0",
                       **dict.fromkeys(("BailingMoeV3ForCausalLM", "MuseGlimmerForCausalLM",
                                        "InternS2MobiusForConditionalGeneration", "MuseGlimmerForConditionalGeneration"
                                       ), "0.28.0"),
                       **dict.fromkeys(("GraniteMoeSWAForCausalLM", "GraniteSWAForCausalLM",
                                        "NemotronH_Omni_Reasoning_V3"), "0.29.0"),
                       **dict.fromkeys(("K2HorizonForCausalLM", "BailingMoeV3VLForConditionalGeneration",
                                        "CohereCompassForConditionalGeneration"), "0.30.0"),
                       "MiniCPMV4_7ForConditionalGeneration": "0.32.0",
                       # encoder-only models (ENCODER_ONLY_FROM): registry.py 0.14.0:214, :259; 0.16.0:241;
                       # 0.17.0:264, :287; 0.20.0:233; 0.29.0:225
                       **dict.fromkeys(("LlamaBidirectionalModel", "LlamaBidirectionalForSequenceClassification"),
                                       "0.14.0"),
                       "VoyageQwen3BidirectionalEmbedModel": "0.16.0",
                       **dict.fromkeys(("LlamaNemotronVLModel", "LlamaNemotronVLForSequenceClassification"),
                                       "0.17.0"),
                       "JinaEmbeddingsV5Model": "0.20.0", "DeepseekV3BidirectionalModel": "0.29.0",
                       # Llama-module aliases and Ministral 3 (ENCODER_ONLY_FROM): registry.py 0.14.0:134-135,
                       # 0.20.0:166, :214 (none in 0.13.0's or 0.19.1's)
                       **dict.fromkeys(("IQuestCoderForCausalLM", "IQuestLoopCoderForCausalLM"), "0.14.0"),
                       **dict.fromkeys(("Ministral3ForCausalLM", "TeleChat3ForCausalLM"), "0.20.0"),
                       # openpangu.py's dense model: registry.py 0.11.1:153, absent from 0.11.0's
                       "PanguEmbeddedForCausalLM": "0.11.1",
                       # colqwen3_5.py's late-interaction Qwen3.5: registry.py 0.19.0:279 (0.20.0:287), absent from
                       # 0.18.1's
                       "ColQwen3_5": "0.19.0"}
# Architectures vLLM builds encoder-only from a release on (EncoderOnlyAttention asks for no KV cache spec:
# layers/attention/encoder_only_attention.py 0.34.0:94-96), so it allocates no cache to size: architecture (the config's
# top-level one, vLLM's registry key) -> (first release, the config switch (key, the value that makes it encoder-only)
# or None where the config handler or the model class always does, or _POOLING_RUNNER where the class does on the
# pooling runner, where vLLM reads it). Older releases build the same config causal, with a KV cache, or
# (ADDED_ARCHITECTURES) do not serve it; a release that has dropped it refuses it (vllm_registry.RETIRED). The
# architectures every release builds encoder-only (BERT's family, EmbeddingGemma) model/unmodelled.py ENCODER_ONLY
# refuses for every engine.
_IS_CAUSAL = ("is_causal", False)
# From 0.10.1 the V1 engine keeps no cache for an ENCODER_ONLY layer (v1/worker/gpu_model_runner.py 0.10.1:3256-3258,
# and marks a model of them encoder-only, :2823-2857) and its FlashAttention runs one (flash_attn.py 0.10.1:393);
# 0.10.0's raises NotImplementedError for any attention but the decoder's (flash_attn.py 0.10.0:378-382).
_LLAMA = ("0.10.1", _IS_CAUSAL, "llama.py LlamaDecoderLayer 0.10.1:251-254, 0.10.2:271-274, 0.11.0:275, 0.34.0:280")
_QWEN2 = ("0.10.1", _IS_CAUSAL, "qwen2.py Qwen2DecoderLayer 0.10.1:211-214, 0.11.0:214, 0.34.0:266")
_DEEPSEEK = ("0.29.0", _IS_CAUSAL, "deepseek_v2.py 0.29.0:566, 0.34.0:571; no is_causal in 0.28.0's")
_ALWAYS = None  # the config handler sets is_causal false whatever the config says
_POOLING_RUNNER = "pooling runner"  # the class sets is_causal false when vLLM serves it with the pooling runner
ENCODER_ONLY_FROM = {
    # registry.py 0.11.0:106, :121, :178 (Mistral's in the llama module until 0.14.1), 0.14.0:134, 0.20.0:214
    **dict.fromkeys(("LlamaForCausalLM", "LLaMAForCausalLM", "LlamaModel", "MistralModel", "InternLM3ForCausalLM",
                     "IQuestCoderForCausalLM", "TeleChat3ForCausalLM", "MistralForCausalLM"), _LLAMA),
    # the mistral module from 0.15.0 (registry.py 0.15.0:156, 0.16.0:158, 0.20.0:166-167): MistralDecoderLayer builds
    # LlamaDecoderLayer with the attn_type it picks (mistral.py 0.15.0 and 0.16.0 :77-90, :144-156)
    "Ministral3ForCausalLM": ("0.20.0", _IS_CAUSAL, "mistral.py 0.20.0:144-156 over llama.py 0.20.0's"),
    # qwen2_rm.py 0.11.0:54: the reward models build Qwen2Model
    **dict.fromkeys(("Qwen2ForCausalLM", "Qwen2Model", "Qwen2ForRewardModel", "Qwen2ForProcessRewardModel"), _QWEN2),
    "Qwen3ForCausalLM": ("0.11.0", _IS_CAUSAL, "qwen3.py 0.11.0:183, 0.34.0:197"),
    "ApertusForCausalLM": ("0.11.0", _IS_CAUSAL, "apertus.py 0.11.0:260, 0.34.0:259"),
    "Gemma3ForCausalLM": ("0.11.0", _IS_CAUSAL, "gemma3.py 0.11.0:172, 0.34.0:165"),
    # OpenPanguDecoderLayer's GQA attention (not where the config makes it MLA: CAUSAL_BY_KEYS; from 0.14.0 a sink
    # attention raises on is_causal false instead: BUILD_REFUSED_SINCE); registered from 0.11.1 (ADDED_ARCHITECTURES)
    "PanguEmbeddedForCausalLM": ("0.11.1", _IS_CAUSAL, "openpangu.py 0.11.1:595-602, 0.34.0:859-866"),
    # Qwen3NextAttention builds its full_attention layers ENCODER_ONLY from 0.24.0 (qwen3_next.py 0.24.0:271-279,
    # 0.34.0:353-359; 0.23.0 reads no is_causal), from the language model's config (qwen3_5.py 0.24.0:132,
    # 0.34.0:132 hf_text_config; qwen3_next.py 0.24.0:390 hf_config); the gated-DeltaNet layers keep their state
    # (refuse_encoder_only says so). Qwen3.5's CausalLM pair is registered from 0.27.0 (ADDED_ARCHITECTURES).
    **dict.fromkeys(("Qwen3NextForCausalLM", "Qwen3_5ForConditionalGeneration", "Qwen3_5MoeForConditionalGeneration",
                     "Qwen3_5ForCausalLM", "Qwen3_5MoeForCausalLM"),
                    ("0.24.0", _IS_CAUSAL, "qwen3_next.py 0.24.0:271-279, 0.34.0:353-359")),
    # ColQwen3_5Model is a Qwen3_5ForConditionalGeneration (colqwen3_5.py 0.27.0:113-116, 0.34.0:112-115) whose
    # config handler sets is_causal on hf_config and hf_text_config from retrieval_attention_contract (models/config.py
    # 0.27.0:840-875, 0.34.0:1413-1448): "bidirectional" builds the full-attention layers encoder-only
    # (Qwen3NextAttention, qwen3_next.py 0.27.0:291-298). 0.24-0.26's handler sets only hf_config.is_causal
    # (0.24.0:639-641), which a nested text_config's layers never read; older releases read no is_causal.
    "ColQwen3_5": ("0.27.0", ("retrieval_attention_contract", "bidirectional"),
                   "models/config.py 0.27.0:840-875, 0.34.0:1413-1448"),
    "IQuestLoopCoderForCausalLM": ("0.14.0", _IS_CAUSAL, "iquest_loopcoder.py 0.14.0:225, 0.34.0:225"),
    # only DeepseekV2Attention reads it; DeepSeek v1 (model_type deepseek) builds DeepseekAttention, causal whatever the
    # config says (deepseek_v2.py 0.29.0:1268-1276, 0.34.0:1280)
    **dict.fromkeys(("DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM", "DeepseekV3BidirectionalModel"), _DEEPSEEK),
    # JinaEmbeddingsV5ModelConfig sets is_causal false where is_decoder is false and jina.py picks the encoder
    # (models/config.py 0.27.0:477-493, jina.py 0.27.0:310-311); 0.20-0.26 build it a causal Qwen3
    "JinaEmbeddingsV5Model": ("0.27.0", ("is_decoder", False), "models/config.py 0.27.0:477-493, 0.34.0:931-947"),
    **dict.fromkeys(("LlamaBidirectionalModel", "LlamaBidirectionalForSequenceClassification"),
                    ("0.14.0", _ALWAYS, "LlamaBidirectionalConfig, models/config.py 0.14.0:94-100")),
    "VoyageQwen3BidirectionalEmbedModel": ("0.16.0", _ALWAYS, "models/config.py 0.16.0:585, 0.17.0:652-655"),
    # pooling classes whose every attention layer is built encoder-only (Attention with attn_type ENCODER_ONLY or
    # EncoderOnlyAttention: get_kv_cache_spec returns None, layers/attention/attention.py 0.32.0:614-615) in every
    # release that lists them (vllm_registry.FIRST_LISTED, RETIRED); their vision towers' MMEncoderAttention keeps no
    # cache either. SigLIP's text tower (siglip.py 0.11.1:592, 0.34.0:575), unlike CLIP's
    # (vllm_kv_dtype.KV_DTYPE_QUIRKS)
    "SiglipModel": ("0.11.1", _ALWAYS, "siglip.py 0.11.1:592, 0.34.0:575"),
    # ERNIE's classes build bert.py's layers (ernie.py 0.18.0 and 0.23.0:73 ErnieModel(BertModel), :125, :194;
    # bert.py 0.18.0 and 0.23.0:265 EncoderOnlyAttention); listed 0.18.0-0.23.0
    **dict.fromkeys(("ErnieModel", "ErnieForSequenceClassification", "ErnieForTokenClassification"),
                    ("0.18.0", _ALWAYS, "ernie.py 0.18.0:73 over bert.py 0.18.0:265")),
    # ModernBertLayer (colmodernvbert.py 0.17.0:278, 0.34.0:285; modernbert.py 0.17.0:114, 0.34.0:110);
    # ModernVBertModel is its alias from 0.33.0 (registry.py 0.33.0:286)
    **dict.fromkeys(("ColModernVBertForRetrieval", "ModernVBertModel"),
                    ("0.17.0", _ALWAYS, "colmodernvbert.py 0.17.0:278 over modernbert.py 0.17.0:114")),
    # UltraBertAttention (colultravbert.py 0.33.0 and 0.34.0:110); UltraVBertModel its alias from 0.34.0 (:293)
    **dict.fromkeys(("ColUltraVBertForRetrieval", "UltraVBertModel"),
                    ("0.33.0", _ALWAYS, "colultravbert.py 0.33.0:110, 0.34.0:110")),
    # EmbeddingGemma2Attention: Attention(attn_type=ENCODER_ONLY) (embedding_gemma2.py 0.32.0:157, 0.33.0:158), then
    # EncoderOnlyAttention (0.34.0:148)
    "EmbeddingGemma2Model": ("0.32.0", _ALWAYS, "embedding_gemma2.py 0.32.0:157, 0.34.0:148"),
    # GritLM sets hf_config.is_causal = False on the pooling runner (gritlm.py 0.10.2:245-247, 0.11.0:245-247, 0.28.0:
    # 226-228), which LlamaDecoderLayer reads (llama.py 0.10.2:271-274 EncoderOnlyAttention); on the generate runner it
    # is a causal Llama; listed to 0.28.0. Up to 0.10.1 it is SupportsV0Only (gritlm.py 0.10.1:218), so V0 runs it with
    # a cache for every layer; 0.10.2 drops that (gritlm.py 0.10.2:219) and V1 keeps none (gpu_model_runner.py
    # 0.10.2:3692-3694).
    "GritLM": ("0.10.2", _POOLING_RUNNER, "gritlm.py 0.10.2:245-247 over llama.py 0.10.2:271-274"),
    **dict.fromkeys(("LlamaNemotronVLModel", "LlamaNemotronVLForSequenceClassification"),
                    ("0.17.0", _ALWAYS, "LlamaNemotronVLConfig, models/config.py 0.17.0:115-127")),
}
# Architectures of ENCODER_ONLY_FROM whose decoder layer builds an attention that never reads the switch (causal, with
# a cache) where the config has every one of these keys: OpenPanguDecoderLayer's MLA, picked by hasattr of the four
# (openpangu.py 0.11.1:564-569, 0.34.0:790-795; OpenPanguMLAAttention reads no is_causal)
CAUSAL_BY_KEYS = {"PanguEmbeddedForCausalLM": ("qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "kv_lora_rank")}
# Architectures whose model vLLM refuses to build from a release on, for a config kvplan can read the reason from
# (build_refusal): PanguEmbedded's sink attention (param_sink_number > 0, not MLA) raises on is_causal false from
# 0.14.0 (openpangu.py 0.14.0:832-834 picks it, :859-866 raises; 0.34.0:796-798, :822-829; 0.13.0 has no sink
# attention and builds the GQA one, encoder-only); ColQwen3.5's config handler raises from 0.27.0 where neither
# config declares retrieval_attention_contract, or one declares a value other than "causal" / "bidirectional", or the
# two disagree (models/config.py 0.27.0:851-872, 0.34.0:1424-1445)
BUILD_REFUSED_SINCE = {"PanguEmbeddedForCausalLM": "0.14.0", "ColQwen3_5": "0.27.0"}
CONTRACTS = ("causal", "bidirectional")  # models/config.py 0.27.0:858 (0.34.0:1431)


def encoder_only_since(spec, version: Optional[str] = None) -> Optional[str]:
    """The first release that builds `spec` encoder-only (ENCODER_ONLY_FROM), by its top-level architecture and its
    switches (a _POOLING_RUNNER one: the runner `version`, None the newest, serves it with), and serves it
    (ADDED_ARCHITECTURES: TeleChat3's Llama module reads is_causal before 0.20 registers it); None where none does."""
    architecture = served_architecture(spec)
    entry = ENCODER_ONLY_FROM.get(architecture)
    if entry is None:
        return None
    first, switch, _ = entry
    switches = dict(getattr(spec, "attention_switches", ()))
    if switch == _POOLING_RUNNER:
        if not pooling_runner(spec, version or NEWEST):
            return None
    elif not switched_on(switch, switches.get) or _built_causal(architecture, switches):
        return None
    return max(first, ADDED_ARCHITECTURES.get(architecture, first), key=parse_version)


def refuse_encoder_only(spec, version: Optional[str]) -> None:
    """Raise where vLLM `version` builds `spec` encoder-only, with no KV cache for kvplan to size; `version` None
    (--engine none, no release to ask) takes the newest release's rule. A release whose registry does not list the
    architecture refuses it first (architecture_refusal, while ModelConfig reads the config, before any layer is
    built): that refusal is the engine's to say, so this one stays quiet. A release whose model class raises while
    it builds such a config's attention (build_refusal) says that instead."""
    architecture = served_architecture(spec)
    if version is not None and architecture_refusal(architecture, version):
        return
    reason = build_refusal(spec, version)
    if reason is not None:
        by = f"vLLM {version}" if version else f"vLLM (from {BUILD_REFUSED_SINCE[architecture]})"
        raise KvplanError(f"{spec.name} ({architecture}) does not start on {by}: building the model raises "
                          f"\"{reason}\".")
    first = encoder_only_since(spec, version)
    if first is not None and parse_version(version or NEWEST) >= parse_version(first):
        retired = RETIRED.get(architecture)
        span = f"{first} to {last_serving(architecture)}" if retired else f"from {first}"
        by = f"vLLM {version}" if version else f"vLLM ({span})"
        raise encoder_only_error(spec.name, architecture, by, keeps_state=bool(spec.linear_layers))


def build_refusal(spec, version: Optional[str]) -> Optional[str]:
    """vLLM's error while its model class builds `spec`'s attention at `version` (None: the newest), for a config
    ENCODER_ONLY_FROM would otherwise call encoder-only (BUILD_REFUSED_SINCE); None where it builds."""
    architecture = served_architecture(spec)
    since = BUILD_REFUSED_SINCE.get(architecture)
    if since is None or parse_version(version or NEWEST) < parse_version(since):
        return None
    switches = dict(getattr(spec, "attention_switches", ()))
    if architecture == "ColQwen3_5":
        return _contract_refusal(switches.get("retrieval_attention_contract"))
    sinks = switches.get("param_sink_number")
    sink_attention = not isinstance(sinks, bool) and isinstance(sinks, (int, float)) and sinks > 0
    if not sink_attention or _built_causal(architecture, switches) or not switched_on(_IS_CAUSAL, switches.get):
        return None
    return f"is_causal={switches['is_causal']} is not support for attention with sink"


def _contract_refusal(declared) -> Optional[str]:
    """ColQwen3_5Config's error for the retrieval_attention_contract the configs declare (parse records one value,
    or a tuple where the outer and the language model's configs disagree), None for a supported one."""
    if declared is None:
        return "ColQwen3.5 checkpoints must declare retrieval_attention_contract as 'causal' or 'bidirectional'"
    if isinstance(declared, str) and declared in CONTRACTS:
        return None
    declarations = list(declared) if isinstance(declared, tuple) else [declared]
    return f"unsupported or conflicting ColQwen3.5 retrieval_attention_contract declarations: {declarations!r}"


def _built_causal(architecture: str, switches: dict) -> bool:
    """Whether the config's keys make the decoder layer build an attention that never reads the switch
    (CAUSAL_BY_KEYS)."""
    keys = CAUSAL_BY_KEYS.get(architecture)
    return keys is not None and all(switches.get(key) is not None for key in keys)


def architecture_refusal(architecture: str, version: str) -> Optional[Refusal]:
    """model_executor/models/registry.py (0.32.0:1186-1209, _raise_for_unsupported): an architecture the release's
    registry does not list is refused while the config is read, whatever the memory; the release is at fault
    (field engine), and the remedy names the releases that serve it."""
    first = ADDED_ARCHITECTURES.get(architecture)
    if first is not None and padded_release(version) < padded_release(first):  # a minor series as its .0 release
        return Refusal(f"Model architectures ['{architecture}'] are not supported for now (vLLM's registry lists "
                       f"them from v{first} on; vllm=={version} is older).", None, configuration=True, field="engine",
                       options=(f"vllm=={first}",), onward="newer")
    return (_unlisted_refusal(architecture, version) or _retired_refusal(architecture, version)
            or _nowhere_refusal(architecture, version))


TRANSFORMERS_BACKEND = "0.7.2"  # the first release that tries the Transformers backend for an unlisted name


def _nowhere_refusal(architecture: str, version: str) -> Optional[Refusal]:
    """_raise_for_unsupported's line (registry.py 0.32.0:1206-1209, worded as architecture_refusal's) for an
    architecture no release lists by that name (listed_by_name), in a release from before the Transformers backend
    took such names (TRANSFORMERS_BACKEND); later ones may serve it there (unlisted_note) or as another name."""
    if not architecture or not before_transformers_backend(version) or listed_by_name(architecture):
        return None
    # a name served later only through another one (_normalize_arch) or the Transformers backend: such a release
    # resolves the names it lists, no other (vllm#11647: 'Gemma2ForSequenceClassification' refused in December 2024)
    listed = (f"vllm=={version} lists no such name and" if listed_anywhere(architecture)
              else f"no vLLM release lists them; vllm=={version}")
    return Refusal(f"Model architectures ['{architecture}'] are not supported for now ({listed} predates the "
                   f"Transformers backend of v{TRANSFORMERS_BACKEND}).", None,
                   configuration=True, field="engine", options=(f"vllm=={TRANSFORMERS_BACKEND}",), onward="newer")


# config/model.py 0.32.0:2322-2339 (_SUFFIX_TO_DEFAULTS): registry.py's _normalize_arch (0.32.0:1297-1320) serves an
# unlisted name as the listed one its suffix swapped for another of these names (a ...ForSequenceClassification as
# its ...ForCausalLM, converted)
SUFFIXES = ("ForCausalLM", "ForConditionalGeneration", "ChatModel", "LMHeadModel", "ForTextEncoding", "EmbeddingModel",
            "ForSequenceClassification", "ForTokenClassification", "ForAudioClassification", "ForImageClassification",
            "ForVideoClassification", "ClassificationModel", "ForRewardModeling", "RewardModel", "Model")


def listed_anywhere(architecture: str) -> bool:
    """Whether any release kvplan models lists `architecture` in its registry, or a name it is served as (SUFFIXES):
    the pinned release's names (vllm_registry_names, read from its source), those later or earlier releases add
    (ADDED_ARCHITECTURES), drop (UNLISTED, RETIRED, LAST_RUNS) or hand to a plugin (PLUGINS)."""
    stems = [architecture[:-len(suffix)] for suffix in SUFFIXES if architecture.endswith(suffix)]
    names = {architecture} | {stem + suffix for stem in stems for suffix in SUFFIXES}
    return any(_in_a_registry(name) for name in names)


# registry.py 0.32.0:715-739, 745-778: the names it lists only for its Transformers backend
# (_TRANSFORMERS_SUPPORTED_MODELS, _TRANSFORMERS_BACKEND_MODELS) that no release lists with a module of its own (that
# dict's others are ADDED_ARCHITECTURES' or 0.2.0's): no release before TRANSFORMERS_BACKEND serves them
TRANSFORMERS_ONLY = frozenset({"NanbeigeForCausalLM", "SmolLM3ForCausalLM", "VaultGemmaForCausalLM",
                               "Emu3ForConditionalGeneration", "VibeVoiceAsrForConditionalGeneration"}
                              | {name for name in LISTED_0_32 if name.startswith("Transformers")})


def listed_by_name(architecture: str) -> bool:
    """Whether a release lists `architecture` itself with a module of its own, as a release before
    TRANSFORMERS_BACKEND needs it to: no suffix swapped (listed_anywhere), not the Transformers backend's
    (TRANSFORMERS_ONLY)."""
    return architecture not in TRANSFORMERS_ONLY and _in_a_registry(architecture)


def _in_a_registry(name: str) -> bool:
    return any(name in listed for listed in (LISTED_0_32, ADDED_ARCHITECTURES, UNLISTED, RETIRED, LAST_RUNS, PLUGINS))


def before_transformers_backend(version: str) -> bool:
    return padded_release(version) < padded_release(TRANSFORMERS_BACKEND)


def unlisted_note(spec, version: Optional[str]) -> str:
    """The note on a model whose architecture no release lists, where `version` (0.7.2 on) hands it to the
    Transformers backend (registry.py 0.32.0:1222-1295, _try_resolve_transformers): that backend serves it only where
    transformers or the checkpoint's remote code has a compatible class, which kvplan cannot see offline; '' for
    a listed one, --engine none (version None) and earlier releases (they refuse it: _nowhere_refusal)."""
    architecture = served_architecture(spec)
    if version is None or not architecture or listed_anywhere(architecture) or before_transformers_backend(version):
        return ""
    return (f"no vLLM release lists {architecture} in its registry: vLLM {version} hands it to its Transformers "
            f"backend, which serves it only where the installed transformers (or the checkpoint's auto_map code) has "
            f"a compatible class for it, and refuses it otherwise; kvplan plans the layers its config names")


def _retired_refusal(architecture: str, version: str) -> Optional[Refusal]:
    """_raise_for_unsupported's line where `version`'s registry has dropped the architecture for good
    (vllm_registry.RETIRED): "not supported for now" until a release names it in _PREVIOUSLY_SUPPORTED_MODELS, then
    the release it names (registry.py 0.32.0:1186-1195), or the plugin that serves it (PLUGINS: 0.32.0:1196-1203).
    The remedy is the newest release that serves it (last_serving), which vLLM's named release is not always."""
    kind = retirement(architecture, version)
    if kind is None:
        return None
    retired = RETIRED[architecture]
    if kind == "unlisted":
        reason = (f"Model architectures ['{architecture}'] are not supported for now (vLLM's registry lists them up "
                  f"to v{retired.last}; vllm=={version} does not).")
    elif kind == "plugin":
        reason = (f"Model architecture {architecture} is not supported in-tree anymore. Please install the plugin at "
                  f"{PLUGINS[architecture][1]} if you want to use this model architecture.")
    else:
        reason = (f"Model architecture {architecture} was supported in vLLM until v{retired.until}, and is not "
                  f"supported anymore. Please use an older version of vLLM if you want to use this model "
                  f"architecture.")
    return Refusal(reason, None, configuration=True, field="engine", options=(f"vllm=={last_serving(architecture)}",),
                   onward="older")


def _unlisted_refusal(architecture: str, version: str) -> Optional[Refusal]:
    """The same refusal where `version`'s registry drops an architecture an older one lists (vllm_registry.UNLISTED:
    renamed, or gone without a _PREVIOUSLY_SUPPORTED_MODELS entry): the remedy is the first release that lists it
    again, else the last that did."""
    span = unlisted_span(architecture, version)
    if span is None:
        return None
    last, back = span
    listed = f"up to v{last} and again from v{back}" if back else f"up to v{last}"
    return Refusal(f"Model architectures ['{architecture}'] are not supported for now (vLLM's registry lists them "
                   f"{listed}; vllm=={version} does not).", None, configuration=True, field="engine",
                   options=(f"vllm=={back or last}",), onward="newer" if back else "older")


# Families whose transformers config class has no length attribute (MambaConfig, FalconMambaConfig,
# Mamba2Config): vLLM's derived length is then infinite and any --max-model-len is taken as given (config/model.py
# _get_and_verify_max_len: "If max_model_len is specified, we use it"), 2048 without one. Others without the key in
# their file still get a class default (FalconConfig: 2048), which vLLM holds them to.
NO_LENGTH_ATTRIBUTE = ("mamba", "falcon_mamba", "mamba2")


def length_refusal(max_model_len: int, derived: Optional[int], model_type: str = "",
                   key: str = "max_position_embeddings") -> Optional[Refusal]:
    """config/model.py _get_and_verify_max_len (0.32.0:2637-2666): a max_model_len above the model's own
    (max_position_embeddings, 2048 when the config names none) is refused while the config is read, whatever the
    memory, unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1; the length is at fault (field context), and the remedy is the
    model's own maximum (also `estimated_max_model_len`). `derived` is the length after the RoPE factor
    (vllm_rope_len.rope_view), as an int: vLLM compares with the float, the same for a whole --max-model-len."""
    if derived is None and model_type in NO_LENGTH_ATTRIBUTE:
        return None
    derived = derived or 2048
    if max_model_len <= derived:
        return None
    # the derived length is a float once multiplied by the RoPE factor, which a "gemma3" model type skips
    # (0.32.0:2585): --disable-sliding-window's cap on Gemma 3 prints the window as an int
    shown = derived if key == "sliding_window" and "gemma3" in model_type else float(derived)
    owner = "the model's own maximum" if key != "sliding_window" else \
        "the sliding window --disable-sliding-window caps it to"
    return Refusal(
        f"User-specified max_model_len ({max_model_len}) is greater than the derived max_model_len "
        f"({key}={shown} or model_max_length={derived if key == 'model_max_length' else None} in model's "
        f"config.json). To allow "
        f"overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1. VLLM_ALLOW_LONG_MAX_MODEL_LEN "
        f"must be used with extreme caution. If the model uses relative position encoding (RoPE), positions "
        f"exceeding derived_max_model_len lead to nan. If the model uses absolute position encoding, positions "
        f"exceeding derived_max_model_len will cause a CUDA array out-of-bounds error.", derived,
        configuration=True, field="context", options=(derived,), onward="less",
        note=f"{owner}; or VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, at your own risk",
        remedy_flags=(("disable_sliding_window", "--disable-sliding-window"),) if key == "sliding_window" else ())


def rope_window_refusal(spec, version: str) -> Optional[Refusal]:
    """vLLM 0.4.3-0.11.x's NotImplementedError for --disable-sliding-window beside a RoPE scaling type it multiplies
    the length by (vllm_rope_len.window_pair_refused), met while the length is derived; 0.12 takes the pair."""
    from .vllm_rope_len import window_pair_refused

    said = window_pair_refused(spec, version, getattr(spec, "sliding_window_disabled", False))
    if not said:
        return None
    return Refusal(said, None, configuration=True, field="engine", options=("vllm==0.12.0",), onward="newer",
                   note="vLLM 0.12 caps the length to the window and multiplies it by the RoPE factor")


def config_read_refusal(spec, length: int, version: str) -> Optional[Refusal]:
    """The first refusals start-up meets, while ModelConfig reads the config and before anything reads the GPU: the
    architecture (the release's registry), the length past the model's own (or the window --disable-sliding-window
    caps it to) and a RoPE type the release cannot pair with that switch. The same on every GPU, so verify asks them
    before torch (commands/verify.py); `spec` as the release views it (vllm_kv_dtype.release_view)."""
    return architecture_refusal(served_architecture(spec), version) or model_length_refusal(spec, length) or \
        rope_window_refusal(spec, version)


def model_length_refusal(spec, length: int) -> Optional[Refusal]:
    """length_refusal of `length` against `spec`'s own length (`spec` as the release views it:
    vllm_kv_dtype.release_view)."""
    return length_refusal(length, spec.max_position_embeddings, getattr(spec, "model_type", ""),
                          getattr(spec, "length_key", "max_position_embeddings"))
