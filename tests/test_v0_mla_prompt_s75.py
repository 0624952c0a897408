"""vLLM 0.7.1-0.7.3 on an MLA model past 32K: chunked prefill turned off after the batch was picked
(kvplan/engines/vllm_v0_chunked.py MLA_OFF_LATE), read in the wheels:

    # SchedulerConfig.__post_init__, config.py 0.7.3:1521-1532 (0.7.1:1507-1519 the same)
    if self.max_num_batched_tokens is None:
        if self.enable_chunked_prefill: ... self.max_num_batched_tokens = 2048
        else: self.max_num_batched_tokens = max(self.max_model_len, 2048)
    # VllmConfig.__post_init__, config.py 0.7.3:3327-3335 (0.7.1:3255-3263, 0.7.2:3273-3281)
    if self.model_config and self.model_config.use_mla:
        logger.info("MLA is enabled; forcing chunked prefill and prefix caching to be disabled.")
        self.scheduler_config.enable_chunked_prefill = False
        self.scheduler_config.chunked_prefill_enabled = False      # max_num_batched_tokens left as it was
    # Scheduler._get_prompt_limit, core/scheduler.py 0.7.3:924-932 (0.7.1:801-807)
    prompt_limit = max_model_len if chunked_prefill_enabled else min(max_model_len, max_num_batched_tokens)
    # _schedule_prefills, 0.7.3:1089-1101: "Input prompt (%d tokens) is too long and exceeds limit of %d" -> ignored

0.7.0's config.py has no use_mla at all; 0.8.0 turns MLA's chunked prefill off in arg_utils first (0.8.0:1613), and its
late branch (config.py 0.8.0:3513-3522, non-GPU platforms only) resets the batch to max(max_model_len, 2048).
DeepSeek-V2-Lite derives 163,840 = 4,096 x 40 (YaRN) tokens, past 32,768, so V0 picks the 2,048-token chunk.
"""

from __future__ import annotations

import pytest

from conftest import run_kvplan

import kvplan
from kvplan.engines.vllm_engine import VllmEngine
from kvplan.errors import FieldError
from kvplan.model.bundled import find_bundled, load_bundled
from kvplan.plan.catalog import find_gpu

LITE = "deepseek-ai/DeepSeek-V2-Lite"
V3 = "deepseek-ai/DeepSeek-V3"
LENGTH = 4_096 * 40  # YaRN original_max_position_embeddings x factor: 163,840


def one(model, **kwargs):
    (plan,) = kvplan.estimate(model, gpu=kwargs.pop("gpu", "H100"), **kwargs)
    return plan


def limit_of(version, context, gpu="H100", **settings):
    spec = load_bundled(find_bundled(LITE))[1]
    return VllmEngine(version).settings(context, find_gpu(gpu), spec=spec, **settings).prompt_limit


@pytest.mark.parametrize("version", ["0.7.1", "0.7.2", "0.7.3"])
def test_default_length_serves_prompts_of_the_chunk(version):
    """min(163,840, 2,048) = 2,048: the chunk SchedulerConfig picked stays the batch and the prompt limit."""
    plan = one(LITE, engine=f"vllm=={version}")
    assert plan.context == LENGTH and plan.engine.max_num_batched_tokens == 2048
    assert limit_of(version, LENGTH) == 2048
    (warning,) = [w for w in plan.tp_warnings if "MLA" in w]
    assert "MLA is enabled; forcing chunked prefill and prefix caching to be disabled." in warning
    assert "Input prompt (163840 tokens) is too long and exceeds limit of 2048" in warning
    # the time to first token is of the longest prompt served: one chunk of 2,048
    assert (plan.prefill.input_len, plan.prefill.chunks, plan.prefill.chunk_tokens) == (2048, 1, 2048)
    assert "MLA turns its chunked prefill off" in plan.prefill.input_len_note


@pytest.mark.parametrize("version", ["0.6.6", "0.7.0", "0.8.0", "0.10.1.1"])
def test_other_releases_serve_the_whole_prompt(version):
    """0.7.0 and before: no MLA flag; from 0.8 (V1 here) no late turn-off on CUDA."""
    assert limit_of(version, LENGTH) is None
    plan = one(LITE, engine=f"vllm=={version}")
    assert not [w for w in plan.tp_warnings if "MLA" in w]
    assert plan.prefill.input_len_note is None


def test_lengths_up_to_32k_take_the_whole_length():
    """Up to 32,768 chunked prefill is off from the start: max(len, 2048) batched tokens, the limit the length."""
    assert limit_of("0.7.3", 2048) is None  # max(2,048, 2,048) = 2,048 = the length
    assert limit_of("0.7.3", 32768) is None  # max(32,768, 2,048)
    assert limit_of("0.7.3", 32769) == 2048  # past 32,768: the chunk
    plan = one(LITE, engine="vllm==0.7.3", max_model_len=2048)
    assert plan.engine.max_num_batched_tokens == 2048 and plan.prefill.input_len == 2048
    assert not [w for w in plan.tp_warnings if "MLA" in w]


def test_asked_batch_sets_the_limit():
    """A given max_num_batched_tokens past 32K passes SchedulerConfig (chunked prefill still on there), then is the
    limit: 8,192 < 163,840; 163,840 itself serves whole prompts."""
    assert limit_of("0.7.3", LENGTH, max_num_batched_tokens=8192) == 8192
    assert limit_of("0.7.3", LENGTH, max_num_batched_tokens=LENGTH) is None
    plan = one(LITE, engine="vllm==0.7.3", max_num_batched_tokens=LENGTH)
    assert plan.prefill.input_len == LENGTH and not [w for w in plan.tp_warnings if "MLA" in w]


def test_rocm_keeps_chunked_prefill_off_from_the_start():
    """0.6.5 on keep it off on ROCm (arg_utils.py 0.7.3:1185): max(163,840, 2,048), no limit."""
    assert limit_of("0.7.3", LENGTH, gpu="MI300X") is None


def test_asked_prompt_past_the_limit_is_refused():
    with pytest.raises(FieldError) as caught:
        one(LITE, engine="vllm==0.7.3", input_len=2049)
    assert caught.value.field == "input_len"
    assert "Input prompt (2049 tokens) is too long and exceeds limit of 2048" in str(caught.value)
    assert one(LITE, engine="vllm==0.7.3", input_len=2048).prefill.chunks == 1


def test_cli_words_the_refusal_with_flags():
    result = run_kvplan("estimate", LITE, "--gpu", "H100", "--engine", "vllm==0.7.3", "--input-len", "4096")
    assert result.returncode == 2
    assert "--input-len (4,096)" in result.stderr and "--max-num-batched-tokens to 163840 or more" in result.stderr
    assert "--max-model-len to 32768 or less" in result.stderr


def test_deepseek_v3_tp8_h200():
    """The same at tp 8: 163,840 tokens, 2,048-token chunk, prompts of at most 2,048."""
    plan = one(V3, engine="vllm==0.7.3", gpu="H200", tensor_parallel_size=8)
    assert plan.context == LENGTH and plan.engine.max_num_batched_tokens == 2048
    assert [w for w in plan.tp_warnings if "exceeds limit of 2048" in w]
    assert plan.prefill.input_len == 2048


def test_check_warns_and_passes():
    """A CI gate: the server starts and holds its requests, so a warning, not a failure."""
    (row,) = kvplan.check(LITE, tensor_parallel_size=1, gpu="H100", engine="vllm==0.7.3")
    assert row["passed"] and any("exceeds limit of 2048" in w for w in row["warnings"])
    (short,) = kvplan.check(LITE, tensor_parallel_size=1, gpu="H100", engine="vllm==0.7.3", max_model_len=4096)
    assert not any("exceeds limit" in w for w in short["warnings"])
