"""vLLM's --compilation-config / -O, the three gaps session 78 left (session 79, ccfix): kvplan/engines/
vllm_compilation_text.py and vllm_compilation.py, read in vLLM 0.6.5-0.34.0.

1. Before 0.12, -O and --compilation-config are one argparse argument (engine/arg_utils.py 0.6.5:914-916, 0.10.1:
   850-851, 0.11.1:1148-1149): argparse's `type` parses every value, its dest keeps the last. Up to 0.9.1 in the
   order typed; 0.9.2-0.11.x FlexibleArgumentParser rewrites -O3 / -O=3 / `-O 3` to `-O.level=3` and puts the folded
   `-O {...}` after every plain argument (utils/__init__.py 0.9.2:1504-1514, 1548-1577), so the level wins wherever
   it was typed against a plain --compilation-config, and loses to a --compilation-config.k typed after it (its
   group comes second in the order of first keys). From 0.12 -O is --optimization-level, read with the config.
2. The text: 0.6.5-0.8.5 from_cli takes exactly "0".."3" as the level, else ast.literal_eval + model_validate
   (config.py 0.6.5:2703-2709, 0.8.5:3529-3535); 0.9.0 json.loads into cls(**...) (config.py 0.9.0:3910-3914);
   0.9.1 validate_json after the bare level (config.py 0.9.1:4047-4051); 0.9.2 on validate_json alone.
3. 0.12.0 turns every cudagraph_mode but NONE to NONE when the compilation mode is not VLLM_COMPILE (config/vllm.py
   0.12.0:647-658, `cudagraph_mode != CUDAGraphMode.NONE`); 0.13 only the modes that need piecewise compilation
   (0.13.0:670-680, requires_piecewise_compilation: PIECEWISE, FULL_AND_PIECEWISE). It changes no budget byte in
   0.12 (the graph term is subtracted from 0.20: vllm_budget.graph_reserve) but verify's capture plan: graphs_off.
"""

from __future__ import annotations

import json

import pytest
from conftest import deployments_file, estimate_plan, one_error_line, run_kvplan

from kvplan.engines import EngineFlags, get_engine
from kvplan.engines.vllm_compilation import one_flag, resolve
from kvplan.engines.vllm_compilation_text import config_value, last_given

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
H100 = ("--gpu", "H100")
NONE_JSON = '{"cudagraph_mode": "NONE"}'


# ---- 1. which value the one argument keeps -------------------------------------------------------------------

@pytest.mark.parametrize("release, args, values", [
    # 0.6.5-0.9.1: argparse in the order typed; -O3 / -O=3 hand argparse "3"
    ((0, 8, 5), ["-O3", "--compilation-config", NONE_JSON], ["3", NONE_JSON]),
    ((0, 8, 5), ["--compilation-config", NONE_JSON, "-O=3"], [NONE_JSON, "3"]),
    ((0, 6, 5), ["-O", "0", "-O", "3"], ["0", "3"]),
    # 0.9.2-0.11.x: -O <n> becomes -O.level=<n>, folded after the plain arguments: last whichever order
    ((0, 10, 1), ["-O", "0", "--compilation-config", '{"level": 3}'], ['{"level": 3}', '{"level": 0}']),
    ((0, 10, 1), ["--compilation-config", NONE_JSON, "-O3"], [NONE_JSON, '{"level": 3}']),
    ((0, 11, 0), ["-O3", "--compilation-config", NONE_JSON], [NONE_JSON, '{"level": 3}']),
    ((0, 9, 2), ["-O", '{"level": 1}', "-O2"], ['{"level": 1}', '{"level": 2}']),
    # the level and -O.k keys are one object; --compilation-config.k another, the groups in first-key order
    ((0, 10, 1), ["-O", "3", "-O.cudagraph_mode=FULL"], ['{"level": 3, "cudagraph_mode": "FULL"}']),
    ((0, 10, 1), ["-O", "3", "--compilation-config.cudagraph_mode=FULL"],
     ['{"level": 3}', '{"cudagraph_mode": "FULL"}']),
    ((0, 10, 1), ["--compilation-config.cudagraph_mode=FULL", "-O", "3"],
     ['{"cudagraph_mode": "FULL"}', '{"level": 3}']),
    # -O 4 is no level: left as -O '4' (the rewrite takes 0-3 alone), for the type to refuse
    ((0, 10, 1), ["-O", "4", "--compilation-config", "{}"], ["4", "{}"]),
])
def test_the_values_vllm_parses_in_order(release, args, values):
    assert last_given(["--gpu", "H100", *args, "-c", "8192"], release) == values


def test_from_0_12_the_two_are_two_flags():
    assert last_given(["-O", "0", "-cc", '{"level": 3}'], (0, 12, 0)) is None
    assert one_flag(["-O", "0", "-cc", "{}"], "{}", "0", "vllm==0.12.0") == ("{}", "0")


@pytest.mark.parametrize("engine, args, graphs_off", [
    # 0.10.1: the level is kept whatever the order, so NONE is dropped: graphs captured
    ("vllm==0.10.1", ["--compilation-config", NONE_JSON, "-O3"], False),
    ("vllm==0.10.1", ["-O3", "--compilation-config", NONE_JSON], False),
    # 0.11.0: a --compilation-config.k typed after the level is its own group, second: kept
    ("vllm==0.11.0", ["-O3", "--compilation-config.cudagraph_mode", "NONE"], True),
    # 0.11.0's level 0 captures none (config/__init__.py 0.11.0:361-376), so the level kept decides: -O0 folded
    # after the plain --compilation-config wins; a --compilation-config.level typed after -O0 is the later group
    ("vllm==0.11.0", ["--compilation-config", '{"level": 3}', "-O0"], True),
    ("vllm==0.11.0", ["-O0", "--compilation-config.level", "3"], False),
])
def test_the_kept_value_is_what_the_engine_reads(engine, args, graphs_off):
    config, level = one_flag(args, "x", "x", engine)
    assert (config is None) != (level is None)  # one kept: -O's where -O gave it, else --compilation-config's
    release = tuple(map(int, engine.split("==")[1].split(".")))
    flags = get_engine(engine, EngineFlags(compilation_config=config_value(config, release),
                                           optimization_level=level)).flags
    assert flags.graphs_off is graphs_off


@pytest.mark.parametrize("args, kept", [
    # 0.8.5 keeps the value typed last. No graph figure tells them apart there (its V1 sets level 3 itself,
    # config.py 0.8.5:3884-3895, and cudagraph_mode came with 0.10.1), so the kept value is asserted: the two
    # orders keep different ones
    (["--compilation-config", '{"level": 0}', "-O3"], (None, "3")),
    (["-O3", "--compilation-config", '{"level": 0}'], ('{"level": 0}', None)),
    (["-O", "0", "-O", "3"], (None, "3")),
])
def test_0_8_5_keeps_the_value_typed_last(args, kept):
    assert one_flag(args, "x", "x", "vllm==0.8.5") == kept


def test_a_dropped_value_is_still_parsed():
    # argparse runs the type on '{"cudagraph_mode": "foo"}' before -O3's object replaces it: vLLM stops
    r = run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.10.1", "--compilation-config",
                   '{"cudagraph_mode": "foo"}', "-O3")
    assert r.returncode == 2 and "cudagraph_mode 'foo'" in one_error_line(r)


def test_the_command_line_keeps_one_and_the_file_keys_refuse_both(tmp_path):
    # 0.10.1: `-O 0 --compilation-config '{"level": 3}'` is {"level": 0} to vLLM, which starts; as kvplan runs it
    r = run_kvplan("estimate", LLAMA, *H100, "-c", "32768", "--engine", "vllm==0.10.1", "-O", "0",
                   "--compilation-config", '{"level": 3}', "--format", "json")
    assert r.returncode == 0, r.stderr
    # a deployments file's keys have no order: one flag to vLLM 0.10.1, so both are refused in one sentence
    path = deployments_file(tmp_path, f"  - name: both\n    model: {LLAMA}\n    tp: 1\n    gpu: H100\n"
                                      f"    engine: vllm==0.10.1\n    optimization_level: 0\n"
                                      f"    compilation_config:\n      level: 3\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert "are one flag of vLLM 0.10.1" in line and "give one" in line
    # a serve: command has its order, read with the entry's engine key
    command = json.dumps(["vllm", "serve", LLAMA, "-O", "0", "--compilation-config", '{"level": 3}'])
    served = deployments_file(tmp_path, f"  - name: served\n    engine: vllm==0.10.1\n    gpu: H100\n"
                                        f"    serve: {command}\n")
    f = run_kvplan("check", "--file", served, "--format", "json")
    assert f.returncode == 0, f.stderr


def test_from_0_12_both_keys_are_read_together(tmp_path):
    path = deployments_file(tmp_path, f"  - name: both\n    model: {LLAMA}\n    tp: 1\n    gpu: H100\n"
                                      f"    engine: vllm==0.12.0\n    optimization_level: 1\n"
                                      f"    compilation_config:\n      cudagraph_mode: PIECEWISE\n")
    assert run_kvplan("check", "--file", path).returncode in (0, 1)


# ---- 2. the text each release reads ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, release, expected", [
    # 0.6.5-0.8.5: the four exact strings, else a Python dict literal
    ("3", (0, 8, 5), "3"),
    ("{'level': 3}", (0, 8, 5), '{"level": 3}'),
    ("{'level': 3, 'use_cudagraph': True,}", (0, 7, 3), '{"level": 3, "use_cudagraph": true}'),
    ('{"level": 3}', (0, 6, 5), '{"level": 3}'),  # JSON without true / false / null is a Python literal too
    # 0.9.0 json.loads, 0.9.1 validate_json: JSON's true, the bare level still taken
    ('{"use_cudagraph": true}', (0, 9, 0), '{"use_cudagraph": true}'),
    ("2", (0, 9, 1), "2"),
    # a YAML mapping / API dict is structure, no text: any release
    ({"use_cudagraph": True}, (0, 8, 5), '{"use_cudagraph": true}'),
])
def test_text_taken(text, release, expected):
    assert config_value(text, release) == expected


@pytest.mark.parametrize("text, release, said", [
    ('{"use_cudagraph": true}', (0, 8, 5), "Python dict literal"),  # literal_eval: malformed node
    ("4", (0, 8, 5), "Python dict literal"),  # literal_eval gives 4, no dict for model_validate
    (" 3", (0, 6, 5), "Python dict literal"),  # from_cli's `in ["0", "1", "2", "3"]` is exact
    ("[3]", (0, 7, 3), "Python dict literal"),
    ("{'level': 3}", (0, 9, 0), "JSON object of CompilationConfig fields or a level 0, 1, 2 or 3 in vLLM 0.9.0"),
    ("{'level': 3}", (0, 10, 1), "JSON object of CompilationConfig fields in vLLM 0.10.1"),
    ('{"level": 3,}', (0, 9, 1), "JSON object"),
])
def test_text_refused(text, release, said):
    with pytest.raises(Exception) as exc:
        config_value(text, release)
    assert said in str(exc.value) and exc.value.field == "compilation_config"


def test_python_literal_on_the_command_line():
    ok = run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.8.5", "--compilation-config", "{'level': 3}")
    assert ok.returncode == 0, ok.stderr
    # the same after -O (one argument, one type) and the bare level after --compilation-config
    assert run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.8.5", "-O", "{'level': 3}").returncode == 0
    assert run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.8.5", "--compilation-config", "3").returncode == 0
    bad = run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.8.5", "--compilation-config",
                     '{"use_cudagraph": true}')
    line = one_error_line(bad)
    assert bad.returncode == 2 and line.count(".") >= 1 and "--compilation-config takes a level 0, 1, 2 or 3 or a " \
        "Python dict literal in vLLM 0.8.5" in line
    later = run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.10.1", "--compilation-config", "{'level': 3}")
    assert later.returncode == 2 and "takes a JSON object" in one_error_line(later)


def test_yaml_mapping_with_a_boolean_under_a_literal_release(tmp_path):
    path = deployments_file(tmp_path, f"  - name: lit\n    model: {LLAMA}\n    tp: 1\n    gpu: H100\n"
                                      f"    engine: vllm==0.8.5\n    compilation_config:\n      use_cudagraph: false\n")
    assert run_kvplan("check", "--file", path).returncode in (0, 1)
    text = deployments_file(tmp_path, f"  - name: lit\n    model: {LLAMA}\n    tp: 1\n    gpu: H100\n"
                                      f"    engine: vllm==0.8.5\n"
                                      f"    compilation_config: '{{\"use_cudagraph\": true}}'\n")
    assert "Python dict literal" in one_error_line(run_kvplan("check", "--file", text))


# ---- 3. 0.12.0's rule: every graph mode off without VLLM_COMPILE ----------------------------------------------

@pytest.mark.parametrize("config, level, version, mode", [
    ('{"cudagraph_mode": "FULL", "mode": 0}', None, "0.12.0", "NONE"),  # 0.12.0:647-658
    ('{"cudagraph_mode": "FULL_DECODE_ONLY", "mode": 2}', None, "0.12.0", "NONE"),
    ('{"cudagraph_mode": "FULL"}', "0", "0.12.0", "NONE"),  # -O0 sets mode NONE (0.12.0:629-633)
    ('{"cudagraph_mode": "FULL", "level": 1}', None, "0.12.0", "NONE"),  # level read as mode (compilation.py :779-788)
    ('{"cudagraph_mode": "FULL", "mode": 3}', None, "0.12.0", "FULL"),  # VLLM_COMPILE keeps it
    ('{"cudagraph_mode": "FULL", "mode": 0}', None, "0.13.0", "FULL"),  # 0.13: piecewise modes only
    ('{"cudagraph_mode": "FULL_DECODE_ONLY"}', "0", "0.20.0", "FULL_DECODE_ONLY"),
])
def test_0_12_turns_every_mode_off_without_vllm_compile(config, level, version, mode):
    assert resolve(config, level, version).cudagraph_mode == mode


def test_0_12_rule_changes_the_capture_plan_not_the_budget():
    flags = EngineFlags(compilation_config='{"cudagraph_mode": "FULL", "mode": 0}')
    assert get_engine("vllm==0.12.0", flags).flags.graphs_off  # verify: no decode graph, decode timed eagerly
    assert not get_engine("vllm==0.13.0", flags).flags.graphs_off
    # 0.12 subtracts no graph term (from 0.20): the budget is the default's to the byte
    base = estimate_plan(LLAMA, *H100, "--engine", "vllm==0.12.0")
    off = estimate_plan(LLAMA, *H100, "--engine", "vllm==0.12.0", "--compilation-config",
                        '{"cudagraph_mode": "FULL", "mode": 0}')
    assert off["engine"]["available_kv_cache_bytes"] == base["engine"]["available_kv_cache_bytes"]
    assert json.dumps([t["bytes"] for t in off["budget"]["terms"]]) == \
        json.dumps([t["bytes"] for t in base["budget"]["terms"]])  # the graph term's source says graphs are off
