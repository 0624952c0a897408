"""Defects found by session 69's fuzz round (benchmarks/fuzz_surfaces.py: estimate's engine flags in odd
combinations, check --file, models / gpus, local config.json paths, verify without a GPU), each reproduced here.
Bad input is one line on stderr naming the flag or field and what is valid, exit 2, nothing on stdout.

E1  a value the user gave was quoted after it was stripped: `--kv-cache-dtype ' '` said "--kv-cache-dtype ''",
    as did `-tp ' '`, `-c '8K, '` (a comma list's items) and the API's kv_cache_dtype=' '.
E2  every error line had its runs of spaces collapsed (meant for line breaks): `--kv-cache-dtype '   '` was said
    as ' ', `--gpu 'H100  X'` as 'H100 X'.
E3  --engine none's budget said "H100-80GB-SXM memory as the CUDA runtime reports it x gpu_util" (a variable's
    name) and "fixed 1.75 GiB at tp > 1"; with --gpu-memory it still said "as the CUDA runtime reports it".
E4  `kvplan check --file a.yaml --file b.yaml` checked b.yaml alone (click keeps an option's last value): a failing
    deployment in a.yaml passed the gate, exit 0.
E5  `--gpu 'NVIDIA H100'` (the maker's name before the model's, as 'NVIDIA L4' is taken) was refused with "did you
    mean H200?", and 'h100-sxm5-80gb' hinted "did you mean A100-80GB?".
E6  verify's refusal of a length the model does not reach wrote it "-c 1,048,576", the flag's own list syntax (a
    sweep of 1, 48 and 576); its remedy in the same line wrote "-c 131072".
E7  verify's rotary checks wrote a config.json value in Python's spelling ("got True", "got nan", "got '8'"), where
    every other config error writes it as JSON does (true, NaN, "8").
E8  click's own usage errors said nothing of what is valid: "No such command 'help'.", "Missing argument 'model'.",
    "Option '--format' requires an argument.", "Invalid value for '-tp' / '--tensor-parallel-size' / '--tp': '1,2'
    is not a valid int."
"""

from __future__ import annotations

import json

import pytest
from conftest import environment, estimate_plan, one_error_line, run_kvplan

import kvplan
from kvplan.errors import FieldError

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
GiB = 2**30
# Llama-3.1-8B's config.json (as tests/test_fuzz_s59.py has it)
LLAMA_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
                "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
                "tie_word_embeddings": False, "torch_dtype": "bfloat16"}


# ---- E1, E2: a value is quoted as the user gave it -----------------------------------------------------------------

@pytest.mark.parametrize("args, said", [
    (("--kv-cache-dtype", " "), "--kv-cache-dtype ' ' is not a KV-cache dtype vLLM takes; use one of auto, fp8,"),
    (("--kv-cache-dtype", "auto, "), "--kv-cache-dtype ' ' is not a KV-cache dtype vLLM takes; use one of auto,"),
    (("--kv-cache-dtype", "   "), "--kv-cache-dtype '   ' is not a KV-cache dtype vLLM takes; use one of auto,"),
    (("-tp", " "), "-tp takes positive whole numbers separated by commas (e.g. 1,2,4,8), got ' '."),
    (("-c", "8K, "), "-c must be a whole number, optionally with a suffix"),
    (("--gpu", "H100  X"), "--gpu 'H100  X' is not in the GPU catalog"),
])
def test_a_refused_value_is_quoted_as_given(args, said):
    line = one_error_line(run_kvplan("estimate", LLAMA, *args))
    assert line.startswith("kvplan: error: " + said)
    if args[0] == "-c":
        assert line.endswith("e.g. 8192,32K; got ' '.")


def test_the_api_quotes_the_dtype_as_given():
    with environment({"HF_HUB_OFFLINE": "1"}), pytest.raises(FieldError) as caught:
        kvplan.estimate(LLAMA, kv_cache_dtype=" ")
    assert str(caught.value).startswith("kv_cache_dtype ' ' is not a KV-cache dtype vLLM takes")


def test_spaces_around_valid_values_still_read():
    """Numbers are read past spaces, as vLLM's int() and human_readable_int read them; a choice is not (session 78:
    argparse compares it as typed, model/choices.py refuse_spaces), so the dtypes are given without."""
    r = run_kvplan("estimate", LLAMA, "--kv-cache-dtype", "auto,fp8", "-c", " 8K", "-tp", " 1", "-f", "json")
    assert r.returncode == 0, r.stderr
    plans = json.loads(r.stdout)["plans"]
    assert [(p["kv_dtype"], p["context"], p["tp"]) for p in plans] == [("bf16", 8192, 1), ("fp8_e4m3", 8192, 1)]


def test_a_line_break_in_a_message_is_still_one_space():
    line = one_error_line(run_kvplan("estimate", "a\nb"))
    assert line == "kvplan: error: MODEL 'a\\nb' is not a Hugging Face id (owner/name) nor an existing path."


# ---- E3: the generic budget's terms in words ---------------------------------------------------------------------

def _sources(plan: dict) -> dict:
    return {term["name"]: (term["bytes"], term["source"]) for term in plan["budget"]["terms"]}


def test_the_generic_budget_says_its_terms_in_words():
    terms = _sources(estimate_plan(LLAMA, "--engine", "none", "-c", "8K", "-tp", "2", "--gpu", "H100"))
    # 85,017,493,504 B (the catalog's measured H100 total) x 0.9, kvplan's generic default: 76,515,744,153.6
    assert terms["memory"] == (76_515_744_153, "H100-80GB-SXM memory as the CUDA runtime reports it, times the GPU "
                                               "memory utilization 0.9")
    assert terms["nccl"] == (int(1.75 * GiB), "fixed 1.75 GiB where tensor parallelism spans GPUs (NCCL, custom "
                                              "all-reduce)")
    assert not any("gpu_util" in source or "tp >" in source for _, source in terms.values())


def test_a_given_gpu_memory_is_said_to_be_given():
    plan = estimate_plan(LLAMA, "--engine", "none", "-c", "8K", "--gpu-memory", "24GiB", "--gpu-util", "0.5")
    assert _sources(plan)["memory"] == (12 * GiB, "the GPU memory given (--gpu-memory), times the GPU memory "
                                                  "utilization 0.5")
    with environment({"HF_HUB_OFFLINE": "1"}):
        (through_api,) = kvplan.estimate(LLAMA, engine="none", max_model_len=8192, gpu_memory="24GiB",
                                         gpu_memory_utilization=0.5)
    memory = through_api.to_dict(kvplan.api.keyword)["budget"]["terms"][0]
    assert memory == {"name": "memory", "bytes": 12 * GiB,
                      "source": "the GPU memory given (gpu_memory), times the GPU memory utilization 0.5"}


# ---- E4: every --file is checked ---------------------------------------------------------------------------------

def _deployments(tmp_path, name: str, tp: int):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"deployments:\n  - name: {name}\n    model: {LLAMA}\n    tp: {tp}\n    context: 8192\n")
    return path


def test_a_repeated_file_flag_checks_every_file(tmp_path):
    failing, passing = _deployments(tmp_path, "failing", 3), _deployments(tmp_path, "passing", 1)  # 32 heads: tp 3
    assert run_kvplan("check", "--file", passing).returncode == 0
    assert run_kvplan("check", "--file", failing).returncode == 1
    for order in ((failing, passing), (passing, failing)):
        r = run_kvplan("check", "--file", order[0], "--file", order[1], "-f", "json")
        assert r.returncode == 1, r.stderr
        assert {result["name"] for result in json.loads(r.stdout)["results"]} == {"failing", "passing"}


# ---- E5: an nvidia-smi-like GPU name --------------------------------------------------------------------------

def test_the_maker_s_name_before_the_model_s_is_read_past():
    as_h100 = estimate_plan(LLAMA, "-c", "8K", "--gpu", "H100")
    for spelled in ("NVIDIA H100", "nvidia  h100", "AMD Instinct MI300X"):
        plan = estimate_plan(LLAMA, "-c", "8K", "--gpu", spelled)
        assert plan["budget"]["gpu_name"] == ("MI300X" if "MI300X" in spelled else "H100-80GB-SXM")
    assert estimate_plan(LLAMA, "-c", "8K", "--gpu", "NVIDIA H100") == as_h100
    line = one_error_line(run_kvplan("estimate", LLAMA, "--gpu", "NVIDIA A100"))
    assert line == ("kvplan: error: --gpu 'NVIDIA A100' could mean A100-40GB or A100-80GB or A100-80GB-PCIe; name "
                    "one of them (see `kvplan gpus`).")


# (h100-sxm5-80gb, this test's first case until session 71, now names the H100 SXM itself: test_gpu_spellings_s71)
@pytest.mark.parametrize("name, hint", [("h100-sxm5-96gb", "H100-80GB-SXM"), ("h 100", "H100-80GB-SXM"),
                                        ("rtx 4080", "RTX-4090")])
def test_the_hint_names_the_model_given(name, hint):
    line = one_error_line(run_kvplan("estimate", LLAMA, "--gpu", name))
    assert line.startswith(f"kvplan: error: --gpu '{name}' is not in the GPU catalog (did you mean {hint}?); use ")


# ---- E6, E7: verify's checks before torch ----------------------------------------------------------------------

def test_verify_writes_a_refused_length_as_the_flag_takes_it():
    line = one_error_line(run_kvplan("verify", LLAMA, "-c", "1M"))
    # max_position_embeddings 131,072 with Llama 3's RoPE scaling (its config): vLLM refuses 1,048,576
    assert line.startswith("kvplan: error: -c 1048576: vLLM 0.32.0 refuses it on any GPU (\"User-specified "
                           "max_model_len (1048576) is greater than the derived max_model_len")
    assert "-c 131072 or less" in line and "1,048,576" not in line


@pytest.mark.parametrize("value, written", [(True, "true"), ("8", '"8"'), (float("nan"), "NaN"), ([], "[]")])
def test_verify_writes_a_rotary_value_as_json_writes_it(tmp_path, value, written):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**LLAMA_CONFIG, "rope_theta": value}))  # NaN as Python's json writes it
    line = one_error_line(run_kvplan("verify", path, "-c", "4096"))
    assert line == f"kvplan: error: config field 'rope_theta' must be a positive number, got {written}."


# ---- E8: click's usage errors in the project's words -----------------------------------------------------------

@pytest.mark.parametrize("args, line", [
    (("help",), "kvplan has no command 'help'; the commands are estimate, models, gpus, check, verify (`kvplan -h`)."),
    (("estmate",), "kvplan has no command 'estmate'; did you mean estimate?"),
    (("estimate",), "kvplan estimate needs MODEL: Hugging Face id (bundled spec first, then the Hub), a local "
                    "config.json, or a model folder."),
    (("models", "--format"), "--format needs a value after it; `kvplan models -h` says what it takes."),
    (("verify", LLAMA, "-tp", "1,2"), "-tp takes a whole number, got '1,2'."),
    (("estimate", LLAMA, "--gpu-util", "x"), "--gpu-util takes a number, got 'x'."),
    (("estimate", LLAMA, "--max-num-seqs", "1e3"), "--max-num-seqs takes a whole number, got '1e3'."),
])
def test_usage_errors_say_what_is_valid(args, line):
    assert one_error_line(run_kvplan(*args)) == "kvplan: error: " + line


def test_a_long_value_is_still_cut():
    line = one_error_line(run_kvplan("estimate", LLAMA, "--max-num-seqs", "x" * 3000))
    assert line.startswith("kvplan: error: --max-num-seqs takes a whole number, got 'xxx") and len(line) < 160
