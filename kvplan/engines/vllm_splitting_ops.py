"""vLLM's set_splitting_ops_for_v1: two compilation-config fields that take the piecewise CUDA graphs away under
VLLM_COMPILE (0.11.1+), so a plan that keeps FULL_AND_PIECEWISE or PIECEWISE past them keeps a graph vLLM drops.

- `splitting_ops: []` (no op to split the compiled forward at, so no piece to capture): PIECEWISE -> NONE,
  FULL_AND_PIECEWISE -> FULL, the full modes kept (config/compilation.py 0.11.1:807-826, 0.12.0:976-995, 0.13.0:
  931-956, 0.20.0:1125-1150, 0.24.0:1140-1165, 0.28.0:1187-1212, 0.32.0:1208-1233, 0.34.0:1374-1399).
- `pass_config.fuse_attn_quant: true` (attention + quant fusion) with splitting_ops not given: PIECEWISE and
  FULL_AND_PIECEWISE -> FULL (set_splitting_ops_for_attn_fusion, has_piecewise_cudagraphs: 0.11.1:833-847, 0.12.0:
  1002-1016, 0.13.0:978-992, 0.20.0:1189-1203, 0.32.0:1253-1267, 0.34.0:1419-1433). It takes the empty-list rule's
  place: with it on, splitting_ops given (an empty list too) is kept and so is the mode. The field is
  enable_attn_fusion in 0.11.1 (:105, read :792), both in 0.12 (fuse_attn_quant :113; enable_attn_fusion, deprecated,
  sets it where given: :129, :235-240), fuse_attn_quant alone from 0.13 (PassConfig forbids other fields, 0.13.0:
  99). No other condition enters the mode change: not the model's quantization nor the KV-cache dtype (the fusion
  pass matches fp8 quant ops later, whatever it finds), and vLLM's own default is off at every -O (IS_QUANTIZED =
  False: config/vllm.py 0.12.0:76, 0.20.0:85, 0.34.0:178), so default flags move nothing.
- `use_inductor_graph_partition: true`: 0.11.1-0.12 skip both rules (compilation.py 0.11.1:788-790, 0.12.0:957-959),
  0.13+ the fusion rule alone (0.13.0:918, 0.34.0:1331); the empty list still applies.
- VLLM_COMPILE alone: 0.11.1 calls it there (config/vllm.py 0.11.1:631-632), 0.12+ return early below it
  (compilation.py 0.12.0:945-948, 0.34.0:1327-1330), after the compilation and graph modes are settled (config/
  vllm.py 0.34.0:2068-2074). So not with breakable CUDA graphs, which set the mode NONE first (0.34.0:1724;
  vllm_breakable.py): their graph view keeps the mode from before this rule (Graphs.breakable_mode).

A pooling model's (and -dcp's) downgrade to PIECEWISE comes before this rule (config/vllm.py 0.34.0:1863-1873), so
[] leaves such a plan NONE and fuse_attn_quant FULL: vllm_full_downgrade.py runs this rule after it.

Not modelled: 0.10.1-0.11.0's older rule (an empty list turns PIECEWISE FULL: 0.10.1:548-560, 0.11.0:597-612);
sequence parallelism's own empty list (pass_config.enable_sp / fuse_gemm_comms, 0.20.0:1152-1170, conditional on TP
and the hidden size).
"""

from __future__ import annotations

from typing import Optional

from ..errors import FieldError, quote
from .vllm_dotted_flags import release_text as _dotted
from .vllm_legacy_graph_fields import lax_bool

SINCE = (0, 11, 1)
PARTITION_SKIPS_BOTH_UNTIL = (0, 13)  # 0.11.1-0.12: inductor graph partition returns before either rule
FUSE_ATTN_QUANT_SINCE = (0, 12)
ENABLE_ATTN_FUSION_UNTIL = (0, 13)
PIECEWISE_MODES = ("PIECEWISE", "FULL_AND_PIECEWISE")


def splitting_ops(fields: dict, release: tuple) -> Optional[list]:
    """The compilation config's splitting_ops (None: not given), a list of op names as vLLM validates it."""
    value = fields.get("splitting_ops")
    if value is None or release < SINCE:
        return None
    if not isinstance(value, list) or not all(isinstance(op, str) for op in value):
        raise FieldError("compilation_config", f"splitting_ops takes a list of op names (vLLM {_dotted(release)} "
                                               f"validates it as list[str]), got {quote(value)}.")
    return value


def fuse_attn_quant(fields: dict, release: tuple) -> bool:
    """Whether pass_config's attention + quant fusion is on as vLLM `release` reads it (module docstring); off where
    not given (vLLM's default at every -O)."""
    config = fields.get("pass_config")
    if config is None or release < SINCE:
        return False
    if not isinstance(config, dict):
        raise FieldError("compilation_config", f"pass_config takes a JSON object of PassConfig fields, got "
                                               f"{quote(config)}.")
    if "enable_attn_fusion" in config and release >= ENABLE_ATTN_FUSION_UNTIL:
        raise FieldError("compilation_config", f"pass_config.enable_attn_fusion is not a field of vLLM "
                                               f"{_dotted(release)}'s PassConfig, which refuses it (gone in 0.13); "
                                               f"write fuse_attn_quant.")
    names = ("enable_attn_fusion",) if release < FUSE_ATTN_QUANT_SINCE else ("enable_attn_fusion", "fuse_attn_quant") \
        if release < ENABLE_ATTN_FUSION_UNTIL else ("fuse_attn_quant",)
    for name in names:  # the deprecated name first: 0.12 copies it over the new one where given
        if config.get(name) is not None:
            return lax_bool(config[name], f"pass_config.{name}", release)
    return False


def pieces_left(mode: Optional[str], fields: dict, release: tuple, compiled: bool) -> tuple:
    """(mode, why): the graph mode `mode` (None: FULL_AND_PIECEWISE) after set_splitting_ops_for_v1 reads the
    compilation config `fields` in vLLM `release`, `compiled` saying the compilation mode is VLLM_COMPILE, and where
    it turns PIECEWISE NONE the field that did, as the graph term names it ("" otherwise); the fields checked
    whatever the mode."""
    ops, fusion = splitting_ops(fields, release), fuse_attn_quant(fields, release)
    partition = fields.get("use_inductor_graph_partition")
    partition = release >= SINCE and partition is not None and lax_bool(partition, "use_inductor_graph_partition",
                                                                         release)
    given = mode or "FULL_AND_PIECEWISE"
    if not compiled or given not in PIECEWISE_MODES or (partition and release < PARTITION_SKIPS_BOTH_UNTIL):
        return mode, ""
    if fusion and not partition:
        return ("FULL" if ops is None else mode), ""
    if ops == [] and given == "PIECEWISE":  # no op to split at: no piece, so no graph at all
        return "NONE", "splitting_ops [] (--compilation-config)"
    return ("FULL" if ops == [] else mode), ""
