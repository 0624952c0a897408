"""Follow-up review of the compilation flags (session 79, ccfollow), each item against the vLLM code it mirrors.

1. The graphs a compilation level below 3 leaves before 0.12, by release:
   - 0.10.1-0.11.x (V1): a level / mode given below 3 with no cudagraph_mode sets cudagraph_mode NONE (config/
     __init__.py 0.10.1:3554-3560, 0.11.0:361-376; config/vllm.py 0.11.1:465-474, the level read as mode
     compilation.py 0.11.1:608-618); none given is PIECEWISE / VLLM_COMPILE (0.10.1:3529-3533, 0.11.1:440-444). A
     piecewise mode given below 3 stops start-up: "Compilation level should be CompilationLevel.PIECEWISE when
     cudagraph_mode piecewise cudagraphs is used" (AssertionError, 0.10.1:3637-3643, 0.11.0:472-478, 0.11.1:674-679),
     past --enforce-eager's NONE (0.11.0:378-382).
   - 0.8.0-0.10.0 (V1): __post_init__ sets level PIECEWISE whenever V1 runs without --enforce-eager, whatever was
     given (config.py 0.8.0:3478-3491, 0.8.5:3884-3895, 0.9.2:4558-4564, 0.10.0:4585-4591), so the runner's
     `use_cuda_graph = level == PIECEWISE and ...` (v1/worker/gpu_model_runner.py 0.8.5:196-198, 0.10.0:220-224)
     holds: -O0 still captures.
   - V0 (to 0.7): its runner captures unless --enforce-eager, whatever the level.
   No budget byte moves before 0.20 (the graph term is subtracted from 0.20: vllm_budget.graph_reserve); verify's
   capture plan does (graphs_off: no decode graph, decode timed eagerly).
2. A dotted key's value as text (0.9.0-0.9.1 fold it unparsed: utils.py 0.9.0:1452-1466, 0.9.1:1508-1522): 0.9.1's
   configs are pydantic dataclasses (config.py 0.9.1:27), validated in lax mode, so "3" is 3 and "false" False where
   the field is a number or a bool (CompilationConfig.from_cli's validate_json, 0.9.1:4047-4051; SpeculativeConfig.
   from_dict; MultiModalConfig's dict[str, int], 0.9.1:2997); not num_speculative_tokens (SkipValidation[int],
   0.9.1:2352), nor mm_processor_kwargs' dict[str, object] (0.9.1:3007), nor a list / object / null given as text.
   0.9.0's are stdlib dataclasses (config.py 0.9.0:14; from_cli cls(**json.loads(value)), 0.9.0:3910-3914): the text
   stays text.
4. Before 0.12 a compilation value -O gave is said as -O, the flag typed.
"""

from __future__ import annotations

import json

import pytest
from conftest import deployments_file, estimate_plan, one_error_line, run_kvplan

from kvplan.engines import EngineFlags, get_engine
from kvplan.engines.vllm_compilation import resolve
from kvplan.engines.vllm_dotted_flags import refusal

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
H100 = ("--gpu", "H100")


# ---- 1. a level below 3 before 0.12 -----------------------------------------------------------------------------

@pytest.mark.parametrize("engine, config, level, graphs_off", [
    # 0.10.1-0.11.x: below 3 with no cudagraph_mode is NONE; -O0 is -O.level=0, the config {"level": 0}
    ("vllm==0.11.0", None, "0", True),
    ("vllm==0.11.0", None, "1", True),  # levels 1 and 2 (dynamo alone) as much as 0: `!= PIECEWISE`
    ("vllm==0.10.1", '{"level": 2}', None, True),
    ("vllm==0.11.1", '{"mode": 0}', None, True),
    ("vllm==0.11.1", '{"level": 0, "mode": 3}', None, False),  # mode wins over level (0.11.1:608-618)
    ("vllm==0.11.0", None, "3", False),
    ("vllm==0.11.0", '{"cudagraph_mode": "FULL", "level": 0}', None, False),  # FULL needs no piecewise compile
    ("vllm==0.11.0", '{"cudagraph_mode": "NONE", "level": 3}', None, True),
    # 0.8.0-0.10.0: V1 sets level 3 itself, so -O0 captures; V0 (0.7.3) captures whatever the level
    ("vllm==0.10.0", None, "0", False),
    ("vllm==0.9.2", '{"level": 1}', None, False),
    ("vllm==0.8.5", None, "0", False),
    ("vllm==0.7.3", None, "0", False),
])
def test_a_level_below_3_before_0_12(engine, config, level, graphs_off):
    flags = get_engine(engine, EngineFlags(compilation_config=config, optimization_level=level)).flags
    assert flags.graphs_off is graphs_off


def test_a_piecewise_mode_below_level_3_stops_0_11():
    r = run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.11.0", "--compilation-config",
                   '{"cudagraph_mode": "PIECEWISE", "level": 0}')
    line = one_error_line(r)
    assert r.returncode == 2 and "--compilation-config" in line and "level 3" in line and "0.11.0" in line
    # --enforce-eager sets NONE before vLLM asserts: it starts
    eager = run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.11.0", "--enforce-eager",
                       "--compilation-config", '{"cudagraph_mode": "FULL_AND_PIECEWISE", "level": 1}')
    assert eager.returncode == 0, eager.stderr
    # the same object is only parsed where it is not kept (argparse's type): 0.10.1 keeps -O3's level
    dropped = run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.10.1", "--compilation-config",
                         '{"cudagraph_mode": "PIECEWISE", "level": 0}', "-O3")
    assert dropped.returncode == 0, dropped.stderr
    # 0.10.0 has no cudagraph_mode (refused as before), so no such start-up stop to mirror
    assert resolve('{"level": 0}', None, "0.10.0").cudagraph_mode is None


@pytest.mark.parametrize("engine", ["vllm==0.11.0", "vllm==0.10.1"])
def test_level_0_moves_no_budget_byte_before_0_20(engine):
    # graphs are captured after the cache is sized before 0.20: -O0's NONE changes verify's plan, not the budget
    base = estimate_plan(LLAMA, *H100, "--engine", engine)
    off = estimate_plan(LLAMA, *H100, "--engine", engine, "-O0")
    assert off["engine"]["available_kv_cache_bytes"] == base["engine"]["available_kv_cache_bytes"]
    assert json.dumps([t["bytes"] for t in off["budget"]["terms"]]) == \
        json.dumps([t["bytes"] for t in base["budget"]["terms"]])  # the graph term's source says graphs are off


# ---- 2. a dotted key's text, coerced where the release's target does ---------------------------------------------

@pytest.mark.parametrize("arg, value, version, refused", [
    ("--compilation-config.level", "3", "0.9.1", False),  # validate_json, lax: "3" -> 3
    ("--compilation-config.use_cudagraph", "false", "0.9.1", False),
    ("--compilation_config.level", "2", "0.9.1", False),  # the underscored name alike
    ("--compilation-config.level", "3", "0.9.0", True),  # cls(**json.loads(...)): level "3", a str
    ("--compilation-config.cudagraph_capture_sizes", "[1, 2]", "0.9.1", True),  # "Input should be a valid array"
    ("--compilation-config.level", "null", "0.9.1", True),  # "unable to parse string as an integer"
    ("--speculative-config.prompt_lookup_max", "4", "0.9.1", False),  # Optional[int], validated
    ("--speculative-config.num_speculative_tokens", "3", "0.9.1", True),  # SkipValidation[int]
    ("--limit-mm-per-prompt.image", "2", "0.9.1", False),  # dict[str, int]
    ("--limit-mm-per-prompt.image", "2", "0.9.0", True),
    ("--mm-processor-kwargs.max_pixels", "1000", "0.9.1", True),  # dict[str, object]: "1000" stays a str
    ("--compilation-config.backend", "inductor", "0.9.0", False),  # text is text everywhere
])
def test_dotted_text_refused_only_where_the_release_keeps_it_text(arg, value, version, refused):
    assert (refusal(arg, value, version) is not None) is refused


def test_dotted_level_on_the_command_line_0_9_1():
    ok = run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.9.1", "--compilation-config.level", "3")
    assert ok.returncode == 0, ok.stderr
    r = run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.9.0", "--compilation-config.level", "3")
    assert r.returncode == 2 and "would not be a number" in one_error_line(r)


# ---- 4. the flag named as typed --------------------------------------------------------------------------------
# Before 0.12 -O is the compilation config (engine/arg_utils.py 0.11.0:934-935): a value -O gave, or a dotted -O.k,
# is said as -O, the flag the user typed, not --compilation-config.

def _served(tmp_path, args, keys=""):
    command = json.dumps(["vllm", "serve", LLAMA, *args])
    return deployments_file(tmp_path, f"  - name: o\n    engine: vllm==0.11.0\n    gpu: H100\n"
                                      f"    serve: {command}\n{keys}")


def test_a_serve_line_names_the_dotted_o_it_typed(tmp_path):
    # -O.level 0 folds into -O's object; beside the key compilation_config the line gave -O, as typed
    line = one_error_line(run_kvplan("check", "--file", _served(tmp_path, ["-O.level", "0"],
                                                                "    compilation_config:\n      level: 3\n")))
    assert "gives -O and the entry gives key 'compilation_config'" in line, line


def test_a_value_o_gave_is_said_as_o(tmp_path):
    bogus = '{"cudagraph_mode": "bogus"}'
    r = run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.11.0", "-O", bogus)
    assert r.returncode == 2 and "error: -O cudagraph_mode 'bogus'" in one_error_line(r), r.stderr
    # the serve: line that typed it, at its own line, not a compilation_config key the entry lacks
    line = one_error_line(run_kvplan("check", "--file", _served(tmp_path, ["-O", bogus])))
    assert "field 'serve': -O cudagraph_mode 'bogus'" in line, line
    # a dropped -O value is still parsed (argparse's type), and said as -O: 0.8.5 keeps the last typed
    dropped = run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.8.5", "-O", "{'level': 'x'}",
                         "--compilation-config", "{}")
    assert dropped.returncode == 2 and "error: -O " in one_error_line(dropped), dropped.stderr
    # --compilation-config's own value is still said as --compilation-config
    own = run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.11.0", "-O3", "--compilation-config", bogus)
    assert own.returncode == 2 and "error: --compilation-config cudagraph_mode" in one_error_line(own), own.stderr
