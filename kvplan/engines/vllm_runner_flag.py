"""vLLM's `--runner {auto,generate,pooling}` and `--convert {auto,none,embed,classify,reward}`: which runner serves the
model, and through which pooling adapter. ModelSpec.runner / .convert carry them (the commands set them where they
apply the flags); vllm_pooling.pooling_runner answers from them (asked_runner), so every budget rule reads one
runner; this module checks the choices and says what vLLM refuses.

Read in config/model.py of 0.11.0, 0.20.0, 0.32.0 and 0.34.0 (ModelConfig.__post_init__, _get_runner_type,
_get_convert_type), and checked against vLLM 0.34.0's own ModelConfig on Qwen3-8B's config.json:
- the choices: RunnerOption auto / generate / pooling / draft (0.11.0:61, 0.34.0:91; "draft" is a speculative
  model's draft runner, which kvplan plans through --speculative-config); ConvertType none / embed / classify /
  reward up to 0.15.1 (0.11.0:62, 0.14.0:78, 0.15.0 and 0.15.1 :78), without reward from 0.16.0 (:77), so argparse
  refuses it there. The older --task (TaskOption, 0.11.0:64) is deprecated through 0.12.0 and gone in 0.13.0: kvplan
  has none.
- `--runner auto` resolves as before (vllm_pooling.pooling_runner); from 0.22 a --convert other than auto / none makes
  it pooling (_get_runner_type, 0.22.0:935, 0.34.0:1336-1339); before, auto stays the architecture's runner.
- `--runner pooling` on a generating class converts it (model_loader/utils.py 0.34.0:326-336: as_embedding_model /
  as_seq_cls_model, 0.11.0:199-211 also as_reward_model) with --convert auto resolved by _get_default_convert_type
  (0.34.0:1351-1380): a registered generating class matches no pooling suffix, so "embed". The adapters declare no
  pooling type (adapters.py 0.11.0:236-410, 0.34.0:273-470: no @default_pooling_type), so the interface's default
  applies (LAST / ALL; 0.11.0 interfaces_base.py:144 LAST), as vllm_pooling_budget.CLASS_POOLING's DEFAULT_POOLING:
  chunked prefill and prefix caching stay on (0.34.0 ModelConfig on Qwen3ForCausalLM --runner pooling: LAST / ALL,
  both supported). The adapters build no LM head (vllm_pooling_budget.without_lm_head); classify adds a score head,
  num_labels x hidden float32 (adapters.py 0.34.0:388-396), a few KiB, not priced.
- `--runner pooling --convert none` on a generating class: "This model does not support `--runner pooling`. ..."
  (0.11.0:533-542, 0.34.0:751-759), the converts listed by _RUNNER_CONVERTS, with reward up to 0.18 (0.16.0:90 and
  0.18.0:91 still list it where ConvertType no longer does; 0.19.0:96 not).
- `--runner generate` on a class vLLM registers as pooling only: "This model does not support `--runner generate`."
  up to 0.21 (0.11.0:527-532, 0.21.0:552), "Embedding models do not support `--runner generate`. ..." from 0.22
  (0.22.0:594, 0.34.0:738-744). On a pooling name the registry builds from a generating class
  (*ForSequenceClassification, *Model: registry.py 0.34.0:1420-1444 _normalize_arch), ModelConfig answers
  is_text_generation_model from that class and lets it through, with no generating class of the name: 0.34.0 falls
  back to the Transformers backend's TransformersForCausalLM (measured), whose LM head such a checkpoint does not
  ship (it fails at load, not read further); kvplan plans neither.
  On a generating class served pooling by its modules.json only, vLLM generates: the LM head is back.
- a --convert on the generate runner wraps the class all the same (model_loader/utils.py 0.34.0:326-336) while
  the runner samples from the LM head the adapter drops; and a --convert other than the suffix's on an unregistered
  pooling name resolves the Transformers backend's class (0.34.0: TransformersForSequenceClassification, CLS,
  encoder-only): kvplan models neither, and says so.
kvplan reads these flags from 0.11 on (the releases it has read).
"""

from __future__ import annotations

from typing import Optional

from ..errors import FieldError, RefusedInput, quote
from .vllm_pooling import BOTH_RUNNERS, CONVERT_PICKS_RUNNER_SINCE, POOLING_NAMED, architecture_runner, pooling_runner
from .vllm_versions import PINNED, parse_version

RUNNERS = ("auto", "generate", "pooling")
CONVERTS = ("auto", "none", "embed", "classify", "reward", "mm_encoder_only")
REWARD_UNTIL = (0, 16)  # ConvertType lists "reward" up to 0.15.1 (config/model.py 0.15.1:78), not in 0.16.0 (:77)
REWARD_LISTED_UNTIL = (0, 19)  # _RUNNER_CONVERTS["pooling"] keeps "reward" to 0.18.0 (:91), not in 0.19.0 (:96)
EMBEDDING_WORDS_SINCE = (0, 22)  # "Embedding models do not support ..." (0.22.0 config/model.py:594)
FLAGS_SINCE = (0, 11)  # the first release kvplan has read these flags in
REWARD_SUFFIX_UNTIL = (0, 13)  # _SUFFIX_TO_DEFAULTS: *RewardModel -> reward up to 0.12.0 (:1897-1898), embed 0.13.0 on
# ConvertType lists "mm_encoder_only" in 0.14.0-0.15.1 only (config/model.py 0.13.0:74 not, 0.14.0 and 0.15.1 :78,
# 0.16.0:77 not). 0.14: model_loader/utils.py 0.14.0:205-209 wraps the class in as_mm_encoder_only_model, which
# returns a class without embed_multimodal unchanged (adapters.py 0.14.0:534-540: a text model is served as it is),
# builds a multimodal one without its language model (:552-575), or raises a TypeError where the class names no
# language model (get_language_model_spec, :542-550; interfaces.py 0.14.0:158-163 (None, None) by default). 0.15.0 /
# 0.15.1 warn it is deprecated and turn it into --convert none with --mm-encoder-only (config/model.py 0.15.0:502-509),
# which only a multimodal model's config carries (:577-597): its language model is not built (interfaces.py
# 0.15.0:199-211). An encoder-only instance keeps no KV cache: kvplan plans it for a text model only (as none).
MM_ENCODER_ONLY = ((0, 14), (0, 16))  # (first release, first release without)
# the releases at which these rules change, for the remedy search (vllm_engine.releases): REWARD_UNTIL among them, for
# a remedy's closed run ends at the first boundary that refuses (0.16.0 for --convert reward)
BOUNDARIES = (FLAGS_SINCE, REWARD_SUFFIX_UNTIL, REWARD_UNTIL, REWARD_LISTED_UNTIL, EMBEDDING_WORDS_SINCE,
              CONVERT_PICKS_RUNNER_SINCE, *MM_ENCODER_ONLY)
# pooling classes vLLM registers under their own name (0.34.0 registry.py: _REWARD_MODELS :300-304 and the classes
# vllm_pooling.POOLING_NAMED / vllm_pooling_budget.CLASS_POOLING list); the adapters leave them as they are
# (adapters.py 0.34.0 as_embedding_model: `if is_pooling_model(cls): return cls`)
REWARD_CLASSES = frozenset({"InternLM2ForRewardModel", "Qwen2ForRewardModel", "Qwen2ForProcessRewardModel"})
# Registered pooling classes that subclass a generating one, so ModelConfig takes them as generating (is_text_generation
# _model: compute_logits inherited) and `--runner generate` reaches the class, whose __init__ asserts a pooler config,
# which that runner leaves None (config/model.py 0.20.0:580-582 sets one for the pooling runner only): class -> where.
POOLING_SUBCLASSES = {
    "JambaForSequenceClassification": "jamba.py 0.11.0:559 JambaForSequenceClassification(JambaForCausalLM), :581 the "
                                      "assert (0.20.0:584, :605; 0.34.0:501, :522); registry.py 0.11.0:171, 0.20.0:318",
}


def runner_choice(value) -> str:
    """vLLM's --runner: auto, generate or pooling; FieldError('runner') naming the valid values otherwise."""
    return _choice("runner", value, RUNNERS, " (vLLM's --runner; its draft runner is a speculative model's draft, "
                                             "which kvplan plans through speculative_config)", ("speculative_config",))


def convert_choice(value) -> str:
    """vLLM's --convert: auto, none, embed, classify, reward or mm_encoder_only (reward up to vLLM 0.15, mm_encoder_only
    in 0.14-0.15 only: checked with the release)."""
    return _choice("convert", value, CONVERTS, " (vLLM's --convert)")


def _choice(field: str, value, valid: tuple, whose: str, names: tuple = ()) -> str:
    """`value` as vLLM's argparse takes it: one of its choices exactly (engine/arg_utils.py 0.11.0, 0.34.0
    literal_to_kwargs: `choices`, type str), so POOLING or " embed" is refused as vLLM refuses it ("argument
    --runner: invalid choice: 'POOLING' (choose from ...)"; measured on 0.11.0, 0.14.1, 0.20.0 and 0.34.0)."""
    if not isinstance(value, str) or value not in valid:
        hint = "; vLLM takes them exactly as written" if isinstance(value, str) and value.strip().lower() in valid \
            else ""
        raise FieldError(field, f"must be one of {', '.join(valid)}{whose}, got {quote(value)}{hint}.", names)
    return value


def _registered_pooling(architecture: str) -> bool:
    """Whether vLLM registers `architecture` as a pooling class of its own (module docstring)."""
    from .vllm_pooling_budget import CLASS_POOLING

    return architecture in POOLING_NAMED or architecture in CLASS_POOLING or architecture in REWARD_CLASSES


def _suffix_convert(architecture: str, release: tuple) -> str:
    """The convert _SUFFIX_TO_DEFAULTS gives a pooling name (0.34.0 config/model.py:2384-2401): classify for the
    classification suffixes, reward for the reward ones up to 0.12 (0.11.0:1544-1545, 0.12.0:1897-1898; embed from
    0.13.0:1813-1814), embed for the rest."""
    if architecture.endswith(("Classification", "ClassificationModel")):
        return "classify"
    if architecture.endswith(("ForRewardModeling", "RewardModel")) and release < REWARD_SUFFIX_UNTIL:
        return "reward"
    return "embed"


def runner_refusal(spec, version: Optional[str] = None) -> Optional[str]:
    """Why vLLM `version` (None: PINNED) does not serve `spec` with its --runner / --convert, or kvplan does not plan
    it (the module docstring), in one line; None where it does."""
    from .vllm_registry import served_architecture

    runner, convert = getattr(spec, "runner", "auto"), getattr(spec, "convert", "auto")
    if runner == "auto" and convert == "auto":
        return None
    version = version or PINNED
    release = parse_version(version)
    if release < FLAGS_SINCE:
        return f"kvplan reads vLLM's --runner and --convert from 0.11 on, not in {version}; plan 0.11 or later."
    if convert == "reward" and release >= REWARD_UNTIL:
        return (f"vLLM {version} refuses --convert reward: its choices are auto, none, embed, classify (config/"
                f"model.py ConvertType, reward up to 0.15); use --convert embed.")
    asked = convert
    if convert == "mm_encoder_only":
        refused = mm_encoder_only_refusal(spec, version, release)
        if refused:
            return refused
        convert = "none"  # a model without a multimodal encoder: vLLM serves it as --convert none would
    arch = served_architecture(spec, version)
    by_architecture = architecture_runner(spec, version)
    picked = "pooling" if pooling_runner(spec, version) else "generate"
    if runner == "generate" and by_architecture == "pooling" and arch not in BOTH_RUNNERS:
        return _generate_refusal(arch, version, release)
    if picked != "pooling":
        if convert in ("auto", "none"):
            return None
        return (f"kvplan does not plan --convert {convert} on vLLM {version}'s generate runner: the adapter drops the "
                f"LM head that runner samples from (model_executor/models/adapters.py); add --runner pooling"
                + ("." if release >= CONVERT_PICKS_RUNNER_SINCE else " (before 0.22 --convert leaves --runner auto "
                                                                        "to the architecture)."))
    if by_architecture == "generate" and convert == "none":
        converts = "embed|classify|reward" if release < REWARD_LISTED_UNTIL else "embed|classify"
        return (f"vLLM {version} refuses {arch} with --runner pooling and --convert {asked}: \"This model does not "
                f"support `--runner pooling`. You can pass `--convert <{converts}> to adapt it into a pooling "
                f"model.\" (config/model.py ModelConfig.__post_init__).")
    if by_architecture == "pooling" and convert != "auto" and not _registered_pooling(arch) \
            and convert != _suffix_convert(arch, release):
        return (f"kvplan does not plan {arch} with --convert {asked}: vLLM resolves no class of that name for it and "
                f"falls back to the Transformers backend's (0.34.0: TransformersForSequenceClassification, CLS "
                f"pooling, encoder-only attention), which kvplan does not model; leave --convert auto "
                f"({_suffix_convert(arch, release)} here).")
    return None


def mm_encoder_only_refusal(spec, version: str, release: tuple) -> Optional[str]:
    """Why vLLM `version` does not serve `spec` with --convert mm_encoder_only (MM_ENCODER_ONLY), or kvplan does not
    plan it: a release that does not take it, or a multimodal model, which it makes an encoder-only instance; None
    for a text model in 0.14-0.15, which vLLM serves as --convert none would, and where ModelConfig refuses the
    runner first (runner_refusal says so, as for --convert none)."""
    first, without = MM_ENCODER_ONLY
    if not first <= release < without:
        choices = "auto, none, embed, classify" + (", reward" if release < REWARD_UNTIL else "")
        instead = "; from 0.15 its --mm-encoder-only flag asks for that" if release >= without else ""
        return (f"vLLM {version} refuses --convert mm_encoder_only: its choices are {choices} (config/model.py "
                f"ConvertType, mm_encoder_only in 0.14.0-0.15.1 only: a multimodal model's encoder-only instance"
                f"{instead}).")
    by_architecture = architecture_runner(spec, version)
    runner_refused = (getattr(spec, "runner", "auto") == "generate" and by_architecture == "pooling") or \
        (pooling_runner(spec, version) and by_architecture == "generate")  # ModelConfig's checks, before the model
    if not getattr(spec, "multimodal", False) or runner_refused:
        return None
    from .vllm_registry import served_architecture

    how = ("builds it without its language model, or raises a TypeError where the class names none "
           "(model_executor/models/adapters.py as_mm_encoder_only_model)" if release < (0, 15) else
           "warns the flag is deprecated and builds it without its language model, as --mm-encoder-only does "
           "(config/model.py 0.15.0:502-509, model_executor/models/interfaces.py:199-211)")
    return (f"kvplan does not plan {served_architecture(spec, version)} with --convert mm_encoder_only: vLLM "
            f"{version} {how}, an encoder instance for disaggregated serving that keeps no KV cache; kvplan plans a "
            f"language model's.")


def _generate_refusal(arch: str, version: str, release: tuple) -> str:
    """--runner generate on a pooling architecture: vLLM's refusal of a registered pooling class, else why kvplan
    plans none (module docstring)."""
    if arch in POOLING_SUBCLASSES:
        return (f"vLLM {version} does not start {arch} with --runner generate: it subclasses a generating class, so "
                f"ModelConfig lets the runner through, and its __init__ asserts a pooler config, which the generate "
                f"runner does not set (AssertionError; {POOLING_SUBCLASSES[arch].split(',')[0]}); serve it with "
                f"--runner auto or pooling.")
    if _registered_pooling(arch):
        words = ("Embedding models do not support `--runner generate`. Use `--runner pooling` or `--runner auto` "
                 "for embedding models." if release >= EMBEDDING_WORDS_SINCE
                 else "This model does not support `--runner generate`.")
        return f"vLLM {version} refuses {arch} with --runner generate: \"{words}\" (config/model.py ModelConfig)."
    return (f"kvplan does not plan {arch} with --runner generate: vLLM {version} takes it for the generating class "
            f"the registry builds it from (registry.py _normalize_arch), finds no generating class of that name and "
            f"falls back to the Transformers backend's TransformersForCausalLM, whose LM head this pooling "
            f"checkpoint does not ship; serve it with --runner auto or pooling.")


# the flags runner_refusal names, as the caller writes their fields (errors.RefusedInput; vllm_engine._runner_refusal)
RUNNER_FLAGS = (("runner", "--runner"), ("convert", "--convert"))


def refuse_runner(spec, version: Optional[str]) -> None:
    """Raise runner_refusal's line (estimate and check, before any figure, beside vllm_pooling.refuse_st_pooling),
    on the input at fault: the release where it reads neither flag, --convert where the line names it, else
    --runner."""
    refusal = runner_refusal(spec, version)
    if refusal:
        fault = "engine" if parse_version(version or PINNED) < FLAGS_SINCE else \
            "convert" if "--convert" in refusal.split('"')[0] else "runner"  # kvplan's words, not vLLM's quoted
        raise RefusedInput(refusal, RUNNER_FLAGS, fault)
