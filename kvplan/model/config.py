"""The one place a raw config.json is read. `Config` flattens multimodal wrappers to the language model, fills
the defaults a family's config class supplies, and hands out every field the rules use already checked:
integers are integers (an integral float is accepted; a fractional float, a bool, NaN or Infinity is not),
inside a stated range, with an error naming the field and what would be valid. Nothing downstream sees the
raw dict."""

from __future__ import annotations

import math
from typing import Any, Iterable, Optional

from ..errors import KvplanError, quote

# Sane ceilings, far above any real model, so that a typo or an attack cannot ask for unbounded work
# (a per-layer loop over 10**9 layers) or overflow an arithmetic result.
MAX_COUNT = 2**20  # layers, heads, dims, experts, vocabulary entries / 16
MAX_VOCAB = 2**24
MAX_TOKENS = 2**40

# Multimodal wrappers keep the language model's fields one level down.
NESTED_TEXT_KEYS = ("text_config", "llm_config", "language_config")
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")

# Some Hub files omit fields that transformers' config class fills with defaults; serving engines read the
# filled-in values, so we must too. Only families whose published configs rely on this are listed.
FAMILY_DEFAULTS = {
    # transformers Gemma3TextConfig defaults (google/gemma-3-4b-it's text_config names only 5 fields)
    "gemma3_text": {"num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "vocab_size": 262208,
                    "sliding_window": 4096, "sliding_window_pattern": 6, "max_position_embeddings": 131072},
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def as_int(value: Any) -> Optional[int]:
    """`value` as an int when it is one (or an integral, finite float), else None."""
    if _is_int(value):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _first_text_config(raw: dict) -> dict:
    for key in NESTED_TEXT_KEYS:
        inner = raw.get(key)
        if isinstance(inner, dict) and any(inner.get(k) is not None for k in LAYER_KEYS):
            outer = {k: v for k, v in raw.items() if k not in NESTED_TEXT_KEYS}
            return {**outer, **inner}  # the language model wins; the outer config fills gaps (torch_dtype)
    return raw


class Config:
    """A config.json, flattened to its language model, with validated access to its fields."""

    def __init__(self, raw: Any, name: str):
        if not isinstance(raw, dict):
            raise KvplanError(f"config for {name} must be a JSON object of fields, got a {type(raw).__name__}.")
        cfg = _first_text_config(raw)
        defaults = FAMILY_DEFAULTS.get(str(cfg.get("model_type", "")).lower())
        self.fields = {**defaults, **cfg} if defaults else cfg
        self.name = name

    # ---- raw access ----------------------------------------------------------------------------------------

    def has(self, key: str) -> bool:
        return self.fields.get(key) is not None

    def get(self, key: str, default: Any = None) -> Any:
        value = self.fields.get(key)
        return default if value is None else value

    def first(self, keys: Iterable[str]) -> tuple[Optional[str], Any]:
        for key in keys:
            if self.fields.get(key) is not None:
                return key, self.fields[key]
        return None, None

    @property
    def model_type(self) -> str:
        value = self.fields.get("model_type")
        return value.lower() if isinstance(value, str) else ""

    # ---- checked access ------------------------------------------------------------------------------------

    def int(self, keys, *, required: bool = True, minimum: int = 1, maximum: int = MAX_COUNT,
            default: Optional[int] = None) -> Optional[int]:
        """The first of `keys` present, as an integer in [minimum, maximum]. Missing: `default`, or an error
        when required."""
        keys = (keys,) if isinstance(keys, str) else tuple(keys)
        key, value = self.first(keys)
        if key is None:
            if default is not None or not required:
                return default
            also = f" (nor {', '.join(keys[1:])})" if len(keys) > 1 else ""
            raise KvplanError(f"config field '{keys[0]}' is missing{also}; it must be a positive integer.")
        number = as_int(value)
        if number is None or number < minimum:
            kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise KvplanError(f"config field '{key}' must be {kind}, got {quote(value)}.")
        if number > maximum:
            raise KvplanError(f"config field '{key}' must be at most {maximum:,} (far above any real model), got "
                              f"{quote(value)}.")
        return number

    def optional_int(self, keys, *, minimum: int = 0, maximum: int = MAX_COUNT) -> int:
        """An optional count: 0 when absent; checked like int() when present."""
        return self.int(keys, required=False, minimum=minimum, maximum=maximum) or 0

    def flag(self, key: str, default: bool) -> bool:
        value = self.fields.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise KvplanError(f"config field '{key}' must be true or false, got {quote(value)}.")
        return value

    def int_list(self, key: str) -> list:
        """A list of non-negative integers (layer indices)."""
        value = self.fields.get(key)
        if value is None:
            return []
        items = [as_int(v) for v in value] if isinstance(value, list) else None
        if items is None or any(v is None or not 0 <= v <= MAX_COUNT for v in items):
            raise KvplanError(f"config field '{key}' must be a list of layer indices, got {quote(value)}.")
        return items

    def per_layer(self, key: str, n: int, mapping: dict) -> list:
        """One entry per layer (a list, or a string of one-letter codes), each mapped through `mapping`."""
        value = self.fields[key]
        if not isinstance(value, (list, str)) or len(value) != n:
            raise KvplanError(f"config field '{key}' must give one entry per layer ({n}), got {quote(value)}.")
        kinds = []
        for item in value:
            kind = mapping.get(str(item).lower()) if isinstance(item, (str, int)) else None
            if kind is None:
                valid = ", ".join(sorted(mapping))
                raise KvplanError(f"config field '{key}' has unknown layer type {quote(item)}; known: {valid}.")
            kinds.append(kind)
        return kinds
