"""Session 54 review fixes, each through every surface that takes the input (the command line, a deployments file,
the Python API):

1. A whole number without a unit is bytes however it is written and whoever reads it: `85899345920.0` (80 GiB =
   80 x 2^30 = 85,899,345,920) and `40.0` (40 bytes, under the 1 MiB floor) read as the float does.
2. The exponent form the module doc promised (`80e9` = 80 x 10^9 bytes) as text: a flag, and a YAML value, which
   PyYAML reads as a string (YAML 1.1 floats need a dot) while `8.0e+10` is a YAML float.
3. check's text-only remedy (vLLM's --language-model-only) is planned as every other remedy: with max_num_seqs
   raised where the cap, not memory, stops it (plan.reaching).
4. One wording for a list of remedies: shared changes said once ("each with ..."), else options apart by "; or".
5. check's --help does not offer --max-model-len auto, which check refuses by name; estimate labels a pipeline
   error "bad PP", not "bad TP".

Hand figures (bundled configs):
- Llama-3.1-8B: 32 layers, 32 query heads, 8 KV heads of 128, bfloat16.
- Qwen2.5-VL-7B-Instruct's text model: 28 layers, 4 KV heads of 128 (3584 / 28), bfloat16: one token's K and V
  take 28 x 4 x 128 x 2 x 2 = 57,344 B, a block of 16 tokens 917,504 B; 976 tokens are 61 blocks (55,967,744 B).
- vLLM 0.32.0 engine/arg_utils.py:2936-2942 get_batch_defaults: an H100 (70 GiB or more, not an A100) runs the
  OpenAI server at max_num_seqs 1024; v1/core/sched/scheduler.py:129 max_num_running_reqs = max_num_seqs (the cap).
- vLLM 0.32.0 v1/core/kv_cache_utils.py: one block (the null block) is held back before the count.
"""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import deployments_file, one_error_line, run_kvplan

import kvplan
from kvplan.errors import FieldError

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
QWEN_VL = "Qwen/Qwen2.5-VL-7B-Instruct"
GiB = 2**30
QWEN_BLOCK = 16 * 28 * 4 * 128 * 2 * 2  # tokens x layers x KV heads x head dim x (K, V) x bf16 bytes
H100_MAX_NUM_SEQS = 1024


def _estimate_memory(value) -> int:
    run = run_kvplan("estimate", LLAMA_8B, "--gpu-memory", value, "--format", "json")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)["plans"][0]["budget"]["gpu_memory_bytes"]


def _yaml_quoted(text: str) -> str:
    """How an error quotes `text` read from YAML: a float as a number (40.0), a string in quotes ('4e1')."""
    return repr(yaml.safe_load(f"a: {text}")["a"])


def _file_memory(tmp_path, value: str):
    """gpu_memory as a deployments file reads it: its bytes, or the one error line."""
    path = deployments_file(tmp_path, f"  - name: a\n    model: {LLAMA_8B}\n    tp: 1\n    gpu_memory: {value}\n")
    run = run_kvplan("check", "--file", path, "--format", "json")
    if run.returncode == 2:
        return one_error_line(run)
    return json.loads(run.stdout)["results"][0]["gpu_memory"]


# 1-2. a whole number without a unit --------------------------------------------------------------------------

@pytest.mark.parametrize("text, as_float, expected", [
    ("85899345920.0", 85899345920.0, 80 * GiB),
    ("80e9", 80e9, 80 * 10**9),
    ("8.0e+10", 8.0e+10, 80 * 10**9),
    ("800e8", 800e8, 80 * 10**9),
])
def test_a_whole_number_is_bytes_on_every_surface(tmp_path, text, as_float, expected):
    assert _estimate_memory(text) == expected
    assert _file_memory(tmp_path, text) == expected
    for value in (text, as_float):
        (plan,) = kvplan.estimate(LLAMA_8B, gpu_memory=value)
        (row,) = kvplan.check(LLAMA_8B, tensor_parallel_size=1, gpu_memory=value)
        assert plan.budget.gpu_memory_bytes == row["gpu_memory"] == expected


def test_yaml_reads_the_exponent_forms_as_the_surfaces_assume():
    """Why the text form matters: PyYAML (YAML 1.1) takes 80e9 as a string, 8.0e+10 as a float."""
    assert yaml.safe_load("a: 80e9")["a"] == "80e9"
    assert yaml.safe_load("a: 8.0e+10")["a"] == 80 * 10**9 and isinstance(yaml.safe_load("a: 8.0e+10")["a"], float)


@pytest.mark.parametrize("text", ["40.0", "4e1"])
def test_a_whole_decimal_under_a_mib_gets_the_floor_message_everywhere(tmp_path, text):
    words = (f"'{text}' is 40 bytes (a number without a unit is bytes), less than any GPU has; write the unit, "
             f"e.g. 40GiB.")
    assert one_error_line(run_kvplan("estimate", LLAMA_8B, "--gpu-memory", text)) == \
        f"kvplan: error: --gpu-memory {words}"
    assert _file_memory(tmp_path, text).endswith(f"field 'gpu_memory' {words}".replace(f"'{text}'",
                                                                                        _yaml_quoted(text)))
    with pytest.raises(FieldError) as error:
        kvplan.estimate(LLAMA_8B, gpu_memory=text)
    assert str(error.value) == f"gpu_memory {words}"
    with pytest.raises(FieldError, match="is 40 bytes"):  # the float reads the same
        kvplan.check(LLAMA_8B, tensor_parallel_size=1, gpu_memory=40.0)


@pytest.mark.parametrize("text, words", [
    ("79.5", "'79.5' is not a whole number of bytes (a number without a unit is bytes); write the unit, e.g. "
             "79.5GiB."),
    ("7.95e1", "'7.95e1' is not a whole number of bytes (a number without a unit is bytes); write the unit, e.g. "
               "80GiB."),
    ("1e400", "must be at most 1 EiB (2**60 bytes), got '1e400'."),
    ("0.0", "must be a positive size, got '0.0'."),
    ("80e9GiB", "'80e9GiB' is not a size; write bytes, a vLLM-style number (10G = 10 GiB, 10g = 10^10) or a byte "
                "unit (10GiB, 80GB, 512MiB)."),
])
def test_what_is_still_refused_is_refused_alike(tmp_path, text, words):
    assert one_error_line(run_kvplan("estimate", LLAMA_8B, "--gpu-memory", text)) == \
        f"kvplan: error: --gpu-memory {words}"
    assert _file_memory(tmp_path, text).endswith(f"field 'gpu_memory' {words}".replace(f"'{text}'",
                                                                                        _yaml_quoted(text)))


def test_kv_cache_memory_bytes_takes_the_exponent_form_too():
    run = run_kvplan("estimate", LLAMA_8B, "--kv-cache-memory-bytes", "1e10", "--format", "json")
    assert json.loads(run.stdout)["plans"][0]["kv_budget_bytes_per_gpu"] == 10**10


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_a_float_that_is_no_number_is_not_a_size(value):
    with pytest.raises(FieldError, match="must be a size"):
        kvplan.estimate(LLAMA_8B, gpu_memory=value)


# 3. the text-only remedy, with the cap raised ---------------------------------------------------------------

def _errors(*args) -> list:
    run = run_kvplan("check", QWEN_VL, "--tp", "1", "--gpu", "H100", *args, "--format", "json")
    assert run.returncode in (0, 1), run.stderr
    return json.loads(run.stdout)["results"][0]


def test_text_only_is_offered_with_the_cap_raised_where_memory_does_not_stop_it():
    """976 tokens, 1030 sequences: with its vision tower an H100 keeps 1022 (memory); without it the cache holds
    more than 1030 but vLLM runs 1024 at once, so the remedy is --language-model-only with --max-num-seqs 1030.
    By hand at vLLM's 0.705 GiB graph term (585,189,295 B more than at 1.25 GiB): the KV budget 57,240,006,903 B //
    917,504 = 62,386 blocks, 62,385 usable // 61 = 1,022 sequences. At the raised cap the budget is 57,236,021,703 B
    (the cap's buffers grow): 62,382 blocks, 62,381 // 1,030 = 60 blocks a sequence, --max-model-len 960."""
    row = _errors("-c", "976", "--min-concurrency", "1030")
    assert row["kv_bytes_per_sequence_per_gpu"] == 61 * QWEN_BLOCK == 55_967_744
    assert (row["max_concurrency"], row["max_concurrency_limited_by"]) == (1022, "memory")
    assert row["kv_budget_bytes_per_gpu"] // QWEN_BLOCK - 1 == 62_385  # 62,385 blocks / 61 = 1,022 sequences
    (error,) = row["errors"]
    assert error.endswith("would fit with --tensor-parallel-size 2, --kv-cache-dtype fp8, --max-model-len 960 or "
                          "--language-model-only (text only: no vision tower), each with --max-num-seqs 1030.")

    at_default_cap = _errors("-c", "976", "--min-concurrency", "1030", "--language-model-only")
    assert (at_default_cap["max_concurrency"], at_default_cap["max_concurrency_limited_by"]) == \
        (H100_MAX_NUM_SEQS, "max_num_seqs")
    followed = _errors("-c", "976", "--min-concurrency", "1030", "--language-model-only", "--max-num-seqs", "1030")
    blocks = followed["kv_budget_bytes_per_gpu"] // QWEN_BLOCK - 1
    assert blocks // 61 >= 1030  # the text-only cache at the raised cap, by hand: 65,266 blocks, 1,069 sequences
    assert followed["passed"] and (followed["max_concurrency"], followed["max_concurrency_limited_by"]) == \
        (1030, "max_num_seqs")


def test_past_the_cap_the_text_only_remedy_reads_as_the_others():
    """960 tokens (60 blocks), 1040 sequences: the cap (1024) stops it, and at 1040 the cache holds 1039; each remedy
    needs the cap raised. At the cap of 1040 the budget is 57,229,379,703 B: 62,375 blocks, 62,374 // 60 = 1,039
    sequences, and 62,374 // 1,040 = 59 blocks a sequence, --max-model-len 944. (Until session 67, with vLLM's graph
    term at 1.25 GiB, 1030 sequences showed it: 1029 held at that cap; now 1,039 are.)"""
    (error,) = _errors("-c", "960", "--min-concurrency", "1040")["errors"]
    assert "and at --max-num-seqs 1040 its KV cache holds 1039; would fit with --tensor-parallel-size 2, " \
           "--kv-cache-dtype fp8, --max-model-len 944 or --language-model-only (text only: no vision tower), each " \
           "with --max-num-seqs 1040." in error


def test_a_text_only_deployment_is_not_offered_text_only():
    (error,) = _errors("-c", "976", "--min-concurrency", "1100", "--language-model-only")["errors"]
    assert "language-model-only (text only" not in error


# 4. one wording ------------------------------------------------------------------------------------------------

def _words(options: list) -> str:
    from kvplan.plan.remedy_words import options_in_words

    return options_in_words(options, str)


def test_shared_changes_are_said_once():
    cap = (("max_num_seqs", 1500),)
    assert _words([(("tp", 2),) + cap, (("kv_dtype", "fp8"),) + cap, (("context", 288),) + cap]) == \
        "tp 2, kv_dtype fp8 or context 288, each with max_num_seqs 1500"
    both = cap + (("max_num_batched_tokens", 1500),)
    assert _words([(("tp", 2),) + both, (("context", 32),) + both]) == \
        "tp 2 or context 32, each with max_num_seqs 1500 and max_num_batched_tokens 1500"


def test_options_that_differ_are_apart_by_or():
    assert _words([(("tp", 2),), (("kv_dtype", "fp8"), ("max_num_seqs", 1500))]) == \
        "tp 2; or kv_dtype fp8 and max_num_seqs 1500"
    assert _words([(("tp", 2),), (("kv_dtype", "fp8"),)]) == "tp 2 or kv_dtype fp8"
    assert _words([(("context", 32), ("max_num_seqs", 10000))]) == "context 32 and max_num_seqs 10000"


def test_nothing_reaches_it_even_with_the_cap():
    """Llama-3.1-8B, 100,000 sequences of 512 tokens: one KV head a GPU at tp 8 still takes 512 x 32 x 128 x 2 x 2
    = 8 MiB a sequence, 781 GiB in all; the cap first stops it at 1024."""
    run = run_kvplan("check", LLAMA_8B, "--tp", "1", "--gpu", "H100", "-c", "512", "--max-num-seqs", "16",
                     "--min-concurrency", "100000", "--format", "json")
    (error,) = json.loads(run.stdout)["results"][0]["errors"]
    # (tp stops at one node, 8 H100s; at tp 8 x pp 8 with fp8 a GPU keeps 4 layers: 512 x 4 x 128 x 2 x 1 = 512 KiB a
    # sequence, 48.8 GiB in all, but the buffers of 100,000 running requests leave no KV budget: test_remedies_node.py)
    assert error.endswith("no --tensor-parallel-size up to 8 (one H100-80GB-SXM node), --kv-cache-dtype fp8, "
                          "--tensor-parallel-size x --pipeline-parallel-size up to 64 GPUs or shorter --max-model-len "
                          "reaches it on this budget, even with --max-num-seqs 100000 and --max-num-batched-tokens "
                          "100000.")


# 5. check's max model length, estimate's refused row ----------------------------------------------------------

def test_check_help_offers_auto_as_estimate_does():
    """Session 77 (tests/test_check_auto_s77.py): check takes --max-model-len auto and checks the fitted length."""
    check_help, estimate_help = (" ".join(run_kvplan(command, "--help").stdout.replace("│", " ").split())
                                 for command in ("check", "estimate"))
    assert "auto (or -1, vLLM 0.14+)" in check_help and "--min-model-len" in check_help
    assert "auto (or -1)" in estimate_help


@pytest.mark.parametrize("flag, value", [("-c", "auto"), ("--max-model-len", "-1"), ("--context", "AUTO")])
def test_check_takes_auto_by_name(flag, value):
    """Every spelling of vLLM's auto-fit is the same deployment (human_readable_int_or_auto lower-cases it)."""
    run = run_kvplan("check", LLAMA_8B, "-tp", "1", flag, value, "--format", "json")
    (row,) = json.loads(run.stdout)["results"]
    assert row["auto_fit"]["from"] == 131072


@pytest.mark.parametrize("args, label", [(("-pp", "40"), "bad PP"), (("-tp", "3"), "bad TP"),
                                         (("-tp", "3", "-pp", "40"), "bad TP, PP")])
def test_a_refused_row_names_what_is_bad(args, label):
    """Llama-3.1-8B: 40 stages for 32 layers is the pipeline's error; tp 3 does not divide 32 query heads."""
    run = run_kvplan("estimate", LLAMA_8B, *args)
    (row,) = [line for line in run.stdout.splitlines() if line.startswith("131,072")]
    assert label in row and ("bad TP, PP" in row) == (label == "bad TP, PP")


def test_the_json_keeps_its_keys():
    (plan,) = kvplan.estimate(LLAMA_8B, pipeline_parallel_size=40)
    assert plan.pp_errors == plan.tp_errors and "pp_errors" not in plan.to_dict()
