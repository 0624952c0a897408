"""V0's default chunked prefill past 32K as the model and flags leave it (kvplan/engines/vllm_v0_chunked.py), read in
the wheels' engine/arg_utils.py EngineArgs.create_engine_config (0.5.3-0.7.3) and _set_default_args_v0 (0.8-0.10.1):

    use_long_context = max_model_len > 32768                      # 0.5.3:747, 0.6.3:936, 0.7.3:1164
    if (is_gpu and not use_sliding_window and not use_spec_decode and not self.enable_lora
            and not self.enable_prompt_adapter
            and not self.enable_prefix_caching                    # 0.5.3:760 ... 0.6.0:859, gone in 0.6.1:885-888
            and not has_seqlen_agnostic_layers                    # 0.5.4:764 ... 0.6.2:928, gone in 0.6.3:949-951
            and model_config.runner_type != "pooling"             # from 0.6.5:1083 (0.7.3:1184)
            and not current_platform.is_rocm()):                 # from 0.6.5:1084 (0.7.3:1185)
        self.enable_chunked_prefill = True

With it off, SchedulerConfig takes max(max_model_len, 2048) batched tokens (config.py 0.6.3:987) and refuses fewer
than max_model_len ("max_num_batched_tokens (...) is smaller than max_model_len (...)", config.py 0.6.3:1024-1031);
with it on, its chunk: 512 up to 0.6.4 (config.py 0.6.0:977), 2,048 from 0.6.5 (0.6.5:1344).
"""

from __future__ import annotations

from types import SimpleNamespace

from conftest import run_kvplan

import kvplan
from kvplan.engines.vllm_v0_chunked import keeps_off, v0_chunked_prefill

JAMBA = "ai21labs/AI21-Jamba-1.5-Mini"  # 262,144 tokens (max_position_embeddings), Mamba layers beside attention
LLAMA = "meta-llama/Llama-3.1-8B"
MISTRAL_V01 = "mistralai/Mistral-7B-v0.1"


def one(model, **kwargs):
    (plan,) = kvplan.estimate(model, gpu=kwargs.pop("gpu", "H100"), **kwargs)
    return plan


def long_config(write_config, model_spec: str, **fields):
    """A bundled spec's config.json with `fields` changed (a longer max_position_embeddings, another window)."""
    import yaml

    from kvplan.model.bundled import spec_dir

    config = yaml.safe_load((spec_dir() / f"{model_spec}.yaml").read_text())["config"]
    return str(write_config({**config, **fields}))


# 1. The rule's spans, condition by condition (flags and platform alone: no model needed)

def test_long_context_only_from_0_5_3():
    assert not v0_chunked_prefill(65536, "0.5.2")  # enable_chunked_prefill: bool = False (arg_utils.py 0.5.2:85)
    assert v0_chunked_prefill(65536, "0.5.3") and v0_chunked_prefill(65536, "0.7.3")
    assert not v0_chunked_prefill(32768, "0.7.3")  # 32,768 is not > 32,768
    assert v0_chunked_prefill(32769, "0.7.3")


def test_prefix_caching_flag_keeps_it_off_0_5_3_to_0_6_0():
    flags = SimpleNamespace(enable_prefix_caching=True)
    assert keeps_off("0.5.3", flags=flags) == keeps_off("0.6.0", flags=flags) == "--enable-prefix-caching"
    assert not v0_chunked_prefill(65536, "0.6.0", flags=flags)
    assert keeps_off("0.6.1", flags=flags) is None and v0_chunked_prefill(65536, "0.6.1", flags=flags)


def test_rocm_and_pooling_keep_it_off_from_0_6_5():
    # 0.6.4's is_gpu is device_type == "cuda", which ROCm's DeviceConfig is (arg_utils.py 0.6.4:1005)
    assert v0_chunked_prefill(65536, "0.6.4", rocm=True) and v0_chunked_prefill(65536, "0.6.4", pooling=True)
    assert not v0_chunked_prefill(65536, "0.6.5", rocm=True)  # not current_platform.is_rocm() (0.6.5:1084)
    assert not v0_chunked_prefill(65536, "0.6.5", pooling=True)  # runner_type != "pooling" (0.6.5:1083)
    assert keeps_off("0.9.2", rocm=True) == "ROCm"  # current_platform.is_cuda() (0.9.2:1521)


def test_multimodal_from_0_6_2():
    assert v0_chunked_prefill(65536, "0.6.1", multimodal=True)  # 0.6.1:877 asks use_long_context only
    assert not v0_chunked_prefill(65536, "0.6.2", multimodal=True)  # 0.6.2:917 (0.6.1.post2:887)
    assert not v0_chunked_prefill(65536, "0.10.1", multimodal=True)  # 0.10.1.1:1529


# 2. Mamba layers 0.5.4-0.6.2: Jamba-1.5-Mini at its full 262,144 tokens

def test_jamba_at_full_length_on_0_6_2_takes_the_whole_length_and_does_not_start():
    # contains_seqlen_agnostic_layers: JambaConfig.layers_block_type names "mamba" layers (config.py 0.6.2:538-562);
    # so SchedulerConfig takes max(262144, 2048) = 262,144 tokens, and the profile run over them leaves too small a
    # cache at TP 2 on H100s (kvplan had the 512-token chunk and 145,645 blocks). Session 76: the experts' buffers
    # cover 32,768 of them (fused_moe.py 0.6.0:588-589, VLLM_FUSED_MOE_CHUNK_SIZE) and the dense layers all (Jamba's
    # period 2), so some blocks are left, fewer than one request's 16,384
    plan = one(JAMBA, engine="vllm==0.6.2", tensor_parallel_size=2)
    assert plan.context == 262144 and plan.engine.max_num_batched_tokens == 262144
    assert not plan.engine.starts and 0 < plan.engine.num_gpu_blocks < 262144 // 16
    assert one(JAMBA, engine="vllm==0.5.5", tensor_parallel_size=2).engine.max_num_batched_tokens == 262144


def test_jamba_on_0_6_3_chunks_again():
    # 0.6.3 drops has_seqlen_agnostic_layers (arg_utils.py 0.6.3:949-951): the 512-token chunk (config.py 0.6.3:983)
    plan = one(JAMBA, engine="vllm==0.6.3", tensor_parallel_size=2)
    assert plan.engine.max_num_batched_tokens == 512 and plan.engine.starts


def test_jamba_short_batch_is_refused_on_0_6_2_with_exit_2():
    args = (JAMBA, "--engine", "vllm==0.6.2", "--gpu", "H100", "-tp", "2", "--max-num-batched-tokens", "8192")
    for command in ("estimate", "check"):
        result = run_kvplan(command, *args)
        assert result.returncode == 2, result.stderr
        assert '"max_num_batched_tokens (8192) is smaller than max_model_len (262144)"' in result.stderr
    # 0.6.3 chunks, so 8,192 is taken
    assert run_kvplan("estimate", *args[:2], "vllm==0.6.3", *args[3:]).returncode == 0


# 3. A sliding window past 32K (Mistral-7B-v0.1's 4,096 window on all 32 layers, written with a 65,536 length:
#    the bundled 32,768 is never past 32K)

def test_sliding_window_model_past_32k_on_0_6_3_takes_the_whole_length(write_config):
    model = long_config(write_config, "mistralai--Mistral-7B-v0.1", max_position_embeddings=65536)
    plan = one(model, engine="vllm==0.6.3")
    assert plan.context == 65536 and plan.engine.max_num_batched_tokens == 65536  # max(65536, 2048); kvplan had 512
    assert one(model, engine="vllm==0.7.3").engine.max_num_batched_tokens == 65536  # kvplan had 2,048
    refused = run_kvplan("estimate", model, "--engine", "vllm==0.6.3", "--gpu", "H100",
                         "--max-num-batched-tokens", "8192")
    assert refused.returncode == 2 and "smaller than max_model_len (65536)" in refused.stderr


def test_a_window_longer_than_the_model_still_counts(write_config):
    # get_sliding_window is the config's value, whatever the length (config.py 0.6.3:425-442): 131,072 > 65,536
    model = long_config(write_config, "mistralai--Mistral-7B-v0.1", max_position_embeddings=65536,
                        sliding_window=131072)
    assert one(model, engine="vllm==0.6.3").engine.max_num_batched_tokens == 65536


def test_use_sliding_window_false_is_no_window():
    # Qwen2's use_sliding_window false: get_hf_config_sliding_window None (config.py 0.6.3:431-433), so it chunks
    # (Qwen2.5-7B: sliding_window 131072 beside use_sliding_window false, 131,072 tokens)
    assert one("Qwen/Qwen2.5-7B", engine="vllm==0.6.3", max_model_len=65536).engine.max_num_batched_tokens == 512


def test_interleaved_gemma2_window_is_scheduled_as_full_from_0_6_5(write_config):
    # 0.6.5 moves a gemma2 window to interleaved_sliding_window (config.py 0.6.5:296-319): get_sliding_window None,
    # so it chunks (2,048); 0.6.4 turns the window off and caps the length to it, 4,096 (vllm_gemma2_window.py)
    model = long_config(write_config, "google--gemma-2-9b", max_position_embeddings=65536)
    assert one(model, engine="vllm==0.6.5").engine.max_num_batched_tokens == 2048
    assert one(model, engine="vllm==0.6.4").context == 4096


# 4. --enable-prefix-caching on 0.6.0 at 64K (Llama-3.1-8B, no window, text only)

def test_prefix_caching_on_0_6_0_takes_the_whole_length():
    assert one(LLAMA, engine="vllm==0.6.0", max_model_len=65536).engine.max_num_batched_tokens == 512
    plan = one(LLAMA, engine="vllm==0.6.0", max_model_len=65536, enable_prefix_caching=True)
    assert plan.engine.max_num_batched_tokens == 65536  # max(65536, 2048); kvplan had 512
    assert one(LLAMA, engine="vllm==0.6.1", max_model_len=65536,
               enable_prefix_caching=True).engine.max_num_batched_tokens == 512
    refused = run_kvplan("estimate", LLAMA, "--engine", "vllm==0.6.0", "--gpu", "H100", "--max-model-len", "65536",
                         "--enable-prefix-caching", "--max-num-batched-tokens", "4096")
    assert refused.returncode == 2 and '"max_num_batched_tokens (4096) is smaller than max_model_len (65536)"' \
        in refused.stderr


# 5. ROCm from 0.6.5 (Llama-3.1-8B on an MI300X at 64K)

def test_rocm_takes_the_whole_length_from_0_6_5():
    assert one(LLAMA, engine="vllm==0.6.4", gpu="MI300X", max_model_len=65536).engine.max_num_batched_tokens == 512
    assert one(LLAMA, engine="vllm==0.6.6", gpu="MI300X", max_model_len=65536).engine.max_num_batched_tokens == 65536
    assert one(LLAMA, engine="vllm==0.6.6", max_model_len=65536).engine.max_num_batched_tokens == 2048  # H100


# 6. MLA on 0.7.1-0.7.3: forced off after SchedulerConfig picked the chunk (config.py 0.7.3:3327-3335), so the
#    batch stays 2,048 and no check refuses a short one; from 0.8 arg_utils keeps it off first (0.9.2:1514)

def test_mla_on_0_7_3_keeps_the_chunk():
    assert one("deepseek-ai/DeepSeek-V2-Lite", engine="vllm==0.7.3").engine.max_num_batched_tokens == 2048
