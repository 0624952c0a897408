"""Which architectures vLLM serves with its pooling runner (embedding, classification, reward, ranking models): they
return hidden states or scores, never a generated token.

`--runner auto` (kvplan has no --runner: auto is what it plans) resolves the runner in
ModelConfig._get_default_runner_type (config/model.py 0.11.1:836-858, 0.34.0:1303-1325). First, before any
architecture, a Sentence Transformers repo whose modules.json lists a Pooling module is pooling ("Some Sentence
Transformers models use *ForCausalLM archs": `if get_pooling_config(self.model, self.revision): return "pooling"`,
0.11.0:752, 0.14.0:771, 0.20.0:843, 0.24.0:877, 0.28.0:1106, 0.32.0:1277, 0.34.0:1310); get_pooling_config returns a
non-empty dict whenever such a module is listed, whatever the module's own config.json says, and None otherwise
(transformers_utils/config.py 0.11.0:711-762, 0.34.0:1057-1138; model/st_modules.py reads the file). The type names
it looks for change once (ST_POOLING_TYPES), so gte-Qwen2-7B-instruct's and Qwen3-Embedding's *ForCausalLM
checkpoints are pooling. Then a registered architecture is pooling where its class is a pooling model (the
registry's is_pooling_model, asked before is_text_generation_model), an unregistered one by the first suffix of
_SUFFIX_TO_DEFAULTS its name ends with (0.11.1 :1767-1783, 0.34.0 :2384-2401; its "ForTokenClassification" from
0.14.0: kvplan takes it for every release), and generate where none matches. kvplan holds no registry, so
pooling_runner reads the suffixes and two lists of registered classes whose names say otherwise (the registries of
0.11.0-0.34.0 read by hand, each class's own is_pooling_model checked in 0.34.0). Not modelled: the speculative
heads named *MTPModel / *DraftModel, generating classes never served as the model itself; and 0.11.0-0.13.0's
get_pooling_config failing at start-up where the Pooling module's config.json is missing or names a mode it does not
know (0.11.0:751-757, :765-782; no `or {}` until 0.14.0:800), which kvplan, not reading that file, plans as pooling.

LlamaModel, MistralModel, Qwen2Model, Gemma2Model and DeepseekV3BidirectionalModel stay pooling by their suffix,
although the registry maps them to a generating class (0.34.0 registry.py:240, :247, :251, :233, :232), so that from
config.json alone vLLM picks the generating runner (0.34.0's own _get_default_runner_type, run on each name without a
modules.json, answers "generate"): that runner's *ForCausalLM class cannot load a *Model checkpoint, whose weights have
no "model." prefix (only the pooling adapter loads both, model_executor/models/adapters.py 0.34.0:206-207), so such a
checkpoint is served pooling, by its modules.json or --runner pooling; vLLM's docs list these names as embedding
models (docs/models/pooling_models/embed.md 0.34.0:43-53).
"""

from __future__ import annotations

from typing import Optional

from ..model.st_modules import POOLING_TYPES
from .vllm_versions import PINNED, release_rule

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


# The Pooling module type names get_pooling_config looks for in modules.json, by release, newest first: the set
# _ST_POOLING_MODULE_TYPES from 0.30.0 (transformers_utils/config.py 0.30.0:56-59, 0.34.0:97-100), before it
# sentence-transformers' "models.Pooling" alone (0.11.0:742, 0.14.0:781, 0.29.0:858)
ST_POOLING_TYPES = (((0, 30), frozenset(POOLING_TYPES), "transformers_utils/config.py 0.30.0:56-59"),
                    ((0, 0), frozenset(POOLING_TYPES[:1]), "transformers_utils/config.py 0.29.0:858"))


def suffix_runner(architecture: str) -> str:
    """The runner _SUFFIX_TO_DEFAULTS gives a name ("generate" where no suffix matches, as vLLM's fallback)."""
    return next((runner for suffix, runner in SUFFIX_RUNNER if architecture.endswith(suffix)), "generate")


def st_pooling_runner(spec, version: Optional[str] = None) -> bool:
    """Whether the modules.json beside the model lists a Pooling module vLLM `version` (None: PINNED) looks for:
    then it takes the pooling runner before looking at the architecture (the module's docstring)."""
    listed = getattr(spec, "st_pooling", ())  # a stand-in spec with an architecture alone lists none
    return bool(listed) and bool(release_rule(ST_POOLING_TYPES, version or PINNED).intersection(listed))


def pooling_runner(spec, version: Optional[str] = None) -> bool:
    """Whether vLLM `version` (None: PINNED) serves `spec` with its pooling runner (the module's docstring): a Pooling
    module its modules.json lists first, then the architecture its registry looks up (vllm.served_architecture, the
    top-level config's), where no release read differs."""
    from .vllm import served_architecture

    if st_pooling_runner(spec, version):
        return True
    architecture = served_architecture(spec)
    if architecture in POOLING_NAMED:
        return True
    return architecture not in GENERATING_NAMED and suffix_runner(architecture) == "pooling"


def pooling_note(spec, version: Optional[str] = None) -> str:
    """What kvplan says of a pooling model's speed figures ('' for a generating one): it generates no tokens; and,
    where the runner came from modules.json, so."""
    if not pooling_runner(spec, version):
        return ""
    from .vllm import served_architecture

    why = (", because its modules.json lists a Sentence Transformers Pooling module, which vLLM looks for before the "
           "architecture (config/model.py _get_default_runner_type)" if st_pooling_runner(spec, version) else "")
    return (f"{served_architecture(spec)} runs on vLLM's pooling runner (embedding, classification or reward){why}: "
            f"it generates no tokens, so its ITL and tok/s are those of a generating model of its shape, and the "
            f"time to first token is the whole request")
