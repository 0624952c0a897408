"""KV-cache precisions: bits per element and the scale bytes each quantised vector carries.

Schemes (what the byte counts assume):
- fp32 / fp16 / bf16: plain storage, no scales.
- fp8 (e4m3, e5m2): one scale per layer for K and one for V (vLLM's `--kv-cache-dtype fp8`); those few
  bytes live outside the paged cache, so a token costs exactly 1 byte per element.
- int8 / int4: asymmetric per-token, per-head quantisation (LMDeploy's `quant_policy` 8/4 scheme): each
  head's K vector and V vector carry an fp16 scale and an fp16 zero-point, i.e. 4 bytes per vector.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import FieldError, quote


@dataclass(frozen=True)
class Precision:
    name: str
    bits: int
    scale_bytes_per_vector: int
    scheme: str

    def bytes_for(self, elements: int, vectors: int) -> int:
        """Bytes of `elements` values grouped in `vectors` per-head vectors (elements*bits is always whole
        bytes: head dims are even)."""
        return elements * self.bits // 8 + vectors * self.scale_bytes_per_vector


PRECISIONS = {
    "fp32": Precision("fp32", 32, 0, "float32"),
    "fp16": Precision("fp16", 16, 0, "float16"),
    "bf16": Precision("bf16", 16, 0, "bfloat16"),
    "fp8_e4m3": Precision("fp8_e4m3", 8, 0, "fp8 e4m3, per-tensor k/v scales outside the cache"),
    "fp8_e5m2": Precision("fp8_e5m2", 8, 0, "fp8 e5m2, per-tensor k/v scales outside the cache"),
    "int8": Precision("int8", 8, 4, "int8, fp16 scale + zero-point per token per head"),
    "int4": Precision("int4", 4, 4, "int4, fp16 scale + zero-point per token per head"),
}

# Spellings users type (vLLM's --kv-cache-dtype names, torch dtype names, config torch_dtype values).
ALIASES = {
    "float32": "fp32", "float": "fp32",
    "float16": "fp16", "half": "fp16",
    "bfloat16": "bf16",
    "fp8": "fp8_e4m3", "fp8_e4m3fn": "fp8_e4m3", "e4m3": "fp8_e4m3", "float8_e4m3fn": "fp8_e4m3",
    "fp8e4m3": "fp8_e4m3", "fp8_e5m2": "fp8_e5m2", "e5m2": "fp8_e5m2", "float8_e5m2": "fp8_e5m2",
    "fp8e5m2": "fp8_e5m2",
}

VALID_KV_DTYPES = "auto, " + ", ".join(PRECISIONS) + " (or fp8, float16, bfloat16, float32)"


# Bytes per element of the dtypes a checkpoint computes in.
DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}


def normalize_dtype_name(name: str) -> str | None:
    key = str(name).strip().lower().replace("torch.", "").replace("-", "_")
    key = ALIASES.get(key, key)
    return key if key in PRECISIONS else None


def check_kv_dtype(name) -> str:
    """`name` when it is `auto` or a known KV-cache precision (before the model's dtype is known)."""
    if isinstance(name, str) and (name.strip().lower() == "auto" or normalize_dtype_name(name)):
        return name.strip()
    raise FieldError("kv_dtype", f"{quote(name)} is not a known KV-cache precision; use one of {VALID_KV_DTYPES}.")


def resolve_kv_dtype(name: str, model_dtype: str) -> Precision:
    """`auto` means the model's own dtype, as in vLLM."""
    name = check_kv_dtype(name)
    return PRECISIONS[model_dtype] if name.lower() == "auto" else PRECISIONS[normalize_dtype_name(name)]
