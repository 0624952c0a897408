"""Numbers and sizes as people write them, by the rules of vLLM's own argument parser
(vllm/utils/argparse_utils.py `human_readable_int`, which vLLM uses for --max-model-len,
--max-num-batched-tokens and --kv-cache-memory-bytes):

- a plain integer: `8192`, `1_000_000`;
- a number with a lower-case suffix is decimal: `k` 10^3, `m` 10^6, `g` 10^9, `t` 10^12, and may have a
  fraction (`25.6k` = 25,600, `1m` = 1,000,000);
- a number with an upper-case suffix is binary: `K` 2^10, `M` 2^20, `G` 2^30, `T` 2^40, whole numbers only
  (`32K` = 32,768, `1M` = 1,048,576; `1.5K` is an error, as in vLLM).

Sizes (kvplan's --gpu-memory, and --kv-cache-memory-bytes) also take explicit byte units, which vLLM does not:
`10GiB`, `512MiB` (binary) and `80GB`, `512MB` (decimal), case-insensitive. A number without a unit is bytes, read
the same way as text (a flag, a YAML string) or as a number (the API, a YAML float): a whole one in any form is bytes
(`85899345920`, `85899345920.0`, `80e9`, `8.0e+10`); `79.5` is refused, a unit left off; --gpu-memory refuses one
below 1 MiB (`40`, `40.0` meant 40GiB).

Every parser here is bounded: ASCII digits only ('²', '٣' and other Unicode digits are not numbers here), at most
MAX_TEXT characters, exact decimal arithmetic (no float overflow from 400-digit numbers), and a ceiling on the
result (MAX_TOKENS tokens, MAX_BYTES bytes, MAX_ITEMS entries in a comma list).

A plain integer literal, wherever it comes from (a flag or API string for a count: whole_number; a deployments file's
YAML integer; a JSON number in config.json or a JSON flag), has its digits counted before int() reads it: past
MAX_INT_DIGITS it becomes an OversizedInteger, which no field accepts (Python's int() refuses past 4,300 digits, with
a ValueError that is not the user's error message).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Optional

from .errors import FieldError, quote

MAX_TOKENS = 2**40  # a context or token count: ~10^12, far beyond any model
MAX_BYTES = 2**60  # 1 EiB: far beyond any GPU's memory
MAX_ITEMS = 64  # entries of one comma list (a sweep)
MAX_TEXT = 4000  # characters of one number as typed (Python converts at most 4,300 digits)
MAX_INT_DIGITS = 64  # digits of an integer literal: every bound kvplan has (MAX_BYTES: 19 digits) is far below

DECIMAL = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
BINARY = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_HUMAN = re.compile(r"([0-9]+(?:\.[0-9]+)?)([kKmMgGtT])", re.ASCII)
_INTEGER = re.compile(r"[+-]?[0-9](?:_?[0-9])*", re.ASCII)  # what int() takes, ASCII digits only
_BYTES = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "pb": 10**15, "kib": 2**10,
          "mib": 2**20, "gib": 2**30, "tib": 2**40, "pib": 2**50}
_DECIMAL = re.compile(r"[0-9]*\.[0-9]+", re.ASCII)  # a number with a fraction, no unit: 79.5 (GiB meant)
# a number without a unit in decimal or exponent form (85899345920.0, 80e9, 8.0e+10, as Python's float() and YAML
# write one); the exponent at most 4 digits keeps Decimal within its limits (10^9999 bytes is far past MAX_BYTES)
_BARE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?", re.ASCII)
# a real number in decimal or exponent form, ASCII digits (0.9, .5, 9e-1, 1e300): YAML 1.2's float, and float()'s text
# less 'inf', 'nan', '1_0' and Unicode digits ('٣')
REAL_TEXT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?", re.ASCII)
_DIGITS = re.compile(r"[0-9]{1,%d}" % MAX_TEXT, re.ASCII)
_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?|[0-9]*\.[0-9]+)\s*([a-z]+)$", re.IGNORECASE | re.ASCII)
# vLLM's spellings of --max-model-len's auto-fit (0.32.0 utils/argparse_utils.py:76-93 human_readable_int_or_auto)
AUTO_LENGTHS = ("auto", "-1")
_WHOLE = re.compile(r"\+?([0-9]+)", re.ASCII)  # a count as text: ASCII digits ('٣' and '²' are not), one '+' at most
RULES = "k/m/g/t = 10^3/6/9/12, K/M/G/T = 2^10/20/30/40, as vLLM's arguments"


class OversizedInteger:
    """Stands in for an integer literal of more than MAX_INT_DIGITS digits: no field accepts it, and its repr says
    what it was without repeating thousands of digits."""

    def __init__(self, digits: int):
        self.digits = digits

    def __repr__(self) -> str:
        return f"<an integer of {self.digits:,} digits>"


def oversized(text: str) -> Optional[OversizedInteger]:
    """OversizedInteger when the integer literal `text` ('-12', YAML's '1_000') has more than MAX_INT_DIGITS digits,
    counted before any int() reads it; None otherwise."""
    digits = sum(char.isdigit() for char in text)
    return OversizedInteger(digits) if digits > MAX_INT_DIGITS else None


def integer_literal(text: str):
    """int(text) of a decimal integer literal, or OversizedInteger (oversized) rather than a ValueError."""
    return oversized(text) or int(text)


def whole_number(value):
    """A count given as text ('8', ' +8 ': a flag, an API string) as int, an OversizedInteger past MAX_INT_DIGITS
    digits; anything else (an int, '-1', '8.0', '++8', '٣') unchanged, for the field's own check to refuse by name."""
    match = _WHOLE.fullmatch(value.strip()) if isinstance(value, str) else None
    return integer_literal(match.group(1)) if match else value


def human_int(text, field: str, example: str = "8192, 32K or 1M") -> int:
    """vLLM's human-readable integer (see the module doc): '1k' -> 1000, '1K' -> 1024, '25.6k' -> 25600."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    value = str(text).strip()
    match = _HUMAN.fullmatch(value) if len(value) <= MAX_TEXT else None
    if match:
        number, suffix = match.groups()
        if suffix in DECIMAL:
            return int(Decimal(number) * DECIMAL[suffix])  # exact: 25.6k = 25600, and no float overflow
        if "." in number:
            raise FieldError(field, f"takes no decimals with the binary suffix {suffix} (as in vLLM), got "
                                    f"{quote(text)}; did you mean {number}{suffix.lower()}?")
        return int(number) * BINARY[suffix]
    if len(value) <= MAX_TEXT and _INTEGER.fullmatch(value):
        return int(value)
    raise FieldError(field, f"must be a whole number, optionally with a suffix ({RULES}), e.g. {example}; "
                            f"got {quote(text)}.")


def parse_size(text, field: str) -> int:
    """Bytes: vLLM's human-readable integer ('10G' = 10 GiB, '10g' = 10^10) or an explicit byte unit
    ('10GiB', '80GB'); a whole number without a unit is bytes whether it comes as text ('85899345920.0', '80e9': a
    flag, a YAML string) or as a number (the API, a YAML float); FieldError naming `field` otherwise."""
    if isinstance(text, bool) or isinstance(text, float) and not math.isfinite(text):
        raise FieldError(field, f"must be a size (bytes, 10G or 10GiB), got {quote(text)}.")
    given = text  # as the caller wrote it, for the messages
    if isinstance(text, float):
        if not text.is_integer():
            raise _fraction_of_a_byte(text, field)
        text = int(text)  # exact: a float past 2**53 is the whole number it holds, not its shortest repr
    match = _SIZE.match(str(text).strip()) if len(str(text)) <= MAX_TEXT else None
    if match and match.group(2).lower() in _BYTES:
        value = int(Decimal(match.group(1)) * _BYTES[match.group(2).lower()])
    else:
        try:
            value = human_int(text, field)
        except FieldError:
            value = _bare_bytes(text, field)
    return _within_bounds(value, given, field)


def _bare_bytes(text, field: str) -> int:
    """A number without a unit that is not a plain integer: bytes when whole ('85899345920.0', '80e9'), as the
    same number given as a float is; a fraction is a unit left off; anything else is not a size."""
    value = str(text).strip()
    if len(value) > MAX_TEXT or not _BARE.fullmatch(value):
        raise FieldError(field, f"{quote(text)} is not a size; write bytes, a vLLM-style number (10G = 10 GiB, "
                                f"10g = 10^10) or a byte unit (10GiB, 80GB, 512MiB).")
    number = Decimal(value)
    if number > MAX_BYTES:  # before int(): 1e9999 is a 10,000-digit integer
        raise _too_large(text, field)
    _, digits, exponent = number.as_tuple()
    if exponent < 0 and any(digits[max(len(digits) + exponent, 0):]):  # a non-zero digit after the point
        raise _fraction_of_a_byte(text, field)
    return int(number)


def _within_bounds(value: int, text, field: str) -> int:
    if value <= 0:
        raise FieldError(field, f"must be a positive size, got {quote(text)}.")
    if value > MAX_BYTES:
        raise _too_large(text, field)
    return value


def _too_large(text, field: str) -> FieldError:
    return FieldError(field, f"must be at most 1 EiB (2**60 bytes), got {quote(text)}.")


def _fraction_of_a_byte(value, field: str) -> FieldError:
    """Bytes come whole: 79.5 without a unit is a unit left off, not 79.5 bytes."""
    text = str(value).strip()
    example = f"{text}GiB" if _DECIMAL.fullmatch(text) and float(text) <= UNIT_EXAMPLE_MAX else "80GiB"
    return FieldError(field, f"{quote(value)} is not a whole number of bytes (a number without a unit is bytes); "
                             f"write the unit, e.g. {example}.")


UNIT_EXAMPLE_MAX = 4096  # a bare number up to this reads as GiB meant (40 -> 40GiB); past it the example is 80GiB
MIN_GPU_MEMORY = 2**20  # 1 MiB: a bare number below it is a unit left off (40 meant 40 GiB), not a GPU's memory


def parse_gpu_memory(value, field: str = "gpu_memory") -> int:
    """kvplan's --gpu-memory / gpu_memory: a size as parse_size reads it, where a number without a unit below
    MIN_GPU_MEMORY is refused rather than read as bytes (no GPU has less than a MiB; `40` is 40 GiB meant)."""
    size = parse_size(value, field)
    text = str(value).strip()
    unitless = isinstance(value, (int, float)) or _INTEGER.fullmatch(text) or _BARE.fullmatch(text)
    if size < MIN_GPU_MEMORY and unitless:
        example = f"{size}GiB" if size <= UNIT_EXAMPLE_MAX else "80GiB"
        raise FieldError(field, f"{quote(value)} is {size:,} bytes (a number without a unit is bytes), less than "
                                f"any GPU has; write the unit, e.g. {example}.")
    return size


def parse_tokens(value, field: str, example: str = "8192, 32K or 1M") -> int:
    """A positive token count, by vLLM's rules: 8192, '32K' (= 32,768), '32k' (= 32,000), '1M'."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise FieldError(field, f"must be a positive number of tokens (e.g. {example}), got {quote(value)}.")
    count = human_int(value, field, example)
    if count < 1:
        raise FieldError(field, f"must be a positive number of tokens (e.g. {example}), got {quote(value)}.")
    if count > MAX_TOKENS:
        raise FieldError(field, f"must be at most {MAX_TOKENS:,} tokens, got {quote(value)}.")
    return count


def int_list(text: str, field: str, example: str = "1,2,4,8", tokens: bool = False, auto_alone: bool = False) -> list:
    """'4096,32K' -> [4096, 32768]. Token counts take vLLM's suffixes; other lists plain integers. `auto_alone`: the
    list is --max-model-len's, where auto (or -1) is valid alone only (refuse_auto_in_list)."""
    items = str(text).split(",", MAX_ITEMS)
    if len(items) > MAX_ITEMS:
        raise FieldError(field, f"takes at most {MAX_ITEMS} values, got more.")
    if auto_alone and len(items) > 1:
        refuse_auto_in_list(items, field, text)
    values = []
    for given in items:  # an error quotes the item as given (' ' is no number: '' was not what the user wrote)
        item = given.strip()
        if tokens:
            values.append(parse_tokens(given, field, example))
            continue
        if not _DIGITS.fullmatch(item) or int(item) < 1:
            raise FieldError(field, f"takes positive whole numbers separated by commas (e.g. {example}), got "
                                    f"{quote(given)}.")
        if int(item) > MAX_TOKENS:
            raise FieldError(field, f"must be at most {MAX_TOKENS:,}, got {quote(given)}.")
        values.append(int(item))
    return values


def is_auto_length(value) -> bool:
    """Whether a max_model_len as given means vLLM's auto-fit alone: auto or -1 (AUTO_LENGTHS), or a list of them
    only, as a comma list ('auto,auto') or a sequence (['auto'], [-1]): repeats of one value merge, as in any sweep."""
    if isinstance(value, str):
        items = value.split(",", MAX_ITEMS)
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    return bool(items) and len(items) <= MAX_ITEMS and all(_auto_item(item) for item in items)


def _auto_item(item) -> bool:
    return isinstance(item, (str, int)) and not isinstance(item, bool) and str(item).strip().lower() in AUTO_LENGTHS


def refuse_auto_in_list(items, field: str, given) -> None:
    """vLLM's auto-fit (--max-model-len auto or -1, AUTO_LENGTHS) is one length, the longest that fits: it stands
    alone, never in a sweep beside other lengths."""
    for item in items:
        if _auto_item(item):
            raise FieldError(field, f"takes {str(item).strip()} (vLLM's auto-fit: the longest length that fits) only "
                                    f"alone, not in a list of lengths; got {quote(given)}.")


def require_positive(field: str, value, maximum: int = MAX_TOKENS) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FieldError(field, f"must be a positive integer{_unquoted(value, int, lambda n: 0 < n <= maximum)}, "
                                f"got {quote(value)}.")
    if value > maximum:
        raise FieldError(field, f"must be at most {maximum:,}, got {quote(value)}.")
    return value


def require_fraction(field: str, value) -> float:
    """(0, 1], like vLLM's --gpu-memory-utilization."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        unquoted = _unquoted(value, float, lambda n: 0 < n <= 1)
        raise FieldError(field, f"must be a fraction in (0, 1]{unquoted} (the share of GPU memory the engine may "
                                f"use), got {quote(value)}.")
    return float(value)


def _unquoted(value, number, valid) -> str:
    """", unquoted" where `value` is a string that reads as a number asked for (`valid`: the API's max_num_seqs='64',
    a deployments file's tp: '8'): the value is right, its type is not, and "got '64'" alone does not say so. Not for
    one that unquoted is refused all the same ('0', '1.5', 'nan')."""
    try:
        return ", unquoted" if isinstance(value, str) and valid(number(value)) else ""
    except ValueError:
        return ""


# ---- switches as the Python API and verify take them ------------------------------------------------------------

def switch(value, field: str) -> bool:
    """A switch: a Python bool only ("false", 0 or [] are not read by their truth, which would take "false" as on);
    None is the default, off, as every other keyword takes None for its default."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise FieldError(field, f"must be True or False (a Python bool), got {quote(value)}.")
    return value


def switches(**values) -> dict:
    """Every switch keyword a Python bool or None (switch), checked before any is read: a deployments file's
    validators, which check() shares, would speak of YAML booleans. Returns them as bools, None as False."""
    return {field: switch(value, field) for field, value in values.items()}
