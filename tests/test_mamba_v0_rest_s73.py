"""V0's fallback for Mamba state in vLLM 0.8-0.10.1, the rest (kvplan/engines/vllm_mamba_v0.py): V0's scheduler and
profile run, the Mamba dtype flags of 0.10.1, the IndexError past 8,192 sequences, pipeline stages. Figures by hand
from the vLLM sources:
- scheduler: chunked prefill off up to max_model_len 32,768 (arg_utils.py 0.9.2:1507-1539), then
  max_num_batched_tokens = max(max_model_len, 2048), on (CUDA) DEFAULT_MAX_NUM_BATCHED_TOKENS 2,048 (config.py
  0.9.2:2242-2259, utils/__init__.py 0.9.2:81); fewer batched tokens than max_model_len refused (config.py
  0.9.2:2304-2312).
- profile: the forward over max_num_batched_tokens, then one sampled row for each of the 256 dummy prompts (worker/
  model_runner.py 0.9.2:1296-1376): bf16 logits 2 B + float32 copy 4 B (sampler.py 0.9.2:281) + sort outputs
  (float32 values 4 + int64 order 8) + the CUDA sort's reverse index 8 and CUB's third keys / values 4 + 8 = 38 B a
  logit, with the forward's output (tokens x hidden) and the pruned rows (256 x hidden) held in bf16.
- non-torch: A11's logged non_torch_memory 1.79 GiB (vllm-startup-logs.yaml A11).
- Jamba-1.5-Mini: 32 layers, attention at 4, 12, 20, 28 (attn_layer_period 8, offset 4), hidden 4,096, vocab 65,536,
  Mamba conv 2 x 4,096 channels x 3 inputs, SSM 2 x 4,096 x 16, 8 KV heads x 128.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kvplan import api
from kvplan.engines.vllm_mamba_v0 import v0_slots, v0_slots_refusal
from kvplan.errors import FieldError

from conftest import run_kvplan

JAMBA = "ai21labs/AI21-Jamba-1.5-Mini"
NEMOTRON_H = "nvidia/Nemotron-H-8B-Base-8K"
GiB = 2**30


def _plan(model: str, version: str, tp: int = 1, context: int = 8192, gpu: str = "h100", **kwargs):
    plans = api.estimate(model, gpu=gpu, max_model_len=context, engine=f"vllm=={version}",
                         tensor_parallel_size=tp, **kwargs)
    return plans[0]


def _term(plan, name: str):
    return next((t for t in plan.budget.terms if t.name == name), None)


def test_jamba_0_9_2_tp2_8k_before_and_after_by_hand():
    plan = _plan(JAMBA, "0.9.2", 2)
    # V0 at 8K: no chunked prefill, max(8,192, 2,048) batched tokens, V0's 256 sequences
    assert _term(plan, "non_torch").bytes == int(1.79 * GiB) == 1_921_997_864
    # sampler: 256 x 65,536 x 38 + (8,192 + 256) x 4,096 x 2 = 706,740,224 B, below the forward over 8,192 tokens
    sampler = 256 * 65536 * 38 + (8192 + 256) * 4096 * 2
    assert sampler == 706_740_224
    assert _term(plan, "profile_peak").bytes > sampler
    # the state cache is the helper's: 256 slots x 28 Mamba layers x (4,096 x 3 + 4,096 x 16) x 2 B
    assert _term(plan, "mamba_cache").bytes == 256 * 28 * (4096 * 3 + 4096 * 16) * 2 == 1_115_684_864
    # before: the fitted 2.17 GiB non-torch left 139,349 blocks of 131,072 B; 408,021,894 B more is 3,113 blocks more
    assert int(2.17 * GiB) - int(1.79 * GiB) == 408_021_894
    assert plan.engine.num_gpu_blocks == plan.budget.kv_budget_bytes_per_gpu // 131_072 == 139_349 + 3_113
    assert round(plan.engine.max_concurrency, 2) == round(142_462 * 16 / 8192, 2) == 278.25
    assert plan.max_concurrency == 256 and plan.max_concurrency_limited_by == "max_num_seqs"


def test_long_context_turns_chunked_prefill_on_and_the_sampler_sets_the_peak():
    plan = _plan(JAMBA, "0.9.2", 2, context=65536)
    assert plan.engine.max_num_batched_tokens == 2048
    # the forward over 2,048 tokens is below the sampler: 256 x 65,536 x 38 + (2,048 + 256) x 4,096 x 2
    assert _term(plan, "profile_peak").bytes == 256 * 65536 * 38 + (2048 + 256) * 4096 * 2 == 656_408_576


def test_rocm_keeps_chunked_prefill_off_whole_prompt_batches():
    # is_gpu = current_platform.is_cuda() (arg_utils.py 0.9.2:1521): False on ROCm, so max(65,536, 2,048)
    plan = _plan(JAMBA, "0.9.2", 2, context=65536, gpu="mi300x")
    assert plan.engine.max_num_batched_tokens == 65536


def test_short_batch_refused_without_chunked_prefill():
    with pytest.raises(FieldError) as raised:
        _plan(JAMBA, "0.9.2", 2, max_num_batched_tokens=4096)
    assert raised.value.field == "max_num_batched_tokens"
    result = run_kvplan("estimate", JAMBA, "--gpu", "H100", "--tp", "2", "-c", "8192", "--engine", "vllm==0.9.2",
                        "--max-num-batched-tokens", "4096")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "--max-num-batched-tokens 4096" in result.stderr


def test_given_batched_tokens_are_what_the_profile_forward_covers():
    wide, narrow = _plan(JAMBA, "0.9.2", 2, max_num_batched_tokens=32768), _plan(JAMBA, "0.9.2", 2)
    assert wide.engine.max_num_batched_tokens == 32768
    assert _term(wide, "profile_peak").bytes > _term(narrow, "profile_peak").bytes


@pytest.mark.parametrize("version", ["0.7.3", "0.8.0", "0.9.2", "0.10.1"])
def test_past_8192_sequences_with_graphs_is_vllms_index_error(version):
    jamba = SimpleNamespace(architecture="JambaForCausalLM", architectures=("JambaForCausalLM",),
                            linear_layers=(0,))
    refusal = v0_slots_refusal(jamba, 8193, False, version)
    assert refusal is not None and refusal.reason.startswith("IndexError: list index out of range")
    assert refusal.field == "max_num_seqs"
    assert v0_slots_refusal(jamba, 8192, False, version) is None  # 8,192 is the last graph batch
    assert v0_slots_refusal(jamba, 8193, True, version) is None  # eager: no padding


def test_0_6_5_to_0_7_2_take_the_largest_graph_batch_instead():
    # jamba.py 0.6.6:425-431: max_num_seqs past max_capture_size takes max_capture_size (8,192)
    assert v0_slots(9000, False, "0.7.2") == 8192 and v0_slots(9000, False, "0.6.6") == 8192
    jamba = SimpleNamespace(architecture="JambaForCausalLM", architectures=("JambaForCausalLM",),
                            linear_layers=(0,))
    assert v0_slots_refusal(jamba, 9000, False, "0.7.2") is None


def test_index_error_on_the_command_line():
    result = run_kvplan("estimate", JAMBA, "--gpu", "H100", "--tp", "2", "-c", "8192", "--engine", "vllm==0.9.2",
                        "--max-num-seqs", "9000", "--max-num-batched-tokens", "9000")
    assert "IndexError: list index out of range" in result.stdout


def test_jamba_pp2_each_stage_holds_its_own_mamba_layers():
    # pp 2 over 32 layers: 0-15 (attention at 4, 12) and 16-31 (20, 28), 14 Mamba layers each
    (plan,) = api.estimate(JAMBA, gpu="h100", max_model_len=8192, engine="vllm==0.9.2", tensor_parallel_size=2,
                           pipeline_parallel_size=2)
    assert plan.pp_partition == (16, 16) or list(plan.pp_partition) == [16, 16]
    # a slot on one GPU: 14 x (4,096 x 3 + 4,096 x 16) x 2 B = 2,179,072; 256 slots
    assert _term(plan, "mamba_cache").bytes == 256 * 14 * (4096 * 3 + 4096 * 16) * 2 == 557_842_432
    # the block: 2 attention layers x 16 tokens x K and V x 4 KV heads x 128 x 2 B
    assert plan.engine.num_gpu_blocks == plan.budget.kv_budget_bytes_per_gpu // (2 * 16 * 2 * 4 * 128 * 2)
    assert plan.engine.starts


def test_mamba2_class_refuses_pipeline_stages():
    from kvplan.plan.sharding import pipeline_refusal

    spec = SimpleNamespace(architecture="Mamba2ForCausalLM", architectures=("Mamba2ForCausalLM",))
    assert "SupportsPP" in pipeline_refusal(spec, "0.9.2")  # mamba2.py 0.9.2:200 has no SupportsPP


def test_0_10_1_reads_the_mamba2_dtype_flags():
    # Nemotron-H-8B at tp 1: 24 Mamba-2 layers, conv (8,192 + 2 x 8 x 128) x 3, SSM 128 heads x 64 x 128
    conv, ssm = (8192 + 2 * 8 * 128) * 3, 128 * 64 * 128
    auto = _plan(NEMOTRON_H, "0.10.1")
    assert _term(auto, "mamba_cache").bytes == 256 * 24 * (conv + ssm) * 2
    ssm32 = _plan(NEMOTRON_H, "0.10.1", mamba_ssm_cache_dtype="float32")
    assert _term(ssm32, "mamba_cache").bytes == 256 * 24 * (conv * 2 + ssm * 4) == 256 * 102_137_856
    both = _plan(NEMOTRON_H, "0.10.1", mamba_cache_dtype="float32")  # 'auto' SSM follows the conv state
    assert _term(both, "mamba_cache").bytes == 256 * 24 * (conv + ssm) * 4


def test_0_10_1_refuses_float32_on_mamba1():
    plan = _plan(JAMBA, "0.10.1", 2, mamba_cache_dtype="float32")
    refusal = plan.engine.refusal
    assert not plan.engine.starts and refusal.reason == "fp32 state for mamba1 is not yet supported"
    assert refusal.field == "mamba_cache_dtype"
    assert _plan(JAMBA, "0.10.2", 2, mamba_cache_dtype="float32").engine.starts  # mamba_utils.py 0.10.2:27-34


def test_0_10_0_has_no_mamba_dtype_flags():
    result = run_kvplan("estimate", JAMBA, "--gpu", "H100", "--tp", "2", "-c", "8192", "--engine", "vllm==0.10.0",
                        "--mamba-cache-dtype", "float32")
    assert result.returncode == 2 and "needs vLLM 0.10.1 or later" in result.stderr
