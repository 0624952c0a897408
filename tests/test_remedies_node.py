"""Capacity remedies keep a tensor-parallel group within one node (plan.fitting_remedies, plan.Reach): the TP search
stops at the GPUs one TP group spans over one fabric (catalog GPU.node_gpus); where no TP degree within it holds the
target at the asked KV dtype, nor fp8 KV alone, the smallest degree within it that holds it with fp8 is offered ("tp 8
and kv_dtype fp8"); where even that fails, the cheapest tp x pp shape (plan.staged_remedy: every TP degree the heads
allow within the node, every pipeline degree, the asked KV dtype and fp8; plan.staged_cost: fewest nodes, then within
one node fewest GPUs, across nodes the asked dtype and fewest stages), saying first that nothing within one node does
where that shape spans more.

Every expectation is derived by hand below and then followed through kvplan itself: the remedy, applied literally,
passes `check`, and the next cheaper shape fails it.

vLLM 0.32.0 docs/serving/parallelism_scaling.md read by hand: :8 "Single-node multi-GPU using tensor parallel
inference ... set tensor_parallel_size=4 when using a node with 4 GPUs"; :9 "if the model is too large for a single
node, combine tensor parallelism with pipeline parallelism. Set tensor_parallel_size to the number of GPUs per node
and pipeline_parallel_size to the number of nodes"; :122 the same as "the common practice".
vLLM 0.32.0 config/model.py:1557-1563 (verify_with_parallel_config): pp > 1 for a model whose class does not implement
SupportsPP raises "Pipeline parallelism is not supported for this model"; gemma3n_mm.py:575-576
Gemma3nForConditionalGeneration(nn.Module, SupportsMultiModal, SupportsTranscription) lacks it; deepseek_v4.py
0.20.0:1413 DeepseekV4ForCausalLM(nn.Module) lacks it, 0.21.0:1620 (nn.Module, SupportsPP) has it.

Config numbers (model_specs/*.yaml, bfloat16, head_dim 128 = hidden_size / num_attention_heads):
- Llama-3.1-8B: 32 layers, 8 KV heads. One token's K and V: 32 x 8 x 128 x 2 x 2 = 131,072 B (128 KiB); 16 GiB a
  131,072-token sequence at tp 1.
- Llama-3.1-70B: 80 layers, 8 KV heads: 80 x 8 x 128 x 2 x 2 = 327,680 B a token.
- Llama-3.1-405B: 126 layers, 128 heads, 8 KV heads: 126 x 8 x 128 x 2 x 2 = 516,096 B a token; past 8 GPUs each keeps
  one (replicated) KV head.
- DeepSeek-V2-Lite: 27 layers of MLA, one latent of kv_lora_rank 512 + qk_rope_head_dim 64 = 576 values a token a
  layer, the same on every TP rank: 27 x 576 x 2 = 31,104 B a token at any tp.
GPU memory as the catalog holds it x vLLM's default gpu_memory_utilization 0.92: H100 72.84 GiB, L40S 40.84, L4 20.29,
B200 164.08, GB200 169.57.
"""

from __future__ import annotations

import json

import pytest

import kvplan.plan.sharding as sharding
from kvplan.api import check, estimate
from kvplan.plan.catalog import GPU, find_gpu
from tests.conftest import run_kvplan

GiB, MiB = 2**30, 2**20
L8, L70, L405 = "meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-70B-Instruct", "meta-llama/Llama-3.1-405B"
V2_LITE = "deepseek-ai/DeepSeek-V2-Lite"
LONG = 131072
L8_TOKEN = 32 * 8 * 128 * 2 * 2  # layers x KV heads x head_dim x (K, V) x bf16 bytes
L70_TOKEN = 80 * 8 * 128 * 2 * 2
L405_TOKEN = 126 * 8 * 128 * 2 * 2
MLA_TOKEN = 27 * (512 + 64) * 2  # DeepSeek-V2-Lite: layers x latent values x bf16 bytes


def _plan(model: str, **keywords):
    (plan,) = estimate(model, max_model_len=LONG, **keywords)
    return plan


def _row(model: str, **keywords) -> dict:
    (row,) = check(model, max_model_len=keywords.pop("max_model_len", LONG), **keywords)
    return row


def _error(model: str, **keywords) -> str:
    (error,) = _row(model, **keywords)["errors"]
    return error


def _passes(model: str, **keywords) -> dict:
    row = _row(model, **keywords)
    assert row["passed"], row["errors"]
    return row


def _fails(model: str, **keywords) -> dict:
    row = _row(model, **keywords)
    assert not row["passed"]
    return row


# the node on the GPU catalog entry ----------------------------------------------------------------------------

@pytest.mark.parametrize("name, node", [("H100", 8), ("H200", 8), ("A100-80GB", 8), ("B200", 8), ("MI300X", 8),
                                        ("L40S", 8), ("H100-80GB-PCIe", 8), ("RTX-4090", 8), ("RTX-3090", 8),
                                        ("GH200", 4), ("GB200", 72)])
def test_each_gpu_names_the_gpus_one_tp_group_spans(name, node):
    """One rule (catalog NODE_GPUS): the GPUs one TP group spans over one fabric. 8-card GeForce servers are rented by
    the machine (one host's PCIe); a quad GH200 node links its four over NVLink; a GB200 NVL72 rack is one NVLink
    domain of 72."""
    assert find_gpu(name).node_gpus == node


def test_a_gpu_outside_the_catalog_gets_an_hgx_node_and_gpus_lists_it():
    assert GPU("NVIDIA Some Future GPU", 100 * GiB, 1e12).node_gpus == 8  # NVML-detected, not in the catalog
    rows = json.loads(run_kvplan("gpus", "--format", "json").stdout)["gpus"]
    assert {row["name"]: row["node_gpus"] for row in rows}["GB200"] == 72
    assert find_gpu("GB200").node_words() == "one GB200 NVL72 domain"
    assert find_gpu("H100").node_words() == "one H100-80GB-SXM node"


# a TP degree within the node, as before ----------------------------------------------------------------------

def test_llama_70b_at_tp_2_on_h100_still_gets_tp_4():
    """tp 2: 65.7 GiB of weights a GPU leave at most 72.84 - 65.7 = 7.1 GiB, under one 131,072-token sequence of
    4 KV heads a GPU (131,072 x 327,680 / 2 = 20 GiB); tp 4 halves both (32.9 GiB, 10 GiB), within one node."""
    plan = _plan(L70, gpu="H100", tensor_parallel_size=2)
    assert plan.kv_bytes_per_token == L70_TOKEN == 327_680
    assert plan.kv_bytes_per_sequence_per_gpu == LONG * L70_TOKEN // 2 == 20 * GiB
    assert plan.max_concurrency == 0 and not plan.fits
    assert plan.fitting_options[0] == (("tp", 4),) and plan.fits_with[0] == ("tp", 4)
    assert plan.suggestion().startswith("would fit with tensor_parallel_size 4 or max_model_len ")
    assert "node" not in plan.suggestion()
    followed = _plan(L70, gpu="H100", tensor_parallel_size=4)
    assert followed.fits and followed.kv_bytes_per_sequence_per_gpu == 10 * GiB


def test_a_fixed_budget_gets_tp_8_with_fp8():
    """1.5 GiB of KV a GPU: at tp 8 one KV head a GPU is 32 x 1 x 128 x 2 x 2 = 16 KiB a token, 2 GiB a sequence
    (too much); fp8 at tp 4 the same 2 GiB; tp 8 with fp8 1 GiB fits. As is, the longest length is 1.5 GiB / 128 KiB =
    12,288 tokens less vLLM's null block of 16: 12,272."""
    budget = dict(gpu="H100", kv_cache_memory_bytes="1536MiB")
    plan = _plan(L8, **budget)
    assert plan.kv_bytes_per_token == L8_TOKEN
    for cheaper in (dict(tensor_parallel_size=8), dict(tensor_parallel_size=4, kv_cache_dtype="fp8")):
        shorter = _plan(L8, **budget, **cheaper)
        assert shorter.kv_bytes_per_sequence_per_gpu == 2 * GiB and shorter.max_concurrency == 0
    assert plan.fitting_options == ((("tp", 8), ("kv_dtype", "fp8")), (("context", 12272),))
    assert plan.suggestion() == "would fit with tensor_parallel_size 8 and kv_cache_dtype fp8; or max_model_len 12272"
    followed = _plan(L8, **budget, tensor_parallel_size=8, kv_cache_dtype="fp8")
    assert followed.max_concurrency == 1 and followed.kv_bytes_per_sequence_per_gpu == GiB


def test_a_small_model_on_l40s_reaches_30_with_tp_8_and_fp8():
    """30 sequences of 131,072 tokens on L40S (40.84 GiB usable): tp 8 keeps one KV head a GPU, 2 GiB a bf16 sequence,
    60 GiB for 30; fp8 at tp 4 the same 2 GiB; either is past the whole usable memory. tp 8 with fp8 needs 30 GiB.
    The shorter length at tp 1: a KV budget of 26,116,933,089 B (25,531,743,794 with the 1.25 GiB graph term, plus
    585,189,295) makes 26,116,933,089 // (16 x 128 KiB) = 12,453 blocks; less the null block, 12,452 // 30 = 415
    blocks a sequence, 415 x 16 = 6,640 tokens."""
    error = _error(L8, gpu="L40S", tensor_parallel_size=1, min_concurrency=30)
    assert error.endswith("would fit with tensor_parallel_size 8 and kv_cache_dtype fp8; or max_model_len 6640.")
    for cheaper in (dict(tensor_parallel_size=8), dict(tensor_parallel_size=4, kv_cache_dtype="fp8")):
        assert _fails(L8, gpu="L40S", min_concurrency=30, **cheaper)["kv_bytes_per_sequence_per_gpu"] == 2 * GiB
    row = _passes(L8, gpu="L40S", tensor_parallel_size=8, kv_cache_dtype="fp8", min_concurrency=30)
    assert row["kv_bytes_per_sequence_per_gpu"] == LONG * 32 * 1 * 128 * 2 * 1 == GiB


def test_an_8_card_geforce_server_offers_tp_8():
    """RTX-4090 (an 8-card PCIe server): five sequences of 131,072 tokens at tp 8 keep one KV head a GPU, 2 GiB a
    sequence, 10 GiB for five; at tp 4 each takes 4 GiB and four fit: a KV budget of 17,755,263,216 B makes
    17,755,263,216 // (16 x 32 KiB) = 33,865 blocks, 33,864 // 8,192 = 4 sequences. (Four were asked until session
    67: with vLLM's graph term at 1.25 GiB, tp 4 had 32,749 blocks, three sequences.) The shorter length at tp 1:
    5,559,931,120 // (16 x 128 KiB) = 2,651 blocks, 2,650 // 5 = 530 blocks, 8,480 tokens."""
    error = _error(L8, gpu="RTX-4090", tensor_parallel_size=1, min_concurrency=5)
    assert error.endswith("would fit with tensor_parallel_size 8 or max_model_len 8480.")
    assert _fails(L8, gpu="RTX-4090", tensor_parallel_size=4, min_concurrency=5)["max_concurrency"] == 4
    row = _passes(L8, gpu="RTX-4090", tensor_parallel_size=8, min_concurrency=5)
    assert row["kv_bytes_per_sequence_per_gpu"] == LONG * 32 * 1 * 128 * 2 * 2 == 2 * GiB


def test_gb200_nvl72_allows_tp_16_where_a_b200_node_stops_at_8():
    """Llama-3.1-405B, 20 sequences of 131,072 tokens. tp 16 > 8 KV heads: each GPU keeps one (replicated) head, so
    a bf16 sequence stays 126 x 128 x 2 x 2 x 131,072 = 7.88 GiB and fp8 halves it to 3.94 GiB.
    GB200 (one NVLink domain of 72): tp 16 with fp8, within the domain; tp 8 with fp8 does not reach it.
    B200 (a node of 8): nothing within the node, so two nodes, and on them the widest TP in the asked dtype
    (staged_cost): tp 8 x pp 2, 63 layers of one KV head a GPU, 63 x 128 x 2 x 2 = 32,256 B a token, 3.94 GiB a
    sequence."""
    assert _fails(L405, gpu="GB200", tensor_parallel_size=8, kv_cache_dtype="fp8", min_concurrency=20)
    gb200 = _error(L405, gpu="GB200", tensor_parallel_size=8, min_concurrency=20)
    assert "would fit with tensor_parallel_size 16 and kv_cache_dtype fp8; or max_model_len " in gb200
    assert "NVL72" not in gb200  # a remedy within the domain: nothing to say about it
    row = _passes(L405, gpu="GB200", tensor_parallel_size=16, kv_cache_dtype="fp8", min_concurrency=20)
    assert row["kv_bytes_per_sequence_per_gpu"] == LONG * 126 * 128 * 2 == LONG * L405_TOKEN // 8 // 2
    b200 = _error(L405, gpu="B200", tensor_parallel_size=8, min_concurrency=20)
    assert "no tensor_parallel_size up to 8 (one B200 node) reaches it, even with kv_cache_dtype fp8; would fit " \
           "with max_model_len " in b200
    assert b200.endswith(" or pipeline_parallel_size 2.")
    row = _passes(L405, gpu="B200", tensor_parallel_size=8, pipeline_parallel_size=2, min_concurrency=20)
    assert row["kv_bytes_per_sequence_per_gpu"] == LONG * 63 * 128 * 2 * 2


# past the node: whole nodes at the node's TP, never tp 16 -------------------------------------------------------

def test_llama_405b_at_tp_8_on_h100_gets_two_nodes_at_tp_8_not_tp_16():
    """94.5 GiB of weights a GPU at tp 8 exceed the 72.84 GiB an H100 may use, whatever the KV dtype: no TP degree
    within one node of 8 holds the model. Two nodes do; on them the fewest stages, tp 8 x pp 2 (vLLM's advice: tp the
    GPUs of a node, pp the nodes): 63 layers a GPU, 47 GiB of weights, 63 x 128 x 2 x 2 = 32,256 B a token, 3.94 GiB a
    sequence. tp 4 x pp 3 takes the same two nodes with fewer GPUs and holds less (kvplan offered it for a while);
    kvplan used to offer tp 16 across the nodes."""
    plan = _plan(L405, gpu="H100", tensor_parallel_size=8)
    assert plan.kv_bytes_per_token == L405_TOKEN and not plan.fits and plan.budget.weights_exceed
    assert plan.fitting_options == ((("pp", 2),),)
    assert plan.suggestion() == ("no tensor_parallel_size up to 8 (one H100-80GB-SXM node) fits, even with "
                                 "kv_cache_dtype fp8; would fit with pipeline_parallel_size 2")
    row = _passes(L405, gpu="H100", tensor_parallel_size=8, pipeline_parallel_size=2, min_concurrency=1)
    assert row["kv_bytes_per_sequence_per_gpu"] == LONG * 63 * 128 * 2 * 2
    fewer = _passes(L405, gpu="H100", tensor_parallel_size=4, pipeline_parallel_size=3, min_concurrency=1)
    assert fewer["max_concurrency"] < row["max_concurrency"]
    _fails(L405, gpu="H100", tensor_parallel_size=8, kv_cache_dtype="fp8", min_concurrency=1)


def test_llama_405b_at_tp_1_gets_the_same_shape_in_json_and_text():
    plan = _plan(L405, gpu="H100")
    assert plan.fitting_options == ((("tp", 8), ("pp", 2)),)
    row = json.loads(run_kvplan("estimate", L405, "--gpu", "H100", "--format", "json").stdout)["plans"][0]
    assert row["suggestion"] == ("no --tensor-parallel-size up to 8 (one H100-80GB-SXM node) fits, even with "
                                 "--kv-cache-dtype fp8; would fit with --tensor-parallel-size 8 and "
                                 "--pipeline-parallel-size 2")
    text = " ".join(run_kvplan("estimate", L405, "--gpu", "H100").stdout.split())
    assert "split or shrink them: --tensor-parallel-size 8 and --pipeline-parallel-size 2, " in text
    assert "--tensor-parallel-size 16" not in text


def test_more_stages_with_fp8_beat_more_stages_alone():
    """Llama-3.1-405B at tp 8 x pp 2 on H100, 40 sequences (the search used to try only the asked dtype: pp 6, 48
    GPUs). tp 8 x pp 4 with fp8 (32 GPUs): 126 layers split 31,32,32,31, one KV head a GPU, 32 x 128 x 2 x 1 = 8 KiB a
    token, 1 GiB a sequence. Cheaper: tp 8 x pp 3 with fp8 (42 layers, 24 GPUs) and tp 4 x pp 7 with fp8 (28 GPUs)
    fall short; tp 8 x pp 4 in bf16 (2 GiB a sequence) too. With vLLM's 0.705 GiB graph term: tp 8 x pp 3 with fp8,
    the tighter stage's 41,176,849,997 B // (16 x 10,752) = 239,355 blocks, 239,354 // 8,192 = 29 sequences; the
    shorter length at tp 8 x pp 2, 24,440,195,319 // (16 x 32,256) = 47,355 blocks, 47,354 // 40 = 1,183 blocks a
    sequence, 18,928 tokens."""
    error = _error(L405, gpu="H100", tensor_parallel_size=8, pipeline_parallel_size=2, min_concurrency=40)
    assert error.endswith("no tensor_parallel_size up to 8 (one H100-80GB-SXM node) reaches it, even with "
                          "kv_cache_dtype fp8; would fit with max_model_len 18928; or pipeline_parallel_size 4 and "
                          "kv_cache_dtype fp8.")
    row = _passes(L405, gpu="H100", tensor_parallel_size=8, pipeline_parallel_size=4, kv_cache_dtype="fp8",
                  min_concurrency=40)
    assert row["kv_bytes_per_sequence_per_gpu"] == LONG * 32 * 1 * 128 * 2 * 1 == GiB
    assert _fails(L405, gpu="H100", tensor_parallel_size=8, pipeline_parallel_size=3, kv_cache_dtype="fp8",
                  min_concurrency=40)["max_concurrency"] == 29
    _fails(L405, gpu="H100", tensor_parallel_size=4, pipeline_parallel_size=7, kv_cache_dtype="fp8", min_concurrency=40)
    _fails(L405, gpu="H100", tensor_parallel_size=8, pipeline_parallel_size=4, min_concurrency=40)


def test_mla_latents_shrink_with_stages_not_tp():
    """DeepSeek-V2-Lite on L4, 40 sequences of 131,072 tokens. The latent is on every TP rank: 31,104 B a token at tp 1
    and at tp 8 alike, so no TP degree helps, and the old search (stages at tp 8 only) said nothing reaches it. With
    stages: pp 7 splits the 27 layers 4,4,4,4,4,4,3, and in fp8 4 x 576 x 1 = 2,304 B a token, 288 MiB a sequence;
    7 L4s, one node, so the text says nothing about nodes. pp 6 (5 layers on its tightest stages, 5 x 576 x 1 x 16 =
    46,080 B a block) holds 14,672,055,287 // 46,080 = 318,403 blocks, 318,402 // 8,192 = 38 sequences; pp 7 in bf16
    (4 x 576 x 2 x 16 = 73,728 B a block) 15,393,387,852 // 73,728 = 208,786 blocks, 25 sequences."""
    for tp in (1, 8):
        assert _plan(V2_LITE, gpu="L4", tensor_parallel_size=tp).kv_bytes_per_sequence_per_gpu == LONG * MLA_TOKEN
    error = _error(V2_LITE, gpu="L4", tensor_parallel_size=1, min_concurrency=40)
    assert error.endswith("; would fit with pipeline_parallel_size 7 and kv_cache_dtype fp8.")
    assert "tensor_parallel_size up to" not in error and "node" not in error
    row = _passes(V2_LITE, gpu="L4", tensor_parallel_size=1, pipeline_parallel_size=7, kv_cache_dtype="fp8",
                  min_concurrency=40)
    assert row["kv_bytes_per_sequence_per_gpu"] == LONG * 4 * 576 * 1 == 288 * MiB
    assert _fails(V2_LITE, gpu="L4", tensor_parallel_size=1, pipeline_parallel_size=6, kv_cache_dtype="fp8",
                  min_concurrency=40)["max_concurrency"] == 38
    assert _fails(V2_LITE, gpu="L4", tensor_parallel_size=1, pipeline_parallel_size=7,
                  min_concurrency=40)["max_concurrency"] == 25


def test_64_sequences_on_l40s_need_16_gpus():
    """64 sequences of 131,072 tokens on L40S: tp 8 with fp8 is 1 GiB a sequence, 64 GiB, past the 40.84 GiB usable.
    tp 8 x pp 2 with fp8 keeps 16 layers a GPU: 16 x 1 x 128 x 2 x 1 = 4 KiB a token, 512 MiB a sequence, 32 GiB for
    64 (kvplan used to offer tp 8 x pp 4 in bf16, 32 GPUs). 12 GPUs, tp 4 x pp 3 with fp8 (11 layers of 2 heads: 704
    MiB), hold 55 (stage 0: 41,010,160,353 B // 90,112 = 455,102 blocks, 455,101 // 8,192); tp 8 x pp 2 in bf16 (1
    GiB) 38 (41,290,225,121 // 131,072 = 315,019 blocks). The shorter length at tp 1: 26,116,933,089 // 2 MiB =
    12,453 blocks, 12,452 // 64 = 194 blocks a sequence, 3,104 tokens."""
    error = _error(L8, gpu="L40S", tensor_parallel_size=1, min_concurrency=64)
    assert error.endswith("no tensor_parallel_size up to 8 (one L40S node) reaches it, even with kv_cache_dtype fp8; "
                          "would fit with max_model_len 3104; or tensor_parallel_size 8 and pipeline_parallel_size 2 "
                          "and kv_cache_dtype fp8.")
    row = _passes(L8, gpu="L40S", tensor_parallel_size=8, pipeline_parallel_size=2, kv_cache_dtype="fp8",
                  min_concurrency=64)
    assert row["kv_bytes_per_sequence_per_gpu"] == LONG * 16 * 1 * 128 * 2 * 1 == 512 * MiB
    assert _fails(L8, gpu="L40S", tensor_parallel_size=4, pipeline_parallel_size=3, kv_cache_dtype="fp8",
                  min_concurrency=64)["kv_bytes_per_sequence_per_gpu"] == LONG * 11 * 2 * 128 * 2 * 1
    assert _fails(L8, gpu="L40S", tensor_parallel_size=8, pipeline_parallel_size=2,
                  min_concurrency=64)["kv_bytes_per_sequence_per_gpu"] == GiB


def test_gb200_stages_within_the_nvl72_domain():
    """Llama-3.1-405B at tp 8 on GB200, 150 sequences (the old search tried tp 64, the widest, and 64 // 64 = 1 stage:
    only a shorter context). tp 4 x pp 9 with fp8, 36 GPUs within one NVLink domain of 72: 14 layers of 2 KV heads,
    14 x 2 x 128 x 2 x 1 = 7 KiB a token, 896 MiB a sequence, 131.25 GiB for 150. The 32-GPU shapes keep 16 layers of 2
    heads or 32 of 1 (1 GiB a sequence, 128 KiB a block) and hold 141 (tp 4 x pp 8: 152,212,615,078 B // 128 KiB =
    1,161,290 blocks, 1,161,289 // 8,192) and 142 (tp 8 x pp 4: 152,941,371,237 B, 1,166,850 blocks); tp 1 x pp 35 with
    fp8 (4 layers of 8 heads, 1 GiB) 137. The shorter length at tp 8: 76,934,586,343 // (16 x 64,512) = 74,535
    blocks, 74,534 // 150 = 496 blocks a sequence, 7,936 tokens."""
    error = _error(L405, gpu="GB200", tensor_parallel_size=8, min_concurrency=150)
    assert error.endswith("would fit with max_model_len 7936; or tensor_parallel_size 4 and pipeline_parallel_size 9 "
                          "and kv_cache_dtype fp8.")
    assert "node" not in error and "domain" not in error
    row = _passes(L405, gpu="GB200", tensor_parallel_size=4, pipeline_parallel_size=9, kv_cache_dtype="fp8",
                  min_concurrency=150)
    assert row["kv_bytes_per_sequence_per_gpu"] == LONG * 14 * 2 * 128 * 2 * 1 == 896 * MiB
    for tp, pp, held in ((4, 8, 141), (8, 4, 142)):
        assert _fails(L405, gpu="GB200", tensor_parallel_size=tp, pipeline_parallel_size=pp, kv_cache_dtype="fp8",
                      min_concurrency=150)["max_concurrency"] == held
    assert _fails(L405, gpu="GB200", tensor_parallel_size=1, pipeline_parallel_size=35, kv_cache_dtype="fp8",
                  min_concurrency=150)["max_concurrency"] == 137


def test_past_the_nvl72_domain_the_text_names_the_domain():
    """400 sequences: past one domain, so two, and on them the fewest stages with fp8 (bf16 falls short even at tp 8 x
    pp 18, all 144 GPUs): tp 8 x pp 11, 12 layers of one KV head a GPU, 12 x 128 x 2 x 1 = 3 KiB a token, 384 MiB a
    sequence; pp 10 (13 layers, 416 MiB) and tp 16 x pp 9 (14 layers, heads replicated past 8: 448 MiB) fall short."""
    error = _error(L405, gpu="GB200", tensor_parallel_size=8, min_concurrency=400)
    assert "no tensor_parallel_size up to 72 (one GB200 NVL72 domain) reaches it, even with kv_cache_dtype fp8" in error
    assert error.endswith("; or pipeline_parallel_size 11 and kv_cache_dtype fp8.")
    row = _passes(L405, gpu="GB200", tensor_parallel_size=8, pipeline_parallel_size=11, kv_cache_dtype="fp8",
                  min_concurrency=400)
    assert row["kv_bytes_per_sequence_per_gpu"] == LONG * 12 * 128 * 2 * 1 == 384 * MiB
    for tp, pp, layers in ((8, 10, 13), (16, 9, 14)):
        assert _fails(L405, gpu="GB200", tensor_parallel_size=tp, pipeline_parallel_size=pp, kv_cache_dtype="fp8",
                      min_concurrency=400)["kv_bytes_per_sequence_per_gpu"] == LONG * layers * 128 * 2 * 1
    assert not _row(L405, gpu="GB200", tensor_parallel_size=8, pipeline_parallel_size=18, min_concurrency=400)["passed"]


def test_an_asked_tp_past_the_node_is_said_and_the_stages_keep_tp_within_it():
    """Llama-3.1-405B at tp 16 on H100, 40 sequences: tp 16 spans two nodes already, so "no tp up to 8 reaches it"
    would be false; the remedy is tp 8 x pp 4 with fp8 (1 GiB a sequence, 46 held: 50,248,550,517 B // 128 KiB =
    383,366 blocks on a 32-layer stage, 383,365 // 8,192), never a TP group past 8. The shorter length at tp 16 (one
    replicated head a GPU, 64,512 B a token): 24,356,358,391 // (16 x 64,512) = 23,596 blocks, 23,595 // 40 = 589
    blocks a sequence, 9,424 tokens."""
    _fails(L405, gpu="H100", tensor_parallel_size=16, kv_cache_dtype="fp8", min_concurrency=40)
    error = _error(L405, gpu="H100", tensor_parallel_size=16, min_concurrency=40)
    assert "tensor_parallel_size 16 spans more than one H100-80GB-SXM node (8 GPUs), and kv_cache_dtype fp8 alone " \
           "falls short; would fit with max_model_len 9424; or tensor_parallel_size 8 and pipeline_parallel_size 4 " \
           "and kv_cache_dtype fp8." in error
    assert "up to 8" not in error
    assert _passes(L405, gpu="H100", tensor_parallel_size=8, pipeline_parallel_size=4, kv_cache_dtype="fp8",
                   min_concurrency=40)["max_concurrency"] == 46


# heads that allow no wider TP -------------------------------------------------------------------------------------

H11 = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu", "hidden_size": 11 * 128,
       "intermediate_size": 5632, "max_position_embeddings": LONG, "num_attention_heads": 11, "num_hidden_layers": 24,
       "num_key_value_heads": 11, "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "tie_word_embeddings": False,
       "torch_dtype": "bfloat16", "vocab_size": 32000}


def test_eleven_heads_allow_no_tp_above_1(write_config):
    """11 attention heads (prime): no tp from 2 to 8 divides them. One token a layer: 11 x 128 x 2 x 1 = 2,816 B in fp8.
    30 sequences of 131,072 tokens need 1 layer a GPU in fp8 (352 MiB a sequence, 10.3 GiB): pp 24, one per layer;
    from 13 to 23 stages one stage holds 2 (704 MiB, 20.6 GiB for 30, past the L4's budget), as does pp 24 in bf16.
    The shorter length at tp 1 (24 x 11 x 128 x 2 x 2 = 135,168 B a token): 18,647,725,985 // (16 x 135,168) = 8,622
    blocks, 8,621 // 30 = 287 blocks a sequence, 4,592 tokens."""
    model = str(write_config(H11))
    error = _error(model, gpu="L4", tensor_parallel_size=1, min_concurrency=30)
    assert "the 11 attention heads allow no tensor_parallel_size above 1 within one L4 node, and kv_cache_dtype fp8 " \
           "alone falls short; would fit with max_model_len 4592; or pipeline_parallel_size 24 and kv_cache_dtype " \
           "fp8." in error
    assert "tensor_parallel_size up to" not in error
    row = _passes(model, gpu="L4", tensor_parallel_size=1, pipeline_parallel_size=24, kv_cache_dtype="fp8",
                  min_concurrency=30)
    assert row["kv_bytes_per_sequence_per_gpu"] == LONG * 1 * 11 * 128 * 2 * 1 == 352 * MiB
    assert _fails(model, gpu="L4", tensor_parallel_size=1, pipeline_parallel_size=23, kv_cache_dtype="fp8",
                  min_concurrency=30)["kv_bytes_per_sequence_per_gpu"] == 704 * MiB
    assert _fails(model, gpu="L4", tensor_parallel_size=1, pipeline_parallel_size=24,
                  min_concurrency=30)["kv_bytes_per_sequence_per_gpu"] == 704 * MiB


def test_eleven_heads_on_a_gpu_too_small_say_what_was_tried(write_config):
    model = str(write_config(H11))
    error = _error(model, gpu="L4", gpu_memory="2GiB", tensor_parallel_size=1, min_concurrency=30)
    assert error.endswith("the 11 attention heads allow no tensor_parallel_size above 1 within one L4 node; no "
                          "kv_cache_dtype fp8, tensor_parallel_size x pipeline_parallel_size up to 64 GPUs or shorter "
                          "max_model_len reaches it on this budget.")


def test_nothing_within_a_node_nor_across_eight_says_so_plainly():
    """A 12 GiB GPU of an H100 node: 11.04 GiB usable, and 64 GPUs (8 nodes: tp 8 x pp 8, or tp 1 x pp 64) leave 756.0
    / 64 = 11.8 GiB of weights on the average GPU: nothing the search may offer holds the weights."""
    for tp, pp in ((8, 8), (1, 64)):
        widest = _plan(L405, gpu="H100", gpu_memory="12GiB", tensor_parallel_size=tp, pipeline_parallel_size=pp)
        assert widest.max_concurrency == 0 and widest.kv_budget_bytes_per_gpu <= 0
    plan = _plan(L405, gpu="H100", gpu_memory="12GiB", tensor_parallel_size=8)
    assert plan.fitting_options == ()
    assert plan.suggestion() == ("no tensor_parallel_size up to 8 (one H100-80GB-SXM node), kv_cache_dtype fp8, "
                                 "tensor_parallel_size x pipeline_parallel_size up to 64 GPUs or shorter max_model_len "
                                 "makes it fit: the weights alone exceed the budget of one GPU")


def test_check_cli_keeps_its_exit_code_and_flag_names():
    r = run_kvplan("check", L8, "--gpu", "L40S", "-tp", "1", "-c", "131072", "--min-concurrency", "64",
                   "--format", "json")
    assert r.returncode == 1 and r.stderr == ""
    (finding,) = json.loads(r.stdout)["results"][0]["findings"]
    assert finding["key"] == "min_concurrency"
    assert "no --tensor-parallel-size up to 8 (one L40S node) reaches it, even with --kv-cache-dtype fp8; would " \
           "fit with --max-model-len 3104; or --tensor-parallel-size 8 and --pipeline-parallel-size 2 and " \
           "--kv-cache-dtype fp8." in finding["message"]


# models vLLM runs without pipeline parallelism (SupportsPP) -----------------------------------------------------

def test_gemma_3n_is_refused_pipeline_stages_on_the_pp_key():
    r = run_kvplan("check", "google/gemma-3n-E2B", "--gpu", "L4", "-tp", "1", "-pp", "2", "-c", "32768",
                   "--format", "json")
    assert r.returncode == 1
    (finding,) = json.loads(r.stdout)["results"][0]["findings"]
    assert finding["key"] == "pp"
    assert finding["message"] == ("--pipeline-parallel-size 2: vLLM 0.32.0 refuses pipeline parallelism for "
                                  "Gemma3nForConditionalGeneration: its model class does not implement SupportsPP "
                                  "(\"Pipeline parallelism is not supported for this model. Supported models "
                                  "implement the `SupportsPP` interface.\", config/model.py "
                                  "ModelConfig.verify_with_parallel_config); only --pipeline-parallel-size 1 starts.")
    assert _passes("google/gemma-3n-E2B", gpu="L4", tensor_parallel_size=1, max_model_len=32768)


def test_deepseek_v4_takes_stages_from_0_21_0_and_is_offered_none_before():
    """DeepSeek-V4-Flash at tp 4 on H100, 200 sequences of its 1,048,576 tokens: 0.21.0 offers tp 1 x pp 22 (337
    held; pp 21 holds 161); 0.20.0, whose DeepseekV4ForCausalLM lacks SupportsPP, refuses pp 2 and offers no stages,
    nor says it tried them. A request of 1,048,576 tokens asks 7,450 blocks to be admitted and keeps 4,118
    (vllm_admission.footprint). 0.21's block on a stage is the MLA group's distinct pages there (the whole group's
    where the stage holds none) times the most layers of one page in any group (engines/vllm_v4_pool.py "tuples"):
    pp 22's tightest stage holds layers 0 and 1, a window in each window group, (1,728 + 8,640 + 37,440) x 1 = 47,808
    B a block, 66,563,227,959 B, 1,392,303 blocks: (1,392,302 - 7,450) // 4,118 + 1 = 337; pp 21's holds layers 38-40
    (ratios 4, 128, 4: two windows in one window group, two of each ratio-4 page), 47,808 x 2 = 95,616 B a block,
    63,976,328,534 B, 669,096 blocks: (669,095 - 7,450) // 4,118 + 1 = 161. (Each budget holds the indexer's K gather,
    1,385,168,896 B at this length, in place of FlashMLA's 1,107,820,544: vllm_budget.v4_prefill_workspace; the
    Marlin experts' 805,306,368 B workspace, 6 x (4,096 + 4,096) x 2 B a token over 8,192, lies inside that one
    buffer, and is the forward's expert buffers, which the indexer's 536,870,912 B dummy logits now join in full
    where the forward counted the larger of them and the experts' three I-wide buffers, 603,979,776 B, before
    session 72: 67,108,864 B more budget, test_v4_mxfp4_s72.) 0.20.0's shorter length, each planned on the budget
    vLLM leaves at it (blocks of 1,051,776 B; test_remedy_length_s68 derives the blocks a request asks and keeps): at
    31,488 tokens 34,119,147,651 B, 32,439 blocks, 32,438 usable, a request asks 3,477 and keeps 145, (32,438 -
    3,477) // 145 + 1 = 200 held; from 31,489 to 31,744 it asks 3,478 and keeps 146 or more, 199 at most."""
    flash = "deepseek-ai/DeepSeek-V4-Flash"
    h100_fp8 = dict(gpu="H100", kv_cache_dtype="fp8")  # both releases refuse `auto` (test_v4_auto_dtype_s71)
    newer = _error(flash, engine="vllm==0.21.0", **h100_fp8, tensor_parallel_size=4, min_concurrency=200,
                   max_model_len=None)
    assert newer.endswith("; or tensor_parallel_size 1 and pipeline_parallel_size 22.")
    assert _passes(flash, engine="vllm==0.21.0", **h100_fp8, tensor_parallel_size=1, pipeline_parallel_size=22,
                   min_concurrency=200, max_model_len=None)["max_concurrency"] == 337
    assert _fails(flash, engine="vllm==0.21.0", **h100_fp8, tensor_parallel_size=1, pipeline_parallel_size=21,
                  min_concurrency=200, max_model_len=None)["max_concurrency"] == 161
    older = _error(flash, engine="vllm==0.20.0", **h100_fp8, tensor_parallel_size=4, min_concurrency=200,
                   max_model_len=None)
    assert older.endswith("no tensor_parallel_size up to 8 (one H100-80GB-SXM node) reaches it; would fit with "
                          "max_model_len 31488.")
    assert _passes(flash, engine="vllm==0.20.0", **h100_fp8, tensor_parallel_size=4, min_concurrency=200,
                   max_model_len=31488)["max_concurrency"] == 200
    refused = _fails(flash, engine="vllm==0.20.0", **h100_fp8, tensor_parallel_size=8, pipeline_parallel_size=2,
                     max_model_len=None)
    assert "vLLM 0.20.0 refuses pipeline parallelism for DeepseekV4ForCausalLM" in refused["errors"][0]
    nothing = _error(flash, engine="vllm==0.20.0", **h100_fp8, gpu_memory="20GiB", tensor_parallel_size=8,
                     min_concurrency=1, max_model_len=None)
    assert nothing.endswith("no tensor_parallel_size up to 8 (one H100-80GB-SXM node) or shorter max_model_len "
                            "reaches it on this budget.")


def test_a_pipeline_remedy_is_withdrawn_when_the_architecture_lacks_supports_pp(monkeypatch):
    """The same Llama-3.1-8B deployment that gets tp 8 x pp 2 with fp8 above, with its architecture marked as lacking
    SupportsPP: the remedy search offers no stages."""
    monkeypatch.setitem(sharding.NO_PIPELINE, "LlamaForCausalLM", ("", ""))
    error = _error(L8, gpu="L40S", tensor_parallel_size=1, min_concurrency=64)
    assert error.endswith("no tensor_parallel_size up to 8 (one L40S node) reaches it, even with kv_cache_dtype fp8; "
                          "would fit with max_model_len 3104.")


def test_weights_past_the_gpu_of_gemma_3n_get_no_stages():
    """Gemma 3n's 10.1 GiB of weights on a 3 GiB T4: the text splits or shrinks them without pipeline stages
    (Llama-3.1-70B on an L4 gets "--pipeline-parallel-size 8 or more": test_layout.py)."""
    text = " ".join(run_kvplan("estimate", "google/gemma-3n-E2B", "--gpu", "T4", "--gpu-memory", "3GiB",
                               "--max-model-len", "4096").stdout.split())
    assert "the weights alone do not fit at tp 1: 10.1 GiB per GPU" in text
    assert "split or shrink them: fp8 weights" in text and "--pipeline-parallel-size" not in text


def test_a_tp_group_that_does_not_divide_the_node_takes_a_node_of_its_own():
    """microsoft/phi-4 (40 heads, 10 KV heads: tp 1, 2 or 5) on L4s at 16K, 200 sequences with fp8. An 8-GPU node holds
    one TP group of 5, so tp 5 x pp 4 (222 held) takes 4 nodes, not ceil(20 / 8) = 3; tp 2 x pp 10 (218 held) takes
    ceil(10 / (8 // 2)) = 3, as tp 1 x pp 20 (210) does with twice the stages; tp 5 x pp 3 (157) and tp 2 x pp 9 (177)
    fall short. Each at 16 x layers x KV heads a GPU x 128 x 2 x 1 B a block, 1,024 blocks a sequence, on its
    tightest stage: tp 2 x pp 10 18,308,517,537 B // 81,920 = 223,492 blocks, 223,491 // 1,024 = 218; tp 5 x pp 4
    18,688,501,921 // 81,920 = 228,131, 222; tp 1 x pp 20 17,668,927,649 // 81,920 = 215,685, 210; tp 5 x pp 3 (14
    layers) 18,466,122,913 // 114,688 = 161,011, 157; tp 2 x pp 9 (5 layers) 18,595,284,385 // 102,400 = 181,594, 177.
    """
    from kvplan.plan.plan import staged_cost

    assert staged_cost(8, 5, 4, 1)[0] == 4 and staged_cost(8, 2, 10, 1)[0] == staged_cost(8, 1, 20, 1)[0] == 3
    assert staged_cost(8, 2, 10, 1) < staged_cost(8, 1, 20, 1) < staged_cost(8, 5, 4, 1)
    error = _error("microsoft/phi-4", gpu="L4", tensor_parallel_size=1, max_model_len=16384, min_concurrency=200)
    assert error.endswith("would fit with tensor_parallel_size 2 and pipeline_parallel_size 10 and kv_cache_dtype "
                          "fp8."), error
    held = {(tp, pp): _row("microsoft/phi-4", gpu="L4", tensor_parallel_size=tp, pipeline_parallel_size=pp,
                           kv_cache_dtype="fp8", max_model_len=16384, min_concurrency=200)["max_concurrency"]
            for tp, pp in ((2, 10), (5, 4), (1, 20), (5, 3), (2, 9))}
    assert held == {(2, 10): 218, (5, 4): 222, (1, 20): 210, (5, 3): 157, (2, 9): 177}


def test_architectures_without_supports_pp_in_0_34():
    """0.34.0's classes with no SupportsPP among their bases: alice_ai.py:581, domyn_edge.py:226, dory.py:283,
    zaya.py:536, models/mistral/mistral_large4/nvidia/model.py:449; Llama takes stages (llama.py: SupportsPP)."""
    from types import SimpleNamespace

    from kvplan.plan.sharding import pipeline_refusal

    for arch in ("AliceAIForCausalLM", "DomynEdgeForCausalLM", "DoryForCausalLM", "ZayaForCausalLM",
                 "MistralLarge4ForCausalLM"):
        assert "does not implement SupportsPP" in pipeline_refusal(SimpleNamespace(architecture=arch), "0.34.0")
    assert pipeline_refusal(SimpleNamespace(architecture="LlamaForCausalLM"), "0.34.0") == ""


def test_estimate_offers_no_stages_with_a_drafter():
    """kvplan places no drafter with pp (remedy_reach tries no stages): the weights line must not offer them either."""
    spec = '{"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_max": 4}'
    text = " ".join(run_kvplan("estimate", "meta-llama/Llama-3.1-70B-Instruct", "--gpu", "L4", "-c", "8192",
                               "--speculative-config", spec).stdout.split())
    assert "the weights alone do not fit" in text and "--pipeline-parallel-size" not in text, text
