"""`kvplan check` as a CI gate against what `vllm serve`'s own parser takes (session 77). The rule: a value `vllm serve`
stops on is refused in one sentence, exit 2, by every command (estimate, check, verify, the API: model/choices.py
says why one rule), and a spelling vLLM takes is taken. What vLLM does, release by release, from its sources:

- --kv-cache-dtype: 0.32.0 argparse choices (config/cache.py 0.32.0:39 CacheDType, :122 the field; arg_utils.py
  0.32.0:214-228 literal_to_kwargs, :381-382 -> `choices`), so `FP8` is "invalid choice"; 0.33+ types the field
  `CacheDType | str` (cache.py 0.34.0:245), argparse lists a metavar and CacheConfig._validate_cache_dtype refuses
  anything not spelled as listed (cache.py 0.34.0:503-510). `bf16` is in neither list.
- --dtype: ModelDType Literal (config/model.py 0.32.0:99, :196) -> argparse choices, exact.
- --quantization: any text, then "Unknown quantization method: FP8" (config/model.py 0.32.0:1451-1456).
- --max-model-len: human_readable_int_or_auto (utils/argparse_utils.py 0.34.0:30-94; arg_utils.py 0.34.0:403-405):
  32k = 32,000, 32K = 32,768, 25.6k = 25,600, 1.5K "Decimals are not allowed with binary suffixes", 32KB not a
  number; 0 and -5 refused by ModelConfig (max_model_len Field(ge=-1), config/model.py 0.34.0:263, and "must be a
  positive integer", :1090-1095; 0.32.0:245, :1057).
- --max-num-seqs: int, Field(ge=1) (config/scheduler.py 0.32.0:62, 0.34.0:61): `1k` and 0 refused.
- --gpu-memory-utilization: Field(gt=0, le=1) (config/cache.py 0.32.0:102, 0.34.0:216); its alias
  --device-memory-utilization from 0.31.0 (engine/arg_utils.py 0.31.0:1327, 0.32.0:1358; not in 0.30.0's).
- -tp / -pp: Field(ge=1) (config/parallel.py 0.32.0:139-141, 0.34.0:148-150).
- --block-size: choices up to 0.17 (0.11.1: 1, 8, 16, 32, 64, 128, 256; vllm_versions.BLOCK_SIZE_CHOICES), any int
  above 0 from 0.18 (cache.py 0.32.0:74 Field(gt=0)), the attention backend then refusing one not a multiple of 16.
- --enable-prefix-caching / --no-enable-prefix-caching: BooleanOptionalAction, last one wins (arg_utils.py
  0.34.0:1420-1426); --disable-prefix-caching from 0.33.0 (EnableDisableAction, utils/argparse_utils.py
  0.33.0:120-150, :179; 0.32.0 has no such class).
- unknown flags: argparse's "unrecognized arguments" (--swap-space is in neither 0.32.0's nor 0.34.0's arg_utils.py).
"""

from __future__ import annotations

import json

import pytest

import kvplan.api as api
from conftest import deployments_file, one_error_line, run_kvplan
from kvplan.cli import flags
from kvplan.errors import FieldError

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
GATE = ("check", LLAMA, "-tp", "1")


def _passes(*args) -> dict:
    """`kvplan check LLAMA -tp 1 ARGS` as JSON: it must pass (exit 0), one result."""
    run = run_kvplan(*GATE, *args, "-f", "json")
    assert run.returncode == 0, run.stderr
    (result,) = json.loads(run.stdout)["results"]
    return result


# ---- values vLLM spells one way: refused in any other case (kvplan took them lower-cased before) ---------------

@pytest.mark.parametrize("flag, value, write", [
    ("--kv-cache-dtype", "FP8", "fp8"), ("--kv-cache-dtype", "Auto", "auto"),
    ("--kv-cache-dtype", "FP8_E4M3", "fp8_e4m3"),
    ("--dtype", "BFloat16", "bfloat16"), ("-q", "FP8", "fp8"), ("--quantization", "Fp8", "fp8"),
])
def test_the_gate_refuses_a_case_vllm_refuses(flag, value, write):
    line = one_error_line(run_kvplan(*GATE, "-c", "8192", flag, value))
    assert line == (f"kvplan: error: {flag} '{value}' is not vLLM's spelling: `vllm serve` matches these values "
                    f"exactly, in lower case, and stops on it; write {write}.")


def test_the_gate_takes_vllm_spellings():
    assert _passes("-c", "8192", "--kv-cache-dtype", "fp8_e5m2", "--dtype", "half", "-q", "fp8")["context"] == 8192


@pytest.mark.parametrize("value, spelled", [("bf16", "bfloat16"), ("fp16", "float16")])
def test_kvplans_result_names_are_not_vllms(value, spelled):
    line = one_error_line(run_kvplan(*GATE, "-c", "8192", "--kv-cache-dtype", value))
    assert line == (f"kvplan: error: --kv-cache-dtype '{value}' is kvplan's short name for the precision in its "
                    f"results; vLLM's --kv-cache-dtype spells it {spelled}.")


def test_one_rule_for_every_command():
    # estimate (a sweep's item too), --engine none (no release chosen), verify and the Python API alike
    for args in (("estimate", LLAMA, "--kv-cache-dtype", "auto,FP8"),
                 ("estimate", LLAMA, "--kv-cache-dtype", "FP8", "--engine", "none"),
                 ("verify", LLAMA, "--kv-cache-dtype", "FP8")):
        assert "'FP8' is not vLLM's spelling" in one_error_line(run_kvplan(*args))
    with pytest.raises(FieldError, match="kv_cache_dtype 'FP8' is not vLLM's spelling"):
        api.estimate(LLAMA, kv_cache_dtype="FP8")


def test_a_deployments_file_is_held_to_the_same_spelling(tmp_path):
    path = deployments_file(tmp_path, f"  - name: chat\n    model: {LLAMA}\n    tp: 1\n    context: 8192\n"
                                      f"    kv_dtype: FP8\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert line == (f"kvplan: error: {path}:6: deployment 'chat' field 'kv_dtype' 'FP8' is not vLLM's spelling: "
                    f"`vllm serve` matches these values exactly, in lower case, and stops on it; write fp8.")


# ---- numbers as vLLM's human_readable_int reads them (kvplan already agreed) -------------------------------------

@pytest.mark.parametrize("value, tokens", [("32k", 32 * 1000), ("32K", 32 * 1024), ("25.6k", 25_600),
                                           ("8_192", 8192)])  # int("8_192"): Python's underscores, as vLLM's int()
def test_lengths_vllm_reads(value, tokens):
    assert _passes("--max-model-len", value)["context"] == tokens


@pytest.mark.parametrize("args", [("--max-model-len", "1.5K"), ("--max-model-len", "32KB"), ("--max-model-len", "0"),
                                  ("--max-model-len=-5",), ("--max-num-seqs", "0"), ("--max-num-seqs", "1k"),
                                  ("--gpu-memory-utilization", "1.2"), ("--gpu-memory-utilization", "0"),
                                  ("-pp", "0"), ("--block-size", "0"), ("--dtype", "bf16"),
                                  ("--kv-cache-dtype", "int8"), ("--swap-space", "4")])
def test_values_vllm_refuses_stop_the_gate(args):
    one_error_line(run_kvplan(*GATE, "-c", "8192", *args))  # one sentence, exit 2, no traceback


@pytest.mark.parametrize("tp", ["0", "-1"])
def test_no_parallel_degree_below_one(tp):
    one_error_line(run_kvplan("check", LLAMA, "-tp", tp, "-c", "8192"))


def test_a_whole_gpu_passes():
    assert _passes("-c", "8192", "--gpu-memory-utilization", "1.0")["context"] == 8192


# ---- --block-size by release ------------------------------------------------------------------------------------

def test_block_sizes_by_release():
    assert _passes("-c", "8192", "--block-size", "32")["context"] == 8192  # 0.32.0: a multiple of 16
    line = one_error_line(run_kvplan(*GATE, "-c", "8192", "--block-size", "48", "--engine", "vllm==0.11.1"))
    assert line == "kvplan: error: --block-size 48 is not a choice of vLLM 0.11.1; it takes 1, 8, 16, 32, 64, 128, 256."
    assert run_kvplan(*GATE, "-c", "8192", "--block-size", "24").returncode == 1  # parsed, then no backend takes it


# ---- later spellings of a flag, by release (kvplan refused them before) -------------------------------------------

def test_disable_prefix_caching_from_0_33():
    assert _passes("-c", "8192", "--disable-prefix-caching", "--engine", "vllm==0.33.0")["context"] == 8192
    line = one_error_line(run_kvplan(*GATE, "-c", "8192", "--disable-prefix-caching"))  # the default, 0.32.0
    assert line == ("kvplan: error: --disable-prefix-caching needs vLLM 0.33 or later (vllm==0.32.0 stops on that "
                    "spelling: \"unrecognized arguments\"); write --no-enable-prefix-caching, as that release does.")


def test_device_memory_utilization_from_0_31():
    assert _passes("-c", "8192", "--device-memory-utilization", "0.9")["context"] == 8192
    line = one_error_line(run_kvplan(*GATE, "-c", "8192", "--device-memory-utilization", "0.9", "--engine",
                                     "vllm==0.30.0"))
    assert "--device-memory-utilization needs vLLM 0.31 or later (vllm==0.30.0" in line
    line = one_error_line(run_kvplan(*GATE, "-c", "8192", "--device-memory-utilization=1.5"))
    assert line.startswith("kvplan: error: --device-memory-utilization must be a fraction in (0, 1]")


def test_estimate_reads_the_alias_as_the_flag():
    run = run_kvplan("estimate", LLAMA, "-c", "8192", "--device-memory-utilization", "0.5", "-f", "json")
    (plan,) = json.loads(run.stdout)["plans"]
    assert plan["budget"]["gpu_util"] == 0.5


@pytest.mark.parametrize("typed, on", [
    (["--enable-prefix-caching", "--no-enable-prefix-caching"], False),
    (["--no-enable-prefix-caching", "--enable-prefix-caching"], True),
    (["--enable-prefix-caching", "--disable-prefix-caching"], False),
    (["--disable-prefix-caching", "--enable-prefix-caching"], True),
])
def test_the_last_prefix_switch_wins(typed, on):
    # the arguments click is given (flags.last_switches; tests/test_bool_flags_s77.py has every boolean flag)
    switches = flags.switch_spellings({"--enable-prefix-caching"})
    assert flags.last_switches(["check", LLAMA, *typed], switches) == \
        ["check", LLAMA, "--enable-prefix-caching" if on else "--no-enable-prefix-caching"]
