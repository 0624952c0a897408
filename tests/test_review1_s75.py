"""Session 75 review: defects found in the V0 chunked-prefill, batch-check and prefill-floor changes, each pinned to
vLLM's own code (wheels read; paths under vllm/).

- 0.10.2 still falls back to V0 (engine/arg_utils.py 0.10.2:1151 calls _set_default_args_v0, V0 removed in 0.11),
  and its _set_default_args_v0 (0.10.2:1566-1597) turns chunked prefill on past 32K on CUDA without a sliding window,
  speculative config or LoRA (no pooling condition any more); SchedulerConfig then takes
  DEFAULT_MAX_NUM_BATCHED_TOKENS = 2,048 (config/scheduler.py 0.10.2:189-190; utils/__init__.py 0.10.2:87).
- 0.9.2-0.10.0's V1 with chunked prefill off (a pooling model whose pooler is not LAST, _set_default_args_v1) sets
  max_num_batched_tokens to max_model_len whatever --max-num-batched-tokens says ("if not self.enable_chunked_prefill:
  self.max_num_batched_tokens = model_config.max_model_len", engine/arg_utils.py 0.9.2:1601-1602, 0.10.0:1556-1557);
  0.10.1 sets it so only where it is left to vLLM (0.10.1.1:1699-1701). SchedulerConfig then checks the value it
  holds (config.py 0.10.0:2464-2478), so a short given batch is no refusal there, and against max_num_seqs only
  --max-num-seqs helps.
"""

from __future__ import annotations

import json

from conftest import estimate_plan, one_error_line, run_kvplan

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def test_v0_fallback_of_0_10_2_chunks_a_long_prompt_as_0_10_1_does():
    # an fp8 cache on an A100 sends 0.10.1 and 0.10.2 to V0 (FlashAttention 3 takes fp8 on Hopper only)
    for version in ("0.10.1", "0.10.2"):
        plan = estimate_plan(LLAMA, "--gpu", "A100-80GB", "--engine", f"vllm=={version}", "--kv-cache-dtype", "fp8",
                             "-c", "65536")
        engine = plan["engine"]
        assert engine["core"] == "v0", version
        # 65,536 > 32,768: chunked prefill on, 2,048 tokens a batch; the prompt in 65,536 / 2,048 = 32 chunks
        assert engine["max_num_batched_tokens"] == 2048, version
        assert plan["prefill"]["chunks"] == 32, version


def reward_model(tmp_path):
    """Qwen2.5-7B's bundled config as a Qwen2ForRewardModel: pooling runner, ALL pooling, so chunked prefill off."""
    import yaml

    config = dict(yaml.safe_load(open("model_specs/Qwen--Qwen2.5-7B.yaml"))["config"])
    config.update(architectures=["Qwen2ForRewardModel"], num_labels=1)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return str(path)


def test_0_10_0_replaces_a_given_batch_with_the_length_for_a_pooling_model(tmp_path):
    model = reward_model(tmp_path)
    for version in ("0.9.2", "0.10.0"):
        plan = estimate_plan(model, "--gpu", "H100", "--engine", f"vllm=={version}", "-c", "32768",
                             "--max-num-batched-tokens", "4096")
        assert plan["engine"]["core"] == "v1"
        assert plan["engine"]["max_num_batched_tokens"] == 32768, version  # max_model_len, not the 4,096 given
    # 0.10.1 keeps the 4,096 given and refuses it: 4,096 < 32,768 without chunked prefill
    line = one_error_line(run_kvplan("estimate", model, "--gpu", "H100", "--engine", "vllm==0.10.1", "-c", "32768",
                                     "--max-num-batched-tokens", "4096"))
    assert '("max_num_batched_tokens (4096) is smaller than max_model_len (32768)")' in line


def test_0_10_0_short_pooling_model_remedy_names_max_num_seqs_only(tmp_path):
    # 512 batched tokens (max_model_len) < the 1,024 sequences V1 picks on an H100 (arg_utils.py 0.10.0:1590-1592),
    # not lowered before 0.10.1; raising --max-num-batched-tokens would not help, vLLM would set 512 again
    line = one_error_line(run_kvplan("estimate", reward_model(tmp_path), "--gpu", "H100", "--engine", "vllm==0.10.0",
                                     "-c", "512", "--max-num-batched-tokens", "4096"))
    assert '("max_num_batched_tokens (512) must be greater than or equal to max_num_seqs (1024)")' in line
    assert line.endswith("set --max-num-seqs to 512 or less.")
