"""Session 74: V0's edges where vLLM 0.8.0-0.10.1 fall back to V0 (a pipeline on 0.8.0-0.9.0, a Mamba state on
0.9.1-0.10.1), each read in the wheels 0.8.0, 0.8.5, 0.9.0, 0.9.1, 0.9.2, 0.10.1.1:

1. --data-parallel-size > 1 where the plan runs V0: V0 launches no DP rank (no coordinator; headless mode is V1's:
   entrypoints/cli/serve.py 0.9.0:80-82), yet each worker, under the VllmConfig (worker/worker_base.py
   0.9.0:601-603), widens its process group to tp x pp x dp ranks and waits for the others (distributed/
   parallel_state.py 0.9.0:923-935): it never starts. The oracle does not read data_parallel_size
   (engine/arg_utils.py 0.9.0:1192-1394), so -dp 2 -pp 2 falls back to V0 for its pipeline (:1378-1384).
   0.8.0 has no -dp flag and 0.8.5's is not modelled (vllm_engine.MODELLED_SINCE): exit 2 as before.
2. A pipeline vLLM cannot lay out (pp 40 for Llama-3.1-8B's 32 layers) prints the whole model's budget by the rules
   its pp selects: V0's on 0.8.0-0.9.0, V1's from 0.9.1.
3. --num-gpu-blocks-override where V0 serves a Mamba model on 0.9.1: V0's LLMEngine._initialize_kv_caches sets N
   (engine/llm_engine.py 0.9.1:415-421) and the worker checks N x block_size (worker/worker.py 0.9.1:318-322,
   :570-577); 0.9.1's "ignored" bug was V1's (get_num_blocks).
4. A multimodal model on a pipeline's V0 (0.8.0-0.9.0): SchedulerConfig raises its default batched tokens to 5,120
   (config.py 0.8.0:63, :1682-1687; utils.py 0.9.0:85, config.py :2100-2105); V0's dummy media are not modelled.

Hand figures (bundled configs):
- Llama-3.1-8B: 32 layers, 8 KV heads of 128, hidden 4096, vocab 128,256, bfloat16, 131,072 tokens.
- Nemotron-H-8B-Base-8K: 8,192 tokens, block 16 on V0: one request is 8192 / 16 = 512 blocks.
"""

from __future__ import annotations

import json

import pytest
from conftest import one_error_line, run_kvplan

import kvplan

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
NEMOTRON_H = "nvidia/Nemotron-H-8B-Base-8K"
QWEN_VL = "Qwen/Qwen2.5-VL-7B-Instruct"


def one(model, **kwargs):
    (plan,) = kvplan.estimate(model, gpu="H100", **kwargs)
    return plan


def term(plan, name):
    return next(t for t in plan.budget.terms if t.name == name)


# 1. data parallel on V0

def test_data_parallel_with_a_v0_pipeline_never_starts():
    plan = one(LLAMA_8B, pipeline_parallel_size=2, data_parallel_size=2, engine="vllm==0.9.0")
    refusal = plan.engine.refusal
    assert not plan.engine.starts and refusal.configuration and refusal.field == "engine"
    assert "V0 engine for --pipeline-parallel-size 2" in refusal.reason and "never starts" in refusal.reason
    assert refusal.options == ("vllm==0.9.1",)  # 0.9.1 runs pp > 1 on V1 with the default executor
    assert "vllm==0.9.1 or newer" in refusal.remedy and plan.max_concurrency == 0


def test_data_parallel_alone_on_0_9_0_runs_v1_and_starts():
    """pp 1: the oracle keeps V1 (no fallback reads data_parallel_size), whose DP engine cores start."""
    plan = one(LLAMA_8B, data_parallel_size=2, engine="vllm==0.9.0")
    assert plan.engine.starts and plan.max_concurrency > 0
    assert not any(line.startswith("# cuda blocks") for line in plan.engine.log_lines)


def test_data_parallel_on_0_9_1_with_a_pipeline_is_v1():
    plan = one(LLAMA_8B, pipeline_parallel_size=2, data_parallel_size=2, engine="vllm==0.9.1")
    assert plan.engine.starts and plan.max_concurrency > 0


def test_data_parallel_with_a_v0_mamba_state_never_starts():
    """Nemotron-H on 0.9.1 falls back to V0 for its state at any pp; 0.10.2 first runs it on V1."""
    plan = one(NEMOTRON_H, data_parallel_size=2, engine="vllm==0.9.1")
    assert not plan.engine.starts and "for its Mamba state" in plan.engine.refusal.reason
    assert plan.engine.refusal.options == ("vllm==0.10.2",)
    assert one(NEMOTRON_H, data_parallel_size=2, engine="vllm==0.10.2").engine.starts


@pytest.mark.parametrize("release", ["0.8.0", "0.8.5"])
def test_data_parallel_before_0_9_stays_bad_input(release):
    line = one_error_line(run_kvplan("estimate", LLAMA_8B, "-dp", "2", "-pp", "2", "--engine", f"vllm=={release}"))
    assert "-dp is modelled from vLLM 0.9 on" in line


def test_check_fails_the_v0_data_parallel_deployment():
    run = run_kvplan("check", LLAMA_8B, "-tp", "1", "-pp", "2", "-dp", "2", "--engine", "vllm==0.9.0")
    assert run.returncode == 1 and "launches no data-parallel ranks" in " ".join(run.stdout.split())


# 2. a pipeline that cannot be laid out

def test_a_bad_pipeline_on_0_8_5_is_budgeted_by_v0s_rules():
    """pp 40 > 32 layers: the whole model on one GPU, by V0's rules (0.8.5 falls back to V0 for pp > 1).
    V0's memory: int(79.18 GiB x 0.9) (V1 rounds up). V0's profile: chunked prefill on past 32K, so 2,048 batched
    tokens; the sampler over V0's 256 requests x 128,256 logits x 38 B = 1,247,674,368 B, with the forward's
    output held, (2,048 + 256) x 4,096 x 2 B = 18,874,368 B: 1,266,548,736 B."""
    plan = one(LLAMA_8B, pipeline_parallel_size=40, engine="vllm==0.8.5")
    assert not plan.tp_valid and plan.pp_errors
    assert term(plan, "profile_peak").bytes == 256 * 128256 * 38 + (2048 + 256) * 4096 * 2 == 1_266_548_736
    assert "V0's sampler over 256 requests" in term(plan, "profile_peak").source
    assert "V0 worker" in term(plan, "non_torch").source
    memory = term(plan, "memory").bytes
    assert memory == int(plan.budget.gpu_memory_bytes * 0.9)


def test_a_bad_pipeline_on_0_9_1_keeps_v1s_rules():
    """0.9.1 runs pp > 1 on V1: the same row budgeted as V1's pp 1 (its 1,024 sequences on an H100)."""
    plan = one(LLAMA_8B, pipeline_parallel_size=40, engine="vllm==0.9.1")
    assert "1024 requests" in term(plan, "profile_peak").source
    assert plan.kv_budget_bytes_per_gpu == one(LLAMA_8B, engine="vllm==0.9.1").kv_budget_bytes_per_gpu


def test_a_bad_pipeline_row_and_its_json_agree():
    run = run_kvplan("estimate", LLAMA_8B, "-pp", "40", "--engine", "vllm==0.8.5", "--gpu", "H100", "--format", "json")
    data = json.loads(run.stdout)
    (plan,) = data["plans"] if isinstance(data, dict) else data
    assert plan["kv_budget_bytes_per_gpu"] == one(LLAMA_8B, pipeline_parallel_size=40,
                                                  engine="vllm==0.8.5").kv_budget_bytes_per_gpu
    assert plan["budget"]["terms"][2]["name"] == "profile_peak" and "V0" in plan["budget"]["terms"][2]["source"]


# 3. --num-gpu-blocks-override where V0 serves a Mamba model

def test_v0_mamba_on_0_9_1_applies_the_override():
    """600 blocks: logged 600 x 16 / 8192 = 1.171875x; the scheduler admits into 600 - int(0.01 x 600) = 594 >= 512
    blocks: one request."""
    plan = one(NEMOTRON_H, engine="vllm==0.9.1", num_gpu_blocks_override=600)
    e = plan.engine
    assert e.starts and e.num_gpu_blocks == 600 and e.max_concurrency == 600 * 16 / 8192
    assert plan.max_concurrency == 1 and e.num_gpu_blocks_override == 600
    assert "# cuda blocks: 600, # CPU blocks: 16384" in e.log_lines


def test_v0_mamba_on_0_9_1_refuses_an_override_short_of_one_request():
    """500 x 16 = 8,000 tokens < 8,192: the worker's raise_if_cache_size_invalid; the fewest that admit one are 517
    (517 - int(5.17) = 512)."""
    plan = one(NEMOTRON_H, engine="vllm==0.9.1", num_gpu_blocks_override=500)
    e = plan.engine
    assert not e.starts and "(8000)" in e.refusal.reason and e.fewest_blocks == 517
    assert one(NEMOTRON_H, engine="vllm==0.9.2", num_gpu_blocks_override=500).engine.refusal.reason == e.refusal.reason


def test_v1_on_0_9_1_still_ignores_the_override():
    """A model 0.9.1 serves on V1 keeps its profiled count (get_num_blocks, fixed by vllm#19503 in 0.9.2)."""
    plan = one(LLAMA_8B, engine="vllm==0.9.1", num_gpu_blocks_override=600)
    assert plan.engine.num_gpu_blocks > 600 and plan.engine.num_gpu_blocks_override is None


# 4. a multimodal model on a pipeline's V0

def test_a_multimodal_model_on_a_v0_pipeline_batches_5120_tokens():
    """--max-model-len 4096, chunked prefill off (multimodal): max(4096, 2048) = 4096, raised to 5,120; the cap
    256 x 4096 does not bind."""
    source = term(one(QWEN_VL, pipeline_parallel_size=2, max_model_len=4096, engine="vllm==0.9.0"),
                  "profile_peak").source
    assert "forward over 5120 tokens (V0's scheduler; V0's multimodal dummy data not modelled)" in source


def test_a_text_model_on_a_v0_pipeline_keeps_its_length():
    source = term(one(LLAMA_8B, pipeline_parallel_size=2, max_model_len=4096, engine="vllm==0.9.0"),
                  "profile_peak").source
    assert "forward over 4096 tokens (V0's scheduler)" in source
