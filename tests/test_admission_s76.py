"""What V1's scheduler asks of the pool before it admits a prompt, by release (session 76, admission):
kvplan/engines/vllm_admission_gate.py, read in every V1 release's scheduler, KV-cache manager and block pool.

- 0.8.0-0.8.2: the first chunk only, and no null block (block_pool.py 0.8.0 hands out every block; 0.8.3:57 pops one).
- 0.8.3-0.18.x: the first chunk only (sched/scheduler.py 0.18.1:722); a prompt is served where the prefill's peak
  fits the pool less the null block.
- 0.19.x: scheduler_reserve_full_isl (on by default) gates on can_fit_full_sequence (scheduler.py 0.19.0:733-741,
  kv_cache_manager.py :218-255), every group at the whole prompt, sliding windows uncapped.
- 0.20.0 on: the same gate, sliding / chunked groups capped at max_admission_blocks_per_request (single_type 0.20.0:
  116-128), the start-up check's own count.

Llama-3.1-8B-Instruct: 32 layers x 8 KV heads x 128 x 2 (K, V) x 2 B = 131,072 B a token, 2,097,152 B a block of 16.
gemma-3-27b-it at tp 1: 16 KV heads of 128, bf16: 8,192 B a token a layer, 131,072 B a page of 16 tokens; 52 sliding
(window 1,024) + 10 full layers grouped 10 a group (8 padding layers): 6 sliding groups and 1 full, a block 10 pages =
1,310,720 B; --kv-cache-memory-bytes 15,032,385,536 // 1,310,720 = 11,468 blocks; 8,192 batched tokens, one batch
in flight. A sliding group's cap: cdiv(min(1,023 + 8,192, L), 16) + 1 = 576 + 1 = 577 (L >= 9,215).
"""

from __future__ import annotations

from conftest import estimate_plan, run_kvplan

from kvplan.engines.vllm_admission_gate import admission_rule, handed_out

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
GEMMA = "google/gemma-3-27b-it"
EIGHT_GIB = str(8 * 2**30)  # 8,589,934,592 // 2,097,152 = 4,096 blocks
GEMMA_KV = ("--gpu", "H100", "--kv-cache-memory-bytes", "15032385536", "--max-num-batched-tokens", "8192")


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_rule_table_by_release():
    rows = {v: (admission_rule(v).gate, admission_rule(v).null_block) for v in
            ("0.8.0", "0.8.2", "0.8.3", "0.8.5", "0.10.1", "0.18.1", "0.19.0", "0.19.1", "0.20.0", "0.21.0", "0.32.0",
             "0.34.0")}
    assert rows == {"0.8.0": ("none", False), "0.8.2": ("none", False), "0.8.3": ("none", True),
                    "0.8.5": ("none", True), "0.10.1": ("none", True), "0.18.1": ("none", True),
                    "0.19.0": ("uncapped", True), "0.19.1": ("uncapped", True), "0.20.0": ("capped", True),
                    "0.21.0": ("capped", True), "0.32.0": ("capped", True), "0.34.0": ("capped", True)}
    assert handed_out(4096, "0.8.2") == 4096 and handed_out(4096, "0.8.3") == 4095


def _pool_of_4096(version: str) -> tuple:
    """An L4 with 4,096 blocks: 8 GiB of KV memory where the release has --kv-cache-memory-bytes (0.10.2 on); before,
    the pool given outright (--num-gpu-blocks-override, which V1 takes as its block count after the start-up check
    on the memory it measured) on an H100, whose 51 GiB pass that check where an L4's 3.3 GiB would not."""
    if tuple(map(int, version.split("."))) < (0, 10, 2):
        return ("--gpu", "H100", "--num-gpu-blocks-override", "4096")
    return ("--gpu", "L4", "--kv-cache-memory-bytes", EIGHT_GIB)


def test_llama_8b_l4_null_block_by_release():
    # 4,096 blocks, a request of 32,768 tokens 2,048: vLLM logs 2.00x everywhere; 0.8.0-0.8.2 hand out all 4,096
    # (2 requests), from 0.8.3 4,095: (4,095 - 2,048) // 2,048 + 1 = 1. Full attention: gate = peak = 2,048, so
    # 0.18.1 (no gate), 0.20.0 and 0.32.0 (the gate) hold the same.
    held = {}
    for version in ("0.8.2", "0.8.3", "0.18.1", "0.20.0", "0.32.0"):
        plan = estimate_plan(LLAMA, "-c", "32768", *_pool_of_4096(version), "--engine", f"vllm=={version}")
        assert plan["engine"]["num_gpu_blocks"] == 4096 and plan["engine"]["blocks_per_request"] == 2048
        assert plan["engine"]["max_concurrency"] == 2.0
        held[version] = plan["max_concurrency"]
    assert held == {"0.8.2": 2, "0.8.3": 1, "0.18.1": 1, "0.20.0": 1, "0.32.0": 1}
    note = _flat(run_kvplan("estimate", LLAMA, "--gpu", "L4", "-c", "32768", "--kv-cache-memory-bytes", EIGHT_GIB,
                            "--engine", "vllm==0.18.1").stdout)
    assert "(a request keeps every block of its max len, out of the pool less its null block)" in note
    note = _flat(run_kvplan("estimate", LLAMA, "--gpu", "L4", "-c", "32768", "--kv-cache-memory-bytes", EIGHT_GIB,
                            "--engine", "vllm==0.20.0").stdout)
    assert "(the scheduler admits a request only while all its blocks are free, out of the pool less its null " \
           "block)" in note


def test_llama_8b_l4_own_budget_refused_at_32k():
    # On the L4's own budget each release refuses 32,768 tokens: its blocks (the engine's own count) < 2,048; at
    # 16,384 tokens (1,024 blocks a request) one request is held wherever (blocks - 1) // 1,024 = 1.
    for version in ("0.18.1", "0.20.0", "0.32.0"):
        plan = estimate_plan(LLAMA, "--gpu", "L4", "-c", "32768", "--engine", f"vllm=={version}")
        assert not plan["engine"]["starts"] and plan["engine"]["num_gpu_blocks"] < 2048
        half = estimate_plan(LLAMA, "--gpu", "L4", "-c", "16384", "--engine", f"vllm=={version}")
        assert half["max_concurrency"] == (half["engine"]["num_gpu_blocks"] - 1) // 1024 == 1


def test_gemma_at_vllms_estimate_by_release():
    # 128,096 tokens: full cdiv(128,096, 16) = 8,006 blocks, 6 sliding groups at the cap 577: 8,006 + 3,462 = 11,468,
    # every block of the pool (the start-up check passes before 0.29), the pool hands out 11,467.
    # 0.20.0: the gate asks 11,468 > 11,467: none. 0.19.0: every group at the whole prompt, 7 x 8,006 = 56,042.
    # 0.18.1: no gate; the prefill's peak is the chunk ending at 122,880: full 7,680 blocks, each sliding group
    # 7,680 - (114,688 - 1,023) // 16 = 7,680 - 7,104 = 576, so 7,680 + 6 x 576 = 11,136 <= 11,467: one request,
    # which then keeps 8,006 + 6 x (8,006 - (128,096 - 1,023) // 16) = 8,006 + 6 x 64 = 8,390.
    held = {v: estimate_plan(GEMMA, *GEMMA_KV, "-c", "128096", "--engine", f"vllm=={v}")["max_concurrency"]
            for v in ("0.18.1", "0.19.0", "0.20.0")}
    assert held == {"0.18.1": 1, "0.19.0": 0, "0.20.0": 0}
    text = _flat(run_kvplan("estimate", GEMMA, *GEMMA_KV, "-c", "128096", "--engine", "vllm==0.20.0").stdout)
    assert ("max len 128,096 bf16 tp 1 starts but holds no request: vLLM 0.20.0 admits a prompt only once all its "
            "blocks are free: one of max len needs 11,468 blocks free, and of its 11,468 blocks the pool hands out "
            "11,467, keeping one back as the null block; would fit with") in text
    text = _flat(run_kvplan("estimate", GEMMA, *GEMMA_KV, "-c", "128096", "--engine", "vllm==0.19.0").stdout)
    # the longest 0.19.0 lets in: 7 x cdiv(L, 16) <= 11,467, cdiv(L, 16) <= 1,638, L <= 26,208 (1,639 x 7 = 11,473)
    assert 7 * 1638 <= 11467 < 7 * 1639
    assert ("vLLM 0.19.0 admits a prompt only once its blocks in every group are free, a sliding window's counted "
            "at the whole prompt: one of max len needs 56,042 blocks free") in text
    assert "--max-model-len 26208." in text


def test_gemma_32k_concurrency_by_release():
    # 32,768 tokens: full 2,048 blocks, start-up price 2,048 + 6 x 577 = 5,510 <= 11,468 (vLLM starts, 2.08x).
    # Kept after the prefill: 2,048 + 6 x (2,048 - (32,768 - 1,023) // 16) = 2,048 + 6 x 64 = 2,432.
    # Peak (the last chunk, from 24,576): 2,048 + 6 x (2,048 - (24,576 - 1,023) // 16) = 2,048 + 6 x 576 = 5,504.
    # 0.18.1: (11,467 - 5,504) // 2,432 + 1 = 3; 0.20.0: the gate 5,510, (11,467 - 5,510) // 2,432 + 1 = 3;
    # 0.19.0: the gate 7 x 2,048 = 14,336 > 11,467: vLLM starts and never lets a 32,768-token prompt in.
    plans = {v: estimate_plan(GEMMA, *GEMMA_KV, "-c", "32768", "--engine", f"vllm=={v}")
             for v in ("0.18.1", "0.19.0", "0.20.0")}
    assert {v: p["engine"]["blocks_per_request"] for v, p in plans.items()} == dict.fromkeys(plans, 5510)
    assert {v: p["max_concurrency"] for v, p in plans.items()} == {"0.18.1": 3, "0.19.0": 0, "0.20.0": 3}
    assert plans["0.19.0"]["engine"]["starts"]


def test_check_names_kvplans_footprint_and_vllms_price():
    # 131,072 tokens at 0.20.0: vLLM prices (8,192 + 6 x 577) x 1,310,720 = 15,275,130,880 B = 14.23 GiB; kvplan's
    # footprint of an admitted request: 10 full layers x 131,072 x 8,192 B = 10.0 GiB + 52 sliding layers' windows
    # (1,024 tokens, 64 blocks: 52 x 1,024 x 8,192 B = 0.41 GiB) = 10.4 GiB.
    assert (8192 + 6 * 577) * 1_310_720 == 15_275_130_880 and round(15_275_130_880 / 2**30, 2) == 14.23
    result = run_kvplan("check", GEMMA, "-tp", "1", *GEMMA_KV, "-c", "131072", "--engine", "vllm==0.20.0")
    text = _flat(result.stdout)
    assert result.returncode == 1
    assert ("(kvplan's footprint of an admitted request: 10.4 GiB of KV per GPU at tp 1, kv_dtype bf16; vLLM's "
            "start-up check prices one at 14.23 GiB); vLLM would refuse to start, saying \"To serve at least one") \
        in text
    # where the two read alike, the sentence stays as it was: Llama-3.1-8B at 32,768 tokens on the L4's own budget,
    # 2,048 blocks x 2 MiB = 4.00 GiB either way
    llama = _flat(run_kvplan("check", LLAMA, "-tp", "1", "--gpu", "L4", "-c", "32768", "--engine",
                             "vllm==0.20.0").stdout)
    assert "(4.00 GiB of KV each per GPU at tp 1, kv_dtype bf16); vLLM would refuse to start" in llama


def test_check_file_wording_matches(tmp_path):
    # the same sentence where a deployment file gives the plan (kv_budget 14GiB = 15,032,385,536 B)
    from conftest import deployments_file

    rows = dict(name="gemma", model=GEMMA, tp=1, gpu="H100", engine="vllm==0.20.0", kv_budget="14GiB",
                context=131072, max_num_batched_tokens=8192)
    path = deployments_file(tmp_path, "  - " + "\n    ".join(f"{k}: {v}" for k, v in rows.items()) + "\n")
    said = _flat(run_kvplan("check", "--file", str(path), env={"COLUMNS": "2000"}).stdout)
    assert "(kvplan's footprint of an admitted request: 10.4 GiB of KV per GPU at tp 1, kv_dtype bf16; vLLM's " \
           "start-up check prices one at 14.23 GiB)" in said


def test_gap_words_by_release():
    from types import SimpleNamespace

    from kvplan.engines.figures import Refusal
    from kvplan.engines.vllm_estimate_gap import estimate_gap_words

    refused = Refusal("...", 128096, needed_bytes=1)
    before = SimpleNamespace(refusal=refused, num_gpu_blocks=11468, version="0.18.1", num_kv_cache_groups=7)
    assert estimate_gap_words(before, 131072, 128080).startswith(
        "vLLM's estimate 128,096 starts but never serves a full-length prompt: its start-up check lets one request "
        "take all 11,468 blocks")
    gated = SimpleNamespace(refusal=refused, num_gpu_blocks=11468, version="0.19.0", num_kv_cache_groups=7)
    assert "its scheduler admits a prompt only once its blocks in every group are free" in estimate_gap_words(
        gated, 131072, 26208)
    early = SimpleNamespace(refusal=refused, num_gpu_blocks=11468, version="0.8.2", num_kv_cache_groups=1)
    assert "null block" not in estimate_gap_words(early, 131072, 128080)
