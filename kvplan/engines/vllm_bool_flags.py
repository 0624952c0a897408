"""vLLM's boolean serve flags and the negative spellings each release's `vllm serve` parses.

- argparse.BooleanOptionalAction gives a flag --x its --no-x (Python's argparse); vLLM declares a flag so explicitly or
  through get_kwargs, which turns every bool field of a config dataclass into one (engine/arg_utils.py 0.8.5:150-152,
  0.9.0:199-201, 0.34.0:383-385: "Creates --no-<name> and --<name> flags").
- from 0.33 vLLM's EnableDisableAction, registered in place of every BooleanOptionalAction (utils/argparse_utils.py
  0.33.0:179, 0.34.0:179), also takes --disable-x for --enable-x and --enable-x for --disable-x (0.33.0:120-150;
  0.32.0 has no such class). Whatever the spelling, the last one typed sets the value (argparse sets dest at each).
- a flag declared action='store_true' has no negative: `vllm serve` stops on one ("unrecognized arguments"), and off,
  its default, is the flag left out.

NO_FORM_SINCE, the first release whose flag is a BooleanOptionalAction (engine/arg_utils.py; the releases between
the two cited were read too):
- enforce_eager: store_true up to 0.8.5 (:639); ModelConfig's bool field from 0.9.0 (:477, config.py 0.9.0:303).
- disable_sliding_window: store_true up to 0.8.5 (:573); ModelConfig's bool from 0.9.0 (:483, config.py 0.9.0:317).
- enable_expert_parallel: store_true 0.8.0-0.8.4 (0.8.4:451); ParallelConfig's bool from 0.8.5 (:537, config.py
  0.8.5:1601).
- enable_lora: store_true up to 0.8.4 (0.8.4:694); BooleanOptionalAction from 0.8.5 (:696-698).
- fully_sharded_loras: store_true 0.4.2-0.8.4 (0.8.4:739); LoRAConfig's bool from 0.8.5 (:715, config.py 0.8.5:2626).
- enable_prefix_caching: store_true 0.4.0-0.6.4 (0.6.4:409-411); BooleanOptionalAction from 0.6.5 (:431-434).
- enable_chunked_prefill: store_true 0.4.1-0.5.2 (0.4.1:416-419, 0.5.2:482-485); StoreBoolean 0.5.3-0.8.4, which takes
  an optional true / false in any case (nargs "?", const "True": 0.5.3:514-519, 0.8.4:784-789, StoreBoolean
  0.6.0:1039-1048) and no --no- form (VALUE_FORMS); SchedulerConfig's bool from 0.8.5 (:852-853, config.py :1871),
  which takes no value (argparse: "ignored explicit argument"; a separate `false` is an extra argument).
- enable_eplb (0.9.2:687), skip_mm_profiling (0.10.1:733), language_model_only (0.18.0:1044; the flag from 0.17),
  dcp_q_replicate (0.29.0:1119): bool fields of their configs from their first release, so --no- from the start.
"""

from __future__ import annotations

from typing import Optional

NO_FORM_SINCE = {"enforce_eager": (0, 9), "disable_sliding_window": (0, 9), "enable_expert_parallel": (0, 8, 5),
                 "enable_lora": (0, 8, 5), "fully_sharded_loras": (0, 8, 5), "enable_prefix_caching": (0, 6, 5),
                 "enable_eplb": (0, 9, 2), "skip_mm_profiling": (0, 10, 1), "language_model_only": (0, 17),
                 "dcp_q_replicate": (0, 29), "enable_chunked_prefill": (0, 8, 5)}
# the flags born BooleanOptionalAction: a release before NO_FORM_SINCE has no such flag at all
BORN_NEGATABLE = frozenset({"enable_eplb", "skip_mm_profiling", "language_model_only", "dcp_q_replicate"})
# the first release of the store_true flags vllm_engine.FLAG_SINCE does not list (it holds a flag's first release
# where kvplan refuses the flag on before it): --enable-expert-parallel 0.8.0's arg_utils.py (:438; absent from
# 0.7.3's), --fully-sharded-loras 0.4.2's (:398; absent from 0.4.1's), --enable-lora 0.3.0's (:226; absent from 0.2.7's)
STORE_TRUE_SINCE = {"enable_expert_parallel": (0, 8), "fully_sharded_loras": (0, 4, 2), "enable_lora": (0, 3),
                    "enable_chunked_prefill": (0, 4)}
# the flags whose `--flag true` / `--flag=false` a release parses (StoreBoolean): [from, before)
VALUE_FORMS = {"enable_chunked_prefill": ((0, 5, 3), (0, 8, 5))}
BOOLEAN_VALUES = ("true", "false")  # StoreBoolean reads values.lower()
INVERSE_SINCE = (0, 33)  # EnableDisableAction
INVERSES = {"--enable-": "--disable-", "--disable-": "--enable-"}


def negatives(flag: str, no_form_since: tuple = (0,)) -> dict:
    """{negative spelling of the boolean `flag`: the first release that parses it}: --no-x from `no_form_since`,
    and where the flag starts --enable- / --disable-, its inverse from 0.33."""
    found = {"--no-" + flag[2:]: no_form_since}
    for prefix, inverse in INVERSES.items():
        if flag.startswith(prefix):
            found[inverse + flag[len(prefix):]] = max(no_form_since, INVERSE_SINCE)
    return found


def field_negatives(field: str, flag: str) -> dict:
    """negatives() of the flag of `field`, one of NO_FORM_SINCE's."""
    return negatives(flag, NO_FORM_SINCE[field])


def refusal(field: str, flag: str, spelling: str, version: str, flag_since: Optional[tuple] = None) -> Optional[str]:
    """The sentence refusing `spelling`, a negative of `field`'s `flag`, where vLLM `version` does not parse it (None
    where it does): the release it needs, and what that release takes instead. `flag_since`: the flag's first
    release where vllm_engine.FLAG_SINCE has it."""
    from .vllm_versions import parse_version  # when a release is checked: the command line starts without it

    spellings = field_negatives(field, flag)
    release = parse_version(version)
    if release >= spellings[spelling]:
        return None
    needs = ".".join(map(str, spellings[spelling]))
    other = next((name for name, since in spellings.items() if release >= since), None)
    if other is not None:
        return (f"{spelling} needs vLLM {needs} or later (vllm=={version} stops on that spelling: \"unrecognized "
                f"arguments\"); write {other}, as that release does.")
    valued = VALUE_FORMS.get(field)
    if valued and valued[0] <= release < valued[1]:
        return (f"{spelling} needs vLLM {needs} or later (vllm=={version} stops on that spelling: \"unrecognized "
                f"arguments\"); write {flag} false, as that release does.")
    born = spellings["--no-" + flag[2:]] if field in BORN_NEGATABLE else STORE_TRUE_SINCE.get(field, flag_since)
    had = f"has no {flag}" if release < (born or (0,)) else f"takes {flag} alone, a switch off unless given,"
    return f"{spelling} needs vLLM {needs} or later (vllm=={version} {had} and stops on that spelling); leave it out."


def value_refusal(field: str, flag: str, typed: str, version: str) -> Optional[str]:
    """The sentence refusing `typed` (`flag false`, `flag=true`: a value after `field`'s flag) where vLLM `version`'s
    flag takes none (VALUE_FORMS), naming the spelling that release takes; None where it parses it."""
    from .vllm_versions import parse_version

    since, before = VALUE_FORMS[field]
    release = parse_version(version)
    if since <= release < before:
        return None
    off = typed.lower().endswith("false")
    if release >= before:
        other = next(name for name, first in field_negatives(field, flag).items() if release >= first) if off \
            else flag
        return (f"{typed} is read by vLLM {'.'.join(map(str, since))} to {_last_before(before)} only (vllm=={version}"
                f"'s {flag} takes no value and stops on it); write {other}.")
    return (f"{typed} needs vLLM {'.'.join(map(str, since))} or later (vllm=={version}'s {flag} takes no value and "
            f"stops on it); {'leave it out: off is its default there' if off else f'write {flag} alone'}.")


def bad_value_refusal(field: str, flag: str, value: str, version: Optional[str]) -> str:
    """The sentence refusing `value`, neither true nor false, after `field`'s flag= (the words after the flag's name),
    naming the spellings vLLM `version` takes (None: no release named, each spelling with its releases): StoreBoolean
    (VALUE_FORMS) raises on it ("Invalid boolean value: yes. Expected 'true' or 'false'.", utils.py 0.6.6:1100-1109),
    a switch takes no value."""
    from ..errors import quote
    from .vllm_versions import parse_version

    since, before = VALUE_FORMS[field]
    head = (f"takes true or false after {flag}= (vLLM {'.'.join(map(str, since))}-{_last_before(before)}'s form), got "
            f"{quote(value)}; ")
    if version is None:
        negative = next(iter(field_negatives(field, flag)))
        return (f"{head}write {flag}, and for off {flag}=false (vLLM {'.'.join(map(str, since))}-"
                f"{_last_before(before)}) or {negative} (from {'.'.join(map(str, before))}).")
    release, takes = parse_version(version), f"as vllm=={version} takes them"
    if since <= release < before:
        return f"{head}write {flag} alone, {flag}=true or {flag}=false, {takes}."
    if release >= before:
        negative = next(name for name, first in field_negatives(field, flag).items() if release >= first)
        return f"{head}write {flag} or {negative}, {takes}."
    if release >= STORE_TRUE_SINCE.get(field, since):
        return f"{head}write {flag} alone, or leave it out for off, {takes}."
    return f"{head}vllm=={version} has no {flag}; leave it out."


def _last_before(release: tuple) -> str:
    """The release before `release` in words (0.8.5 -> 0.8.4)."""
    return ".".join(map(str, (*release[:-1], release[-1] - 1)))
