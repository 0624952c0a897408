"""Session 74 review of the V0 pipeline virtual engines (engines/vllm_v0_pp.py): what the table and the log lines say
where a virtual engine's share, not the budget, is short of one request of max len.

Ground truth read in the wheels:
- V0 logs --num-gpu-blocks-override once, in LLMEngine._initialize_kv_caches, with the count the executor agrees on,
  the fewest of any worker (engine/llm_engine.py 0.7.3:423-429, 0.8.5:424-429; executor/executor_base.py
  0.8.5:103-106 determine_num_available_blocks: min over the workers), the count "# cuda blocks" logs without it.
- From 0.8.0 worker.py raise_if_cache_size_invalid checks block_size x (num_gpu_blocks // pipeline_parallel_size)
  (0.8.0:543), up to 0.7.3 block_size x num_gpu_blocks (0.7.3:542); each scheduler's block manager gets
  num_gpu_blocks // pp (core/scheduler.py 0.7.3:451).
Llama-3.1-8B at 32,768 tokens, block 16: one request needs 32,768 / 16 = 2,048 blocks.
"""

from __future__ import annotations

import kvplan.api as api
from conftest import run_kvplan

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def _plan(version: str, **kwargs):
    (plan,) = api.estimate(MODEL, gpu="H100", engine=f"vllm=={version}", pipeline_parallel_size=2, **kwargs)
    return plan


def _table(version: str, *args) -> str:
    out = run_kvplan("estimate", MODEL, "-pp", "2", "--gpu", "H100", "--engine", f"vllm=={version}", *args)
    assert out.returncode == 0, out.stderr
    return " ".join(out.stdout.split())


def test_v0_logs_the_override_once_with_the_fewest_blocks():
    """Before: one "Overriding" line a pipeline stage, each with its own count (V1's per-worker lines)."""
    for version in ("0.7.3", "0.8.5"):
        plain = _plan(version, max_model_len=8192)
        overridden = _plan(version, max_model_len=8192, num_gpu_blocks_override=600)
        lines = [line for line in overridden.engine.log_lines if line.startswith("Overriding")]
        # the count V0 logs as "# cuda blocks" without the override: the executor's minimum over the workers
        assert lines == [f"Overriding num_gpu_blocks={plain.engine.num_gpu_blocks} with num_gpu_blocks_override=600"]
    # V1 (0.9.1 on at pp 2) still logs one a worker
    v1 = _plan("0.9.2", max_model_len=8192, num_gpu_blocks_override=600)
    assert sum(line.startswith("Overriding") for line in v1.engine.log_lines) == 2


def test_refused_share_keeps_its_virtual_engines_and_the_table_says_the_share():
    """0.8.0 at --gpu-memory-utilization 0.2: vLLM refuses, its message counts one share's tokens; the table's line
    said "one request needs 2.00 GiB of KV per GPU, the budget is 3.07 GiB", a budget larger than the need."""
    plan = _plan("0.8.0", max_model_len=32768, gpu_memory_utilization=0.2)
    e = plan.engine
    assert not e.starts and e.virtual_engines == 2  # before: 1 on a refusal
    share = e.num_gpu_blocks // 2
    assert share < 2048 and f"stored in KV cache ({16 * share})" in e.refusal.reason
    text = _table("0.8.0", "--max-model-len", "32768", "--gpu-memory-utilization", "0.2")
    assert (f"does not fit: each of V0's 2 virtual engines (one a pipeline stage) schedules {share:,} of the "
            f"{e.num_gpu_blocks:,} blocks ({16 * share:,} tokens), and one request of max len needs 2,048") in text
    assert "the budget is" not in text


def test_started_share_says_it_holds_none_without_a_byte_count():
    """0.7.3 checks the whole count, starts, and no share holds a request: the note says why; the row's own line no
    longer compares a request's bytes with a budget that holds them."""
    plan = _plan("0.7.3", max_model_len=32768, gpu_memory_utilization=0.2)
    e = plan.engine
    assert e.starts and plan.max_concurrency == 0 and e.num_gpu_blocks * 16 >= 32768 > 16 * (e.num_gpu_blocks // 2)
    text = _table("0.7.3", "--max-model-len", "32768", "--gpu-memory-utilization", "0.2")
    assert "max len 32,768 bf16 tp 1 starts but holds no request: would fit with" in text
    assert "the budget is" not in text
    # the note never calls a share equal to a request's blocks "fewer": 27,024 tokens = 1,689 blocks
    text = _table("0.7.3", "--max-model-len", "27024", "--gpu-memory-utilization", "0.2")
    assert "fewer than one request" not in text


def test_override_fix_names_the_share_not_the_null_block():
    """0.7.3 pp 2 with 800 blocks: 12,800 tokens pass the whole-count check, each share of 400 holds no 512-block
    request. Before: "800 blocks hold no request of max len; one needs 513 (the null block included)", which V0
    does not keep, and 800 > 513."""
    text = _table("0.7.3", "--max-model-len", "8192", "--num-gpu-blocks-override", "800")
    assert "null block" not in text
    assert ("800 blocks hold no request of max len: each of V0's 2 virtual engines (one a pipeline stage) schedules "
            "400 of the 800 blocks (6,400 tokens), and one request of max len needs 512") in text
    # each share keeps int(0.01 x share) free at admission (vllm_v0_admission.py): a share of 517 leaves 517 - 512
    # = 5 free after the request, its watermark int(5.17) = 5, so it admits one; 516 leaves 4 < int(5.16) = 5
    assert "so at least 1,034 in all" in text
    # what kvplan's own plan then holds: 2 x 517 = 1,034 blocks give each share one request; 1,033 // 2 = 516, none
    assert _plan("0.7.3", max_model_len=8192, num_gpu_blocks_override=1034).max_concurrency == 2
    assert _plan("0.7.3", max_model_len=8192, num_gpu_blocks_override=1033).max_concurrency == 0


def test_a_config_naming_thousands_of_architectures_plans_in_time():
    """Fuzz campaign seed 7474 (session 74): a config whose `architectures` repeats one name 5,000 times took 4 s to
    plan (served_name walked the list in every one of ~440 calls). Each list is walked once now; the answer is
    vLLM's walk's: the first name its registry lists, else the first."""
    from kvplan.engines.vllm_registry import _first_served, served_name

    names = ["NoSuchForCausalLM"] * 5000 + ["LlamaForCausalLM"]
    assert served_name(names, "0.28.0") == "LlamaForCausalLM"
    assert served_name(["NoSuchForCausalLM"] * 5000, "0.28.0") == "NoSuchForCausalLM"
    walked = _first_served.cache_info().misses
    for _ in range(3):  # a plan asks again and again: the list is walked once
        assert served_name(names, "0.28.0") == "LlamaForCausalLM"
    assert _first_served.cache_info().misses == walked
