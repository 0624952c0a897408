"""vLLM V1 before its hybrid KV cache manager, and with it turned off (engines/vllm_hybrid_manager.py), checked
against the wheels' code and hand arithmetic:

- 0.8.0-0.8.2: every decoder layer a FullAttentionSpec (v1/worker/gpu_model_runner.py 0.8.0:1490-1499);
- 0.8.3-0.9.0: SlidingWindowSpec per sliding layer (gpu_model_runner.py 0.8.5:1751-1757), checked as such
  (kv_cache_utils.py 0.8.5:699), then made full where full layers are present (unify_hybrid_kv_cache_specs
  0.8.5:657-681): one group, no "padding layers" line; "Maximum concurrency" = num_tokens / max_model_len (0.8.5:636);
- 0.9.1 on: a group per kind ("Add %d padding layers": kv_cache_utils.py 0.9.1:831, its first release), unless
  VllmConfig turns the manager off: chunked local attention (Llama 4) in 0.10.1-0.13.0 (config/__init__.py
  0.10.1:3667-3684; envs.py VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE "0" to 0.13.0, "1" from 0.14.0), or
  chunked local attention with an EAGLE drafter from 0.10.0 (config.py 0.10.0:4670-4676);
- a chunked layer has no spec of its own before 0.10.0 (ChunkedLocalAttentionSpec: gpu_model_runner.py
  0.10.0:2807-2812), so Llama 4 is all full attention on 0.8.x-0.9.x.

No case of ../shared/groundtruth/vllm-startup-logs.yaml runs a sliding or chunked model on 0.8.0-0.10.1 (A14, Gemma 3
with "Add 1 padding layers", is a later release), so the figures are checked by hand: one page is 16 tokens of one
layer, and a block of the pool is one page of every layer of a group.
"""

from __future__ import annotations

import json

import pytest

from conftest import estimate_plan

GEMMA3 = "google/gemma-3-27b-it"  # 62 layers (52 sliding over 1,024, 10 full), 16 KV heads of 128, bf16
GEMMA3_PAGE = 16 * 2 * 16 * 128 * 2  # 131,072 bytes: 16 tokens, K and V, 16 heads of 128, 2 bytes
GEMMA2 = "google/gemma-2-9b"  # 42 layers (21 sliding over 4,096, 21 full), 8 KV heads of 256, bf16
GEMMA2_PAGE = 16 * 2 * 8 * 256 * 2  # 131,072 bytes
SCOUT = "meta-llama/Llama-4-Scout-17B-16E-Instruct"  # 48 layers (36 chunked over 8,192, 12 full), 8 KV heads of 128
SCOUT_PAGE_TP4 = 16 * 2 * 2 * 128 * 2  # 16,384 bytes: 2 of the 8 KV heads on each of 4 GPUs
PADDING = "Add 8 padding layers, may waste at most 15.38% KV cache memory"  # 8 / 52 layers
DISABLED = ("Hybrid KV cache manager is disabled for this hybrid model, This means we do not enable any "
            "optimizations for saving KV cache memory (e.g., dropping the KV cache outside the sliding window). "
            "The compute of layers like sliding window is still saved.")  # kv_cache_utils.py 0.9.1:898-901
CHUNKED = ("There is a latency regression when using chunked local attention with the hybrid KV cache manager. "
           "Disabling it, by default. To enable it, set the environment "
           "VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE=1.")  # config/__init__.py 0.10.1:3677-3682


def _engine(model: str, version: str, *flags) -> tuple:
    plan = estimate_plan(model, "--gpu", "H100", "--engine", f"vllm=={version}", *flags)
    return plan, plan["engine"]


@pytest.mark.parametrize("version", ["0.8.5", "0.9.0"])
def test_gemma3_before_the_hybrid_manager_is_one_full_group(version):
    plan, e = _engine(GEMMA3, version, "-c", "32768")
    per_block = 62 * GEMMA3_PAGE  # every layer in one group, the sliding ones too: 8,126,464 bytes
    blocks = e["available_kv_cache_bytes"] // per_block
    assert e["num_kv_cache_groups"] == 1
    assert e["num_gpu_blocks"] == blocks == 1_364  # 11,091,442,874 // 8,126,464
    assert e["gpu_kv_cache_tokens"] == blocks * 16 == 21_824
    assert e["blocks_per_request"] == 32_768 // 16  # 2,048: the request counted in full in every layer
    # the start-up check read the sliding layers at their window (next test), so it starts, holding no request
    assert e["starts"] and e["refusal"] is None and plan["max_concurrency"] == 0
    assert e["log_lines"] == ["Available KV cache memory: 10.33 GiB", "GPU KV cache size: 21,824 tokens",
                              "Maximum concurrency for 32,768 tokens per request: 0.67x"]  # 21,824 / 32,768


def test_gemma3_0_8_5_checks_the_sliding_layers_at_their_window():
    _, e = _engine(GEMMA3, "0.8.5", "-c", "131072")
    # check_enough_kv_cache_memory (kv_cache_utils.py 0.8.5:527-529) sums each layer's own spec:
    # 10 full layers x 8,192 blocks + 52 sliding x (cdiv(1,023 + 8,192 batched tokens, 16) + 1 = 577) blocks
    assert e["max_num_batched_tokens"] == 8_192
    full, sliding = 10 * 8_192 * GEMMA3_PAGE, 52 * 577 * GEMMA3_PAGE
    assert full + sliding == 14_670_102_528  # 13.66 GiB
    reason = e["refusal"]["reason"]
    assert "(13.66 GiB KV cache is needed" in reason and "(10.33 GiB)" in reason
    # longest length: 10 x cdiv(L, 16) x page <= 11,091,442,874 - sliding -> 5,461 blocks, 87,376 tokens
    assert (e["available_kv_cache_bytes"] - sliding) // (10 * GEMMA3_PAGE) == 5_461
    assert "the estimated maximum model length is 87376" in reason


def test_gemma3_0_8_0_checks_every_layer_in_full():
    _, e = _engine(GEMMA3, "0.8.0", "-c", "32768")
    # gpu_model_runner.py 0.8.0:1494: FullAttentionSpec for every decoder layer: 62 x 2,048 pages = 15.5 GiB
    assert 62 * 2_048 * GEMMA3_PAGE == 16_642_998_272
    assert not e["starts"] and "(15.5 GiB KV cache is needed" in e["refusal"]["reason"]


@pytest.mark.parametrize("version", ["0.9.1", "0.9.2", "0.10.0", "0.10.1"])
def test_gemma3_from_0_9_1_is_grouped_with_padding(version):
    _, e = _engine(GEMMA3, version, "-c", "32768")
    # groups of the smaller kind's 10 layers: 1 full, cdiv(52, 10) = 6 sliding holding 60 slots, 8 of them padding
    assert e["num_kv_cache_groups"] == 7
    assert e["available_kv_cache_bytes"] // (10 * GEMMA3_PAGE) == e["num_gpu_blocks"] == 8_462
    assert PADDING in e["log_lines"] and DISABLED not in e["log_lines"]


@pytest.mark.parametrize("version, groups, blocks, concurrency", [
    # 0.8.5: one group of 42 layers; 47,796,133,274 // (42 x 131,072) = 8,682 blocks, x 16 = 138,912 tokens;
    # logged concurrency 138,912 / 8,192 = 16.957
    ("0.8.5", 1, 8_682, "16.96x"),
    # 0.9.2: two groups of 21; 47,796,133,274 // (21 x 131,072) = 17,364 blocks; a request needs 8,192 / 16 = 512
    # full blocks + cdiv(min(4,095 + 8,192 batched, 8,192), 16) + 1 = 513 sliding: 17,364 / 1,025 = 16.94
    ("0.9.2", 2, 17_364, "16.94x"),
])
def test_gemma2_by_release(version, groups, blocks, concurrency):
    _, e = _engine(GEMMA2, version, "-c", "8192")
    assert e["num_kv_cache_groups"] == groups and e["num_gpu_blocks"] == blocks
    assert e["gpu_kv_cache_tokens"] == 138_912  # 8,682 x 16 = 17,364 // 2 x 16
    assert e["log_lines"][-1] == f"Maximum concurrency for 8,192 tokens per request: {concurrency}"
    assert not any("padding" in line for line in e["log_lines"])  # 21 and 21 layers: none


def _window_list(tmp_path) -> str:
    """tests/test_window_list_s75.py's model: 4 Llama layers of 8 KV heads of 128, sliding_window [4096, null]."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 4,
        "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 32000,
        "max_position_embeddings": 32_768, "torch_dtype": "bfloat16", "sliding_window": [4096, None]}))
    return str(path)


@pytest.mark.parametrize("version, groups, per_block", [
    ("0.8.5", 1, 4 * 16 * 4_096),  # layers 0 and 2 slide, 1 and 3 do not: unified, one group of 4 pages
    ("0.9.1", 2, 2 * 16 * 4_096),  # a group per kind, 2 layers each
])
def test_window_list_by_release(tmp_path, version, groups, per_block):
    _, e = _engine(_window_list(tmp_path), version)
    assert e["num_kv_cache_groups"] == groups
    assert e["num_gpu_blocks"] == e["available_kv_cache_bytes"] // per_block
    if version == "0.8.5":  # 72,497,265,050 // 262,144 = 276,555 blocks = 4,424,880 tokens, / 32,768 = 135.04x
        assert e["num_gpu_blocks"] == 276_555
        assert e["log_lines"][-1] == "Maximum concurrency for 32,768 tokens per request: 135.04x"


@pytest.mark.parametrize("version, grouped, lines", [
    ("0.8.5", False, ()),  # no chunked spec yet: every layer full, uniform, nothing logged
    ("0.9.2", False, ()),
    ("0.10.0", True, ()),  # ChunkedLocalAttentionSpec and the hybrid manager: 12 full + 3 x 12 chunked
    ("0.10.1", False, (CHUNKED, DISABLED)),  # turned off by default, the chunked layers unified
    ("0.13.0", False, (CHUNKED, DISABLED)),
    ("0.14.0", True, ()),  # the environment default now "1"
])
def test_scout_by_release(version, grouped, lines):
    _, e = _engine(SCOUT, version, "-tp", "4", "-c", "32768")
    per_block = (12 if grouped else 48) * SCOUT_PAGE_TP4
    assert e["num_kv_cache_groups"] == (4 if grouped else 1)
    assert e["num_gpu_blocks"] == e["available_kv_cache_bytes"] // per_block
    assert [line for line in e["log_lines"] if line in (CHUNKED, DISABLED)] == list(lines)
    if lines:  # VllmConfig's warning before the memory profile, get_kv_cache_config's after it
        assert e["log_lines"].index(CHUNKED) < 1 < e["log_lines"].index(DISABLED)
    if version == "0.8.5":  # 13,920,936,090 // (48 x 16,384) = 17,701 blocks, 283,216 tokens, / 32,768 = 8.64x
        assert e["num_gpu_blocks"] == 17_701
        assert e["log_lines"][-1] == "Maximum concurrency for 32,768 tokens per request: 8.64x"


@pytest.mark.parametrize("version, logged", [
    ("0.8.0", "14.04x"),  # 28,745 blocks x 16 = 459,920 tokens / 32,768 (kv_cache_utils.py 0.8.0:539)
    ("0.9.0", "14.04x"),  # the same formula (0.9.0:639), the window notwithstanding
    # get_max_concurrency_for_kv_cache_config (0.9.1:626-641): blocks over a request's,
    # 28,745 / (cdiv(min(4,095 + 8,192 batched, 32,768), 16) + 1 = 769) = 37.38
    ("0.9.1", "37.38x"),
])
def test_all_sliding_concurrency_formula_by_release(version, logged):
    # Mistral-7B-v0.1: 32 layers sliding over 4,096, 8 KV heads of 128: 32 x 16 x 4,096 = 2,097,152 bytes a block
    plan, e = _engine("mistralai/Mistral-7B-v0.1", version)
    if version == "0.8.0":  # no sliding spec, no sliding manager (0.8.3's specialized_manager.py): every request
        assert plan["max_concurrency"] == (28_745 - 1) // 2_048 == 14  # holds its whole length, the null block aside
    assert e["num_gpu_blocks"] == e["available_kv_cache_bytes"] // (32 * 16 * 4_096) == 28_745
    assert e["gpu_kv_cache_tokens"] == 459_920
    assert e["log_lines"][-1] == f"Maximum concurrency for 32,768 tokens per request: {logged}"


def test_unit_rules():
    from kvplan.engines.vllm_hybrid_manager import CHUNKED_WARNING, manager_off, plan_specs, runner_specs
    from kvplan.engines.vllm_specs import CacheSpec

    full = CacheSpec("full", 16, 4096)
    sliding = CacheSpec("sliding", 16, 4096, window=1024)
    chunked = CacheSpec("chunked", 16, 4096, window=8192)
    assert runner_specs([sliding, full], "0.8.2") == [full, full]  # gpu_model_runner.py 0.8.0:1494
    assert runner_specs([sliding, chunked], "0.9.2") == [sliding, full]  # no chunked spec before 0.10.0
    assert manager_off([chunked, full], "0.10.0") == (False, ())
    assert manager_off([chunked, full], "0.10.0", "eagle") == (True, ())  # config.py 0.10.0:4670-4676
    assert manager_off([chunked, full], "0.13.0") == (True, (CHUNKED_WARNING,))
    assert manager_off([chunked, full], "0.14.0", "eagle3") == (True, ())  # 0.34.0 config/vllm.py:2160-2166
    assert plan_specs([sliding, full], "0.9.1") is None  # the hybrid manager groups them as they are
    assert plan_specs([sliding, sliding], "0.8.5") is None  # every layer slides alike: nothing to unify
    planned = plan_specs([sliding, full], "0.8.5")
    assert planned.grouped == [full, full] and planned.checked == [sliding, full] and not planned.cache_lines
