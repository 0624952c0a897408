"""--enable-chunked-prefill / --no-enable-chunked-prefill as vLLM reads them by release: whether chunked prefill runs
(chunked_prefill), the refusal it meets on a Mamba model (mamba_refusal) and what the plan says of it (chunked_notes).
What follows from it is vllm_settings.resolve_settings's (max_num_batched_tokens, SchedulerConfig's check) and, from
the batch, the profile run's (vllm_profile.profile_peak): nothing here prices memory.

The spellings (vllm_bool_flags.py: NO_FORM_SINCE, VALUE_FORMS): a typed bool in 0.4.0 (refused: MODELLED_SINCE),
store_true 0.4.1-0.5.2 (engine/arg_utils.py 0.4.1:416-419, 0.5.2:482-485), StoreBoolean 0.5.3-0.8.4 (nargs "?":
`--enable-chunked-prefill`, `--enable-chunked-prefill false`, `--enable-chunked-prefill=False`; 0.5.3:514-519,
0.6.0:566-572, 0.8.4:784-789), BooleanOptionalAction from 0.8.5 (SchedulerConfig's bool through get_kwargs,
0.8.5:852-853, :150-152; 0.32.0:1748-1750), --disable-chunked-prefill too from 0.33.

Given, by engine and release (None: the default, which vllm_v0_chunked.v0_chunked_prefill and
vllm_pooling_budget.incremental_prefill give):
- V0 (up to 0.7, and 0.8-0.10.x falling back to it: vllm_v1_oracle.v0_fallback): kept, whatever the length or the
  model (EngineArgs fills it only `if self.enable_chunked_prefill is None`: arg_utils.py 0.6.0:844, 0.8.5:1506,
  0.10.1:1527); SchedulerConfig then picks the release's chunk with it, the whole length without (config.py
  0.6.0:973-981, 0.8.5:1967-1984). No release's oracle falls back to V0 for it (0.8.5:1292-1499, 0.10.1 the same).
- V1, 0.8.0-0.11.0, a generating model: ignored, on ("V1 always uses chunked prefills": _set_default_args_v1
  0.8.5:1568-1569, 0.10.1:1591-1592; _set_default_args 0.11.0:1547-1548); a pooling model's kept (0.10.1:1606-1608).
- V1 from 0.11.1: kept for every model (0.11.1:1955-1956; 0.14.0:1906-1907, 0.32.0:2993-2994, 0.34.0:3084-3085); off
  on a model that supports it, vLLM warns (from 0.12.0: 0.14.0:1913-1922, 0.32.0:3000-3010). Off, `vllm serve`'s
  batch is raised to a whole prompt (vllm_settings.whole_prompt_batch: max(max_model_len, the GPU's default) from
  0.11.1, 0.32.0:3140-3145) and SchedulerConfig refuses fewer given tokens than max_model_len (config/scheduler.py
  0.32.0:316-324, 0.34.0:363-371: vllm_settings.check_batch).
- A Mamba model with prefix caching on (MambaModelConfig): "align" mode asserts chunked prefill from 0.15.0
  (model_executor/models/config.py 0.15.0:354-356, 0.24.0:439-441, 0.28.0:622-624, 0.32.0:694-696); from 0.28 every
  Mamba prefix cache is "align" (the "all" classes end with 0.27: vllm_mamba_mode.mamba_all_mode); 0.34.0 asserts it
  for any mode ("Chunked prefill is required for Mamba prefix caching.", :1103-1105). 0.11.1-0.14 assert nothing.
Not changed by it: the vision tower's profile items (encoder_budget.py 0.32.0:169-173 caps the requests at
max_num_batched_tokens // T without chunked prefill, which the whole-prompt batch never brings below
vllm_profile.encoder_pass's count).
"""

from __future__ import annotations

from typing import Optional

from ..errors import FieldError
from .vllm_versions import in_span, parse_version

V1_FORCES_ON = ((0, 8), (0, 11, 1))  # [from, before): V1 sets it on for a generating model whatever is given
WARNS_OFF_SINCE = (0, 12)  # "does not officially support disabling chunked prefill" (arg_utils.py 0.14.0:1913-1922)
ALIGN_NEEDS_IT_SINCE = (0, 15)  # MambaModelConfig's assert (models/config.py 0.15.0:354-356)
_ASSERT = {(0, 34): "Chunked prefill is required for Mamba prefix caching.",
           (0, 15): "Chunked prefill is required for mamba cache mode 'align'."}


def chunked_prefill_choice(value) -> Optional[bool]:
    """The Python API's / deployments file's enable_chunked_prefill: True, False or None (vLLM's default)."""
    if value is None or isinstance(value, bool):
        return value
    from ..errors import quote

    raise FieldError("enable_chunked_prefill", f"must be true or false (or left out for vLLM's default), got "
                                               f"{quote(value)}.")


FLAG_SINCE = (0, 4)  # --enable-chunked-prefill first in 0.4.0's arg_utils.py (:361-364; absent from 0.3.3's)
MODELLED_SINCE = (0, 4, 1)  # 0.4.0's is a typed bool, on for any value, `false` too (type=bool, :362)
OFF_SINCE = (0, 5, 3)  # off said: StoreBoolean's `false` (store_true 0.4.1-0.5.2 is off only left out)


def release_refusal(asked: Optional[bool], version: str) -> None:
    """FieldError where vLLM `version` has no way to say `asked` (module docstring's spellings)."""
    if asked is None:
        return
    release = parse_version(version)
    if release < FLAG_SINCE:
        raise FieldError("enable_chunked_prefill", f"needs vLLM 0.4 or later (vllm=={version} has no such flag); "
                                                   f"leave it out or pick a later release.")
    if release < MODELLED_SINCE:
        raise FieldError("enable_chunked_prefill", f"is modelled from vLLM 0.4.1 on: vllm=={version} reads any value "
                                                   f"of it as on, false too (type=bool, engine/arg_utils.py "
                                                   f"0.4.0:361-364); leave it out or pick 0.4.1 or later.")
    if asked is False and release < OFF_SINCE:
        raise FieldError("enable_chunked_prefill", f"off needs vLLM 0.5.3 or later (vllm=={version} takes "
                                                   f"--enable-chunked-prefill alone, a switch off unless given); "
                                                   f"leave it out.")


def ignored(asked: Optional[bool], version: str, v0: bool, pooling: bool) -> bool:
    """Whether vLLM `version` runs chunked prefill on whatever `asked` (V1_FORCES_ON): a generating model on V1."""
    return asked is False and not v0 and not pooling and in_span(version, V1_FORCES_ON)


def chunked_prefill(default: bool, asked: Optional[bool], version: str, v0: bool, pooling: bool) -> bool:
    """Whether vLLM `version` runs chunked prefill: `default` (the engine's for the model) where not `asked`, else
    `asked`, but on where V1 ignores it (module docstring). `v0`: the plan runs V0's engine; `pooling`: the pooling
    runner."""
    if asked is None or ignored(asked, version, v0, pooling):
        return default if asked is None else True
    return asked


# V0 releases that stop on chunked prefill on for a model (only --enable-chunked-prefill gets there: V0 keeps it off
# by default for both, vllm_v0_chunked.KEEPS_OFF): (what, [from, before), vLLM's words)
V0_REFUSES_ON = (
    # JambaForCausalLM.__init__ asserts it off (models/jamba.py 0.5.4:588-589, 0.6.0:572-573, 0.6.2:574-575; 0.5.3's
    # and 0.6.3.post1's assert nothing)
    ("jamba", ((0, 5, 4), (0, 6, 3)), "Jamba currently does not support chunked prefill"),
    # EngineArgs' ValueError for the pooling runner (engine/arg_utils.py 0.6.5:1101-1104, 0.7.3:1202-1205,
    # 0.10.1:1560-1563, V0 only; 0.6.4 has none)
    ("pooling", ((0, 6, 5), (0, 10, 2)), "Chunked prefill is not supported for pooling models"),
)


def v0_refusal(spec, chunked: bool, version: str, v0: bool, pooling: bool) -> None:
    """FieldError where V0 of vLLM `version` stops on chunked prefill on (`chunked`, as chunked_prefill resolved it)
    for `spec` (V0_REFUSES_ON); `pooling`: the pooling runner."""
    held = {"jamba": spec.model_type == "jamba", "pooling": pooling}
    said = next((words for what, span, words in V0_REFUSES_ON if held[what] and in_span(version, span)), None)
    if chunked and v0 and said:
        raise FieldError("enable_chunked_prefill", f"is refused by vLLM {version} for this model (\"{said}\"); "
                                                   f"leave it out.")


def mamba_refusal(spec, settings, version: str) -> None:
    """FieldError where vLLM `version` asserts chunked prefill for `spec`'s Mamba states with prefix caching on
    (module docstring); `settings` as vllm_settings.with_model_defaults resolved them."""
    from .vllm_mamba_mode import mamba_all_mode

    release = parse_version(version)
    if settings.chunked_prefill or not settings.prefix_caching or not spec.linear_layers or \
            release < ALIGN_NEEDS_IT_SINCE or mamba_all_mode(spec, version, True):  # "all": up to 0.27 only
        return
    words = next(said for since, said in _ASSERT.items() if release >= since)
    raise FieldError("enable_chunked_prefill", f"is refused by vLLM {version} for this model with chunked prefill "
                                               f"off and prefix caching on: model_executor/models/config.py "
                                               f"MambaModelConfig asserts \"{words}\" (0.15.0:354-356 to "
                                               f"0.34.0:1103-1105); turn prefix caching off too, or leave chunked "
                                               f"prefill on.",
                     names=("enable_prefix_caching",))


def chunked_notes(spec, flags, version: str) -> tuple:
    """What --enable-chunked-prefill / --no-enable-chunked-prefill did for `spec` under vLLM `version` (no full
    stop, no flag named: the command line's and a deployments file's alike): () where not given, or where it did
    what it says without a word from vLLM. V0 where the release runs it for the model and flags alone
    (vllm_v1_oracle.v0_rules at one stage, the cache dtype auto, a CUDA GPU), as a note per model and not per plan."""
    from .vllm_pooling import pooling_runner
    from .vllm_v1_oracle import v0_rules
    from .vllm_versions import behaviour

    asked = getattr(flags, "enable_chunked_prefill", None)
    if asked is None:
        return ()
    v0 = behaviour(version).era == "v0" or v0_rules(spec, version, flags=flags) is not None
    pooling = pooling_runner(spec, version)
    if ignored(asked, version, v0, pooling):
        return (f"chunked prefill off changes nothing here: vLLM {version} runs chunked prefill on for a generating "
                f"model whatever is given (\"V1 always uses chunked prefills\", engine/arg_utils.py 0.8.5:1568-1569 to "
                f"0.11.0:1547-1548; 0.11.1 and later turn it off)",)
    if asked is False and not v0 and not pooling and parse_version(version) >= WARNS_OFF_SINCE:
        return (f"chunked prefill off as asked: vLLM {version} warns \"This model does not officially support "
                f"disabling chunked prefill.\" (engine/arg_utils.py 0.32.0:3000-3010) and takes each prompt whole "
                f"in one step, so its batch is at least max_model_len",)
    return ()
