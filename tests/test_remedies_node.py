"""Capacity remedies keep a tensor-parallel group within one node (plan.fitting_remedies, plan.Reach): the TP search
stops at the GPUs of one node of the GPU (catalog GPU.node_gpus); where no TP degree within it holds the target at
the asked KV dtype, nor fp8 KV alone, the smallest degree within it that holds it with fp8 is offered ("tp 8 and
kv_dtype fp8"); where even that fails the text says so plainly and offers the node's TP degree with the fewest
pipeline stages across nodes that do.

vLLM 0.32.0 docs/serving/parallelism_scaling.md read by hand: :8 "Single-node multi-GPU using tensor parallel
inference ... set tensor_parallel_size=4 when using a node with 4 GPUs"; :9 "if the model is too large for a single
node, combine tensor parallelism with pipeline parallelism. Set tensor_parallel_size to the number of GPUs per node
and pipeline_parallel_size to the number of nodes"; :122 the same as "the common practice".

Config numbers (model_specs/*.yaml, bfloat16, head_dim 128 = hidden_size / num_attention_heads):
- Llama-3.1-8B: 32 layers, 8 KV heads, 8,030,261,248 parameters in 16,060,522,496 bytes. One token's K and V:
  32 x 8 x 128 x 2 x 2 = 131,072 B (128 KiB); 16 GiB a 131,072-token sequence at tp 1.
- Llama-3.1-70B: 80 layers, 8 KV heads, 70,553,706,496 parameters: 80 x 8 x 128 x 2 x 2 = 327,680 B a token;
  weights 141.1e9 B = 131.4 GiB.
- Llama-3.1-405B: 126 layers, 128 heads, 8 KV heads, 405,853,388,800 parameters: 126 x 8 x 128 x 2 x 2 = 516,096 B a
  token; weights 811.7e9 B = 756.0 GiB, 94.5 GiB a GPU at tp 8.
GPU memory as the catalog holds it, x vLLM's default gpu_memory_utilization 0.92 = the most any budget can use:
H100 85,017,493,504 B (79.18 GiB) -> 72.84 GiB; L40S 44.39 GiB -> 40.84; B200 178.35 -> 164.08; GB200 184.32 ->
169.57; RTX-4090 23.58 -> 21.69.
"""

from __future__ import annotations

import json

import pytest

from kvplan.api import check, estimate
from kvplan.plan.catalog import GPU, find_gpu
from tests.conftest import run_kvplan

GiB = 2**30
L8, L70, L405 = "meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-70B-Instruct", "meta-llama/Llama-3.1-405B"
LONG = 131072
L8_TOKEN = 32 * 8 * 128 * 2 * 2  # layers x KV heads x head_dim x (K, V) x bf16 bytes
L70_TOKEN = 80 * 8 * 128 * 2 * 2
L405_TOKEN = 126 * 8 * 128 * 2 * 2
L405_WEIGHTS = 405_853_388_800 * 2
H100_USABLE = 85_017_493_504 * 0.92


def _plan(model: str, **keywords):
    (plan,) = estimate(model, max_model_len=LONG, **keywords)
    return plan


def _error(model: str, **keywords) -> str:
    (row,) = check(model, max_model_len=LONG, **keywords)
    (error,) = row["errors"]
    return error


def _passes(model: str, **keywords) -> dict:
    (row,) = check(model, max_model_len=LONG, **keywords)
    assert row["passed"], row["errors"]
    return row


# the node on the GPU catalog entry ----------------------------------------------------------------------------

@pytest.mark.parametrize("name, node", [("H100", 8), ("H200", 8), ("A100-80GB", 8), ("B200", 8), ("MI300X", 8),
                                        ("L40S", 8), ("H100-80GB-PCIe", 8), ("RTX-4090", 4), ("RTX-3090", 4),
                                        ("GH200", 4), ("GB200", 72)])
def test_each_gpu_names_the_gpus_of_one_node(name, node):
    assert find_gpu(name).node_gpus == node


def test_a_gpu_outside_the_catalog_gets_an_hgx_node_and_gpus_lists_it():
    assert GPU("NVIDIA Some Future GPU", 100 * GiB, 1e12).node_gpus == 8  # NVML-detected, not in the catalog
    rows = json.loads(run_kvplan("gpus", "--format", "json").stdout)["gpus"]
    assert {row["name"]: row["node_gpus"] for row in rows}["GB200"] == 72


# a TP degree within the node, as before ----------------------------------------------------------------------

def test_llama_70b_at_tp_2_on_h100_still_gets_tp_4():
    """tp 2: 65.7 GiB of weights a GPU leave at most 72.84 - 65.7 = 7.1 GiB, under one 131,072-token sequence of
    4 KV heads a GPU (131,072 x 327,680 / 2 = 20 GiB); tp 4 halves both (32.9 GiB, 10 GiB), within one node."""
    plan = _plan(L70, gpu="H100", tensor_parallel_size=2)
    assert plan.kv_bytes_per_token == L70_TOKEN == 327_680
    assert plan.kv_bytes_per_sequence_per_gpu == LONG * L70_TOKEN // 2 == 20 * GiB
    assert 70_553_706_496 * 2 / 2 + 20 * GiB > H100_USABLE  # tp 2 cannot hold one
    assert plan.fitting_options[0] == (("tp", 4),) and plan.fits_with[0] == ("tp", 4)
    assert plan.suggestion().startswith("would fit with tensor_parallel_size 4 or max_model_len ")
    assert "node" not in plan.suggestion()


# past the node: pipeline stages, never tp 16 ------------------------------------------------------------------

def test_llama_405b_at_tp_8_on_h100_gets_pp_2_not_tp_16():
    """94.5 GiB of weights a GPU at tp 8 exceed the 72.84 GiB an H100 may use, whatever the KV dtype: no TP degree
    within one node of 8 holds the model (kvplan used to say tp 16, a group across two hosts). At tp 8 x pp 2 a GPU
    holds 63 of the 126 layers: 47.2 GiB of weights and 63 x 1 x 128 x 2 x 2 = 32,256 B a token, 3.94 GiB a
    sequence."""
    assert L405_WEIGHTS / 8 > H100_USABLE
    plan = _plan(L405, gpu="H100", tensor_parallel_size=8)
    assert plan.kv_bytes_per_token == L405_TOKEN and not plan.fits
    assert plan.fitting_options == ((("pp", 2),),)
    assert plan.suggestion() == ("no tensor_parallel_size up to 8 (one H100-80GB-SXM node) fits, even with "
                                 "kv_cache_dtype fp8; would fit with pipeline_parallel_size 2")
    staged = _plan(L405, gpu="H100", tensor_parallel_size=8, pipeline_parallel_size=2)
    assert staged.kv_bytes_per_sequence_per_gpu == LONG * 63 * 128 * 2 * 2 and staged.max_concurrency >= 1


def test_llama_405b_at_tp_1_gets_the_node_with_pp_2_in_json_and_text():
    plan = _plan(L405, gpu="H100")
    assert plan.fitting_options == ((("tp", 8), ("pp", 2)),)
    row = json.loads(run_kvplan("estimate", L405, "--gpu", "H100", "--format", "json").stdout)["plans"][0]
    assert row["suggestion"] == ("no --tensor-parallel-size up to 8 (one H100-80GB-SXM node) fits, even with "
                                 "--kv-cache-dtype fp8; would fit with --tensor-parallel-size 8 and "
                                 "--pipeline-parallel-size 2")
    text = " ".join(run_kvplan("estimate", L405, "--gpu", "H100").stdout.split())
    assert "split or shrink them: --tensor-parallel-size 8 and --pipeline-parallel-size 2, " in text
    assert "--tensor-parallel-size 16" not in text


def test_nothing_within_a_node_nor_across_eight_says_so_plainly():
    """A 12 GiB GPU of an H100 node: 11.04 GiB usable, and even 64 GPUs (tp 8 x pp 8) leave 756.0 / 64 = 11.8 GiB of
    weights on the average GPU: nothing the search may offer holds the weights."""
    assert L405_WEIGHTS / 64 > 12 * GiB * 0.92
    plan = _plan(L405, gpu="H100", gpu_memory="12GiB", tensor_parallel_size=8)
    assert plan.fitting_options == ()
    assert plan.suggestion() == ("no tensor_parallel_size up to 8 (one H100-80GB-SXM node), kv_cache_dtype fp8, "
                                 "pipeline_parallel_size up to 8 or shorter max_model_len makes it fit: the weights "
                                 "alone exceed the budget of one GPU")


# tp N with fp8 KV where neither alone holds it ----------------------------------------------------------------

def test_a_fixed_budget_gets_tp_8_with_fp8():
    """1.5 GiB of KV a GPU: at tp 8 one KV head a GPU is 32 x 1 x 128 x 2 x 2 = 16 KiB a token, 2 GiB a sequence
    (too much); fp8 alone leaves 8 GiB at tp 1, tp 4 with fp8 2 GiB (too much); tp 8 with fp8 1 GiB fits. As is, the
    longest length is 1.5 GiB / 128 KiB = 12,288 tokens less vLLM's null block of 16: 12,272."""
    plan = _plan(L8, gpu="H100", kv_cache_memory_bytes="1536MiB")
    assert plan.kv_bytes_per_token == L8_TOKEN
    assert (LONG * L8_TOKEN // 8, LONG * L8_TOKEN // 2 // 4) == (2 * GiB, 2 * GiB)  # tp 8 bf16, tp 4 fp8
    assert plan.fitting_options == ((("tp", 8), ("kv_dtype", "fp8")), (("context", 12272),))
    assert plan.suggestion() == "would fit with tensor_parallel_size 8 and kv_cache_dtype fp8; or max_model_len 12272"
    assert _plan(L8, gpu="H100", kv_cache_memory_bytes="1536MiB", tensor_parallel_size=8,
                 kv_cache_dtype="fp8").max_concurrency == 1


def test_a_small_model_on_l40s_reaches_30_with_tp_8_and_fp8():
    """30 sequences of 131,072 tokens on L40S (40.84 GiB usable): tp 8 keeps one KV head a GPU, 2 GiB a bf16 sequence,
    60 GiB for 30; fp8 at tp 4 the same 2 GiB; either is past the whole usable memory. tp 8 with fp8 needs 30 GiB."""
    assert 30 * LONG * L8_TOKEN // 8 > 40.84 * GiB
    error = _error(L8, gpu="L40S", tensor_parallel_size=1, min_concurrency=30)
    assert error.endswith("would fit with tensor_parallel_size 8 and kv_cache_dtype fp8; or max_model_len 6480.")
    row = _passes(L8, gpu="L40S", tensor_parallel_size=8, kv_cache_dtype="fp8", min_concurrency=30)
    assert row["kv_bytes_per_sequence_per_gpu"] == LONG * 32 * 1 * 128 * 2 * 1 == GiB


def test_gb200_nvl72_allows_tp_16_where_a_b200_node_stops_at_8():
    """Llama-3.1-405B, 20 sequences of 131,072 tokens. tp 16 > 8 KV heads: each GPU keeps one (replicated) head, so
    a bf16 sequence stays 126 x 128 x 2 x 2 x 131,072 = 7.88 GiB and fp8 halves it to 3.94 GiB. tp 8 with fp8: 94.5
    GiB of weights leave at most 164.08 - 94.5 = 69.6 GiB on a B200 and 75.1 on a GB200, under 20 x 3.94 = 78.8.
    GB200 (one NVLink domain of 72): tp 16 with fp8 (47.2 GiB of weights); tp 16 in bf16 would need 157.5 GiB.
    B200 (a node of 8): nothing within the node; tp 8 x pp 2 holds 63 layers a GPU, 3.94 GiB a bf16 sequence."""
    per_sequence = LONG * 126 * 128 * 2 * 2
    assert 20 * per_sequence // 2 > 169.57 * GiB - L405_WEIGHTS / 8
    assert 20 * per_sequence > 169.57 * GiB - L405_WEIGHTS / 16
    gb200 = _error(L405, gpu="GB200", tensor_parallel_size=8, min_concurrency=20)
    assert "would fit with tensor_parallel_size 16 and kv_cache_dtype fp8; or max_model_len " in gb200
    b200 = _error(L405, gpu="B200", tensor_parallel_size=8, min_concurrency=20)
    assert "no tensor_parallel_size up to 8 (one B200 node) reaches it, even with kv_cache_dtype fp8; would fit " \
           "with max_model_len " in b200
    assert b200.endswith(" or pipeline_parallel_size 2.") and "tensor_parallel_size 16" not in b200
    _passes(L405, gpu="B200", tensor_parallel_size=8, pipeline_parallel_size=2, min_concurrency=20)


def test_a_geforce_workstation_stops_at_4():
    """RTX-4090 (a node of 4): four sequences of 131,072 tokens were offered tp 8; now tp 4 with fp8 KV (2 KV heads
    a GPU: 32 x 2 x 128 x 2 x 1 = 16 KiB a token, 2 GiB a sequence)."""
    error = _error(L8, gpu="RTX-4090", tensor_parallel_size=1, min_concurrency=4)
    assert error.endswith("would fit with tensor_parallel_size 4 and kv_cache_dtype fp8; or max_model_len 9472.")
    row = _passes(L8, gpu="RTX-4090", tensor_parallel_size=4, kv_cache_dtype="fp8", min_concurrency=4)
    assert row["kv_bytes_per_sequence_per_gpu"] == 2 * GiB


# nothing within a node: said plainly, and the node's TP degree with pipeline stages ----------------------------

def test_64_sequences_on_l40s_need_pp_4_across_nodes():
    """64 sequences of 131,072 tokens on L40S: tp 8 with fp8 is 1 GiB a sequence, 64 GiB, past the 40.84 GiB usable;
    so is tp 8 x pp 2 in bf16 (16 layers a GPU: 1 GiB) and pp 3 (11 layers: 704 MiB, 44 GiB). pp 4 keeps 8 layers a
    GPU: 8 x 1 x 128 x 2 x 2 = 4 KiB a token, 512 MiB a sequence, 32 GiB for 64."""
    stage = lambda layers: LONG * layers * 128 * 2 * 2  # noqa: E731  one KV head a GPU at tp 8, bf16
    assert 64 * GiB > 40.84 * GiB and 64 * stage(16) > 40.84 * GiB and 64 * stage(11) > 40.84 * GiB
    assert 64 * stage(8) == 32 * GiB
    error = _error(L8, gpu="L40S", tensor_parallel_size=1, min_concurrency=64)
    assert error.endswith("no tensor_parallel_size up to 8 (one L40S node) reaches it, even with kv_cache_dtype fp8; "
                          "would fit with max_model_len 3040; or tensor_parallel_size 8 and pipeline_parallel_size 4.")
    row = _passes(L8, gpu="L40S", tensor_parallel_size=8, pipeline_parallel_size=4, min_concurrency=64)
    assert row["kv_bytes_per_sequence_per_gpu"] == stage(8) == 512 * 2**20


def test_check_cli_keeps_its_exit_code_and_flag_names():
    r = run_kvplan("check", L8, "--gpu", "L40S", "-tp", "1", "-c", "131072", "--min-concurrency", "64",
                   "--format", "json")
    assert r.returncode == 1 and r.stderr == ""
    (finding,) = json.loads(r.stdout)["results"][0]["findings"]
    assert finding["key"] == "min_concurrency"
    assert "no --tensor-parallel-size up to 8 (one L40S node) reaches it, even with --kv-cache-dtype fp8; would " \
           "fit with --max-model-len 3040; or --tensor-parallel-size 8 and --pipeline-parallel-size 4." \
           in finding["message"]
