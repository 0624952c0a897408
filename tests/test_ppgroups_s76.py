"""Pipeline parallelism and V1's KV-cache groups by release (engines/vllm_pp_groups.py), checked by hand against the
wheels' code:

- 0.8.2-0.10.2: get_kv_cache_config once a worker on its own layers (v1/engine/core.py 0.10.1.1:188-193): each
  worker's group size is the smallest of ITS kinds' counts, its block that many pages, its num_blocks = available
  // page // group size (kv_cache_utils.py 0.10.1.1:989), and it logs its own count over its own groups
  (:1011-1018: tokens = num_blocks // groups x 16); unify_kv_cache_configs (:1121-1154) sorts the groups, asserts
  them equal over zip(), and takes the smallest num_blocks; the scheduler counts worker 0's (core.py :202-208).
- 0.11.0: the whole model grouped once, the i-th group of a kind taking layers[i::n] (0.11.0:997-1000), projected
  on each worker (:1211-1291); each worker still logs its own count (:1080-1091) before the smallest is taken.

The layer split is get_pp_indices' (distributed/utils.py, the same file in 0.9.1 to 0.11.0: layers // pp each, one
more on each stage before the last counting back from the second-to-last). Every worker gets the same KV memory here
(--kv-cache-memory-bytes, kvplan's "each worker's KV memory"; vLLM's flag from 0.10.2): M = 30 GiB.
"""

from __future__ import annotations

import pytest

from conftest import estimate_plan
from kvplan.engines.vllm_pp_groups import pp_worker_config
from kvplan.plan.sharding import pp_partition

M = 30 * 2**30  # 32,212,254,720 bytes on every worker
FLAGS = ("--gpu", "H100", "--kv-cache-memory-bytes", str(M), "--max-model-len", "32768",
         "--max-num-batched-tokens", "2048")
GEMMA3 = "google/gemma-3-27b-it"  # 62 layers, every 6th full (5, 11, ..., 59: 10), 52 sliding over 1,024
GEMMA3_PAGE = 16 * 2 * 16 * 128 * 2  # 131,072 bytes: 16 tokens, K and V, 16 KV heads of 128, bf16
# one request at 32,768 tokens, one batch of 2,048 in flight (releases before 0.26 reserve one):
GEMMA3_SLIDING = -(-(1024 - 1 + 2048) // 16) + 1  # 193 blocks: cdiv(3,071, 16) + 1
FULL = 32768 // 16  # 2,048 blocks
GPT_OSS = "openai/gpt-oss-20b"  # 24 layers, even ones sliding over 128, odd ones full
GPT_OSS_PAGE = 16 * 2 * 8 * 64 * 2  # 32,768 bytes: 8 KV heads of 64
GPT_OSS_SLIDING = -(-(128 - 1 + 2048) // 16) + 1  # 137 blocks: cdiv(2,175, 16) + 1


def _plan(model: str, version: str, pp: int, *extra) -> tuple:
    plan = estimate_plan(model, "-pp", str(pp), "--engine", f"vllm=={version}", *FLAGS, *extra)
    return plan, plan["engine"]


def test_layer_split_is_get_pp_indices():
    # 62 // 4 = 15, remainder 2: partitions[-2] and [-3] one more; 24 // 5 = 4, remainder 4: [-2] to [-5]
    assert pp_partition(62, 4) == (15, 16, 16, 15)
    assert pp_partition(24, 5) == (5, 5, 5, 5, 4)
    assert pp_partition(24, 3) == (8, 8, 8)
    assert pp_partition(24, 5, (4, 6, 4, 6, 4)) == (4, 6, 4, 6, 4)  # VLLM_PP_LAYER_PARTITION as given


def test_release_rule():
    assert [pp_worker_config(v) for v in ("0.8.1", "0.8.2", "0.9.1", "0.10.1.1", "0.10.2", "0.11.0", "0.11.1",
                                          "0.20.0")] == \
        ["agreed", "own", "own", "own", "own", "projected", "agreed", "agreed"]


def test_gemma3_pp4_each_worker_groups_its_own_layers():
    # at 0.10.2, the one release that both groups each worker's own layers (0.8.2-0.10.2, test_release_rule) and takes
    # --kv-cache-memory-bytes (0.10.2 on), the equal memory every worker needs here; 0.10.1 groups alike but has no
    # such flag, and a GPU budget differs by stage (embeddings first, LM head last)
    version = "0.10.2"
    # stages: layers 0-14 (full 5, 11: 2 + 13 sliding), 15-30 (17, 23, 29: 3 + 13), 31-46 (35, 41: 2 + 14),
    # 47-61 (47, 53, 59: 3 + 12). Group size = the stage's full count:
    #   stage 0: 2 -> 7 sliding groups (1 padding layer, 1/13 = 7.69%) + 1 full = 8 groups, block 2 pages
    #   stage 1: 3 -> 5 sliding (2 padding, 2/13 = 15.38%) + 1 full = 6, block 3 pages
    #   stage 2: 2 -> 7 sliding (no padding) + 1 full = 8, block 2 pages
    #   stage 3: 3 -> 4 sliding (no padding) + 1 full = 5, block 3 pages
    two, three = M // (2 * GEMMA3_PAGE), M // (3 * GEMMA3_PAGE)
    assert (two, three) == (122880, 81920)
    plan, e = _plan(GEMMA3, version, 4)
    assert e["starts"]
    assert e["num_gpu_blocks"] == 81920  # the smallest: the 3-page stages
    assert e["num_kv_cache_groups"] == 8  # worker 0's
    per_request = 7 * GEMMA3_SLIDING + FULL  # 3,399 blocks over worker 0's groups
    assert e["blocks_per_request"] == per_request == 3399
    # worker 0's own line, logged first: 122,880 // 8 x 16 tokens; 122,880 / 3,399
    assert e["gpu_kv_cache_tokens"] == two // 8 * 16 == 245760
    assert e["max_concurrency"] == pytest.approx(two / per_request) == pytest.approx(36.1518, abs=1e-4)
    assert e["log_lines"] == [
        "Available KV cache memory: 30.0 GiB",
        "Add 1 padding layers, may waste at most 7.69% KV cache memory",
        "GPU KV cache size: 245,760 tokens",  # stage 0
        "Maximum concurrency for 32,768 tokens per request: 36.15x",
        "Add 2 padding layers, may waste at most 15.38% KV cache memory",
        f"GPU KV cache size: {three // 6 * 16:,} tokens",  # stage 1: 218,448
        f"Maximum concurrency for 32,768 tokens per request: {three / (5 * GEMMA3_SLIDING + FULL):.2f}x",  # 27.19
        "GPU KV cache size: 245,760 tokens",  # stage 2: stage 0's words but for its padding line
        "Maximum concurrency for 32,768 tokens per request: 36.15x",
        f"GPU KV cache size: {three // 5 * 16:,} tokens",  # stage 3: 262,144
        f"Maximum concurrency for 32,768 tokens per request: {three / (4 * GEMMA3_SLIDING + FULL):.2f}x",  # 29.05
    ]
    # resident: the pool less its null block, each request holding its 2,048 full blocks and, per sliding group,
    # the window's 65 (64 gives the same count)
    assert plan["max_concurrency"] == (three - 1) // (FULL + 7 * 65) == (three - 1) // (FULL + 7 * 64) == 32


def test_gemma3_pp4_from_0_11_0_the_whole_model_is_grouped():
    # group size 10 (the full count): 52 sliding -> 6 groups (8 padding, 15.38%) + 1 full = 7 groups; sliding group
    # j takes sliding layers j, j + 6, ...: stage 0's 13 sliding (0-12) put 3 in group 0, stage 1's (13-25) 3 in
    # group 1, stage 2's (26-39) 3 in groups 2 and 3, stage 3's (40-51) 2 in each; full 2, 3, 2, 3: 3 pages a block
    # on every stage, every worker 81,920 blocks
    three = M // (3 * GEMMA3_PAGE)
    plan, e = _plan(GEMMA3, "0.11.0", 4)
    assert e["num_gpu_blocks"] == three == 81920
    assert e["num_kv_cache_groups"] == 7
    per_request = 6 * GEMMA3_SLIDING + FULL  # 3,206
    assert e["blocks_per_request"] == per_request
    assert e["gpu_kv_cache_tokens"] == three // 7 * 16 == 187232
    assert e["max_concurrency"] == pytest.approx(three / per_request) == pytest.approx(25.5521, abs=1e-4)
    assert e["log_lines"] == ["Available KV cache memory: 30.0 GiB",
                              "Add 8 padding layers, may waste at most 15.38% KV cache memory",
                              "GPU KV cache size: 187,232 tokens",  # every worker alike: one copy
                              "Maximum concurrency for 32,768 tokens per request: 25.55x"]
    assert plan["max_concurrency"] == (three - 1) // (FULL + 6 * 65) == 33


@pytest.mark.parametrize("version", ["0.10.2", "0.11.0"])
def test_gpt_oss_pp3_the_same_either_way(version):
    # 8 layers a stage, 4 sliding + 4 full: its own groups (size 4) and the whole model's (size 12, 4 on each
    # stage) both make a block of 4 pages and 2 groups. (0.10.1 refuses PP for GptOssForCausalLM.)
    blocks = M // (4 * GPT_OSS_PAGE)
    plan, e = _plan(GPT_OSS, version, 3)
    assert e["num_gpu_blocks"] == blocks == 245760
    assert e["num_kv_cache_groups"] == 2
    assert e["blocks_per_request"] == GPT_OSS_SLIDING + FULL == 2185
    assert e["gpu_kv_cache_tokens"] == blocks // 2 * 16 == 1966080
    assert e["max_concurrency"] == pytest.approx(blocks / 2185)
    assert e["log_lines"][1:] == ["GPU KV cache size: 1,966,080 tokens",
                                  "Maximum concurrency for 32,768 tokens per request: 112.48x"]


def test_gpt_oss_pp5_own_groups_disagree_in_0_10_2():
    # stages of 5, 5, 5, 5, 4 layers: stage 0 (0-4) 3 sliding + 2 full, group size 2, sorted [full, sliding,
    # sliding]; stage 1 (5-9) 2 sliding + 3 full, sorted [full, full, sliding]: zip pairs sliding with full, and
    # unify_kv_cache_configs' assert stops the engine core after every worker logged its lines
    plan, e = _plan(GPT_OSS, "0.10.2", 5)
    assert not e["starts"]
    assert e["refusal"]["reason"].endswith("unify_kv_cache_configs): AssertionError")
    assert "stage 0: full, sliding 128, sliding 128; stage 1: full, full, sliding 128" in e["refusal"]["reason"]
    assert "GPU KV cache size: 2,621,440 tokens" in e["log_lines"]  # stage 0: 491,520 // 3 x 16


def test_gpt_oss_pp5_starts_from_0_11_0():
    # whole model: 2 groups of 12; stages 0-3 hold 3 of one kind: 3 pages, stage 4 2 pages; the smallest count
    # is M // 3 pages; worker 0 logs its own, the same
    blocks = M // (3 * GPT_OSS_PAGE)
    plan, e = _plan(GPT_OSS, "0.11.0", 5)
    assert e["starts"] and e["num_gpu_blocks"] == blocks == 327680
    assert e["gpu_kv_cache_tokens"] == blocks // 2 * 16 == 2621440
    assert e["log_lines"][-2:] == [f"GPU KV cache size: {M // (2 * GPT_OSS_PAGE) // 2 * 16:,} tokens",  # stage 4
                                   f"Maximum concurrency for 32,768 tokens per request: "
                                   f"{M // (2 * GPT_OSS_PAGE) / 2185:.2f}x"]


def test_gpt_oss_pp5_partition_that_pairs_the_kinds_starts_in_0_10_2():
    # --pp-layer-partition 4,6,4,6,4: every stage an even number, half sliding, half full: one group of each kind,
    # sorted [full, sliding] everywhere; blocks 2 pages on the 4-layer stages, 3 on the 6-layer ones
    two, three = M // (2 * GPT_OSS_PAGE), M // (3 * GPT_OSS_PAGE)
    plan, e = _plan(GPT_OSS, "0.10.2", 5, "--pp-layer-partition", "4,6,4,6,4")
    assert e["starts"]
    assert e["num_gpu_blocks"] == three == 327680
    assert e["num_kv_cache_groups"] == 2
    assert e["gpu_kv_cache_tokens"] == two // 2 * 16 == 3932160  # worker 0's own 491,520 blocks
    assert e["max_concurrency"] == pytest.approx(two / (GPT_OSS_SLIDING + FULL))
