"""V0's admission (kvplan/engines/vllm_v0_admission.py), the releases that refuse pipeline stages before SupportsPP
(kvplan/plan/sharding.py EARLY_PIPELINE) and check's raised max_num_seqs under V0's virtual engines
(plan.raised_cap), checked against vLLM's code as read in the wheels, by hand arithmetic:
- every block manager (core/block_manager.py 0.2.0:65-100; block_manager_v1.py / v2 0.5.x-0.6.3; block_manager.py
  0.6.4-0.10.1.1) keeps watermark_blocks = int(0.01 x its blocks) free when it admits a request (can_allocate:
  free - needed >= watermark), one block manager a virtual engine over num_gpu_blocks // pp; no null block;
- config.py: "Pipeline parallelism is not supported yet." up to 0.5.0.post1 (0.5.0:628-631), "... not supported yet
  with multiprocessing." on 0.5.1-0.5.2 (0.5.1:711-714), _PP_SUPPORTED_MODELS on 0.5.3-0.6.2 (0.5.3:31-41, :281-285).
Llama-3.1-8B: 8 KV heads x 128 x 2 (K, V) x 2 bytes x 32 layers = 128 KiB a token, 2 MiB a 16-token block; a request
of 8,192 tokens takes 512 blocks, of 2,048 tokens 128, of 131,072 tokens 8,192."""

from types import SimpleNamespace

import pytest

import kvplan.api as api
from kvplan.engines.figures import figure_columns
from kvplan.engines.vllm_v0_admission import null_blocks, watermark_blocks
from kvplan.plan.plan import raised_cap, reaching
from kvplan.render.estimate import concurrency_note

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def _plan(engine, length, pp=1, gpu="H100", model=MODEL, **kw):
    (plan,) = api.estimate(model, max_model_len=length, pipeline_parallel_size=pp, gpu=gpu, engine=f"vllm=={engine}",
                           **kw)
    return plan


@pytest.mark.parametrize("blocks, kept", [(27268, 272), (31097, 310), (99, 0), (100, 1), (199, 1), (8250, 82)])
def test_watermark_is_one_percent_rounded_down(blocks, kept):
    assert watermark_blocks(blocks) == kept


def _groups(kind):
    return (SimpleNamespace(spec=SimpleNamespace(kind=kind)),)


def test_null_block_only_for_a_sliding_window_under_block_manager_v2():
    # BlockSpaceManagerV2, the default from 0.6.3, takes one null block once a sliding window drops blocks; V1 (the
    # default up to 0.6.2) reuses the window's blocks in place; a full-attention table never drops any
    assert null_blocks(_groups("full"), "0.6.3") == 0
    assert null_blocks(_groups("sliding"), "0.6.2") == 0
    assert null_blocks(_groups("sliding"), "0.6.3") == 1


def test_llama_8k_on_0_6_3_admits_one_fewer():
    plan = _plan("0.6.3", 8192)
    e = plan.engine
    assert e.num_gpu_blocks == 27268
    # what vLLM logs is counted before admission: 27,268 x 16 / 8,192 = 53.26
    assert e.log_lines == ("# GPU blocks: 27268, # CPU blocks: 2048",
                           "Maximum concurrency for 8192 tokens per request: 53.26x")
    # 272 kept free: (27,268 - 272 - 512) // 512 + 1 = 51 + 1 = 52 (before: 27,267 less a null block V0 has not, 53)
    assert (plan.max_concurrency, plan.max_concurrency_limited_by, e.resident_sequences) == (52, "memory", 52)
    assert e.watermark_blocks == 272
    note = concurrency_note(plan)
    assert "vLLM logs \"Maximum concurrency\" 53.26x" in note and "leaves 272 of them free" in note


def test_llama_2k_on_0_6_3_memory_bound_below_max_num_seqs():
    plan = _plan("0.6.3", 2048)
    assert plan.engine.num_gpu_blocks == 27604 and plan.engine.max_num_seqs == 256
    # int(0.01 x 27,604) = 276: (27,604 - 276) // 128 = 213 (27,328 / 128 = 213.5; before: 27,603 // 128 = 215)
    assert (plan.max_concurrency, plan.max_concurrency_limited_by) == (213, "memory")


def test_each_virtual_engine_keeps_its_own_watermark():
    plan = _plan("0.6.3", 2048, pp=2)
    assert plan.engine.num_gpu_blocks == 62866
    # a share of 62,866 // 2 = 31,433 keeps int(314.33) = 314: (31,433 - 314) // 128 = 243 a share, 486 in all
    # (the whole pool's watermark, 628, would give (62,866 - 628) // 128 = 486 too, but a share at a time: 2 x 243)
    assert plan.engine.watermark_blocks == 314
    assert plan.max_concurrency == 2 * 243


def test_a_request_within_the_pool_but_past_the_watermark_never_runs():
    # 8,250 blocks, set with --num-gpu-blocks-override (V0's LLMEngine takes it as the pool; 0.6.3 has no
    # --kv-cache-memory-bytes, a flag from 0.10.2; 16,500 MiB / 2 MiB was the same 8,250): the worker's check passes
    # (8,250 x 16 = 132,000 >= 131,072 tokens), but can_allocate finds 8,250 - 8,192 = 58 < int(82.5) = 82: NEVER, the
    # prompt is ignored
    plan = _plan("0.6.3", 131072, num_gpu_blocks_override=8250)
    assert plan.engine.num_gpu_blocks == 8250 and plan.engine.starts
    assert plan.max_concurrency == 0 and not plan.fits
    note = concurrency_note(plan)
    assert "8,168 blocks (130,688 tokens), fewer than the 8,192 one request of max len needs" in note
    # 8,500 blocks keep 85: 8,500 - 8,192 = 308 >= 85, one request runs
    assert _plan("0.6.3", 131072, num_gpu_blocks_override=8500).max_concurrency == 1


def test_v1_keeps_its_null_block_and_no_watermark():
    plan = _plan("0.11.0", 8192)
    n = plan.engine.num_gpu_blocks
    assert plan.engine.watermark_blocks == 0
    assert plan.max_concurrency == (n - 1 - 512) // 512 + 1


def test_the_json_says_the_watermark_on_v0_only():
    # s75: V0's readings joined the JSON (tests/test_engine_core_s75.py), after the older keys
    data = _plan("0.6.3", 8192).engine.to_dict()
    assert data["watermark_blocks"] == 272 and list(data)[-3:] == ["core", "virtual_engines", "watermark_blocks"]
    assert "watermark_blocks" not in _plan("0.11.0", 8192).engine.to_dict()
    assert "watermark_blocks" not in figure_columns() and "fewest_blocks" not in figure_columns()


# pipeline stages refused before SupportsPP


@pytest.mark.parametrize("version, words", [
    ("0.4.0", '"Pipeline parallelism is not supported yet." (config.py ParallelConfig._verify_args)'),
    ("0.5.0", '"Pipeline parallelism is not supported yet." (config.py ParallelConfig._verify_args)'),
    ("0.5.1", '"Pipeline parallelism is not supported yet with multiprocessing."'),
    ("0.5.2", '"Pipeline parallelism is not supported yet with multiprocessing."'),
])
def test_early_releases_refuse_any_pipeline(version, words):
    plan = _plan(version, 8192, pp=2)
    (error,) = plan.pp_errors
    assert f"vLLM {version} refuses it: {words}" in error
    # LlamaForCausalLM is on 0.5.3's list; the API's keywords name the fields
    assert f"engine vllm==0.5.3 or newer takes it; at vllm=={version} only pipeline_parallel_size 1 starts." in error
    assert not _plan(version, 8192).pp_errors  # pp 1 starts


def test_0_5_3_lists_the_architectures_in_vllms_own_words():
    assert not _plan("0.5.3", 8192, pp=2).pp_errors  # Llama is listed
    (error,) = _plan("0.5.3", 8192, pp=2, model="Qwen/Qwen2.5-7B-Instruct").pp_errors
    # 0.5.3's list (config.py:31-41), printed as Python prints a list, after vLLM's two spaces
    listed = ("['AquilaModel', 'AquilaForCausalLM', 'InternLMForCausalLM', 'LlamaForCausalLM', 'LLaMAForCausalLM', "
              "'MistralForCausalLM', 'Phi3ForCausalLM', 'GPT2LMHeadModel', 'MixtralForCausalLM']")
    assert (f'"Pipeline parallelism is only supported for the following  architectures: {listed}." '
            f"(config.py ModelConfig.verify_with_parallel_config)") in error
    assert "vllm==0.5.4 or newer takes it" in error  # Qwen2ForCausalLM joins in 0.5.4 (config.py 0.5.4:32-47)
    assert not _plan("0.5.4", 8192, pp=2, model="Qwen/Qwen2.5-7B-Instruct").pp_errors


def test_an_architecture_on_no_list_waits_for_supports_pp():
    # Gemma2ForCausalLM is on no _PP_SUPPORTED_MODELS (0.5.3-0.6.2): 0.6.3's SupportsPP takes it
    (error,) = _plan("0.6.2", 4096, pp=2, model="google/gemma-2-9b").pp_errors
    assert "vllm==0.6.3 or newer takes it" in error
    assert not _plan("0.6.3", 4096, pp=2, model="google/gemma-2-9b").pp_errors


def test_check_fails_the_refused_pipeline():
    from conftest import run_kvplan

    out = run_kvplan("check", MODEL, "-tp", "1", "-pp", "2", "--engine", "vllm==0.5.0", "--gpu", "H100",
                     "--max-model-len", "8192", "--min-concurrency", "10")
    assert out.returncode == 1
    text = " ".join(out.stdout.split())
    assert '"Pipeline parallelism is not supported yet."' in text
    assert "--engine vllm==0.5.3 or newer takes it; at vllm==0.5.0 only --pipeline-parallel-size 1 starts." in text


# check's remedy: max_num_seqs a virtual engine


def test_raised_cap_divides_the_target_among_the_schedulers():
    asked = []

    def plan_with(changes):
        asked.append(changes)
        return "planned"

    assert raised_cap(800, plan_with) == ((("max_num_seqs", 800),), "planned")
    assert raised_cap(800, plan_with, 2) == ((("max_num_seqs", 400),), "planned")
    assert raised_cap(801, plan_with, 2)[0] == (("max_num_seqs", 401),)  # 2 x 400 = 800 < 801: rounded up
    assert raised_cap(5, plan_with, 4)[0] == (("max_num_seqs", 2),)


def test_reaching_reads_the_engines_from_the_plan():
    def held(concurrency, limited, engines):
        return SimpleNamespace(max_concurrency=concurrency, max_concurrency_limited_by=limited,
                               engine=SimpleNamespace(virtual_engines=engines))

    def plan_with(raised):
        # 2 virtual engines of 486 requests each (the 2K pp 2 plan above) capped at max_num_seqs each
        seqs = dict(raised).get("max_num_seqs", 256)
        return held(2 * min(seqs, 486), "max_num_seqs" if seqs < 486 else "memory", 2)

    assert reaching((("tp", 1),), 800, plan_with) == (("tp", 1), ("max_num_seqs", 400))
    assert reaching((("tp", 1),), 1000, plan_with) is None  # 2 x 486 = 972 < 1,000: memory's limit


def test_check_asks_for_one_engines_share_of_the_target():
    from conftest import run_kvplan

    out = run_kvplan("check", MODEL, "-tp", "1", "-pp", "2", "--engine", "vllm==0.6.3", "--gpu", "H100",
                     "--max-model-len", "1024", "--min-concurrency", "800")
    assert out.returncode == 1
    text = " ".join(out.stdout.split())
    assert ("vLLM runs at most --max-num-seqs 256 sequences at once on each of V0's 2 virtual engines (one a "
            "pipeline stage), 512 in all") in text
    assert "it holds 800 with --max-num-seqs 400." in text
    passed = run_kvplan("check", MODEL, "-tp", "1", "-pp", "2", "--engine", "vllm==0.6.3", "--gpu", "H100",
                        "--max-model-len", "1024", "--min-concurrency", "800", "--max-num-seqs", "400")
    assert passed.returncode == 0
