"""vLLM's downgrade of full CUDA graphs to PIECEWISE for a pooling model (and -dcp in 0.11.1-0.12), in its place
among the other graph-mode rules, so the splitting_ops rule and the compile-mode rule see the PIECEWISE it leaves.

VllmConfig.__post_init__ turns a mode with full graphs (has_full_cudagraphs: FULL, FULL_DECODE_ONLY,
FULL_AND_PIECEWISE) PIECEWISE where `model_config.pooler_config is not None` (the pooling runner always, the generate
runner given --pooler-config: vllm_level_assert.py) and, in 0.11.1-0.12, for -dcp > 1 (config/vllm.py 0.11.1:475-496,
0.12.0:674-700, 0.13.0:694-704, 0.20.0:1036-1046, 0.29.0:1533-1541, 0.30.0:1728-1736, 0.34.0:1863-1873). In every
release that has it, that comes before set_splitting_ops_for_v1 (0.11.1:631-632, 0.12.0:812, 0.13.0:814, 0.20.0:1166,
0.29.0:1671, 0.30.0:1872, 0.34.0:2071), so `splitting_ops: []` turns the PIECEWISE left NONE (no graph at all) and
pass_config.fuse_attn_quant turns it FULL (vllm_splitting_ops.pieces_left; compilation.py 0.34.0:1374-1399,
1419-1433). From 0.30 the compile-mode rule runs a second time after it (_normalize_piecewise_cudagraph_mode,
0.30.0:1673 and :1844, 0.32.0:1854 and :2007, 0.34.0:1842 and :1995), so below VLLM_COMPILE the PIECEWISE left turns
NONE there (without_piecewise) and the start-up assert (vllm_level_assert.downgrade_refusal) is not reached; before
0.30 it is. Breakable CUDA graphs (vllm_breakable.py) skip both later rules: their mode, downgraded, stays PIECEWISE.

vllm_compilation.resolve works out the downgraded mode beside the plain one (EngineFlags.downgraded_cudagraph_mode,
as it needs the compilation config's fields); graph_view picks it for a plan vLLM downgrades. Before 0.11.1 the
pooling runner's graphs stay PIECEWISE whatever the config (vllm_graphs.graph_counts' `pooling`), as kvplan had them.
Not modelled: 0.12's -pcp > 1 downgrade (0.12.0:682-689), whose plan 0.12 refuses (vllm_pcp.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from .vllm_splitting_ops import pieces_left

SINCE = (0, 11, 1)
DCP_SPAN = ((0, 11, 1), (0, 13))  # [from, before): -dcp > 1 downgrades too
SECOND_NORMALIZE_SINCE = (0, 30)  # the compile-mode rule runs again after the downgrade
FULL_MODES = ("FULL", "FULL_DECODE_ONLY", "FULL_AND_PIECEWISE")  # has_full_cudagraphs (compilation.py 0.34.0:166)


def downgraded(mode: Optional[str], compiled: bool, release: tuple) -> str:
    """The graph mode `mode` (None: FULL_AND_PIECEWISE), as the compile-mode rule left it, after the downgrade and,
    from 0.30, the compile-mode rule run again (`compiled`: the compilation mode is VLLM_COMPILE); splitting_ops not
    yet applied (downgraded_after_splitting)."""
    if (mode or "FULL_AND_PIECEWISE") not in FULL_MODES:
        return mode
    return "NONE" if not compiled and release >= SECOND_NORMALIZE_SINCE else "PIECEWISE"


def downgraded_after_splitting(mode: Optional[str], fields: dict, release: tuple, compiled: bool,
                               below: str = "") -> tuple:
    """(mode, why): downgraded, then set_splitting_ops_for_v1 over the compilation config `fields`
    (vllm_splitting_ops), and where a downgraded full mode ends NONE the rule after the downgrade that did, as the
    words that follow the downgrade's cause in the graph term (graph_view; "" otherwise). `below`: the flag that
    left the compilation mode below VLLM_COMPILE, as vllm_compilation.resolve names it."""
    left = downgraded(mode, compiled, release)
    if left == "NONE" and mode != "NONE":  # 0.30+'s second compile-mode rule
        return left, f" below VLLM_COMPILE ({below})"
    left, why = pieces_left(left, fields, release, compiled)
    return left, (f", then {why}" if why else "")


def downgrade_cause(flags, version: str, pooled: bool) -> str:
    """What makes vLLM `version` turn `flags`' full graphs PIECEWISE, as the graph term names it ("": nothing;
    `pooled`: the plan has a pooler config)."""
    from .vllm_versions import in_span, parse_version

    if parse_version(version) < SINCE:
        return ""
    if pooled:
        return "the pooler config's"
    return f"-dcp {flags.dcp}'s" if (flags.dcp or 1) > 1 and in_span(version, DCP_SPAN) else ""


def graph_view(flags, version: str, pooled: bool):
    """`flags` (a vllm_breakable.graph_view) with the mode vLLM leaves where it downgrades full graphs (module
    docstring), and where that mode is NONE why (the downgrade's cause, then the rule after it); `flags` themselves
    elsewhere."""
    cause = downgrade_cause(flags, version, pooled)
    if not cause or flags.graphs_off:
        return flags
    if flags.breakable:  # no later rule: the breakable mode, downgraded
        from .vllm_versions import parse_version

        return replace(flags, cudagraph_mode=downgraded(flags.cudagraph_mode, True, parse_version(version)))
    mode = flags.downgraded_cudagraph_mode  # None: no compilation config, vLLM's FULL_AND_PIECEWISE
    why = f"{cause} PIECEWISE downgrade{flags.downgraded_mode_why}" if mode == "NONE" else ""
    return replace(flags, cudagraph_mode=mode if mode is not None else "PIECEWISE", cudagraph_mode_why=why)
