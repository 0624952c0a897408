"""vLLM's KV-cache groups by release, on an H100 with the KV memory fixed by --kv-cache-memory-bytes, so every figure
is hand arithmetic:

1. The group size (vllm_group_size.GROUP_SIZE_RULES): the smallest kind's layer count, or the largest where it is
   below the smallest x 1.25 (0.12.0-0.17.1, kv_cache_utils.py 0.12.0:1014-1023, 0.17.1:1040-1049) / x 1.5 (0.18.0
   on, 0.18.0:1040-1051); the smallest always up to 0.11.2 (0.11.2:974).
2. Whose layers the start-up check prices under pipeline parallelism (vllm_hybrid_manager.CHECK_SCOPE): the whole
   model's groups against the smallest worker in 0.14.0-0.16.x (get_kv_cache_configs 0.14.0:1503-1523), each
   worker's projected groups from 0.17.0 (0.17.0:1558-1577), each worker's own layers to 0.13.
3. A model whose first cache layer is a Mamba layer under 0.14.0-0.18.1's "first_group" pricing (any_spec =
   kv_cache_groups[0], 0.18.1:1329-1362): the first group is a Mamba state group, whose request is one page
   (MambaSpec.max_memory_usage_bytes, mamba_cache_mode "none": page x (1 + 0 speculative blocks), kv_cache_interface.py
   0.18.1:293-300; prefix caching is off for a hybrid to 0.25, vllm_settings.HYBRID_PREFIX_RULES), so the attention
   layers go unpriced; 0.19.0 sums every group (0.19.0:1332-1367).
"""

import pytest

from conftest import estimate_plan
from kvplan.engines.vllm_group_size import group_size
from kvplan.engines.vllm_hybrid_manager import check_scope
from tiny_models import TINY

GiB = 2**30


def _engine(model: str, version: str, *flags, context="131072") -> tuple:
    """(planned max model length, engine figures) of one estimate."""
    plan = estimate_plan(model, "--gpu", "H100", "-c", context, "--engine", f"vllm=={version}", *flags)
    return plan["context"], plan["engine"]


@pytest.mark.parametrize("sizes, version, size", [
    ((13, 10), "0.11.2", 10), ((13, 10), "0.12.0", 10), ((13, 10), "0.17.1", 10), ((13, 10), "0.18.0", 13),
    ((13, 10), "0.34.0", 13),
    ((12, 13), "0.9.1", 12), ((12, 13), "0.11.2", 12), ((12, 13), "0.12.0", 13),  # gpt-oss-20b + EAGLE
    ((4, 5), "0.17.1", 4), ((4, 5), "0.18.0", 5),  # 5 = 4 x 1.25: not below it
    ((2, 3), "0.18.0", 2),  # 3 = 2 x 1.5: not below it
    ((52, 10), "0.18.0", 10), ((24, 4), "0.11.0", 4),  # Gemma 3 27B, Nemotron-H-8B: the smallest everywhere
])
def test_group_size_by_release(sizes, version, size):
    assert group_size(sizes, version) == size


# A tiny gpt-oss (tests/tiny_models.py): 2 KV heads x 16 dims bf16 = 128 B a token a layer, a page 16 x 128 = 2,048 B;
# window 8; max_model_len 4,096. At 4,096 tokens with 2,048 batched tokens a full layer holds cdiv(4,096, 16) = 256
# blocks, a sliding one cdiv(min(7 + 2,048, 4,096), 16) + 1 = 129 + 1 = 130. 10 MiB = 10,485,760 B of KV cache.
def _tiny_gpt_oss(write_config, layer_types: list) -> str:
    return str(write_config({**TINY["gpt_oss"], "architectures": ["GptOssForCausalLM"],
                             "num_hidden_layers": len(layer_types), "layer_types": layer_types}))


def _tiny(path: str, version: str) -> dict:
    return _engine(path, version, "--kv-cache-memory-bytes", str(10 * 2**20), "--max-num-batched-tokens", "2048",
                   context="4096")[1]


def _padding(engine: dict) -> list:
    return [line for line in engine["log_lines"] if "padding layers" in line]


def test_13_sliding_10_full_in_the_band(write_config):
    """13 sliding (layer 0 slides) + 10 full: 13 / 10 = 1.3, between 1.25 and 1.5.
    Up to 0.17.1 the group size is 10: sliding 2 groups (7, 6: 7 padding layers, 7 / 13 = 53.85%), full 1 group; a
      block is 10 x 2,048 = 20,480 B: 10,485,760 // 20,480 = 512 blocks; a request 256 + 2 x 130 = 516 blocks:
      512 / 516 = 0.99x.
    From 0.18.0 the group size is 13: sliding 1 group, full 1 group padded by 3 (3 / 10 = 30.00%); a block 13 x 2,048 =
      26,624 B: 10,485,760 // 26,624 = 393 blocks (393 x 26,624 = 10,463,232); a request 256 + 130 = 386: 1.02x."""
    path = _tiny_gpt_oss(write_config, ["sliding_attention", "full_attention"] * 10 + ["sliding_attention"] * 3)
    for version in ("0.11.2", "0.13.0", "0.17.1"):
        engine = _tiny(path, version)
        assert (engine["num_gpu_blocks"], engine["blocks_per_request"]) == (512, 516), version
        assert _padding(engine) == ["Add 7 padding layers, may waste at most 53.85% KV cache memory"]
        assert "Maximum concurrency for 4,096 tokens per request: 0.99x" in engine["log_lines"]
    for version in ("0.18.0", "0.20.0"):
        engine = _tiny(path, version)
        assert (engine["num_gpu_blocks"], engine["blocks_per_request"]) == (393, 386), version
        assert _padding(engine) == ["Add 3 padding layers, may waste at most 30.00% KV cache memory"]
        assert "Maximum concurrency for 4,096 tokens per request: 1.02x" in engine["log_lines"]


def test_12_sliding_13_full_below_the_band(write_config):
    """12 sliding + 13 full (vLLM's own example, gpt-oss-20b with an EAGLE drafter's full layer): 13 / 12 < 1.25.
    Up to 0.11.2 the group size is 12: full 2 groups (7, 6: 11 padding layers, 11 / 13 = 84.62%), sliding 1; a block
      12 x 2,048 = 24,576 B: 10,485,760 // 24,576 = 426 blocks; a request 2 x 256 + 130 = 642.
    From 0.12.0 it is 13: sliding padded by 1 (1 / 12 = 8.33%); 393 blocks of 26,624 B, a request 256 + 130 = 386."""
    path = _tiny_gpt_oss(write_config, ["sliding_attention", "full_attention"] * 12 + ["full_attention"])
    engine = _tiny(path, "0.11.2")
    assert (engine["num_gpu_blocks"], engine["blocks_per_request"]) == (426, 642)
    assert _padding(engine) == ["Add 11 padding layers, may waste at most 84.62% KV cache memory"]
    engine = _tiny(path, "0.12.0")
    assert (engine["num_gpu_blocks"], engine["blocks_per_request"]) == (393, 386)
    assert _padding(engine) == ["Add 1 padding layers, may waste at most 8.33% KV cache memory"]


@pytest.mark.parametrize("version, scope", [("0.13.0", "worker"), ("0.14.0", "whole_model"),
                                            ("0.15.1", "whole_model"), ("0.16.0", "whole_model"),
                                            ("0.17.0", "worker"), ("0.18.1", "worker"), ("0.34.0", "worker")])
def test_check_scope_by_release(version, scope):
    assert check_scope(version) == scope


# Llama-3.1-8B at -pp 2: 32 full layers, 16 a stage; 8 KV heads x 128 dims bf16, a page 2 x 8 x 128 x 2 B x 16 =
# 65,536 B. 131,072 tokens = 8,192 blocks. 12 GiB a GPU.
#   a worker's share: 16 x 65,536 x 8,192 = 8 GiB <= 12: starts; 12 GiB // (16 x 65,536 = 1 MiB) = 12,288 blocks,
#     12,288 / 8,192 = 1.50x.
#   the whole model (0.14-0.16): one group of 32 layers, 32 x 65,536 x 8,192 = 16 GiB > 12: refused; the longest
#     fitting 12 GiB // 2 MiB = 6,144 blocks = 98,304 tokens.
LLAMA = "meta-llama/Llama-3.1-8B"
LLAMA_FLAGS = ("-pp", "2", "--kv-cache-memory-bytes", str(12 * GiB), "--max-num-batched-tokens", "8192")


@pytest.mark.parametrize("version", ["0.14.0", "0.16.0"])
def test_llama_pp2_whole_model_check(version):
    _, engine = _engine(LLAMA, version, *LLAMA_FLAGS)
    assert engine["starts"] is False
    assert "(131072), (16.0 GiB KV cache is needed, which is larger than the available KV cache memory (12.0 GiB)" \
        in engine["refusal"]["reason"]
    assert engine["refusal"]["estimated_max_model_len"] == 98_304
    assert _engine(LLAMA, version, *LLAMA_FLAGS, context="auto")[0] == 98_304


@pytest.mark.parametrize("version", ["0.13.0", "0.17.0", "0.18.1"])
def test_llama_pp2_worker_check(version):
    _, engine = _engine(LLAMA, version, *LLAMA_FLAGS)
    assert engine["starts"] is True and engine["num_gpu_blocks"] == 12_288
    assert "Maximum concurrency for 131,072 tokens per request: 1.50x" in engine["log_lines"]
    if version != "0.13.0":  # no auto-fit before 0.14.0 (vllm_auto_fit.AUTO_FIT_SINCE; test_check_auto_s77.py)
        assert _engine(LLAMA, version, *LLAMA_FLAGS, context="auto")[0] == 131_072


# gpt-oss-20b at -pp 2: 24 layers alternating sliding (window 128, layer 0) / full, 12 a stage (6 + 6); a page
# 2 x 8 x 64 x 2 B x 16 = 32,768 B; whole-model groups of 12 (a block 393,216 B), 6 of each on a stage (196,608 B).
# At 131,072 tokens and 8,192 batched tokens the first group (sliding) holds cdiv(127 + 8,192, 16) + 1 = 521 blocks.
# 150,000,000 B a GPU:
#   0.17.0, 0.18.1 (a worker): 521 x 196,608 = 102,432,768 B fits: starts with 150,000,000 // 196,608 = 762 blocks.
#   0.16.0 (the whole model): 521 x 393,216 = 204,865,536 B = 0.19 GiB > 0.14 GiB: refused; the longest L with
#     (cdiv(L, 16) + 1) x 393,216 <= 150,000,000: cdiv(L, 16) <= 380: 6,080.
GPT_OSS_FLAGS = ("-pp", "2", "--kv-cache-memory-bytes", "150000000", "--max-num-batched-tokens", "8192")


def test_gpt_oss_20b_pp2_by_scope():
    _, engine = _engine("openai/gpt-oss-20b", "0.16.0", *GPT_OSS_FLAGS)
    assert engine["starts"] is False
    assert "(131072), (0.19 GiB KV cache is needed, which is larger than the available KV cache memory (0.14 GiB)" \
        in engine["refusal"]["reason"]
    assert engine["refusal"]["estimated_max_model_len"] == 6_080
    assert _engine("openai/gpt-oss-20b", "0.16.0", *GPT_OSS_FLAGS, context="auto")[0] == 6_080
    for version in ("0.17.0", "0.18.1"):
        _, engine = _engine("openai/gpt-oss-20b", version, *GPT_OSS_FLAGS)
        assert engine["starts"] is True and engine["num_gpu_blocks"] == 762, version


# Mamba-first hybrids, prefix caching off (its default for a hybrid in 0.18-0.19), 100,000,000 B of KV cache.
MAMBA_FLAGS = ("--kv-cache-memory-bytes", "100000000")


# Nemotron-H-8B: 24 Mamba-2 + 4 attention cache layers, layer 0 Mamba. Mamba-2 state: conv 3 x (128 x 64 + 2 x 8 x 128)
# = 30,720 bf16 = 61,440 B; SSM 128 x 64 x 128 = 1,048,576 float16 = 2,097,152 B; 2,158,592 B. Attention 2 x 8 x 128
# x 2 B = 4,096 B a token: 2,158,592 / 4,096 = 527 tokens, raised to a multiple of 16: 528, a page 2,162,688 B (the
# state padded by 4,096 B = 0.19%). Group size 4 (24 / 4 = 6): 6 Mamba groups + 1 attention group, a block
# 4 x 2,162,688 = 8,650,752 B: 100,000,000 // 8,650,752 = 11 blocks. A request of 8,192 tokens: attention
# cdiv(8,192, 528) = 16 blocks, each Mamba group 1: 22.
#   0.18.1 prices the first (Mamba) group alone: 1 x 8,650,752 B fits: starts; "GPU KV cache size" 11 // 7 groups
#     x 528 = 528 tokens; 11 / 22 = 0.50x.
#   0.19.0 sums them: 22 x 8,650,752 = 190,316,544 B = 0.18 GiB > 0.09 GiB: refused; the longest L with
#     cdiv(L, 528) + 6 <= 11: 5 x 528 = 2,640.
NEMOTRON = ("nvidia/Nemotron-H-8B-Base-8K", "8192", 11, 22, "528", "8,192", "0.50", "0.18", 2_640)
# Jamba-1.5-Mini: 28 Mamba-1 + 4 attention cache layers (attention every 8th from layer 4), layer 0 Mamba. Mamba-1
# state: conv 3 x 8,192 + SSM 8,192 x 16 = 155,648 bf16 = 311,296 B; attention 4,096 B a token: 311,296 / 4,096 = 76
# tokens, raised to 80: a page 327,680 B (5.26% padding). Group size 4: 7 Mamba groups + 1 attention group, a block
# 1,310,720 B: 100,000,000 // 1,310,720 = 76 blocks. A 262,144-token request: attention cdiv(262,144, 80) = 3,277
# blocks + 7 = 3,284.
#   0.18.1: the first (Mamba) group's 1 block fits: starts; 76 // 8 x 80 = 720 tokens; 76 / 3,284 = 0.02x.
#   0.19.0: 3,284 x 1,310,720 = 4,304,404,480 B = 4.01 GiB: refused; cdiv(L, 80) + 7 <= 76: 69 x 80 = 5,520.
JAMBA = ("ai21labs/AI21-Jamba-1.5-Mini", "262144", 76, 3_284, "720", "262,144", "0.02", "4.01", 5_520)


@pytest.mark.parametrize("model, context, blocks, per_request, tokens, length, concurrency, needed, estimate",
                         [NEMOTRON, JAMBA])
def test_mamba_first_hybrid_priced_by_its_state_group(model, context, blocks, per_request, tokens, length,
                                                      concurrency, needed, estimate):
    _, engine = _engine(model, "0.18.1", *MAMBA_FLAGS, context=context)
    assert engine["starts"] is True and engine["refusal"] is None
    assert (engine["num_gpu_blocks"], engine["blocks_per_request"]) == (blocks, per_request)
    assert f"GPU KV cache size: {tokens} tokens" in engine["log_lines"]
    assert f"Maximum concurrency for {length} tokens per request: {concurrency}x" in engine["log_lines"]
    _, engine = _engine(model, "0.19.0", *MAMBA_FLAGS, context=context)
    assert engine["starts"] is False
    assert f"({context}), ({needed} GiB KV cache is needed, which is larger than the available KV cache memory " \
           f"(0.09 GiB)" in engine["refusal"]["reason"]
    assert engine["refusal"]["estimated_max_model_len"] == estimate
