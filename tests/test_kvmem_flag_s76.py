"""--kv-cache-memory-bytes by release (vllm_engine.FLAG_SINCE["kv_budget"]): vLLM's argparse has it from 0.10.2
(engine/arg_utils.py 0.10.2:233, :344, :745) and 0.10.1.1's has no such flag, so `vllm serve --kv-cache-memory-bytes`
stops there on "unrecognized arguments"; kvplan refuses it before 0.10.2 as it refuses every flag a release lacks, in
estimate, check (a model's line and a deployments file) and the Python API, naming it as the caller wrote it.
`--engine none` (ideal paging) takes it. 0.10.2's V0 fallback sizes the cache as given too (worker/worker.py
0.10.2:235-254 returns kv_cache_memory_bytes as the available memory; determine_num_available_blocks :322 divides it
by the block's bytes).

Llama-3.1-8B: 8 KV heads x 128 x 2 (K, V) x 32 layers = 65,536 elements a token: 128 KiB in bf16, a 16-token block
2 MiB (1 MiB in fp8); a request of 8,192 tokens takes 512 blocks. 10G = 10 GiB = 10,737,418,240 bytes."""

from __future__ import annotations

import json

import pytest

import kvplan.api as api
from conftest import deployments_file, estimate_plan, line_of, one_error_line, run_kvplan
from kvplan.engines import EngineFlags, get_engine
from kvplan.errors import FieldError

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
FALCON = "tiiuae/falcon-7b"
TEN_GIB = 10 * 2**30
SENTENCE = "needs vLLM 0.10.2 or later (vllm=={} has no such flag); leave it off or pick a later release."


@pytest.mark.parametrize("release", ["0.10.1", "0.10.1.1", "0.9.2", "0.6.3"])
@pytest.mark.parametrize("spelling", ["--kv-cache-memory-bytes", "--kv-budget"])
def test_estimate_refuses_it_before_0_10_2(release, spelling):
    line = one_error_line(run_kvplan("estimate", LLAMA, "-c", "8192", spelling, "10G", "--engine", f"vllm=={release}"))
    assert line == f"kvplan: error: {spelling} {SENTENCE.format(release)}"


def test_check_refuses_it_on_the_model_line():
    line = one_error_line(run_kvplan("check", LLAMA, "-tp", "1", "-c", "8192", "--kv-cache-memory-bytes", "10G",
                                     "--engine", "vllm==0.10.1"))
    assert line == f"kvplan: error: --kv-cache-memory-bytes {SENTENCE.format('0.10.1')}"


def test_check_refuses_it_in_a_deployments_file(tmp_path):
    path = deployments_file(tmp_path, "  - name: chat\n    model: meta-llama/Llama-3.1-8B-Instruct\n    tp: 1\n"
                                      "    context: 8192\n    engine: vllm==0.10.1\n    kv_budget: 10G\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert line == (f"kvplan: error: {path}:{line_of(path, 'kv_budget', 'chat')}: deployment 'chat' field 'kv_budget' "
                    f"{SENTENCE.format('0.10.1')}")


@pytest.mark.parametrize("call", [api.estimate, api.check])
def test_the_api_names_its_keyword(call):
    with pytest.raises(FieldError) as caught:
        call(LLAMA, tensor_parallel_size=1, max_model_len=8192, kv_cache_memory_bytes="10G", engine="vllm==0.10.1")
    assert caught.value.field == "kv_cache_memory_bytes"
    assert str(caught.value) == f"kv_cache_memory_bytes {SENTENCE.format('0.10.1')}"


def test_the_engine_model_holds_the_rule():
    """One place: the engine's flag-release rules, which a remedy's other releases meet too (get_engine)."""
    with pytest.raises(FieldError) as caught:
        get_engine("vllm==0.10.1", EngineFlags(kv_budget=TEN_GIB))
    assert caught.value.field == "kv_budget"
    assert get_engine("vllm==0.10.2", EngineFlags(kv_budget=TEN_GIB)).version == "0.10.2"
    assert get_engine("none", EngineFlags(kv_budget=TEN_GIB)) is not None


def test_0_10_2_sizes_the_cache_as_given():
    # V1: 10 GiB // 2 MiB = 5,120 blocks, 81,920 tokens, 5,120 / 512 = 10.00x; resident: the pool less the null
    # block, (5,120 - 1) // 512 = 9
    plan = estimate_plan(LLAMA, "-c", "8192", "--kv-cache-memory-bytes", "10G", "--engine", "vllm==0.10.2")
    e = plan["engine"]
    assert (e["available_kv_cache_bytes"], e["num_gpu_blocks"]) == (TEN_GIB, TEN_GIB // (2 * 2**20)) == (TEN_GIB,
                                                                                                         5120)
    assert e["log_lines"] == ["Available KV cache memory: 10.0 GiB", "GPU KV cache size: 81,920 tokens",
                              "Maximum concurrency for 8,192 tokens per request: 10.00x"]
    assert plan["max_concurrency"] == (5120 - 1) // 512 == 9
    (row,) = api.check(LLAMA, tensor_parallel_size=1, max_model_len=8192, kv_cache_memory_bytes="10G",
                       engine="vllm==0.10.2")
    assert row["passed"] and row["max_concurrency"] == 9


def test_0_10_2_v0_fallback_sizes_the_cache_as_given():
    """--kv-cache-dtype fp8 on an A100 falls back to V0 in 0.10.2 (FlashAttention 3 takes fp8 on Hopper only), whose
    worker takes kv_cache_memory_bytes as the available memory: int(10 GiB // 1 MiB) = 10,240 GPU blocks, and
    4 GiB of swap // 1 MiB = 4,096 CPU blocks; 10,240 / 512 = 20.00x. V0's block manager keeps int(1% x 10,240) =
    102 blocks free as it admits: 19 requests leave 512 free, the 20th would leave 0 < 102."""
    plan = estimate_plan(LLAMA, "--gpu", "A100-80GB", "--kv-cache-dtype", "fp8", "-c", "8192",
                         "--kv-cache-memory-bytes", "10G", "--engine", "vllm==0.10.2")
    e = plan["engine"]
    assert e["v0_reason"].startswith("--kv-cache-dtype fp8")
    assert e["num_gpu_blocks"] == TEN_GIB // 2**20 == 10240 and e["watermark_blocks"] == 102
    assert e["log_lines"] == ["# cuda blocks: 10240, # CPU blocks: 4096",
                              "Maximum concurrency for 8192 tokens per request: 20.00x"]
    assert plan["max_concurrency"] == 19


def test_engine_none_takes_it(tmp_path):
    # ideal paging, no reserves: 10 GiB / (8,192 x 128 KiB = 1 GiB) = 10 requests
    plan = estimate_plan(LLAMA, "-c", "8192", "--kv-cache-memory-bytes", "10G", "--engine", "none")
    assert plan["kv_budget_bytes_per_gpu"] == TEN_GIB and plan["max_concurrency"] == 10
    result = run_kvplan("check", LLAMA, "-tp", "1", "-c", "8192", "--kv-budget", "10G", "--engine", "none",
                        "--min-concurrency", "10", "--format", "json")
    assert result.returncode == 0 and json.loads(result.stdout)["results"][0]["max_concurrency"] == 10
    path = deployments_file(tmp_path, "  - name: chat\n    model: meta-llama/Llama-3.1-8B-Instruct\n    tp: 1\n"
                                      "    context: 8192\n    engine: none\n    kv_budget: 10G\n")
    assert run_kvplan("check", "--file", path).returncode == 0
    (row,) = api.estimate(LLAMA, max_model_len=8192, kv_cache_memory_bytes="10G", engine="none")
    assert row.max_concurrency == 10


def test_a_release_remedy_keeps_to_releases_with_the_flag():
    """Falcon's RWForCausalLM is gone from 0.29 (registry.py), so kvplan names an older release; with the flag given
    the run it names starts at 0.10.2, the first release that has it, not "0.28.0 or older"."""
    plain = estimate_plan(FALCON, "--gpu", "h100")
    assert plain["engine"]["refusal"]["remedy"] == "it starts with --engine vllm==0.28.0 or older"
    given = estimate_plan(FALCON, "--gpu", "h100", "--kv-cache-memory-bytes", "10G")
    assert given["engine"]["refusal"]["remedy"] == ("it starts with --engine vllm==0.28.0 (any release from 0.10.2 "
                                                     "before 0.29.0)")
