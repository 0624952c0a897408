"""vLLM's --compilation-config and -O: the CUDA-graph mode and capture sizes they set, by release.

What kvplan reads of the JSON object (every other field vLLM takes changes no figure of kvplan's and is left alone):
`cudagraph_mode`, `cudagraph_capture_sizes`, `max_cudagraph_capture_size` and the compilation `level` / `mode`,
with -O's level, `splitting_ops`, `pass_config.fuse_attn_quant` / `enable_attn_fusion` and
`use_inductor_graph_partition` (vllm_splitting_ops.py), and the deprecated `use_cudagraph` (false: no graphs on V1
in 0.9.1-0.11.0; use_cudagraph) and `full_cuda_graph` (true: cudagraph_mode FULL in 0.10.1-0.11.0, kept below level
3; full_cuda_graph). They change figures only where vLLM subtracts the graphs from the KV budget (0.20+,
vllm_budget.graph_reserve); before, they are checked as the release checks them and change the graph term's words,
not its bytes (and a plan vLLM runs on V0 keeps its graphs whatever they say: vllm_graphs_off.py).

- The flag: `--compilation-config` / `-O` from 0.6.5 (engine/arg_utils.py 0.6.5:914-915; 0.6.4 has none), a level
  0-3 or a Python / JSON object (config.py 0.6.5 CompilationConfig.from_cli :2703-2709, 0.8.5 :3529-3535). 0.12
  moves it to `--compilation-config` / `-cc` and gives -O to --optimization-level (arg_utils.py 0.12.0:1128, 0.32.0:
  1853, :1872; 0.11.1:1149 still `-O`).
- -O's forms (FlexibleArgumentParser.parse_args): up to 0.9.1 argparse's own, `-O3`, `-O 3`, `-O=3` the level
  (utils.py 0.8.5:1362 never fires); 0.9.2-0.11.x rewrite `-O3` / `-O=3` / `-O 3` to `-O.level=3` (utils/__init__.py
  0.9.2:1504-1514, 0.11.0:1891-1901), `-O '{...}'` the object; from 0.12 the three are `--optimization-level 3`
  (utils/argparse_utils.py 0.12.0:247-259, 0.34.0:395-405), levels 0-3, and an object after -O is refused.
- cudagraph_mode from 0.10.1 (config/compilation.py 0.10.1:35-44, :226; 0.10.0 has no CUDAGraphMode): NONE,
  PIECEWISE, FULL, FULL_DECODE_ONLY, FULL_AND_PIECEWISE, read by name in any case, no space stripped (0.32.0:873-878
  CUDAGraphMode[value.upper()]). -O's level sets it where not given (config/vllm.py OPTIMIZATION_LEVEL_00-03,
  0.12.0:103-159, 0.32.0:247-336, 0.34.0:283-366): O0 NONE, O1 PIECEWISE, O2 (the default) and O3
  FULL_AND_PIECEWISE; and the compilation mode, VLLM_COMPILE above O0, NONE at O0 (0.32.0:1752-1756).
- A level / mode below 3 before 0.12: 0.10.1-0.11.x (V1) set cudagraph_mode NONE where none is given (config/
  __init__.py 0.10.1:3554-3560, 0.10.2:3389-3395, 0.11.0:361-376; config/vllm.py 0.11.1:465-474; levels 1 and 2
  too, `!= PIECEWISE`), and a piecewise one given stops start-up unless --enforce-eager set NONE first
  (AssertionError "Compilation level should be CompilationLevel.PIECEWISE ...", 0.10.1:3637-3643, 0.10.2:3512-3517,
  0.11.0:472-478, 0.11.1:674-679). That check is V1's alone (`if envs.VLLM_USE_V1 and ...`: 0.10.1:3628,
  0.10.2:3502, 0.11.0:463), so resolve notes the pair (Graphs.piecewise_below_level_3) and the plan, which knows its
  engine, refuses it on V1 (vllm_level_assert.py). V0 asserts nothing on the config's level or graphs (custom_ops'
  'none' / 'all' at parse alone: config.py 0.6.5:2715, 0.7.3:2985). None given is
  PIECEWISE / VLLM_COMPILE (0.10.1:3529-3533, 0.11.1:440-444). 0.8.0-0.10.0's V1 sets level PIECEWISE itself
  without --enforce-eager, whatever was given (config.py 0.8.0:3478-3491, 0.8.5:3884-3895, 0.9.2:4558-4564,
  0.10.0:4585-4591), so its runner's `level == PIECEWISE` capture test (v1/worker/gpu_model_runner.py 0.8.5:196-198,
  0.10.0:220-224) holds; V0 (to 0.7) captures unless --enforce-eager, whatever the level. Verify's capture plan
  reads it; no budget byte before 0.20.
- A graph mode without VLLM_COMPILE (mode / level below 3): 0.12.x any mode NONE, FULL and FULL_DECODE_ONLY too
  (config/vllm.py 0.12.0:647-658, `cudagraph_mode != NONE`; changes verify's capture plan, no budget byte before 0.20);
  from 0.13 the piecewise ones (requires_piecewise_compilation, 0.13.0:670-680):
  NONE up to 0.29 (config/vllm.py 0.14.0:713-723,
  0.24.0:1172-1183, 0.29.0:1476), from 0.30 its part without piecewise, PIECEWISE -> NONE and FULL_AND_PIECEWISE ->
  FULL_DECODE_ONLY (0.30.0:1010-1030, 0.32.0:1077-1097, 0.34.0:1050-1070).
- Under VLLM_COMPILE, `splitting_ops: []` and `pass_config.fuse_attn_quant` take the piecewise graphs away
  (PIECEWISE NONE or FULL, FULL_AND_PIECEWISE FULL; 0.11.1+): vllm_splitting_ops.py. A pooling model's (and -dcp's,
  0.11.1-0.12) full graphs are turned PIECEWISE before that rule: resolve works out that mode too
  (Graphs.downgraded_mode), which the plan, knowing its runner, picks (vllm_full_downgrade.py).
- Compilation mode 1 (STOCK_TORCH_COMPILE): no graphs on 0.34, and on 0.32-0.33's Model Runner V2
  (Graphs.stock_compile; vllm_stock_compile.py).
- A full mode kept below VLLM_COMPILE (FULL, FULL_DECODE_ONLY; 0.11.1-0.11.x and 0.13+, where no rule above turns
  it NONE) meets the same assert where vLLM turns full graphs PIECEWISE (-dcp > 1 in 0.11.x, a pooling model):
  resolve notes it (Graphs.full_below_compile), the plan, which knows -dcp and its runner, refuses it
  (vllm_level_assert.downgrade_refusal). The PIECEWISE it leaves where vLLM starts moves nothing before 0.20 (the
  graph term's bytes) and verify captures the whole decode step whatever the mode; from 0.20 graph_counts makes a
  pooling model's PIECEWISE itself, and the -dcp downgrade is gone from 0.13.
- `level` 0.6.5-0.17 (compilation.py 0.14.0:349, 0.17.0:385, read as mode where none is given 0.17.0:804-813),
  gone in 0.18.0; `mode` from 0.11.1 (0.11.1:246), 0-3 or NONE, STOCK_TORCH_COMPILE, DYNAMO_TRACE_ONCE, VLLM_COMPILE
  (0.32.0:853-871).
- Capture sizes: the JSON fields mean what --cudagraph-capture-sizes / --max-cudagraph-capture-size mean
  (vllm_graphs.py); from 0.11.1, when the flags came, vLLM refuses a flag and its field both given, whether or not
  they agree ("... are mutually exclusive": engine/arg_utils.py 0.11.1:1749-1766, 0.32.0:2788-2803, 0.34.0:
  2870-2885). Before 0.11.1 no figure reads them.
- Fields: from 0.13 the config forbids one it lacks (`@dataclass(config=ConfigDict(extra="forbid"))`,
  compilation.py 0.13.0:293, config/utils.py 0.34.0:71-72), and a `field(init=False)` one too ("Unexpected keyword
  argument": compilation_time, traced_files, ...); before, pydantic drops it. FIELDS / FIELDS_BY_RELEASE: the
  CompilationConfig fields of every minor release 0.13.0-0.34.0, read one by one (patch releases taken as their .0).
- The text of the value (a Python literal up to 0.8.5, JSON after; a bare level up to 0.9.1), and which of several
  values the one argument before 0.12 keeps (-O and --compilation-config, in vLLM's order): vllm_compilation_text.py.
  Where no order is known (a deployments file's keys, the API) both before 0.12 are refused.

The modes' graphs (graph_counts, vllm_graphs.py): FULL_AND_PIECEWISE both; PIECEWISE the mixed sizes only; FULL one
FULL graph at every mixed size and no separate decode graphs; FULL_DECODE_ONLY the decode graphs only (V1's
v1/cudagraph_dispatcher.py 0.32.0:164-231; V2 v1/worker/gpu/cudagraph_utils.py 0.34.0:289-360).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Optional

from ..errors import FieldError, quote
from .vllm_compilation_text import (BARE_LEVEL_UNTIL, LEVELS, LITERAL_UNTIL, ONE_FLAG_UNTIL, config_value,
                                     given_by_flag, release_of)
from .vllm_dotted_flags import release_text as _dotted
from .vllm_legacy_graph_fields import CUDAGRAPH_MODE_SINCE, USE_CUDAGRAPH_FALSE, full_cuda_graph, use_cudagraph
from .vllm_full_downgrade import downgraded_after_splitting
from .vllm_graphs_off import GIVEN_NONE
from .vllm_splitting_ops import pieces_left
from .vllm_stock_compile import STOCK_TORCH_COMPILE

__all__ = ["config_value", "level_value", "resolve", "with_compilation", "level_flag", "release_has", "one_flag"]

FLAG_SINCE = (0, 6, 5)
LEVEL_GRAPHS_SINCE = (0, 10, 1)  # a level below 3 leaves no graphs (before: V1 sets level 3 itself)
MODE_FIELD_SINCE = (0, 11, 1)
OPTIMIZATION_LEVEL_SINCE = (0, 12)  # -O is --optimization-level; the config's short flag -cc
LEVEL_FIELD_UNTIL = (0, 18)  # the first release read without `level`
FORBID_SINCE = (0, 13)
# 0.9.0 builds the config as cls(**json.loads(value)), a plain dataclass (config.py 0.9.0:3694-3696, :3910-3914), so
# a key that is no init field of it is a TypeError ("invalid from_cli value"); its init fields, 0.9.0:3734-3829
# (max_capture_size, compilation_time, ... are init=False, :3832-3856). 0.9.1's validate_json drops such a key.
KWARGS_ONLY = ((0, 9), (0, 9, 1))
FIELDS_0_9_0 = frozenset({
    "level", "debug_dump_path", "cache_dir", "backend", "custom_ops", "splitting_ops", "use_inductor", "compile_sizes",
    "inductor_compile_config", "inductor_passes", "use_cudagraph", "cudagraph_num_of_warmups",
    "cudagraph_capture_sizes", "cudagraph_copy_inputs", "full_cuda_graph", "pass_config"})
EXCLUSIVE_SINCE = (0, 11, 1)
# pydantic's lax bool texts (lower-cased), the value each is
WITHOUT_PIECEWISE_SINCE = (0, 30)
MODES = ("NONE", "PIECEWISE", "FULL", "FULL_DECODE_ONLY", "FULL_AND_PIECEWISE")
PIECEWISE_MODES = ("PIECEWISE", "FULL_AND_PIECEWISE")  # requires_piecewise_compilation (compilation.py 0.10.1:54-56)
FULL_ONLY_MODES = ("FULL", "FULL_DECODE_ONLY")  # has_full_cudagraphs without piecewise (compilation.py 0.11.1:75-82)
COMPILATION_MODES = ("NONE", "STOCK_TORCH_COMPILE", "DYNAMO_TRACE_ONCE", "VLLM_COMPILE")  # 0, 1, 2, 3
VLLM_COMPILE = 3
LEVEL_MODES = {0: "NONE", 1: "PIECEWISE", 2: "FULL_AND_PIECEWISE", 3: "FULL_AND_PIECEWISE"}
DEFAULT_LEVEL = 2
ANY_MODE_OFF_UNTIL = (0, 13)  # 0.12 turns every graph mode off without VLLM_COMPILE, 0.13 the piecewise ones
# the fields every release 0.13-0.34 takes, and those it takes from a release (first with, first without)
FIELDS = frozenset({
    "backend", "cache_dir", "compile_cache_save_format", "compile_mm_encoder", "compile_sizes",
    "cudagraph_capture_sizes", "cudagraph_copy_inputs", "cudagraph_mode", "cudagraph_num_of_warmups",
    "cudagraph_specialize_lora", "custom_ops", "debug_dump_path", "dynamic_shapes_config", "inductor_compile_config",
    "inductor_passes", "max_cudagraph_capture_size", "mode", "pass_config", "splitting_ops",
    "use_inductor_graph_partition"})
FIELDS_BY_RELEASE = {
    "level": ((0, 13), LEVEL_FIELD_UNTIL), "compile_ranges_split_points": ((0, 13), (0, 18)),
    "compile_ranges_endpoints": ((0, 18), None), "fast_moe_cold_start": ((0, 16), None),
    "cudagraph_mm_encoder": ((0, 19), None), "encoder_cudagraph_token_budgets": ((0, 19), None),
    "encoder_cudagraph_max_images_per_batch": ((0, 19), (0, 20)),
    "encoder_cudagraph_max_frames_per_batch": ((0, 20), None),
    "encoder_cudagraph_max_vision_items_per_batch": ((0, 20), None), "ir_enable_torch_wrap": ((0, 20), None),
    "cudagraph_decoder_replay": ((0, 32), None), "decoder_replay_cudagraph_capture_sizes": ((0, 32), None),
    "decoder_replay_trim_threshold": ((0, 32), None),
    **{name: ((0, 34), None) for name in (
        "decode_cudagraph_capture_request_sizes", "encoder_cudagraph_max_token_budget",
        "max_decode_cudagraph_capture_requests", "max_decode_cudagraph_capture_tokens",
        "max_prefill_cudagraph_capture_tokens", "prefill_cudagraph_capture_token_sizes", "use_breakable_cudagraph")}}


def release_has(name: str, release: tuple) -> bool:
    """Whether vLLM `release` (0.13+) takes the CompilationConfig field `name`."""
    since, until = FIELDS_BY_RELEASE.get(name, (None, None))
    return name in FIELDS or (since is not None and since <= release and (until is None or release < until))


# fields that change the graphs vLLM captures in ways kvplan does not model: 0.34's split sizes
# (config/vllm.py 0.34.0:2558-2717) and the encoder's graphs (cudagraph_mm_encoder, profiled as ENCODER=n,
# v1/worker/gpu_model_runner.py 0.32.0:6345-6366); refused rather than silently priced without them
UNMODELLED = ("prefill_cudagraph_capture_token_sizes", "decode_cudagraph_capture_request_sizes",
              "max_prefill_cudagraph_capture_tokens", "max_decode_cudagraph_capture_requests",
              "max_decode_cudagraph_capture_tokens", "cudagraph_mm_encoder")


def level_value(value) -> Optional[str]:
    """-O's value as typed (its meaning is the release's: resolve)."""
    if value is None:
        return None
    text = str(value).strip()
    return text[1:] if text.startswith("=") else text  # click reads -O=3 as "=3", argparse and vLLM as 3


@dataclass(frozen=True)
class Graphs:
    """What the compilation flags leave for the graph term: the mode (None: vLLM's default) and the capture sizes
    from the JSON (None: not given there)."""

    cudagraph_mode: Optional[str] = None
    max_cudagraph_capture_size: Optional[int] = None
    cudagraph_capture_sizes: Optional[tuple] = None
    use_cudagraph: Optional[bool] = None  # as the release reads it (use_cudagraph); None: not read
    # a piecewise cudagraph_mode given below compilation level 3 in 0.10.1-0.11.x, which V1 refuses at start-up
    # (vllm_level_assert.py)
    piecewise_below_level_3: Optional[str] = None
    # a full mode kept below VLLM_COMPILE where a later downgrade to PIECEWISE trips the same assert
    # (vllm_level_assert.downgrade_refusal)
    full_below_compile: Optional[str] = None
    # the mode before the compile-mode and splitting_ops rules below (None: FULL_AND_PIECEWISE), which breakable
    # CUDA graphs keep (vllm_breakable.py; 0.23+)
    breakable_mode: Optional[str] = None
    # the mode where vLLM turns full graphs PIECEWISE before the splitting_ops rule (vllm_full_downgrade.py)
    downgraded_mode: Optional[str] = None
    stock_compile: bool = False  # compilation mode STOCK_TORCH_COMPILE (vllm_stock_compile.py)
    # why each mode above is NONE, as the rule that decided words it (EngineFlags.cudagraph_mode_why; "": not NONE)
    why: str = ""
    breakable_why: str = ""
    downgraded_why: str = ""  # what follows the downgrade's cause (vllm_full_downgrade.graph_view)


def _mode(value, release: tuple) -> Optional[int]:
    """The compilation mode / level as a number 0-3; a name as vLLM reads it, `value.upper()` looked up as it
    stands, no space stripped (compilation.py 0.11.1:571, 0.32.0:862, 0.34.0:1012)."""
    if isinstance(value, str) and value.upper() in COMPILATION_MODES and release >= MODE_FIELD_SINCE:
        return COMPILATION_MODES.index(value.upper())
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3:
        return value
    names = f"0-3 or {', '.join(COMPILATION_MODES)} (any case, no spaces)" if release >= MODE_FIELD_SINCE else "0-3"
    raise FieldError("compilation_config", f"mode / level {quote(value)} is not one vLLM {_dotted(release)} takes: "
                                           f"{names}.")


def level_flag(engine) -> str:
    """-O's level as vLLM `engine` ("vllm==0.11.0", "vllm 0.32.0", a result's engine; None: the newest) spells it:
    -O before 0.12, whose parser has no --optimization-level; --optimization-level from 0.12 (module docstring)."""
    from .vllm_releases import release_parts

    release = release_parts(re.sub(r"^vllm\s*(==)?\s*|,.*$", "", str(engine or ""))) if engine else None
    return "-O" if release is not None and release < OPTIMIZATION_LEVEL_SINCE else "--optimization-level"


def _optimization_level(text: str, release: tuple) -> int:
    if text not in ("0", "1", "2", "3"):
        raise FieldError("optimization_level", f"{quote(text)} is not a level: vLLM {_dotted(release)} reads -O as "
                                               f"--optimization-level, 0, 1, 2 or 3; give the compilation config "
                                               f"with --compilation-config (-cc).")
    return int(text)


def resolve(config: Optional[str], level: Optional[str], version: str, spell=str) -> Graphs:
    """The graph mode and sizes of --compilation-config `config` (canonical JSON) and -O `level` (as typed) under
    vLLM `version`; FieldError (exit 2) for what that release refuses whatever engine runs the plan (V1's own
    refusal: vllm_level_assert.py)."""
    from .vllm_versions import parse_version

    release = parse_version(version)
    if config is None and level is None:
        return Graphs()
    if release < FLAG_SINCE:
        field = "compilation_config" if config is not None else "optimization_level"
        raise FieldError(field, f"is not a flag of vLLM {_dotted(release)}: --compilation-config / -O came with "
                                f"{_dotted(FLAG_SINCE)} (engine/arg_utils.py); give vllm=={_dotted(FLAG_SINCE)} or "
                                f"later.")
    if config is not None and level is not None and release < ONE_FLAG_UNTIL:
        raise FieldError("optimization_level", f"and compilation_config are one flag of vLLM {_dotted(release)} (-O "
                                               f"is --compilation-config before 0.12), which keeps the last given "
                                               f"as typed; give one (a command line's order is read as vLLM reads "
                                               f"it).", names=("compilation_config",))
    if level is not None and release < ONE_FLAG_UNTIL:  # -O is the compilation config itself: a level, an object
        try:  # read as the config, its errors said of -O's field (a deployments key, the API's argument)
            given = config_value(level, release)
        except FieldError:
            kind = "a Python dict literal" if release < LITERAL_UNTIL else "a JSON object"
            raise FieldError("optimization_level", f"takes a level 0, 1, 2 or 3 or {kind} of CompilationConfig "
                                                   f"fields in vLLM {_dotted(release)} (-O is --compilation-config "
                                                   f"before 0.12), got {quote(level)}.") from None
        try:
            return resolve(json.dumps({"level": int(given)}) if given in LEVELS else given, None, version, spell)
        except FieldError as exc:
            if exc.field != "compilation_config":
                raise
            raise FieldError("optimization_level", exc.problem, exc.names) from None
    fields = _object(json.loads(config), release) if config is not None else {}
    optimization = DEFAULT_LEVEL
    if level is not None:
        optimization = _optimization_level(level, release)
    _check_fields(fields, release)
    mode = fields.get("mode", fields.get("level"))
    mode = None if mode is None else _mode(mode, release)
    graph_mode = fields.get("cudagraph_mode")
    if graph_mode is not None:
        graph_mode = _graph_mode(graph_mode, release)
    # why the mode is NONE, in the words of the rule that last decided it (EngineFlags.cudagraph_mode_why)
    why = GIVEN_NONE if graph_mode == "NONE" else ""
    cudagraph_on = use_cudagraph(fields, release)
    if cudagraph_on is False:
        graph_mode, why = "NONE", USE_CUDAGRAPH_FALSE
    elif full_cuda_graph(fields, release):  # its migration follows use_cudagraph's (full_cuda_graph)
        graph_mode = "FULL"
    piecewise_below = full_below = None
    below = _below_compile(fields)  # the flag that leaves the compilation mode below VLLM_COMPILE
    if LEVEL_GRAPHS_SINCE <= release < OPTIMIZATION_LEVEL_SINCE and mode is not None and mode != VLLM_COMPILE:
        piecewise_below = graph_mode if graph_mode in PIECEWISE_MODES else None
        full_below = graph_mode if graph_mode in FULL_ONLY_MODES else None
        if graph_mode is None:  # none given below level 3: NONE (module docstring)
            graph_mode, why = "NONE", f"compilation level below 3 with no cudagraph_mode ({below})"
    breakable_mode, breakable_why = graph_mode, why
    compiled = mode is None or mode == VLLM_COMPILE  # before 0.12: none given is VLLM_COMPILE (module docstring)
    if release >= OPTIMIZATION_LEVEL_SINCE:
        graph_mode = graph_mode or LEVEL_MODES[optimization]
        why = why or (GIVEN_NONE if graph_mode == "NONE" else "")  # -O0's own NONE
        breakable_mode, breakable_why = (None if graph_mode == "FULL_AND_PIECEWISE" else graph_mode), why
        compiled = (mode if mode is not None else (VLLM_COMPILE if optimization > 0 else 0)) == VLLM_COMPILE
        given, below = graph_mode, below or "--optimization-level 0"
        if release < ANY_MODE_OFF_UNTIL and not compiled:  # 0.12.0 config/vllm.py:647-658: FULL too
            graph_mode = "NONE"
        elif graph_mode in ("PIECEWISE", "FULL_AND_PIECEWISE") and not compiled:
            graph_mode = "NONE" if release < WITHOUT_PIECEWISE_SINCE or graph_mode == "PIECEWISE" \
                else "FULL_DECODE_ONLY"
        if graph_mode == "NONE" and given != "NONE":
            why = f"cudagraph_mode {given} below VLLM_COMPILE ({below})"
        full_below = graph_mode if graph_mode in FULL_ONLY_MODES and not compiled else None
        graph_mode = None if graph_mode == "FULL_AND_PIECEWISE" else graph_mode  # vLLM's default
    # a pooling model's (-dcp's) PIECEWISE comes before the splitting_ops rule (vllm_full_downgrade.py)
    downgraded_mode, downgraded_why = downgraded_after_splitting(graph_mode, fields, release, compiled, below)
    graph_mode, split_why = pieces_left(graph_mode, fields, release, compiled)  # splitting_ops [], fuse_attn_quant
    why = f"PIECEWISE with {split_why}" if split_why else why
    from .vllm_graphs import FLAGS_SINCE, capture_sizes_value, max_capture_size_value

    largest, sizes = fields.get("max_cudagraph_capture_size"), fields.get("cudagraph_capture_sizes")
    largest = _field(max_capture_size_value, "max_cudagraph_capture_size", largest)
    sizes = _field(capture_sizes_value, "cudagraph_capture_sizes", sizes)
    if release < FLAGS_SINCE:  # no figure reads them before the graphs are subtracted (0.20)
        largest = sizes = None
    return Graphs(graph_mode, largest, sizes, cudagraph_on, piecewise_below, full_below, breakable_mode,
                  downgraded_mode, mode == STOCK_TORCH_COMPILE, why, breakable_why, downgraded_why)


def _below_compile(fields: dict) -> str:
    """The compilation config's mode / level as given, as the graph term names the flag ("": not given; -O's, one
    flag with --compilation-config before 0.12)."""
    key = "mode" if "mode" in fields else "level" if "level" in fields else None
    return f"--compilation-config {key} {fields[key]}" if key else ""


def _object(fields, release: tuple) -> dict:
    """The compilation config's fields; a bare level as the release takes it after --compilation-config."""
    if not isinstance(fields, int):
        return fields
    if release < BARE_LEVEL_UNTIL:
        return {"level": fields}
    field = "mode" if release >= MODE_FIELD_SINCE else "level"
    raise FieldError("compilation_config", f"takes a JSON object from vLLM {_dotted(BARE_LEVEL_UNTIL)} (its parser "
                                           f"validates the value as a CompilationConfig), not the bare level "
                                           f"{fields}; write '{{\"{field}\": {fields}}}'.")


def _field(read, name: str, value):
    try:
        return read(value)
    except FieldError as exc:
        raise FieldError("compilation_config", f"{name} {exc.problem}") from None


def _graph_mode(value, release: tuple) -> str:
    if release < CUDAGRAPH_MODE_SINCE:
        raise FieldError("compilation_config", f"cudagraph_mode is not a field of vLLM {_dotted(release)}'s "
                                               f"CompilationConfig: it came with {_dotted(CUDAGRAPH_MODE_SINCE)}.")
    # CUDAGraphMode[value.upper()] (compilation.py 0.10.1:402, 0.32.0:878, 0.34.0:1028): folded by str.upper, no
    # space stripped, so " NONE " is vLLM's KeyError
    name = value.upper() if isinstance(value, str) else None
    if name not in MODES:
        raise FieldError("compilation_config", f"cudagraph_mode {quote(value)} is not one of vLLM's: "
                                               f"{', '.join(MODES)} (any case, no spaces).")
    return name


def _check_fields(fields: dict, release: tuple) -> None:
    for name, value in fields.items():
        if name == "level" and release >= LEVEL_FIELD_UNTIL:
            raise FieldError("compilation_config", f"level is not a field of vLLM {_dotted(release)}'s "
                                                   f"CompilationConfig (gone by 0.18); write mode (0-3).")
        if name == "mode" and release < MODE_FIELD_SINCE:
            raise FieldError("compilation_config", f"mode is not a field of vLLM {_dotted(release)}'s "
                                                   f"CompilationConfig (from 0.11.1); write level (0-3).")
        if KWARGS_ONLY[0] <= release < KWARGS_ONLY[1] and name not in FIELDS_0_9_0 and name != "cudagraph_mode":
            raise FieldError("compilation_config", f"{quote(name)} is not a field of vLLM {_dotted(release)}'s "
                                                   f"CompilationConfig, which refuses it (its from_cli passes the "
                                                   f"keys to the dataclass: \"unexpected keyword argument\"); "
                                                   f"its fields include level, use_cudagraph, full_cuda_graph and "
                                                   f"cudagraph_capture_sizes.")
        if release >= FORBID_SINCE and name in ("use_cudagraph", "full_cuda_graph"):
            mode = "NONE" if name == "use_cudagraph" else "FULL"
            raise FieldError("compilation_config", f"{name} is not a field of vLLM {_dotted(release)}'s "
                                                   f"CompilationConfig, which refuses it (gone from 0.11.1, extra "
                                                   f"fields forbidden from 0.13); write cudagraph_mode {mode}.")
        if release >= FORBID_SINCE and not release_has(name, release):
            raise FieldError("compilation_config", f"{quote(name)} is not a field of vLLM's CompilationConfig in "
                                                   f"{_dotted(release)}, which refuses it (extra fields forbidden "
                                                   f"from 0.13); the fields kvplan reads are "
                                                   f"cudagraph_mode, cudagraph_capture_sizes, "
                                                   f"max_cudagraph_capture_size, mode, level, splitting_ops, "
                                                   f"pass_config and use_inductor_graph_partition.")
        if name in UNMODELLED and value:
            raise FieldError("compilation_config", f"{name} changes the CUDA graphs vLLM captures in a way kvplan "
                                                   f"does not model; leave it out (kvplan reads cudagraph_mode and "
                                                   f"the capture sizes).")


def refuse_both(flags, graphs: Graphs, version: str) -> None:
    """A capture size given as its flag and in the compilation config: vLLM refuses the pair (module docstring)."""
    from .vllm_versions import parse_version

    if parse_version(version) < EXCLUSIVE_SINCE:
        return
    for field in ("cudagraph_capture_sizes", "max_cudagraph_capture_size"):
        if getattr(flags, field) is not None and getattr(graphs, field) is not None:
            raise FieldError(field, f"is given in --compilation-config too: vLLM refuses the two together, even "
                                    f"when they agree (\"{field} and compilation_config.{field} are mutually "
                                    f"exclusive\"); give it once.")


def with_compilation(flags, version: str):
    """`flags` (engines.EngineFlags) with their compilation config and -O resolved for vLLM `version`: the graph mode
    and the capture sizes given in the JSON in the flags' own fields."""
    from dataclasses import replace

    if flags.compilation_config is None and flags.optimization_level is None:
        return flags
    graphs = resolve(flags.compilation_config, flags.optimization_level, version)
    refuse_both(flags, graphs, version)
    return replace(flags, cudagraph_mode=graphs.cudagraph_mode, use_cudagraph=graphs.use_cudagraph,
                   breakable_cudagraph_mode=graphs.breakable_mode,
                   downgraded_cudagraph_mode=graphs.downgraded_mode, stock_compile=graphs.stock_compile,
                   cudagraph_mode_why=graphs.why, breakable_mode_why=graphs.breakable_why,
                   downgraded_mode_why=graphs.downgraded_why,
                   piecewise_below_level_3=None if flags.enforce_eager else graphs.piecewise_below_level_3,
                   full_below_compile=None if flags.enforce_eager else graphs.full_below_compile,
                   max_cudagraph_capture_size=(graphs.max_cudagraph_capture_size
                                               if graphs.max_cudagraph_capture_size is not None
                                               else flags.max_cudagraph_capture_size),
                   cudagraph_capture_sizes=(graphs.cudagraph_capture_sizes
                                            if graphs.cudagraph_capture_sizes is not None
                                            else flags.cudagraph_capture_sizes))


def one_flag(args: list, config, level, engine) -> tuple:
    """(compilation_config, optimization_level) as typed on the command line `args`, where vLLM `engine` (before
    0.12) keeps one of several values given (last_given): each parsed and checked as vLLM parses it, the last kept,
    as -O's (optimization_level) where -O gave it as typed (an -O.k alone is the config's, as click read it), so
    its errors name the flag typed; otherwise `config` and `level` as they are."""
    release = release_of(engine) if config is not None or level is not None else None
    values = given_by_flag(args, release) if release is not None and release >= FLAG_SINCE else None
    if values is None:
        return config, level
    version = _dotted(release)
    for flag, value in values:  # argparse's `type` runs on each, the kept one and the dropped ones alike
        if flag == "-O" and level is not None:
            resolve(None, value, version)  # its errors said as -O's
        else:
            resolve(config_value(value, release), None, version)
    flag, value = values[-1]
    return (None, value) if flag == "-O" and level is not None else (value, None)
