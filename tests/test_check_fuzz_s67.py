"""Defects the s67 fuzz round of `kvplan check --file` found, each reproduced here; then check's verdicts held to
`kvplan estimate` with the same flags and to hand arithmetic (no disagreement was found: these guard it).

K1  an unknown key spelled as vLLM names the setting got no hint or a wrong one: `kv_cache_dtype` "did you mean
    'mamba_cache_dtype'", `gpu_memory_utilization` "did you mean 'gpu_memory'" (the GPU's size, another field),
    `max_model_len` / `max_model_lenn` / `--max-model-len` nothing.
K2  a value of the wrong kind was named by its Python type: "got a int", "got a str", "got a dict".
K3  errors met before an entry's name is read (a missing key, an unknown, repeated or merge key) said "deployments
    entry 2", not the deployment; a repeated key inside a field's mapping said "the file repeats key 'image'".
K4  `name: &a [*a]` (and any name whose value fails while it is built) escaped as "kvplan: error: --name holds
    itself ...": a flag that does not exist, with no file or line.
K5  a control character (NUL, BEL) in the file: "is not valid YAML: it does not parse", with no line.
K6  `model: |` (a block scalar: 'owner/name\\n') passed the Hub-id pattern ($ matches before a final newline) and
    was sent to the Hub: "could not reach the Hugging Face Hub ... (HFValidationError)"; `revision: |` alike.
K7  the table's `min` column printed 100000 where `requests` prints 1,024.
K8  docs/ci.md promised a warning for MLA's replicated latent; check gives none, by design (test_check.py).
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import ROOT, estimate_plan, one_error_line, run_kvplan

LLAMA = "meta-llama/Meta-Llama-3-8B"
FIRST = f"deployments:\n  - name: first\n    model: {LLAMA}\n    tp: 1\n    context: 4096\n"


def _check(tmp_path, text: str, *args):
    path = tmp_path / "deploy.yaml"
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    return run_kvplan("check", "--file", path, *args)


def _second(extra: str, head: str = "  - name: second\n    model: meta-llama/Meta-Llama-3-8B\n    tp: 1\n") -> str:
    return FIRST + head + extra


# ---- K1: vLLM's names for the settings ---------------------------------------------------------------------------
# EngineArgs' fields in vLLM 0.32.0 (vllm/engine/arg_utils.py:500-597), as `vllm serve` spells them with '-'

@pytest.mark.parametrize("written, vllm, key", [
    ("max_model_len", "max_model_len", "context"), ("max-model-len", "max_model_len", "context"),
    ("--max-model-len", "max_model_len", "context"), ("max_model_lenn", "max_model_len", "context"),
    ("tensor_parallel_size", "tensor_parallel_size", "tp"), ("pipeline_parallel_size", "pipeline_parallel_size", "pp"),
    ("data_parallel_size", "data_parallel_size", "dp"),
    ("gpu_memory_utilization", "gpu_memory_utilization", "gpu_util"),
    ("kv_cache_dtype", "kv_cache_dtype", "kv_dtype"), ("kv-cache-dtype", "kv_cache_dtype", "kv_dtype"),
    ("kv_cache_memory_bytes", "kv_cache_memory_bytes", "kv_budget")])
def test_an_unknown_key_vllm_names_points_at_the_entry_key(tmp_path, written, vllm, key):
    line = one_error_line(_check(tmp_path, _second(f"    {written}: 4\n")))
    assert f":9: deployment 'second' (entry 2) has unknown key '{written}' (vLLM's {vllm} is '{key}' here)" in line
    assert "did you mean 'mamba_cache_dtype'" not in line and "did you mean 'gpu_memory'" not in line


@pytest.mark.parametrize("written, key", [("min_concurency", "min_concurrency"), ("--max-num-seqs", "max_num_seqs"),
                                          ("Context", "context")])
def test_a_misspelt_entry_key_still_gets_the_closest(tmp_path, written, key):
    line = one_error_line(_check(tmp_path, _second(f"    {written}: 4\n")))
    assert f"unknown key '{written}' (did you mean '{key}'?)" in line and "vLLM's" not in line


# ---- K2: kinds in YAML's words ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, said", [
    ("42\n", "at the top, got a number (42)."), ("'x'\n", "at the top, got the text 'x'."),
    ("deployments: {}\n", "'deployments' must be a list of entries (each '- name: ...' with model and tp), got a "
                          "mapping."),
    ("deployments: 3\n", "got a number (3)."), ("deployments: true\n", "got a boolean (true)."),
    (FIRST + "  - just-a-string\n", ":6: deployments entry 2 must be a mapping with name, model and tp, got the text "
                                    "'just-a-string'."),
    (FIRST + "  - 5\n", "deployments entry 2 must be a mapping with name, model and tp, got a number (5)."),
])
def test_a_value_of_the_wrong_kind_is_said_in_yaml_words(tmp_path, text, said):
    line = one_error_line(_check(tmp_path, text))
    assert said in line
    assert not re.search(r"got an? (int|str|dict|float|bool)\b", line)


# ---- K3: the deployment named before its name is checked ----------------------------------------------------------

@pytest.mark.parametrize("extra, head, said", [
    ("", "  - name: second\n    model: meta-llama/Meta-Llama-3-8B\n",
     ":6: deployment 'second' (entry 2) is missing 'tp' (a positive integer)"),
    ("", "  - name: second\n    tp: 1\n", ":6: deployment 'second' (entry 2) is missing 'model'"),
    ("    tp: 2\n", None, ":9: deployment 'second' (entry 2) repeats key 'tp' (first at line 8)"),
    ("    <<: {pp: 2}\n", None, ":9: merge keys (<<) are not supported in deployment 'second' (entry 2)"),
    ("    ? [a]\n    : 1\n", None, ":9: deployment 'second' (entry 2): a key must be a plain name, got a list."),
    ("    limit_mm_per_prompt: {image: 1, image: 2}\n", None,
     ":9: deployment 'second' field 'limit_mm_per_prompt' repeats key 'image' at line 9 (first at line 9)"),
    ("    limit_mm_per_prompt: {image: 1, <<: {video: 1}}\n", None,
     ":9: deployment 'second' field 'limit_mm_per_prompt' uses a merge key (<<) at line 9"),
])
def test_entry_errors_name_the_deployment(tmp_path, extra, head, said):
    text = _second(extra) if head is None else FIRST + head + extra
    assert said in one_error_line(_check(tmp_path, text))


def test_an_entry_without_a_usable_name_is_still_said_by_its_place(tmp_path):
    line = one_error_line(_check(tmp_path, FIRST + "  - name: [x]\n    model: meta-llama/Meta-Llama-3-8B\n"))
    assert ":6: deployments entry 2 is missing 'tp'" in line


# ---- K4: a name that fails while it is built ---------------------------------------------------------------------

@pytest.mark.parametrize("name, said", [
    ("&a [*a]", "holds itself through a YAML alias"), ("{a: 1, a: 2}", "repeats key 'a' at line 6")])
def test_a_name_that_fails_while_built_is_said_on_its_line(tmp_path, name, said):
    line = one_error_line(_check(tmp_path, FIRST + f"  - name: {name}\n    model: {LLAMA}\n    tp: 1\n"))
    assert "deploy.yaml:6: deployments entry 2 field 'name' " + said in line
    assert "--name" not in line


# ---- K5: control characters --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, line_number, code", [
    (b"deployments:\n  - name: a\x00\n", 2, "0000"),
    # after two-byte characters: libyaml counts bytes, which would put it elsewhere
    ("deployments:\n  - name: \u00e9\u00e9\u00e9\n    model: x\n\n    tp: 1\x07\n".encode(), 5, "0007")])
def test_a_control_character_is_said_with_its_line(tmp_path, text, line_number, code):
    line = one_error_line(_check(tmp_path, text))
    assert f"is not valid YAML at line {line_number}: it holds U+{code}, a control character" in line


# ---- K6: a trailing newline is no Hub id -------------------------------------------------------------------------

def test_a_block_scalar_model_is_no_hub_id(tmp_path):
    text = f"deployments:\n  - name: a\n    model: |\n      {LLAMA}\n    tp: 1\n    context: 4096\n"
    line = one_error_line(_check(tmp_path, text))
    assert f":3: deployment 'a' field 'model': MODEL '{LLAMA}\\n' is not a Hugging Face id" in line
    assert f"Did you mean {LLAMA} (bundled)?" in line and "could not reach" not in line


def test_a_block_scalar_revision_is_no_revision(tmp_path):
    text = "deployments:\n  - name: a\n    model: acme/not-bundled\n    revision: |\n      main\n    tp: 1\n"
    line = one_error_line(_check(tmp_path, text))
    assert ":4: deployment 'a' field 'revision' must be a branch or tag name" in line and "got 'main\\n'" in line


# ---- K7: the min column -----------------------------------------------------------------------------------------

def test_the_table_writes_min_as_requests_are_written(tmp_path):
    r = _check(tmp_path, FIRST.replace("first", "a") + "    min_concurrency: 100000\n")
    assert r.returncode == 1
    (row,) = [line for line in r.stdout.splitlines() if line.startswith("a ")]
    assert row.split()[-2:] == ["100,000", "FAIL"]


# ---- K8: MLA's latent, as the docs say it ------------------------------------------------------------------------

def test_docs_say_mla_replication_as_check_gives_it(tmp_path):
    text = "deployments:\n  - name: lite\n    model: deepseek-ai/DeepSeek-V2-Lite\n    tp: 8\n    context: 4096\n"
    r = _check(tmp_path, text, "--format", "json")
    (result,) = json.loads(r.stdout)["results"]
    assert r.returncode == 0 and result["warnings"] == []
    # (kv_lora_rank 512 + qk_rope_head_dim 64) x 27 layers x 2 bytes, a copy on each of the 8 ranks
    assert result["kv_bytes_per_token"] == 8 * (512 + 64) * 27 * 2 == 8 * 31104
    rule = next(line for line in (ROOT / "docs" / "ci.md").read_text().splitlines() if line.startswith("| MLA |"))
    assert "no warning" in rule and "8 x 31,104 bytes per token" in rule and "a warning says" not in rule


# ---- agreement: check's verdict is estimate's plan, and hand arithmetic -----------------------------------------
# vLLM 0.32.0: num_blocks = available // (block_size x page bytes per token), one block held back (the null block,
# v1/core/block_pool.py), a request of `context` tokens needs cdiv(context, 16) blocks.

@pytest.mark.parametrize("tp, kv_dtype, context, heads_per_gpu, byte", [(1, "auto", 4096, 8, 2),
                                                                       (2, "fp8", 8192, 4, 1)])
def test_check_holds_estimates_requests_at_the_boundary(tmp_path, tp, kv_dtype, context, heads_per_gpu, byte):
    plan = estimate_plan(LLAMA, "-tp", tp, "--kv-cache-dtype", kv_dtype, "-c", context)
    per_token = 32 * 2 * heads_per_gpu * 128 * byte  # Llama-3-8B: 32 layers, K and V, 128-wide heads
    assert plan["kv_bytes_per_token_per_gpu"] == per_token
    blocks = plan["kv_budget_bytes_per_gpu"] // (16 * per_token)
    held = (blocks - 1) // (context // 16)
    assert plan["engine"]["num_gpu_blocks"] == blocks and plan["max_concurrency"] == held
    entry = f"deployments:\n  - name: a\n    model: {LLAMA}\n    tp: {tp}\n    kv_dtype: {kv_dtype}\n" \
            f"    context: {context}\n    min_concurrency: {{}}\n"
    met = _check(tmp_path, entry.format(held), "--format", "json")
    (result,) = json.loads(met.stdout)["results"]
    assert met.returncode == 0 and result["passed"] and result["max_concurrency"] == held
    assert result["kv_budget_bytes_per_gpu"] == plan["kv_budget_bytes_per_gpu"]
    assert result["engine"]["num_gpu_blocks"] == blocks
    short = _check(tmp_path, entry.format(held + 1), "--format", "json")
    (result,) = json.loads(short.stdout)["results"]
    assert short.returncode == 1 and json.loads(short.stdout)["ok"] is False
    (error,) = result["findings"][:1]
    assert error["key"] == "min_concurrency" and error["line"] == 7
    assert error["message"].startswith(f"max_concurrency {held} < min_concurrency {held + 1}: vLLM keeps {held} "
                                       f"sequences of {context} tokens resident")
