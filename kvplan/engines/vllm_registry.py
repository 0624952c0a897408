"""The architectures each vLLM release's model registry adds over the release before, read in every release's own
source, so that an older release refuses them (vllm_config_read.architecture_refusal: "are not supported for now")
instead of serving them by a later release's rules; the architectures a release drops and may list again (UNLISTED);
and those it drops for good, which a later release names as previously supported (RETIRED: "was supported in vLLM
until ...").

The registry is the module-level dicts of vllm/model_executor/model_loader.py (_MODEL_REGISTRY, 0.2.0-0.2.4),
models/__init__.py (_MODELS, then _GENERATION_MODELS / _EMBEDDING_MODELS / _MULTIMODAL_MODELS, 0.2.5-0.6.2) and
models/registry.py (0.6.3 on); each key was diffed against the release before, the line cited is the key's in the
release that first lists it. Read in the sdists on PyPI (0.2.0-0.10.2; 0.3.2, 0.4.0 and 0.4.0.post1 have none, read
in their wheels), the sdists 0.11.0-0.34.0 and the 0.15.x wheels; every post-release lists what its base does, so
a release named here is the first of its minor series to list the key (0.2.1 was published as 0.2.1.post1).

Kept: generating architectures (text generation and multimodal; before 0.4.3's split the one registry) first listed
in 0.2.1-0.14.1 (later ones: ADDED_ARCHITECTURES, with its own citations), and pooling ones (embedding,
cross-encoder / classification, token classification, late interaction, reward) in every release. Left out: those
kvplan's reader refuses by name (model/unmodelled.py ARCHITECTURES, ENCODER_ONLY without a switch), the
encoder-decoder ones (Florence-2, mBART, Donut: the reader refuses is_encoder_decoder), the speculative heads listed
among the generating models before _SPECULATIVE_DECODING_MODELS existed (MLPSpeculatorPreTrainedModel 0.5.1,
MedusaModel 0.5.2, EAGLEModel 0.5.5: never the served model), vLLM's internal QuantMixtralForCausalLM alias (0.3.0),
names first listed in _TRANSFORMERS_SUPPORTED_MODELS (the Transformers backend serves them before that), names a
release before their own serves through a sibling class (InternVLForConditionalGeneration, which 0.10.1's
_normalize_arch maps to InternVLChatModel: registry.py 0.10.1:577-601; ChameleonForCausalLM, 0.5.3 only) and those
ADDED_ARCHITECTURES already names.

Not modelled: from 0.7.2 a release first hands an architecture its registry lacks to the Transformers backend
(model_loader/utils.py 0.7.2:92-98, 0.8.5:102-107; registry.py 0.11.0:802-829, 0.32.0:1222-1295), which serves it
where the installed transformers, or the checkpoint's remote code, has a model class that declares itself
compatible; the refusal here is vLLM's answer where it has none. An architecture no release lists at all
(listed_anywhere) is said so (its unlisted_note) from 0.7.2 on, and refused before.

A config whose `architectures` names several is served as the first its release lists, the backend tried on the first
only where it lists none (served_name: every release's registry walks the list); the rules that key on the name vLLM
resolved read it through served_architecture, those of a wrapper's language model's own code through
language_model_architecture (the nested config's class, walked alike).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple, Optional

from .vllm_registry_names import LISTED_0_32
from .vllm_releases import PUBLISHED, release_parts
from .vllm_versions import PINNED, parse_version

# (release, registry file under vllm/model_executor/, {architecture: its line there}), oldest first
GENERATING = (
    ("0.2.1.post1", "model_loader.py", {"AquilaForCausalLM": 17}),
    ("0.2.2", "model_loader.py", {"ChatGLMModel": 21, "MptForCausalLM": 32, "PhiForCausalLM": 35, "YiForCausalLM": 38}),
    ("0.2.4", "model_loader.py", {"ChatGLMForConditionalGeneration": 26, "MixtralForCausalLM": 36}),
    ("0.2.7", "models/__init__.py", {"DeciLMForCausalLM": 20}),
    ("0.3.0", "models/__init__.py", {"DeepseekForCausalLM": 21, "Qwen2ForCausalLM": 40,
                                     "StableLMEpochForCausalLM": 42}),
    ("0.3.1", "models/__init__.py", {"InternLM2ForCausalLM": 28}),
    ("0.3.2", "models/__init__.py", {"GemmaForCausalLM": 23, "OLMoForCausalLM": 39}),
    ("0.3.3", "models/__init__.py", {"OrionForCausalLM": 41, "StableLmForCausalLM": 47, "Starcoder2ForCausalLM": 48}),
    ("0.4.0", "models/__init__.py", {"CohereForCausalLM": 20, "DbrxForCausalLM": 21, "JAISLMHeadModel": 32,
                                     "LlavaForConditionalGeneration": 34, "Qwen2MoeForCausalLM": 50,
                                     "XverseForCausalLM": 55}),
    ("0.4.1", "models/__init__.py", {"MiniCPMForCausalLM": 44}),
    ("0.4.2", "models/__init__.py", {"OlmoForCausalLM": 45, "Phi3ForCausalLM": 49}),
    ("0.4.3", "models/__init__.py", {"ArcticForCausalLM": 57, "Phi3SmallForCausalLM": 59}),
    ("0.5.0", "models/__init__.py", {"LlavaNextForConditionalGeneration": 36}),
    ("0.5.1", "models/__init__.py", {"DeepseekV2ForCausalLM": 24, "Gemma2ForCausalLM": 27, "Phi3VForCausalLM": 54,
                                     "JambaForCausalLM": 66}),
    ("0.5.2", "models/__init__.py", {"FuyuForCausalLM": 26, "PersimmonForCausalLM": 53,
                                     "PaliGemmaForConditionalGeneration": 54}),
    ("0.5.3", "models/__init__.py", {"ChameleonForConditionalGeneration": 21}),
    ("0.5.4", "models/__init__.py", {"Blip2ForConditionalGeneration": 19, "InternVLChatModel": 40, "MiniCPMV": 56,
                                     "NemotronForCausalLM": 57}),
    ("0.5.5", "models/__init__.py", {"UltravoxModel": 87}),
    ("0.6.0", "models/__init__.py", {"ExaoneForCausalLM": 25, "PhiMoEForCausalLM": 53, "GraniteForCausalLM": 68}),
    ("0.6.1", "models/__init__.py", {"Qwen2VLForConditionalGeneration": 56,
                                     "LlavaNextVideoForConditionalGeneration": 87,
                                     "PixtralForConditionalGeneration": 95}),
    ("0.6.2", "models/__init__.py", {"MiniCPM3ForCausalLM": 46, "OlmoeForCausalLM": 49, "SolarForCausalLM": 64,
                                     "LlavaOnevisionForConditionalGeneration": 92,
                                     "MllamaForConditionalGeneration": 104}),
    ("0.6.3", "models/registry.py", {"GraniteMoeForCausalLM": 47, "MambaForCausalLM": 55, "MolmoForCausalLM": 107,
                                     "NVLM_D": 108}),
    ("0.6.4", "models/registry.py", {"InternLM2VEForCausalLM": 58, "FalconMambaForCausalLM": 65,
                                     "H2OVLChatModel": 131, "Idefics3ForConditionalGeneration": 133,
                                     "Qwen2AudioForConditionalGeneration": 146}),
    ("0.6.5", "models/registry.py", {"Cohere2ForCausalLM": 44, "GlmForCausalLM": 53, "GritLM": 60,
                                     "Olmo2ForCausalLM": 81, "TeleChat2ForCausalLM": 98,
                                     "AriaForConditionalGeneration": 145, "MantisForConditionalGeneration": 158}),
    ("0.6.6", "models/registry.py", {"DeepseekV3ForCausalLM": 48}),
    ("0.7.0", "models/registry.py", {"Fairseq2LlamaForCausalLM": 50, "InternLM3ForCausalLM": 64,
                                     "DeepseekVLV2ForCausalLM": 155}),
    ("0.7.1", "models/registry.py", {"MiniCPMO": 165}),
    ("0.7.2", "models/registry.py", {"Qwen2_5_VLForConditionalGeneration": 175}),
    ("0.7.3", "models/registry.py", {"BambaForCausalLM": 40, "Mamba2ForCausalLM": 74, "GLM4VForCausalLM": 162,
                                     "QwenVLForConditionalGeneration": 178}),
    ("0.8.0", "models/registry.py", {"Gemma3ForCausalLM": 56, "GraniteMoeSharedForCausalLM": 64,
                                     "Grok1ModelForCausalLM": 66, "Zamba2ForCausalLM": 108,
                                     "Gemma3ForConditionalGeneration": 166, "Phi4MMForCausalLM": 188}),
    ("0.8.2", "models/registry.py", {"TeleFLMForCausalLM": 107}),
    ("0.8.3", "models/registry.py", {"MiniMaxText01ForCausalLM": 38, "Llama4ForCausalLM": 76,
                                     "AyaVisionForConditionalGeneration": 166,
                                     "Mistral3ForConditionalGeneration": 183, "Llama4ForConditionalGeneration": 198,
                                     "SkyworkR1VChatModel": 199}),
    ("0.8.4", "models/registry.py", {"Glm4ForCausalLM": 61, "Qwen3ForCausalLM": 105, "Qwen3MoeForCausalLM": 106,
                                     "SmolVLMForConditionalGeneration": 179}),
    ("0.8.5", "models/registry.py", {"Plamo2ForCausalLM": 102, "GraniteSpeechForConditionalGeneration": 181,
                                     "KimiVLForConditionalGeneration": 186, "Qwen2_5OmniModel": 204}),
    ("0.9.0", "models/registry.py", {"GraniteMoeHybridForCausalLM": 67, "FalconH1ForCausalLM": 82,
                                     "MiMoForCausalLM": 92, "MiniMaxVL01ForConditionalGeneration": 196, "Ovis": 202,
                                     "Qwen2_5OmniForConditionalGeneration": 211}),
    ("0.9.1", "models/registry.py", {"NemotronHForCausalLM": 95, "TarsierForConditionalGeneration": 216}),
    ("0.9.2", "models/registry.py", {"MiniMaxM1ForCausalLM": 39, "Dots1ForCausalLM": 55, "Ernie4_5_ForCausalLM": 56,
                                     "Ernie4_5_MoeForCausalLM": 57, "Gemma3nForConditionalGeneration": 65,
                                     "HunYuanMoEV1ForCausalLM": 78, "Glm4vForConditionalGeneration": 196,
                                     "KeyeForConditionalGeneration": 202, "Tarsier2ForConditionalGeneration": 228}),
    ("0.10.0", "models/registry.py", {"ArceeForCausalLM": 36, "MiniMaxForCausalLM": 38, "BailingMoeForCausalLM": 45,
                                      "Exaone4ForCausalLM": 61, "Glm4MoeForCausalLM": 71,
                                      "HunYuanDenseV1ForCausalLM": 83, "Phi4FlashForCausalLM": 117,
                                      "Llama_Nemotron_Nano_VL": 208, "VoxtralForConditionalGeneration": 234}),
    ("0.10.1", "models/registry.py", {"Ernie4_5ForCausalLM": 63, "Gemma3nForCausalLM": 72, "GptOssForCausalLM": 76,
                                      "HCXVisionForCausalLM": 89, "Step3TextForCausalLM": 132,
                                      "Cohere2VisionForConditionalGeneration": 205,
                                      "Glm4vMoeForConditionalGeneration": 212,
                                      "InternS1ForConditionalGeneration": 216, "Phi4MultimodalForCausalLM": 237,
                                      "Step3VLForConditionalGeneration": 246}),
    ("0.10.2", "models/registry.py", {"ApertusForCausalLM": 42, "Qwen3NextForCausalLM": 77, "Lfm2ForCausalLM": 101,
                                      "MotifForCausalLM": 114, "SeedOssForCausalLM": 138,
                                      "Ernie4_5_VLMoeForConditionalGeneration": 218, "NemotronH_Nano_VL": 228,
                                      "KeyeVL1_5ForConditionalGeneration": 234, "RForConditionalGeneration": 235,
                                      "MiDashengLMModel": 243, "Ovis2_5": 251}),
    ("0.11.0", "models/registry.py", {"BailingMoeV2ForCausalLM": 60, "CwmForCausalLM": 67,
                                      "LongcatFlashForCausalLM": 114, "Olmo3ForCausalLM": 132,
                                      "DotsOCRForCausalLM": 224, "NemotronH_Nano_VL_V2": 235,
                                      "Qwen3VLForConditionalGeneration": 271,
                                      "Qwen3VLMoeForConditionalGeneration": 272}),
    ("0.11.1", "models/registry.py", {"AfmoeForCausalLM": 59, "FlexOlmoForCausalLM": 93, "Lfm2MoeForCausalLM": 124,
                                      "MiniMaxM2ForCausalLM": 137, "OuroForCausalLM": 152,
                                      "PanguUltraMoEForCausalLM": 154, "BeeForConditionalGeneration": 258,
                                      "DeepseekOCRForCausalLM": 269, "LightOnOCRForConditionalGeneration": 311,
                                      "PaddleOCRVLForConditionalGeneration": 346,
                                      "Qwen3OmniMoeForConditionalGeneration": 376}),
    ("0.12.0", "models/registry.py", {"MistralLarge3ForCausalLM": 148, "Plamo3ForCausalLM": 170,
                                      "TeleChatForCausalLM": 183, "HunYuanVLForConditionalGeneration": 302,
                                      "OpenCUAForConditionalGeneration": 308}),
    ("0.13.0", "models/registry.py", {"Jais2ForCausalLM": 130, "AudioFlamingo3ForConditionalGeneration": 268,
                                      "BagelForConditionalGeneration": 276}),
    ("0.14.0", "models/registry.py", {"ExaoneMoEForCausalLM": 101, "Grok1ForCausalLM": 126,
                                      "MiMoV2FlashForCausalLM": 162, "PanguProMoEV2ForCausalLM": 173,
                                      "GlmAsrForConditionalGeneration": 313, "IsaacForConditionalGeneration": 344,
                                      "KananaVForConditionalGeneration": 346, "Lfm2VlForConditionalGeneration": 358,
                                      "VoxtralStreamingGeneration": 437,
                                      "NemotronParseForConditionalGeneration": 439}),
)
POOLING = (
    ("0.4.3", "models/__init__.py", {"MistralModel": 63}),
    ("0.6.3", "models/registry.py", {"Qwen2ForRewardModel": 90, "Gemma2Model": 91}),
    ("0.6.4", "models/registry.py", {"LlamaModel": 106, "Qwen2Model": 114, "Qwen2ForSequenceClassification": 117}),
    ("0.6.6", "models/registry.py", {"JambaForSequenceClassification": 116}),
    ("0.7.0", "models/registry.py", {"InternLM2ForRewardModel": 117, "Qwen2ForProcessRewardModel": 130}),
    ("0.7.3", "models/registry.py", {"PrithviGeoSpatialMAE": 144}),
    ("0.9.2", "models/registry.py", {"GPT2ForSequenceClassification": 139, "Qwen3ForSequenceClassification": 183}),
    ("0.10.0", "models/registry.py", {"JinaVLForRanking": 187}),
    ("0.10.2", "models/registry.py", {"Gemma3TextModel": 159, "Terratorch": 193}),
    ("0.11.1", "models/registry.py", {"CLIPModel": 212, "SiglipModel": 219}),
    ("0.17.0", "models/registry.py", {"ColModernVBertForRetrieval": 253, "ColQwen3": 260, "OpsColQwen3Model": 261,
                                      "Qwen3VLNemotronEmbedModel": 262}),
    ("0.18.0", "models/registry.py", {"ErnieModel": 217, "ColPaliForRetrieval": 251,
                                      "ErnieForTokenClassification": 290, "ErnieForSequenceClassification": 300}),
    ("0.19.0", "models/registry.py", {"ColBERTLfm2Model": 273, "Qwen3ASRForcedAlignerForTokenClassification": 296}),
    ("0.20.0", "models/registry.py", {"JinaForRanking": 281}),
    ("0.32.0", "models/registry.py", {"EmbeddingGemma2Model": 251, "ClefOmniForJointSchema": 290}),
    ("0.33.0", "models/registry.py", {"ColUltraVBertForRetrieval": 283, "ModernVBertModel": 286,
                                      "ClefFlashForJointSchema": 301, "D3ForSequenceClassification": 344}),
    ("0.34.0", "models/registry.py", {"UltraVBertModel": 293}),
)
FIRST_LISTED = {architecture: release for release, _, added in GENERATING + POOLING for architecture in added}

# Architectures a release's registry drops: architecture -> (the last release that lists it, the first that lists it
# again or None). ExaoneMoEForCausalLM: registry.py 0.26.0:99, absent 0.27.0-0.31.0 (ExaoneMoeForCausalLM only),
# back at 0.32.0:102. ChatGLMForConditionalGeneration: 0.7.2:155, absent 0.7.3-0.8.3 (ChatGLMModel only), back at
# 0.8.4:46. Llama4ForCausalLM: 0.8.3:76, absent 0.8.4-0.10.0, back at 0.10.1:97. Renamed or dropped without a
# _PREVIOUSLY_SUPPORTED_MODELS entry (RETIRED has those): YiForCausalLM (models/__init__.py
# 0.3.0:43), OLMoForCausalLM (0.4.1:45; 0.4.2:45 OlmoForCausalLM), Ernie4_5_ForCausalLM (registry.py 0.10.0:58;
# 0.10.1:63 Ernie4_5ForCausalLM), NemotronH_Nano_VL (0.10.2:228; 0.11.0:235 NemotronH_Nano_VL_V2),
# VoxtralStreamingGeneration (0.15.1:448; 0.16.0:448 VoxtralRealtimeGeneration).
UNLISTED = {"ExaoneMoEForCausalLM": ("0.26.0", "0.32.0"), "ChatGLMForConditionalGeneration": ("0.7.2", "0.8.4"),
            "Llama4ForCausalLM": ("0.8.3", "0.10.1"), "YiForCausalLM": ("0.3.0", None),
            "OLMoForCausalLM": ("0.4.1", None), "Ernie4_5_ForCausalLM": ("0.10.0", None),
            "NemotronH_Nano_VL": ("0.10.2", None), "VoxtralStreamingGeneration": ("0.15.1", None)}


# Architectures a release's registry drops and names in _PREVIOUSLY_SUPPORTED_MODELS (model_executor/models/
# registry.py), which _raise_for_unsupported reads from 0.10.1 (0.10.1:488-495; 0.10.0 defines it, :280, and never
# reads it): from the first release that names it vLLM refuses it as "Model architecture X was supported in vLLM until
# vY, and is not supported anymore. ...", before that, from the first release that drops it, "are not supported for
# now". architecture -> Retired(the last release whose registry lists it, the first that names it, the release its
# message names), each read in every release's registry.py 0.9.2-0.34.0 (0.15.x: the wheels'). The named release is
# not always the last listing: JAISLMHeadModel "0.22.0" (0.23.0:717) is listed by 0.22.1 (:149); Baichuan's two
# "0.23.0" (0.25.0:731-732) by 0.24.0 (:81, :83); TeleChat, Persimmon and Fuyu "0.25.0" (0.26.0:759-761) by 0.25.1
# (:239, :183, :382); MotifForCausalLM "0.10.2" (0.11.1:481) by 0.11.0 (:123). Phi3SmallForCausalLM (0.9.2:111) is
# unnamed in 0.10.0 (0.10.1:306 names it) and Phi4FlashForCausalLM (0.10.2:130) in 0.11.0 (0.11.1:483 names it).
# The first naming line of each group: 0.10.1:306; 0.11.0:335-343; 0.11.1:481-483; 0.13.0:515; 0.23.0:717;
# 0.24.0:718-735; 0.25.0:731-741; 0.26.0:759-761; 0.27.0:780-781; 0.29.0:804-817; 0.34.0:937-938.
class Retired(NamedTuple):
    last: str  # the last release whose registry lists it
    named_from: str  # the first release whose _PREVIOUSLY_SUPPORTED_MODELS names it
    until: str  # the release its message names


_FROM_0_24 = Retired("0.23.0", "0.24.0", "0.23.0")
_FROM_0_25 = Retired("0.24.0", "0.25.0", "0.24.0")
_FROM_0_29 = Retired("0.28.0", "0.29.0", "0.28.0")
RETIRED = {
    "Phi3SmallForCausalLM": Retired("0.9.2", "0.10.1", "0.9.2"),
    # encoder-decoder models (V0 only) dropped with V0 (registry.py 0.11.0:336-337's comment); the BART family named
    # until 0.18.1, then left to a plugin (PLUGINS)
    **dict.fromkeys(("MllamaForConditionalGeneration", "DonutForConditionalGeneration", "BartModel",
                     "BartForConditionalGeneration", "Florence2ForConditionalGeneration",
                     "MBartForConditionalGeneration"), Retired("0.10.2", "0.11.0", "0.10.2")),
    "Phi4FlashForCausalLM": Retired("0.10.2", "0.11.1", "0.10.2"),
    "MotifForCausalLM": Retired("0.11.0", "0.11.1", "0.10.2"),
    "Phi4MultimodalForCausalLM": Retired("0.12.0", "0.13.0", "0.12.0"),
    "JAISLMHeadModel": Retired("0.22.1", "0.23.0", "0.22.0"),
    **dict.fromkeys(("ErnieModel", "ErnieForSequenceClassification", "ErnieForTokenClassification",
                     "InternLM2VEForCausalLM", "QWenLMHeadModel", "QwenVLForConditionalGeneration",
                     "InternLMForCausalLM", "XverseForCausalLM", "Dots1ForCausalLM", "BambaForCausalLM",
                     "MiniMaxForCausalLM", "MiniMaxText01ForCausalLM", "MiniMaxM1ForCausalLM",
                     "MiniMaxVL01ForConditionalGeneration"), _FROM_0_24),
    **dict.fromkeys(("BaiChuanForCausalLM", "BaichuanForCausalLM"), Retired("0.24.0", "0.25.0", "0.23.0")),
    **dict.fromkeys(("AquilaModel", "AquilaForCausalLM", "Grok1ModelForCausalLM", "Grok1ForCausalLM",
                     "TarsierForConditionalGeneration", "MantisForConditionalGeneration",
                     "MusicFlamingoForConditionalGeneration", "AyaVisionForConditionalGeneration"), _FROM_0_25),
    "Tarsier2ForConditionalGeneration": Retired("0.24.0", "0.25.0", "0.23.0"),
    **dict.fromkeys(("TeleChatForCausalLM", "PersimmonForCausalLM", "FuyuForCausalLM"),
                    Retired("0.25.1", "0.26.0", "0.25.0")),
    **dict.fromkeys(("Plamo2ForCausalLM", "OuroForCausalLM"), Retired("0.26.0", "0.27.0", "0.26.0")),
    **dict.fromkeys(("ArcticForCausalLM", "ChameleonForConditionalGeneration", "Cheers",
                     "CheersForConditionalGeneration", "Fairseq2LlamaForCausalLM",
                     "FireRedLIDForConditionalGeneration", "GritLM", "HCXVisionForCausalLM", "MPTForCausalLM",
                     "MptForCausalLM", "RWForCausalLM", "StableLMEpochForCausalLM", "PrithviGeoSpatialMAE"),
                    _FROM_0_29),
    **dict.fromkeys(("KeyeForConditionalGeneration", "KeyeVL1_5ForConditionalGeneration"),
                    Retired("0.33.0", "0.34.0", "0.33.0")),
}
# The last release that runs a retired architecture where older than the last that lists it: Tarsier2 is named
# "0.23.0  # last version with Transformers v4" (registry.py 0.25.0:738); 0.24.0 lists it (:578) but requires
# transformers >= 5.5.3 (requirements/common.txt 0.24.0:10), above the 5.3 its own tests cap it at (tests/models/
# registry.py 0.24.0:1384-1390: Qwen2VLConfig split in transformers v5)
LAST_RUNS = {"Tarsier2ForConditionalGeneration": "0.23.0"}
# Retired architectures a release leaves to an out-of-tree plugin instead (_OOT_SUPPORTED_MODELS, registry.py
# 0.19.0:656-661, message :959-966; 0.34.0:941-945): from that release, "Model architecture X is not supported in-tree
# anymore. Please install the plugin at URL ..." (0.18.1 still names them, :651-655)
PLUGINS = dict.fromkeys(("BartModel", "BartForConditionalGeneration", "Florence2ForConditionalGeneration",
                         "MBartForConditionalGeneration"), ("0.19.0", "https://github.com/vllm-project/bart-plugin"))


# Architectures that came later, with the first release whose registry.py lists them (checked in each release's
# vllm/model_executor/models/registry.py); an older release refuses them in _raise_for_unsupported ("are not
# supported for now") instead of serving them by 0.32's rules. The generating ones 0.2.1-0.14.1 add and the pooling
# ones of every release are FIRST_LISTED's, with their lines (a release that drops one: UNLISTED).
# 0.33.0 and 0.34.0: the generative architectures their registries add (the _TEXT_GENERATION_MODELS /
# _MULTIMODAL_MODELS dicts diffed against the release before; 0.33.0 registry.py:83, 111, 354, 528, 556, 648; 0.34.0
# :153, 209, 220, 507, 511, 533, 568, 661) that kvplan's reader takes;
# the rest it refuses as layouts it does not model (model/unmodelled.py: AliceAI, Dory, DomynEdge, Step5, Mistral
# Large 4, ZAYA1, Kimi K3.1, Canary):
# Qwen3.5: the ConditionalGeneration pair from 0.17.0 (registry.py:496-503), the CausalLM pair from 0.27.0 (:201-202);
# each release that lists them keeps their GDN recurrent state in the config's mamba_ssm_dtype (vllm_mamba_state.py
# QWEN3_5_SSM_HANDLER). 0.15.0 and 0.15.1 (their wheels' registry.py diffed against 0.14.1's): the generative
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

TRANSFORMERS_BACKEND = "0.7.2"  # the first release that tries the Transformers backend for an unlisted name

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


def retirement(architecture: str, version: str) -> Optional[str]:
    """How `version` refuses a retired architecture (RETIRED): "unlisted" from the first release that drops it to the
    last before one names it, "named" from then on, "plugin" where it points at a plugin instead (PLUGINS); None where
    its registry lists it, or the architecture was never retired."""
    retired = RETIRED.get(architecture)
    asked = padded_release(version)
    if retired is None or asked <= padded_release(retired.last):
        return None
    if asked < padded_release(retired.named_from):
        return "unlisted"
    plugin = PLUGINS.get(architecture)
    return "plugin" if plugin and asked >= padded_release(plugin[0]) else "named"


def last_serving(architecture: str) -> str:
    """The newest release that serves a retired architecture (RETIRED, LAST_RUNS): a refusal's remedy."""
    return LAST_RUNS.get(architecture, RETIRED[architecture].last)


def retired_boundaries() -> set:
    """The releases where a retired architecture's refusal starts or changes (RETIRED, PLUGINS), as (major, minor,
    patch): the last that serves it, the first published after the last that lists it, the first that names it, the
    first that points at a plugin (vllm_remedy.release_boundaries)."""
    found = {padded_release(first) for first, _ in PLUGINS.values()}
    published = [release_parts(name) for name in PUBLISHED]  # read once, not once an architecture
    for architecture, retired in RETIRED.items():
        last = padded_release(retired.last)
        after = next(parts for parts in published if parts > last)
        found.update({padded_release(last_serving(architecture)), after, padded_release(retired.named_from)})
    return found


def lists(architecture: str, version: str) -> bool:
    """Whether release `version`'s registry serves `architecture` as kvplan models it: a name some release lists
    (listed_anywhere) that this one neither lacks yet (ADDED_ARCHITECTURES) nor has dropped (UNLISTED, RETIRED), and,
    before TRANSFORMERS_BACKEND, lists by that very name (listed_by_name). The names vllm_config_read.
    architecture_refusal lets pass, but for one no release lists, which only the Transformers backend may take."""
    first = ADDED_ARCHITECTURES.get(architecture)
    return (listed_anywhere(architecture) and (first is None or padded_release(version) >= padded_release(first))
            and unlisted_span(architecture, version) is None and retirement(architecture, version) is None
            and not (before_transformers_backend(version) and not listed_by_name(architecture)))


def served_name(names, version: Optional[str]) -> str:
    """Which of a config's `architectures` vLLM `version` (None: PINNED) serves it as, the one rule every release
    follows (registry.py 0.32.0:1323-1374, _ModelRegistry.inspect_model_cls, which ModelConfig calls with the whole
    list, config/model.py 0.32.0:730): the first name the release lists (`lists`; the walk, :1357-1361); where it lists
    none, the first name, which from TRANSFORMERS_BACKEND it tries on its Transformers backend (:1345-1355,
    :1363-1372: architectures[0] alone) and otherwise refuses (:1374, _raise_for_unsupported:
    vllm_config_read.architectures_refusal). Every older release walks alike, with no backend before 0.7.2
    (model_loader.py 0.2.0:50-57 _get_model_architecture; registry.py 0.7.1:382-393 inspect_model_cls, :346-356);
    0.7.2 hands every name to the backend where none is listed, which raises at the first it has no class for
    (model_loader/utils.py 0.7.2:45-74, :92-98), so the first decides there too.
    Not modelled: where no name is in the registry by its own name, 0.32 tries the Transformers backend on the first
    name before a later one served through _normalize_arch (:1345-1355); kvplan takes the walk's."""
    return _first_served(tuple(names), version or PINNED)


@lru_cache(maxsize=256)
def _first_served(names: tuple, release: str) -> str:
    """served_name's walk, once a list and release: a plan asks it hundreds of times, and a config may name
    thousands (a fuzzed one took seconds a plan), each name asked once."""
    return next((name for name in dict.fromkeys(names) if lists(name, release)), names[0] if names else "")


def served_architecture(spec, version: Optional[str] = None) -> str:
    """The architecture vLLM `version`'s registry (None: PINNED) serves `spec` as, which its registry-keyed rules
    (config handlers, runners, encoder-only builds, LoRA, pipeline support) read: of the top-level config's
    `architectures` where it names several (ModelSpec.architectures), served_name's; else the top-level config's
    (ModelSpec.registered_architecture) where a nested language model's config names another, else the one."""
    names = getattr(spec, "architectures", ())
    if len(names) > 1:
        return served_name(names, version)
    return getattr(spec, "registered_architecture", "") or getattr(spec, "architecture", "")


def language_model_architecture(spec, version: Optional[str] = None) -> str:
    """The class vLLM `version` (None: PINNED) builds `spec`'s language model as, which the rules of that model's own
    code read (vllm_e5m2: attention built without quant_config). A wrapper hands its nested config to
    init_vllm_registered_model (models/utils.py 0.32.0:624-643, e.g. llava.py:569-573, internvl.py:618-622,
    nano_nemotron_vl.py:986-990); with_hf_config keeps that config's own `architectures` (config/vllm.py 0.32.0:
    939-952) and the copy resolves them by the registry's walk (model_loader/utils.py :299-307, registry.py
    resolve_model_cls :1411-1415): served_name of the nested list where it names several
    (ModelSpec.language_architectures), else its one (ModelSpec.architecture). Where no nested config names a class
    of its own, the served class is the language model (served_architecture). Rules vLLM keys on the class it
    resolved for the whole model read served_architecture: the copy keeps the top-level model_config.architecture
    (config/vllm.py :953, no new resolution).
    Not modelled: a wrapper that names its language model's class itself (gemma3_mm.py:561-566 Gemma3ForCausalLM,
    qwen2_5_vl.py:1444-1447 Qwen2ForCausalLM) builds that whatever the nested config names; kvplan reads the
    config's."""
    names = getattr(spec, "language_architectures", ())
    if len(names) > 1:
        return served_name(names, version)
    if getattr(spec, "registered_architecture", ""):
        return getattr(spec, "architecture", "")
    return served_architecture(spec, version)


def unlisted_boundaries() -> set:
    """The releases where a dropped architecture's refusal starts or ends (UNLISTED), as (major, minor, patch): the
    last that lists it, the first published after it, the first that lists it again (vllm_remedy.release_boundaries)."""
    found, published = set(), [release_parts(name) for name in PUBLISHED]
    for last, back in UNLISTED.values():
        after = next(parts for parts in published if parts > padded_release(last))
        found.update({padded_release(last), after} | ({padded_release(back)} if back else set()))
    return found


def padded_release(version: str) -> tuple:
    """(major, minor, patch) of a release or of a minor series, which takes its .0 release's rules (0.8 as 0.8.0)."""
    parts = parse_version(version)
    return parts + (0,) * (3 - len(parts))


def unlisted_span(architecture: str, version: str) -> Optional[tuple]:
    """(the last release before `version` that lists `architecture`, the first after it that does or None) where
    `version`'s registry drops it (UNLISTED); None where it lists it or never dropped it."""
    span = UNLISTED.get(architecture)
    if span is None:
        return None
    last, back = span
    asked = padded_release(version)
    if asked <= padded_release(last) or (back is not None and asked >= padded_release(back)):
        return None
    return span
