"""Sizes and token counts as people write them: `10GiB`, `80GB`, `1.5e9`; `8192`, `32k`."""

from __future__ import annotations

import re

from .errors import FieldError, quote

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_size(text, field: str) -> int:
    """Bytes from '10GiB', '80GB' or a plain number; FieldError naming `field` otherwise."""
    match = _SIZE.match(str(text))
    unit = match and match.group(2).lower()
    if not match or unit not in _UNITS:
        raise FieldError(field, f"{quote(text)} is not a size; write bytes or a number with a unit, e.g. 10GiB, "
                                f"80GB, 512MiB.")
    value = int(float(match.group(1)) * _UNITS[unit])
    if value <= 0:
        raise FieldError(field, f"must be a positive size, got {quote(text)}.")
    return value


def parse_tokens(value, field: str, example: str = "8192 or 32k") -> int:
    """A token count: 8192, or '32k' (k = 1024 tokens)."""
    if isinstance(value, str):
        text = value.strip().lower()
        digits = text[:-1] if text.endswith("k") else text
        if digits.isdigit() and int(digits) > 0:
            return int(digits) * (1024 if text.endswith("k") else 1)
    elif isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise FieldError(field, f"must be a positive number of tokens (e.g. {example}), got {quote(value)}.")


def int_list(text: str, field: str, example: str = "1,2,4,8", tokens: bool = False) -> list:
    """'4096,32k' -> [4096, 32768] ('k' = 1024, for token counts only)."""
    values = []
    for item in str(text).split(","):
        item = item.strip().lower()
        scale = 1024 if tokens and item.endswith("k") else 1
        digits = item[:-1] if scale > 1 else item
        if not digits.isdigit() or int(digits) * scale < 1:
            raise FieldError(field, f"takes positive whole numbers separated by commas (e.g. {example}), got "
                                    f"{quote(item)}.")
        values.append(int(digits) * scale)
    return values


def require_positive(field: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FieldError(field, f"must be a positive integer, got {quote(value)}.")
    return value


def require_fraction(field: str, value) -> float:
    """(0, 1], like vLLM's --gpu-memory-utilization."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise FieldError(field, f"must be a fraction in (0, 1] like vLLM's --gpu-memory-utilization, got "
                                f"{quote(value)}.")
    return float(value)
