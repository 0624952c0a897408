"""The engine model through kvplan's own surface: --engine, the `engine` object, resident concurrency and its
max_num_seqs cap, pipeline stages as vLLM deals them, the budget terms, and bad input. Figures are derived by
hand from vLLM 0.32.0's rules (benchmarks/vllm_reference/RULES.md); the exhaustive comparison with vLLM's own
code is tests/test_engine_vllm_reference.py."""

import json
from pathlib import Path

import pytest

from conftest import run_kvplan
from hub_configs import FALCON_7B, GPT_OSS_20B, LLAMA3_8B, LLAMA4_SCOUT, MISTRAL_7B_V01
from kvplan.engines import get_engine
from kvplan.engines.vllm import format_gib
from kvplan.errors import FieldError
from kvplan.plan.sharding import pp_partition

GiB, MiB = 2**30, 2**20


def estimate(*args):
    result = run_kvplan("estimate", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["plans"]


# ---- the engine object ----------------------------------------------------------------------------------------

def test_engine_object_for_a_dense_model(write_config):
    """Llama-3-8B, 10 GiB, 8K: 2 MiB blocks, 5120 of them; 512 per request: vLLM logs 10.00x and 81,920 tokens,
    holds the null block back, and keeps 9 requests resident."""
    (row,) = estimate(write_config(LLAMA3_8B), "--kv-budget", "10GiB", "--context", "8192")
    engine = row["engine"]
    assert engine["name"] == "vllm" and engine["version"] == "0.32.0" and engine["starts"]
    assert engine["num_gpu_blocks"] == 10 * GiB // (2 * MiB) == 5120
    assert engine["max_concurrency"] == 5120 / 512 and engine["gpu_kv_cache_tokens"] == 81920
    assert engine["log_lines"] == ["Available KV cache memory: 10.0 GiB",
                                   "GPU KV cache size: 81,920 tokens, Maximum concurrency for 8,192 tokens per "
                                   "request: 10.00x"]
    assert row["max_concurrency"] == (5120 - 1) // 512 == 9 and row["max_concurrency_limited_by"] == "memory"
    assert row["kv_blocks"] == 5120 and row["kv_capacity_tokens"] == 81920


def test_engine_none_is_the_ideal_pool(write_config):
    (row,) = estimate(write_config(LLAMA3_8B), "--kv-budget", "10GiB", "--context", "8192", "--engine", "none")
    assert row["engine"] is None
    assert row["max_concurrency"] == 10 and row["kv_blocks"] == 5120  # no null block, no reserve


def test_sliding_window_startup_and_resident_differ(write_config):
    """Mistral-7B (window 4096), 10 GiB, 32K on an H100: a request reserves cdiv(4095 + 2 x 8192, 16) + 1 = 1281
    blocks at start-up (4.00x), but keeps only the 256 blocks of its window once prefilled: 15 resident."""
    (row,) = estimate(write_config(MISTRAL_7B_V01), "--kv-budget", "10GiB", "--context", "32768", "--gpu", "h100")
    assert row["engine"]["blocks_per_request"] == 1281
    assert row["engine"]["log_lines"][-1].endswith("Maximum concurrency for 32,768 tokens per request: 4.00x")
    assert row["max_concurrency"] == (5119 - 1281) // 256 + 1 == 15
    # The ideal pool charges each sequence only its window: 10 GiB // (257 blocks x 2 MiB) = 19.
    (ideal,) = estimate(write_config(MISTRAL_7B_V01), "--kv-budget", "10GiB", "--context", "32768",
                        "--engine", "none")
    assert ideal["max_concurrency"] == 10 * GiB // (257 * 2 * MiB) == 19


def test_chunked_layers_count_their_whole_chunk_while_decoding(write_config):
    """Llama 4 Scout at 8K, 10 GiB, an H200: 8 KV heads x 128 x 2 (K, V) x 2 B = 4 KiB a token a layer, in 4 groups
    of 12 layers (3 chunked, 1 full) sharing 16-token blocks of 12 x 16 x 4 KiB = 768 KiB: 13,653 blocks, 13,652
    usable; a request's gate is 4 x 512 = 2,048. vLLM's KVCacheManager, holding requests of exactly 8,192 tokens, has
    freed every chunked block (the chunk of 8,192 ends there): 512 blocks kept, (13,652 - 2,048) // 512 + 1 = 23
    resident. A request still decoding below 8,192 holds all four groups' 512 blocks: the plan counts
    (13,652 - 2,048) // 2,048 + 1 = 6, as vLLM's own log line says (6.67x)."""
    (row,) = estimate(write_config(LLAMA4_SCOUT), "--kv-budget", "10GiB", "--context", "8192", "--gpu", "h200")
    assert row["engine"]["num_gpu_blocks"] == 10 * GiB // (12 * 16 * 4 * 1024) == 13653
    assert row["engine"]["log_lines"][-1].endswith("Maximum concurrency for 8,192 tokens per request: 6.67x")
    assert row["engine"]["resident_sequences"] == (13652 - 2048) // 512 + 1 == 23
    assert row["max_concurrency"] == (13652 - 2048) // 2048 + 1 == 6


def test_max_num_seqs_caps_resident(write_config):
    """gpt-oss-20b at 4K and 40 GiB keeps hundreds of requests; --max-num-seqs 64 caps the plan."""
    rows = estimate(write_config(GPT_OSS_20B), "--kv-budget", "40GiB", "--context", "4096", "--max-num-seqs", "64")
    assert rows[0]["max_concurrency"] == 64 and rows[0]["max_concurrency_limited_by"] == "max_num_seqs"
    assert rows[0]["engine"]["resident_sequences"] > 64 and rows[0]["engine"]["max_num_seqs"] == 64


def test_falcon_cache_stays_bf16_under_fp8(write_config):
    """vLLM's FalconAttention ignores --kv-cache-dtype fp8 (falcon.py:173-197): the same blocks as bf16."""
    auto, fp8 = (estimate(write_config(FALCON_7B), "--kv-budget", "10GiB", "--context", "2048", "--kv-dtype", d)[0]
                 for d in ("auto", "fp8"))
    assert fp8["engine"]["num_gpu_blocks"] == auto["engine"]["num_gpu_blocks"]
    assert fp8["engine"]["kv_cache_dtype"] == "bf16" and fp8["kv_dtype"] == "fp8_e4m3"
    (ideal,) = estimate(write_config(FALCON_7B), "--kv-budget", "10GiB", "--context", "2048", "--kv-dtype", "fp8",
                        "--engine", "none")
    assert ideal["kv_blocks"] == 2 * auto["engine"]["num_gpu_blocks"]  # kvplan's arithmetic halves it


def test_context_beyond_the_model_is_refused(write_config):
    """vLLM refuses a max_model_len above max_position_embeddings (config/model.py _get_and_verify_max_len)."""
    (row,) = estimate(write_config(MISTRAL_7B_V01), "--kv-budget", "10GiB", "--context", "65536")
    assert not row["engine"]["starts"] and row["max_concurrency"] == 0
    assert row["engine"]["refusal"]["reason"].startswith(
        "User-specified max_model_len (65536) is greater than the derived max_model_len (max_position_embeddings="
        "32768.0 or model_max_length=None in model's config.json).")
    assert row["engine"]["refusal"]["estimated_max_model_len"] == 32768
    assert "--max-model-len 32768" in row["suggestion"]


def test_log_number_format_is_vllms():
    """format_gib is str(round(GiB, 2)): 6.5, not 6.50; 10.0, not 10."""
    assert format_gib(int(6.5 * GiB)) == "6.5" and format_gib(10 * GiB) == "10.0" and format_gib(-2.14 * GiB) == "-2.14"


# ---- the budget -----------------------------------------------------------------------------------------------

def test_budget_terms_carry_their_sources(write_config):
    (row,) = estimate("meta-llama/Llama-3.1-8B", "--gpu", "h100", "--context", "8192")
    budget = row["budget"]
    assert budget["engine"] == "vllm 0.32.0" and budget["gpu_util"] == 0.92
    terms = {t["name"]: t for t in budget["terms"]}
    assert set(terms) == {"memory", "weights", "profile_peak", "non_torch", "runner_state", "cuda_graphs", "nccl"}
    assert all(t["source"] for t in terms.values())
    assert budget["kv_budget_bytes_per_gpu"] == terms["memory"]["bytes"] - sum(
        t["bytes"] for name, t in terms.items() if name != "memory")
    assert row["engine"]["available_kv_cache_bytes"] == budget["kv_budget_bytes_per_gpu"]
    # the sampler runs over vLLM's H100 default of 1024 dummy requests; 0.32's V2 runner keeps the dummy requests'
    # logits in the LM head's dtype (bf16: 2 bytes each) and samples them in one Gumbel kernel
    assert "1024 requests x 128256 logits x 2 B" in terms["profile_peak"]["source"]


def test_sampler_pass_follows_the_release():
    """The V1 runner (0.10) samples float32 logits with top-k/top-p (fitted on A19/A20: 37 B per logit); the V2
    runner (0.32; which releases run it for which model: tests/test_vllm_runner.py) holds the bf16 logits only
    (gpu/sample/gumbel.py). gpt-oss-20b, 1024 requests x 201,088 logits on an H100."""
    peaks = {}
    for engine in ("vllm==0.10.1", "vllm"):
        (row,) = estimate("openai/gpt-oss-20b", "--gpu", "h100", "--engine", engine)
        peak = {t["name"]: t for t in row["budget"]["terms"]}["profile_peak"]
        peaks[engine] = peak["bytes"]
        assert "1024 requests x 201088 logits" in peak["source"]
    assert peaks["vllm==0.10.1"] == 1024 * 201088 * 37
    assert peaks["vllm"] < 1024 * 201088 * 4  # the forward (or 2 B per logit), never float32 logits


def test_batch_defaults_follow_the_gpu():
    """engine/arg_utils.py get_batch_defaults for `vllm serve`: A100 2048/256, H100 8192/1024, B200 16384/1024."""
    from kvplan.plan.catalog import find_gpu

    engine = get_engine("vllm")
    got = {name: engine.settings(32768, find_gpu(name)) for name in ("a100-80g", "h100", "b200", "l40s")}
    assert (got["a100-80g"].max_num_batched_tokens, got["a100-80g"].max_num_seqs) == (2048, 256)
    assert (got["h100"].max_num_batched_tokens, got["h100"].max_num_seqs) == (8192, 1024)
    assert (got["b200"].max_num_batched_tokens, got["b200"].max_num_seqs) == (16384, 1024)
    assert (got["l40s"].max_num_batched_tokens, got["l40s"].max_num_seqs) == (2048, 256)
    assert got["h100"].in_flight_tokens == 2 * 8192  # async scheduling: two batches in flight


# ---- the fused-MoE buffers of the profile's forward --------------------------------------------------------------

def _moe_bytes(model, tp, version, tokens=8192):
    """The profile forward's MLP part over `tokens` tokens: its whole peak less the tokens' hidden, residual, q/k/v."""
    from kvplan.engines.vllm_profile import activation_per_token, forward_peak
    from kvplan.engines.vllm_versions import behaviour
    from kvplan.model.sources import resolve

    spec = resolve(model)
    return forward_peak(spec, tp, tokens, behaviour(version)) - tokens * activation_per_token(spec, tp)


def test_fused_moe_buffers_follow_the_release():
    """DeepSeek-V3 at tp 8 (hidden 7,168, 256 intermediate rows a rank, 8 routed experts a token), 8,192 tokens:
    vLLM 0.13's fused_experts_impl holds M x k x max(2I, H) and M x k x I bf16 (928 MiB), 0.14+'s TritonExperts
    workspace M x k x max(I, H) and M x k x max(2I, H) (1,792 MiB) (read in the released wheels,
    engines/vllm_versions.py); V0's fused_experts (0.7) three separate buffers M x k x 2I, M x k x I, M x k x H
    (992 MiB); each quantises x and the activated intermediate to e4m3 for its fp8 experts, 8,192 x (7,168 + 8 x
    256) bytes = 72 MiB."""
    assert _moe_bytes("deepseek-ai/DeepSeek-V3", 8, "0.13.0") == (928 + 72) * MiB
    assert _moe_bytes("deepseek-ai/DeepSeek-V3", 8, "0.14.0") == _moe_bytes("deepseek-ai/DeepSeek-V3", 8,
                                                                           "0.32.0") == (1792 + 72) * MiB
    assert _moe_bytes("deepseek-ai/DeepSeek-V3", 8, "0.7.0") == (992 + 72) * MiB


def test_fused_moe_buffers_agree_where_the_intermediate_is_wider():
    """Mixtral-8x7B at tp 2 (7,168 intermediate rows a rank, over its hidden of 4,096): the shared caches (0.8-0.13)
    and the workspace (0.14+) both hold 3 x 2 x 7,168 bf16 values a token, 672 MiB over 8,192 tokens (vLLM 0.32's
    workspace by its shapes: 0.66 GiB, benchmarks/RESULTS.md session 41); V0's separate buffers add the down
    projection's 2 x 4,096 outputs, 800 MiB. gpt-oss-20b's MXFP4 experts (OAI Triton, not these shapes) keep 3 x 4
    x 2,880 a token, 540 MiB."""
    assert {_moe_bytes("mistralai/Mixtral-8x7B-v0.1", 2, v) for v in ("0.8.5", "0.13.0", "0.32.0")} == {672 * MiB}
    assert _moe_bytes("mistralai/Mixtral-8x7B-v0.1", 2, "0.6.4") == 800 * MiB
    assert {_moe_bytes("openai/gpt-oss-20b", 1, v) for v in ("0.10.1", "0.32.0")} == {540 * MiB}


def test_fused_moe_buffers_of_experts_without_a_gate():
    """Nemotron-3-Nano's relu2 experts (hidden 2,688, 1,856 up rows, 6 a token): vLLM 0.32 sizes the workspace by
    N = 1,856 and an activation output of N (adjust_N_for_activation), both under the hidden, so two hidden-wide
    buffers a pair: 6 x 2 x 2,688 bf16 values a token, 504 MiB over 8,192 tokens (a gated reading, 2 N = 3,712
    rows, would say 600)."""
    config = Path(__file__).resolve().parents[1] / "benchmarks/configs/nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-BF16.json"
    assert _moe_bytes(str(config), 1, "0.32.0") == 504 * MiB


def test_fused_moe_buffers_chunk_as_the_release_did():
    """VLLM_FUSED_MOE_CHUNK_SIZE: 16,384 tokens in 0.12-0.17 (32,768 before), gone from 0.18: at 32,768 tokens
    DeepSeek-V3's buffers (above: 1,864 MiB a 8,192 tokens from 0.14, 1,000 before) cover half of them in 0.17 and
    all of them in 0.18; 0.11 covers them all, 0.12 half."""
    half = _moe_bytes("deepseek-ai/DeepSeek-V3", 8, "0.17.1", 32768)
    assert half == _moe_bytes("deepseek-ai/DeepSeek-V3", 8, "0.17.1", 16384) == 2 * 1864 * MiB
    assert _moe_bytes("deepseek-ai/DeepSeek-V3", 8, "0.18.0", 32768) == 4 * 1864 * MiB
    assert _moe_bytes("deepseek-ai/DeepSeek-V3", 8, "0.11.2", 32768) == 4 * 1000 * MiB
    assert _moe_bytes("deepseek-ai/DeepSeek-V3", 8, "0.12.0", 32768) == 2 * 1000 * MiB


def test_profile_peak_names_the_moe_buffers():
    (row,) = estimate("deepseek-ai/DeepSeek-V3", "--gpu", "h200", "--tp", "8", "--context", "8192")
    peak = {t["name"]: t for t in row["budget"]["terms"]}["profile_peak"]
    assert "forward over 8192 tokens with the fused-MoE workspace" in peak["source"]
    assert peak["bytes"] > 1792 * MiB  # the workspace and the tokens' own activations


# ---- pipeline parallel -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("layers, pp, split", [
    (61, 2, (31, 30)), (61, 4, (15, 15, 16, 15)), (62, 4, (15, 16, 16, 15)), (80, 3, (27, 27, 26)),
    (32, 2, (16, 16)), (27, 2, (14, 13)), (7, 4, (2, 2, 2, 1)),
])
def test_pp_partition_is_get_pp_indices(layers, pp, split):
    """vllm/distributed/utils.py get_pp_indices: the remainder goes one layer each to the stages before the
    last, counting back from the second-to-last (the last stage never gets one, the first only when the
    remainder is pp - 1)."""
    assert pp_partition(layers, pp) == split


def test_deepseek_v3_tp8_pp2_passes_check():
    result = run_kvplan("check", "deepseek-ai/DeepSeek-V3", "--tp", "8", "--pp", "2", "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    (row,) = json.loads(result.stdout)["results"]
    assert row["passed"] and row["pp_partition"] == [31, 30] and row["errors"] == []
    assert row["max_concurrency"] > 0 and row["engine"]["starts"]


def test_pp_stages_size_their_own_pools(write_config):
    """Llama-3-8B (4 KiB per token per layer), 10 GiB per GPU, pp 2: each stage holds 16 layers, so 1 MiB blocks,
    10240 of them. With an explicit partition 20,12 the first stage's 1.25 MiB blocks set the pool for both (the
    minimum, as get_kv_cache_configs takes it): 8192."""
    (even,) = estimate(write_config(LLAMA3_8B), "--kv-budget", "10GiB", "-pp", "2")
    assert even["pp_partition"] == [16, 16] and even["engine"]["num_gpu_blocks"] == 10240
    (skewed,) = estimate(write_config(LLAMA3_8B), "--kv-budget", "10GiB", "--pipeline-parallel-size", "2",
                         "--pp-layer-partition", "20,12")
    assert skewed["pp_partition"] == [20, 12]
    assert skewed["engine"]["num_gpu_blocks"] == 10 * GiB // (20 * 16 * 4096) == 8192
    assert skewed["kv_bytes_per_token_per_gpu"] == 20 * 4096


def test_pp_budget_per_stage_has_its_own_weights():
    """Without --kv-budget each stage is budgeted with its own weights (embeddings first, LM head last) and the
    plan reports the stage whose own blocks every worker takes."""
    # 32 layers over 3 stages (11/11/10): the embedding on the first, the LM head and the sampler on the last, so
    # each stage logs its own figure (70B over 2 stages would not: 40/40 layers, embedding = LM head bytes)
    (row,) = estimate("meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "-pp", "3")
    lines = [line for line in row["engine"]["log_lines"] if line.startswith("Available KV cache memory")]
    assert len(set(lines)) == 3
    budgets = [s["kv_budget_bytes_per_gpu"] for s in row["stages"]]
    # the engine's figure is the smallest worker's memory; the blocks are the fewest any worker counts at its own
    # page: 16 tokens x 8 KV heads x 128 x (K, V) x 2 B = 65,536 B a layer, 11 / 11 / 10 layers a stage
    assert row["engine"]["available_kv_cache_bytes"] == min(budgets)
    own = [b // (n * 65536) for b, n in zip(budgets, (11, 11, 10))]
    assert row["kv_blocks"] == min(own)
    # the plan's budget and bytes a token are that stage's, so its KV memory and its tokens agree (stage 2 has the
    # smallest budget but 10 layers: more blocks than stage 0's 11)
    tight = own.index(min(own))
    assert row["budget"]["stage"] == tight == 0 and row["kv_budget_bytes_per_gpu"] == budgets[tight]
    assert row["kv_bytes_per_token_per_gpu"] == 11 * 65536 // 16


# ---- bad input ---------------------------------------------------------------------------------------------------

def _one_line_error(result, *needles):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_unknown_engine_lists_the_valid_ones(write_config):
    _one_line_error(run_kvplan("estimate", write_config(LLAMA3_8B), "--engine", "foo"),
                    "--engine 'foo' is not an engine", "vllm (vLLM 0.32.0)", "none")
    _one_line_error(run_kvplan("estimate", write_config(LLAMA3_8B), "--engine", "vllm==0.1"),
                    "--engine", "from 0.2.0 to 0.34.0")
    _one_line_error(run_kvplan("estimate", write_config(LLAMA3_8B), "--engine", "vllm==x"),
                    "--engine", "is not a vLLM release")
    with pytest.raises(FieldError) as error:
        get_engine("sglang")
    assert error.value.field == "engine"


@pytest.mark.parametrize("args, needles", [
    (["-pp", "0"], ["-pp must be a positive integer"]),
    (["-pp", "64"], ["--pipeline-parallel-size 64 exceeds num_hidden_layers (32)"]),
    (["-pp", "2", "--pp-layer-partition", "20,10"], ["--pp-layer-partition", "summing to num_hidden_layers (32)"]),
    (["--max-num-seqs", "0"], ["--max-num-seqs must be a positive integer"]),
])
def test_bad_engine_flags(write_config, args, needles):
    result = run_kvplan("estimate", write_config(LLAMA3_8B), *args, "--format", "json")
    if result.returncode == 0:  # pp errors are sharding errors: the plan says why, like a bad tp
        (row,) = json.loads(result.stdout)["plans"]
        assert not row["tp_valid"] and any(all(n in e for n in needles) for e in row["tp_errors"]), row["tp_errors"]
    else:
        _one_line_error(result, *needles)


def test_gpu_memory_utilization_default_by_release():
    """config/cache.py CacheConfig.gpu_memory_utilization: 0.9 through 0.19, 0.92 from 0.20.0."""
    for engine, util in (("vllm==0.19.0", 0.9), ("vllm==0.20.0", 0.92), ("vllm", 0.92)):
        (row,) = estimate("meta-llama/Llama-3.1-8B", "--gpu", "h100", "-c", "8192", "--engine", engine)
        assert row["budget"]["gpu_util"] == util, engine


@pytest.mark.parametrize("engine,pp,blocks", [
    # gpt-oss-20b at 32,768 tokens on an H100 (8,192 batched tokens, 16-token blocks): a full-attention group of
    # 2,048 blocks and a 128-token sliding group of cdiv(min(127 + in-flight tokens, 32768), 16) + 1
    ("vllm==0.25.1", 1, 2048 + 520 + 1),  # one batch: 127 + 8,192 (SlidingWindowSpec before 0.26)
    ("vllm==0.25.1", 2, 2048 + 520 + 1),  # PP did not count either
    ("vllm==0.26.0", 1, 2048 + 1032 + 1),  # max_in_flight_tokens: 2 batches (async scheduling), 127 + 16,384
    ("vllm==0.26.0", 2, 2048 + 1032 + 1),  # the V1 runner (MoE, not a V2 default) overlaps no batches under PP
    ("vllm", 2, 2048 + 1544 + 1),  # 0.32's V2 runner: pp + 1 = 3 batches, 127 + 24,576
])
def test_sliding_reserve_counts_the_batches_in_flight_of_the_release(engine, pp, blocks):
    (row,) = estimate("openai/gpt-oss-20b", "--gpu", "h100", "-c", "32768", "--pp", str(pp), "--engine", engine)
    assert row["engine"]["blocks_per_request"] == blocks


def test_start_up_rules_change_at_the_releases_that_changed_them():
    """Read in the wheels on both sides of each boundary. Llama-3.1-8B, 8,192 tokens: a request needs 512 blocks of
    2 MiB, exactly 1 GiB. 0.29 holds the null block back before checking that one request fits
    (kv_cache_utils.check_enough_kv_cache_memory), 0.28 did not; 0.28 logs size and concurrency on one line, 0.27
    on two."""
    rows = {v: estimate("meta-llama/Llama-3.1-8B-Instruct", "-c", "8192", "--kv-cache-memory-bytes", "1G",
                        "--engine", f"vllm=={v}")[0]["engine"] for v in ("0.27.1", "0.28.0", "0.29.0")}
    assert rows["0.28.0"]["starts"] and rows["0.28.0"]["num_gpu_blocks"] == 512
    assert not rows["0.29.0"]["starts"] and "1.0 GiB KV cache is needed" in rows["0.29.0"]["refusal"]["reason"]
    assert rows["0.27.1"]["log_lines"][-2:] == ["GPU KV cache size: 8,192 tokens",
                                                "Maximum concurrency for 8,192 tokens per request: 1.00x"]
    assert rows["0.28.0"]["log_lines"][-1] == ("GPU KV cache size: 8,192 tokens, Maximum concurrency for 8,192 "
                                               "tokens per request: 1.00x")


def test_graph_profile_and_its_utilisation_arrived_in_0_20_0():
    """envs.py VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS: "0" in 0.19.0, "1" in 0.20.0 (its log line says "default
    since v0.21.0"), with --gpu-memory-utilization 0.92. The term from 0.20.0 is kvplan's figure for vLLM's graphs,
    int(0.705 x 2**30) = 756,987,985 B, the median of the public estimates (tests/test_vllm_graph_estimate.py)."""
    for engine, graphs in (("vllm==0.19.0", 0), ("vllm==0.20.0", 756_987_985)):
        (row,) = estimate("meta-llama/Llama-3.1-8B", "--gpu", "h100", "-c", "8192", "--engine", engine)
        assert {t["name"]: t["bytes"] for t in row["budget"]["terms"]}["cuda_graphs"] == graphs, engine


def test_logged_tokens_follow_concurrency_from_0_20_1():
    """kv_cache_utils.py: 0.20.0 logs num_blocks // groups x block_size, 0.20.1 int(concurrency x max_model_len).
    gpt-oss-20b at 32,768 tokens with 10 GiB: two groups of 12 layers, a block 12 x 16 tokens x 8 heads x 64 x 2 x
    2 B = 384 KiB, so 27,306 blocks; a request 2,048 full + 521 sliding blocks (127 + 8,192 tokens, one batch)."""
    got = {v: estimate("openai/gpt-oss-20b", "-c", "32768", "--kv-cache-memory-bytes", "10G", "--engine",
                       f"vllm=={v}")[0]["engine"] for v in ("0.20.0", "0.20.1")}
    for figures in got.values():
        assert (figures["num_gpu_blocks"], figures["blocks_per_request"]) == (27306, 2569)
    assert got["0.20.0"]["gpu_kv_cache_tokens"] == 27306 // 2 * 16 == 218448
    assert got["0.20.1"]["gpu_kv_cache_tokens"] == 348292  # 27,306 / 2,569 = 10.629x of 32,768 tokens


@pytest.mark.parametrize("engine,gpu,defaults", [
    # engine/arg_utils.py: 0.8's _set_default_args_v1 had no A100 exception, 0.9-0.27 no 160 GiB tier
    ("vllm==0.8.5", "a100-80g", (8192, 1024)),
    ("vllm==0.9.0", "a100-80g", (2048, 256)),
    ("vllm==0.27.1", "b200", (8192, 1024)),
    ("vllm==0.28.0", "b200", (16384, 1024)),
    ("vllm==0.27.1", "h100", (8192, 1024)),
])
def test_batch_defaults_by_release(engine, gpu, defaults):
    from kvplan.plan.catalog import find_gpu

    s = get_engine(engine).settings(32768, find_gpu(gpu))
    assert (s.max_num_batched_tokens, s.max_num_seqs) == defaults
