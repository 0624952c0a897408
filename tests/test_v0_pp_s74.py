"""V0's pipeline-parallel virtual engines (kvplan/engines/vllm_v0_pp.py), checked against vLLM's code as read in
the wheels (worker/cache_engine.py and core/scheduler.py: num_gpu_blocks // pipeline_parallel_size a virtual
engine, each Scheduler with its own max_num_seqs; worker/worker.py raise_if_cache_size_invalid: the whole count up
to 0.7.3, one share from 0.8.0; engine/arg_utils.py _is_v1_supported_oracle: pp > 1 falls back to V0 on 0.8.0-0.9.0)
by hand arithmetic on the block counts the plans log. Llama-3.1-8B: 8 KV heads x 128 x 2 (K, V) x 2 bytes x 32
layers = 128 KiB a token over the model, 64 KiB on a pp 2 stage; a 16-token block holds 16 tokens, so a request of
8,192 tokens takes 512 blocks and one of 1,024 tokens 64."""

import pytest

import kvplan.api as api
from kvplan.engines.vllm_v0_pp import pp_runs_v0
from kvplan.render.estimate import concurrency_note, resident_line

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def _plan(engine, length, pp=2, gpu="H100", **kw):
    (plan,) = api.estimate(MODEL, max_model_len=length, pipeline_parallel_size=pp, gpu=gpu,
                           engine=f"vllm=={engine}", **kw)
    return plan


def test_v0_pp2_holds_two_shares_of_blocks():
    plan = _plan("0.6.3", 8192)
    e = plan.engine
    assert e.log_lines[0].startswith(f"# GPU blocks: {e.num_gpu_blocks}, ")  # the whole count, as V0 logs it
    assert e.num_gpu_blocks == 62194  # [kvplan's V0 budget on an H100 at pp 2: 60.7 GiB // 1 MiB a block]
    # the logged concurrency is the whole pool's: 62,194 x 16 / 8,192 = 121.47
    assert e.log_lines[1] == "Maximum concurrency for 8192 tokens per request: 121.47x"
    # each of 2 virtual engines schedules 62,194 // 2 = 31,097 blocks, admitting while int(0.01 x 31,097) = 310 stay
    # free (vllm_v0_admission.py): (31,097 - 310 - 512) // 512 + 1 = 59 + 1 = 60, so 2 x 60 = 120 (one pool: 121)
    assert (plan.max_concurrency, plan.max_concurrency_limited_by) == (120, "memory")
    assert e.resident_sequences == 120


def test_v0_pp2_caps_each_engine_at_max_num_seqs():
    plan = _plan("0.6.3", 1024)
    # 1,024 tokens: 64 blocks a request, ~491 a share (62,866 // 2 = 31,433 blocks): V0's 256 caps each scheduler
    assert plan.engine.max_num_seqs == 256
    assert (plan.max_concurrency, plan.max_concurrency_limited_by) == (2 * 256, "max_num_seqs")
    # each share keeps int(0.01 x 31,433) = 314 blocks free at admission: (31,433 - 314 - 64) // 64 + 1 = 486
    assert plan.engine.resident_sequences == 2 * ((31433 - 314 - 64) // 64 + 1) == 2 * 486


def test_v0_pp1_unchanged():
    plan = _plan("0.6.3", 8192, pp=1)
    n = plan.engine.num_gpu_blocks
    # one scheduler over every block, less its 1% watermark (vllm_v0_admission.py)
    assert plan.max_concurrency == (n - n // 100 - 512) // 512 + 1


def test_v1_pp2_schedules_one_pool():
    plan = _plan("0.11.0", 1024)
    # V1: one scheduler over the smallest stage's blocks, its own max_num_seqs (1,024 on an H100) not reached
    assert plan.engine.log_lines[-2].startswith("GPU KV cache size: 960,608 tokens")
    assert (plan.max_concurrency, plan.max_concurrency_limited_by) == (938, "memory")  # 60,038 blocks // 64 = 938


@pytest.mark.parametrize("version, v0", [("0.8.0", True), ("0.8.5", True), ("0.9.0", True), ("0.9.0.1", True),
                                          ("0.9.1", False), ("0.10.1.1", False), ("0.7.3", False)])
def test_pp_fallback_releases(version, v0):
    # 0.7.3 is V0 whatever the pipeline (kvplan's era "v0"); the fallback is 0.8's question
    assert pp_runs_v0(version, 2) is v0
    assert pp_runs_v0(version, 1) is False


@pytest.mark.parametrize("version, v0", [("0.8.5", True), ("0.9.0", True), ("0.9.1", False)])
def test_pp_fallback_plans_v0(version, v0):
    plan = _plan(version, 1024)
    assert plan.engine.log_lines[0].startswith("# cuda blocks: ") is v0
    # V0: 256 a virtual engine, 2 x 256; V1 (0.9.1): one scheduler of 1,024 sequences, memory-bound
    assert (plan.max_concurrency == 512) is v0
    assert _plan(version, 1024, pp=1).engine.log_lines[0].startswith("Available KV cache memory")  # pp 1: V1


def test_share_check_by_release():
    # 131,072 tokens need 8,192 blocks; an L4's stages hold ~12,000 blocks, ~6,000 a share
    old = _plan("0.6.3", 131072, gpu="L4")
    n = old.engine.num_gpu_blocks
    assert n // 2 < 8192 <= n
    # up to 0.7.3 the worker checks the whole count: it starts, but no share holds a request of max len
    assert old.engine.starts and old.max_concurrency == 0 and not old.fits
    new = _plan("0.8.5", 131072, gpu="L4")
    m = new.engine.num_gpu_blocks
    assert m // 2 < 8192
    # from 0.8.0 it checks one share: 16 x (m // 2) tokens, as the message says
    assert not new.engine.starts
    assert f"stored in KV cache ({16 * (m // 2)})" in new.engine.refusal.reason


def test_table_says_why():
    from conftest import run_kvplan

    out = run_kvplan("estimate", MODEL, "-pp", "2", "--max-model-len", "1024", "--gpu", "H100",
                     "--engine", "vllm==0.6.3")
    assert "caps each of V0's 2 virtual engines, one a pipeline stage, at 256" in " ".join(out.stdout.split())
    out = run_kvplan("estimate", MODEL, "-pp", "2", "--max-model-len", "131072", "--gpu", "L4",
                     "--engine", "vllm==0.6.3")
    assert "each of V0's 2 virtual engines (one a pipeline stage) schedules" in " ".join(out.stdout.split())


def test_v0_state_model_at_pp2_is_one_engine_in_the_plan_and_its_notes():
    # Jamba keeps a V0 Mamba state cache on 0.9.2 (vllm_mamba_v0.keeps_v0_state), whose slots serve every virtual
    # engine: kvplan plans it as one scheduler, and the table's notes must say the same (they once read the engine
    # count again from the V0 block line, which a V0 state model logs too)
    (plan,) = api.estimate("ai21labs/AI21-Jamba-1.5-Mini", max_model_len=8192, pipeline_parallel_size=2, gpu="H200",
                           engine="vllm==0.9.2")
    assert plan.engine.virtual_engines == 1
    assert plan.engine.log_lines[0].startswith("# ")
    notes = concurrency_note(plan) + resident_line(plan)
    assert "virtual engines" not in notes
    assert plan.engine.to_dict()["virtual_engines"] == 1  # the JSON says the same (s75)


def test_engine_count_rides_on_the_figures():
    plan = _plan("0.6.3", 1024)
    assert plan.engine.virtual_engines == 2
    assert plan.engine.to_dict()["virtual_engines"] == 2  # in the JSON on V0 since s75
