"""Sizes and token counts as people write them: `10GiB`, `80GB`, `1.5e9`; `8192`, `32k`.

Every parser here is bounded: ASCII digits only ('²' and other Unicode digits are not numbers here), at most
MAX_TEXT characters, exact decimal arithmetic (no float overflow from `1e400` or 400-digit numbers), and a
ceiling on the result (MAX_TOKENS tokens, MAX_BYTES bytes, MAX_ITEMS entries in a comma list)."""

from __future__ import annotations

import re
from decimal import Decimal

from .errors import FieldError, quote

MAX_TOKENS = 2**40  # a context or token count: ~10^12, far beyond any model
MAX_BYTES = 2**60  # 1 EiB: far beyond any GPU's memory
MAX_ITEMS = 64  # entries of one comma list (a sweep)
MAX_TEXT = 4000  # characters of one number as typed (Python converts at most 4,300 digits)

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e([+-]?[0-9]{1,6}))?\s*([a-z]*)\s*$",
                   re.IGNORECASE | re.ASCII)
_DIGITS = re.compile(r"^[0-9]{1,%d}$" % MAX_TEXT, re.ASCII)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_size(text, field: str) -> int:
    """Bytes from '10GiB', '80GB', '1.5e9' or a plain number; FieldError naming `field` otherwise."""
    if _is_int(text):
        value = text
    else:
        match = _SIZE.match(str(text)) if isinstance(text, (str, float)) and len(str(text)) <= MAX_TEXT else None
        unit = match and match.group(3).lower()
        if not match or unit not in _UNITS:
            raise FieldError(field, f"{quote(text)} is not a size; write bytes or a number with a unit, e.g. "
                                    f"10GiB, 80GB, 512MiB.")
        exponent = max(-40, min(40, int(match.group(2) or 0)))  # beyond +-40 the answer is the same: 0 or too big
        value = int(Decimal(match.group(1)).scaleb(exponent) * _UNITS[unit])
    if value <= 0:
        raise FieldError(field, f"must be a positive size, got {quote(text)}.")
    if value > MAX_BYTES:
        raise FieldError(field, f"must be at most 1 EiB (2**60 bytes), got {quote(text)}.")
    return value


def _token_count(text: str):
    """'8192' -> 8192, '32k' -> 32768 (k = 1024 tokens); None when `text` is not one."""
    text = text.strip().lower()
    scale = 1024 if text.endswith("k") else 1
    digits = text[:-1] if scale > 1 else text
    return int(digits) * scale if _DIGITS.match(digits) else None


def _count(value: int, field: str, maximum: int, what: str, shown=None) -> int:
    shown = value if shown is None else shown
    if value < 1:
        raise FieldError(field, f"must be {what}, got {quote(shown)}.")
    if value > maximum:
        raise FieldError(field, f"must be at most {maximum:,}, got {quote(shown)}.")
    return value


def parse_tokens(value, field: str, example: str = "8192 or 32k") -> int:
    """A token count: 8192, or '32k' (k = 1024 tokens), at most MAX_TOKENS."""
    what = f"a positive number of tokens (e.g. {example})"
    number = value if _is_int(value) else _token_count(value) if isinstance(value, str) else None
    if number is None:
        raise FieldError(field, f"must be {what}, got {quote(value)}.")
    return _count(number, field, MAX_TOKENS, what)


def int_list(text: str, field: str, example: str = "1,2,4,8", tokens: bool = False) -> list:
    """'4096,32k' -> [4096, 32768] ('k' = 1024, for token counts only); at most MAX_ITEMS entries."""
    items = str(text).split(",", MAX_ITEMS)
    if len(items) > MAX_ITEMS:
        raise FieldError(field, f"takes at most {MAX_ITEMS} values, got more.")
    what = f"positive whole numbers separated by commas (e.g. {example})"
    values = []
    # "takes ... got" for text that is no number, "must be ..." for a number out of range
    for item in items:
        number = _token_count(item) if tokens else int(item) if _DIGITS.match(item.strip()) else None
        if number is None:
            raise FieldError(field, f"takes {what}, got {quote(item.strip())}.")
        values.append(_count(number, field, MAX_TOKENS, what, item.strip()))
    return values


def require_positive(field: str, value, maximum: int = MAX_TOKENS) -> int:
    if not _is_int(value) or value < 1:
        raise FieldError(field, f"must be a positive integer, got {quote(value)}.")
    if value > maximum:
        raise FieldError(field, f"must be at most {maximum:,}, got {quote(value)}.")
    return value


def require_fraction(field: str, value) -> float:
    """(0, 1], like vLLM's --gpu-memory-utilization."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise FieldError(field, f"must be a fraction in (0, 1] like vLLM's --gpu-memory-utilization, got "
                                f"{quote(value)}.")
    return float(value)
