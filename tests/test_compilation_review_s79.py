"""Review of the compilation-flags merge (session 79, ccreview): inputs it let through or named wrongly, each against
the vLLM code that reads them.

1. A deployments entry's `serve:` command giving one of --compilation-config / -O and a key giving the other, before
   vLLM 0.12 where the two are one argparse argument (engine/arg_utils.py 0.10.1:850-851, 0.11.0:934-935): the key
   has no place in the command's order, so it is refused with the pair as two keys are ("give one"), not dropped
   unread.
2. vLLM 0.9.0 builds the config as `cls(**json.loads(value))` (config.py 0.9.0:3910-3914), a plain dataclass
   (:3694-3696): a key that is no init field of it (3734-3829; max_capture_size, compilation_time, ... are
   init=False, 3832-3856) is a TypeError, which argparse turns into "invalid from_cli value". 0.9.1's
   TypeAdapter(...).validate_json (config.py 0.9.1:4047-4051) ignores such a key, as pydantic's BaseModel did up
   to 0.8.5.
3. Before 0.12, -O's bad value from a deployments key or the Python API is optimization_level's error, not
   compilation_config's (the field the user gave).
"""

from __future__ import annotations

import json

import pytest
from conftest import deployments_file, estimate_plan, one_error_line, run_kvplan

from kvplan.engines.vllm_compilation import resolve

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
H100 = ("--gpu", "H100")


# ---- 1. a key beside the serve: command's flag, before 0.12 -------------------------------------------------

@pytest.mark.parametrize("flag, key", [
    # the command's -O 0 and the key's config: vLLM would read one argument; the key was dropped unread, its
    # cudagraph_mode 'bogus' passing
    (["-O", "0"], "    compilation_config:\n      cudagraph_mode: bogus\n"),
    (["-O", "0"], "    compilation_config:\n      level: 3\n"),
    # the command's config and the key's -O: the key's 7 (no level, no JSON object) was dropped unread
    (["--compilation-config", '{"level": 3}'], "    optimization_level: 7\n"),
])
def test_a_key_beside_the_commands_flag_is_refused_before_0_12(tmp_path, flag, key):
    command = json.dumps(["vllm", "serve", LLAMA, *flag])
    path = deployments_file(tmp_path, f"  - name: mixed\n    engine: vllm==0.11.0\n    gpu: H100\n"
                                      f"    serve: {command}\n{key}")
    r = run_kvplan("check", "--file", path)
    line = one_error_line(r)
    assert r.returncode == 2 and "one flag of vLLM 0.11.0" in line and "give one" in line, r.stderr


def test_the_commands_own_pair_and_0_12_keys_still_read(tmp_path):
    # both in the command: its order (0.11.0: -O 0 rewritten to -O.level=0, folded after the plain argument: level 0
    # kept, utils/__init__.py 0.11.0:1891-1901)
    command = json.dumps(["vllm", "serve", LLAMA, "-O", "0", "--compilation-config", '{"level": 3}'])
    path = deployments_file(tmp_path, f"  - name: own\n    engine: vllm==0.11.0\n    gpu: H100\n"
                                      f"    serve: {command}\n")
    r = run_kvplan("check", "--file", path)
    assert r.returncode in (0, 1), r.stderr
    # from 0.12 the two are two flags (-O is --optimization-level): a key beside the command is read with it
    command = json.dumps(["vllm", "serve", LLAMA, "-O", "0"])
    path = deployments_file(tmp_path, f"  - name: two\n    engine: vllm==0.12.0\n    gpu: H100\n"
                                      f"    serve: {command}\n    compilation_config:\n      cudagraph_mode: bogus\n")
    assert "cudagraph_mode 'bogus'" in one_error_line(run_kvplan("check", "--file", path))


# ---- 2. vLLM 0.9.0's cls(**json.loads(value)) ------------------------------------------------------------------

@pytest.mark.parametrize("text, name", [
    ('{"use_cuda_graph": true}', "use_cuda_graph"),  # a typo of use_cudagraph (config.py 0.9.0:3798)
    ('{"max_capture_size": 8}', "max_capture_size"),  # init=False (:3832)
    ('{"cudagraph_mode": "NONE"}', "cudagraph_mode"),  # came with 0.10.1
])
def test_0_9_0_refuses_a_key_its_dataclass_lacks(text, name):
    r = run_kvplan("estimate", LLAMA, *H100, "-c", "8192", "--engine", "vllm==0.9.0", "--compilation-config", text)
    line = one_error_line(r)
    assert r.returncode == 2 and "--compilation-config" in line and name in line, r.stderr


def test_0_9_0_takes_its_own_fields_and_0_9_1_ignores_others():
    # every init field of 0.9.0's CompilationConfig named here is one (config.py 0.9.0:3734-3829)
    ok = '{"level": 3, "use_cudagraph": true, "full_cuda_graph": true, "cudagraph_capture_sizes": [1, 2]}'
    assert estimate_plan(LLAMA, *H100, "-c", "8192", "--engine", "vllm==0.9.0", "--compilation-config", ok)
    # 0.9.1 validates with pydantic, which drops the unknown key (its dataclass forbids no extra)
    assert estimate_plan(LLAMA, *H100, "-c", "8192", "--engine", "vllm==0.9.1", "--compilation-config",
                         '{"use_cuda_graph": true}')
    # the same through -O, the one argument's other name, and as a deployments mapping
    r = run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.9.0", "-O", '{"use_cuda_graph": true}')
    assert r.returncode == 2 and "use_cuda_graph" in one_error_line(r)
    with pytest.raises(Exception) as exc:
        resolve('{"use_cuda_graph": true}', None, "0.9.0")
    assert exc.value.field == "compilation_config"
    assert resolve('{"use_cuda_graph": true}', None, "0.9.1").cudagraph_mode is None


def test_0_9_0_key_in_a_deployments_mapping(tmp_path):
    path = deployments_file(tmp_path, f"  - name: typo\n    model: {LLAMA}\n    tp: 1\n    gpu: H100\n"
                                      f"    engine: vllm==0.9.0\n    compilation_config:\n      use_cuda_graph: true\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert "compilation_config" in line and "use_cuda_graph" in line


# ---- 3. -O's bad value named as -O's field before 0.12 -----------------------------------------------------

def test_a_bad_level_key_is_optimization_levels_error(tmp_path):
    # 0.10.1: -O 4 is no level (the rewrite takes 0-3 alone, utils/__init__.py 0.10.1:1805-1815), validate_json('4')
    # refuses it: the user's key is optimization_level
    path = deployments_file(tmp_path, f"  - name: four\n    model: {LLAMA}\n    tp: 1\n    gpu: H100\n"
                                      f"    engine: vllm==0.10.1\n    optimization_level: 4\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert "field 'optimization_level'" in line and "'4'" in line
    with pytest.raises(Exception) as exc:
        resolve(None, "4", "0.10.1")
    assert exc.value.field == "optimization_level"
    with pytest.raises(Exception) as exc:
        resolve(None, '{"cudagraph_mode": "bogus"}', "0.10.1")
    assert exc.value.field == "optimization_level"
