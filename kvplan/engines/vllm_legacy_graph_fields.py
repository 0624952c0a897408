"""The compilation config's two graph switches vLLM deprecated when cudagraph_mode came (0.10.1), as each release
reads them: use_cudagraph and full_cuda_graph (vllm_compilation.resolve folds them into the mode)."""

from __future__ import annotations

from typing import Optional

from ..errors import FieldError, quote
from .vllm_dotted_flags import release_text as _dotted

CUDAGRAPH_MODE_SINCE = (0, 10, 1)  # cudagraph_mode came; use_cudagraph / full_cuda_graph map onto it
USE_CUDAGRAPH_READ = ((0, 9, 1), (0, 11, 1))  # [from, before): V1 reads use_cudagraph (use_cudagraph)
USE_CUDAGRAPH_UNTIL = (0, 11, 1)  # the first release without the field
USE_CUDAGRAPH_FALSE = "use_cudagraph false (--compilation-config)"  # the graph term's words (resolve records them)
BOOL_TEXTS = {**dict.fromkeys(("0", "off", "f", "false", "n", "no"), False),
              **dict.fromkeys(("1", "on", "t", "true", "y", "yes"), True)}


def use_cudagraph(fields: dict, release: tuple) -> Optional[bool]:
    """use_cudagraph of the compilation config as vLLM `release` reads it; None where given to no effect or not given.

    - 0.6.5-0.9.0 a field (config.py 0.6.5:2601, 0.8.5:3427, 0.9.0:3798) that V1 sets True itself without
      --enforce-eager (0.8.5:3884-3893, 0.9.0:4307-4316) and V0 never reads: no effect.
    - 0.9.1-0.10.0 V1 reads it: 0.9.1's piecewise backend captures no size without it (compilation/
      cuda_piecewise_backend.py 0.9.1:74-76), the runner of 0.9.2-0.10.0 skips capture_model (v1/worker/
      gpu_model_runner.py 0.9.2:218-222, 0.10.0:220-224).
    - 0.10.1-0.11.0 deprecated: False is cudagraph_mode NONE, and with a cudagraph_mode given, or full_cuda_graph
      true, a ValueError at parse ("... are mutually exclusive": config/compilation.py 0.10.1:442-459, 0.10.2:
      445-462, 0.11.0:464-481).
    - 0.11.1-0.12.x gone: the pydantic dataclass drops the key (TypeAdapter(...).validate_json, arg_utils.py
      0.11.1:273-275); from 0.13 refused as any field the release lacks (_check_fields).
    The value as pydantic's lax bool (0.8-0.11.0): JSON true / false, 0 / 1, or a text such as "false", "no"."""
    if "use_cudagraph" not in fields or release >= USE_CUDAGRAPH_UNTIL:
        return None
    on = lax_bool(fields["use_cudagraph"], "use_cudagraph", release)
    if not USE_CUDAGRAPH_READ[0] <= release < USE_CUDAGRAPH_READ[1]:
        return None
    if not on and release >= CUDAGRAPH_MODE_SINCE:
        other = ("cudagraph_mode" if fields.get("cudagraph_mode") is not None
                 else "full_cuda_graph" if full_cuda_graph(fields, release) else None)
        if other:
            raise FieldError("compilation_config", f"use_cudagraph false and {other} are mutually exclusive in vLLM "
                                                   f"{_dotted(release)}, which sets cudagraph_mode NONE for "
                                                   f"use_cudagraph false and refuses a second mode (ValueError at "
                                                   f"parse); give cudagraph_mode alone (NONE for no graphs).")
    return on


def full_cuda_graph(fields: dict, release: tuple) -> bool:
    """Whether the deprecated full_cuda_graph sets cudagraph_mode FULL in vLLM `release` (0.10.1-0.11.0: compilation.py
    0.10.1:452-459, 0.10.2:455-462, 0.11.0:474-481, after use_cudagraph's migration); a ValueError at parse beside a
    cudagraph_mode given. Before 0.10.1 it picks V1's full graph at the level 3 V1 sets itself: graphs either way,
    nothing kvplan reads (a key 0.8 ignores, a field 0.9.x's dataclass takes unchecked); 0.11.1-0.12 drop the key,
    0.13+ refuse it (_check_fields). `Optional[bool]` (0.10.1:292, 0.11.0:291): null is None, else a lax bool."""
    value = fields.get("full_cuda_graph")
    if value is None or not CUDAGRAPH_MODE_SINCE <= release < USE_CUDAGRAPH_UNTIL:
        return False
    on = lax_bool(value, "full_cuda_graph", release)
    if on and fields.get("cudagraph_mode") is not None:
        raise FieldError("compilation_config", f"full_cuda_graph and cudagraph_mode are mutually exclusive in vLLM "
                                               f"{_dotted(release)}, which sets cudagraph_mode FULL for "
                                               f"full_cuda_graph true and refuses a second mode (ValueError at "
                                               f"parse); give cudagraph_mode alone (FULL for full graphs).")
    return on


def lax_bool(value, name: str, release: tuple) -> bool:
    """A bool field as pydantic's lax mode reads it (TypeAdapter.validate_json, engine/arg_utils.py 0.10.1:189):
    JSON true / false, 0 / 1, or BOOL_TEXTS."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in BOOL_TEXTS:
        return BOOL_TEXTS[value.lower()]
    raise FieldError("compilation_config", f"{name} takes true or false (vLLM {_dotted(release)} validates it as a "
                                           f"bool), got {quote(value)}.")
