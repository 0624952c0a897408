"""KV-cache precisions: exactly the values vLLM 0.34's `--kv-cache-dtype` takes (`CacheDType` in
vllm/config/cache.py; each release's own list: engines/vllm_versions.py KV_DTYPE_SINCE), and what one token of one
layer costs in each, as vLLM's attention backends lay the cache out (their `customize_spec`, which sets the page's
per-head content bytes):

- auto: the model's dtype. float16 / bfloat16: 2 bytes per element.
- fp8 (fp8_e4m3's bytes here; the engine model keeps the two spellings apart where vLLM's sparse MLA backends do),
  fp8_e4m3, fp8_e5m2, fp8_inc (Intel Gaudi's e4m3): 1 byte per element; the per-tensor K/V scales live outside the
  paged cache.
- int8_per_token_head, fp8_per_token_head: 1 byte per element plus an fp32 scale after each head's K and V
  (v1/attention/backends/triton_attn.py); MLA keeps one fp32 scale pair after the latent
  (model_executor/layers/attention/mla_attention.py `MLACommonBackend.customize_spec`).
  int4_per_token_head: the same with two values packed per byte.
- nvfp4, nvfp4_4over6 (FlashInfer): per head and side `dim/2` bytes of fp4 data plus `dim/16` fp8 block scales
  (vllm/utils/torch_utils.py `nvfp4_kv_cache_full_dim`).
- turboquant_k8v4 / _4bit_nc / _k3v4_nc / _3bit_nc: one packed K+V slot per head
  (model_executor/layers/quantization/turboquant/config.py `slot_size_aligned`): keys as fp8 (8 bits) or
  Lloyd-Max indices + an fp16 norm, values as 3-4 bit codes + fp16 scale and zero, rounded up to even bytes.
  vLLM keeps the first and last two layers of a dense model unquantised; kvplan counts every layer packed.
- ultraquant_4bit: one slot per head of fp4 K and V codes with one UE8M0 scale per 32 values
  (v1/attention/ops/ultraquant/format.py `slot_size`).
- octave_k3v4 / octave_k3v3 / octave_k3v3_compact (vLLM 0.33 on, ROCm's ROCM_OCTAVE backend only): one packed K+V
  slot per head (0.33.0 v1/attention/ops/rocm_octave.py:101-180 OctaveFormat.slot_bytes): K's rotary dims in 4-bit
  codes and the rest in 3-bit (compact: every K dim 3-bit), V in 4 or 3 bits, one fp16 scale per 64 K dims (compact:
  one) and one for V, padded to 8 bytes (compact: 4). The rotary width is the model's; kvplan counts 64, the only
  one vLLM's kernels take (v1/attention/backends/rocm_octave_attn.py:64-65, :292-301).
- fp8_ds_mla / nvfp4_ds_mla: FlashMLA-sparse's opaque per-token MLA entry, 656 / 352 bytes
  (mla_attention.py), for DeepSeek-style latents only.

kvplan's JSON names a plan's precision by its short name (bf16, fp16, fp8_e4m3, ...), stable across releases. The
value as written (`fp8` or `fp8_e4m3`: one precision, but vLLM's sparse MLA backends list them apart) rides along as
Precision.spelling for the engine rules that read it (engines/vllm_sparse.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Optional

from ..errors import FieldError, quote
from .choices import exact_choice

FP32_SCALE = 4  # bytes of one per-token-head scale


@dataclass(frozen=True)
class Precision:
    name: str  # kvplan's name in results: bf16, fp16, fp8_e4m3, int8_per_token_head, ...
    bits: int  # bits of one stored value
    scheme: str  # what the byte counts assume, in words
    layout: str = "plain"  # plain | per_token_head | nvfp4 | turboquant | ultraquant | octave | ds_mla
    key_bits: Optional[int] = None  # turboquant: key bits (8 = fp8 keys); octave: bits of K's rotary dims
    mla_token_bytes: Optional[int] = None  # ds_mla: the opaque per-token entry
    # the --kv-cache-dtype value as asked ("fp8" or "fp8_e4m3" for fp8_e4m3); "" for auto or a precision built here
    spelling: str = ""
    # asked as `--kv-cache-dtype auto` (what the model or its checkpoint stores then), not by name
    auto: bool = field(default=False, compare=False)
    # the precision asked where the engine keeps this one in its place for the model's own layers (sparse MLA's and
    # DeepSeek-V4's fp8_ds_mla: engines/vllm_kv_dtype.py cache_precision), which other layers keep as asked (a
    # drafter's ordinary attention layers: model/kinds.py FullAttention.cached_as); None where it is the one asked
    asked: Optional["Precision"] = field(default=None, compare=False, repr=False)

    @property
    def vllm_dtype(self) -> str:
        """The --kv-cache-dtype value this precision was asked as; vLLM's own first spelling when not known
        ("fp8" for fp8_e4m3: the spelling kvplan modelled before it kept the two apart)."""
        return self.spelling or {"fp8_e4m3": "fp8"}.get(self.name) or vllm_name(self.name)

    @property
    def scale_bytes_per_vector(self) -> int:
        """Scale bytes stored inside the cache with each head's K or V vector (0 for plain and fp8)."""
        return FP32_SCALE if self.layout == "per_token_head" else 0

    @property
    def quantized(self) -> bool:
        return self.bits < 16

    def _data(self, dim: int) -> int:
        return dim * self.bits // 8

    def head_bytes(self, head_dim: int, value_dim: Optional[int] = None) -> int:
        """Bytes one token's K and V of one KV head occupy in the paged cache."""
        value_dim = head_dim if value_dim is None else value_dim
        if self.layout == "ds_mla":
            raise FieldError("kv_dtype", f"{self.name} is vLLM's FlashMLA-sparse layout for DeepSeek-style MLA "
                                         f"models; this model has ordinary KV heads, so use fp8 or "
                                         f"fp8_per_token_head.")
        if self.layout == "nvfp4":
            return sum(d // 2 + d // 16 for d in (head_dim, value_dim))
        if self.layout == "turboquant":
            key = head_dim if self.key_bits == 8 else math.ceil(head_dim * self.key_bits / 8) + 2
            slot = key + math.ceil(head_dim * self.bits / 8) + 4
            return slot + slot % 2
        if self.layout == "ultraquant":
            return 2 * (head_dim // 2 + head_dim // 32)
        if self.layout == "octave":
            return octave_slot(head_dim, self.bits, compact=self.key_bits == OCTAVE_NOPE_BITS)
        return self._data(head_dim) + self._data(value_dim) + 2 * self.scale_bytes_per_vector

    def latent_bytes(self, kv_lora_rank: int, rope_dim: int) -> int:
        """Bytes one token's MLA latent (kv_lora_rank + rope dims, shared by all heads) occupies."""
        if self.layout == "ds_mla":
            return self.mla_token_bytes
        if self.layout in ("nvfp4", "turboquant", "ultraquant", "octave"):
            raise FieldError("kv_dtype", f"{self.name} is not available for MLA models in vLLM; use fp8, "
                                         f"fp8_per_token_head or fp8_ds_mla.")
        dim = kv_lora_rank + rope_dim
        return self._data(dim) + 2 * self.scale_bytes_per_vector

    def bytes_for(self, elements: int, vectors: int) -> int:
        """Bytes of `elements` plain or per-token-head values grouped in `vectors` per-head vectors."""
        return self._data(elements) + vectors * self.scale_bytes_per_vector


def _tq(name: str, key_bits: int, value_bits: int) -> Precision:
    keys = "fp8 keys" if key_bits == 8 else f"{key_bits}-bit Lloyd-Max keys + fp16 norm"
    return Precision(name, value_bits, f"TurboQuant: {keys}, {value_bits}-bit values + fp16 scale/zero, one "
                                       f"K+V slot per head (vLLM keeps the first/last 2 layers unquantised; "
                                       f"counted packed here)", "turboquant", key_bits)


OCTAVE_BLOCK, OCTAVE_ROPE_DIM = 64, 64  # rocm_octave.py HADAMARD_BLOCK; rocm_octave_attn.py _KERNEL_ROPE_DIM
OCTAVE_ROPE_BITS, OCTAVE_NOPE_BITS = 4, 3  # rocm_octave.py ROPE_BITS, NOPE_BITS


def octave_slot(head_dim: int, value_bits: int, compact: bool = False, rope_dim: int = OCTAVE_ROPE_DIM) -> int:
    """Bytes of one (token, KV head) Octave slot: [K rotary codes][K other codes][V codes][fp16 scales], padded
    (0.33.0 rocm_octave.py OctaveFormat: off_k_nope, off_v, off_scales, slot_bytes)."""
    wide = 0 if compact else rope_dim
    codes = wide * OCTAVE_ROPE_BITS // 8 + (head_dim - wide) * OCTAVE_NOPE_BITS // 8 + head_dim * value_bits // 8
    scales = (1 if compact else math.ceil(head_dim / OCTAVE_BLOCK)) + 1
    align = 4 if compact else 8
    return math.ceil((codes + 2 * scales) / align) * align


def _octave(name: str, value_bits: int, compact: bool) -> Precision:
    keys = "3-bit K codes, one scale" if compact else "4-bit rotary / 3-bit other K codes, a scale per 64 dims"
    return Precision(name, value_bits, f"Octave (ROCm only): {keys}, {value_bits}-bit V codes + fp16 scale, one K+V "
                                       f"slot per head (64 rotary dims counted)", "octave",
                     OCTAVE_NOPE_BITS if compact else OCTAVE_ROPE_BITS)


PRECISIONS = {p.name: p for p in (
    Precision("fp32", 32, "float32"),  # only as a model dtype; vLLM's --kv-cache-dtype has no float32
    Precision("fp16", 16, "float16"),
    Precision("bf16", 16, "bfloat16"),
    Precision("fp8_e4m3", 8, "fp8 e4m3, per-tensor K/V scales outside the cache"),
    Precision("fp8_e5m2", 8, "fp8 e5m2, per-tensor K/V scales outside the cache"),
    Precision("fp8_inc", 8, "fp8 e4m3 through Intel Neural Compressor (Gaudi), per-tensor scales"),
    Precision("fp8_per_token_head", 8, "fp8 with an fp32 scale per token per head (K and V)", "per_token_head"),
    Precision("int8_per_token_head", 8, "int8 with an fp32 scale per token per head (K and V)", "per_token_head"),
    Precision("int4_per_token_head", 4, "int4, two per byte, with an fp32 scale per token per head (K and V)",
              "per_token_head"),
    Precision("nvfp4", 4, "NVFP4: fp4 values + one fp8 scale per 16, K and V per head", "nvfp4"),
    Precision("nvfp4_4over6", 4, "NVFP4 (max/4 or max/6 scales): fp4 values + one fp8 scale per 16", "nvfp4"),
    _tq("turboquant_k8v4", 8, 4), _tq("turboquant_4bit_nc", 4, 4), _tq("turboquant_k3v4_nc", 3, 4),
    _tq("turboquant_3bit_nc", 3, 3),
    Precision("ultraquant_4bit", 4, "UltraQuant: fp4 K and V codes + one UE8M0 scale per 32 values, one slot "
                                    "per head", "ultraquant"),
    _octave("octave_k3v4", 4, False), _octave("octave_k3v3", 3, False), _octave("octave_k3v3_compact", 3, True),
    Precision("fp8_ds_mla", 8, "FlashMLA-sparse fp8 entry: 656 bytes per token per MLA layer (DeepSeek-V4: 584 "
                               "per latent)", "ds_mla", mla_token_bytes=656),
    Precision("nvfp4_ds_mla", 4, "FlashMLA-sparse NVFP4 entry: 352 bytes per token per MLA layer", "ds_mla",
              mla_token_bytes=352),
)}

# vLLM 0.34's --kv-cache-dtype values (vllm/config/cache.py CacheDType), each to its precision; `auto` is the
# model's dtype.
VLLM_KV_DTYPES = {
    "float16": "fp16", "bfloat16": "bf16", "fp8": "fp8_e4m3", "fp8_e4m3": "fp8_e4m3", "fp8_e5m2": "fp8_e5m2",
    **{name: name for name in ("fp8_inc", "fp8_ds_mla", "nvfp4_ds_mla", "turboquant_k8v4", "turboquant_4bit_nc",
                               "turboquant_k3v4_nc", "turboquant_3bit_nc", "octave_k3v4", "octave_k3v3",
                               "octave_k3v3_compact", "ultraquant_4bit", "int4_per_token_head", "int8_per_token_head",
                               "fp8_per_token_head", "nvfp4", "nvfp4_4over6")},
}
# Spellings kvplan's results use (its JSON `kv_dtype`): read by the planner's own calls (resolve_kv_dtype), refused
# as the user's input (check_kv_dtype names vLLM's spelling), as `vllm serve` refuses them.
RESULT_NAMES = {"fp16": "fp16", "bf16": "bf16"}
NEWEST_KV_DTYPES = ("auto",) + tuple(VLLM_KV_DTYPES)  # what a refusal lists when no release is chosen (--engine none)
# Names vLLM does not take, with what it calls the same thing.
NOT_VLLM = {"int8": "int8_per_token_head", "int4": "int4_per_token_head", "fp32": "auto (vLLM's KV cache has no "
            "float32)", "float32": "auto (vLLM's KV cache has no float32)", "half": "float16", "fp4": "nvfp4",
            "fp8_e4m3fn": "fp8_e4m3"}

# Bytes per element of the dtypes a checkpoint computes in.
DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}
_MODEL_DTYPES = {"bfloat16": "bf16", "bf16": "bf16", "float16": "fp16", "fp16": "fp16", "half": "fp16",
                 "float32": "fp32", "fp32": "fp32", "float": "fp32"}


def vllm_name(name: str) -> str:
    """A precision as vLLM's --kv-cache-dtype spells it (bf16 -> bfloat16)."""
    return {"bf16": "bfloat16", "fp16": "float16"}.get(name, name)


def normalize_dtype_name(name: str) -> Optional[str]:
    """A config's torch_dtype ('bfloat16', 'torch.float16', 'float32') as kvplan's short name, or None."""
    key = str(name).strip().lower().replace("torch.", "").replace("-", "_")
    return _MODEL_DTYPES.get(key)


def kv_dtype_name(name) -> Optional[str]:
    """The precision a --kv-cache-dtype value names ('auto' stays 'auto'), or None when vLLM does not take it."""
    if not isinstance(name, str):
        return None
    key = name.strip().lower()
    if key == "auto":
        return "auto"
    return VLLM_KV_DTYPES.get(key) or RESULT_NAMES.get(key)


def check_kv_dtype(name, choices: tuple = NEWEST_KV_DTYPES, release: Optional[str] = None) -> str:
    """`name` when it is `auto` or one of vLLM's KV-cache dtypes, spelled as vLLM spells them (model/choices.py:
    `FP8`, `Auto` and kvplan's own `bf16` stop `vllm serve`, so they are refused here, the one check of every
    command's input). A refusal lists `choices`, vLLM `release`'s --kv-cache-dtype values: the chosen engine's
    (engines/vllm_engine.py VllmEngine.known_kv_dtype); None: no release is chosen (--engine none), the newest read,
    0.34's."""
    # FP8, Auto: refused, as vLLM refuses them, naming vLLM's spelling where the release takes it (else the list)
    spelled = exact_choice("kv_dtype", name, NEWEST_KV_DTYPES, choices)
    if spelled is not None:
        return spelled
    key = str(name).strip().lower() if isinstance(name, str) else None
    if key in RESULT_NAMES and vllm_name(key) in choices:  # bf16 / fp16: kvplan's JSON names a precision so
        raise FieldError("kv_dtype", f"{quote(name)} is kvplan's short name for the precision in its results; "
                                     f"vLLM's --kv-cache-dtype spells it {vllm_name(key)}.")
    hint = NOT_VLLM.get(key) if key else None
    if hint and hint.split()[0] in choices:  # a hint the release takes (int8_per_token_head: 0.20 on); else the list
        raise FieldError("kv_dtype", f"{quote(name)} is not one of vLLM's KV-cache dtypes; use {hint}.")
    whose = f"vLLM {release}'s --kv-cache-dtype values" if release else \
        "vLLM 0.34's --kv-cache-dtype values, the newest release kvplan reads: no release is chosen"
    raise FieldError("kv_dtype", f"{quote(name)} is not a KV-cache dtype vLLM takes; use one of {', '.join(choices)} "
                                 f"({whose}).")


def resolve_kv_dtype(name: str, model_dtype: str, auto: str = "") -> Precision:
    """`auto` means the model's own dtype, as in vLLM, or the cache format a model's attention defaults to
    (`auto`: ModelSpec.auto_kv_dtype). An explicit value keeps its spelling (Precision.spelling): vLLM's sparse MLA
    backends take `fp8` and `fp8_e4m3` apart."""
    key = kv_dtype_name(name)  # kvplan's own names too (bf16): the commands checked the user's spelling
    if key is None:
        check_kv_dtype(name)  # says why
    if key == "auto":
        resolved = PRECISIONS[kv_dtype_name(auto) if auto else model_dtype]  # vLLM's spelling ("fp8") or kvplan's
        # a model's own default (GLM-5.x on SM10x) or its checkpoint's (vllm_kv_dtype.CHECKPOINT_KV)
        return replace(resolved, spelling=auto, auto=True) if auto else replace(resolved, auto=True)
    return replace(PRECISIONS[key], spelling=vllm_name(name.strip().lower()))
