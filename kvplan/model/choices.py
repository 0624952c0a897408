"""vLLM's choice flags take their values exactly as vLLM spells them, lower case: `vllm serve --kv-cache-dtype FP8`
stops before anything starts, so kvplan refuses `FP8` too, in estimate, check, verify and the API alike (one rule:
a plan, or a gate's pass, of a server that never parses its flags would mislead).

- --kv-cache-dtype: argparse `choices` up to 0.32 (the CacheDType Literal, config/cache.py 0.32.0:39, :122, made
  choices by engine/arg_utils.py 0.32.0:214-228, :381-382 literal_to_kwargs); from 0.33 the field also takes `str`,
  so argparse lists them as a metavar and CacheConfig._validate_cache_dtype refuses any other text ("Invalid
  kv_cache_dtype", config/cache.py 0.34.0:245, :503-510).
- --dtype: the ModelDType Literal (config/model.py 0.32.0:99, :196; 0.34.0:106, :210) becomes argparse `choices`
  (engine/arg_utils.py 0.34.0:220-234, :386-387), matched as typed; only the Python API lower-cases it
  (_get_and_verify_dtype, config/model.py 0.34.0:2526).
- --quantization: any text reaches ModelConfig._verify_quantization, which refuses a name not in
  QUANTIZATION_METHODS as written ("Unknown quantization method: FP8", config/model.py 0.32.0:1451-1456).
- Spaces around a value (" fp8 ") are refused alike, in every choice-valued flag (refuse_spaces): argparse compares
  the string as typed, and the later checks (`name in KV_CACHE_DTYPES`, config/cache.py 0.34.0:170-172) too. Only
  numbers are stripped, as vLLM's int() and human_readable_int strip them.
"""

from __future__ import annotations

from typing import Optional

from ..errors import FieldError, quote


def exact_choice(field: str, value, choices, offered=None) -> Optional[str]:
    """`value` where it is one of `choices` exactly as typed; FieldError naming `field` where it is one only with
    spaces around it (" fp8 ") or in another case (FP8, Auto, BFloat16) and that spelling is `offered` (default:
    `choices`; the chosen release's values, which may lack it: bfloat16 before 0.11); None otherwise, for the caller to
    say what is valid."""
    if not isinstance(value, str):
        return None
    if value in choices:
        return value
    text = value.strip()
    if text.lower() in (choices if offered is None else offered):
        refuse_spaces(field, value, choices if offered is None else offered)
        raise FieldError(field, f"{quote(value)} is not vLLM's spelling: `vllm serve` matches these values exactly, "
                                f"in lower case, and stops on it; write {text.lower()}.")
    return None


def refuse_spaces(field: str, value, choices) -> None:
    """FieldError naming `field` where `value` is one of `choices` with spaces around it: argparse compares a choice
    as typed (`value not in action.choices`; vLLM's FlexibleArgumentParser strips only its human-readable integers,
    utils/argparse_utils.py 0.32.0:39, :88), so `vllm serve --kv-cache-dtype " fp8 "` stops on an invalid choice."""
    if isinstance(value, str) and value != value.strip() and value.strip() in choices:
        raise FieldError(field, f"{quote(value)} has spaces around it: `vllm serve` matches these values exactly as "
                                f"typed and stops on it; write {value.strip()}.")
