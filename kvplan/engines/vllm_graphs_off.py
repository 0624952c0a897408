"""Whether the engine core that runs a plan captures CUDA graphs, and what turned them off.

- V1 (0.8+ where the oracle keeps it): none under --enforce-eager, or where the compilation config leaves
  cudagraph_mode NONE as its release resolves it (vllm_compilation.resolve: the JSON's cudagraph_mode, -O0, a level
  below 3 in 0.10.1-0.11.x, use_cudagraph false in 0.9.1-0.11.0: vllm_compilation.use_cudagraph,
  EngineFlags.use_cudagraph).
- V0 (every plan up to 0.7, and 0.8-0.10.2's fallback: vllm_v1_oracle.v0_fallback, rules era "v0"): its worker
  captures the decode graphs unless --enforce-eager (worker/worker.py 0.9.2:364-365, 0.10.1:386-387;
  worker/model_runner.py 0.10.1:1369-1382 capture_model asserts only `not enforce_eager`), reading no compilation
  level, cudagraph_mode or use_cudagraph. So a plan on V0 keeps its graphs whatever the compilation config says.

Before 0.20 no budget byte reads this (the graphs are captured after the cache is sized: vllm_budget.graph_reserve);
the graph term's source, the speed note and verify's capture plan do.

What turned them off (graphs_off_cause) is the rule that left cudagraph_mode NONE, in the words that rule's step
recorded (EngineFlags.cudagraph_mode_why): vllm_compilation.resolve (a NONE given or -O0's, use_cudagraph false, a
level below 3, the compile-mode rule, splitting_ops []), vllm_full_downgrade.graph_view (the pooler config's or -dcp's
PIECEWISE downgrade, then splitting_ops [] or 0.30+'s second compile-mode rule), vllm_stock_compile.graph_view; the
budget and verify only print them.
"""

from __future__ import annotations

import re
from dataclasses import replace

from . import EngineFlags

# the words of a cudagraph_mode NONE given, or -O0's (vllm_compilation.resolve records them), and of --enforce-eager
GIVEN_NONE = "cudagraph_mode NONE (--compilation-config, -O0)"
ENFORCE_EAGER = "--enforce-eager"

# V0's view of an engine's flags (cudagraph_mode dropped), one per flags object, so the budget's memos keyed by the
# flags' identity see one object a deployment (id -> (flags, V0's))
_V0_FLAGS: dict = {}
MAX_V0_FLAGS = 256


def core_flags(flags: EngineFlags, rules) -> EngineFlags:
    """`flags` as the engine core of `rules` reads them for its graphs: V0 (era "v0") ignores cudagraph_mode."""
    if getattr(rules, "era", None) != "v0" or flags.cudagraph_mode is None:
        return flags
    held = _V0_FLAGS.get(id(flags))
    if held is not None and held[0] is flags:
        return held[1]
    if len(_V0_FLAGS) >= MAX_V0_FLAGS:
        _V0_FLAGS.pop(next(iter(_V0_FLAGS)))  # the oldest goes
    answer = replace(flags, cudagraph_mode=None, cudagraph_mode_why="")
    _V0_FLAGS[id(flags)] = (flags, answer)
    return answer


def v0_keeps_graphs(flags: EngineFlags, rules) -> bool:
    """A compilation config that turns V1's graphs off (cudagraph_mode NONE) on a plan V0 runs, which captures them."""
    return getattr(rules, "era", None) == "v0" and not flags.enforce_eager and flags.cudagraph_mode == "NONE"


def graphs_off_cause(flags: EngineFlags) -> str:
    """What turned the graphs off, as the graph term's source says it (verify's eager decode says it alike): the
    words the rule that left cudagraph_mode NONE recorded (EngineFlags.cudagraph_mode_why), a NONE given where
    none was recorded (flags built without vllm_compilation.with_compilation)."""
    if flags.enforce_eager:
        return ENFORCE_EAGER
    return flags.cudagraph_mode_why or GIVEN_NONE


def v0_note(flags: EngineFlags) -> str:
    """Why a plan on V0 keeps the graphs the compilation config turns off (v0_keeps_graphs)."""
    given = "use_cudagraph false" if flags.use_cudagraph is False else "cudagraph_mode NONE (or the level it sets)"
    return f"V0 ignores the compilation config's {given} and captures its decode graphs unless --enforce-eager"


# the graph term's sources that say no graph is captured: before 0.20 and 0.34 (graph_reserve, extensible_budget),
# 0.20-0.33 (graph_reserve's eager branch); and what follows the cause in them (--enforce-eager's own words there)
OFF_WORDS = ("captures no graphs", "so the worker skips the graph profile")
CAUSE_ENDS = re.compile(r" (?:captures no graphs|sets cudagraph_mode NONE, so the worker skips the graph profile)")


def graphs_off_named(budget) -> str:
    """What a budget's graph term says turned the engine's CUDA graphs off (graphs_off_cause's words, as the source
    names them), for the speed note (render/estimate); "" where it captures graphs."""
    for t in getattr(budget, "terms", ()):
        if t.name == "cuda_graphs" and not t.bytes and t.source.startswith("0: "):
            cause = CAUSE_ENDS.split(t.source[len("0: "):], 1)
            if len(cause) > 1:
                return cause[0]
    return ""
