"""Session 73's review: defects found in what the session merged, each pinned by hand arithmetic or vLLM's words.

- V0's Mamba state cache (vllm_mamba_v0.v0_state_term) is subtracted from the budget but the table's budget line left
  it out, so its terms did not add up: Jamba-1.5-Mini at tp 2 on vLLM 0.9.2 keeps 256 slots x 28 Mamba layers x
  (conv 3 x 4,096 + temporal 4,096 x 16) x 2 B = 1,115,684,864 B (1.04 GiB) a GPU.
- DCP's LSE assert was quoted in 0.10.2-0.19's words on every release; 0.20.0 reworded it (v1/worker/cp_utils.py
  0.19.1:31-36 "DCP requires attention impls to return the softmax lse for decode, ...", 0.20.0:31-37
  "Decode Context Parallelism (DCP) requires attention implementations to return the softmax LSE during decode, ...").
- The KV-head replication warning ignored -dcp: at tp 16 each of Llama-3.1-8B's 8 KV heads sits on 16 / 8 = 2 GPUs,
  and -dcp 2 splits its tokens over those two, so the group holds 1x, not 2x; at tp 32, 4 GPUs a head over 2 DCP
  ranks, 2x.
- Online MXFP4's block refusal (MXFP4 requires input_size_per_partition (2736) ...) kept vLLM's period in its headline,
  which the remedy sentence follows with "; ".
"""

from __future__ import annotations

from conftest import estimate_plan, run_kvplan

JAMBA = "ai21labs/AI21-Jamba-1.5-Mini"
LLAMA8 = "meta-llama/Llama-3.1-8B"
DSV2_LITE = "deepseek-ai/DeepSeek-V2-Lite"


def test_v0_mamba_cache_in_the_budget_line():
    args = (JAMBA, "--gpu", "H100", "-tp", "2", "-c", "8192", "--engine", "vllm==0.9.2")
    terms = {t["name"]: t["bytes"] for t in estimate_plan(*args)["budget"]["terms"]}
    # per layer a rank: conv (4 - 1) x (2 x 4,096 / 2) x 2 B = 24,576 + temporal 4,096 x 16 x 2 B = 131,072
    assert terms["mamba_cache"] == 256 * 28 * (24_576 + 131_072) == 1_115_684_864
    table = run_kvplan("estimate", *args, env={"COLUMNS": "400"})
    assert table.returncode == 0, table.stderr
    line = next(line for line in table.stdout.splitlines() if line.startswith("KV budget"))
    assert " - Mamba state cache 1.04 GiB - NCCL " in line  # 1,115,684,864 / 2**30 = 1.039


def _refusal(*args) -> str:
    return estimate_plan(*args)["engine"]["refusal"]["reason"]


def test_dcp_lse_assert_in_each_release_words():
    """FlashInfer MLA on B200 (0.15-0.24, vllm_dcp.py) stops at the LSE assert; impl FlashInferMLAImpl."""
    args = (DSV2_LITE, "--gpu", "B200", "-tp", "2", "-dcp", "2", "-c", "8192")
    old = _refusal(*args, "--engine", "vllm==0.19.1")
    assert old.endswith("AssertionError: DCP requires attention impls to return the softmax lse for decode, but the "
                        "impl FlashInferMLAImpl does not return the softmax lse for decode.")
    new = _refusal(*args, "--engine", "vllm==0.20.0")
    assert new.endswith("AssertionError: Decode Context Parallelism (DCP) requires attention implementations to "
                        "return the softmax LSE during decode, but FlashInferMLAImpl does not. Try a different "
                        "backend by setting --attention-backend or disable DCP.")


def test_replication_warning_counts_dcp_ranks():
    base = (LLAMA8, "--gpu", "H100", "-c", "8192")
    assert estimate_plan(*base, "-tp", "16")["tp_warnings"] == [
        "tp 16 > 8 KV heads: each KV head is replicated on 2 GPUs, so the group holds 2x the KV memory of an "
        "unreplicated split."]
    assert estimate_plan(*base, "-tp", "16", "-dcp", "2")["tp_warnings"] == []  # 16 / 8 / 2 = 1 copy
    assert estimate_plan(*base, "-tp", "32", "-dcp", "2")["tp_warnings"] == [
        "tp 32 > 8 KV heads: each KV head is replicated on 4 GPUs (2 DCP ranks splitting its tokens), so the group "
        "holds 2x the KV memory of an unreplicated split."]
    checked = run_kvplan("check", *base, "-tp", "16", "-dcp", "2")
    assert checked.returncode == 0 and "replicated" not in checked.stdout + checked.stderr, checked.stdout
    # tp 32, dcp 2: a token on 32 / 2 = 16 GPUs, one KV head each: 16 x 32 layers x 2 x 128 x 2 B = 256 KiB
    wide = run_kvplan("check", *base, "-tp", "32", "-dcp", "2")
    assert "one token takes 256 KiB of KV across the 32 GPUs vs 128 KiB unreplicated" in " ".join(
        (wide.stdout + wide.stderr).split())


def test_mxfp4_block_refusal_headline_has_one_stop():
    table = run_kvplan("estimate", DSV2_LITE, "--gpu", "H100", "-tp", "4", "-q", "mxfp4", "-c", "8192",
                       "--engine", "vllm==0.32.0", env={"COLUMNS": "400"})
    assert table.returncode == 0, table.stderr
    assert "to be divisible by 32; vLLM accepts the model without --quantization mxfp4" in table.stdout
    assert "32.;" not in table.stdout
