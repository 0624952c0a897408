"""Session 80's wording review of the command line: three sentences that said something other than they meant, each
held to its key words and their order (no snapshot of whole outputs).

W1  check's capacity finding spliced vLLM's refusal into kvplan's sentence: "... the estimated maximum model length is
    30864, and 100 need about 1.56 TiB per GPU", as if vLLM had said the second half (and vLLM's own stray "(" read
    as kvplan's). vLLM's words are now a quotation of what it states, its advice left to kvplan's remedy, and
    kvplan's clause follows the quotation as a clause of its own.
W2  `kvplan estimate MODEL -c 1T` led with "134,217,728 prefill chunks" and said only at its end that the length is
    past the model's own 131,072 tokens, which vLLM refuses whatever the chunks: it now leads with that.
W3  the "KV tokens" legend said "tokens the KV cache holds", which vLLM's "GPU KV cache size" is not from 0.20.1: it
    logs int(max_concurrency x max_model_len) (v1/core/kv_cache_utils.py 0.24.0:2138-2146, 0.32.0:2299-2308), so at
    -c 1 a pool of 28,612 blocks of 16 slots logs 28,612 tokens. The legend now says what the figure counts, as the
    release counts it.
"""

from __future__ import annotations

import json
import re

import pytest

from conftest import deployments_file, one_error_line, run_kvplan

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


# ---- W1: vLLM's refusal quoted, kvplan's clause apart -----------------------------------------------------------

def _capacity_error(tmp_path, engine: str = "") -> str:
    # Llama-3.1-8B bf16: 2 x 8 KV heads x 128 x 2 bytes x 32 layers = 128 KiB a token, 2 MiB a block of 16; its
    # 131,072 tokens need 8,192 blocks = 16 GiB. A KV budget of 4 GiB is 2,048 blocks, the null block held back from
    # 0.29: 2,047 blocks = 32,752 tokens is the longest request that fits (vLLM's estimate), none of 131,072 does
    path = deployments_file(tmp_path, f"  - name: long\n    model: {LLAMA}\n    tp: 1\n    kv_budget: 4GiB\n"
                                      f"    context: 128K\n    min_concurrency: 100\n" + engine)
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 1, r.stderr
    (error,) = json.loads(r.stdout)["results"][0]["errors"]
    return error


def test_check_quotes_vllms_refusal_and_keeps_its_own_clause_apart(tmp_path):
    error = _capacity_error(tmp_path)
    # vLLM's statement (its stray "(" included) within quotes, ending at its estimate
    quoted = re.search(r'vLLM would refuse to start, saying "(To serve at least one request[^"]*)"', error)
    assert quoted, error
    assert quoted.group(1).endswith("Based on the available memory, the estimated maximum model length is 32752")
    # kvplan's clause after the quotation, not joined to it by ", and"
    after = error[quoted.end():]
    assert after.startswith("; 100 need about "), error
    # vLLM's advice is left out: kvplan's remedy follows (fits at 2,047 blocks / 100 = 20 blocks = 320 tokens)
    assert "Try increasing" not in error and "would fit with context 320" in after


def test_0_34_quotes_its_statement_without_its_hint(tmp_path):
    # 0.34 appends its memory hint and a link to the same statement: neither is quoted
    error = _capacity_error(tmp_path, "    engine: vllm==0.34.0\n")
    quoted = re.search(r'saying "(To serve at least one request[^"]*)"; 100 need about ', error)
    assert quoted, error
    assert "https://" not in error and "gpu_memory_utilization" not in quoted.group(1)


def test_a_capacity_error_without_a_refusal_reads_as_before(tmp_path):
    # at 8K each request takes 512 blocks: 2,047 usable blocks keep 3; kvplan's clause joins with ", and"
    path = deployments_file(tmp_path, f"  - name: short\n    model: {LLAMA}\n    tp: 1\n    kv_budget: 4GiB\n"
                                      f"    context: 8K\n    min_concurrency: 100\n")
    (error,) = json.loads(run_kvplan("check", "--file", path, "--format", "json").stdout)["results"][0]["errors"]
    assert error.startswith("max_concurrency 3 < min_concurrency 100: vLLM keeps 3 sequences of 8192 tokens")
    assert "kv_dtype bf16), and 100 need about " in error and "refuse" not in error


# ---- W2: a length past the model's own leads the bound -----------------------------------------------------------

def test_a_length_past_the_models_own_leads_the_chunk_bound():
    # 1T = 2**40 tokens, in vLLM's default chunks of 8,192: 2**27 = 134,217,728 prefill chunks, past kvplan's 32,768;
    # vLLM refuses any length past Llama-3.1's max_position_embeddings (131,072) while it reads the config
    line = one_error_line(run_kvplan("estimate", LLAMA, "-c", "1T"))
    assert line.startswith("kvplan: error: -c 1099511627776 is past the model's own 131,072 tokens"), line
    assert "vLLM refuses" in line and "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1" in line
    assert line.index("vLLM refuses") < line.index("134,217,728 prefill chunks") < line.index("ask for 131,072")
    assert line.count(". ") == 0 and line.endswith(".")  # one sentence


@pytest.mark.parametrize("length, tokens", [("10M", 10 * 2**20), ("1M", 2**20)])
def test_a_length_within_the_bound_is_planned_as_refused(length, tokens):
    # 10M = 10,485,760 tokens: 1,280 chunks of 8,192, within the bound: planned, with vLLM's refusal of the length
    r = run_kvplan("estimate", LLAMA, "-c", length, "--format", "json")
    assert r.returncode == 0, r.stderr
    (plan,) = json.loads(r.stdout)["plans"]
    refusal = plan["engine"]["refusal"]
    assert refusal["field"] == "context" and refusal["reason"].startswith(f"User-specified max_model_len ({tokens})")


# ---- W3: the KV tokens legend says what the figure counts -------------------------------------------------------

def _legend(*args) -> tuple:
    r = run_kvplan("estimate", LLAMA, "--gpu", "H100", "-c", "1", *args, env={"COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    line = next(line for line in r.stdout.splitlines() if line.startswith("KV tokens"))
    plan = json.loads(run_kvplan("estimate", LLAMA, "--gpu", "H100", "-c", "1", *args, "--format", "json").stdout)
    return " ".join(line.split()), plan["plans"][0]


def test_the_legend_of_vllms_logged_tokens_says_they_count_requests_of_max_len():
    legend, plan = _legend()
    e = plan["engine"]
    # one token takes one block of 16 slots: concurrency = blocks / 1, logged tokens = int(blocks x 1) = blocks, a
    # sixteenth of the pool's slots; the column keeps vLLM's own figure
    assert e["gpu_kv_cache_tokens"] == e["num_gpu_blocks"] and e["max_concurrency"] == e["num_gpu_blocks"]
    assert f"GPU KV cache size: {e['num_gpu_blocks']:,} tokens" in e["log_lines"][-1]
    assert "max len x" in legend and "requests of max len" in legend and "not" in legend and "slots" in legend
    assert "tokens the KV cache holds" not in legend and "GPU KV cache size" in legend


def test_the_legend_before_0_20_1_says_slots():
    # up to 0.20.0 vLLM logs blocks // groups x block size (kv_cache_utils.py 0.14.0:1288-1292): the slots
    legend, plan = _legend("--engine", "vllm==0.20.0")
    assert plan["engine"]["gpu_kv_cache_tokens"] == plan["engine"]["num_gpu_blocks"] * 16
    assert "slots" in legend and "block size" in legend and "requests of max len" not in legend


def test_the_legend_of_an_ideal_pool_names_no_vllm_line():
    legend, plan = _legend("--engine", "none")
    assert "GPU KV cache size" not in legend and "ideal" in legend
