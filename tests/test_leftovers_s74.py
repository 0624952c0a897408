"""Session 74's review leftovers, each read in vLLM's wheels:

1. Gemma 2 before 0.6.5: ModelConfig turns its sliding window off and caps max_model_len to it (config.py
   0.5.1:156-164, 0.6.3:176-184, 0.6.4:226-240; _get_and_verify_max_len 0.6.3:1715-1718): 4,096 tokens by
   default for google/gemma-2-9b, 8,192 refused; kvplan planned 8,192 with 21 sliding layers at 0.5.1-0.6.4.
2. V0's block managers on a sliding window's request: BlockSpaceManagerV2 (0.6.3 on) gates it on
   min(prompt blocks, window // block + 2) and allocates every prompt block (block_manager_v2.py 0.6.3:76-84,
   :132-133, :147-155); BlockSpaceManagerV1 (up to 0.6.2) on ceil(window / block), which it reuses
   (block_manager_v1.py 0.6.2:253, :299-300, :322-324). kvplan gated it on V1's engine cap (513 blocks).
3. V0 with no GPU block: worker.py raise_if_cache_size_invalid's first ValueError (0.6.3:486-489, 0.10.1.1:576-579).
4. check with -pcp: the row named after it and the GPUs of one engine core (tp x pp x pcp).
5. check says what estimate says of a V0 fallback (render/estimate.py v0_notes).
"""

from __future__ import annotations

from conftest import run_kvplan

import kvplan
from kvplan.engines import get_engine
from kvplan.engines.vllm_kv_dtype import release_view
from kvplan.model.kinds import SlidingWindow
from kvplan.model.sources import resolve

GEMMA_2 = "google/gemma-2-9b"  # max_position_embeddings 8,192, sliding_window 4,096 on 21 of 42 layers
MISTRAL_V01 = "mistralai/Mistral-7B-v0.1"  # sliding_window 4,096 on all 32 layers, block 16
LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"


def one(model, **kwargs):
    (plan,) = kvplan.estimate(model, gpu=kwargs.pop("gpu", "H100"), **kwargs)
    return plan


# 1. Gemma 2's window off before 0.6.5

def test_gemma2_default_length_is_the_window_from_0_5_1_to_0_6_4():
    for version in ("0.5.1", "0.5.5", "0.6.3", "0.6.4"):
        plan = one(GEMMA_2, engine=f"vllm=={version}")
        assert plan.context == 4096, version
        # every layer full: 4,096 / 16 = 256 blocks a request, none dropped
        assert plan.engine.blocks_per_request == 256, version
        blocks = plan.engine.num_gpu_blocks
        assert plan.max_concurrency == (blocks - int(0.01 * blocks)) // 256, version  # V0's 1% watermark
    assert one(GEMMA_2, engine="vllm==0.6.5").context == 8192  # 0.6.5 keeps the window, the model's own length


def test_gemma2_longer_length_is_refused_in_vllms_words():
    refusal = one(GEMMA_2, engine="vllm==0.6.3", max_model_len=8192).engine.refusal
    assert refusal is not None and refusal.field == "context" and refusal.remedy_flags == ()
    assert "User-specified max_model_len (8192) is greater than the derived max_model_len (sliding_window=" \
        in refusal.reason
    assert one(GEMMA_2, engine="vllm==0.6.5", max_model_len=8192).engine.refusal is None


def test_gemma2_view_for_another_release_starts_from_the_config():
    spec = resolve(GEMMA_2)
    old = release_view(spec, "0.6.3")
    assert old.max_position_embeddings == 4096 and not any(isinstance(x, SlidingWindow) for x in old.layers)
    again = release_view(old, "0.6.5")
    assert again.max_position_embeddings == 8192 and sum(isinstance(x, SlidingWindow) for x in again.layers) == 21
    assert again.notes == spec.notes
    # a remedy's trial at 0.6.5 from the plan's 0.6.3 spec: 8,192 starts there
    asked = dict(engine="vllm==0.6.5", kv_dtype="auto", context=8192, block_size=None)
    assert get_engine("vllm==0.6.3").configuration_refusal(old, asked, 1) is None


def test_gemma2_cli_says_who_capped_it():
    run = run_kvplan("estimate", GEMMA_2, "--engine", "vllm==0.6.3", "--gpu", "H100")
    assert run.returncode == 0, run.stderr
    out = " ".join(run.stdout.split())
    assert "--max-model-len 4096" in out and "vLLM 0.6.3 turns it off for every layer" in out
    assert "capped to its sliding window by vLLM itself" in out


# 2. V0's block managers on a sliding window's request

def test_v2_block_manager_admits_one_mistral_request_in_514_blocks():
    # share 514, watermark int(5.14) = 5; gate min(8,192 / 16 = 512, 4,096 // 16 + 2 = 258) = 258: 514 - 258 >= 5;
    # allocate takes 512 <= 514. Its first decode step drops 512 - 258 = 254 blocks and takes the null block: it
    # keeps 259, 514 - 259 - 1 = 254 are free, 254 - 258 < 5: the second waits
    plan = one(MISTRAL_V01, engine="vllm==0.6.3", max_model_len=8192, num_gpu_blocks_override=514)
    assert plan.max_concurrency == 1 and plan.engine.blocks_per_request == 512
    assert plan.engine.fewest_blocks == 512  # 512 - int(5.12) = 507 >= 258, and 512 hold the prompt


def test_v2_block_manager_resident_requests():
    # 800: the first keeps 259, 800 - 1 - 259 = 540 >= max(258 + 8, 512): a second; 540 - 259 = 281 < 512: no third
    assert one(MISTRAL_V01, engine="vllm==0.6.3", max_model_len=8192, num_gpu_blocks_override=800).max_concurrency \
        == 2
    # 10,000: watermark 100, need max(358, 512) = 512: (10,000 - 1 - 512) // 259 + 1 = 36 + 1 = 37
    assert one(MISTRAL_V01, engine="vllm==0.6.3", max_model_len=8192,
               num_gpu_blocks_override=10000).max_concurrency == 37


def test_v1_block_manager_reuses_the_window_blocks():
    # 0.6.2: ceil(4,096 / 16) = 256 blocks gate and table; 514 - 256 = 258 >= 5: one; 258 - 256 = 2 < 5: no second
    plan = one(MISTRAL_V01, engine="vllm==0.6.2", max_model_len=8192, num_gpu_blocks_override=514)
    assert plan.max_concurrency == 1 and plan.engine.blocks_per_request == 256
    assert plan.engine.fewest_blocks == 258  # 258 - int(2.58) = 256


# 3. V0 with no GPU block

def test_v0_without_a_block_says_no_available_memory():
    # 131 GiB of weights on one 80 GB H100: 0 blocks (determine_num_available_blocks' max(0, ...))
    refusal = one("meta-llama/Llama-3.1-70B-Instruct", engine="vllm==0.6.3", max_model_len=8192).engine.refusal
    assert refusal.reason == ("No available memory for the cache blocks. Try increasing `gpu_memory_utilization` "
                              "when initializing the engine.")


def test_v0_with_blocks_short_of_the_length_keeps_the_max_seq_len_message():
    # 511 x 16 = 8,176 < 8,192 (worker.py 0.6.3:490-497)
    refusal = one(MISTRAL_V01, engine="vllm==0.6.3", max_model_len=8192, num_gpu_blocks_override=511).engine.refusal
    assert "(8176)" in refusal.reason


# 4. check with -pcp

def test_check_names_pcp_and_its_gpus():
    run = run_kvplan("check", "deepseek-ai/DeepSeek-V3", "-tp", "8", "-pcp", "2", "--engine", "vllm==0.32.0",
                     "--gpu", "H200", "--max-model-len", "131072")
    assert run.returncode == 0, run.stderr
    out = " ".join(run.stdout.split())
    assert "tp8-pcp2" in out
    assert "--prefill-context-parallel-size 2: one engine core is tp 8 x pp 1 x pcp 2 = 16 GPUs" in out


# 5. check's V0-fallback note

def test_check_says_the_v0_fallback():
    run = run_kvplan("check", LLAMA_8B, "-tp", "1", "--engine", "vllm==0.8.5", "--kv-cache-dtype", "fp8", "--gpu",
                     "a100-80gb", "--max-model-len", "8192")
    assert run.returncode == 0, run.stderr
    assert "Engine: vLLM 0.8.5 serves fp8_e4m3 on its V0 engine, not V1" in " ".join(run.stdout.split())
