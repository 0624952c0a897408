"""vLLM's -pcp / --prefill-context-parallel-size (engines/vllm_pcp.py), by hand from the wheels 0.11.2-0.34.0:

- world_size = pp x tp x pcp (config/parallel.py 0.32.0:945-948): DeepSeek-V3 tp 8 -pcp 2 takes 16 GPUs;
- the cache: the scheduler's block is block x dcp (single_type_kv_cache_manager.py 0.32.0:106-108), PCP-only
  "replicates the KV cache" (config/parallel.py 0.32.0:627-639): per-GPU blocks / tokens / concurrency as pcp 1's
  for the same budget;
- the routed experts flatten over TP x DP x PCP (fused_moe/config.py 0.32.0:1097-1104): at tp 8 -pcp 2 each GPU holds
  1/16 of them. DeepSeek-V3's routed experts by hand: 58 MoE layers x 256 experts x 3 matrices of 7,168 x 2,048 fp8
  (14,680,064 B) plus one float32 scale a 128 x 128 block (896 x 4 = 3,584 B) = 44,050,944 B an expert,
  654,084,415,488 B in all: 81,760,551,936 B a GPU at tp 8, 40,880,275,968 B at T x P = 16: the budget gains the
  difference, 40.88 GB (kvplan's bytes are estimated from the config, within 0.01%);
- the start refusals by release (vLLM's words), bad input where kvplan does not plan it.
"""

from __future__ import annotations

import json

from conftest import deployments_file, estimate_plan, one_error_line, run_kvplan

DSV3 = "deepseek-ai/DeepSeek-V3"
LLAMA70 = "meta-llama/Llama-3.1-70B-Instruct"
H200 = ("--gpu", "H200", "-tp", "8", "--max-model-len", "131072")
PAGE = 16 * 61 * (512 + 64) * 2  # a 16-token block: MLA latent + rope, bf16, 61 layers = 1,124,352 B
HALF_THE_EXPERTS = 654_084_415_488 // 16  # what leaves each GPU when the experts split 16 ways, not 8


def test_before_pcp_1_is_the_plain_plan():
    """-pcp 1 plans as without it, and the JSON gains no key (before: -pcp 2 was bad input, kvplan 0.73)."""
    plan = estimate_plan(DSV3, *H200, "-pcp", "1")
    assert plan == estimate_plan(DSV3, *H200) and "pcp" not in plan
    assert plan["engine"]["num_gpu_blocks"] == 43_179  # 48,549,043,165 B // 1,124,352 B


def test_deepseek_v3_tp8_pcp2_on_h200_capacity_by_hand():
    """DeepSeek-V3 H200 tp 8 at 131,072 on vLLM 0.32.0, -pcp 2: the same pages, budget up by half the experts."""
    one, two = estimate_plan(DSV3, *H200), estimate_plan(DSV3, *H200, "-pcp", "2")
    gained = two["engine"]["available_kv_cache_bytes"] - one["engine"]["available_kv_cache_bytes"]
    shed = one["budget"]["weights_bytes_per_gpu"] - two["budget"]["weights_bytes_per_gpu"]
    # the graphs and reserves are pcp 1's; the profile peak grows, the MoE layers running both ranks' dummy rows
    # (test_pcp_speed_s75.py test_profile_run_gathers_the_pcp_ranks)
    grown = two["budget"]["activation_bytes"] - one["budget"]["activation_bytes"]
    assert gained == shed - grown and grown > 0
    assert abs(shed - HALF_THE_EXPERTS) < 1e-4 * HALF_THE_EXPERTS
    available = two["engine"]["available_kv_cache_bytes"]  # 87,328,199,911 B = 81.33 GiB
    blocks = available // PAGE
    assert two["engine"]["num_gpu_blocks"] == blocks == 77_669
    assert two["engine"]["gpu_kv_cache_tokens"] == blocks * 16 == 1_242_704
    assert two["engine"]["max_concurrency"] == blocks / (131_072 // 16)  # 9.481x: the cache is replicated over PCP
    assert two["max_concurrency"] == 9 and one["max_concurrency"] == 5
    assert two["kv_bytes_per_sequence_per_gpu"] == one["kv_bytes_per_sequence_per_gpu"] == 8_192 * PAGE
    assert "GPU KV cache size: 1,242,704 tokens, Maximum concurrency for 131,072 tokens per request: 9.48x" \
        in two["engine"]["log_lines"]


def test_json_key_after_pp_and_speed_priced():
    plan = estimate_plan(DSV3, *H200, "-pcp", "2")
    keys = list(plan)
    assert plan["pcp"] == 2 and keys.index("pcp") == keys.index("pp") + 1
    assert plan["decode"] is not None and plan["prefill"] is not None  # priced from 0.32 (test_pcp_speed_s74.py)


def test_header_names_the_gpus():
    out = " ".join(run_kvplan("estimate", DSV3, *H200, "-pcp", "2").stdout.split())  # the table wraps at 80
    assert "--tensor-parallel-size 8, --prefill-context-parallel-size 2 (16 GPUs):" in out
    # 0.27-0.31 say how they decode (test_pcp_speed_s75.py prices them)
    older = " ".join(run_kvplan("estimate", DSV3, *H200, "-pcp", "2", "--engine", "vllm==0.31.0").stdout.split())
    assert "--prefill-context-parallel-size: vLLM 0.27-0.31 run every decode request on every PCP rank" in older
    assert "not estimated" not in older


def _refusal(*args) -> str:
    plan = estimate_plan(*args)
    assert plan["max_concurrency"] == 0
    return plan["engine"]["refusal"]["reason"]


def test_refusals_by_release():
    """0.12.0 config/parallel.py:315-319; 0.13-0.25 cp_utils.py (0.20.0's FlashAttnMLAImpl, bf16 on Hopper);
    0.27-0.29 pcp_manager.py: full graphs (default FULL_AND_PIECEWISE), PP; config/parallel.py: DP."""
    assert "ValueError: Prefill context parallelism is not fully supported. Please set " \
           "prefill_context_parallel_size to 1." in _refusal(DSV3, *H200, "-pcp", "2", "--engine", "vllm==0.12.0")
    assert "AssertionError: PCP requires attention impls' support, but the impl FlashAttnMLAImpl does not support " \
           "PCP." in _refusal(DSV3, *H200, "-pcp", "2", "--engine", "vllm==0.20.0")
    assert "NotImplementedError: MRV2 PCP supports PIECEWISE CUDA graphs only." \
           in _refusal(DSV3, *H200, "-pcp", "2", "--engine", "vllm==0.28.0")
    eager = estimate_plan(DSV3, *H200, "-pcp", "2", "--engine", "vllm==0.28.0", "--enforce-eager")
    assert eager["engine"]["refusal"] is None and eager["max_concurrency"] == 9
    assert "MRV2 PCP does not support PP yet." in _refusal(DSV3, "--gpu", "H200", "-tp", "8", "-pp", "2", "-pcp",
                                                           "2", "--engine", "vllm==0.28.0", "--enforce-eager")
    assert "ValueError: PCP does not support data parallelism yet." \
           in _refusal(DSV3, *H200, "-pcp", "2", "--engine", "vllm==0.28.0", "--data-parallel-size", "2")
    assert estimate_plan(DSV3, *H200, "-pcp", "2", "--engine", "vllm==0.30.0")["max_concurrency"] == 9


def test_gqa_model_refused():
    """Llama-3.1-70B (GQA): only MLAAttentionImpl supports PCP (v1/attention/backend.py 0.32.0:1025)."""
    reason = _refusal(LLAMA70, *H200, "-pcp", "2")
    assert "NotImplementedError: MRV2 PCP currently supports MLA models only." in reason


def test_bad_input_one_line():
    cases = {("-pcp", "0"): "must be a whole number of prefill-context-parallel ranks",
             ("-pcp", "2", "--engine", "vllm==0.11.0"): "-pcp needs vLLM 0.12 or later",
             ("-pcp", "2", "--engine", "vllm==0.26.0"): "-pcp is not modelled on vLLM 0.26",
             ("-pcp", "2", "-dcp", "2"): "-pcp with -dcp 2 is not modelled"}
    for args, words in cases.items():
        result = run_kvplan("estimate", DSV3, *H200, *args)
        assert result.returncode == 2 and words in one_error_line(result), (args, result.stderr)


def test_check_and_api_carry_pcp(tmp_path):
    from kvplan import api

    body = f"  - name: a\n    model: {DSV3}\n    gpu: H200\n    tp: 8\n    context: 131072\n    pcp: 2\n"
    result = run_kvplan("check", "--file", deployments_file(tmp_path, body), "--format", "json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["results"]
    assert row["pcp"] == 2 and row["max_concurrency"] == 9
    (plan,) = api.estimate(DSV3, gpu="H200", tensor_parallel_size=8, max_model_len=131072,
                           prefill_context_parallel_size=2)
    assert (plan.pcp, plan.max_concurrency) == (2, 9)
