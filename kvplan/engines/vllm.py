"""The vLLM engine model, pinned to vLLM 0.32.0 (older releases through vllm_versions.Behaviour): from a model's
layer kinds and the KV memory each GPU has, what the server logs at start-up (blocks, tokens, concurrency, or
its refusal) and how many max_model_len sequences it then keeps resident.

Rules and where vLLM 0.32.0 has them (paths under vllm/):
- batch defaults (engine/arg_utils.py EngineArgs.get_batch_defaults, `vllm serve`): >= 160 GiB GPUs 16384
  batched tokens / 1024 sequences; >= 70 GiB and not an A100: 8192 / 1024; others 2048 / 256 (older releases:
  vllm_versions.py); a multimodal prefix-LM's default raised to its largest media item (0.22+: vllm_media_floor.py);
  then max_num_batched_tokens <= max_num_seqs x max_model_len and max_num_seqs <= max_num_batched_tokens
  (_set_default_max_num_seqs_and_batched_tokens_args).
- batches in flight (config/vllm.py max_concurrent_batches): pp, +1 with async scheduling (on by default); the V1
  model runner (vllm_runner.py) overlaps two batches only without PP; in-flight tokens = batches x
  max_num_batched_tokens (max_in_flight_tokens). Releases before 0.26 reserved one batch (vllm_versions.py).
- prefix caching on by default: Mamba layers run in "align" mode with the attention block size
  (model_executor/models/config.py MambaModelConfig), else one state block of max_model_len tokens; off for
  attention-free models, and for hybrids before 0.28 but a pooling runner's (with_model_defaults: HYBRID_PREFIX_RULES),
  where in 0.11.1-0.27.x a class with Mamba prefix caching runs "all" mode, a state every block (mamba_all_mode).
- family quirks: see KV_DTYPE_QUIRKS.
- start-up (v1/core/kv_cache_utils.py get_kv_cache_configs): groups from the whole model, projected on each
  pipeline stage; num_blocks = available // bytes per block on each stage, the smallest stage wins; one block
  (the null block, v1/core/block_pool.py) is held back before checking that one max_model_len request fits,
  else vLLM refuses with its estimate of the longest max_model_len that would (estimate_max_model_len);
  concurrency = num_blocks / blocks per request over all groups (get_max_concurrency_for_kv_cache_config).
- resident sequences: vllm_admission.py.
- --num-gpu-blocks-override N: OVERRIDE_RULES.
- configurations refused whatever the memory (architecture, length, a 16-bit cache dtype other than the model's
  from 0.33, cache dtype, ROCm's sparse block, sparse MLA on a GPU no sparse backend runs on, an MLA hybrid's block
  forced by its backend up to 0.17): configuration_refusal;
  what clears each, checked against all of them: vllm_remedy.py. A multimodal prefix-LM's media item past the
  batched tokens (0.20+: vllm_media_floor.item_refusal) is refused in start, its remedy in words.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Optional

from ..errors import FieldError, KvplanError
from ..memo import remember
from ..model.kinds import V4_KINDS, FullAttention, MLALatent
from ..model.layers import MAMBA_CHUNK_FALLBACK
from ..model.precision import DTYPE_BYTES, PRECISIONS, kv_dtype_name, normalize_dtype_name, vllm_name
from ..model.unmodelled import encoder_only_error, switched_on
from .figures import EngineFigures, Refusal
from .vllm_admission import footprint
from .vllm_cache_flags import kda_refusal
from .vllm_ct_kv import kv_scheme_refusal
from .vllm_e5m2 import MLA_BACKEND_FIRST, attention_without_quant_config, e5m2_refusal
from .vllm_mamba_mode import (MAMBA_ALL_MODE, MAMBA_FREES_STATES_SINCE, MAMBA_PREFIX_CLASSES, _is_hybrid,
                              _mamba_prefix_class, mamba_all_mode)
from .vllm_media_floor import raised_note
from .vllm_nvfp4 import nvfp4_refusal_line, refusal_options
from .vllm_pooling import pooling_runner
from .vllm_prefix_flag import as_asked
from .vllm_sparse import (ROCM_NO_SPARSE, ROCM_SPARSE_SINCE, auto_on_gpu, dense_mla_fp8, dense_mla_refusal_line,
                          is_rocm_platform, refusal_line, rocm_block_refusal, sparse_cache, sparse_gpu_refusal_line,
                          taken_dtypes, v4_gpu_refusal_line)
from .vllm_quant import REMEDY_FLAGS, gpu_quantization_refusal, is_deprecation, marlin_refusal, \
    model_config_refusal, quant_config_refusal, scheme_refusal
from .vllm_registry import (FIRST_LISTED, PLUGINS, RETIRED, last_serving, padded_release, retirement,
                            served_architecture, unlisted_span)
from .vllm_specs import (BACKEND_BLOCK_MULTIPLE, DENSE_MLA_BLOCK_RULES, attention_block_size, backend_block_refusal,
                         cuda_sparse_block_refusal, default_block_size, dense_mla_backend, forced_mla_block,
                         hybrid_block_size, kv_cache_groups, layer_spec, mamba_all_blocks, mamba_page,
                         prefill_checkpoint_alignment, ununified_pages_error)
from .vllm_versions import NEWEST, PINNED, Behaviour, behaviour, parse_version, release_rule

GiB = 2**30

# Family quirks, keyed by the config's model_type, each with the vLLM 0.32.0 source line it comes from.
# Attention layers that keep the model dtype whatever --kv-cache-dtype says:
_FALCON = ("vllm/model_executor/models/falcon.py:173-197: FalconAttention builds Attention without cache_config on "
           "its rotary and ALiBi paths, so model_executor/layers/attention/attention.py:276-279 falls back to "
           "kv_cache_dtype 'auto' (the RefinedWeb model types ran the same class until vLLM 0.28)")
# CLIP's text tower (the language model kvplan reads: model_type clip_text_model) is causal, built of plain decoder
# Attention with a KV cache but no cache_config (clip.py 0.11.1:392-397 and 0.34.0:404-409 CLIPAttention, the text
# encoder's attn_cls=Attention at 0.11.1:557 and 0.34.0:587; 'auto' without it: attention/layer.py 0.11.1:255-260,
# layers/attention/attention.py 0.32.0:276-279), in every release that lists CLIPModel (0.11.1 on); its vision
# tower's MMEncoderAttention keeps none
_CLIP = "vllm/model_executor/models/clip.py 0.34.0:404-409, :587: Attention without cache_config"
KV_DTYPE_QUIRKS = {"falcon": _FALCON, "refinedweb": _FALCON, "refinedwebmodel": _FALCON, "clip_text_model": _CLIP,
                   "clip": _CLIP}
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
    # cache either. SigLIP's text tower (siglip.py 0.11.1:592, 0.34.0:575), unlike CLIP's (KV_DTYPE_QUIRKS)
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
# The Mamba temporal (SSM) state's dtype. vLLM's --mamba-ssm-cache-dtype is 'auto' by default (config/cache.py
# 0.11.0:100, 0.34.0:310; engines/vllm_cache_flags.py), which keeps it in the model dtype (mamba_utils.py
# _mamba_state_dtype, 0.12.0:57-63) unless the model's config handler sets it (config/vllm.py
# try_verify_and_update_config picks the handler by the architecture vLLM registers: 0.13.0:1232-1242, 0.34.0:
# 2825-2843). NemotronHForCausalLMConfig sets 'auto' to the config's own mamba_ssm_cache_dtype, else its default:
# float16 from 0.13.0 to 0.19.1 (getattr(hf_config, "mamba_ssm_cache_dtype", "float16"): models/config.py
# 0.13.0:500-510, 0.15.1:573-582, 0.19.1:491-500), float32 from 0.20.0 (DEFAULT_MAMBA_SSM_CACHE_DTYPE, 0.20.0:410,
# 0.34.0:1144). Architectures mapped to it (MODELS_CONFIG_MAP), by the release that first does so:
NEMOTRON_H_SSM_HANDLER = {
    "NemotronHForCausalLM": (0, 13),  # models/config.py 0.13.0:530 (0.11.x-0.12.0 have no handler: 'auto')
    "NemotronHPuzzleForCausalLM": (0, 16),  # 0.16.0:613
    # mapped from 0.18.0 (:668) to a handler that only sets a video backend (:434-440); from 0.20.0 it updates the
    # dtype from text_config (:439-445)
    "NemotronH_Nano_VL_V2": (0, 20),
    **dict.fromkeys(("NemotronH_Nano_Omni_Reasoning_V3", "NemotronH_Super_Omni_Reasoning_V3",
                     "NemotronH_Omni_Reasoning_V3", "Nemotron3_5TranscribeForConditionalGeneration"),
                    (0, 34)),  # 0.34.0:1591-1596 (not in 0.33.0's map, :1251-1253)
}
NEMOTRON_H_SSM_DEFAULTS = (((0, 20), "float32"), ((0, 13), "float16"))  # (first release, the handler's default)
# Not mirrored: the handler's getattr also finds a default the config class itself declares. A checkpoint's own
# configuration_nemotron_h.py (--trust-remote-code; vLLM's tests load Nemotron-H that way: tests/models/registry.py
# 0.19.1:439) declares none; transformers' own NemotronHConfig (transformers 5.5.1 on, which 0.19.1 allows and tests
# with: requirements/test.txt 0.19.1:1270, 5.5.3) declares float32 (configuration_nemotron_h.py:121), so 0.19.1
# without --trust-remote-code keeps float32. 0.13.0-0.19.0 need transformers < 5 (requirements/common.txt:10), which
# has no nemotron_h: the checkpoint's class.


def batch_defaults(gpu_name: str, gpu_memory: int, tiers: str = "0.28") -> tuple:
    """(max_num_batched_tokens, max_num_seqs) that `vllm serve` picks on this GPU, by the release's tiers
    (vllm_versions.Behaviour.batch_defaults: the 160 GiB tier from 0.28, the A100 exception from 0.9)."""
    if tiers == "0.28" and gpu_memory >= 160 * GiB:
        return 16384, 1024
    if gpu_memory >= 70 * GiB and (tiers == "0.8" or "a100" not in gpu_name.lower()):
        return 8192, 1024
    return 2048, 256


WHOLE_PROMPT_FLOOR_SINCE = (0, 11, 1)  # engine/arg_utils.py 0.11.1:2013-2018 (0.34.0:3231-3236): max(len, default)


def whole_prompt_batch(default: int, max_model_len: int, version: str) -> int:
    """`vllm serve`'s max_num_batched_tokens with chunked prefill off, before the max_num_seqs x max_model_len cap: a
    whole prompt must fit one step, so max(max_model_len, the GPU's default) from 0.11.1; 0.11.0 took max_model_len
    itself (engine/arg_utils.py 0.11.0:1667-1668)."""
    if parse_version(version) >= WHOLE_PROMPT_FLOOR_SINCE:
        return max(max_model_len, default)
    return max_model_len


@dataclass(frozen=True)
class Settings:
    """The scheduler and cache settings one start-up uses, resolved as vLLM resolves them."""

    max_model_len: int
    max_num_batched_tokens: int
    max_num_seqs: int
    in_flight_batches: int
    prefix_caching: bool = True
    raised: str = ""  # why max_num_batched_tokens is above the GPU's default (vllm_media_floor.raised_note)
    # where vLLM picks max_num_batched_tokens: (the GPU's default, a prefix-LM's media item or 0) before max_num_seqs x
    # max_model_len caps the larger; None where --max-num-batched-tokens is given
    picked: Optional[tuple] = None
    # where vLLM has a pooler config (hybrid_without_prefix_caching): the pooling runner (vllm_pooling.pooling_runner),
    # or --pooler-config given on the generate runner (vllm_pooler_config.given); set by VllmEngine.settings
    pooling_runner: bool = False
    pooler_config: bool = False
    # --enable-prefix-caching / --no-enable-prefix-caching (None: not given), --mamba-block-size, and whether a
    # --speculative-config is given: vllm_prefix_flag.as_asked, which with_model_defaults applies
    prefix_caching_asked: Optional[bool] = None
    mamba_block_size: Optional[int] = None
    speculative: bool = False

    @property
    def in_flight_tokens(self) -> int:
        return self.in_flight_batches * self.max_num_batched_tokens


def resolve_settings(max_model_len: int, gpu_name: str, gpu_memory: int, pp: int = 1,
                     max_num_batched_tokens: Optional[int] = None, max_num_seqs: Optional[int] = None,
                     version: str = PINNED, async_scheduling: Optional[bool] = None,
                     prefix_caching: bool = True, v1_runner: bool = False, media_floor: tuple = (0, ""),
                     chunked_prefill: bool = True) -> Settings:
    """`media_floor`: (tokens, modality) of the media item a multimodal prefix-LM raises the default batched tokens
    to (vllm_media_floor.media_floor), applied only where max_num_batched_tokens is vLLM's to pick.
    `chunked_prefill` False (a pooling model's default: vllm_pooling_budget.incremental_prefill): vLLM's pick is
    raised to a whole prompt (whole_prompt_batch)."""
    rules = behaviour(version)
    default, seqs = batch_defaults(gpu_name, gpu_memory, rules.batch_defaults)
    if not chunked_prefill:
        default = whole_prompt_batch(default, max_model_len, version)
    seqs = seqs if max_num_seqs is None else max_num_seqs
    tokens, raised, picked = max_num_batched_tokens, "", None
    if tokens is None:  # arg_utils.py _set_default_max_num_seqs_and_batched_tokens_args: the floor, then the cap
        picked = (default, media_floor[0])
        tokens = min(seqs * max_model_len, max(picked))
        raised = raised_note(default, media_floor, tokens) or ""
    if max_num_seqs is None:
        seqs = min(seqs, tokens)
    elif tokens < seqs:  # config/scheduler.py verify_max_model_len (0.11.0 ... 0.34.0; 0.32.0:328-333)
        raise more_seqs_than_tokens(seqs, tokens, None if max_num_batched_tokens else raised)
    asynchronous = async_scheduling is not False  # on by default (0.14+) unless something turns it off
    if not rules.concurrent_batches:
        batches = 1
    elif v1_runner:
        batches = 2 if asynchronous and pp <= 1 else pp
    else:
        batches = pp + (1 if asynchronous else 0)
    return Settings(max_model_len, tokens, seqs, batches, prefix_caching, raised, picked)


def more_seqs_than_tokens(seqs: int, tokens: int, raised: Optional[str]) -> FieldError:
    """vLLM's refusal of more sequences than batched tokens, on max_num_seqs; `raised`: None where the user gave
    the batched tokens, else why vLLM's own pick is what it is ("" for the GPU's default). The remedy names both
    limits by their keys (FieldError.names), which the caller writes its own way (the command line's flags); a pick
    of vLLM's is named in a code span, as vLLM's setting, which no caller respells (errors.respelled)."""
    limit = f"max_num_batched_tokens {tokens}" if raised is None else \
        f"vLLM's `max_num_batched_tokens` {tokens} (the default here{f': {raised}' if raised else ''})"
    return FieldError("max_num_seqs", f"{seqs} is more than {limit}, which vLLM refuses (\"max_num_batched_tokens "
                                      f"({tokens}) must be greater than or equal to max_num_seqs ({seqs})\"); set "
                                      f"max_num_batched_tokens to {seqs} or more, or max_num_seqs to {tokens} or less.",
                      names=("max_num_batched_tokens", "max_num_seqs"))


# A hybrid model (recurrent states beside attention layers: vLLM's IsHybrid classes, ModelConfig.is_hybrid) starts
# with prefix caching off up to 0.27, by these rules (HYBRID_PREFIX_RULES), unless --enable-prefix-caching from 0.11.1:
# - 0.11.0, every runner: MambaModelConfig turns it off whatever the flag (model_executor/models/config.py
#   0.11.0:296), which VllmConfig runs for every hybrid (config/__init__.py 0.11.0:641-642).
# - 0.11.1-0.11.2: the generate runner defaults it to `not model_config.is_hybrid`; the pooling runner by its pooling
#   type alone (engine/arg_utils.py 0.11.1:1838-1858; vllm_pooling_budget.incremental_prefill).
# - 0.12.0-0.25.x: is_prefix_caching_supported, False for attn_type "hybrid" (config/model.py 0.12.0:1839-1844,
#   0.15.0 and 0.15.1 :1667-1672, 0.25.1 :1883-1888; arg_utils.py 0.15.1:1895, :1927-1928); but with a pooler config
#   attn_type is the class's, "decoder" (0.12.0:1754-1761, 0.15.1:1566-1572, 0.25.1:1782-1788), so the pooler's
#   type decides (0.15.1:1640-1661), as incremental_prefill has it.
# - 0.26.0-0.27.1, every runner: `is_prefix_caching_supported and not model_config.is_hybrid` ("keep it opt-in for
#   now", arg_utils.py 0.26.0:2518-2522, 0.27.1:2605).
# - from 0.28.0: is_prefix_caching_supported (arg_utils.py 0.28.0:2650), True for a hybrid (config/model.py
#   0.28.0:2072-2074).
# Off, MambaModelConfig leaves mamba_cache_mode "none" and mamba_block_size max_model_len (models/config.py
# 0.15.0:373-380): one state block of the whole length a request (MambaSpec.max_memory_usage_bytes,
# v1/kv_cache_interface.py 0.15.1:294-300), as for an attention-free model.
HYBRID_PREFIX_RULES = (  # (first release, who starts a hybrid with it off), newest first
    ((0, 28), "nobody"), ((0, 26), "every runner"), ((0, 12), "without a pooler config"),
    ((0, 11, 1), "generate runner"), ((0, 0), "every runner"),
)
HYBRID_PREFIX_CACHING_SINCE = (0, 28)  # every runner, whatever the pooler
MAMBA_FALLBACK_OFF_BEFORE = (0, 15)  # before it, a class outside MAMBA_PREFIX_CLASSES gets prefix caching off


def with_model_defaults(spec, settings: Settings, version: str = PINNED) -> Settings:
    """The settings vLLM `version` starts this model with: prefix caching off for an attention-free model (every
    layer a Mamba state: config/model.py is_prefix_caching_supported, 'Attention free models do not support prefix
    caching') and, by HYBRID_PREFIX_RULES, for a hybrid one, so each state block holds a whole max_model_len and a
    request one block; then --enable-prefix-caching / --no-enable-prefix-caching and --mamba-block-size as vLLM
    `version` takes them (vllm_prefix_flag.as_asked)."""
    if spec.layers and len(spec.linear_layers) == len(spec.layers):
        return as_asked(spec, replace(settings, prefix_caching=False), version)
    if hybrid_without_prefix_caching(spec, version, settings.pooling_runner, settings.pooler_config):
        return as_asked(spec, replace(settings, prefix_caching=False), version)
    return as_asked(spec, settings, version)


def hybrid_without_prefix_caching(spec, version: str, pooling_runner: bool = False,
                                  pooler_config: bool = False) -> bool:
    """Whether vLLM `version` starts `spec`, a hybrid of recurrent states and attention, with prefix caching off
    whatever its pooler (HYBRID_PREFIX_RULES; where it is not, the pooler's type decides:
    vllm_pooling_budget.incremental_prefill); False for any other model. `pooling_runner`: vLLM serves it on the
    pooling runner; `pooler_config`: --pooler-config is given (Settings)."""
    if not _is_hybrid(spec):
        return False
    release = parse_version(version)
    who = next(rule for first, rule in HYBRID_PREFIX_RULES if release >= first)
    if who in ("nobody", "every runner"):
        return who == "every runner"
    if not pooling_runner and (who == "generate runner" or not pooler_config):
        return True
    return release < MAMBA_FALLBACK_OFF_BEFORE and not _mamba_prefix_class(spec)


# A --block-size above "all" mode's Mamba block keeps the attention block there and the Mamba block below it in
# 0.11.1-0.19.x, whose alignment does not take the block so far (vllm_specs.mamba_all_blocks; from 0.20 it does, so
# the two are equal). With prefix caching the hybrid coordinator then asserts, as the engine core builds its scheduler
# after sizing the cache (v1/engine/core.py 0.15.0:132-144, hash_block_size = cache_config.block_size): its words by
# first release, newest first (v1/core/kv_cache_coordinator.py 0.12.0:366-369 ... 0.19.1:402-405 every group's block
# a multiple of it; 0.11.1 and 0.11.2 :364-370 the Mamba block a multiple of the attention block).
ALL_MODE_BLOCK_WORDS = (
    ((0, 12), "block_size must be divisible by hash_block_size"),
    ((0, 11, 1), "KVCacheCoordinator assumes the block_size of full attention layers is divisible by other layers "
                 "now."),
)


def all_mode_block_refusal(groups, version: str) -> Optional[Refusal]:
    """vLLM's AssertionError where "all" mode's Mamba block is not a multiple of the attention block
    (ALL_MODE_BLOCK_WORDS); --block-size at the Mamba block or less clears it. None elsewhere."""
    mamba = next((g.spec.block_size for g in groups if g.spec.all_mode), None)
    attention = next((g.spec.block_size for g in groups if g.spec.kind != "mamba"), None)
    if mamba is None or attention is None or mamba % attention == 0:
        return None
    words = release_rule(ALL_MODE_BLOCK_WORDS, version, ALL_MODE_BLOCK_WORDS[-1][1])
    return Refusal(f"No common Mamba and attention block at --block-size {attention}: vLLM {version} keeps this "
                   f"hybrid's Mamba states in \"all\" mode, a state every {mamba} tokens (the multiple of the Mamba "
                   f"chunk that holds one), below the attention block the flag keeps. Its engine core stops as it "
                   f"builds the scheduler (v1/core/kv_cache_coordinator.py HybridKVCacheCoordinator): AssertionError: "
                   f"{words}", None, configuration=True,
                   field="block_size", options=(mamba,), onward="less")


def format_gib(value: int) -> str:
    """vllm/utils/mem_utils.py format_gib: str(round(bytes / GiB, 2)), so 6.5 not 6.50."""
    return f"{round(value / GiB, 2)}"


# Sparse MLA (DeepSeek-V3.2) on Hopper: `--kv-cache-dtype fp8` runs on FLASHMLA_SPARSE, which stores any quantized
# dtype in its own 656-byte fp8_ds_mla entry (model_executor/layers/attention/mla_attention.py
# _canonicalize_sparse_mla_kv_cache_dtype; the format: v1/attention/backends/mla/flashmla_sparse.py); `fp8_e4m3`,
# which FLASHMLA_SPARSE does not list, runs on FlashInfer's SM90 backend from 0.30 (vllm_sparse.py); a 16-bit one
# stays the model dtype (model_executor/models/config.py DeepseekV32ForCausalLM.verify_and_update_config turns
# 'bfloat16' into 'auto').
SPARSE_MLA_FP8 = "fp8_ds_mla"
# What `--kv-cache-dtype auto` stores for DeepSeek-V3.2's latent, by the first release of each rule (newest first);
# what an fp8 dtype stores is vllm_sparse.py's (models/config.py turns every fp8* into fp8_ds_mla up to 0.17, the
# backend decides from 0.18), and the indexer's keys are 132 raw bytes in all of them (models/deepseek_v2.py
# DeepseekV32IndexerCache, uint8)
SPARSE_MLA_AUTO = (
    ((0, 11, 1), "", "0.11.1 model_executor/models/config.py:478 DeepseekV32ForCausalLM.verify_and_update_config: "
                     "fp8* only becomes fp8_ds_mla, auto keeps the model dtype (so to 0.32.0)"),
    ((0, 11, 0), SPARSE_MLA_FP8, "0.11.0 model_executor/models/config.py:419-421: 'auto' or fp8* becomes "
                                 "fp8_ds_mla ('we use a custom fp8 format as default')"),
)


# What vLLM makes of the KV cache a checkpoint names (ModelSpec.checkpoint_kv_dtype), by the first release of each
# rule (newest first): for each method family, the caches it stores and for which --kv-cache-dtype ("auto": `auto`
# only; "any": whatever is asked, an explicit value too). Before a release that lists a family, `auto` is the model
# dtype whatever the checkpoint names.
# - modelopt* (params.modelopt_kv_cache): EngineArgs.create_engine_config resolves auto through
#   resolve_kv_cache_dtype_string before it builds the CacheConfig (engine/arg_utils.py 0.14.0:1397-1400, 0.34.0
#   :2329-2332), whose map holds fp8 from 0.14.0 and nvfp4 from 0.20.0 (utils/torch_utils.py
#   MODELOPT_TO_VLLM_KV_CACHE_DTYPE_MAP 0.14.0:57-62, 0.19.1 the same, 0.20.0:62-65, 0.34.0:90-93); an explicit
#   value is kept (:2329, `!= "auto"` returns it).
# - compressed-tensors with a kv_cache_scheme (params.compressed_kv_cache; an ordinary Attention layer reads it): the
#   layer sets kv_cache_dtype and cache_config.cache_dtype to "fp8" whatever was asked from 0.15.0 (attention/layer.py
#   0.15.0 and 0.15.1 :198-203; model_executor/layers/attention/attention.py 0.16.0:231-236, 0.17.0-0.21.0 :231-237),
#   only under auto from 0.22.0 (0.22.0 :237-241, 0.32.0 :288-291, 0.34.0 :308-312); 0.11.0-0.14.1 have no such step
#   (attention/layer.py 0.14.1:190-198 keeps cache_config.cache_dtype). Not for an architecture whose attention
#   layers get no quant_config (vllm_e5m2.NO_QUANT_CONFIG_ATTENTION): they never see the scheme.
CHECKPOINT_KV = (
    ((0, 22), {"modelopt": (("fp8_e4m3", "nvfp4"), "auto"), "compressed-tensors": (("fp8",), "auto")},
     "0.22.0 attention.py:237-241 (auto only)"),
    ((0, 20), {"modelopt": (("fp8_e4m3", "nvfp4"), "auto"), "compressed-tensors": (("fp8",), "any")},
     "0.20.0 utils/torch_utils.py:62-65"),
    ((0, 15), {"modelopt": (("fp8_e4m3",), "auto"), "compressed-tensors": (("fp8",), "any")},
     "0.15.0 attention/layer.py:198-203"),
    ((0, 14), {"modelopt": (("fp8_e4m3",), "auto")},
     "0.14.0 utils/torch_utils.py:57-62, engine/arg_utils.py:1397-1400"),
)


def checkpoint_kv(spec, version: str = PINNED) -> tuple:
    """(cache, scope): the cache vLLM `version` stores for the KV cache `spec`'s checkpoint names, and for which
    --kv-cache-dtype ("auto" or "any": CHECKPOINT_KV); ("", "") where the release does not read it."""
    named = getattr(spec, "checkpoint_kv_dtype", "")
    method = getattr(spec, "quantization", "")
    family = "modelopt" if method.startswith("modelopt") else method
    if family == "compressed-tensors" and attention_without_quant_config(spec, version):
        return "", ""  # the layer's own step, which these layers never take
    caches, scope = release_rule(CHECKPOINT_KV, version, {}).get(family, ((), ""))
    return (named, scope) if named and named in caches else ("", "")


def auto_kv_dtype(spec, version: str = PINNED) -> str:
    """The cache `--kv-cache-dtype auto` names for `spec` in vLLM `version` ("" for the model dtype): the checkpoint's
    own KV cache where the release stores it (checkpoint_kv), else ModelSpec.auto_kv_dtype, or DeepSeek-V3.2's
    fp8_ds_mla where the release defaults to it (SPARSE_MLA_AUTO)."""
    named, _ = checkpoint_kv(spec, version)
    if named:
        return named
    own = "" if getattr(spec, "checkpoint_kv_dtype", "") else spec.auto_kv_dtype  # the parser's: the pinned release's
    if getattr(spec, "architecture", "") != "DeepseekV32ForCausalLM" or own:
        return own
    return release_rule(SPARSE_MLA_AUTO, version, "")  # older: refused


def checkpoint_kv_words(spec, version: str) -> str:
    """What vLLM `version` makes of the checkpoint's KV cache, in words (checkpoint_kv), for the model's note."""
    named, scope = checkpoint_kv(spec, version)
    if scope == "any":
        return f"vLLM {version} stores {named} whatever --kv-cache-dtype asks (its attention layers overwrite it)"
    if named:
        return f"vLLM {version} stores it for --kv-cache-dtype auto"
    return f"vLLM {version} does not read it: --kv-cache-dtype auto is the model dtype"


# DeepSeek-V4 on NVIDIA Hopper and Blackwell datacenter GPUs (models/deepseek_v4/nvidia/model.py
# _select_dsv4_attn_cls: DeepseekV4FlashMLAAttention unless SM12x or an explicit FlashInfer backend): the fp8_ds_mla
# layout only; models/deepseek_v4/attention.py _resolve_dsv4_kv_cache_dtype turns auto and every fp8* dtype into
# fp8_ds_mla and raises for any other.
V4_REFUSAL = ("DeepseekV4 fp8_ds_mla layout only supports fp8 kv-cache, got {dtype}. Please set `--kv-cache-dtype "
              "fp8` or select a backend that supports bfloat16 KV cache.")


# Sparse MLA's cache by release, GPU and --kv-cache-dtype spelling: vllm_sparse.py (FLASHMLA_SPARSE keeps the 656-byte
# fp8_ds_mla entry, FlashInfer's sparse backends a plain 576-byte fp8 latent; `fp8` and `fp8_e4m3` are listed apart).


def is_sparse(spec) -> bool:
    return _layers_have(spec.layers, "sparse")


# (id of a layers tuple) -> (that tuple, any sparse layer, any DeepSeek-V4 layer): asked for every configuration
# refusal a remedy search tries, over every layer of the model each time
_LAYER_KINDS: dict = {}


def _layers_have(layers, kind: str) -> bool:
    held = _LAYER_KINDS.get(id(layers))
    if held is None or held[0] is not layers:
        if len(_LAYER_KINDS) > 1000:
            _LAYER_KINDS.clear()
        held = (layers, any(getattr(layer, "sparse", False) for layer in layers),
                any(isinstance(layer, V4_KINDS) for layer in layers))
        _LAYER_KINDS[id(layers)] = held
    return held[1] if kind == "sparse" else held[2]


def _sparse_layer_args(spec, tp: Optional[int]) -> tuple:
    """(query heads a rank, latent shape, architecture) of `spec`'s sparse MLA layers, as vllm_sparse's rules read
    them (models/config.py rewrites the dtype by architecture before 0.18: vllm_sparse.CONFIG_REWRITE)."""
    layer = next(layer for layer in spec.layers if getattr(layer, "sparse", False))
    heads = spec.num_attention_heads // tp if tp else None
    shape = {"kv_lora_rank": layer.kv_lora_rank, "qk_rope_head_dim": layer.qk_rope_head_dim}
    return heads, shape, getattr(spec, "architecture", "")


def sparse_choice(spec, precision, capability=(), version: str = PINNED, tp: Optional[int] = None):
    """vllm_sparse.sparse_cache for `spec`'s sparse MLA layers asked for `precision` (as spelled), `tp` ranks
    splitting its query heads (None: unknown)."""
    return sparse_cache(precision.vllm_dtype, capability, version, *_sparse_layer_args(spec, tp))


def gpu_auto_kv_dtype(spec, capability=(), version: str = PINNED) -> str:
    """The cache `--kv-cache-dtype auto` names for `spec` on a GPU of `capability` in `version`
    (vllm_sparse.SM10X_AUTO)."""
    if spec.auto_kv_dtype:
        return spec.auto_kv_dtype
    return auto_on_gpu(getattr(spec, "architecture", ""), capability, version)


# The dtype vLLM's dtype=auto serves a model in (config/model.py _resolve_auto_dtype, 0.33.0:2423-2464, 0.34.0
# :2467-2508; the same from 0.11.0 :1647): the checkpoint's where the platform supports it, else the first the
# platform supports. CUDA below compute capability 8.0 (a T4) supports float16 and float32, no bfloat16
# (platforms/cuda.py supported_dtypes, 0.33.0:256-266, 0.34.0:297-307, 0.11.0:62-72); float16 is struck off for the
# families of _FLOAT16_NOT_SUPPORTED_MODELS (0.33.0:2398-2403, 0.34.0:2442-2447; plamo2 too up to 0.26.0), whose
# first choice left is float32. (A float32 checkpoint is already read as bf16: parse.py _model_dtype.)
CUDA_BF16_SINCE = (8, 0)
NO_FLOAT16 = (((0, 27), ("gemma2", "gemma3", "gemma3_text", "glm4"), "0.27.0 config/model.py drops plamo2"),
              ((0, 11), ("gemma2", "gemma3", "gemma3_text", "plamo2", "glm4"), "0.11.0 config/model.py:1581-1588"))


def served_dtype(spec, capability=(), version: str = PINNED) -> str:
    """The dtype (kvplan's short name) vLLM `version` serves `spec` in on a GPU of `capability` under dtype=auto
    (config/model.py _resolve_auto_dtype); a --dtype given is served as given or refused (explicit_dtype_refusal);
    the model's own on an unknown GPU or on ROCm."""
    if getattr(spec, "dtype_asked", False):
        return spec.dtype
    supported = servable_dtypes(spec, capability, version)
    return spec.dtype if spec.dtype in supported else supported[0]


def servable_dtypes(spec, capability=(), version: str = PINNED) -> tuple:
    """The dtypes (kvplan's names, in the platform's order) vLLM `version` serves `spec` in on a GPU of `capability`:
    no bfloat16 on CUDA below 8.0, no float16 for the models of NO_FLOAT16 (served_dtype)."""
    cuda = bool(capability) and not is_rocm_platform(capability)
    supported = ("fp16", "fp32") if cuda and tuple(capability) < CUDA_BF16_SINCE else ("bf16", "fp16", "fp32")
    if getattr(spec, "model_type", "") in release_rule(NO_FLOAT16, version, ()):
        supported = tuple(d for d in supported if d != "fp16")
    return supported


def quantization_refusal(spec, capability=(), version: str = PINNED) -> Optional[Refusal]:
    """vllm_quant.gpu_quantization_refusal for `spec` as served on this GPU, its remedy naming only a --dtype that
    the GPU and the model take too (servable_dtypes): ModelConfig's refusals and VllmConfig's together
    (configuration_refusal puts the float-cache check between them)."""
    return gpu_quantization_refusal(spec, capability, version, servable=servable_dtypes(spec, capability, version))


def built_quantization_refusal(spec, capability=(), version: str = PINNED) -> Optional[Refusal]:
    """vllm_quant.quant_config_refusal (the class's constructor, the capability and the dtype, as VllmConfig builds
    the quantisation config) for `spec` as served on this GPU, a remedy naming only a --dtype it takes."""
    return quant_config_refusal(spec, capability, version, servable=servable_dtypes(spec, capability, version))


# platforms/cuda.py check_if_supports_dtype (0.32.0 :636-654; the same text 0.11.0 :510-515 to 0.34.0 :692-697): the
# GPU named as get_device_name gives it (NVML's name: "Tesla T4"; catalog.device_name)
BF16_GPU_REFUSAL = ("Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your {gpu} GPU has "
                    "compute capability {cc}. You can use float16 instead by explicitly setting the `dtype` flag in "
                    "CLI, for example: --dtype=half.")
# config/model.py _check_valid_dtype with the reason _FLOAT16_NOT_SUPPORTED_MODELS gives every NO_FLOAT16 model
FLOAT16_MODEL_REFUSAL = ("The model type {model_type!r} does not support float16. Reason: Numerical instability. "
                         "Please use bfloat16 or float32 instead.")


def explicit_dtype_refusal(spec, capability=(), version: str = PINNED, gpu_name: str = "") -> Optional[Refusal]:
    """vLLM's refusal of a --dtype given that this GPU or this model does not take: bfloat16 below compute capability
    8.0 (platforms/cuda.py check_if_supports_dtype, 0.32.0 :636-654; `gpu_name` as vLLM prints it), float16 for the
    models of NO_FLOAT16 (config/model.py _check_valid_dtype, 0.32.0 :2395-2400, which adds the reason). `auto`
    resolves per GPU instead (served_dtype). The remedy is said in words: kvplan's search does not change --dtype."""
    return model_dtype_refusal(spec, version, capability) or gpu_dtype_refusal(spec, capability, version, gpu_name)


def gpu_dtype_refusal(spec, capability=(), version: str = PINNED, gpu_name: str = "") -> Optional[Refusal]:
    """The worker's refusal of --dtype bfloat16 below compute capability 8.0 (explicit_dtype_refusal)."""
    cuda = bool(capability) and not is_rocm_platform(capability)
    if not (getattr(spec, "dtype_asked", False) and cuda and spec.dtype == "bf16"
            and tuple(capability) < CUDA_BF16_SINCE):
        return None
    served = "float32" if getattr(spec, "model_type", "") in release_rule(NO_FLOAT16, version, ()) else "float16"
    text = BF16_GPU_REFUSAL.format(gpu=gpu_name, cc=f"{capability[0]}.{capability[1]}")
    return Refusal(text if gpu_name else text.replace("Your  GPU", "Your GPU"), None, configuration=True,
                   field="dtype", remedy=f"vLLM accepts --dtype {served} (or auto, which vLLM resolves to it)",
                   remedy_flags=REMEDY_FLAGS)


def model_dtype_refusal(spec, version: str = PINNED, capability=()) -> Optional[Refusal]:
    """ModelConfig's refusal of --dtype float16 for a model of NO_FLOAT16 (explicit_dtype_refusal); the remedy names
    the dtypes this GPU serves it in (servable_dtypes: float32 alone on a T4)."""
    if not getattr(spec, "dtype_asked", False):
        return None
    model_type = getattr(spec, "model_type", "")
    if spec.dtype == "fp16" and model_type in release_rule(NO_FLOAT16, version, ()):
        # vLLM names hf_config.model_type: a multimodal Gemma 3's gemma3, not its text_config's gemma3_text
        named = model_type.removesuffix("_text") if spec.multimodal else model_type
        first = _TORCH_NAMES[servable_dtypes(spec, capability, version)[0]]  # bfloat16; float32 below 8.0
        return Refusal(FLOAT16_MODEL_REFUSAL.format(model_type=named), None, configuration=True, field="dtype",
                       remedy=f"vLLM accepts --dtype {first} or auto", remedy_flags=REMEDY_FLAGS)
    return None


def on_gpu(spec, capability=(), version: str = PINNED):
    """`spec` as vLLM `version` serves it on a GPU of `capability`: in the dtype it serves there (served_dtype: a
    T4's float16 for a bfloat16 checkpoint, float32 for Gemma 2 / 3 and GLM-4 there, whose weights and `auto` cache
    then take 4 bytes an element), what `auto` stores there (gpu_auto_kv_dtype) and the Mamba states' dtypes
    (mamba_state_dtypes: ModelSpec.state_dtypes)."""
    dtype = served_dtype(spec, capability, version)
    if dtype == "fp32" and spec.dtype != "fp32":
        from ..model.quantization import drafter_in_dtype, with_dtype

        spec = drafter_in_dtype(replace(with_dtype(spec, "float32"), dtype_asked=False))
    auto = gpu_auto_kv_dtype(spec, capability, version)
    spec = spec if (auto, dtype) == (spec.auto_kv_dtype, spec.dtype) else replace(spec, auto_kv_dtype=auto, dtype=dtype)
    # the per-sequence state in the dtypes its page is sized in (plan/capacity.py state_bytes reads them)
    state = mamba_state_dtypes(spec, version) if spec.linear_layers else ()
    return spec if state == spec.state_dtypes else replace(spec, state_dtypes=state)


def sparse_dtype_refusal(spec, precision, capability=(), version: str = PINNED,
                         tp: Optional[int] = None) -> Optional[Refusal]:
    """vLLM's refusal of a quantized cache dtype no sparse MLA backend takes on this GPU (None when one does), or
    of sparse attention itself (ROCm before 0.12)."""
    if not is_sparse(spec) or is_v4(spec):
        return None
    if is_rocm_platform(capability) and parse_version(version) + (0,) < ROCM_SPARSE_SINCE:
        return Refusal(ROCM_NO_SPARSE, None, configuration=True, field="engine",
                       options=("vllm==" + ".".join(map(str, ROCM_SPARSE_SINCE + (0,))),), onward="newer")
    if precision.bits >= 16:
        return None
    choice = sparse_choice(spec, precision, capability, version, tp)
    if choice.backend:
        return None
    taken = taken_dtypes(capability, version, *_sparse_layer_args(spec, tp))
    return Refusal(refusal_line(precision.vllm_dtype, capability, choice.why), None, configuration=True,
                   field="kv_dtype", options=taken)


def _has_dense_mla(spec) -> bool:
    return any(isinstance(layer, MLALatent) and not layer.sparse and not isinstance(layer, V4_KINDS)
               for layer, _ in spec.layer_counts)


def dense_mla_dtype_refusal(spec, precision, capability=(), version: str = PINNED,
                            tp: Optional[int] = None) -> Optional[Refusal]:
    """vLLM's refusal of a plain fp8 cache (fp8_e5m2) no dense MLA backend takes on this GPU, on the dtype the layers
    are built with (vllm_sparse.DENSE_MLA_FP8); the remedy names the values that start."""
    if not _has_dense_mla(spec):
        return None
    built = cache_precision(spec, precision, capability, version, tp).vllm_dtype
    why = dense_mla_refusal_line(built, capability, version)
    if not why:
        return None
    return Refusal(why, None, configuration=True, field="kv_dtype",
                   options=("auto",) + dense_mla_fp8(capability, version))


def _mla_backend_first(spec, precision, capability, version: str, tp: Optional[int]) -> bool:
    """Whether an MLA layer's backend refuses `precision` before its KV cache quant check runs (from
    MLA_BACKEND_FIRST: sparse_dtype_refusal, dense_mla_dtype_refusal)."""
    if parse_version(version) < MLA_BACKEND_FIRST:
        return False
    if is_sparse(spec):
        return sparse_choice(spec, precision, capability, version, tp).backend is None
    return dense_mla_dtype_refusal(spec, precision, capability, version, tp) is not None


SPARSE_GPU_REMEDY = "it starts on a Hopper or Blackwell GPU (H100, H200, B200, ...)"


def sparse_gpu_refusal(spec, capability=(), version: str = PINNED) -> Optional[Refusal]:
    """vLLM's refusal of a sparse MLA layer (DeepSeek-V3.2, GLM-5.x) on a CUDA GPU none of its sparse backends runs on
    (A100, A10, L4, L40S: vllm_sparse.SPARSE_MAJORS), or of DeepSeek-V4's attention where its FlashMLA kernels do not
    run (vllm_sparse.V4_MAJORS), whatever the dtype and block. The GPU is at fault; kvplan's remedy search changes
    the release, dtype, length and block only, so the remedy is said in words."""
    if is_v4(spec):
        why = v4_gpu_refusal_line(capability, version)
    elif is_sparse(spec):
        why = sparse_gpu_refusal_line(capability, version)
    else:
        return None
    return Refusal(why, None, configuration=True, field="gpu", remedy=SPARSE_GPU_REMEDY) if why else None


def sparse_block_refusal(spec, block_size: Optional[int], capability=(), version: str = PINNED,
                         dtype: str = "auto") -> Optional[Refusal]:
    """vLLM's AssertionError for a sparse MLA layer on ROCm 0.12-0.17 at any block but 1, the unset --block-size (16)
    included (vllm_sparse.ROCM_BLOCK_RULES); block 1 passes it. On CUDA from 0.18.0, no attention backend for a block
    that is not a multiple of 64 (vllm_specs.cuda_sparse_block_refusal; on SM10x one of 32 finds no kernel block the
    indexer shares, for a `dtype` FLASHINFER_MLA_SPARSE stores): 64 and 128 pass."""
    if not is_sparse(spec) or is_v4(spec):
        return None
    if not is_rocm_platform(capability):
        why = cuda_sparse_block_refusal(block_size, version, capability, dtype, spec.layers)
        return Refusal(why, None, configuration=True, field="block_size", options=(64, 128)) if why else None
    why = rocm_block_refusal(block_size, version)
    return Refusal(why, None, configuration=True, field="block_size", options=(1,)) if why else None


HYBRID_RAISED_AFTER_SELECTION = (0, 20)  # a Mamba hybrid's block is raised after its layers pick backends


def attention_block_refusal(spec, precision, block_size: Optional[int], capability=(), version: str = PINNED,
                            tp: int = 1) -> Optional[Refusal]:
    """vLLM's "No valid attention backend found" for a --block-size no CUDA attention backend takes, from 0.18
    (vllm_specs.backend_block_refusal: a multiple of 16, FlexAttention's any block in 0.18-0.20). The block the
    selector sees is the flag's, but a Mamba hybrid's in 0.18-0.19 is first raised to the multiple of 16 that holds
    a state (models/config.py 0.18.0:135-149, run from VllmConfig.__post_init__, config/vllm.py 0.18.0:669, before the
    layers pick their backends); from 0.20 the raise comes after (platforms/interface.py 0.20.0:499)."""
    if is_rocm_platform(capability) or is_sparse(spec) or is_v4(spec) or block_size is None:
        return None
    if spec.layers and len(spec.linear_layers) == len(spec.layers):
        return None  # no attention layer picks a backend
    attention, per_token, page = hybrid_pages(spec, tp, cache_precision(spec, precision, capability, version, tp),
                                              version)
    mla = isinstance(attention, MLALatent) or any(isinstance(layer, MLALatent) for layer in spec.layers)
    if attention is not None and page and parse_version(version) < HYBRID_RAISED_AFTER_SELECTION:
        if hybrid_block_size(per_token, page, block_size, mla, None, version, capability) > block_size:
            return None
    why = backend_block_refusal(block_size, version, mla, precision.vllm_dtype, getattr(spec, "attention_sinks", False))
    if not why:
        return None
    below = block_size // BACKEND_BLOCK_MULTIPLE * BACKEND_BLOCK_MULTIPLE  # the multiples of 16 around it
    options = tuple(size for size in (below, below + BACKEND_BLOCK_MULTIPLE) if size)
    return Refusal(why, None, configuration=True, field="block_size", options=options)


def mla_hybrid_block_refusal(spec, precision, block_size: Optional[int], capability=(), version: str = PINNED,
                             tp: int = 1) -> Optional[Refusal]:
    """vLLM's failure to unify the pages of an MLA hybrid (Kimi-Linear) where its CUDA platform forces an MLA
    backend's block over the attention block the hybrid rule chose (vllm_specs.FORCED_AFTER_HYBRID: on SM10x
    CUTLASS_MLA's 128 in 0.11.1-0.14.x over a block that is not a multiple of 128, as Kimi-Linear's 960 at tp 2 or
    3776 with an fp8 cache), None where the block is kept. vLLM stops after profiling memory, whatever the memory.
    The release is at fault: the remedy is the first that keeps the block (0.15.0 for Kimi-Linear on SM10x, whose
    forced FLASHINFER_MLA takes its multiples of 64). A smaller --block-size is raised to the hybrid's, and the
    --block-size choices end at 256 up to 0.17 (config/cache.py BlockSize); a CUTLASS_MLA chosen by hand (aligned to
    128) is a backend choice kvplan does not model."""
    if is_rocm_platform(capability):
        return None
    built = cache_precision(spec, precision, capability, version, tp)
    attention, per_token, page = hybrid_pages(spec, tp, built, version)
    if not isinstance(attention, MLALatent) or isinstance(attention, V4_KINDS) or attention.sparse:
        return None
    quantized = built.bits < 16

    def chosen(release: str) -> tuple:  # (the hybrid's block in `release`, the block forced over it or None)
        raised = hybrid_block_size(per_token, page, block_size or default_block_size(release), True, None, release,
                                   capability)
        return raised, forced_mla_block(raised, quantized, release, capability)

    raised, forced = chosen(version)
    if forced is None:
        return None
    later = [".".join(map(str, row[0] + (0,) * (3 - len(row[0])))) for row in reversed(DENSE_MLA_BLOCK_RULES)
             if row[0] > parse_version(version)]
    first = next(release for release in later if chosen(release)[1] is None)  # 0.18 forces none
    backend = dense_mla_backend(quantized, version, capability)
    where = f"compute capability {capability[0]}.{capability[1]}" if len(capability) > 1 else "Hopper"
    pages = (forced * per_token, raised * per_token)
    why = (f"vLLM {version} cannot unify this MLA hybrid's KV cache pages: the {raised}-token attention block that "
           f"holds a Mamba state is forced to {backend}'s {forced} tokens on {where}, so the MLA page ({pages[0]:,} "
           f"bytes) no longer matches the state page padded to {pages[1]:,} bytes (v1/core/kv_cache_utils.py "
           f"get_kv_cache_groups: {ununified_pages_error(pages, version)}).")
    return Refusal(why, None, configuration=True, field="engine", options=(f"vllm=={first}",), onward="newer")


def release_view(spec, version: str):
    """`spec` as vLLM `version` builds it, where that differs from 0.32.0: what `--kv-cache-dtype auto` stores
    (auto_kv_dtype), the note on the checkpoint's KV cache saying what this release makes of it, and the model's
    length as this release scales it by the RoPE factor (vllm_rope_len.rope_view)."""
    from .vllm_rope_len import rope_view

    spec = rope_view(spec, version)
    auto = auto_kv_dtype(spec, version)
    notes = _checkpoint_kv_note(spec, version)
    if (auto, notes) == (spec.auto_kv_dtype, spec.notes):
        return spec
    return replace(spec, auto_kv_dtype=auto, notes=notes)


def _checkpoint_kv_note(spec, version: str) -> tuple:
    """spec.notes with the parser's note on the checkpoint's KV cache (params.checkpoint_kv_note) ending in this
    release's words (checkpoint_kv_words); unchanged where the checkpoint names none."""
    named = getattr(spec, "checkpoint_kv_dtype", "")
    if not named:
        return spec.notes
    from ..model.params import checkpoint_kv_note

    base = checkpoint_kv_note(spec.quantization, named)
    words = f"{base}: {checkpoint_kv_words(spec, version)}"
    return tuple(words if note.startswith(base) else note for note in spec.notes)


def unviewed(spec):
    """`spec` before release_view: the one thing it changes for a release is `auto`, which the parser set to the
    checkpoint's own KV cache (CHECKPOINT_KV: the model dtype before 0.14) or, for DeepSeek-V3.2, to nothing
    (fp8_ds_mla in 0.11.0 only, SPARSE_MLA_AUTO), which that architecture's config never names itself."""
    named = getattr(spec, "checkpoint_kv_dtype", "")
    if named:
        return spec if spec.auto_kv_dtype == named else replace(spec, auto_kv_dtype=named)
    if getattr(spec, "architecture", "") == "DeepseekV32ForCausalLM" and spec.auto_kv_dtype == SPARSE_MLA_FP8:
        return replace(spec, auto_kv_dtype="")
    return spec


def is_v4(spec) -> bool:
    return _layers_have(spec.layers, "v4")  # also ModelSpec.compressed_attention


def v4_dtype_refusal(spec, precision) -> Optional[Refusal]:
    """vLLM's refusal of a DeepSeek-V4 cache dtype its FlashMLA path cannot store (None when it can)."""
    if not is_v4(spec) or vllm_name(precision.name).startswith("fp8"):
        return None
    return Refusal(V4_REFUSAL.format(dtype=vllm_name(precision.name)), None, configuration=True, field="kv_dtype")


# A float16 / bfloat16 --kv-cache-dtype other than the model's dtype, from 0.33 (config/vllm.py 0.33.0:1492-1508
# VllmConfig._reject_mismatched_float_kv_cache, 0.34.0 :1431-1447): called in __post_init__ right after
# try_verify_and_update_config (0.33.0 :1539-1540, 0.34.0 :1483-1484), so a per-architecture rewrite comes first:
# DeepSeek-V3.2's bfloat16 becomes auto (model_executor/models/config.py 0.33.0:84-86, 0.34.0 :91-93).
FLOAT_KV_SINCE = (0, 33)
FLOAT_KV_REWRITTEN = {"DeepseekV32ForCausalLM": "bfloat16"}
FLOAT_KV_REFUSAL = ('kv_cache_dtype="{asked}" is incompatible with dtype="{model}". Please set `--kv-cache-dtype` '
                    'to {allowed}.')
_TORCH_NAMES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}  # str(torch dtype) less "torch."


def float_kv_refusal(spec, precision, version: str = PINNED, capability=()) -> Optional[Refusal]:
    """vLLM's refusal of an explicit float16 / bfloat16 cache that is not the dtype the model is served in on this
    GPU (served_dtype; FLOAT_KV_SINCE on); `auto` and that dtype pass."""
    asked = precision.spelling
    if asked not in ("float16", "bfloat16") or parse_version(version)[:2] < FLOAT_KV_SINCE:
        return None
    if FLOAT_KV_REWRITTEN.get(getattr(spec, "architecture", "")) == asked:
        return None
    served = served_dtype(spec, capability, version)
    model = _TORCH_NAMES.get(served, served)
    if model == asked:
        return None
    same = model in ("float16", "bfloat16")
    allowed = f"`auto` or `{model}`" if same else "`auto`"
    return Refusal(FLOAT_KV_REFUSAL.format(asked=asked, model=model, allowed=allowed), None, configuration=True,
                   field="kv_dtype", options=("auto", model) if same else ("auto",))


# The octave_* formats (0.33 on) are ROCm's: ROCM_OCTAVE is the only backend that lists them (0.33.0
# v1/attention/backends/rocm_octave_attn.py:95-99 supported_kv_cache_dtypes; on ROCm platforms/rocm.py:566), so on
# CUDA every backend answers "kv_cache_dtype not supported" and platforms/cuda.py raises (0.33.0 :471-475, 0.34.0
# :512-516). On ROCm the slot depends on the model's rotary width (rocm_octave.py:76-98 rope_dim_from_hf_config),
# which kvplan's spec does not keep, and the backend runs on RDNA3 / CDNA3 with head_size 256 and 64 rotary dims only
# (rocm_octave_attn.py:120-127, :292-301): not modelled yet.
OCTAVE_NO_BACKEND = ("No valid attention backend found for cuda with kv_cache_dtype {dtype}: the Octave formats have "
                     "one backend, ROCm's ROCM_OCTAVE, and every CUDA backend answers 'kv_cache_dtype not supported'.")
OCTAVE_ON_ROCM = ("{dtype} on ROCm is not modelled yet: vLLM's ROCM_OCTAVE backend sizes its slot from the model's "
                  "rotary dims and runs only at head_size 256 with 64 of them on RDNA3 / CDNA3 GPUs "
                  "(v1/attention/backends/rocm_octave_attn.py), which kvplan does not check; use auto, fp8 or "
                  "another dtype.")


def octave_refusal(precision, capability=()) -> Optional[Refusal]:
    """vLLM's refusal of an Octave cache on a CUDA GPU (None for other dtypes; ROCm: cache_precision refuses to plan
    it)."""
    if precision.layout != "octave" or is_rocm_platform(capability):
        return None
    return Refusal(OCTAVE_NO_BACKEND.format(dtype=precision.vllm_dtype), None, configuration=True, field="kv_dtype",
                   options=("fp8", "auto"))


def checkpoint_e5m2_refusal(spec, precision, capability=(), version: str = PINNED,
                            tp: Optional[int] = None) -> Optional[Refusal]:
    """vLLM's refusal of fp8_e5m2 where the quantisation config hands an attention layer a KV cache method
    (vllm_e5m2.e5m2_refusal), on the dtype the layers are built with (cache_precision: a KV_DTYPE_QUIRKS family's
    auto, a compressed-tensors scheme's fp8 in 0.15-0.21, sparse MLA's fp8_ds_mla); from 0.18 an MLA layer no
    backend takes is refused by its backend first (MLA_BACKEND_FIRST: sparse_dtype_refusal, dense_mla_dtype_refusal;
    0.11.1-0.17 the other way round)."""
    if precision.vllm_dtype != "fp8_e5m2":
        return None
    if _mla_backend_first(spec, precision, capability, version, tp):
        return None
    built = cache_precision(spec, precision, capability, version, tp).vllm_dtype
    return e5m2_refusal(spec, built, version, capability)


def nvfp4_refusal(spec, precision, capability=(), version: str = PINNED) -> Optional[Refusal]:
    """vLLM's refusal of an NVFP4 cache on `spec`'s ordinary attention layers where no backend takes it on this GPU
    (vllm_nvfp4.py: the release, the compute capability, the head sizes, attention sinks); None when one does. Sparse
    MLA and DeepSeek-V4 have their own (sparse_dtype_refusal, v4_dtype_refusal); a family that keeps its model dtype
    (KV_DTYPE_QUIRKS) stores none. Where `auto` was asked and stored the checkpoint's NVFP4 (CHECKPOINT_KV), the
    message says so (not for nvfp4 asked by name), and the fix search finds `auto` refused the same way."""
    if precision.layout != "nvfp4" or is_sparse(spec) or is_v4(spec):
        return None
    if cache_precision(spec, precision, capability, version).layout != "nvfp4":
        return None
    heads = tuple(sorted({layer.head_dim for layer in spec.layers if isinstance(layer, FullAttention)}))
    if not heads:  # no attention layer picks a backend for it
        return None
    dtype, sinks = precision.vllm_dtype, getattr(spec, "attention_sinks", False)
    chosen = precision.auto and getattr(spec, "checkpoint_kv_dtype", "") == dtype == spec.auto_kv_dtype
    why = nvfp4_refusal_line(dtype, capability, version, heads, sinks, chosen)
    if not why:
        return None
    return Refusal(why, None, configuration=True, field="kv_dtype",
                   options=refusal_options(dtype, capability, version, heads, sinks))


def cache_precision(spec, precision, capability=(), version: str = PINNED, tp: Optional[int] = None):
    """The precision the attention cache really uses on a GPU of `capability` in `version` (the checkpoint's own where
    the release stores it whatever is asked: checkpoint_kv; KV_DTYPE_QUIRKS; sparse MLA's 656-byte fp8_ds_mla on
    FLASHMLA_SPARSE or plain fp8 on FlashInfer's and ROCm's backends: sparse_choice). A plain 8-bit dtype no sparse
    backend takes keeps the dtype as asked: its row is refused (sparse_dtype_refusal). An Octave cache on ROCm is not
    planned (OCTAVE_ON_ROCM)."""
    if precision.layout == "octave" and is_rocm_platform(capability):
        raise FieldError("kv_dtype", OCTAVE_ON_ROCM.format(dtype=precision.vllm_dtype))
    named, scope = checkpoint_kv(spec, version)
    if getattr(spec, "model_type", "") in KV_DTYPE_QUIRKS:
        return _quirk_precision(spec, precision, named)
    if scope == "any" and precision.spelling != named:  # a compressed-tensors kv_cache_scheme, 0.15-0.21
        precision = replace(PRECISIONS[kv_dtype_name(named)], spelling=named)
    if is_v4(spec) and vllm_name(precision.name).startswith("fp8"):
        return PRECISIONS[SPARSE_MLA_FP8]
    if is_sparse(spec) and precision.bits == 8 and precision.layout == "plain":
        choice = sparse_choice(spec, precision, capability, version, tp)
        if choice.backend is None or choice.cache == precision.vllm_dtype:
            return precision
        return PRECISIONS[SPARSE_MLA_FP8]
    return precision


def _quirk_precision(spec, precision, named: str):
    """A KV_DTYPE_QUIRKS family's cache: its layers see kv_cache_dtype 'auto' whatever is asked (the model dtype),
    which a compressed-tensors kv_cache_scheme then turns into fp8, as the layer is built with the quant config
    (models/falcon.py 0.15.0 and 0.20.0:173-197 quant_config=quant_config; attention/layer.py 0.15.0:198-203 and
    attention.py 0.16.0:231-236 any dtype, 0.22.0:238 and 0.34.0:309 under auto, which these layers always are): from
    0.15 whatever --kv-cache-dtype asks. A ModelOpt
    KV cache is resolved into cache_config, which these layers never read (engine/arg_utils.py 0.34.0:2329-2332)."""
    if named and getattr(spec, "quantization", "") == "compressed-tensors":
        return replace(PRECISIONS[kv_dtype_name(named)], spelling=named)
    return PRECISIONS[spec.dtype] if precision.bits < DTYPE_BYTES[spec.dtype] * 8 else precision


def ssm_state_dtype(spec, version: str = PINNED) -> tuple:
    """(kvplan's dtype name, vLLM's log line or '') of a Mamba layer's temporal state in vLLM `version`:
    --mamba-ssm-cache-dtype where the layers read it (vllm_cache_flags.asked_ssm_dtype), else, while that is 'auto',
    what the NemotronH handler (NEMOTRON_H_SSM_HANDLER) sets it to from the config (spec.ssm_cache_dtype) or its
    default, logging it (models/config.py 0.15.1:578-581, 0.34.0:1159-1162); 'auto' is the conv state's dtype,
    --mamba-cache-dtype or the model's (mamba_utils.py _mamba_state_dtype, 0.32.0:104-108), but float32 for Kimi
    Delta Attention (kda_state_dtype: mamba_utils.py 0.29.0:137-138, 0.30.0:140-141)."""
    from .vllm_cache_flags import asked_ssm_dtype, conv_state_dtype, has_kda

    conv, asked = conv_state_dtype(spec), asked_ssm_dtype(spec, version)
    if asked != "auto":  # the handler leaves an explicit value alone (0.32.0:724 `== "auto"`)
        return normalize_dtype_name(asked), ""
    if has_kda(spec):
        return "fp32", ""
    handled = getattr(spec, "registered_architecture", "") or getattr(spec, "architecture", "")
    since = NEMOTRON_H_SSM_HANDLER.get(handled)
    if since is None or parse_version(version) < since:
        return conv, ""
    named = getattr(spec, "ssm_cache_dtype", "") or release_rule(NEMOTRON_H_SSM_DEFAULTS, version)
    dtype = conv if named == "auto" else normalize_dtype_name(named)
    return dtype, f"Updating mamba_ssm_cache_dtype to '{named}' for NemotronH model"


def layer_specs(spec, tp: int, precision, settings: Settings, block_size: Optional[int], rules: Behaviour,
                version: str = PINNED, capability=()):
    """(per-layer CacheSpecs, block size, log lines) for the whole model in vLLM `version` on a GPU of
    `capability` (the CUDA compute capability: sparse MLA's cache, cache_precision)."""
    precision = cache_precision(spec, precision, capability, version, tp)
    layers = spec.layers
    quantized = precision.bits < 16
    # its layers' kinds, each once in first-seen order (ModelSpec.layer_counts): what the backend's block reads
    bs = attention_block_size(tuple(kind for kind, _ in spec.layer_counts), quantized, block_size, version, capability)
    lines = []
    mamba = list(spec.linear_layers)
    updated = ssm_state_dtype(spec, version)[1]
    if mamba and updated:
        lines.append(updated)
    state_bytes = mamba_state_bytes(spec, version)
    # in "align" mode only (prefix caching on): Qwen's gated DeltaNet checkpoints from 0.33 (vllm_specs)
    alignment = prefill_checkpoint_alignment(layers, version, capability) if settings.prefix_caching else None
    all_mode = mamba_all_mode(spec, version, settings.prefix_caching)  # a state every block: CacheSpec.all_mode
    all_block = None  # "all" mode's Mamba block, aligned to the Mamba chunk (mamba_all_blocks)
    if mamba:
        attention, per_token, page = hybrid_pages(spec, tp, precision, version)
        if attention is not None:
            shape = (isinstance(attention, MLALatent), version, capability, getattr(attention, "head_dim", 0))
            if all_mode:
                # --mamba-block-size replaces the chunk as the block's base (vllm_prefix_flag)
                chunk = settings.mamba_block_size or max(layer.chunk_size for layer in mamba) or MAMBA_CHUNK_FALLBACK
                raised, all_block = mamba_all_blocks(per_token, page, bs, chunk, *shape)
            else:
                raised = hybrid_block_size(per_token, page, bs, shape[0], alignment, *shape[1:])
            if raised > bs:
                lines.append(f"Setting attention block size to {raised} tokens to ensure that attention page "
                             f"size is >= mamba page size.")
            bs = raised
            if bs * per_token > page:
                lines.append(f"Padding mamba page size by {100 * (bs * per_token - page) / page:.2f}% to ensure "
                             f"that mamba page size and attention page size are exactly equal.")
    mamba_block = all_block or (bs if settings.prefix_caching else settings.max_model_len)
    if mamba and len(mamba) == len(layers):  # attention-free: the state block is the only block there is
        bs = mamba_block
    made: dict = {}  # layers of one kind are equal (frozen): one spec per kind, shared by its layers
    drafts = spec.draft.config.num_speculative_tokens if spec.draft is not None else 0  # --speculative-config
    for layer in spec.layer_counts:
        made[layer[0]] = layer_spec(layer[0], bs, tp, precision, state_bytes, mamba_block, drafts, alignment, version)
    specs = [made[layer] for layer in layers]
    if mamba and any(s.kind != "mamba" for s in specs if s is not None):
        page = max(s.page_bytes for s in specs if s is not None and s.kind != "mamba")
        specs = [s if s is None or s.kind != "mamba" else replace(s, page_bytes=max(page, s.page_bytes),
                                                                   all_mode=all_mode)
                 for s in specs]
    return specs, bs, lines


def mamba_state_dtypes(spec, version: str = PINNED) -> tuple:
    """(conv, temporal) kvplan dtype names of `spec`'s Mamba states in vLLM `version`: --mamba-cache-dtype or the
    model dtype (vllm_cache_flags.conv_state_dtype), the temporal one as ssm_state_dtype says."""
    from .vllm_cache_flags import conv_state_dtype

    return conv_state_dtype(spec), ssm_state_dtype(spec, version)[0]


def mamba_state_bytes(spec, version: str = PINNED) -> tuple:
    """(conv, temporal) bytes per element of `spec`'s Mamba states in vLLM `version` (mamba_state_dtypes)."""
    return tuple(DTYPE_BYTES[name] for name in mamba_state_dtypes(spec, version))


def hybrid_pages(spec, tp: int, precision, version: str = PINNED) -> tuple:
    """(the attention layer a Mamba hybrid's state page is padded to, its bytes a token on one GPU at the cache
    `precision`, the largest state page): vLLM sizes both from the first attention layer (models/config.py
    HybridAttentionMambaModelConfig); (None, 0, the page) for a model with no attention, (None, 0, 0) for no state."""
    mamba = spec.linear_layers
    # the state dtypes are the model's, and equal layers are one kind (frozen): each priced once, not per layer
    state_bytes = mamba_state_bytes(spec, version)
    page = max((mamba_page(layer, tp, *state_bytes) for layer in dict.fromkeys(mamba)), default=0)
    attention = next((layer for layer in spec.layers if isinstance(layer, (FullAttention, MLALatent))), None)
    if not mamba or attention is None:
        return None, 0, page
    return attention, attention.bytes_per_token(tp, precision), page


def groups_for(specs, rules: Behaviour):
    if rules.era == "v0":  # no cache groups: every layer in one block table
        first = next(s for s in specs if s is not None)
        return kv_cache_groups([first if s is not None else None for s in specs])[0], []
    return kv_cache_groups(specs)


def blocks_per_request(groups, settings: Settings, max_model_len: int) -> int:
    return sum(g.spec.blocks_per_request(max_model_len, settings.in_flight_tokens, settings.prefix_caching)
               for g in groups)


def estimate_max_model_len(groups, settings, per_block: int, memory: int, upper: int) -> int:
    """kv_cache_utils._estimate_max_model_len_from_groups: binary search over 1..max_model_len."""
    def fits(length: int) -> bool:
        return per_block * blocks_per_request(groups, settings, length) <= memory

    if not fits(1):
        return 0
    low, high = 1, upper
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fits(mid) else (low, mid - 1)
    return low


NO_MEMORY = ("No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing "
             "the engine (this flag also controls CPU memory reservation on the CPU backend, despite its name). "
             "See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details.")


def more_memory_hint(rules: Behaviour, measured_util: Optional[float], after_warmup: bool = True) -> Optional[str]:
    """0.34's advice in the start-up refusals (v1/core/kv_cache_planning.py:64-96 _more_kv_cache_memory_hint);
    `measured_util`: the gpu_memory_utilization of a cache sized after warmup (extensible), else None;
    `after_warmup`: the check on the measured cache (else the profile run's, before warmup). None before 0.34, whose
    messages carry their own advice."""
    if rules.kv_sizing != "extensible":
        return None
    if measured_util is None:
        return ("Try increasing `gpu_memory_utilization` when initializing the engine (this flag also controls CPU "
                "memory reservation on the CPU backend, despite its name).")
    used_by = "the model, its activations, CUDA graphs and warmup" if after_warmup else "the model and its activations"
    graphs = " CUDA graphs take less with fewer or smaller capture sizes in the compilation config." \
        if after_warmup else ""
    if measured_util < 1.0:
        return (f"The KV cache gets what is left after {used_by} within `gpu_memory_utilization`={measured_util}; "
                f"increase it (with the extensible KV cache it defaults to 1.0) or decrease `max_model_len` or "
                f"`max_num_seqs`.{graphs}")
    return (f"The extensible KV cache already takes all device memory left after {used_by}; decrease "
            f"`max_model_len` or `max_num_seqs`, or the model needs a device with more memory.{graphs}")


def no_memory_message(hint: Optional[str]) -> str:
    """The refusal when no block fits (kv_cache_utils / 0.34 kv_cache_planning.py:107-112)."""
    if hint is None:
        return NO_MEMORY
    return (f"No available memory for the cache blocks. {hint} "
            f"See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details.")


def refusal_message(max_model_len: int, needed: int, available: int, estimate: int, rules: Behaviour,
                    hint: Optional[str] = None) -> str:
    """kv_cache_utils._check_enough_kv_cache_memory (0.32.0; 0.34.0 kv_cache_planning.py:114-132 with `hint`,
    more_memory_hint); V0 said it in tokens [A02, A13, A16]."""
    if rules.era == "v0":
        return (f"The model's max seq len ({max_model_len}) is larger than the maximum number of tokens that can "
                f"be stored in KV cache ({estimate}). Try increasing `gpu_memory_utilization` or decreasing "
                f"`max_model_len` when initializing the engine.")
    estimated = f"Based on the available memory, the estimated maximum model length is {estimate}. " if estimate \
        else ""
    if hint is not None:
        return (f"To serve at least one request with the model's max seq len ({max_model_len}), "
                f"({format_gib(needed)} GiB KV cache is needed, which is larger than the available KV cache memory "
                f"({format_gib(available)} GiB). {estimated}{hint} Decreasing `max_model_len` also reduces what is "
                f"needed. See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details.")
    hint = estimated
    return (f"To serve at least one request with the model's max seq len ({max_model_len}), "
            f"({format_gib(needed)} GiB KV cache is needed, which is larger than the available KV cache memory "
            f"({format_gib(available)} GiB). {hint}Try increasing `gpu_memory_utilization` (which also controls "
            f"CPU memory on the CPU backend) or decreasing `max_model_len` when initializing the engine. "
            f"See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details.")


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
    return _unlisted_refusal(architecture, version) or _retired_refusal(architecture, version)


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
        note=f"{owner}; or VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, at your own risk")


def rope_window_refusal(spec, version: str) -> Optional[Refusal]:
    """vLLM 0.4.3-0.11.x's NotImplementedError for --disable-sliding-window beside a RoPE scaling type it multiplies
    the length by (vllm_rope_len.window_pair_refused), met while the length is derived; 0.12 takes the pair."""
    from .vllm_rope_len import window_pair_refused

    said = window_pair_refused(spec, version, getattr(spec, "sliding_window_disabled", False))
    if not said:
        return None
    return Refusal(said, None, configuration=True, field="engine", options=("vllm==0.12.0",), onward="newer",
                   note="vLLM 0.12 caps the length to the window and multiplies it by the RoPE factor")


# --num-gpu-blocks-override N (config/cache.py CacheConfig.num_gpu_blocks_override, "used for testing preemption"):
# the pool holds N blocks of every group whatever the profiled memory; nothing compares N blocks with that memory,
# so a pool larger than the budget fails when the worker allocates it (or runs past gpu_memory_utilization).
# By release (first release -> rule, newest first):
# - "checked" (0.20.1 on, vllm#41069): get_kv_cache_configs replaces each worker's available memory by N x bytes
#   per block, so the one-request check (null block held back) and auto-fit run against N blocks.
# - "after_check" (0.8-0.9.0, 0.9.2-0.20.0): the check runs on the profiled memory, then may_override_num_blocks
#   (get_num_blocks) sets N: a pool too small for one request starts and never schedules it.
# - "ignored" (0.9.1): get_num_blocks logs the override and keeps the profiled count (fixed by vllm#19503).
# - V0 (<= 0.7): LLMEngine._initialize_kv_caches sets N; the worker's raise_if_cache_size_invalid checks N x
#   block_size tokens against max_model_len, as "checked" does.
OVERRIDE_RULES = (((0, 20, 1), "checked"), ((0, 9, 2), "after_check"), ((0, 9, 1), "ignored"),
                  ((0, 8), "after_check"), ((0, 2), "checked"))
OVERRIDE_TOO_BIG = ("--num-gpu-blocks-override {n:,} asks for {needed} GiB of KV cache a GPU, more than the {left} "
                    "GiB the budget leaves: vLLM does not check the override against free memory "
                    "(v1/core/kv_cache_utils.py get_kv_cache_configs), so allocating the cache would fail with CUDA "
                    "out of memory (or run past --gpu-memory-utilization)")


def override_rule(version: str) -> str:
    return release_rule(OVERRIDE_RULES, version)


SWAP_SPACE = 4 * GiB  # V0's default --swap-space per worker: "# CPU blocks" = this // bytes per block


def size_lines(num_blocks: int, per_request: int, groups, settings: Settings, rules: Behaviour,
               per_block: int = 0) -> tuple:
    """(tokens, concurrency, log lines) as each release logs them."""
    length = settings.max_model_len
    block = min(g.spec.block_size for g in groups)
    if rules.era == "v0":
        tokens = num_blocks * block
        concurrency = tokens / length
        return tokens, concurrency, [f"# GPU blocks: {num_blocks}, # CPU blocks: {SWAP_SPACE // per_block}",
                                     f"Maximum concurrency for {length} tokens per request: {concurrency:.2f}x"]
    concurrency = num_blocks / per_request
    if rules.tokens_rule == "blocks_per_group":
        tokens = num_blocks // len(groups) * block
    else:
        tokens = int(concurrency * length)
    size = f"GPU KV cache size: {tokens:,} tokens"
    most = f"Maximum concurrency for {length:,} tokens per request: {concurrency:.2f}x"
    return tokens, concurrency, [f"{size}, {most}"] if rules.one_log_line else [size, most]


def configuration_refusal(spec, precision, *, tp: int, length: int, block_size: Optional[int],
                          version: str = PINNED, capability=(), gpu_name: str = "", checked: bool = True,
                          allow_deprecated: bool = False) -> Optional[Refusal]:
    """vLLM's first refusal of the configuration itself, whatever the memory, in the order start-up meets them: the
    architecture, the length, a float16 the model refuses and the weight quantisation's method (unregistered, not on
    ROCm, deprecated unless `allow_deprecated`) while ModelConfig reads the config (config/model.py 0.33.0:922),
    then in VllmConfig.__post_init__ a KDA state dtype (its hybrid hook: vllm_cache_flags.kda_refusal), a 16-bit
    cache dtype other than the model's (0.33.0 config/vllm.py:1540) and the quantisation's class, GPU and served
    dtype (:1608; vllm_quant.quant_config_refusal), bfloat16 on a GPU without it as the worker starts, a
    compressed-tensors scheme or an AutoGPTQ group size Marlin lacks as the layers are built, then the cache dtype
    (an NVFP4 one: nvfp4_refusal), the GPU and the block size while the attention layers pick their backends (the
    ROCm assert on the block comes after its fp8 check: rocm.py 0.17.0 :364-371), last an MLA hybrid's pages that
    the block forced on its MLA backend leaves ununified (mla_hybrid_block_refusal: met after profiling, whatever
    the memory); None when it gets past them all.
    `gpu_name`: the GPU as vLLM names it in its messages (catalog.device_name). A refusal of the dtype or the
    quantisation, and vLLM's bypass of a deprecated method, says in words only what passes every one of these checks
    (`checked`: vllm_dtype_remedy.checked_remedy, bypass_remedy).
    Worked out once per question (_CONFIGURATIONS, `spec` by identity): a release remedy's search asks it of every
    boundary release, and each release's plan asks it again as the engine starts."""
    asked = dict(tp=tp, length=length, block_size=block_size, version=version, capability=capability,
                 gpu_name=gpu_name, checked=checked, allow_deprecated=allow_deprecated)
    key = (id(spec), precision, getattr(precision, "auto", None), *asked.values())
    try:
        held = _CONFIGURATIONS.get(key)
    except TypeError:  # an unhashable field (a capability given as a list): asked afresh
        return _configuration_refusal(spec, precision, **asked)
    if held is not None and held[0] is spec:
        return held[1]
    refusal = _configuration_refusal(spec, precision, **asked)
    remember(_CONFIGURATIONS, MAX_CONFIGURATIONS, key, (spec, refusal))  # the oldest goes (and the spec it kept alive)
    return refusal


def config_read_refusal(spec, length: int, version: str) -> Optional[Refusal]:
    """The first refusals start-up meets, while ModelConfig reads the config and before anything reads the GPU: the
    architecture (the release's registry), the length past the model's own (or the window --disable-sliding-window
    caps it to) and a RoPE type the release cannot pair with that switch. The same on every GPU, so verify asks them
    before torch (commands/verify.py); `spec` as the release views it (release_view)."""
    return architecture_refusal(served_architecture(spec), version) or model_length_refusal(spec, length) or \
        rope_window_refusal(spec, version)


def model_length_refusal(spec, length: int) -> Optional[Refusal]:
    """length_refusal of `length` against `spec`'s own length (`spec` as the release views it: release_view)."""
    return length_refusal(length, spec.max_position_embeddings, getattr(spec, "model_type", ""),
                          getattr(spec, "length_key", "max_position_embeddings"))


# configuration_refusal's answers within a run, each keeping its spec alive (so that its id is not reused)
_CONFIGURATIONS: dict = {}
MAX_CONFIGURATIONS = 4096


def _configuration_refusal(spec, precision, *, tp: int, length: int, block_size: Optional[int], version: str,
                           capability, gpu_name: str, checked: bool, allow_deprecated: bool) -> Optional[Refusal]:
    refusal = config_read_refusal(spec, length, version) or model_dtype_refusal(spec, version, capability) or \
        model_config_refusal(spec, capability, version, allow_deprecated=allow_deprecated) or \
        kda_refusal(spec, version) or float_kv_refusal(spec, precision, version, capability) or \
        built_quantization_refusal(spec, capability, version) or \
        gpu_dtype_refusal(spec, capability, version, gpu_name) or \
        scheme_refusal(spec, capability, version) or marlin_refusal(spec, capability, version) or \
        kv_scheme_refusal(spec, version) or checkpoint_e5m2_refusal(spec, precision, capability, version, tp) or \
        v4_dtype_refusal(spec, precision) or octave_refusal(precision, capability) or \
        nvfp4_refusal(spec, precision, capability, version) or sparse_gpu_refusal(spec, capability, version) or \
        sparse_dtype_refusal(spec, precision, capability, version, tp) or \
        dense_mla_dtype_refusal(spec, precision, capability, version, tp) or \
        sparse_block_refusal(spec, block_size, capability, version, precision.vllm_dtype) or \
        attention_block_refusal(spec, precision, block_size, capability, version, tp) or \
        mla_hybrid_block_refusal(spec, precision, block_size, capability, version, tp)
    deprecated = refusal is not None and is_deprecation(refusal)
    if refusal is None or not checked or (refusal.field not in ("dtype", "quantization") and not deprecated):
        return refusal
    from .vllm_dtype_remedy import bypass_remedy, checked_remedy

    def trial(spec, precision, version=version, capability=capability, gpu_name=gpu_name, allow_deprecated=False):
        return configuration_refusal(spec, precision, tp=tp, length=length, block_size=block_size, version=version,
                                     capability=capability, gpu_name=gpu_name, checked=False,
                                     allow_deprecated=allow_deprecated)

    words = bypass_remedy if deprecated else checked_remedy
    remedy, also = words(refusal, spec, precision, capability, version, trial, servable_dtypes)
    return replace(refusal, remedy=remedy, also=also)


@dataclass(frozen=True)
class Startup:
    figures: EngineFigures
    max_concurrency: int  # resident sequences, capped by max_num_seqs
    limited_by: str  # memory | max_num_seqs
    block_size: int = 0  # the attention block the pages were sized at (figures.block_size: vLLM's final one)


def start(spec, *, tp: int, precision, settings: Settings, available: list, stages: Optional[list] = None,
          block_size: Optional[int] = None, version: str = PINNED, override: Optional[int] = None,
          capability: tuple = (), measured: Optional[list] = None, gpu_name: str = "",
          flag_refusal: Optional[Refusal] = None) -> Startup:
    """What vLLM `version` makes of `available` KV bytes on each pipeline stage (`stages`: the cache-layer
    indices each stage holds; None: one stage holding every layer); `override`: --num-gpu-blocks-override;
    `capability`: the GPU's CUDA compute capability (() for Hopper's rules); `measured`: each stage's
    plan.budget.MeasuredSizing where the cache is sized after warmup (0.34's extensible KV cache), else None;
    `flag_refusal`: a refusal of the engine's flags, whatever the memory: a prefix-LM's media item past the batched
    tokens (vllm_media_floor.item_refusal), which the front end meets before the engine core starts, LoRA's
    (vllm_lora.lora_refusal, speculative_refusal); before the memory and, as kvplan orders them, after the
    configuration's other checks (vLLM meets the worker's and the attention backends' after the front end's)."""
    rules = behaviour(version)
    settings = with_model_defaults(spec, settings, version)
    cache = cache_precision(spec, precision, capability, version, tp).name
    specs, bs, lines = layer_specs(spec, tp, precision, settings, block_size, rules, version, capability)
    groups, padding = groups_for(specs, rules)
    stages = stages or [set(range(len(specs)))]
    length = settings.max_model_len
    per_request = blocks_per_request(groups, settings, length)
    refusal = configuration_refusal(spec, precision, tp=tp, length=length, block_size=block_size, version=version,
                                    capability=capability, gpu_name=gpu_name) or flag_refusal
    if refusal is not None:  # refused while reading the config: no memory profile, no log lines
        return Startup(_figures(version, min(available), None, None, None, refusal, (), bs, groups, per_request, 0,
                                settings, cache), 0, "memory")
    profiled = [m.profiled_bytes for m in measured] if measured else available
    if rules.era != "v0":  # V0 logged a "Memory profiling results" line instead
        lines += [f"Available KV cache memory: {format_gib(a)} GiB" for a in dict.fromkeys(profiled)]
        lines += [f"Add {pad} padding layers, may waste at most {100 * pad / n:.2f}% KV cache memory"
                  for pad, n in padding]
    check = partial(memory_refusal, groups=groups, settings=settings, per_request=per_request, rules=rules)
    util = measured[0].gpu_util if measured else None
    if measured:  # get_kv_cache_configs checks the profiled figure of every worker before warmup
        refusal = next((r for stage, memory in zip(stages, profiled)
                        if (r := check(memory, _stage_block(groups, stage),
                                       hint=more_memory_hint(rules, util, after_warmup=False))) is not None), None)
    blocks = []
    rule = override_rule(version) if override else None
    too_big = None  # (bytes N blocks take, bytes the budget leaves) on the first stage short of them
    for index, (stage, memory) in enumerate(zip(stages, available)):  # every worker checked, in order
        per_block = _stage_block(groups, stage)
        if per_block == 0:
            continue
        if rule is not None:
            lines.append(f"Overriding num_gpu_blocks={memory // per_block} with num_gpu_blocks_override={override}")
            if rule != "ignored" and override * per_block > memory and too_big is None:
                too_big = (override * per_block, memory)
            if rule == "checked":
                memory = override * per_block
        if measured:  # the blocks whose granules fit, at most the reserved ones (blocks_within), then checked
            fit = committed_blocks(memory, _segment_strides(spec, groups, stage), measured[index].granule_bytes)
            memory = min(fit, measured[index].profiled_bytes // per_block) * per_block
        blocks.append(override if rule in ("checked", "after_check") else memory // per_block)
        if refusal is None and not measured:
            refusal = check(memory, per_block, hint=more_memory_hint(rules, util))
    if refusal is None and measured and blocks:
        refusal = after_warmup_refusal(groups, stages, min(blocks), partial(check, hint=more_memory_hint(rules, util)))
    if refusal is None and too_big is not None:
        refusal = Refusal(OVERRIDE_TOO_BIG.format(n=override, needed=format_gib(too_big[0]),
                                                  left=format_gib(max(too_big[1], 0))), None, allocation_fails=True)
    refusal = refusal or all_mode_block_refusal(groups, version)  # the scheduler's, once the cache is sized
    num_blocks = max(min(blocks), 0) if blocks else 0
    per_block = _stage_block(groups, stages[0])
    tokens, concurrency, size = size_lines(num_blocks, per_request, groups, settings, rules, per_block)
    overridden = dict(num_gpu_blocks_override=override, override_kv_cache_bytes=override * per_block) \
        if rule is not None and rule != "ignored" else {}
    if refusal is not None:
        if rules.era == "v0":  # V0 logged its block counts before refusing
            lines += size
        return Startup(replace(_figures(version, min(available), num_blocks, None, None, refusal, lines, bs, groups,
                                        per_request, 0, settings, cache), **overridden), 0, "memory")
    if measured:  # extensible_kv_cache.py:536-540, each worker once it commits the agreed count
        committed = committed_bytes(num_blocks, _segment_strides(spec, groups, stages[0]), measured[0].granule_bytes)
        lines.append(f"Extended KV cache to {num_blocks} blocks ({committed / 2**30:.2f} GiB).")
    one = footprint(groups, length, settings.max_num_batched_tokens, settings.in_flight_batches,
                    settings.prefix_caching, settings.in_flight_tokens)
    resident = one.resident(num_blocks - 1)  # the null block is never handed out
    figures = replace(_figures(version, min(available), num_blocks, tokens, concurrency, None, lines + size, bs,
                               groups, per_request, resident, settings, cache), **overridden)
    decoding = one.resident(num_blocks - 1, one.decoding)  # chunked layers full again before a chunk ends
    capped = min(decoding, settings.max_num_seqs)
    return Startup(figures, capped, "max_num_seqs" if decoding > settings.max_num_seqs else "memory", bs)


def after_warmup_refusal(groups, stages: list, num_blocks: int, check) -> Optional[Refusal]:
    """The extensible cache's check once warmup is measured (0.34.0 v1/core/kv_cache_planning.py:1864-1900
    finalize_extensible_kv_cache): every worker's measured block count and the reserved one give one count, the
    smallest (:1883-1884), and shrink_kv_cache_configs (:1827-1861) checks each worker's config at that count on its
    own block bytes, in worker order, raising at the first short (v1/engine/core.py:405-414). Workers come in rank
    order, stage 0's first (distributed/parallel_state.py:2164-2170 lays ranks out dp, pp, pcp, tp), and every stage
    needs the same blocks a request (its groups are the global ones projected, kv_cache_planning.py:1517-1563), so
    with uneven stages vLLM words stage 0's bytes, not those of the stage that measured the fewest blocks."""
    for stage in stages:
        per_block = _stage_block(groups, stage)
        if per_block and (refusal := check(num_blocks * per_block, per_block)) is not None:
            return refusal
    return None


def _stage_block(groups, stage: set) -> int:
    """Pool bytes a block on one stage: the widest group's (every other group's layers share its tensors)."""
    return max(g.bytes_per_block(stage) for g in groups)


def memory_refusal(memory: int, per_block: int, *, groups, settings: Settings, per_request: int, rules: Behaviour,
                   hint: Optional[str] = None) -> Optional[Refusal]:
    """kv_cache_utils._check_enough_kv_cache_memory on one worker's `memory`, the null block held back from 0.29:
    no block at all, or too few for one max_model_len request (with vLLM's estimate of the longest that fits)."""
    check = memory - per_block if rules.null_block_in_check else memory
    if check <= 0 and rules.era != "v0":
        return Refusal(no_memory_message(hint), 0)
    if per_block * per_request <= check:
        return None
    length = settings.max_model_len
    if rules.era == "v0":
        tokens = max(check, 0) // per_block * min(g.spec.block_size for g in groups)
        return Refusal(refusal_message(length, 0, check, tokens, rules), None)
    estimate = estimate_max_model_len(groups, settings, per_block, check, length)
    return Refusal(refusal_message(length, per_block * per_request, check, estimate, rules, hint), estimate)


def _segment_strides(spec, groups, stage: set) -> tuple:
    """The extensible cache's segments on one stage, each one page a block (ExtensibleKVCache._segments, 0.34
    v1/worker/extensible_kv_cache.py:128-170): a region a layer of the widest group, which every other group's layers
    share tensors with (kv_cache_utils.get_kv_cache_config_from_groups), under the default layer-outermost layout;
    one region for all under a block-outermost one, which DeepSeek-V4's indexer imposes (its backend takes BLHNC /
    BLNHC only, v1/attention/backends/mla/indexer.py:300-303)."""
    widest = max(groups, key=lambda g: g.bytes_per_block(stage))
    strides = tuple(p for i, p in zip(widest.layers, widest.page_bytes_of_layers) if i in stage)
    return (sum(strides),) if any(isinstance(layer, V4_KINDS) for layer in spec.layers) else strides


def committed_bytes(blocks: int, strides: tuple, granule: int) -> int:
    """ExtensibleKVCache.physical_bytes_for (0.34 v1/worker/extensible_kv_cache.py:305-311): each segment's `blocks`
    pages rounded up to whole granules."""
    return sum(-(-blocks * stride // granule) * granule for stride in strides)


def committed_blocks(memory: int, strides: tuple, granule: int) -> int:
    """ExtensibleKVCache.blocks_within (:313-318): the most blocks whose committed bytes fit in `memory`."""
    low, high = 0, max(memory, 0) // sum(strides)  # committed_bytes grows with the blocks: the last that fits
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if committed_bytes(mid, strides, granule) <= memory else (low, mid - 1)
    return low


def final_block_size(block_size: int, groups) -> int:
    """cache_config.block_size once the cache is sized (v1/engine/core.py _initialize_kv_caches): the smallest
    group's block (DeepSeek-V4: its compressor states' 4), the attention block for every other model."""
    return min((g.spec.block_size for g in groups), default=block_size)


def _figures(version, available, blocks, tokens, concurrency, refusal, lines, block_size, groups, per_request,
             resident, settings, cache_dtype) -> EngineFigures:
    block_size = final_block_size(block_size, groups) if groups and refusal is None else block_size
    return EngineFigures(
        name="vllm", version=version, available_kv_cache_bytes=available, num_gpu_blocks=blocks,
        gpu_kv_cache_tokens=tokens, max_concurrency=concurrency, starts=refusal is None, refusal=refusal,
        log_lines=tuple(lines), kv_cache_dtype=cache_dtype, block_size=block_size, num_kv_cache_groups=len(groups),
        blocks_per_request=per_request, resident_sequences=resident, max_num_seqs=settings.max_num_seqs,
        max_num_batched_tokens=settings.max_num_batched_tokens)
