"""Session 74, second review of the session's merges (V0 admission, SupportsPP, V0 edges, -pcp): the defects found,
each read in vLLM's wheels:

1. -pcp with -dp: an engine core is tp x pp x pcp GPUs (config/parallel.py 0.32.0:945-948 world_size), which
   --data-parallel-size copies; the header, the DP note and the JSON's data_parallel.gpus counted tp x pp a core.
2. V0's start check (worker/worker.py raise_if_cache_size_invalid, 0.6.3:480-497, 0.8.5:553-569) holds
   max_model_len against block_size x blocks, a sliding window's request too; kvplan held it to the admission cap
   (the window's blocks + 1), refusing 512 blocks of 16 for an 8,192-token Mistral-7B-v0.1 that vLLM starts, in a
   message saying "8192 is larger than ... (8192)".
3. V0's block manager knows one window (CacheConfig.sliding_window = model_config.get_sliding_window()): an
   interleaved model's is dropped ("the scheduler and the model treat it as full attention", config.py
   0.7.3:329-354) and Llama 4's chunked layers run global attention on V0 (attention/backends/flash_attn.py
   0.8.4:625-628 "Using irope in V0 is not supported yet, it will fall back to global attention"). kvplan scheduled
   every layer as the first one's kind: Llama-4-Scout on 0.8.4 at pp 2 (V0 by the oracle) held 192 requests of
   65,536 tokens, and its JSON's resident_sequences said 0.
4. V0 up to 0.7 on a multimodal model: SchedulerConfig raises the batched tokens to 5,120 (4,096 in 0.6.0-0.6.2:
   config.py 0.6.0:35, 0.6.3:34, 0.7.3:54, :1544-1549), and EngineArgs leaves chunked prefill off for it past 32K
   (engine/arg_utils.py 0.6.3:944, 0.7.3:1168-1172): kvplan had 4,096 and 2,048 for Qwen2.5-VL-7B on 0.7.3.
"""

from __future__ import annotations

import json

from conftest import run_kvplan

import kvplan
from kvplan.engines.vllm_versions import behaviour

DEEPSEEK_V3 = "deepseek-ai/DeepSeek-V3"
MISTRAL_V01 = "mistralai/Mistral-7B-v0.1"
SCOUT = "meta-llama/Llama-4-Scout-17B-16E-Instruct"
GEMMA_2 = "google/gemma-2-9b"
QWEN_VL = "Qwen/Qwen2.5-VL-7B-Instruct"


def one(model, **kwargs):
    (plan,) = kvplan.estimate(model, gpu=kwargs.pop("gpu", "H100"), **kwargs)
    return plan


# 1. -pcp with -dp: 2 cores x (tp 8 x pcp 2) = 32 GPUs

PCP_DP = (DEEPSEEK_V3, "-tp", "8", "-pcp", "2", "-dp", "2", "--engine", "vllm==0.32.0", "--gpu", "H200",
          "--max-model-len", "131072")


def test_pcp_with_dp_counts_each_core_as_tp_x_pp_x_pcp_gpus():
    table = run_kvplan("estimate", *PCP_DP)
    assert table.returncode == 0, table.stderr
    text = " ".join(table.stdout.split())
    assert "--prefill-context-parallel-size 2 (32 GPUs with --data-parallel-size 2)" in text
    assert "2 engine core(s) x 16 GPU(s) = 32 GPUs" in text
    assert "each PCP rank of a core decoding ceil(b / 2) of them" in text  # priced from 0.32 (test_pcp_speed_s74)
    plan = json.loads(run_kvplan("estimate", *PCP_DP, "-f", "json").stdout)["plans"][0]
    assert plan["data_parallel"]["gpus"] == 32 and plan["pcp"] == 2
    assert plan["decode"] is not None
    assert plan["data_parallel"]["prefill"] == "over the PCP ranks, each DP rank's step as large"
    check = run_kvplan("check", *PCP_DP)
    assert check.returncode == 0 and "2 engine core(s) x 16 GPU(s) = 32 GPUs" in " ".join(check.stdout.split())


def test_pcp_alone_header_names_tp_x_pcp_gpus():
    plan = one(DEEPSEEK_V3, tensor_parallel_size=8, prefill_context_parallel_size=2, engine="vllm==0.32.0",
               gpu="H200", max_model_len=131072)
    assert plan.core_gpus == 16 and plan.parallel is None


# 2. V0's start check on a sliding window's model: max_model_len against block_size x blocks

def test_v0_start_check_holds_a_sliding_request_to_its_whole_length():
    # 8,192 tokens / 16 = 512 blocks: 512 x 16 = 8,192 tokens is not less than max_model_len, so vLLM starts
    plan = one(MISTRAL_V01, engine="vllm==0.6.3", max_model_len=8192, num_gpu_blocks_override=512)
    assert plan.engine.starts and plan.engine.refusal is None
    # 511 x 16 = 8,176 < 8,192: "The model's max seq len (8192) is larger than ... (8176)"
    short = one(MISTRAL_V01, engine="vllm==0.6.3", max_model_len=8192, num_gpu_blocks_override=511)
    assert not short.engine.starts and "(8176)" in short.engine.refusal.reason


# 3. V0 schedules interleaved and chunked layers as full attention

def test_llama4_on_a_v0_pipeline_schedules_its_chunked_layers_in_full():
    plan = one(SCOUT, tensor_parallel_size=4, pipeline_parallel_size=2, engine="vllm==0.8.4", max_model_len=65536)
    engine = plan.engine
    assert engine.blocks_per_request == 65536 // 16  # 4,096: every layer global on V0, nothing freed
    share = engine.num_gpu_blocks // 2  # two virtual engines, one a stage
    each = (share - int(0.01 * share)) // 4096  # less the 1% watermark, whole requests
    assert plan.max_concurrency == engine.resident_sequences == 2 * each
    assert plan.max_concurrency < 2 * engine.max_concurrency  # never more than the blocks of whole requests


def test_gemma2_interleaved_window_is_full_attention_on_v0():
    plan = one(GEMMA_2, engine="vllm==0.7.3", max_model_len=8192)
    blocks = plan.engine.num_gpu_blocks
    assert plan.engine.blocks_per_request == 512  # 8,192 / 16, no window
    assert plan.max_concurrency == (blocks - int(0.01 * blocks)) // 512


def test_a_model_sliding_in_every_layer_keeps_its_window_on_v0():
    """Mistral-7B-v0.1: one window on all 32 layers, CacheConfig.sliding_window 4,096: the block manager's own."""
    plan = one(MISTRAL_V01, engine="vllm==0.6.3", max_model_len=8192)
    # 512: BlockSpaceManagerV2 allocates every prompt block, 8,192 / 16 (tests/test_leftovers_s74.py, V0 admission)
    assert plan.engine.blocks_per_request == 512 and plan.max_concurrency > plan.engine.max_concurrency


# 4. V0 (<= 0.7) multimodal batched tokens

def test_qwen_vl_on_0_7_3_takes_the_multimodal_floor_and_whole_prompts():
    assert one(QWEN_VL, engine="vllm==0.7.3", max_model_len=4096).engine.max_num_batched_tokens == 5120
    # past 32K: no chunked prefill for a multimodal model, the whole length a batch (max(len, 2048))
    assert one(QWEN_VL, engine="vllm==0.7.3", max_model_len=65536).engine.max_num_batched_tokens == 65536


def test_early_v0_batched_tokens_by_release():
    from kvplan.engines.vllm_settings import early_v0_batched_tokens

    def tokens(version, length, multimodal=True):
        return early_v0_batched_tokens(length, behaviour(version), version, multimodal)

    assert tokens("0.6.1", 65536) == 4096  # chunked (512) past 32K, raised to 0.6.1's floor
    assert tokens("0.6.2", 65536) == 65536  # chunked prefill left off for multimodal
    assert tokens("0.6.2", 2048) == 4096 and tokens("0.6.3", 2048) == 5120
    assert tokens("0.5.5", 2048) == 2048  # no floor before 0.6.0
    assert tokens("0.7.3", 65536, multimodal=False) == 2048  # a text model's chunk from 0.6.5
