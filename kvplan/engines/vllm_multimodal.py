"""Which architectures vLLM serves as multimodal, by its registry rather than by the config's shape.

vLLM builds MultiModalConfig (the media limits, processor kwargs, encoder TP mode, profiling switches) only where
the model class supports multimodal input (config/model.py 0.32.0:817-868, `self._model_info.supports_multimodal`:
the class's SupportsMultiModal interface, as model_executor/models/registry.py inspects it). Which classes those are
is the registry's answer, not a vision_config in the config: Phi-3-vision's config keeps its tower under
img_processor, Molmo's and Ovis's under their own keys, yet their classes are multimodal; ChatGLM's
...ForConditionalGeneration is a text class.

registry_multimodal answers as every registry 0.11.0-0.34.0 does (0.15.0 and 0.15.1 from their wheels): every
...ForConditionalGeneration of theirs is a multimodal class but TEXT_CONDITIONAL, and MULTIMODAL_NAMED lists the
multimodal classes of other names. No architecture is a multimodal class in one of these releases and a text one in
another (their _MULTIMODAL_MODELS and _TEXT_GENERATION_MODELS keys diffed release by release, the text list's classes
read for SupportsMultiModal), so the answer needs no release; a release that does not list an architecture refuses it
before any of this.
"""

from __future__ import annotations

from typing import Optional

# The ...ForConditionalGeneration keys of _TEXT_GENERATION_MODELS whose class is not SupportsMultiModal: ChatGLM's
# (0.32.0 registry.py:83 -> chatglm.py:432 ChatGLMForCausalLM; 0.11.0 :64, 0.34.0 :86). InklingForConditionalGeneration
# sits in the same dict (0.32.0 :168-171) but its class is SupportsMultiModal (models/inkling/amd/model.py:449).
TEXT_CONDITIONAL = frozenset({"ChatGLMForConditionalGeneration"})
# The multimodal classes whose names do not end in ForConditionalGeneration: the other keys of _MULTIMODAL_MODELS,
# 0.32.0 registry.py:339-623 at the lines given, and those only other releases list (release: line); then the
# _TEXT_GENERATION_MODELS keys whose class is SupportsMultiModal.
MULTIMODAL_NAMED = frozenset({
    "DeepseekVLV2ForCausalLM",  # :366
    "DeepseekOCRForCausalLM", "DeepseekOCR2ForCausalLM",  # :367, :368
    "DeepseekV41ForCausalLM", "Dots3NoteForCausalLM", "UnlimitedOCRForCausalLM", "DotsOCRForCausalLM",  # :373-382
    "DiffusionGemmaForBlockDiffusion",  # :409
    "GLM4VForCausalLM",  # :419
    "H2OVLChatModel", "InternVLChatModel",  # :439, :440
    "MoonshotKimiaForCausalLM",  # :478
    "Llama_Nemotron_Nano_VL",  # :489
    "MiDashengLMModel", "MiMoV2OmniForCausalLM",  # :507, :508
    "MiniCPMO", "MiniCPMV",  # :513, :514
    "MolmoForCausalLM", "Moondream3ForCausalLM", "MossAudioModel", "HfMoondream",  # :527, :529, :530, :531
    "NemotronH_Nano_VL_V2", "NemotronH_Nano_Omni_Reasoning_V3", "NemotronH_Super_Omni_Reasoning_V3",  # :532-534
    "NemotronH_Omni_Reasoning_V3", "NVLM_D",  # :535, :536
    "OpenVLAForActionPrediction",  # :543
    "Ovis", "Ovis2_5", "Ovis2_6ForCausalLM", "Ovis2_6_MoeForCausalLM",  # :544-547
    "Phi3VForCausalLM", "Phi4ForCausalLMV", "Phi4MMForCausalLM",  # :556-558
    "Qwen2_5OmniModel",  # :573
    "Qwen3ASRRealtimeGeneration",  # :589
    "SkyworkR1VChatModel",  # :605
    "UltravoxModel",  # :610
    "VoxtralRealtimeGeneration",  # :612
    # other releases: 0.11.0:226 to 0.25.1:382; 0.11.0:263 to 0.12.0:377; 0.14.0:437 to 0.15.1:448; 0.20.0:362 to
    # 0.28.0:361; 0.33.0:354 and 0.34.0:361; 0.33.0:648 and 0.34.0:670
    "FuyuForCausalLM", "Phi4MultimodalForCausalLM", "VoxtralStreamingGeneration", "Cheers", "Alpamayo2Super",
    "RadioMBartPrefixForCausalLM",
    # _TEXT_GENERATION_MODELS, SupportsMultiModal classes: 0.11.0:102 to 0.28.0:132 (hyperclovax_vision.py 0.28.0:569);
    # 0.32.0:134 (hyperclovax_vision_v2.py:364); 0.32.0:182 (muse_glimmer.py:1377)
    "HCXVisionForCausalLM", "HCXVisionV2ForCausalLM", "MuseGlimmerForCausalLM",
})


def registry_multimodal(spec, version: Optional[str] = None) -> bool:
    """Whether vLLM `version` (None: PINNED) serves `spec` as a multimodal class (the module's docstring): by the
    architecture its registry looks up (vllm_registry.served_architecture, the top-level config's)."""
    from .vllm_registry import served_architecture

    architecture = served_architecture(spec, version)
    if architecture in MULTIMODAL_NAMED:
        return True
    return architecture.endswith("ForConditionalGeneration") and architecture not in TEXT_CONDITIONAL


# Up to 0.10.0, ModelConfig._init_multimodal_config refused a text class given a media limit or processor kwargs, in
# this order ("`limit_mm_per_prompt` is only supported for multimodal models.", the same words for
# mm_processor_kwargs; users met it on 0.8.5 and 0.9.2, vllm#21120), testing each for truth (an empty mapping, its
# default, passes); 0.11.0 builds MultiModalConfig for a multimodal class alone and says nothing otherwise
# (config/model.py 0.11.0:603-630). No source before 0.11.0 is read here: 0.10.1 as the first release that drops
# them silently is an unconfirmed belief (the raise in 0.10.0, not in 0.10.1), kept as uncertain. Those releases
# have no other multimodal flag kvplan models (skip_mm_profiling from 0.10.1, mm_encoder_tp_mode from 0.10.2,
# language_model_only from 0.17: vllm_engine.FLAG_SINCE).
DROPPED_SINCE = (0, 10, 1)
REFUSED_FLAGS = (("mm_limits", "limit_mm_per_prompt"), ("mm_processor_kwargs", "mm_processor_kwargs"))
REMEDY_FLAGS = (("engine", "--engine"), ("limit_mm_per_prompt", "--limit-mm-per-prompt"),
                ("mm_processor_kwargs", "--mm-processor-kwargs"))


def refused_flag(spec, version: str, flags) -> str:
    """The multimodal flag vLLM `version` refuses `spec`, a text class, for (the first of REFUSED_FLAGS given with a
    non-empty value), else ''."""
    from .vllm_versions import parse_version

    if parse_version(version) >= DROPPED_SINCE or registry_multimodal(spec, version):
        return ""
    return next((field for name, field in REFUSED_FLAGS if not _empty(getattr(flags, name))), "")


def _empty(value) -> bool:
    """A flag not given, or given as an empty mapping ('{}'), which vLLM's truth test lets pass."""
    return value is None or getattr(value, "empty", False)


def text_only_refusal(spec, version: str, flags):
    """vLLM's start-up refusal of a media flag on a text class up to 0.10.0 (DROPPED_SINCE), at fault the release:
    from 0.10.1 vLLM drops the flag instead (kvplan notes it: engines.unused_media_note); or None."""
    from .figures import Refusal

    field = refused_flag(spec, version, flags)
    if not field:
        return None
    first = ".".join(map(str, DROPPED_SINCE))
    return Refusal(f"`{field}` is only supported for multimodal models.", None, configuration=True, field="engine",
                   options=(f"vllm=={first}",), onward="newer", also=f"leave {dict(REMEDY_FLAGS)[field]} out",
                   remedy_flags=REMEDY_FLAGS)
