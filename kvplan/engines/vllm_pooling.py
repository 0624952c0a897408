"""Which architectures vLLM serves with its pooling runner (embedding, classification, reward, ranking models): they
return hidden states or scores, never a generated token.

`--runner auto` (the default; --runner / --convert given: engines/vllm_runner_flag.py) resolves the runner in
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
heads named *MTPModel / *DraftModel, generating classes never served as the model itself.

The Pooling module's own config.json (model/st_modules.py) names a pooling type that vLLM's pooler takes over the
class's default (config/model.py 0.11.0:566-575, 0.34.0:807-821): each release reads it its own way (ST_MODE_RULES;
st_pooling_types, st_legacy_pooling_type), which vllm_pooling_budget.incremental_prefill turns into chunked prefill
and prefix caching; 0.11.0-0.13.0 stop at start-up where that file is missing or first names a type they do not
know (0.11.0:751-757, :765-782; no `or {}` until 0.14.0:800): st_pooling_refusal says so in one line.

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
from .vllm_versions import PINNED, parse_version, release_rule

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
# Pooling classes vLLM also lists among its generating models, so `--runner generate` builds them (ModelConfig's
# is_generative_model): GritLM, a LlamaForCausalLM that sets is_causal false on the pooling runner only (registry.py
# 0.11.0:98 and :167, 0.28.0:127 and :231; gritlm.py 0.11.0:219, :243-247). --runner auto picks pooling.
BOTH_RUNNERS = frozenset({"GritLM"})
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


# How a release reads the Pooling module's config.json fields (st_modules.pooling_mode_fields), newest first:
# "named" (0.30.0:946-949, 0.34.0:1113-1116: a string "pooling_mode", or a key set to true), "flags" (0.14.0:805-813,
# 0.29.0:882-890: keys set to true; each a sequence or token type it knows sets that type, the last one read wins,
# others are skipped: config/pooler.py 0.14.0:14-18 SEQ_POOLING_TYPES CLS / LAST / MEAN, TOK_POOLING_TYPES ALL /
# STEP), "first" (0.11.0:751-762, 0.13.0:774-786: the first key set to true names the one pooling_type, which must be
# one of get_pooling_config_name's five, 0.11.0:765-782, else NotImplementedError; no file is an AttributeError,
# None having no .items(), until 0.14's `or {}`)
ST_MODE_RULES = (((0, 30), "named", "transformers_utils/config.py 0.30.0:946-949"),
                 ((0, 14), "flags", "transformers_utils/config.py 0.14.0:800-813"),
                 ((0, 0), "first", "transformers_utils/config.py 0.11.0:751-762"))
SEQ_TYPES, TOK_TYPES = ("CLS", "LAST", "MEAN"), ("ALL", "STEP")
LEGACY_TYPES = ("LAST", "ALL", "CLS", "STEP", "MEAN")  # get_pooling_config_name's (0.11.0:775, 0.13.0:799)
CONVERT_PICKS_RUNNER_SINCE = (0, 22)  # _get_runner_type: a convert makes auto pooling (0.22.0 config/model.py:935)
# from 0.13 _get_convert_type warns that --convert reward is deprecated and returns "embed": the embed adapter, not the
# reward one (config/model.py 0.13.0:813-818, 0.14.0:845-850, 0.15.0 and 0.15.1 :857-862; 0.12.0 model_loader/
# utils.py:210-212 still builds as_reward_model)
REWARD_AS_EMBED_SINCE = (0, 13)


def pooling_type_name(field: str) -> str:
    """A Sentence Transformers pooling field or mode as vLLM names its pooling type (parse_pooling_type,
    transformers_utils/config.py 0.14.0:820-831, 0.34.0:1141-1152; get_pooling_config_name before, 0.11.0:765-782):
    without "pooling_mode_", up to its first "_", "lasttoken" as "last", upper-case ("pooling_mode_mean_tokens":
    MEAN, "pooling_mode_lasttoken": LAST, "pooling_mode_max_tokens": MAX, which names no vLLM type)."""
    name = field.replace("pooling_mode_", "") if "pooling_mode_" in field else field
    name = name.split("_", 1)[0]
    return ("last" if "lasttoken" in name else name).upper()


_NOT_LISTED = object()


def _read_module(spec, version: str):
    """The pooling_mode_fields of the Pooling module vLLM `version` reads (the first item of a type it looks for,
    st_modules.py), None where it has no config.json; _NOT_LISTED where modules.json lists none it looks for."""
    looked_for = release_rule(ST_POOLING_TYPES, version)
    listed = zip(getattr(spec, "st_pooling", ()), getattr(spec, "st_pooling_modes", ()))
    return next((fields for kind, fields in listed if kind in looked_for), _NOT_LISTED)


def st_pooling_types(spec, version: Optional[str] = None) -> tuple:
    """(seq, tok): the sequence and token pooling types vLLM `version` (0.14 on; None: PINNED) takes from the
    Sentence Transformers Pooling module's config.json over the class's defaults (config/model.py 0.14.0:537-549,
    0.34.0:807-821: the file's values first, the class's where it sets none), each None where it names none."""
    fields = _read_module(spec, version or PINNED)
    if fields is _NOT_LISTED or not fields:
        return None, None
    named = release_rule(ST_MODE_RULES, version or PINNED) == "named"
    seq = tok = None
    for key, value in fields:
        if value is True or (named and key == "pooling_mode"):
            kind = pooling_type_name(value if isinstance(value, str) else key)
            seq, tok = (kind if kind in SEQ_TYPES else seq), (kind if kind in TOK_TYPES else tok)
    return seq, tok


def st_legacy_pooling_type(spec, version: str) -> Optional[str]:
    """The one pooling_type vLLM `version` (0.11-0.13) takes from the Pooling module's config.json over the class's
    (config/model.py 0.11.0:566-575), None where it names none, or where that release stops on the file instead
    (st_pooling_refusal says why)."""
    if st_pooling_refusal(spec, version):
        return None
    fields = _read_module(spec, version)
    first = next((key for key, value in fields or () if value is True), None) if fields is not _NOT_LISTED else None
    return None if first is None else pooling_type_name(first)


def st_pooling_refusal(spec, version: Optional[str]) -> Optional[str]:
    """Why vLLM `version` (None: PINNED) stops at start-up on the Sentence Transformers Pooling module's config.json
    (0.11-0.13 only, ST_MODE_RULES "first": no such file, or a first key set to true naming a type it does not know);
    None where it starts. Said before any figure, as vLLM does before profiling (ModelConfig)."""
    version = version or PINNED
    if release_rule(ST_MODE_RULES, version) != "first" or not pooling_runner(spec, version):
        return None  # the file is read for the pooler only (config/model.py 0.11.0:566-575): --runner generate has none
    fields = _read_module(spec, version)
    if fields is _NOT_LISTED:
        return None
    path = f"{getattr(spec, 'name', 'the model')}'s Sentence Transformers Pooling module"
    if fields is None:
        return (f"{path} has no config.json, which vLLM {version} reads for its pooling type and stops without "
                f"(transformers_utils/config.py get_pooling_config: None has no .items(), until 0.14); add it, or "
                f"plan a later release.")
    first = next((key for key, value in fields if value is True), None)
    if first is not None and pooling_type_name(first) not in LEGACY_TYPES:
        return (f"{path}'s config.json names {first!r} first, pooling type {pooling_type_name(first)}, which vLLM "
                f"{version} does not know (get_pooling_config_name: NotImplementedError; it knows "
                f"{', '.join(LEGACY_TYPES)}); plan 0.14 or later, which skips it.")
    return None


def refuse_st_pooling(spec, version: Optional[str]) -> None:
    """Raise st_pooling_refusal's line where vLLM `version` stops on the Pooling module's config.json (estimate and
    check, before any figure, beside vllm_config_read.refuse_encoder_only)."""
    from ..errors import KvplanError

    refusal = st_pooling_refusal(spec, version)
    if refusal:
        raise KvplanError(refusal)


def suffix_runner(architecture: str) -> str:
    """The runner _SUFFIX_TO_DEFAULTS gives a name ("generate" where no suffix matches, as vLLM's fallback)."""
    return next((runner for suffix, runner in SUFFIX_RUNNER if architecture.endswith(suffix)), "generate")


def st_pooling_runner(spec, version: Optional[str] = None) -> bool:
    """Whether the modules.json beside the model lists a Pooling module vLLM `version` (None: PINNED) looks for:
    then it takes the pooling runner before looking at the architecture (the module's docstring)."""
    listed = getattr(spec, "st_pooling", ())  # a stand-in spec with an architecture alone lists none
    return bool(listed) and bool(release_rule(ST_POOLING_TYPES, version or PINNED).intersection(listed))


def pooling_runner(spec, version: Optional[str] = None) -> bool:
    """Whether vLLM `version` (None: PINNED) serves `spec` with its pooling runner: the one its --runner / --convert
    pick (spec.runner / spec.convert, vllm_runner_flag.asked_runner), else --runner auto's (auto_pooling_runner)."""
    asked = asked_runner(spec, version)
    return asked == "pooling" if asked else auto_pooling_runner(spec, version)


def runner_name(spec, version: Optional[str] = None) -> str:
    """The runner vLLM `version` (None: PINNED, as --engine none plans) serves `spec` with, as the JSON names it (each
    plan's `runner`, the engine block's): "pooling" or "generate"."""
    return "pooling" if pooling_runner(spec, version) else "generate"


def pooling_field(spec, version: Optional[str] = None) -> Optional[str]:
    """The runner flag that put `spec` on vLLM `version`'s pooling runner (None: PINNED), as a field: "runner" where
    --runner pooling is given, "convert" where a --convert under --runner auto picks it (asked_runner, 0.22 on); None
    where --runner auto leaves it to modules.json or the architecture, or the runner is not pooling. --pooler-config
    never picks the runner: _get_runner_type reads --runner, then --convert, then the model alone (config/model.py
    0.34.0:1327-1350, _get_default_runner_type :1303-1325), so check's pooling note points at one of these keys."""
    if asked_runner(spec, version) != "pooling":
        return None
    return "runner" if getattr(spec, "runner", "auto") == "pooling" else "convert"


def asked_runner(spec, version: Optional[str] = None) -> Optional[str]:
    """The runner `spec`'s --runner / --convert pick under vLLM `version` (None: PINNED): "generate" or "pooling",
    None where --runner auto leaves it to the architecture (vllm_pooling.pooling_runner)."""
    runner, convert = getattr(spec, "runner", "auto"), getattr(spec, "convert", "auto")
    if runner != "auto":
        return runner
    if convert not in ("auto", "none") and parse_version(version or PINNED) >= CONVERT_PICKS_RUNNER_SINCE:
        return "pooling"
    return None


def auto_pooling_runner(spec, version: Optional[str] = None) -> bool:
    """--runner auto's answer (the module docstring): a Pooling module its modules.json lists first, then the
    architecture (architecture_runner)."""
    return st_pooling_runner(spec, version) or architecture_runner(spec, version) == "pooling"


def architecture_runner(spec, version: Optional[str] = None) -> str:
    """The runner vLLM's registry gives `spec`'s architecture (vllm_registry.served_architecture at `version`, None:
    PINNED; the top-level config's), where no release read differs: "pooling" or "generate"."""
    from .vllm_registry import served_architecture

    architecture = served_architecture(spec, version)
    if architecture in POOLING_NAMED:
        return "pooling"
    return "generate" if architecture in GENERATING_NAMED else suffix_runner(architecture)


def pooling_note(spec, version: Optional[str] = None, spell=None) -> str:
    """What kvplan says of a pooling model's speed figures ('' for a generating one): it generates no tokens; and,
    where the runner came from the runner flags (named as `spell` writes a field: a flag, a deployments file's key)
    or modules.json, so."""
    if not pooling_runner(spec, version):
        return ""
    from .vllm_registry import served_architecture

    why = _pooling_why(spec, version, spell)
    return (f"{served_architecture(spec, version)} runs on vLLM's pooling runner (embedding, classification or "
            f"reward){why}: it generates no tokens, so its ITL and tok/s are those of a generating model of its "
            f"shape, and the time to first token is the whole request")


def _pooling_why(spec, version: Optional[str], spell=None) -> str:
    """Why the pooling runner, where not by the architecture alone: the runner flags, or the modules.json."""
    if asked_runner(spec, version) == "pooling" and architecture_runner(spec, version) == "generate":
        convert = getattr(spec, "convert", "auto")
        adapter = convert if convert in ("classify", "reward") else "embed"
        warned = ""
        if adapter == "reward" and parse_version(version or PINNED) >= REWARD_AS_EMBED_SINCE:
            adapter, warned = "embed", ("warns that --convert reward is deprecated (\"Please use `--convert embed` "
                                        "instead.\", config/model.py _get_convert_type) and ")
        score = " (its score head, num_labels x hidden float32, is not priced)" if adapter == "classify" else ""
        return (f", because of {runner_words(spec, spell)}: vLLM {warned}converts it with its {adapter} adapter "
                f"(model_executor/models/adapters.py), which builds no LM head{score}")
    if asked_runner(spec, version) is None and st_pooling_runner(spec, version):
        return (", because its modules.json lists a Sentence Transformers Pooling module, which vLLM looks for before "
                "the architecture (config/model.py _get_default_runner_type)")
    return ""


def runner_words(spec, spell=None) -> str:
    """The runner flags `spec` carries, named as `spell` writes a field (None: vLLM's flags), '' for auto / auto:
    "--runner pooling and --convert reward" ("runner pooling and convert reward" as a deployments file's keys)."""
    runner, convert = getattr(spec, "runner", "auto"), getattr(spec, "convert", "auto")
    name = spell or (lambda field: f"--{field}")
    return " and ".join(f"{name(field)} {value}" for field, value in (("runner", runner), ("convert", convert))
                        if value != "auto")
