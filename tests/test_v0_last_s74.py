"""V0's last gaps, checked against vLLM's code as read in the wheels (0.2.0-0.11.0), by hand arithmetic:
- "Maximum concurrency for L tokens per request: C x" is logged by V0's executors from 0.6.3 (gpu_executor.py
  0.6.3:124-127, distributed_gpu_executor.py 0.6.3:59-62; executor_base.py 0.7.0:111-114); up to 0.6.2 they log
  "# GPU blocks: N, # CPU blocks: M" alone (gpu_executor.py 0.6.2:122-123, distributed_gpu_executor.py 0.6.2:57-58).
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

