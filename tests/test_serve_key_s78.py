"""A deployments file's `serve:` key (session 78): the `vllm serve` command a deployment runs, as a string or a list
of arguments, read as `kvplan check MODEL --flags...` reads the same flags (cli/serve_command.py runs check's own
click parsing), so the check's JSON and its refusals are the command line's."""

from __future__ import annotations

import json

import pytest

from conftest import deployments_file, one_error_line, run_kvplan

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
FLAGS = ["--tensor-parallel-size", "2", "--max-model-len", "32768", "--kv-cache-dtype", "fp8"]
BESIDE = "    gpu: H100\n    min_concurrency: 4\n"  # kvplan's own keys, beside the command


def _result(path) -> dict:
    run = run_kvplan("check", "--file", path, "-f", "json")
    assert run.returncode == 0, run.stderr
    (result,) = json.loads(run.stdout)["results"]
    return result


def _without_place(result: dict) -> dict:
    return {key: value for key, value in result.items() if key not in ("file", "line")}


@pytest.mark.parametrize("serve", [
    f"    serve: vllm serve {LLAMA} {' '.join(FLAGS)}\n",
    f"    serve: python3 -m vllm.entrypoints.openai.api_server --model {LLAMA} {' '.join(FLAGS)}\n",
    "    serve: |\n"  # a script's lines, continued with backslashes
    f"      vllm serve {LLAMA} \\\n        --tensor-parallel-size 2 \\\n"
    "        --max-model-len 32768 --kv-cache-dtype fp8\n",
    "    serve: [" + ", ".join(json.dumps(arg) for arg in [LLAMA, *FLAGS]) + "]\n",  # a container's args
    "    serve:\n" + "".join(f"      - \"{arg}\"\n" for arg in ["--model", LLAMA, *FLAGS]),
    f"    serve: vllm serve {LLAMA} --tensor_parallel_size=2 --max_model_len 32K --kv-cache-dtype=fp8\n",
])
def test_serve_gives_the_keys_and_the_command_lines_json(tmp_path, serve):
    (tmp_path / "k").mkdir()
    (tmp_path / "s").mkdir()
    keyed = deployments_file(tmp_path / "k", f"  - name: tp2\n    model: {LLAMA}\n    tp: 2\n    context: 32768\n"
                                             f"    kv_dtype: fp8\n" + BESIDE)
    served = deployments_file(tmp_path / "s", "  - name: tp2\n" + serve + BESIDE)
    by_keys, by_serve = _result(keyed), _result(served)
    line = run_kvplan("check", LLAMA, *FLAGS, "--gpu", "H100", "--min-concurrency", "4", "-f", "json")
    assert line.returncode == 0, line.stderr
    (by_line,) = json.loads(line.stdout)["results"]  # named tp2, as the entries
    assert _without_place(by_serve) == _without_place(by_keys) == _without_place(by_line)
    # Llama-3.1-8B: 32 layers x 8 KV heads x head_dim 128; fp8 is 1 byte, K and V: 2 x 8 x 128 x 1 x 32 = 65,536
    # bytes a token over the group, 8 / 2 = 4 heads a GPU at tp 2: 32,768 a token, x 32,768 tokens = 2^30 a sequence
    assert (by_serve["tp"], by_serve["context"], by_serve["kv_dtype"]) == (2, 32768, "fp8_e4m3")
    assert by_serve["kv_bytes_per_token"] == 2 * 8 * 128 * 1 * 32
    assert by_serve["kv_bytes_per_token_per_gpu"] == 2 * 4 * 128 * 1 * 32
    assert by_serve["kv_bytes_per_sequence_per_gpu"] == 2 * 4 * 128 * 32 * 32768 == 2**30
    assert by_serve["line"] == by_keys["line"] == 2


def test_serve_without_tp_is_vllms_default_of_one(tmp_path):
    path = deployments_file(tmp_path, f"  - name: one\n    serve: vllm serve {LLAMA} --max-model-len 8192\n")
    assert _result(path)["tp"] == 1  # vLLM's -tp default (config/parallel.py: tensor_parallel_size = 1)


def _refusal(tmp_path, entry: str) -> str:
    path = deployments_file(tmp_path, "  - name: a\n" + entry)
    return one_error_line(run_kvplan("check", "--file", path))


def _where(tmp_path) -> str:
    return f"kvplan: error: {tmp_path / 'deployments.yaml'}:3: deployment 'a' field 'serve': "


@pytest.mark.parametrize("flags", [
    ["--tensor-paralel-size", "3"],  # a flag vLLM lacks, its near flags vLLM's (kvplan's own are not offered in a
    # command: test_gate_s81.test_a_serve_commands_unknown_flag_is_offered_only_vllms_near_flags)
    ["--max_model_len", "32x"],  # a value the flag refuses, named as typed
    ["--kv-cache-dtype", "auto,fp8"],  # one dtype in check
    ["--max-num"],  # a beginning of two flags
    ["--dp", "0"],
    ["--hf-overrides", "{}"],  # vLLM's, changes the plan unmodelled: the command line's sentence (one that changes
    # nothing is skipped: test_serve_skips_the_flags_that_change_nothing)
])
def test_a_bad_flag_is_refused_as_the_command_line_refuses_it(tmp_path, flags):
    said = _refusal(tmp_path, f"    serve: vllm serve {LLAMA} -tp 2 {' '.join(flags)}\n")
    line = one_error_line(run_kvplan("check", LLAMA, "-tp", "2", *flags))
    assert said == _where(tmp_path) + line.removeprefix("kvplan: error: ")


def test_a_later_spelling_is_refused_for_the_entrys_engine(tmp_path):
    said = _refusal(tmp_path, f"    serve: vllm serve {LLAMA} --no-enable-prefix-caching\n    engine: vllm==0.5.0\n")
    line = one_error_line(run_kvplan("check", LLAMA, "-tp", "1", "--no-enable-prefix-caching", "--engine",
                                     "vllm==0.5.0"))
    assert said == _where(tmp_path) + line.removeprefix("kvplan: error: ")


@pytest.mark.parametrize("entry, words", [
    (f"    serve: vllm serve {LLAMA} --max-model-len 32K\n    context: 8192\n",
     "gives --max-model-len and the entry gives key 'context' at line 4; give it once, in one place."),
    (f"    serve: vllm serve {LLAMA} -tp 2\n    tp: 2\n",
     "gives -tp and the entry gives key 'tp' at line 4; give it once, in one place."),
    (f"    serve: vllm serve {LLAMA}\n    model: {LLAMA}\n",
     "gives its MODEL argument and the entry gives key 'model' at line 4; give it once, in one place."),
    (f"    serve: [--model, {LLAMA}]\n    model: {LLAMA}\n",
     "gives --model and the entry gives key 'model' at line 4; give it once, in one place."),
    (f"    serve: vllm serve {LLAMA} --model {LLAMA}\n",
     f"gives the model twice ('{LLAMA}', '{LLAMA}'); a deployment serves one model."),
    ("    serve: vllm serve -tp 2\n",
     "names no model and the entry has no 'model' key; give the model as `vllm serve` takes it (vllm serve MODEL, "
     "or --model MODEL)."),
    (f"    serve: 'vllm serve {LLAMA} --max-model-len \"32768'\n",
     "cannot be split as a shell splits it (no closing quotation); balance its quotes."),
    (f"    serve: vllm bench {LLAMA}\n",
     "runs `vllm bench`; give the `vllm serve` command (or python -m vllm.entrypoints.openai.api_server)."),
    (f"    serve: [{LLAMA}, -tp, 2]\n",
     "holds 2, which is not text; give the command as a string or a list of strings, each argument quoted where "
     "YAML would read a number (as a Kubernetes container's args)."),
    (f"    serve: vllm serve {LLAMA} -tp 2,4\n", "gives -tp 2,4; a deployment runs at one TP degree."),
    (f"    serve: vllm serve {LLAMA} --file other.yaml\n",
     "holds --file, a flag of kvplan check's run, not of a deployment; drop it."),
    (f"    serve: vllm serve {LLAMA} -h\n", "asks for help (-h); give the command the deployment runs."),
])
def test_a_bad_command_is_one_sentence_naming_the_entry(tmp_path, entry, words):
    assert _refusal(tmp_path, entry) == _where(tmp_path) + words


def test_an_entry_without_serve_still_needs_model_and_tp(tmp_path):
    said = _refusal(tmp_path, "    gpu: H100\n")
    assert "is missing 'model'" in said


def test_serve_skips_the_flags_that_change_nothing(tmp_path):
    """A deployed command's server flags (--host, --port, --served-model-name, --trust-remote-code, a --no- form,
    --seed=0, --tokenizer-mode, which the command line refuses as changing nothing) are skipped with their values:
    the entry's JSON is the bare command's."""
    (tmp_path / "b").mkdir()
    (tmp_path / "d").mkdir()
    bare = deployments_file(tmp_path / "b", f"  - name: tp2\n    serve: vllm serve {LLAMA} {' '.join(FLAGS)}\n"
                                            + BESIDE)
    deployed = deployments_file(tmp_path / "d", f"  - name: tp2\n    serve: vllm serve {LLAMA} --host 0.0.0.0 --port "
                                                f"8000 --served-model-name llama --trust-remote-code "
                                                f"{' '.join(FLAGS)} --no-enable-log-requests --seed=0 "
                                                f"--tokenizer-mode auto\n" + BESIDE)
    assert _without_place(_result(deployed)) == _without_place(_result(bare))


def test_serve_still_refuses_a_flag_that_changes_the_plan_unmodelled(tmp_path):
    path = deployments_file(tmp_path, f"  - name: tp2\n    serve: vllm serve {LLAMA} --port 8000 "
                                      f"--kv-transfer-config '{{}}'\n" + BESIDE)
    line = one_error_line(run_kvplan("check", "--file", path))
    assert "--kv-transfer-config changes the KV cache" in line and "does not model it" in line
