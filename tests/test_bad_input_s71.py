"""Defects found by session 71's bad-input round (benchmarks/fuzz_surfaces.py, then by hand: check --file shapes, local
config.json oddities, --max-model-len spellings, comma lists, --gpu with counts, --engine spellings, formats), each
reproduced here. Bad input is one line on stderr naming the flag or field and what is valid, exit 2, nothing on stdout.

D1  `kvplan check MODEL -tp 1 -c 8K,16K` said "-c must be a whole number, optionally with a suffix ... got
    '8K,16K'" (two whole numbers with suffixes), where check's --kv-cache-dtype auto,fp8 says it takes one; a file's
    `context: [8K, 32K]` likewise.
D2  `kvplan verify MODEL --kv-cache-dtype auto,fp8` called the list "not a KV-cache dtype vLLM takes", where verify's
    -c 8K,16K says it takes one length.
D3  `kvplan estimate MODEL -c 999999999` (past the model's own length, which vLLM refuses while it reads the config)
    failed with "--max-num-batched-tokens (vLLM's default here, 8,192) splits the prompts of this run into 122,071
    prefill chunks", naming only a flag the user never gave and not the length, which vLLM refuses anyway (check's
    bound on a deployment's max_num_batched_tokens likewise); the bound now says so (from session 80 the length leads:
    test_wording_s80.py).
D4  `--gpu 8xH100` (H100:8, 8 x H100: a cluster spec's count) was "not in the GPU catalog (did you mean
    H100-80GB-SXM?)", which drops the count without a word: dropping the 8x plans one GPU.
D5  a config.json saved with a UTF-8 byte-order mark said "is not valid JSON: Unexpected UTF-8 BOM (decode using
    utf-8-sig)", Python's advice to a programmer.
D6  MODEL given as the model's Hub page (https://huggingface.co/owner/name) "does not exist".
D7  a deployments file's `deployments: !!binary ...` was "got a bytes".
"""

from __future__ import annotations

import json

import pytest
from conftest import one_error_line, run_kvplan

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
# Llama-3.1-8B's config.json (as tests/test_fuzz_s69.py has it)
LLAMA_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
                "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
                "tie_word_embeddings": False, "torch_dtype": "bfloat16"}


def _deployments(tmp_path, entry: str) -> str:
    path = tmp_path / "deploy.yaml"
    path.write_text(f"deployments:\n  - name: a\n    model: {LLAMA}\n    tp: 1\n{entry}", encoding="utf-8")
    return str(path)


# ---- D1, D2: a list where the command takes one value -----------------------------------------------------------

def test_check_takes_one_length():
    line = one_error_line(run_kvplan("check", LLAMA, "-tp", "1", "-c", "8K,16K"))
    assert line == ("kvplan: error: -c takes one length in check, got '8K,16K': a deployment is checked at one max "
                    "model length, so check each length on its own (estimate sweeps them).")


@pytest.mark.parametrize("value, said", [("[8K, 32K]", "['8K', '32K']"), ("'8K,32K'", "'8K,32K'")])
def test_a_deployments_context_takes_one_length(tmp_path, value, said):
    line = one_error_line(run_kvplan("check", "--file", _deployments(tmp_path, f"    context: {value}\n")))
    assert line.endswith(f"deploy.yaml:5: deployment 'a' field 'context' takes one length in check, got {said}: a "
                         f"deployment is checked at one max model length, so check each length on its own "
                         f"(estimate sweeps them).")


def test_check_still_reads_one_length():
    r = run_kvplan("check", LLAMA, "-tp", "1", "-c", "32K", "-f", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["results"][0]["context"] == 32768  # 32K = 32 x 1,024 (vLLM's binary suffix)


def test_verify_takes_one_kv_dtype():
    # refused before the model is read and before torch, as verify's -c 8K,16K is: no GPU needed to say it
    line = one_error_line(run_kvplan("verify", LLAMA, "--kv-cache-dtype", "auto,fp8"))
    assert line == ("kvplan: error: --kv-cache-dtype takes one KV-cache dtype for verify (it allocates one plan), "
                    "got 'auto,fp8'.")


# ---- D3: a length vLLM refuses while it reads the config ------------------------------------------------------

# vLLM 0.32.0 config/model.py _get_and_verify_max_len refuses a max_model_len past max_position_embeddings (131,072
# for Llama-3.1-8B) unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, before any request: its words start so
REFUSED = "User-specified max_model_len ({}) is greater than the derived max_model_len"
PAST = ("kvplan: error: {} is past the model's own 131,072 tokens, which vLLM refuses unless "
        "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, and past what kvplan plans: --max-num-batched-tokens (vLLM's default here, "
        "8,192) splits the prompts of this run into {:,} prefill chunks, more than the 32,768 kvplan prices in one "
        "run; ask for 131,072 tokens or less.")
BOUND = ("kvplan: error: --max-num-batched-tokens (vLLM's default here, 8,192) splits the prompts of this run into "
         "{:,} prefill chunks, more than the 32,768 kvplan prices in one run; raise it, or ask for shorter max model "
         "lengths or fewer plans")


@pytest.mark.parametrize("args, chunks, said", [
    # 999,999,999 tokens less the one vLLM 0.32 keeps for an output token, in chunks of 8,192: 122,071
    (("-c", "999999999"), 122_071, "-c 999999999"),
    # 1T = 2**40 tokens: 2**27 = 134,217,728 chunks, and the 8K plan's one more
    (("--max-model-len", "8K,1T"), 134_217_729, "--max-model-len 1099511627776"),
])
def test_the_chunk_bound_says_that_vllm_refuses_the_length(args, chunks, said):
    line = one_error_line(run_kvplan("estimate", LLAMA, *args))
    # the length after its flag without separators: "-c 999,999,999" would be the flag's sweep of three lengths; the
    # length leads, as the fault vLLM refuses whatever the chunks (session 80's wording review, test_wording_s80.py)
    assert line == PAST.format(said, chunks)


def test_the_chunk_bound_alone_where_the_engine_takes_the_length():
    # engine none refuses no length: the bound alone, as before
    line = one_error_line(run_kvplan("estimate", LLAMA, "-c", "1T", "--engine", "none"))
    assert line == BOUND.format(2**27).replace("vLLM's default", "kvplan's default") + "."


def test_a_refused_length_within_the_bound_is_planned_as_refused():
    r = run_kvplan("estimate", LLAMA, "-c", "100M", "-f", "json")
    assert r.returncode == 0, r.stderr
    (plan,) = json.loads(r.stdout)["plans"]
    assert plan["engine"]["refusal"]["reason"].startswith(REFUSED.format(100 * 2**20))


def test_check_says_that_vllm_refuses_the_length():
    # 999,999,999 tokens less one (vLLM 0.32's room for an output token) in chunks of 16: 62,500,000
    line = one_error_line(run_kvplan("check", LLAMA, "-tp", "1", "--max-model-len", "999999999",
                                     "--max-num-batched-tokens", "16", "--max-num-seqs", "16"))
    assert line == PAST.format("--max-model-len 999999999", 62_500_000).replace("vLLM's default here, 8,192", "16")


@pytest.mark.parametrize("context, chunk, said", [
    # 999,999,999 tokens less one in chunks of 16: 62,500,000; vLLM refuses the length anyway, which leads (its line)
    (999_999_999, 16, "deploy.yaml:5: deployment 'a' field 'context' 999999999 is past the model's own 131,072 "
                      "tokens, which vLLM refuses unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, and past what kvplan plans: "
                      "max_num_batched_tokens (16) splits the prompts of this run into 62,500,000 prefill chunks, "
                      "more than the 32,768 kvplan prices in one run; ask for 131,072 tokens or less."),
    # the model's own 131,072 tokens less one (vLLM 0.32's room for an output token) in chunks of 2: 65,536
    (131_072, 2, "deploy.yaml:6: deployment 'a' field 'max_num_batched_tokens' (2) splits the prompts of this run "
                 "into 65,536 prefill chunks, more than the 32,768 kvplan prices in one run; raise it, or ask for "
                 "shorter max model lengths or fewer plans."),
])
def test_a_deployments_chunk_bound(tmp_path, context, chunk, said):
    path = _deployments(tmp_path, f"    context: {context}\n    max_num_batched_tokens: {chunk}\n"
                                  f"    max_num_seqs: {chunk}\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert line.endswith(said), line


# ---- D4: --gpu with a count ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("given, count, named", [
    ("8xH100", 8, "H100-80GB-SXM"), ("H100:8", 8, "H100-80GB-SXM"), ("8 x H100", 8, "H100-80GB-SXM"),
    ("NVIDIA H100x4", 4, "H100-80GB-SXM"), ("2xA100-80GB", 2, "A100-80GB"),
    ("8xA100", 8, "A100-40GB or A100-80GB or A100-80GB-PCIe"),
])
def test_a_gpu_count_is_said_to_be_the_parallel_degrees(given, count, named):
    line = one_error_line(run_kvplan("estimate", LLAMA, "--gpu", given, "-tp", "2"))
    assert line == (f"kvplan: error: --gpu '{given}' names {count} GPUs; it takes one GPU's name ({named}), and the "
                    f"GPUs a deployment uses are -tp x --pipeline-parallel-size (x --data-parallel-size): for "
                    f"{count} GPUs of one node, -tp {count}.")


def test_a_deployments_gpu_count_names_the_files_keys(tmp_path):
    line = one_error_line(run_kvplan("check", "--file", _deployments(tmp_path, "    gpu: 8xH100\n")))
    assert line.endswith("deploy.yaml:5: deployment 'a' field 'gpu' '8xH100' names 8 GPUs; it takes one GPU's name "
                         "(H100-80GB-SXM), and the GPUs a deployment uses are tp x pp (x dp): for 8 GPUs of one node, "
                         "tp 8.")


@pytest.mark.parametrize("name, catalog", [("MI300X", "MI300X"), ("h100", "H100-80GB-SXM")])
def test_names_that_end_like_a_count_still_resolve(name, catalog):
    r = run_kvplan("estimate", LLAMA, "-c", "8K", "--gpu", name, "-f", "json")
    assert r.returncode == 0, r.stderr
    assert catalog in r.stdout


@pytest.mark.parametrize("name", ["H100x0", "9xNoSuchGPU"])
def test_a_count_of_no_catalog_gpu_stays_unknown(name):
    line = one_error_line(run_kvplan("estimate", LLAMA, "--gpu", name))
    assert line.startswith(f"kvplan: error: --gpu '{name}' is not in the GPU catalog")


# ---- D5, D6: MODEL's file and spelling ----------------------------------------------------------------------------

def test_a_config_with_a_byte_order_mark(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA_CONFIG), encoding="utf-8-sig")  # EF BB BF first
    line = one_error_line(run_kvplan("estimate", "./model", cwd=tmp_path))
    assert line == ("kvplan: error: 'model/config.json' starts with a UTF-8 byte-order mark, which the JSON readers of "
                    "transformers and vLLM refuse; save it as UTF-8 without the mark.")
    path = tmp_path / "deploy.yaml"
    path.write_text("deployments:\n  - name: a\n    model: ./model\n    tp: 1\n", encoding="utf-8")
    line = one_error_line(run_kvplan("check", "--file", "deploy.yaml", cwd=tmp_path))
    assert line.startswith("kvplan: error: deploy.yaml:3: deployment 'a' field 'model': 'model/config.json' starts "
                           "with a UTF-8 byte-order mark")


@pytest.mark.parametrize("address", [f"https://huggingface.co/{LLAMA}", f"https://huggingface.co/{LLAMA}/tree/main",
                                     f"hf://{LLAMA}", f"https://hf.co/{LLAMA}/blob/main/config.json"])
def test_a_hub_address_names_the_id(address):
    line = one_error_line(run_kvplan("estimate", address))
    assert line == f"kvplan: error: MODEL '{address}' is a Hub address; give the model's id, {LLAMA} (owner/name)."


def test_a_dataset_address_is_no_model():
    line = one_error_line(run_kvplan("estimate", "https://huggingface.co/datasets/owner/name"))
    assert "is a Hub address" not in line and "does not exist" in line


# ---- D7: YAML's binary values in words ----------------------------------------------------------------------------

def test_binary_yaml_in_words(tmp_path):
    path = tmp_path / "deploy.yaml"
    path.write_text("deployments: !!binary aGVsbG8=\n", encoding="utf-8")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert line.endswith("deploy.yaml:1: 'deployments' must be a list of entries (each '- name: ...' with model and "
                         "tp), got binary data (!!binary).")
