"""Review of the s78 --compilation-config / -O merge (engines/vllm_compilation.py, vllm_dotted_flags.py), each case
read in vLLM's own code of the release named.

Llama-3.1-8B-Instruct on an H100, vLLM 0.32.0's defaults (test_compilation_config_s78.py's docstring): 51 capture
sizes, PIECEWISE=51 and FULL=51; the graph term is one figure whatever the count there.
"""

from __future__ import annotations

import pytest
from conftest import estimate_plan, one_error_line, run_kvplan

from kvplan import api

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
H100 = ("--gpu", "H100")


def _graphs(plan: dict) -> dict:
    (term,) = [t for t in plan["budget"]["terms"] if t["name"] == "cuda_graphs"]
    return term


def test_a_bare_level_after_compilation_config_is_refused_from_0_9_2():
    # 0.9.1's CompilationConfig.from_cli takes "0".."3" as the level (config.py 0.9.1:4047-4051); 0.9.2's is
    # TypeAdapter(CompilationConfig).validate_json alone (config.py 0.9.2:4165-4169; from 0.10.1 arg_utils.py
    # parse_dataclass, 0.11.0:198-202), and a JSON number is no dataclass ("Input should be an object"). -O 3 stays
    # the level up to 0.11: FlexibleArgumentParser rewrites it to -O.level 3 (utils/__init__.py 0.11.0:1891-1901)
    line = one_error_line(run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.11.0",
                                     "--compilation-config", "3"))
    assert "--compilation-config" in line and "JSON object" in line, line
    assert run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.9.1", "--compilation-config", "3").returncode == 0
    assert run_kvplan("estimate", LLAMA, *H100, "--engine", "vllm==0.11.0", "-O", "3").returncode == 0


@pytest.mark.parametrize("version, fields", [
    ("0.13.0", '{"use_cudagraph": false}'),  # gone before 0.13 (no 0.13-0.34 CompilationConfig has it)
    ("0.20.0", '{"compilation_time": 1}'),  # field(init=False): "Unexpected keyword argument" under extra="forbid"
    ("0.30.0", '{"use_breakable_cudagraph": true}'),  # first in 0.34.0 compilation.py:735
    ("0.15.0", '{"fast_moe_cold_start": false}'),  # first in 0.16.0
    ("0.18.0", '{"compile_ranges_split_points": []}'),  # 0.13-0.17; 0.18 has compile_ranges_endpoints
])
def test_a_field_the_release_lacks_is_refused(version, fields):
    line = one_error_line(run_kvplan("estimate", LLAMA, *H100, "--engine", f"vllm=={version}",
                                     "--compilation-config", fields))
    assert "not a field of vLLM" in line and version in line, line


@pytest.mark.parametrize("version, fields", [
    ("0.19.0", '{"encoder_cudagraph_max_images_per_batch": 1}'),  # 0.19.0 only
    ("0.16.0", '{"fast_moe_cold_start": false}'),
    ("0.17.0", '{"compile_ranges_split_points": []}'),
    ("0.12.0", '{"use_cudagraph": false}'),  # before 0.13 pydantic drops what the dataclass lacks
])
def test_a_field_the_release_has_is_taken(version, fields):
    r = run_kvplan("estimate", LLAMA, *H100, "--engine", f"vllm=={version}", "--compilation-config", fields)
    assert r.returncode == 0, r.stderr


def test_a_dotted_list_given_twice_is_joined():
    # recursive_dict_update appends a list to the list already there (utils/argparse_utils.py 0.32.0 parse_args,
    # utils/__init__.py 0.9.2:1536-1537): [1, 2] then [4] is [1, 2, 4], PIECEWISE=3 (largest=4), FULL=3
    twice = estimate_plan(LLAMA, *H100, "--compilation-config.cudagraph_capture_sizes", "[1,2]",
                          "--compilation-config.cudagraph_capture_sizes", "[4]")
    assert "PIECEWISE=3 (largest=4), FULL=3 (largest=4)" in _graphs(twice)["source"], _graphs(twice)["source"]
    assert twice["budget"] == estimate_plan(LLAMA, *H100, "--cudagraph-capture-sizes", "1,2,4")["budget"]


def test_dotted_keys_of_two_spellings_are_two_objects():
    # vLLM folds by the name as typed (-cc and --compilation-config apart), appends each object in the order of its
    # first key, and argparse keeps the last: -cc.cudagraph_mode=NONE is lost to --compilation-config.x's object
    plan = estimate_plan(LLAMA, *H100, "-cc.cudagraph_mode=NONE", "--compilation-config.max_cudagraph_capture_size=16")
    assert _graphs(plan)["bytes"] > 0
    assert plan["budget"] == estimate_plan(LLAMA, *H100, "--max-cudagraph-capture-size", "16")["budget"]


def test_the_python_api_takes_the_compilation_config_and_level():
    def available(plan) -> int:
        return plan.to_dict()["engine"]["available_kv_cache_bytes"]

    (eager,) = api.estimate(LLAMA, gpu="H100", enforce_eager=True)
    (by_config,) = api.estimate(LLAMA, gpu="H100", compilation_config={"cudagraph_mode": "NONE"})
    (by_level,) = api.estimate(LLAMA, gpu="H100", optimization_level=0)
    assert available(by_config) == available(by_level) == available(eager)
    (row,) = api.check(LLAMA, tensor_parallel_size=1, gpu="H100", compilation_config='{"cudagraph_mode": "NONE"}')
    (eager_row,) = api.check(LLAMA, tensor_parallel_size=1, gpu="H100", enforce_eager=True)
    assert row["passed"] and row["max_concurrency"] == eager_row["max_concurrency"]
