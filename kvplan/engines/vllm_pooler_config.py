"""vLLM's `--pooler-config` (a JSON object, PoolerConfig in config/pooler.py): the pooler's settings. kvplan prices
one thing in it, the pooling type, which decides a pooling model's chunked prefill and prefix caching
(vllm_pooling_budget.incremental_prefill, where the user's type comes first); the other fields (dimensions,
use_activation, max_embed_len, enable_chunked_processing, step_tag_id, ...) shape the pooler's outputs or the API
server's checks, not the memory kvplan prices: their names are checked as the release checks them, their values
are not. ModelSpec.pooler_config carries the object (as canonical JSON) where the commands apply the flag.

Read in config/pooler.py and config/model.py of 0.11.0 ... 0.34.0, and checked against vLLM 0.34.0's own parser,
ModelConfig and EngineArgs (benchmarks/vllm_reference/pooler_config.py, tests/data/vllm_pooler_config.json):
- parsing: the flag's argparse type is pydantic's TypeAdapter(PoolerConfig).validate_json (engine/arg_utils.py
  0.11.0:198-202, 0.34.0:368-373): a JSON object, else a refusal. Its fields by release: FIELDS. Up to 0.15.1
  PoolerConfig is a bare pydantic dataclass, which ignores a name it does not have; from 0.16.0 the @config decorator
  makes it forbid them (config/utils.py 0.16.0:55, 0.34.0:72), so an unknown name stops vLLM. 0.26.0 on name the
  removed `normalize` in its refusal (pooler.py 0.26.0:126).
- the type: 0.11.x a plain string, looked up in the pooler's PoolingType (LAST, ALL, CLS, STEP, MEAN) when the
  pooling runner builds its pooler (model_executor/layers/pooler.py 0.11.0:32-38, :52-54: a KeyError, so vLLM stops,
  upper-case only); 0.12.0-0.13.0 the Literal PoolingTypeStr (pooler.py 0.12.0:14); from 0.14.0 seq_pooling_type
  (CLS, LAST, MEAN) and tok_pooling_type (ALL, STEP), with pooling_type kept as an alias that fills the one its value
  belongs to, refused beside either (pooler.py 0.14.0:14-18, :108-137; 0.34.0:15-18, :138-167).
- precedence, the pooling runner only (config/model.py 0.11.0:563-575, 0.14.0:533-549, 0.34.0:796-822): the
  user's fields first, then the Sentence Transformers Pooling module's (vllm_pooling.st_pooling_types), then the
  class's default, field by field (so a user's seq_pooling_type leaves the module's tok_pooling_type in place).
- the generate runner never merges it, yet keeps the user's object, which the chunked-prefill and prefix-caching
  rules read as a pooling model's: 0.11.x's VllmConfig turns both off unless its pooling_type is "last" in any case
  (config/__init__.py 0.11.0:405-445, config/vllm.py 0.11.1:531-545), while the scheduler keeps its chunked
  max_num_batched_tokens, which kvplan does not model (refused); 0.12.0-0.13.0's is_chunked_prefill_supported calls
  .lower() on its pooling_type (config/model.py 0.12.0:1774-1783, 0.13.0:1685-1694: an AttributeError without one);
  from 0.14.0 off for seq MEAN / CLS or tok STEP (0.34.0:2240-2266; measured: Qwen3ForCausalLM --runner generate
  --pooler-config '{"pooling_type": "MEAN"}' runs without chunked prefill, 32,768 batched tokens). Its full-graph
  override (config/vllm.py 0.34.0:1862-1873: PIECEWISE) is a pooling model's: the graphs it leaves
  (vllm_full_downgrade.py), and the stop of a full mode kept below VLLM_COMPILE up to 0.29
  (vllm_level_assert.downgrade_refusal).
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Optional

from ..errors import FieldError, RefusedInput, json_value, quote
from .vllm_pooling import LEGACY_TYPES, SEQ_TYPES, TOK_TYPES
from .vllm_versions import PINNED, parse_version

# PoolerConfig's field names by release, newest first (config/pooler.py, each release read by hand; the test checks
# the table against every unpacked sdist): task from 0.19.0 (:24), logit_mean / logit_sigma from 0.20.0 (:81-93),
# logit_bias / logit_scale gone in 0.23.0, enable_flash_late_interaction from 0.32.0 (:66)
_V16 = ("pooling_type", "seq_pooling_type", "tok_pooling_type", "use_activation", "dimensions",
        "enable_chunked_processing", "max_embed_len", "step_tag_id", "returned_token_ids")
_V11 = ("pooling_type", "normalize", "dimensions", "enable_chunked_processing", "max_embed_len", "activation",
        "logit_bias", "softmax", "step_tag_id", "returned_token_ids")
FIELDS = (((0, 32), _V16 + ("task", "logit_mean", "logit_sigma", "enable_flash_late_interaction")),
          ((0, 23), _V16 + ("task", "logit_mean", "logit_sigma")),
          ((0, 20), _V16 + ("task", "logit_mean", "logit_sigma", "logit_bias", "logit_scale")),
          ((0, 19), _V16 + ("task", "logit_bias")),
          ((0, 16), _V16 + ("logit_bias",)),
          ((0, 14), _V11 + ("use_activation", "seq_pooling_type", "tok_pooling_type")),
          ((0, 11, 1), _V11 + ("use_activation",)),
          ((0, 11), _V11))
FLAG_SINCE = (0, 11)  # the first release kvplan has read the flag in (as --runner / --convert)
# @config: extra="forbid" (config/utils.py 0.16.0:55). Before, `config` returns the class as it is (config/utils.py
# 0.11.0:22-35, 0.14.1:35-48) and PoolerConfig is a bare pydantic dataclass (config/pooler.py 0.11.0:12-14,
# 0.14.1:21-23), whose default extra="ignore" drops a name it lacks without a word as arg_utils.py's
# TypeAdapter(PoolerConfig).validate_json parses the flag (0.11.0:200, 0.14.1:282; run on 0.11.0's, 0.13.0's and
# 0.14.1's own class: the unknown name is gone, no warning). 0.15.0 and 0.15.1 (read in their wheels) are 0.14.1's:
# config/pooler.py the same file, `config` still returns the class (config/utils.py 0.15.1:35-48), so ignored, with
# 0.14's fields (FIELDS' 0.14 row)
FORBIDS_UNKNOWN_SINCE = (0, 16)
LITERAL_TYPES_SINCE = (0, 12)  # PoolingTypeStr (pooler.py 0.12.0:14); 0.11.x a plain str
SPLIT_TYPES_SINCE = (0, 14)  # seq_pooling_type / tok_pooling_type (pooler.py 0.14.0:14-18)
# the type names: vllm_pooling's (PoolingType, layers/pooler.py 0.11.0:32-38; 0.12.0 :14; 0.14.0 :14-18)
# the releases at which these rules change, for the remedy search (vllm_engine.releases)
BOUNDARIES = (FLAG_SINCE, (0, 11, 1), (0, 12), (0, 14), (0, 16), (0, 17), (0, 19), (0, 20), (0, 23), (0, 32))
# The fields' types, which pydantic checks as it parses the flag (lax: "7", 7.0 and true are the int 7, 7, 1; "yes"
# and 1 the bool True; inf, NaN, 7.5 and "abc" no int), read by hand in config/pooler.py and checked against each
# release's own parser (benchmarks/vllm_reference/pooler_config_values.py, tests/data/vllm_pooler_config_values.json):
# every field `X | None` but these, plain bools from the release named: enable_chunked_processing (0.17.0:58),
# enable_flash_late_interaction (0.32.0:66). softmax and activation are bools in 0.11.0 (:51, :62), floats from
# 0.11.1 (:76, :80); pooling_type a str before 0.12 (0.11.0:17; a Literal from 0.12, _type_refusal), task a
# PoolingTask Literal (vllm/tasks.py 0.19.0:8-15, 0.34.0:10-17)
INT_FIELDS = ("dimensions", "max_embed_len", "step_tag_id")
BOOL_FIELDS = ("normalize", "use_activation", "enable_chunked_processing", "enable_flash_late_interaction")
FLOAT_FIELDS = ("logit_bias", "logit_mean", "logit_sigma", "logit_scale")
SCALES = ("softmax", "activation")  # bool in 0.11.0, float from FLOAT_SCALES_SINCE
FLOAT_SCALES_SINCE = (0, 11, 1)
NOT_NONE_SINCE = {"enable_chunked_processing": (0, 17), "enable_flash_late_interaction": (0, 32)}
TASKS = ("embed", "classify", "token_embed", "token_classify", "plugin", "embed&token_classify")
SIGMA_NONZERO_SINCE = (0, 20)  # __post_init__: "logit_sigma cannot be 0 (division by zero)" (pooler.py 0.20.0:153)
BOOL_WORDS = ("0", "off", "f", "false", "n", "no", "1", "on", "t", "true", "y", "yes")  # pydantic's, any case
# The whitespace pydantic-core trims from a number's text (Rust's str::trim, char::is_whitespace: Unicode White_Space;
# not Python's str.isspace, which adds U+001C-U+001F); its digits are ASCII only (checked on vLLM 0.34.0's
# TypeAdapter(PoolerConfig).validate_json, pydantic 2.14.4: "7.", "\u0667" and "\u0661" refused for an int, the
# last two for a float, "7\u3000" taken, "\x1c7" refused)
PYDANTIC_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TRIMMED = re.compile(f"[{PYDANTIC_SPACE}]*(.*?)[{PYDANTIC_SPACE}]*", re.DOTALL)
# the trimmed text pydantic reads as an int ("7", "+7", "1_000", "7.0"; not "7.", "1.0_0", "+_1")
INT_TEXT = re.compile(r"[+-]?[0-9]+(_[0-9]+)*(\.0+)?")
INT_FLOAT_LIMIT = 2.0**63  # a float pydantic takes as an int is below this ("exceeded maximum size")


def pooler_config_choice(value) -> Optional[str]:
    """vLLM's --pooler-config as typed (a JSON object) or a deployments file's / the API's mapping: its canonical JSON
    text, None where not given; FieldError('pooler_config') where it is not a JSON object, as vLLM's parser refuses
    it. The release's own checks wait for the release (pooler_config_refusal)."""
    if value is None:
        return None
    try:
        fields = value if isinstance(value, dict) else json.loads(str(value))
    except (ValueError, RecursionError):
        fields = None
    text = None
    if isinstance(fields, dict):
        try:  # a deployments file's YAML or the API may hold what JSON has not (a date, a set)
            text = json.dumps(fields, sort_keys=True)
        except (TypeError, ValueError):
            text = None
    if text is None:
        raise FieldError("pooler_config", f"must be vLLM's form, a JSON object such as '{{\"pooling_type\": "
                                          f"\"MEAN\"}}', got {quote(value)}.")
    return text


@lru_cache(maxsize=256)
def _fields(text: str) -> dict:
    return json.loads(text)


def given(spec) -> Optional[dict]:
    """The --pooler-config `spec` carries (ModelSpec.pooler_config), None where not given."""
    text = getattr(spec, "pooler_config", None)
    return None if text is None else dict(_fields(text))


def release_fields(version: str) -> tuple:
    """PoolerConfig's field names in vLLM `version` (0.11 on; before, 0.11.0's, the flag being refused there)."""
    release = parse_version(version)
    return next((names for first, names in FIELDS if release >= first), FIELDS[-1][1])


def _known(spec, version: str) -> dict:
    """The fields of `spec`'s --pooler-config vLLM `version` keeps (those it has: up to 0.14 it drops the others)."""
    names = release_fields(version)
    return {key: value for key, value in (given(spec) or {}).items() if key in names}


def user_pooling_types(spec, version: str) -> tuple:
    """(seq, tok): the pooling types `spec`'s --pooler-config sets in vLLM `version` (0.14 on), pooling_type filling
    the one its value belongs to (pooler.py 0.34.0:142-167); each None where it sets none."""
    fields = _known(spec, version)
    seq, tok, alias = fields.get("seq_pooling_type"), fields.get("tok_pooling_type"), fields.get("pooling_type")
    return (alias if alias in SEQ_TYPES else seq), (alias if alias in TOK_TYPES else tok)


def user_pooling_type(spec, version: str) -> Optional[str]:
    """The one pooling_type `spec`'s --pooler-config sets in vLLM `version` (0.11-0.13), None where it sets none."""
    return _known(spec, version).get("pooling_type")


def ignored_fields(spec, version: Optional[str] = None) -> tuple:
    """The names in `spec`'s --pooler-config that vLLM `version` (None: PINNED) drops without a word: those its
    PoolerConfig lacks, 0.11 up to 0.16 (FORBIDS_UNKNOWN_SINCE; 0.15.x's PoolerConfig is 0.14.1's); () where there
    are none, from 0.16 (which refuses them: pooler_config_refusal) and before 0.11 (which refuses the flag)."""
    release = parse_version(version or PINNED)
    if not FLAG_SINCE <= release < FORBIDS_UNKNOWN_SINCE:
        return ()
    names = release_fields(version or PINNED)
    return tuple(key for key in given(spec) or {} if key not in names)


def ignored_note(spec, version: Optional[str] = None, spell=None) -> str:
    """What kvplan says of ignored_fields ('' where none), naming the flag as `spell` writes a field (a flag, a
    deployments file's key)."""
    dropped = ignored_fields(spec, version)
    if not dropped:
        return ""
    flag = (spell or (lambda field: f"--{field.replace('_', '-')}"))("pooler_config")
    names = ", ".join(repr(key) for key in dropped)
    fields, they = ("fields", "they set") if len(dropped) > 1 else ("field", "it sets")
    return (f"vLLM {version or PINNED} ignores {flag} {fields} {names}: its PoolerConfig drops names it does not have "
            f"without a word (a pydantic dataclass, config/pooler.py; refused from 0.16), so nothing {they} is "
            f"applied or priced; its fields: {', '.join(release_fields(version or PINNED))}")


def pooler_config_refusal(spec, version: Optional[str] = None) -> Optional[str]:
    """Why vLLM `version` (None: PINNED) stops on `spec`'s --pooler-config, or kvplan does not plan it (the module
    docstring), in one line; None where it runs."""
    fields = given(spec)
    if fields is None:
        return None
    version = version or PINNED
    release = parse_version(version)
    if release < FLAG_SINCE:
        return f"kvplan reads vLLM's --pooler-config from 0.11 on, not in {version}; plan 0.11 or later."
    names = release_fields(version)
    unknown = [key for key in fields if key not in names]
    if unknown and release >= FORBIDS_UNKNOWN_SINCE:
        removed = " (`normalize` was removed; use `use_activation`)" if "normalize" in unknown else ""
        return (f"vLLM {version} refuses --pooler-config field {unknown[0]!r}{removed}: PoolerConfig forbids names it "
                f"does not have (config/utils.py @config, extra=\"forbid\"); its fields: {', '.join(names)}.")
    return _value_refusal(fields, names, version, release) or _type_refusal(spec, fields, version, release) or \
        _generate_refusal(spec, fields, version, release)


def _value_refusal(fields: dict, names: tuple, version: str, release: tuple) -> Optional[str]:
    """The first field of the release (`names`: before 0.16 it drops the others unread) whose value pydantic refuses
    as it parses the flag, in pydantic's words (the INT_FIELDS comment); logit_sigma 0 from 0.20."""
    for key, value in fields.items():
        if key not in names:
            continue
        kind, words = _value_words(key, value, release)
        if words:
            return (f"vLLM {version} refuses --pooler-config {key} {json_value(value)}: \"{words}\" (pydantic, parsing "
                    f"PoolerConfig's {key}: {kind}; config/pooler.py).")
    return None


def _value_words(key: str, value, release: tuple) -> tuple:
    """(the field's type as vLLM `release` annotates it, pydantic's refusal of `value` or '')."""
    optional = release < NOT_NONE_SINCE.get(key, (99,))
    if key in INT_FIELDS:
        kind, words = "int", _int_words(value)
    elif key in BOOL_FIELDS or (key in SCALES and release < FLOAT_SCALES_SINCE):
        kind, words = "bool", _bool_words(value)
    elif key in FLOAT_FIELDS or key in SCALES:
        kind, words = "float", _float_words(value)
        if not words and key == "logit_sigma" and release >= SIGMA_NONZERO_SINCE and value is not None \
                and float(value) == 0:
            words = "Value error, logit_sigma cannot be 0 (division by zero)"
    elif key == "returned_token_ids":
        kind = "list[int]"
        words = next(filter(None, map(_int_words, value)), "") if isinstance(value, list) else \
            "Input should be a valid array"
    elif key == "pooling_type" and release < LITERAL_TYPES_SINCE:
        kind, words = "str", "" if isinstance(value, str) else "Input should be a valid string"
    elif key == "task":
        kind = "PoolingTask"
        words = "" if value in TASKS else "Input should be " + ", ".join(f"'{task}'" for task in TASKS[:-1]) + \
            f" or '{TASKS[-1]}'"
    else:
        return "", ""
    if value is None:
        return kind, "" if optional else f"Input should be a valid {kind.replace('bool', 'boolean')}"
    return (f"{kind} | None" if optional else kind), words


def _int_words(value) -> str:
    """pydantic's lax int: a bool or int, a whole finite float below 2**63, a string of digits; '' where taken."""
    if isinstance(value, (bool, int)):
        return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return "Input should be a finite number"
        if not value.is_integer():
            return "Input should be a valid integer, got a number with a fractional part"
        return "Unable to parse input string as an integer, exceeded maximum size" if abs(value) >= INT_FLOAT_LIMIT \
            else ""
    if isinstance(value, str):
        return "" if INT_TEXT.fullmatch(TRIMMED.fullmatch(value).group(1)) else \
            "Input should be a valid integer, unable to parse string as an integer"
    return "Input should be a valid integer"


def _bool_words(value) -> str:
    """pydantic's lax bool: a bool, 0 or 1, one of BOOL_WORDS in any case; '' where taken."""
    if isinstance(value, bool) or (isinstance(value, (int, float)) and value in (0, 1)):
        return ""
    if isinstance(value, (int, str)):
        return "" if isinstance(value, str) and value.lower() in BOOL_WORDS else \
            "Input should be a valid boolean, unable to interpret input"
    return "Input should be a valid boolean"


def _float_words(value) -> str:
    """pydantic's lax float: a bool, int or float (NaN and infinities too), a string Python reads as one."""
    if isinstance(value, (bool, int, float)):
        return ""
    if isinstance(value, str):
        text = _number_text(value)
        try:  # Python's float grammar on the ASCII text pydantic reads, with nothing left to strip
            taken = text is not None and text == text.strip() and float(text) is not None
        except ValueError:
            taken = False
        return "" if taken else "Input should be a valid number, unable to parse string as a number"
    return "Input should be a valid number"


def _number_text(value: str) -> Optional[str]:
    """The text pydantic parses a number from: trimmed (PYDANTIC_SPACE), its underscores dropped where none leads,
    ends or doubles ("1_000", "1_e3"; not "_1", "1_", "1__0"); None where that is not ASCII or the underscores are
    refused."""
    text = TRIMMED.fullmatch(value).group(1)
    if not text.isascii() or text.startswith("_") or text.endswith("_") or "__" in text:
        return None
    return text.replace("_", "")


def _type_refusal(spec, fields: dict, version: str, release: tuple) -> Optional[str]:
    """A pooling type the release's PoolerConfig (or, 0.11.x, its pooling runner's PoolingType) does not take."""
    from .vllm_pooling import pooling_runner

    split = release >= SPLIT_TYPES_SINCE
    valid = {"pooling_type": SEQ_TYPES + TOK_TYPES if split else LEGACY_TYPES}
    if split:
        valid.update(seq_pooling_type=SEQ_TYPES, tok_pooling_type=TOK_TYPES)
    checked = release >= LITERAL_TYPES_SINCE or pooling_runner(spec, version)  # 0.11.x: when the pooler is built
    for key, types in valid.items():
        value = fields.get(key)
        if value is not None and value not in types and checked:
            return (f"vLLM {version} refuses --pooler-config {key} {quote(value)}: it takes "
                    f"{', '.join(types)} (config/pooler.py" + ("" if release >= LITERAL_TYPES_SINCE else
                                                              ", model_executor/layers/pooler.py PoolingType") + ").")
    if split and fields.get("pooling_type") is not None:
        both = next((key for key in ("seq_pooling_type", "tok_pooling_type") if fields.get(key) is not None), None)
        if both:
            return (f"vLLM {version} refuses --pooler-config with both pooling_type and {both}: \"Cannot set both "
                    f"`pooling_type` and `{both}`\" (config/pooler.py PoolerConfig.__post_init__).")
    return None


def _generate_refusal(spec, fields: dict, version: str, release: tuple) -> Optional[str]:
    """A --pooler-config on the generate runner that 0.11-0.13 stop on, or that kvplan does not plan there."""
    from .vllm_pooling import pooling_runner

    if release >= SPLIT_TYPES_SINCE or pooling_runner(spec, version):
        return None
    kind = fields.get("pooling_type")
    if release >= LITERAL_TYPES_SINCE and kind is None:
        return (f"vLLM {version} stops on a --pooler-config without pooling_type on the generate runner: its "
                f"chunked-prefill rule reads the user's pooler config as a pooling model's and calls .lower() on "
                f"None (config/model.py ModelConfig.is_chunked_prefill_supported, until 0.14); give pooling_type, "
                f"drop the flag, or plan 0.14 or later.")
    if release < LITERAL_TYPES_SINCE and not (isinstance(kind, str) and kind.lower() == "last"):
        return (f"kvplan does not plan --pooler-config without pooling_type LAST on vLLM {version}'s generate runner: "
                f"its VllmConfig then turns chunked prefill and prefix caching off but keeps the chunked "
                f"max_num_batched_tokens (VllmConfig.__post_init__, 0.11.x), which kvplan does not model; drop the "
                f"flag or plan 0.12 or later.")
    return None


def refuse_pooler_config(spec, version: Optional[str]) -> None:
    """Raise pooler_config_refusal's line (estimate and check, before any figure, beside refuse_runner)."""
    refusal = pooler_config_refusal(spec, version)
    if refusal:
        fault = "engine" if parse_version(version or PINNED) < FLAG_SINCE else "pooler_config"
        raise RefusedInput(refusal, (("pooler_config", "--pooler-config"),), fault)
