"""Defects the s58 fuzz campaign found (/tmp/s58/fuzz), each reproduced here. Bad input is one line on stderr naming
the field and what is valid, exit 2; exit 3 (kvplan's internal error) is a defect.

F1  --cpu-offload-gb 1e300 overflowed (exit 3): vLLM takes any float 0 or more (config/offload.py 0.34.0:23
    Field(ge=0)); kvplan bounds it at 2**30 GiB = 1 EiB, its bound on every size, and says so.
F2  the API's switches (enforce_eager, skip_mm_profiling, language_model_only, ...) were read by truth ("false" on);
    cpu_offload_gb took b"8"; check spoke of YAML booleans to a Python caller.
F3  --max-loras past kvplan's 2**20 slots said "must be 1 or more".
F4  gpu_util: 9e-1 in a deployments file (a string to YAML 1.1, whose floats need a dot and a signed exponent) was
    refused while --gpu-util 9e-1 was taken.
F6  -f html was taken but not in --help; -f JSON was refused.
F7  vllm==0.34.99 was taken while the message said 0.2 to 0.34.0; the real 0.10.1.1 was refused.
F8  a value given twice in a sweep planned twice.
F9  -c auto,8K said "must be a whole number" though auto alone is valid.
"""

from __future__ import annotations

import json

import pytest
from conftest import deployments_file, one_error_line, run_kvplan

from kvplan import api
from kvplan.errors import FieldError

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
GiB = 2**30


def _json(*args) -> dict:
    run = run_kvplan(*args, "-f", "json")
    assert run.returncode in (0, 1), run.stderr
    return json.loads(run.stdout)


def _check_file(tmp_path, extra: str) -> dict:
    path = deployments_file(tmp_path, f"  - name: a\n    model: {LLAMA}\n    tp: 1\n    context: 8192\n{extra}")
    (result,) = _json("check", "--file", path)["results"]
    return result


# F1 ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [("estimate", LLAMA), ("check", LLAMA, "-tp", "1")])
@pytest.mark.parametrize("value", ["1e300", "1e20", "1073741825", "inf", "nan", "-1", "1_0", "\u0663", "0x10"])
def test_cpu_offload_out_of_bounds_is_one_line(args, value):
    line = one_error_line(run_kvplan(*args, "--cpu-offload-gb", value))
    assert "--cpu-offload-gb must be a number of GiB from 0 to 1,073,741,824 (2**30 GiB = 1 EiB" in line


def test_cpu_offload_out_of_bounds_in_a_deployments_file(tmp_path):
    path = deployments_file(tmp_path, f"  - name: a\n    model: {LLAMA}\n    tp: 1\n    cpu_offload_gb: 1.0e+300\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert "deployment 'a' field 'cpu_offload_gb' must be a number of GiB from 0 to 1,073,741,824" in line


def test_cpu_offload_at_the_bound_moves_every_decoder_layer():
    # vLLM's UVA offloader moves decoder-layer tensors only (not the embeddings or the LM head): what stays on the GPU
    # of Llama-3.1-8B is its two 128,256 x 4,096 bf16 matrices, 2 x 128256 x 4096 x 2 = 2,101,346,304 bytes
    for value in (1000, 2**30):
        (plan,) = api.estimate(LLAMA, max_model_len=8192, cpu_offload_gb=value)
        assert plan.budget.weights_bytes_per_gpu == 2 * 128256 * 4096 * 2


# F2 ------------------------------------------------------------------------------------------------------------

SWITCHES = ("enforce_eager", "skip_mm_profiling", "language_model_only", "enable_expert_parallel", "enable_eplb",
            "enable_lora", "fully_sharded_loras")


@pytest.mark.parametrize("switch", SWITCHES)
@pytest.mark.parametrize("value", ["false", "no", 0, 1, "", [], -0.0])  # None: the default (review2)
def test_api_switches_are_python_bools(switch, value):
    for function, kwargs in ((api.estimate, {"max_model_len": 8192}), (api.check, {"tensor_parallel_size": 1})):
        with pytest.raises(FieldError) as error:
            function(LLAMA, **kwargs, **{switch: value})
        assert error.value.field == switch
        assert f"must be True or False (a Python bool), got {value!r}." in str(error.value)
        assert "YAML" not in str(error.value)


def test_api_enforce_eager_false_keeps_the_graph_reserve():
    # vLLM 0.32 sizes the CUDA graphs' memory unless --enforce-eager: False keeps that term, True drops it
    kept = api.estimate(LLAMA, max_model_len=8192, enforce_eager=False)[0].budget.cuda_graph_bytes
    assert kept > 0 and api.estimate(LLAMA, max_model_len=8192, enforce_eager=True)[0].budget.cuda_graph_bytes == 0


@pytest.mark.parametrize("value", [b"8", bytearray(b"8"), 10**30, 10**400, float("inf"), True, "\u0663"])
def test_api_cpu_offload_refuses_what_is_no_number_of_gib(value):
    for function, kwargs in ((api.estimate, {"max_model_len": 8192}), (api.check, {"tensor_parallel_size": 1})):
        with pytest.raises(FieldError) as error:
            function(LLAMA, **kwargs, cpu_offload_gb=value)
        assert error.value.field == "cpu_offload_gb" and "from 0 to 1,073,741,824" in str(error.value)


def test_api_cpu_offload_takes_a_number_or_its_text():
    # 8 GiB of decoder layers off a GPU: 8 x 2**30 bytes at least, at most one tensor more (vLLM's offloader)
    plain = api.estimate(LLAMA, max_model_len=8192)[0].budget.weights_bytes_per_gpu
    for value in (8, 8.0, "8"):
        moved = plain - api.estimate(LLAMA, max_model_len=8192, cpu_offload_gb=value)[0].budget.weights_bytes_per_gpu
        assert 8 * GiB <= moved < 8 * GiB + 4096 * 14336 * 2  # one MLP matrix is the largest tensor of a layer


# F3 ------------------------------------------------------------------------------------------------------------

def test_max_loras_past_the_bound_names_the_range():
    line = one_error_line(run_kvplan("estimate", LLAMA, "--enable-lora", "--max-loras", "1048577"))
    assert "--max-loras must be 1 to 1,048,576 (vLLM's --max-loras takes 1 or more" in line
    assert "got 1,048,577." in line
    line = one_error_line(run_kvplan("estimate", LLAMA, "--enable-lora", "--max-loras", "0"))
    assert "--max-loras must be 1 to 1,048,576" in line
    with pytest.raises(FieldError, match="max_loras must be 1 to 1,048,576"):
        api.estimate(LLAMA, max_model_len=8192, enable_lora=True, max_loras=2**20 + 1)


# F4 ------------------------------------------------------------------------------------------------------------

def test_gpu_util_in_exponent_form_in_a_deployments_file(tmp_path):
    decimal = _check_file(tmp_path, "    gpu_util: 0.9\n")
    exponent = _check_file(tmp_path, "    gpu_util: 9e-1\n")  # YAML 1.1: a string; YAML 1.2: 0.9
    flag = _json("check", LLAMA, "-tp", "1", "-c", "8192", "--gpu-util", "9e-1")["results"][0]
    assert exponent["max_concurrency"] == decimal["max_concurrency"] == flag["max_concurrency"]
    assert exponent["kv_budget_bytes_per_gpu"] == decimal["kv_budget_bytes_per_gpu"]
    default = _check_file(tmp_path, "")  # vLLM 0.32's 0.92: a larger budget than 0.9's
    assert default["kv_budget_bytes_per_gpu"] > exponent["kv_budget_bytes_per_gpu"]


def test_cpu_offload_in_exponent_form_in_a_deployments_file(tmp_path):
    assert _check_file(tmp_path, "    cpu_offload_gb: 4e0\n")["kv_budget_bytes_per_gpu"] == \
        _check_file(tmp_path, "    cpu_offload_gb: 4.0\n")["kv_budget_bytes_per_gpu"]


# quoted decimal text is the number (review2 D2: '0.9' as '8' for cpu_offload_gb), so "9e+1" is 90.0 too
@pytest.mark.parametrize("value, shown", [('"9e+1"', "90.0"), ("9e+1", "90.0"), ("1e300", "1e+300"),
                                          ("1e999", "inf")])
def test_gpu_util_outside_a_fraction_in_a_file_is_refused(tmp_path, value, shown):
    path = deployments_file(tmp_path, f"  - name: a\n    model: {LLAMA}\n    tp: 1\n    gpu_util: {value}\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert f"field 'gpu_util' must be a fraction in (0, 1]" in line and line.endswith(f"got {shown}.")


# F6 ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [("models",), ("gpus",), ("check", LLAMA, "-tp", "1"), ("estimate", LLAMA)])
def test_format_help_names_every_format_taken(command):
    text = " ".join(run_kvplan(command[0], "--help").stdout.replace("│", " ").split())  # rich's box lines out
    assert "table (for people), json, yaml, csv or html (a standalone page), in any case" in text
    for fmt in ("table", "json", "yaml", "csv", "html"):
        assert run_kvplan(*command, "-f", fmt).returncode == 0


@pytest.mark.parametrize("command", [("models",), ("gpus",), ("check", LLAMA, "-tp", "1", "-c", "8K"),
                                     ("estimate", LLAMA, "-c", "8K")])
def test_format_is_case_insensitive(command):
    assert run_kvplan(*command, "-f", "JSON").stdout == run_kvplan(*command, "-f", "json").stdout
    assert run_kvplan(*command, "-f", "Html").stdout == run_kvplan(*command, "-f", "html").stdout


def test_an_unknown_format_lists_the_formats():
    line = one_error_line(run_kvplan("models", "-f", "xml"))
    assert "--format 'xml' is not one of table, json, yaml, csv, html." in line


# F7 ------------------------------------------------------------------------------------------------------------

ACCEPTED = "a release published on PyPI from 0.2.0 to 0.34.0 (0.32.0, 0.10.1.1, 0.8.5.post1) or a minor series"


@pytest.mark.parametrize("release, nearest", [("0.34.99", "release is 0.34.0"), ("0.34.1", "release is 0.34.0"),
                                              ("0.2.1", "release is 0.2.1.post1"),
                                              ("0.10.1.2", "releases are 0.10.1 and 0.10.1.1"),
                                              ("0.8.5.post2", "releases are 0.8.5 and 0.8.5.post1"),
                                              ("0.1.0", None), ("0.1", None), ("0.99", None), ("1.0.0", None)])
def test_a_release_vllm_never_published_is_refused(release, nearest):
    # pip index versions vllm (2026-12-05): 0.2.1 only as 0.2.1.post1, 0.8.5.post1 the only post of 0.8.5, no 0.34.1;
    # inside the span the nearest published release is named (review2's nit)
    line = one_error_line(run_kvplan("estimate", LLAMA, "--engine", f"vllm=={release}"))
    if nearest is None:
        assert f"--engine vllm=={release} is outside the releases kvplan models: give {ACCEPTED}" in line
    else:
        assert f"--engine vllm=={release} was never published on PyPI; the nearest published {nearest}; kvplan " \
               f"takes {ACCEPTED}" in line


@pytest.mark.parametrize("release", ["x", "0.²", "v0.10.1", "0.10.1-rc1"])
def test_a_name_no_release_has_lists_the_releases(release):
    line = one_error_line(run_kvplan("estimate", LLAMA, "--engine", f"vllm=={release}"))
    assert "is not a vLLM release; give " + ACCEPTED in line


@pytest.mark.parametrize("fix, base", [("0.10.1.1", "0.10.1"), ("0.9.0.1", "0.9.0"), ("0.8.5.post1", "0.8.5"),
                                       ("0.2.1.post1", "0.2.0")])
def test_a_published_fix_release_plans_as_its_base(fix, base):
    # a fix release kvplan models no change in; 0.2.1.post1 against 0.2.0: no rule changes between them either
    def plan(release):
        return json.dumps(api.estimate(LLAMA, max_model_len=8192, engine=f"vllm=={release}")[0].to_dict())

    assert plan(fix).replace(f"vllm {fix}", "").replace(fix, "") == \
        plan(base).replace(f"vllm {base}", "").replace(base, "")


def test_every_release_a_remedy_names_is_published():
    from kvplan.engines.vllm_engine import releases
    from kvplan.engines.vllm_releases import PUBLISHED, published
    from kvplan.engines.vllm_versions import NEWEST

    assert PUBLISHED[-1] == NEWEST and all(published(release) for release in releases())


# F8 ------------------------------------------------------------------------------------------------------------

def test_a_value_given_twice_plans_once():
    # FP8 is refused since session 77 (vLLM's spelling only: model/choices.py), so the repeat is fp8 as typed
    rows = _json("estimate", LLAMA, "-c", "8K,8K,8192", "--kv-cache-dtype", "fp8,fp8_e4m3,fp8", "-tp", "2,2")["plans"]
    (single,) = _json("estimate", LLAMA, "-c", "8192", "--kv-cache-dtype", "fp8", "-tp", "2")["plans"]
    assert rows == [single]


def test_two_sweeps_keep_their_distinct_plans_in_order():
    rows = _json("estimate", LLAMA, "-c", "4K,8K,4K", "-tp", "2,1,2")["plans"]
    assert [(r["context"], r["tp"]) for r in rows] == [(4096, 2), (4096, 1), (8192, 2), (8192, 1)]


def test_sparse_mla_keeps_fp8_and_fp8_e4m3_apart():
    # DeepSeek-V3.2's sparse MLA backends take fp8 (fp8_ds_mla's 656-byte entries) and fp8_e4m3 apart: two plans
    plans = api.estimate("deepseek-ai/DeepSeek-V3.2", max_model_len=8192, kv_cache_dtype="fp8,fp8_e4m3",
                         tensor_parallel_size=8, gpu="h200")
    assert [p.kv_cache_dtype for p in plans] == ["fp8", "fp8_e4m3"]
    assert plans[0].max_concurrency != plans[1].max_concurrency


def test_the_api_drops_a_repeat_as_the_command_line_does():
    plans = api.estimate(LLAMA, max_model_len=[8192, "8K"], tensor_parallel_size=[1, 1], kv_cache_dtype="auto,auto")
    assert len(plans) == 1
    results = api.check(LLAMA, tensor_parallel_size=[2, 2], max_model_len=8192)
    assert [r["tp"] for r in results] == [2]


# F9 ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lengths, word", [("auto,8K", "auto"), ("8K,-1", "-1"), ("8K,AUTO", "AUTO")])
def test_auto_in_a_list_says_it_stands_alone(lengths, word):
    line = one_error_line(run_kvplan("estimate", LLAMA, "-c", lengths))
    assert f"-c takes {word} (vLLM's auto-fit: the longest length that fits) only alone, not in a list" in line


@pytest.mark.parametrize("lengths", ["auto,8K", ["auto", 8192], (8192, -1)])
def test_api_auto_in_a_list_says_it_stands_alone(lengths):
    with pytest.raises(FieldError, match=r"max_model_len takes (auto|-1) \(vLLM's auto-fit"):
        api.estimate(LLAMA, max_model_len=lengths)
