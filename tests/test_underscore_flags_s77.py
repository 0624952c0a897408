"""Underscores in a flag's name, read as vLLM's parser reads them (session 77; engines/vllm_underscore_flags.py,
cli/app.py _respelled / refuse_later_spellings, cli/flags.py KVPLAN_OWN). What vLLM does, from its sources:

- FlexibleArgumentParser.parse_args (utils/argparse_utils.py 0.34.0:378-394) rewrites each argument starting with
  `--`: the part after `--` and before the first `.` has its underscores replaced by dashes; with `=`, only the part
  before the first `=` (the key) is rewritten and `={value}` appended as it was. Arguments not starting with `--`
  (-tp, the model, a value) are appended unchanged. 0.31.0:336-351 is the same; utils.py 0.5.1:933-943, the first,
  rewrites the whole key (the same for any name without a dot).
- 0.5.1 is the first release with that parser: utils.py 0.5.1:924 declares it, entrypoints/openai/cli_args.py
  0.5.1:27 builds the server's parser with it; 0.5.0 and 0.5.0.post1 (cli_args.py :26) and 0.4.2 (:26) use
  argparse.ArgumentParser, whose parse_args stops on an unknown `--max_model_len` ("unrecognized arguments").
- its --config YAML becomes `--key value` arguments before the rewrite (0.34.0:371-372); kvplan takes no --config.
"""

from __future__ import annotations

import json

import pytest

from conftest import deployments_file, one_error_line, run_kvplan
from kvplan.cli import flags
from kvplan.cli.app import click_command, read_names
from kvplan.engines.vllm_underscore_flags import dashed

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
GATE = ("check", LLAMA, "-tp", "1", "-c", "8192", "--gpu", "H100")


def _plan(*args) -> dict:
    run = run_kvplan("estimate", LLAMA, "--gpu", "H100", *args, "-f", "json")
    assert run.returncode == 0, run.stderr
    (plan,) = json.loads(run.stdout)["plans"]
    return plan


# ---- the rewrite, case by case as 0.34.0:387-394 does it -----------------------------------------------------------

@pytest.mark.parametrize("typed, read", [
    ("--max_model_len", "--max-model-len"),
    ("--max_model_len=8192", "--max-model-len=8192"),
    ("--kv_cache_dtype=fp8_e4m3", "--kv-cache-dtype=fp8_e4m3"),  # the key only: the value's underscore stays
    ("--speculative_config.num_speculative_tokens", "--speculative-config.num_speculative_tokens"),  # up to the dot
    ("--no_enable_prefix_caching", "--no-enable-prefix-caching"),
    ("-tp", "-tp"), ("-c8_192", "-c8_192"),  # one dash: appended unchanged (:407-408)
    ("meta_llama/Llama_3", "meta_llama/Llama_3"), ("fp8_e4m3", "fp8_e4m3"), ("--", "--"),
])
def test_the_rewrite(typed, read):
    assert dashed(typed) == read


# ---- read as the dashed flag -------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed, dashes", [
    (("--max_model_len", "8192"), ("--max-model-len", "8192")),
    (("--max_model_len=8192", "--gpu_memory_utilization=0.8"), ("--max-model-len", "8192", "--gpu-memory-utilization",
                                                                "0.8")),
    (("-c", "8192", "--kv_cache_dtype=fp8_e4m3"), ("-c", "8192", "--kv-cache-dtype", "fp8_e4m3")),
    (("-c", "8192", "--tensor_parallel_size", "2"), ("-c", "8192", "-tp", "2")),
    (("-c", "8192", "--max_num_seqs", "64", "--max_num_batched_tokens", "4K"),
     ("-c", "8192", "--max-num-seqs", "64", "--max-num-batched-tokens", "4096")),
])
def test_underscores_plan_as_dashes(typed, dashes):
    assert _plan(*typed) == _plan(*dashes)


def test_the_negative_switches_too():
    # 0.34.0 reserves CUDA-graph memory unless --enforce-eager: --enforce_eager differs from the default, and
    # --no_enforce_eager typed last turns it off again (the last spelling wins, engines/vllm_bool_flags.py)
    release = ("-c", "8192", "--engine", "vllm==0.34.0")
    assert _plan(*release, "--enforce_eager")["engine"] == _plan(*release, "--enforce-eager")["engine"]
    assert _plan(*release, "--enforce_eager", "--no_enforce_eager")["engine"] == _plan(*release)["engine"]
    assert _plan(*release, "--no_enable_prefix_caching") == _plan(*release, "--no-enable-prefix-caching")


def test_a_later_spelling_with_underscores():
    # --device-memory-utilization: vLLM 0.31's spelling of --gpu-memory-utilization (vllm_engine.SPELLING_SINCE)
    release = ("-c", "8192", "--engine", "vllm==0.34.0")
    assert _plan(*release, "--device_memory_utilization", "0.8") == _plan(*release, "--gpu-memory-utilization", "0.8")
    line = one_error_line(run_kvplan(*GATE, "--engine", "vllm==0.30.0", "--device_memory_utilization", "0.8"))
    assert line.startswith("kvplan: error: --device-memory-utilization needs vLLM 0.31 or later")


def test_kvplans_own_flags_take_them_too():
    # one rule: --gpu_memory (kvplan's own) reads as --gpu-memory, --min_concurrency as --min-concurrency
    assert _plan("-c", "8192", "--gpu_memory", "40GiB") == _plan("-c", "8192", "--gpu-memory", "40GiB")
    under = run_kvplan(*GATE, "--min_concurrency", "100000", "-f", "json")
    dash = run_kvplan(*GATE, "--min-concurrency", "100000", "-f", "json")
    assert (under.returncode, under.stdout) == (dash.returncode, dash.stdout)
    assert dash.returncode == 1, dash.stderr  # 100,000 requests of 8,192 tokens fit no H100


# ---- the release ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("release", ["0.4.2", "0.5.0", "0.5.0.post1"])
def test_a_release_before_the_rewrite_stops_on_them(release):
    sentence = (f"--max_model_len needs vLLM 0.5.1 or later, whose parser reads underscores as dashes "
                f"(vllm=={release} stops on that spelling: \"unrecognized arguments\"); write --max-model-len.")
    for command in (("check", LLAMA, "-tp", "1", "--max_model_len", "8192"),
                    ("estimate", LLAMA, "--max_model_len=8192"), ("verify", LLAMA, "--max_model_len", "8192")):
        assert one_error_line(run_kvplan(*command, "--engine", f"vllm=={release}")) == f"kvplan: error: {sentence}"


def test_from_051_and_without_a_release_they_are_read():
    assert _plan("--max_model_len", "8192", "--engine", "vllm==0.5.1") == \
        _plan("--max-model-len", "8192", "--engine", "vllm==0.5.1")
    assert _plan("--max_model_len", "8192", "--engine", "none") == _plan("--max-model-len", "8192", "--engine", "none")


def test_kvplans_own_flags_are_not_the_releases_to_refuse():
    # no `vllm serve` has --min-concurrency or --gpu-memory: 0.4.2 is not asked how they are spelled
    gate = ("check", LLAMA, "-tp", "1", "-c", "4096", "--gpu", "H100", "--engine", "vllm==0.4.2")
    under = run_kvplan(*gate, "--min_concurrency", "1", "--gpu_memory", "80GiB", "-f", "json")
    dash = run_kvplan(*gate, "--min-concurrency", "1", "--gpu-memory", "80GiB", "-f", "json")
    assert (under.returncode, under.stdout) == (dash.returncode, dash.stdout)
    assert under.returncode in (0, 1), under.stderr


def test_kvplans_own_flags_are_flags_kvplan_reads():
    commands = click_command().commands
    read = set().union(*(read_names(commands[name]) for name in ("estimate", "check", "verify")))
    assert flags.KVPLAN_OWN <= read
    # vLLM's own, so judged by the release: arg_utils.py 0.34.0:1224 (-tp), :1240, :999 (-q)
    assert not {"--tensor-parallel-size", "--dcp-kv-cache-interleave-size", "--quantization", "--max-model-len",
                "--revision"} & flags.KVPLAN_OWN


# ---- what is left as typed -----------------------------------------------------------------------------------------

def test_after_the_separator_arguments_are_models():
    line = one_error_line(run_kvplan("estimate", "--gpu", "H100", "--", "--max_model_len"))
    assert "'--max_model_len'" in line and "MODEL" in line


def test_deployments_file_keys_are_fields_not_flags(tmp_path):
    path = deployments_file(tmp_path, f"  - name: a\n    model: {LLAMA}\n    tp: 1\n    max_model_len: 8192\n")
    assert "unknown key 'max_model_len'" in one_error_line(run_kvplan("check", "--file", path))
    # and a flag given beside --file is named as typed
    path = deployments_file(tmp_path, f"  - name: a\n    model: {LLAMA}\n    tp: 1\n")
    line = one_error_line(run_kvplan("check", "--file", path, "--max_model_len", "8192"))
    assert line.startswith("kvplan: error: --max_model_len applies to MODEL only")


# ---- errors name the flag as typed ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, start", [
    (("--max_model_len", "0"), "--max_model_len must be"),
    (("--max_num_seqs", "abc"), "--max_num_seqs takes a whole number"),
    (("--max_model_len",), "--max_model_len needs a value after it"),
    (("--served_model_name", "x"), "kvplan estimate has no option --served_model_name: vLLM's --served-model-name "
                                   "changes nothing"),
    (("--max_model", "8192"), "kvplan estimate has no option --max_model: write the whole flag, --max-model-len"),
    (("--max_modle_len", "8192"), "kvplan estimate has no option --max_modle_len; did you mean --max-model-len"),
    (("--cudagraph_capture_sizes", "1", "2", "4"), "--cudagraph_capture_sizes takes one argument here, but 2 4 "
                                                   "followed it"),  # vLLM's unquoted list, read after the rewrite
])
def test_errors_name_what_was_typed(args, start):
    line = one_error_line(run_kvplan("estimate", LLAMA, *args))
    assert line.startswith(f"kvplan: error: {start}"), line
