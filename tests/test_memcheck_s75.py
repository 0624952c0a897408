"""The start-up check's pricing by release (vllm_hybrid_manager.CHECK_PRICING) on Gemma 3 27B, H100, -c 131072.

Hand figures (bf16, 16 KV heads x 128 dims, block 16: a page is 2 x 16 x 128 x 2 B x 16 = 131072 B): 10 full layers
at cdiv(131072, 16) = 8192 pages = 10 GiB; 52 sliding layers (window 1024, 8192 batched tokens) at
cdiv(1023 + 8192, 16) + 1 = 577 pages = 3.664 GiB (SlidingWindowSpec.max_memory_usage_bytes, kv_cache_interface.py
0.10.1). To 0.13 check_enough_kv_cache_memory sums the layers' own specs: 13.66 GiB (kv_cache_utils.py 0.10.1:687,
1095). The grouped sum would add the 8 padding layers' 577 pages, 0.56 GiB, to 14.23 GiB.
"""

import json

from conftest import run_kvplan


def _engine(version: str, util: str) -> dict:
    run = run_kvplan("estimate", "google/gemma-3-27b-it", "--gpu", "H100", "-c", "131072", "--engine",
                     f"vllm=={version}", "--gpu-memory-utilization", util, "--format", "json")
    assert run.returncode == 0, run.stderr
    (plan,) = json.loads(run.stdout)["plans"]
    return plan["engine"]


def test_layers_priced_at_their_own_spec_before_0_14():
    refused = _engine("0.10.1", "0.94")  # 13.5 GiB available
    assert refused["starts"] is False
    assert "(13.66 GiB KV cache is needed" in str(refused["refusal"])
    started = _engine("0.10.1", "0.945")  # 13.89 GiB: under the padded 14.23, over the layers' 13.66
    assert started["starts"] is True and started["refusal"] is None
    assert round(started["available_kv_cache_bytes"] / 2**30, 2) == 13.89
