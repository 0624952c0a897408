"""How vLLM's start-up check, its refusal's estimate and --max-model-len auto price one max_model_len request where
the layers' kinds differ (vllm_hybrid_manager.CHECK_PRICING), on an H100 with the KV memory fixed by
--kv-cache-memory-bytes and 8,192 batched tokens, so every figure is hand arithmetic:

- "layers" (to 0.13): every layer's own pages (check_enough_kv_cache_memory, kv_cache_utils.py 0.13.0:664-700).
- "first_group" (0.14.0-0.18.1): group size x page x the first group's blocks ("any_spec = kv_cache_groups[0]",
  0.14.0:1318-1351, 0.18.1:1329-1362); Gemma 3's and gpt-oss's first layer slides, so their full layers go unpriced.
- "groups" (0.19.0 on): group size x page x every group's blocks (0.19.0:1332-1367, 0.20.0:1723-1783); 0.29 holds
  the null block back first, and from 0.26 a window holds 2 x 8,192 in-flight tokens (async scheduling,
  VllmConfig.max_in_flight_tokens, config/vllm.py 0.28.0:550-571).

A window's blocks: cdiv(min(w - 1 + in_flight, L), 16) + 1 (SlidingWindowSpec, kv_cache_interface.py 0.14.0:251-270);
a full layer's cdiv(L, 16).
"""

import pytest

from conftest import estimate_plan
from kvplan.engines.vllm_hybrid_manager import check_pricing

GiB = 2**30


def _engine(model: str, version: str, memory: int, context="131072") -> tuple:
    """(planned max model length, engine figures) of one estimate."""
    plan = estimate_plan(model, "--gpu", "H100", "-c", context, "--engine", f"vllm=={version}",
                         "--kv-cache-memory-bytes", str(memory), "--max-num-batched-tokens", "8192")
    return plan["context"], plan["engine"]


def _refused(engine: dict, needed: str, estimate: int):
    assert engine["starts"] is False
    assert f"(131072), ({needed} GiB KV cache is needed" in engine["refusal"]["reason"]
    assert engine["refusal"]["estimated_max_model_len"] == estimate


@pytest.mark.parametrize("version, rule", [("0.13.0", "layers"), ("0.14.0", "first_group"),
                                           ("0.18.1", "first_group"), ("0.19.0", "groups"), ("0.28.0", "groups"),
                                           ("0.29.0", "groups")])
def test_the_rule_s_releases(version, rule):
    assert check_pricing(version) == rule


# gpt-oss-20b: 24 layers alternating sliding (window 128, layer 0) / full, 8 KV heads x 64 dims bf16: a page is
# 2 x 8 x 64 x 2 B x 16 = 32,768 B; 12 + 12 layers, group size 12, no padding: a block is 12 x 32,768 = 393,216 B.
# 3 GiB = 3,221,225,472 B = 8,192 blocks exactly.
# At L = 131,072: full 8,192 blocks; window cdiv(127 + 8,192, 16) + 1 = 521 (0.29: cdiv(127 + 16,384, 16) + 1 =
# 1,033).
#   layers / groups (0.13, 0.20): (8,192 + 521) x 393,216 = 3,426,091,008 B = 3.19 GiB > 3.0: refused; the longest
#     fits 8,192 - 521 = 7,671 full blocks: 7,671 x 16 = 122,736.
#   first_group (0.18.1): 521 x 393,216 = 204,865,536 B: starts, though a 131,072 request needs 8,713 of its 8,192
#     blocks (logged concurrency 8,192 / 8,713 = 0.94x).
#   0.29: (8,192 + 1,033) x 393,216 = 3,627,417,600 B = 3.38 GiB > 3 GiB less one block: refused; 8,191 - 1,033 =
#     7,158 full blocks: 114,528.
GPT_OSS = "openai/gpt-oss-20b"


def test_gpt_oss_20b_by_rule():
    memory = 3 * GiB
    _refused(_engine(GPT_OSS, "0.13.0", memory)[1], "3.19", 122_736)
    _refused(_engine(GPT_OSS, "0.20.0", memory)[1], "3.19", 122_736)
    _refused(_engine(GPT_OSS, "0.29.0", memory)[1], "3.38", 114_528)
    length, started = _engine(GPT_OSS, "0.18.1", memory)
    assert started["starts"] is True and started["refusal"] is None
    assert started["num_gpu_blocks"] == 8_192 and started["blocks_per_request"] == 8_713
    assert "Maximum concurrency for 131,072 tokens per request: 0.94x" in started["log_lines"]


def test_gpt_oss_20b_auto_fit_by_rule():
    memory = 3 * GiB
    # 0.13.0 has no auto-fit (refused since session 77: test_check_auto_s77.py); 0.14.0 prices the first group
    assert _engine(GPT_OSS, "0.14.0", memory, "auto")[0] == 131_072
    assert _engine(GPT_OSS, "0.18.1", memory, "auto")[0] == 131_072  # the model's whole length
    assert _engine(GPT_OSS, "0.20.0", memory, "auto")[0] == 122_736
    assert _engine(GPT_OSS, "0.29.0", memory, "auto")[0] == 114_528


# Gemma 3 27B: 62 layers, 52 sliding (window 1024, layer 0 slides) + 10 full, 16 KV heads x 128 dims bf16: a page is
# 2 x 16 x 128 x 2 B x 16 = 131,072 B; group size 10: 1 full group, 6 sliding groups (8 padding layers), a block
# 1,310,720 B. At L = 131,072: full 8,192 blocks; window cdiv(1,023 + 8,192, 16) + 1 = 577 (0.29: 1,089).
#   layers (0.13): (10 x 8,192 + 52 x 577) x 131,072 = 14,670,102,528 B = 13.66 GiB.
#   groups (0.20): (8,192 + 6 x 577) x 1,310,720 = 15,275,130,880 B = 14.23 GiB.
#   first_group (0.14-0.18): 577 x 1,310,720 = 756,285,440 B = 0.70 GiB.
#   0.29: (8,192 + 6 x 1,089) x 1,310,720 = 19,301,662,720 B = 17.98 GiB.
GEMMA = "google/gemma-3-27b-it"


def test_gemma_3_27b_at_14_gib():
    """14 GiB = 15,032,385,536 B = 11,468 blocks (.8): 0.13 and 0.18.1 start; 0.20 refuses, the longest fitting
    11,468 - 3,462 = 8,006 full blocks = 128,096; 0.29 11,467 - 6,534 = 4,933 = 78,928."""
    memory = 14 * GiB
    assert _engine(GEMMA, "0.13.0", memory)[1]["starts"] is True
    assert _engine(GEMMA, "0.18.1", memory)[1]["starts"] is True
    _refused(_engine(GEMMA, "0.20.0", memory)[1], "14.23", 128_096)
    _refused(_engine(GEMMA, "0.29.0", memory)[1], "17.98", 78_928)
    assert _engine(GEMMA, "0.14.0", memory, "auto")[0] == 131_072
    assert _engine(GEMMA, "0.20.0", memory, "auto")[0] == 128_096


def test_gemma_3_27b_at_700_mib_three_estimates():
    """700 MiB = 734,003,200 B = 560 blocks of 1,310,720 B = 5,600 pages of 131,072 B; every rule refuses 131,072,
    and each estimates its own longest length (below the window's 9,215 tokens a window holds cdiv(L, 16) + 1 blocks,
    c = cdiv(L, 16)):
      layers (0.13): 10 c + 52 (c + 1) <= 5,600 pages -> c <= 89: 1,424;
      first_group (0.14.0, 0.18.1): c + 1 <= 560 -> c <= 559: 8,944 (its full group then needs 559 + 6 x 560 = 3,919
        of the 560 blocks: the length vLLM picks holds no request);
      groups (0.20): c + 6 (c + 1) <= 560 -> c <= 79: 1,264."""
    memory = 734_003_200
    _refused(_engine(GEMMA, "0.13.0", memory)[1], "13.66", 1_424)
    _refused(_engine(GEMMA, "0.14.0", memory)[1], "0.7", 8_944)
    _refused(_engine(GEMMA, "0.18.1", memory)[1], "0.7", 8_944)
    _refused(_engine(GEMMA, "0.20.0", memory)[1], "14.23", 1_264)
    # 0.13.0 has no auto-fit (refused since session 77: test_check_auto_s77.py); its refusal estimates 1,424 above
    assert _engine(GEMMA, "0.18.1", memory, "auto")[0] == 8_944
    assert _engine(GEMMA, "0.20.0", memory, "auto")[0] == 1_264


@pytest.mark.parametrize("version, estimate", [("0.13.0", 114_688), ("0.18.1", 114_688), ("0.20.0", 114_688),
                                               ("0.29.0", 114_672)])
def test_full_attention_only_is_one_rule(version, estimate):
    """Llama-3.1-8B: 32 full layers, 8 KV heads x 128 dims bf16, one group: a block 32 x 65,536 = 2,097,152 B;
    131,072 tokens need 8,192 blocks = 16.0 GiB. 14 GiB holds 7,168 blocks: 7,168 x 16 = 114,688 whatever the rule,
    7,167 x 16 = 114,672 from 0.29 (the null block held back)."""
    _refused(_engine("meta-llama/Llama-3.1-8B", version, 14 * GiB)[1], "16.0", estimate)
    if version != "0.13.0":  # no auto-fit before 0.14.0 (test_check_auto_s77.py)
        assert _engine("meta-llama/Llama-3.1-8B", version, 14 * GiB, "auto")[0] == estimate

