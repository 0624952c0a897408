"""DeepSeek-V4's KV pool and profile-run workspace release by release, from vLLM's source read by hand (paths under
vllm/ of the release named) and hand arithmetic. DeepSeek-V4-Flash at tp 8 on an H200, fp8 cache (fp8_ds_mla),
max_model_len 131,072, 8,192 batched tokens:

Pages (every release alike: 584-byte entries, each page rounded up to 576 bytes; compressor states float32):
- compressed ratio 4: 256 / 4 x 584 = 37,376 -> 37,440 (21 layers); ratio 128: 2 x 584 = 1,168 -> 1,728 (20);
  indexer keys 64 x 132 = 8,448 -> 8,640 (21); window 64 x 584 = 37,376 -> 37,440 (43);
  ratio-4 states 4 x 2,048 x 4 = 32,768 -> 32,832 (21), their indexer's 4 x 512 x 4 = 8,192 -> 8,640 (21);
  ratio-128 states 8 x 1,024 x 4 = 32,768 -> 32,832 (20).
- groups: the 62 compressed / indexer caches; the window caches in two (22 and 21: the repeats per group is
  _approximate_gcd([21, 43, 21, 20], lower bound 21) = 22, padding 1 + 1 + 2 = 4 against 21's 21); the 42 ratio-4
  states; the 20 ratio-128 states.

Block bytes (num_blocks = available // these):
- 0.20-0.22 (v1/core/kv_cache_utils.py 0.20.0 _get_kv_cache_config_deepseek_v4 :1163-1199): the MLA group's
  distinct pages 1,728 + 8,640 + 37,440 = 47,808, times the most layers of one page in a group (22) = 1,051,776.
- 0.23-0.26 (_bucket_layers_by_page_size 0.23.0:1196-1218; 0.24.0 _get_kv_cache_config_packed :1277-1313): with the
  state pages padded to the MLA group's next page (0.20.0 :1541-1548, kept to 0.26.0), 37,440 x 22 (a window group)
  + 1,728 x 20 + 8,640 x 21 = 823,680 + 34,560 + 181,440 = 1,039,680.
- 0.27 on (0.27.0 _get_packed_kv_cache_layout :1283-1306; 0.32.0 _get_kv_cache_bytes_per_block :1520-1549): the
  widest group, 21 x 37,440 + 20 x 1,728 + 21 x 8,640 = 1,002,240.

Blocks a request (window and state groups hold the window - 1 + in-flight tokens, + 1 block; in flight 8,192 up to
0.25, 2 x 8,192 from 0.26): 0.20-0.25 512 + 131 + 131 + 2,051 + 1,041 = 3,866; 0.26 on 512 + 259 + 259 + 4,099 +
2,065 = 7,194. The logged concurrency divides by these from 0.27 (get_max_concurrency_for_kv_cache_config 0.27.0
:937-957), but through 0.26 by cdiv(sum of pages x group bytes, MLA group bytes) (0.20.0 :872-890): the group bytes
with padded states are 1,002,240 / 823,680 / 786,240 / 21 x (8,640 + 37,440) = 967,680 / 20 x 37,440 = 748,800, so
0.20-0.25: 3,488,258,880 / 1,002,240 -> 3,481; 0.26: 6,442,908,480 / 1,002,240 -> 6,429.
The start-up check prices a request at 47,808 x 22 a block through 0.28 (_max_memory_usage_bytes_from_groups
0.20.0 :1746-1770, 0.28.0 the same), at the pool's block (and the null block) from 0.29.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.conftest import estimate_plan

FLASH = "deepseek-ai/DeepSeek-V4-Flash"
TUPLE_BLOCK = 47_808 * 22
SLOT_BLOCK = 37_440 * 22 + 1_728 * 20 + 8_640 * 21
WIDEST_BLOCK = 21 * 37_440 + 20 * 1_728 + 21 * 8_640


def flash(release: str, *flags: str) -> dict:
    return estimate_plan(FLASH, "--gpu", "H200", "--tp", "8", "--kv-cache-dtype", "fp8", "--engine",
                         f"vllm=={release}", "--max-model-len", "131072", *flags)


@pytest.mark.parametrize("release, block, weighted", [
    ("0.20.0", TUPLE_BLOCK, 3_481), ("0.21.0", TUPLE_BLOCK, 3_481), ("0.22.1", TUPLE_BLOCK, 3_481),
    ("0.23.0", SLOT_BLOCK, 3_481), ("0.25.1", SLOT_BLOCK, 3_481), ("0.26.0", SLOT_BLOCK, 6_429),
    ("0.27.0", WIDEST_BLOCK, 7_194), ("0.28.0", WIDEST_BLOCK, 7_194), ("0.29.0", WIDEST_BLOCK, 7_194),
    ("0.32.0", WIDEST_BLOCK, 7_194),
])
def test_blocks_and_concurrency_by_release(release, block, weighted):
    engine = flash(release)["engine"]
    assert engine["starts"]
    assert engine["num_gpu_blocks"] == engine["available_kv_cache_bytes"] // block
    assert engine["max_concurrency"] == pytest.approx(engine["num_gpu_blocks"] / weighted, rel=1e-12)
    assert engine["blocks_per_request"] == (3_866 if release < "0.26" else 7_194)  # what the scheduler admits by


def test_0_20_0_logs_blocks_per_group_tokens():
    engine = flash("0.20.0")["engine"]  # 0.20.0 _report_kv_cache_config: num_blocks // 5 groups x the states' 4
    assert engine["gpu_kv_cache_tokens"] == engine["available_kv_cache_bytes"] // TUPLE_BLOCK // 5 * 4


# 7.4e9 bytes: the widest-group pool holds 7,194 x 1,002,240 = 7,210,114,560 (+ the null block from 0.29), but the
# 0.27-0.28 check asks 7,194 x 1,051,776 = 7,566,476,544 (7.05 GiB); the longest length it fits is where
# 6,682 + cdiv(L, 256) <= 7,400,000,000 // 1,051,776 = 7,035 blocks: cdiv(L, 256) <= 353, L = 90,368
@pytest.mark.parametrize("release, starts", [("0.27.0", False), ("0.28.0", False), ("0.29.0", True)])
def test_the_start_up_check_prices_the_0_20_block_through_0_28(release, starts):
    engine = flash(release, "--kv-cache-memory-bytes", "7400000000")["engine"]
    assert engine["starts"] is starts
    if not starts:
        assert "(7.05 GiB KV cache is needed" in engine["refusal"]["reason"]
        assert "the estimated maximum model length is 90368." in engine["refusal"]["reason"]


def test_flashmla_reserves_its_top_k_views_from_0_27():
    from kvplan.engines.vllm_budget import v4_prefill_workspace
    from kvplan.model.sources import resolve

    spec = resolve(FLASH)
    # 16,384 batched tokens, so that the gather outgrows the indexer's 174,063,616 B (the test below)
    settings = SimpleNamespace(max_model_len=131_072, max_num_batched_tokens=16_384)
    gather = 4 * (131_072 // 4 + 128 + 16_384) * 512 * 2  # flashmla.py 0.26.0 :85-102: the bf16 gather alone
    assert gather == 201_850_880
    for release in ("0.20.0", "0.22.0", "0.26.0"):
        assert v4_prefill_workspace(spec, settings, (9, 0), release) == gather
    # flashmla.py 0.27.0 :99-106: + int32 [16,384, round_up(512 + 128, 128) = 640] and [16,384]
    assert v4_prefill_workspace(spec, settings, (9, 0), "0.27.0") == gather + 41_943_040 + 65_536
    # v1/worker/workspace.py get_simultaneous rounds each view up to 256 bytes: 8,191 x 4 = 32,764 -> 32,768
    odd = SimpleNamespace(max_model_len=131_072, max_num_batched_tokens=8_191)
    assert v4_prefill_workspace(spec, odd, (9, 0), "0.32.0") == \
        4 * (32_768 + 128 + 8_191) * 1_024 + 8_191 * 640 * 4 + 32_768


# --block-size 512 from 0.32: the compressed / indexer backends' kernel block is 256 (models/deepseek_v4/sparse_mla.py
# 0.32.0:60-61, v1/attention/backends/mla/indexer.py :354-356), so customize_attention_spec gives them MultipleOf(256)
# (v1/worker/utils.py :476-486) and a block is rounded up to lcm of their 256-token pages, lcm(37,440, 1,728, 8,640) =
# 112,320 (kv_cache_utils.py :1545-1549); the widest group at 512 tokens: 21 x round_up(128 x 584, 576) = 21 x 74,880
# + 20 x round_up(4 x 584, 576) = 20 x 2,880 + 21 x round_up(128 x 132, 576) = 21 x 17,280 = 1,992,960 -> 2,021,760.
@pytest.mark.parametrize("release, block", [("0.31.0", 1_992_960), ("0.32.0", 2_021_760), ("0.34.0", 2_021_760)])
def test_a_larger_block_strides_by_the_kernel_pages_from_0_32(release, block):
    engine = flash(release, "--block-size", "512", "--kv-cache-memory-bytes", "100000000000")["engine"]
    assert engine["num_gpu_blocks"] == 100_000_000_000 // block


def test_a_pipeline_stage_holds_whole_decoder_layers():
    """vLLM builds each decoder layer, every cache of it, on one stage (models/deepseek_v4/nvidia/model.py
    make_layers over get_pp_indices). A layer's caches by its compress_ratio (attention.py DeepseekV4Attention): 0 a
    window; 128 a window, a compressed cache and its compressor's state; 4 those and an indexer's keys and state.
    Flash's ratios: 0, 0, then 4, 128 alternating to layer 41, then 4."""
    from kvplan.model.sources import resolve
    from kvplan.plan.sharding import pp_stages, stage_cache_layers

    spec = resolve(FLASH)
    ratios = [0, 0] + [4 if i % 2 == 0 else 128 for i in range(2, 42)] + [4]
    caches = {0: 1, 128: 3, 4: 5}
    stages = pp_stages(43, 22, (2,) * 21 + (1,))
    held = stage_cache_layers(spec, stages)
    assert [len(h) for h in held] == [sum(caches[r] for r in ratios[s.first_layer:s.end_layer]) for s in stages]
    assert [spec.layers[i].kind for i in sorted(held[0])] == ["v4_window", "v4_window"]
    assert sorted(held[1]) == list(range(2, 10))  # layers 2 (ratio 4: 5 caches) and 3 (ratio 128: 3)
    assert sum(len(h) for h in held) == len(spec.layers) == 2 + 21 * 5 + 20 * 3 == 167


# The indexer's K gather shares FlashMLA's workspace (one buffer, grown to the largest request): keys =
# get_max_prefill_buffer_size // 4, that size max_model_len x 40 up to 0.31 (v1/attention/backends/mla/indexer.py
# 0.20.0:219-229), x 8 x (5 up to 256 Ki tokens, else 2) from 0.32 (indexer.py 0.32.0:918-929, config/vllm.py
# :1790-1798); each key 128 fp8 bytes and a 4-byte scale, and the radix top-k's 1 MiB (sparse_attn_indexer.py
# 0.20.0:108-117). At 131,072 tokens: 1,310,720 keys, 173,015,040 + 1,048,576 = 174,063,616 B, above 0.26's gather
# (168,296,448) and below 0.27's (168,296,448 + 20,971,520 + 32,768 = 189,300,736); at 1,048,576 tokens 10,485,760
# keys (1,385,168,896 B) up to 0.31, 4,194,304 (554,696,704 B) from 0.32, where the gather is 1,107,820,544 and
# 1,128,824,832 with its top-k views.
@pytest.mark.parametrize("length, release, workspace", [
    (131_072, "0.26.0", 174_063_616), (131_072, "0.27.0", 189_300_736), (131_072, "0.32.0", 189_300_736),
    (1_048_576, "0.26.0", 1_385_168_896), (1_048_576, "0.31.0", 1_385_168_896), (1_048_576, "0.32.0", 1_128_824_832),
])
def test_the_workspace_is_the_larger_of_flashmla_s_and_the_indexer_s(length, release, workspace):
    from kvplan.engines.vllm_budget import v4_prefill_workspace
    from kvplan.model.sources import resolve

    settings = SimpleNamespace(max_model_len=length, max_num_batched_tokens=8_192)
    assert v4_prefill_workspace(resolve(FLASH), settings, (9, 0), release) == workspace
