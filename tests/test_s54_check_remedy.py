"""`kvplan check`'s remedies combine a change with a raised max_num_seqs: vLLM runs at most max_num_seqs requests at
once whatever the cache holds, so past that cap a larger TP degree, fp8 KV or a shorter context reaches
min_concurrency only with the cap raised too (and max_num_batched_tokens with it where vLLM needs as many batched
tokens as sequences). Each remedy names every flag it changes, and followed, it passes.

vLLM 0.32.0 read by hand:
- v1/core/sched/scheduler.py:129 max_num_running_reqs = scheduler_config.max_num_seqs: the cap.
- engine/arg_utils.py:2936-2942 get_batch_defaults: a GPU of 70 GiB or more that is not an A100 (an H100 80GB) serves
  the OpenAI server with max_num_seqs 1024 and max_num_batched_tokens 8192.
- config/scheduler.py:328-333 verify_max_model_len: "max_num_batched_tokens (...) must be greater than or equal to
  max_num_seqs (...)", so 10000 sequences need 10000 batched tokens, past the default 8192.

Llama-3.1-8B by hand (its config: 32 layers, 8 KV heads of 128, bfloat16): one token's K and V take
32 x 8 x 128 x 2 x 2 = 131,072 B; at tp 2 each GPU holds 4 of the 8 heads, 65,536 B a token, 512 x 65,536 = 32 MiB
a sequence of 512 tokens (32 whole blocks of 16).
"""

from __future__ import annotations

import json

from tests.conftest import run_kvplan

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
TOKEN_BYTES = 32 * 8 * 128 * 2 * 2  # layers x KV heads x head dim x (K, V) x bf16 bytes
MIB = 2**20


def _file(tmp_path, context: int, min_concurrency: int, **keys):
    entry = {"model": LLAMA_8B, "tp": 1, "gpu": "H100", "context": context, "min_concurrency": min_concurrency,
             **keys}
    path = tmp_path / "deployments.yaml"
    path.write_text("deployments:\n  - name: a\n" + "".join(f"    {k}: {v}\n" for k, v in entry.items()))
    return path


def _check(path) -> dict:
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    (row,) = json.loads(r.stdout)["results"]
    return row


def _capacity_message(row: dict) -> str:
    (finding,) = [f for f in row["findings"] if f["level"] == "error"]
    assert finding["key"] == "min_concurrency"
    return finding["message"]


def test_tp_2_with_max_num_seqs_1500_reaches_1500_at_512_tokens(tmp_path):
    """At tp 1 an H100 keeps 884 of the 64 MiB sequences (memory's limit: a KV budget of 59,345,660,151 B at vLLM's
    0.705 GiB graph term, // 2 MiB = 28,298 blocks, 28,297 // 32 = 884); tp 2 halves a sequence to 32 MiB but the
    default cap keeps it at 1024: only tp 2 with max_num_seqs 1500 reaches 1500, which check used to miss."""
    row = _check(_file(tmp_path, 512, 1500))
    assert row["kv_bytes_per_token"] == TOKEN_BYTES
    assert (row["max_concurrency"], row["max_concurrency_limited_by"]) == (884, "memory")
    message = _capacity_message(row)
    assert "would fit with tp 2, kv_dtype fp8 or context 288, each with max_num_seqs 1500." in message
    assert "no tp up to" not in message

    followed = _check(_file(tmp_path, 512, 1500, tp=2, max_num_seqs=1500))
    per_sequence = 512 * TOKEN_BYTES // 2  # 4 of 8 KV heads per GPU
    assert per_sequence == 32 * MIB == followed["kv_bytes_per_sequence_per_gpu"]
    predicted = followed["kv_budget_bytes_per_gpu"] // per_sequence  # the remedy's memory, uncapped: 2,011
    assert predicted >= 1500
    assert followed["passed"] and (followed["max_concurrency"], followed["max_concurrency_limited_by"]) == \
        (1500, "max_num_seqs")

    at_default_cap = _check(_file(tmp_path, 512, 1500, tp=2))  # tp alone: held at vLLM's 1024
    assert (at_default_cap["max_concurrency"], at_default_cap["max_concurrency_limited_by"]) == \
        (1024, "max_num_seqs")


def test_every_remedy_past_the_cap_names_the_cap_cheapest_first_and_passes_when_followed(tmp_path):
    """tp first, then fp8 KV (32 MiB a sequence at tp 1), then the longest context: 1500 sequences of 18 blocks
    (2 MiB a block of 16 bf16 tokens) take 52.7 GiB of the 55.0 GiB budget at max_num_seqs 1500 (59,077,664,535 B:
    28,170 blocks, 28,169 // 1,500 = 18), 19 blocks 55.7 GiB: 288 tokens."""
    message = _capacity_message(_check(_file(tmp_path, 512, 1500)))
    assert message.endswith("would fit with tp 2, kv_dtype fp8 or context 288, each with max_num_seqs 1500.")
    for context, keys in ((512, dict(tp=2)), (512, dict(kv_dtype="fp8")), (288, {})):
        followed = _check(_file(tmp_path, context, 1500, max_num_seqs=1500, **keys))
        assert followed["passed"], (keys, followed["errors"])
    assert 1500 * 18 * 2 * MIB <= followed["kv_budget_bytes_per_gpu"] < 1500 * 19 * 2 * MIB  # at 288 tokens


def test_the_remedy_names_every_flag_in_the_callers_spelling():
    r = run_kvplan("check", LLAMA_8B, "--tp", "1", "--gpu", "H100", "-c", "512", "--min-concurrency", "1500",
                   "--format", "json")
    (finding,) = json.loads(r.stdout)["results"][0]["findings"]
    assert "would fit with --tensor-parallel-size 2, --kv-cache-dtype fp8 or --max-model-len 288, each with " \
           "--max-num-seqs 1500." in finding["message"]


def test_a_cap_past_the_default_batched_tokens_raises_them_too(tmp_path):
    """10000 sequences: past vLLM's default max_num_batched_tokens 8192, which may not be under max_num_seqs, so the
    remedy sets both; 10000 sequences of 32 tokens (2 blocks, 4 MiB) take 39 GiB, which a tp 1 H100 holds."""
    message = _capacity_message(_check(_file(tmp_path, 512, 10000)))
    # (tp 8 with fp8 KV, 2 MiB a sequence, too: neither alone reaches 10,000 within one node, test_remedies_node.py)
    assert message.endswith("would fit with tp 8 and kv_dtype fp8; or context 32, each with max_num_seqs 10000 and "
                            "max_num_batched_tokens 10000.")
    followed = _check(_file(tmp_path, 32, 10000, max_num_seqs=10000, max_num_batched_tokens=10000))
    assert followed["kv_bytes_per_sequence_per_gpu"] == 32 * TOKEN_BYTES == 4 * MIB
    assert followed["passed"] and followed["max_concurrency"] == 10000


def test_tp_alone_is_advised_without_touching_max_num_seqs(tmp_path):
    """20 sequences of 32K: 4 GiB each at tp 1 (13 fit), 2 GiB at tp 2 (about 30 fit): far under the 1024 cap, so
    the remedy changes tp only."""
    message = _capacity_message(_check(_file(tmp_path, 32768, 20)))
    assert "would fit with tp 2," in message
    assert "max_num_seqs" not in message and "max_num_batched_tokens" not in message
    followed = _check(_file(tmp_path, 32768, 20, tp=2))
    assert followed["passed"] and followed["kv_bytes_per_sequence_per_gpu"] == 32768 * TOKEN_BYTES // 2


def test_nothing_reaches_it_even_with_the_cap_raised(tmp_path):
    """100,000 sequences: the smallest a tp 1 sequence gets is one block of 16 fp8 tokens (1 MiB: 97.7 GiB in all),
    and at tp 8 to 32 each GPU keeps one KV head (16 KiB a token: 512 tokens x 100,000 = 781 GiB), each past a whole
    80 GB H100."""
    want = 100_000
    assert want * 16 * TOKEN_BYTES // 2 > 80 * 10**9 and want * 512 * TOKEN_BYTES // 8 > 80 * 10**9
    message = _capacity_message(_check(_file(tmp_path, 512, want)))
    # (tp stops at one node of 8 H100s; tp 8 x pp 8 with fp8 keeps 4 layers a GPU, 512 KiB a sequence, 48.8 GiB in
    # all, but the runner's buffers for 100,000 running requests leave no KV budget: test_remedies_node.py)
    assert message.endswith("no tp up to 8 (one H100-80GB-SXM node), kv_dtype fp8, tp x pp up to 64 GPUs or shorter "
                            "context reaches it on this budget.")
