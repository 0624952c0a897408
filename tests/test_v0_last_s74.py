"""V0's last gaps, checked against vLLM's code as read in the wheels (0.2.0-0.11.0), by hand arithmetic:
- "Maximum concurrency for L tokens per request: C x" is logged by V0's executors from 0.6.3 (gpu_executor.py
  0.6.3:124-127, distributed_gpu_executor.py 0.6.3:59-62; executor_base.py 0.7.0:111-114); up to 0.6.2 they log
  "# GPU blocks: N, # CPU blocks: M" alone (gpu_executor.py 0.6.2:122-123, distributed_gpu_executor.py 0.6.2:57-58).
- dense MLA's block before 0.11 (platforms/cuda.py check_and_update_config): 0.8.0-0.10.0 force FlashMLA's 64 where
  is_flashmla_supported (compute capability major 9) whatever --block-size says ("Forcing kv cache block size to 64
  for FlashMLA backend.", 0.8.0:149-160, 0.9.2:155-166); 0.10.1-0.10.2 also force CUTLASS_MLA's 128 on compute
  capability 10.0 (0.10.1:142-178); 0.7.3 forces nothing (:141-143: 16 where unset).
Llama-3.1-8B: 8 KV heads x 128 x 2 (K, V) x 2 bytes x 32 layers = 128 KiB a token, 2 MiB a 16-token block."""

import kvplan.api as api
from kvplan.render.estimate import concurrency_note

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def _plan(engine, length, model=LLAMA, gpu="H100", **kw):
    (plan,) = api.estimate(model, max_model_len=length, gpu=gpu, engine=f"vllm=={engine}", **kw)
    return plan


def test_no_concurrency_line_before_0_6_3():
    for version in ("0.5.0", "0.6.2"):
        e = _plan(version, 8192).engine
        assert not any("Maximum concurrency" in line for line in e.log_lines), version
        assert e.max_concurrency is None  # nothing logged, no figure (as a refused start has none)
        assert e.log_lines[-1].startswith("# GPU blocks: ")


def test_concurrency_line_from_0_6_3_and_in_tp_executors():
    # 27,268 blocks x 16 / 8,192 = 53.26 (test_v0_admit_s74's case); tp 2 goes through DistributedGPUExecutor
    e = _plan("0.6.3", 8192).engine
    assert e.log_lines[-1] == "Maximum concurrency for 8192 tokens per request: 53.26x"
    two = _plan("0.6.3", 8192, tensor_parallel_size=2).engine
    assert two.log_lines[-1] == (f"Maximum concurrency for 8192 tokens per request: "
                                 f"{two.num_gpu_blocks * 16 / 8192:.2f}x")
    assert not any("Maximum concurrency" in line for line in _plan("0.6.2", 8192, tensor_parallel_size=2).engine
                   .log_lines)


def test_note_quotes_no_line_0_6_2_does_not_print():
    plan = _plan("0.6.2", 8192)
    note = concurrency_note(plan)
    # 272 watermark blocks keep one request out: 52 held, against 27,268 x 16 / 8,192 = 53.26 the blocks hold
    assert plan.max_concurrency == 52
    assert "vLLM logs \"Maximum concurrency\"" not in note
    assert "logs no \"Maximum concurrency\"" in note and "53.26" in note



MLA = "deepseek-ai/DeepSeek-V2-Lite"  # 27 layers x (512 + 64) latent values x 2 bytes = 31,104 bytes a token


def test_mla_block_forced_before_0_11():
    cases = {("0.7.3", "H100"): 16, ("0.8.0", "H100"): 64, ("0.9.2", "H100"): 64, ("0.10.0", "H100"): 64,
             ("0.10.2", "H100"): 64, ("0.9.2", "A100-80GB"): 16, ("0.10.0", "B200"): 16, ("0.10.1", "B200"): 128}
    for (version, gpu), block in cases.items():
        plan = _plan(version, 32768, model=MLA, gpu=gpu)
        assert (plan.block_size, plan.engine.block_size) == (block, block), (version, gpu)
    # a given block is replaced too (cache_config.block_size != 64)
    assert _plan("0.9.2", 32768, model=MLA, block_size=32).block_size == 64


def test_mla_h100_0_9_2_figures_at_64():
    e = _plan("0.9.2", 32768, model=MLA).engine
    # 64 x 31,104 = 1,990,656 bytes a block; a 32,768-token request takes 512 of them
    assert e.num_gpu_blocks == e.available_kv_cache_bytes // (64 * 31104)
    assert e.gpu_kv_cache_tokens == e.num_gpu_blocks * 64
    assert e.max_concurrency == e.num_gpu_blocks / 512
