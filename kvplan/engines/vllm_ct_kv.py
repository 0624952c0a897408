"""vLLM's refusal of a compressed-tensors checkpoint's kv_cache_scheme, release by release (paths under vllm/ of the
release named; kvplan copies no vLLM code). It is raised as an ordinary Attention layer is built, so it counts where
the parser kept a scheme (ModelSpec.kv_cache_scheme: the checkpoint has such layers).

- The scheme itself: every Attention layer of a compressed-tensors checkpoint gets a CompressedTensorsKVCacheMethod
  (compressed_tensors.py 0.20.0:193-194), whose __init__ validates it (validate_kv_cache_scheme, 0.11.0:763-797,
  0.16.0:930-971, 0.34.0:1099-1141), in this order:
  - type and num_bits: refused where type is not "float" AND num_bits is not 8 up to 0.23 (0.23.0:986, so an int8
    scheme passes and the layer makes its cache fp8), where either differs from 0.24 (0.24.0:986, 0.34.0:1117);
  - strategy: "tensor" only up to 0.14 (0.14.1:969), "tensor" or "attn_head" from 0.15 (0.15.0 and 0.15.1 :984,
    0.16.0:957, 0.34.0:1125-1128;
    from 0.17 through QuantizationStrategy, whose unknown names raise as well);
  - symmetric: must be true (0.11.0:792-797, 0.34.0:1136-1141).
- None of it where the architecture builds its attention layers without quant_config (vllm_e5m2.
  NO_QUANT_CONFIG_ATTENTION: Jamba, BailingMoe, LFM2, ...): no layer gets the method, so nothing validates the scheme.
- fp8_e5m2: the refusal of an fp8_e5m2 cache beside this config (with a scheme or, up to 0.23, without), as beside an
  fp8 or ModelOpt one, is vllm_e5m2.py's.
"""

from __future__ import annotations

from typing import Optional

from .figures import Refusal
from .vllm_e5m2 import attention_without_quant_config
from .vllm_versions import PINNED, parse_version, release_rule

TYPE_BITS = ("Currently supported kv cache quantization is num_bits=8, type=float, however received "
             "num_bits={num_bits}, type={type}")
STRATEGY_014 = ("Only support per-tensor scaling factor for compressed-tensors KV cache. Expected strategy: tensor, "
                "found strategy: {strategy}")
STRATEGY = ("Invalid strategy for compressed-tensors KV cache. Expected strategies: ('tensor', 'attn_head'), "
            "found strategy: {strategy}")
SYMMETRIC = ("Only support symmetric scaling factor for compressed-tensors KV cache. However found symmetric: "
             "{symmetric}")

# the first release of each rule, newest first
BOTH_TYPE_AND_BITS = (((0, 24), True, "0.24.0 compressed_tensors.py:986 `or`"),
                      ((0, 11), False, "0.11.0 :779, 0.23.0 :986 `and`"))
STRATEGIES = (((0, 15), ("tensor", "attn_head"), "0.15.0 compressed_tensors.py:984 (0.15.1 the same; 0.16.0 :957)"),
              ((0, 11), ("tensor",), "0.11.0 :786, 0.14.1 :969"))
RELEASES = ("0.14.1", "0.15.0", "0.23.0", "0.24.0")  # where a rule here changes (0.14.1: the last before 0.15)


def _shown(value) -> str:
    return "None" if value is None else str(value)


def scheme_problem(scheme: tuple, version: str = PINNED) -> str:
    """vLLM `version`'s words refusing the kv_cache_scheme fields `scheme` ((key, value), ...; '' where it passes)."""
    if not scheme:
        return ""
    fields = dict(scheme)
    kind, bits = fields.get("type"), fields.get("num_bits")
    wrong = (kind != "float", bits != 8)
    if any(wrong) if release_rule(BOTH_TYPE_AND_BITS, version, False) else all(wrong):
        return TYPE_BITS.format(num_bits=_shown(bits), type=_shown(kind))
    strategies = release_rule(STRATEGIES, version, ("tensor",))
    if fields.get("strategy") not in strategies:
        words = STRATEGY if len(strategies) > 1 else STRATEGY_014
        return words.format(strategy=_shown(fields.get("strategy")))
    if not fields.get("symmetric"):
        return SYMMETRIC.format(symmetric=_shown(fields.get("symmetric")))
    return ""


def kv_scheme_refusal(spec, version: str = PINNED) -> Optional[Refusal]:
    """vLLM's refusal of the checkpoint's kv_cache_scheme (scheme_problem) as its attention layers are built (none
    where they get no quant_config); the releases around `version` that take it are the fix search's options."""
    if attention_without_quant_config(spec, version):
        return None
    problem = scheme_problem(getattr(spec, "kv_cache_scheme", ()), version)
    if not problem:
        return None
    takes = tuple(f"vllm=={r}" for r in RELEASES if not scheme_problem(spec.kv_cache_scheme, r))
    newer = tuple(r for r in takes if parse_version(r[6:]) > parse_version(version))
    options, onward = (newer[:1], "newer") if newer else (takes[-1:], "older" if takes else "")
    return Refusal(problem, None, configuration=True, field="quantization", fix_field="engine", options=options,
                   onward=onward)

