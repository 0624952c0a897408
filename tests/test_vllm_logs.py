"""Figures published from real vLLM start-ups, reproduced from the config alone."""

import json

from conftest import run_kvplan
from hub_configs import LLAMA3_8B, QWEN3_14B
from kvplan.plan.budget import flag_budget, gpu_budget
from kvplan.plan.catalog import find_gpu
from kvplan.model import parse_config
from kvplan.plan.plan import plan
from kvplan.model import Weights
from kvplan.units import parse_size

GiB = 2**30


def test_qwen3_14b_lmcache_1739(write_config):
    """LMCache/LMCache#1739: 'Available KV cache memory: 6.51 GiB' -> 'GPU KV cache size: 42,656 tokens'.
    40 layers x 2 x 8 heads x 128 x 2 bytes = 160 KiB/token; 6.51 GiB // (16 x 160 KiB) = 2666 blocks."""
    result = run_kvplan("estimate", write_config(QWEN3_14B), "--kv-budget", "6.51GiB", "--format", "json")
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)["plans"][0]
    assert row["kv_bytes_per_token_per_gpu"] == 163_840
    assert row["kv_capacity_tokens"] == 42_656


def test_llama3_8b_fp8_doubles_blocks_rocm_blog():
    """ROCm vLLM blog logs for Llama-3-8B: 78,897 GPU blocks with a bf16 cache, 157,794 with fp8 (same budget).
    The blog's budget line is not quoted, so the budget is 78,897 bf16 blocks (2 MiB each) plus a quarter block;
    the fp8 count is then an independent prediction."""
    spec = parse_config(LLAMA3_8B, "llama3-8b")
    budget = 78_897 * 16 * 131_072 + 16 * 131_072 // 4
    rows = {d: plan(spec, context=8192, kv_dtype=d, tp=1, budget_for=lambda tp: flag_budget(budget))
            for d in ("bf16", "fp8")}
    assert rows["bf16"].kv_blocks == 78_897
    assert rows["fp8"].kv_blocks == 157_794 == 2 * rows["bf16"].kv_blocks


def _llama3_budget(tp):
    spec = parse_config(LLAMA3_8B, "Meta-Llama-3-8B", Weights(8_030_261_248, 16_060_522_496, "bf16", "safetensors"))
    return gpu_budget(spec, tp, find_gpu("H100"), 0.90, 8192)


def test_llama3_8b_h100_budget_vllm_pr_10511():
    """vllm-project/vllm PR #10511, `vllm serve meta-llama/Meta-Llama-3-8B` on an H100: total 79.22 GiB x 0.90,
    weights 14.96 GiB, non-torch 1.79 GiB, activation peak 1.26 GiB -> available_kv_cache_memory 53.29 GiB."""
    budget = _llama3_budget(1)
    assert abs(budget.weights_bytes_per_gpu / GiB - 14.96) < 0.01
    assert abs(budget.activation_bytes / GiB - 1.26) / 1.26 < 0.05
    assert abs(budget.kv_budget_bytes_per_gpu / GiB - 53.29) / 53.29 < 0.05
    assert abs(budget.kv_budget_bytes_per_gpu / GiB - 53.29) < 0.2  # in fact within 0.2 GiB


def test_llama3_8b_h100_tp2_budget_vllm_pr_10511():
    """Same PR, `-tp 2`: weights 7.48 GiB, non-torch 3.58 GiB, activation peak 1.26 GiB, so available memory is
    71.29 - 7.48 - 3.58 - 1.26 = 58.97 GiB per GPU."""
    budget = _llama3_budget(2)
    assert abs(budget.weights_bytes_per_gpu / GiB - 7.48) < 0.01
    assert abs(budget.kv_budget_bytes_per_gpu / GiB - 58.97) / 58.97 < 0.05


def test_kv_budget_size_spellings():
    assert parse_size("10GiB", "--kv-budget") == 10 * GiB
    assert parse_size("80GB", "--kv-budget") == 80 * 10**9
    assert parse_size("123456", "--kv-budget") == 123456
    assert parse_size("1.5 GiB", "--kv-budget") == int(1.5 * GiB)
