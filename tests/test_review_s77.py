"""Session 77's review of its own merges: the defects found, each as the input that showed it.

1. --engine none at pp > 1: the plan's budget was the capacity stage's (plan/stages.py, plan.py), but its kv_blocks
   and kv_capacity_tokens the fewest of any stage, another stage's where the stages hold different layer kinds.
   google/gemma-3-27b-it (62 layers, 16 KV heads x head_dim 128, bf16; every 6th layer full attention, the rest a
   1,024-token window) -pp 3 on an H200 at 32,768 tokens: get_pp_indices splits 62 layers 21, 21, 20, so layers
   [0, 21), [21, 42), [42, 62); the full layers (index % 6 == 5) are 5, 11, 17 | 23, 29, 35, 41 | 47, 53, 59: stage 1
   holds four, a request's largest share, and sets the ideal pool's capacity (the fewest requests). One 16-token
   block of one layer: 16 x 2 (K, V) x 16 heads x 128 x 2 B = 131,072 B; stage 1's block, 21 layers: 2,752,512 B.
   So the plan's kv_blocks is its budget // 2,752,512, and (a non-uniform model: plan/capacity.py) its KV tokens
   max_concurrency x 32,768. Before: kv_blocks 39,977, stage 0's (the smallest budget), beside stage 1's budget.
2. check --max-model-len auto --min-model-len past the model's own length: vLLM's auto-fit starts from the model's
   own length and never goes past it (kv_cache_utils.py 0.32.0:2414-2483 searches 1..max_model_len), so nothing
   reaches it; the error said "auto-fit reduces max_model_len from 131072 to 131072 to fit the available KV cache
   memory" and looked for a remedy.
3. --kv-cache-dtype bf16 / fp16 / BFloat16 told to write bfloat16 / float16 under a release whose flag has neither:
   CacheDType is ("auto", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc") in 0.10.2 (config/cache.py 0.10.2:25), gains
   "bfloat16" in 0.11.0 (config/cache.py 0.11.0:25-26) and "float16" only in 0.18.0 (config/cache.py 0.18.0:14-23;
   0.17.0:23-31 has none). Where the release lacks vLLM's spelling, the refusal lists the release's values instead.
"""

from __future__ import annotations

import pytest

from conftest import estimate_plan, one_error_line, run_kvplan

LAYER_BLOCK = 16 * 2 * 16 * 128 * 2  # gemma-3-27b: one 16-token block of one layer, bytes


def test_ideal_pipeline_blocks_and_tokens_are_the_capacity_stages():
    plan = estimate_plan("google/gemma-3-27b-it", "-pp", "3", "--engine", "none", "--gpu", "H200", "-c", "32768")
    (capacity,) = [s for s in plan["stages"] if s["sets_capacity"]]
    assert (capacity["stage"], capacity["first_layer"], capacity["end_layer"]) == (1, 21, 42)
    assert plan["kv_budget_bytes_per_gpu"] == capacity["kv_budget_bytes_per_gpu"]
    assert plan["kv_blocks"] == capacity["kv_blocks"] == plan["kv_budget_bytes_per_gpu"] // (21 * LAYER_BLOCK)
    assert plan["kv_capacity_tokens"] == plan["max_concurrency"] * 32768


def test_auto_fit_min_model_len_past_the_models_own_length():
    r = run_kvplan("check", "meta-llama/Llama-3.1-8B", "-tp", "1", "--max-model-len", "auto", "--min-model-len",
                   "300000")
    assert r.returncode == 1, r.stderr
    text = " ".join(r.stdout.split())
    assert "max_model_len 131072 < min_model_len 300000: the model's own max length is 131072" in text
    assert "from 131072 to 131072" not in text


@pytest.mark.parametrize("typed, release, spelling", [
    ("bf16", "0.10.2", "bfloat16"), ("fp16", "0.17.0", "float16"), ("BFloat16", "0.10.2", "bfloat16"),
])
def test_kv_dtype_spelling_hint_only_where_the_release_takes_it(typed, release, spelling):
    line = one_error_line(run_kvplan("estimate", "meta-llama/Llama-3.1-8B", "--kv-cache-dtype", typed, "--engine",
                                     f"vllm=={release}", "-c", "8192"))
    assert f"spells it {spelling}" not in line and f"write {spelling}" not in line
    assert "is not a KV-cache dtype vLLM takes; use one of auto, fp8, fp8_e4m3, fp8_e5m2, fp8_inc" in line
    assert line.endswith(f"(vLLM {release}'s --kv-cache-dtype values).")


@pytest.mark.parametrize("typed, release, spelling", [
    ("bf16", "0.11.0", "bfloat16"), ("fp16", "0.18.0", "float16"), ("BFloat16", "0.32.0", "bfloat16"),
])
def test_kv_dtype_spelling_hint_where_the_release_takes_it(typed, release, spelling):
    line = one_error_line(run_kvplan("estimate", "meta-llama/Llama-3.1-8B", "--kv-cache-dtype", typed, "--engine",
                                     f"vllm=={release}", "-c", "8192"))
    assert line.endswith(f"{spelling}.")
