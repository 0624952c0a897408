"""A 1-token prompt costs at least a batch-1 decode step less its cache read (plan/speed.py compute_ms' tile floor,
plan/prefill.py), by hand.

A prompt of one token runs the GEMMs of a batch-1 decode step: every weight matrix over one 16-row MMA tile. A
decode step at context C does that and also reads C tokens of cache and scores C keys; nothing else differs (the
same weights read, layers, all-reduces; under DP the same MoE gathers; under -dcp the same exchange, since vLLM runs
a 1-token MLA request down the decode path: mla_attention.py 0.32.0:2571-2578 with split_decodes_and_prefills,
v1/attention/backends/utils.py 0.32.0:838-843, threshold 1 at mla_attention.py :2265). So, for every model:

    ITL(batch 1, context C) - TTFT(1 token) = cache bytes of C tokens / bandwidth
                                              + decode attention FLOPs over C keys / (peak x gemm_efficiency)

Before session 75 a 1-token prompt was priced at prefill_efficiency (0.543 on H200, 2.5x decode's 0.2166) and, under
DP / EP or -dcp, without the MoE gathers or the exchange: DeepSeek-V3 tp 8 -dcp 8 on H200 read 7.85 ms TTFT against
14.55 ms ITL at 4,096 tokens.
"""

from __future__ import annotations

import pytest

from conftest import estimate_plan

C = 4096  # the decode step's context (--max-model-len)
BF16_PEAK = 989.4e12  # H100 SXM and H200 datasheets (dense, halved from the sparsity figures)

# (model, flags, cache bytes a token per GPU, decode attention FLOPs a key per GPU), each written out:
CASES = [
    # 32 layers x K and V x 8 KV heads x 128 x 2 B; 32 layers x 2 x 32 heads x (128 + 128)
    ("meta-llama/Llama-3.1-8B-Instruct", ("--gpu", "H200"), 32 * 2 * 8 * 128 * 2, 32 * 2 * 32 * 256),
    # tp 4: 2 of 8 KV heads a GPU over 80 layers; 64 / 4 = 16 query heads
    ("meta-llama/Llama-3.1-70B-Instruct", ("--gpu", "H200", "--tp", "4"), 80 * 2 * 2 * 128 * 2, 80 * 2 * 16 * 256),
    # tp 2: 4 of 8 KV heads over 32 layers; 16 query heads
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", ("--gpu", "H200", "--tp", "2"), 32 * 2 * 4 * 128 * 2,
     32 * 2 * 16 * 256),
    # 48 layers, 4 KV heads, 32 query heads
    ("Qwen/Qwen3-30B-A3B", ("--gpu", "H200"), 48 * 2 * 4 * 128 * 2, 48 * 2 * 32 * 256),
    # DP 2 x EP over tp 2: 2 KV heads, 16 query heads a GPU
    ("Qwen/Qwen3-30B-A3B", ("--gpu", "H100", "--tp", "2", "-dp", "2", "-ep"), 48 * 2 * 2 * 128 * 2,
     48 * 2 * 16 * 256),
    # MLA, latent 512 + rope 64 on every rank; absorbed decode: 128 / 8 = 16 heads x (576 scored + 512 summed)
    ("deepseek-ai/DeepSeek-V3", ("--gpu", "H200", "--tp", "8"), 61 * 576 * 2, 61 * 2 * 16 * (576 + 512)),
]


def _itl_less_ttft(model: str, flags: tuple, context: int, per_token: int, per_key: float) -> tuple:
    plan = estimate_plan(model, *flags, "--max-model-len", str(C), "--input-len", "1")
    constants = plan["decode"]["constants"]
    bandwidth, efficiency = constants["bandwidth_bytes_per_s"], constants["gemm_efficiency"]
    by_hand = (context * per_token / bandwidth + context * per_key / (BF16_PEAK * efficiency)) * 1e3
    return plan["decode"]["points"][0]["itl_ms"] - plan["prefill"]["ttft_ms"], by_hand, plan


@pytest.mark.parametrize("model,flags,per_token,per_key", CASES, ids=[f"{m} {' '.join(f)}" for m, f, *_ in CASES])
def test_a_one_token_prompt_is_a_decode_step_less_its_cache(model, flags, per_token, per_key):
    gap, by_hand, plan = _itl_less_ttft(model, flags, C, per_token, per_key)
    assert abs(gap - by_hand) < 1e-9 * plan["decode"]["points"][0]["itl_ms"]
    assert plan["prefill"]["ttft_ms"] >= plan["decode"]["points"][0]["itl_ms"] - by_hand


def test_deepseek_v3_dcp8_one_token_prompt_pays_the_decode_exchange():
    """-dcp 8: a GPU reads ceil(4,096 / 8) = 512 tokens of the latent cache, and its decode attention runs the 8 x 16
    = 128 query heads its DCP group gathers over them; the three collectives a layer are in both."""
    flags = ("--gpu", "H200", "--tp", "8", "-dcp", "8")
    gap, by_hand, plan = _itl_less_ttft("deepseek-ai/DeepSeek-V3", flags, C // 8, 61 * 576 * 2,
                                        61 * 2 * 128 * (576 + 512))
    assert abs(gap - by_hand) < 1e-9 * plan["decode"]["points"][0]["itl_ms"]
    assert plan["prefill"]["ttft_ms"] > 14  # 7.85 ms before: 3 x 61 calls x log2(8) x 11.64 us = 6.39 ms were missing


def test_llama_8b_one_token_prompt_pays_a_tile_at_decode_efficiency():
    """Llama-3.1-8B on H200: the weight matrices hold 32 x (2 x 4,096^2 + 2 x 4,096 x 1,024 + 3 x 4,096 x 14,336)
    + 128,256 x 4,096 (the LM head) = 7,504,658,432 parameters; one 16-row tile through them is 2 x 16 x that =
    240,149,069,824 FLOPs = 1.120600 ms at 989.4 TFLOPS x 0.2166. Before: the same FLOPs (and one key's attention)
    at x 0.543 = 0.447002 ms, so 5.164 ms -> 5.838 ms (the long prompts' efficiency refit aside: the tile term only)."""
    params = 32 * (2 * 4096 ** 2 + 2 * 4096 * 1024 + 3 * 4096 * 14336) + 128256 * 4096
    assert params == 7_504_658_432
    tile_ms = 2 * 16 * params / (BF16_PEAK * 0.2166) * 1e3
    assert abs(tile_ms - 1.120600) < 1e-6
    one = estimate_plan("meta-llama/Llama-3.1-8B-Instruct", "--gpu", "H200", "--max-model-len", str(C),
                        "--input-len", "1")["prefill"]
    two = estimate_plan("meta-llama/Llama-3.1-8B-Instruct", "--gpu", "H200", "--max-model-len", str(C),
                        "--input-len", "2")["prefill"]
    assert round(one["ttft_ms"], 3) == 5.838
    # a second token is a second row of the same tile (and a few keys) under the floor: the same time
    assert two["ttft_ms"] == one["ttft_ms"]


def test_long_prompts_keep_prefill_efficiency():
    """At 8,192 tokens the chunk's FLOPs at prefill_efficiency are far above the tile's at decode's: the floor does not
    bind, and TTFT moved only by H200's refitted prefill_efficiency (0.5430 -> 0.5445): 250.34 -> 249.66 ms."""
    plan = estimate_plan("meta-llama/Llama-3.1-8B-Instruct", "--gpu", "H200", "--max-model-len", "32768",
                         "--input-len", "8192")
    assert round(plan["prefill"]["ttft_ms"], 2) == 249.66


def test_a_dcp_refusal_reads_in_json_as_any_configuration_refusal():
    """Llama-3.1-70B has 8 KV heads: at tp 8 vLLM 0.32.0 refuses any -dcp > 1 (vllm_dcp.heads_refusal); a 1M max len
    is refused past the model's 131,072 positions. Both take one path (vllm.py: the refusal in Startup, no profile):
    no request held, every decode point fits=false, the times still given for what the configuration would cost."""
    dcp = estimate_plan("meta-llama/Llama-3.1-70B-Instruct", "--gpu", "H200", "--tp", "8", "-dcp", "2")
    long = estimate_plan("meta-llama/Llama-3.1-70B-Instruct", "--gpu", "H200", "--tp", "8", "-c", "1000000")
    for plan in (dcp, long):
        assert plan["engine"]["starts"] is False and plan["engine"]["refusal"]["configuration"] is True
        assert plan["max_concurrency"] == 0 and plan["fits"] is False
        assert [p["fits"] for p in plan["decode"]["points"]] == [False]
        assert plan["prefill"]["ttft_ms"] > 0
    assert dcp["engine"]["refusal"]["field"] == "dcp" and long["engine"]["refusal"]["field"] == "context"
