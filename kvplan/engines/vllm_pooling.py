"""Which architectures vLLM serves with its pooling runner (embedding, classification, reward, ranking models): they
return hidden states or scores, never a generated token.

`--runner auto` (kvplan has no --runner: auto is what it plans) resolves the runner in
ModelConfig._get_default_runner_type (config/model.py 0.11.1:836-858, 0.34.0:1303-1325): a registered architecture
is pooling where its class is a pooling model (the registry's is_pooling_model, asked before is_text_generation_model),
an unregistered one by the first suffix of _SUFFIX_TO_DEFAULTS its name ends with (0.11.1 :1767-1783, 0.34.0
:2384-2401; its "ForTokenClassification" from 0.14.0: kvplan takes it for every release),
and generate where none matches. kvplan holds no registry, so pooling_runner reads the suffixes and two lists of
registered classes whose names say otherwise (the registries of 0.11.0-0.34.0 read by hand, each class's own
is_pooling_model checked in 0.34.0). Not modelled: a repo whose Sentence Transformers modules.json makes vLLM take the
pooling runner first (config/model.py 0.34.0:1309-1311): kvplan reads config.json alone, so such a *ForCausalLM
checkpoint (gte-Qwen2's) is planned as generating; and the speculative heads named *MTPModel / *DraftModel, generating
classes never served as the model itself.

LlamaModel, MistralModel, Qwen2Model, Gemma2Model and DeepseekV3BidirectionalModel stay pooling by their suffix,
although the registry maps them to a generating class (0.34.0 registry.py:240, :247, :251, :233, :232), so that from
config.json alone vLLM picks the generating runner (0.34.0's own _get_default_runner_type, run on each name without a
modules.json, answers "generate"): that runner's *ForCausalLM class cannot load a *Model checkpoint, whose weights have
no "model." prefix (only the pooling adapter loads both, model_executor/models/adapters.py 0.34.0:206-207), so such a
checkpoint is served pooling, by its modules.json or --runner pooling; vLLM's docs list these names as embedding
models (docs/models/pooling_models/embed.md 0.34.0:43-53).
"""

from __future__ import annotations

# _SUFFIX_TO_DEFAULTS's runner by suffix, in its order (the first the name ends with decides)
SUFFIX_RUNNER = (("ForCausalLM", "generate"), ("ForConditionalGeneration", "generate"), ("ChatModel", "generate"),
                 ("LMHeadModel", "generate"), ("ForTextEncoding", "pooling"), ("EmbeddingModel", "pooling"),
                 ("ForSequenceClassification", "pooling"), ("ForTokenClassification", "pooling"),
                 ("ForAudioClassification", "pooling"), ("ForImageClassification", "pooling"),
                 ("ForVideoClassification", "pooling"), ("ClassificationModel", "pooling"),
                 ("ForRewardModeling", "pooling"), ("RewardModel", "pooling"), ("Model", "pooling"))
# Registered pooling classes whose names match no pooling suffix (0.34.0 registry.py at the lines given; the last two
# 0.11.0-0.28.0 only, 0.11.0 :98, :197): masked-LM encoders (:228, :253), ranking and late-interaction models (:263,
# :281-296, :352), token classifiers (:308-309), Terratorch (:276)
POOLING_NAMED = frozenset({
    "BertForMaskedLM", "RobertaForMaskedLM", "HF_ColBERT", "JinaForRanking", "ColModernVBertForRetrieval",
    "ColUltraVBertForRetrieval", "ColPaliForRetrieval", "ColQwen3", "ColQwen3_5", "JinaVLForRanking",
    "ClefFlashForJointSchema", "ClefOmniForJointSchema", "Terratorch", "GritLM", "PrithviGeoSpatialMAE",
})
# Registered generating classes whose names end with "Model" (0.34.0 registry.py at the lines given): ChatGLM's
# (:85) and Aquila's (a Llama alias, 0.11.1 :61 to 0.24.0 :75), and the multimodal ones (:531, :562, :613, :657)
GENERATING_NAMED = frozenset({
    "ChatGLMModel", "AquilaModel", "MiDashengLMModel", "MossAudioModel", "Qwen2_5OmniModel", "UltravoxModel",
})


def suffix_runner(architecture: str) -> str:
    """The runner _SUFFIX_TO_DEFAULTS gives a name ("generate" where no suffix matches, as vLLM's fallback)."""
    return next((runner for suffix, runner in SUFFIX_RUNNER if architecture.endswith(suffix)), "generate")


def pooling_runner(spec) -> bool:
    """Whether vLLM serves `spec` with its pooling runner (the module's docstring), by the architecture its registry
    looks up (vllm.served_architecture, the top-level config's). No release read differs."""
    from .vllm import served_architecture

    architecture = served_architecture(spec)
    if architecture in POOLING_NAMED:
        return True
    return architecture not in GENERATING_NAMED and suffix_runner(architecture) == "pooling"


def pooling_note(spec) -> str:
    """What kvplan says of a pooling model's speed figures ('' for a generating one): it generates no tokens."""
    if not pooling_runner(spec):
        return ""
    from .vllm import served_architecture

    return (f"{served_architecture(spec)} runs on vLLM's pooling runner (embedding, classification or reward): it "
            f"generates no tokens, so its ITL and tok/s are those of a generating model of its shape, and the time to "
            f"first token is the whole request")
