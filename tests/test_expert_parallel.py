"""vLLM's --data-parallel-size and --enable-expert-parallel (plan/sharding.py moe_layout, stage_weights): each rank's
routed experts and weights held to vLLM 0.32's own FusedMoE built on the CPU at the case's TP / DP / EP
(benchmarks/vllm_reference/expert_parallel.py -> tests/data/vllm_expert_parallel.json: FusedMoEParallelConfig.make,
determine_expert_map), and to hand arithmetic from the configs; the per-rank figures and the deployment's total."""

import json
import math
from pathlib import Path

import pytest

from conftest import run_kvplan
from kvplan.model.sources import resolve
from kvplan.plan.sharding import moe_layout, stage_weights

FROZEN = json.loads((Path(__file__).parent / "data" / "vllm_expert_parallel.json").read_text())
BUILT = [c for c in FROZEN["cases"] if "error" not in c]
R1 = "deepseek-ai/DeepSeek-R1"
QWEN = "Qwen/Qwen3-30B-A3B"
LLAMA = "meta-llama/Llama-3.1-8B"


def _id(case) -> str:
    return f"{case['model']}-tp{case['tp']}-dp{case['dp']}-ep{int(case['enable_expert_parallel'])}-r{case['rank']}"


def _layout(case):
    return moe_layout(resolve(case["model"]), case["tp"], case["dp"], case["enable_expert_parallel"])


@pytest.mark.parametrize("case", BUILT, ids=_id)
def test_each_rank_holds_the_experts_vllm_gives_it(case):
    """The experts' TP degree (T x D without EP, 1 with it), ep_size (T x D with EP) and the rank's expert count
    (E // ep, the first E % ep ranks one more: 128 over 3 -> 43, 43, 42; 8 over 3 -> 3, 3, 2) as vLLM's FusedMoE."""
    vllm, layout = case["fused_moe"], _layout(case)
    assert (layout.moe_tp, layout.ep) == (vllm["tp_size"], vllm["ep_size"])
    assert layout.experts_on(case["rank"]) == vllm["local_num_experts"]
    assert resolve(case["model"]).expert_intermediate_size // layout.moe_tp == vllm["intermediate_size_per_partition"]


@pytest.mark.parametrize("case", [c for c in BUILT if c["rank"] == 0], ids=_id)
def test_the_busiest_rank_weighs_what_vllm_builds(case):
    """Rank 0 holds the most experts (ceil(E / ep)): kvplan's weights a GPU against the bytes of vLLM's parameters on
    that rank. Exact for Qwen3 and Mixtral; DeepSeek-V3's bundled size is an estimate 0.0062% above vLLM's build at
    every layout (the same offset at TP 8 without EP)."""
    vllm = case["parameters"]["experts"]["bytes"] + case["parameters"]["rest"]["bytes"]
    ours = stage_weights(resolve(case["model"]), case["tp"], None, _layout(case))
    assert abs(ours / vllm - 1) < 7e-5


def test_hand_arithmetic_qwen3_30b_over_three_dp_ranks():
    """Qwen3-30B-A3B: 48 layers of 128 experts, each gate/up 2 x 768 x 2048 + down 2048 x 768 bf16. At DP 3 + EP
    rank 0 holds 43 experts whole: 43 x 48 x 3 x 2048 x 768 x 2 = 19,478,347,776 bytes (vLLM's own count); the rest
    (attention, router, norms, embeddings, LM head) whole at TP 1: 3,082,186,752, as vLLM's."""
    spec = resolve(QWEN)
    layout = moe_layout(spec, 1, 3, True)
    assert layout.local_experts == 43 and layout.experts_on(2) == 42
    experts = 43 * 48 * 3 * 2048 * 768 * 2
    assert experts == 19_478_347_776 == next(c for c in BUILT if c["dp"] == 3 and c["model"] == QWEN
                                             and c["rank"] == 0)["parameters"]["experts"]["bytes"]
    assert stage_weights(spec, 1, None, layout) == experts + 3_082_186_752


def test_releases_before_0_10_1_gave_the_remainder_to_the_last_rank():
    """layout.py determine_expert_map before 0.10.1: E // ep each, the last rank E - (ep - 1) x (E // ep): 128 over 3
    ranks -> 42, 42, 44."""
    layout = moe_layout(resolve(QWEN), 1, 3, True, remainder_last=True)
    assert [layout.experts_on(r) for r in range(3)] == [42, 42, 44] and layout.local_experts == 44


def test_vllm_refuses_ep_on_a_dense_model():
    """config/model.py _verify_with_expert_parallelism (every release read, 0.8.5-0.32): the frozen build of
    Llama-3.1-8B with EP fails in vLLM's config, and kvplan refuses it in one sentence, exit 2."""
    (refused,) = [c for c in FROZEN["cases"] if "error" in c]
    assert refused["model"] == LLAMA and "Number of experts in the model must be greater than 0" in refused["error"]
    run = run_kvplan("estimate", LLAMA, "-ep")
    assert run.returncode == 2 and run.stdout == "" and len(run.stderr.splitlines()) == 1
    assert "-ep needs a model with routed experts" in run.stderr


def _plan(*args) -> dict:
    run = run_kvplan("estimate", *args, "--format", "json")
    assert run.returncode == 0, run.stderr
    (plan,) = json.loads(run.stdout)["plans"]
    return plan


def _term(plan: dict, name: str) -> int:
    return next(t for t in plan["budget"]["terms"] if t["name"] == name)["bytes"]


def test_deepseek_r1_dp8_ep_against_tp8():
    """DeepSeek-R1 on 8 x H200: at DP 8 + EP each GPU holds 32 of 256 experts whole and the non-expert weights whole
    (vLLM builds 100,840,747,360 bytes a rank for V3's shape vs 85,140,130,848 at TP 8, with or without EP: 1/8 of
    every expert or 32 whole ones weigh the same). The figures are one DP rank's (its log's), the total 8 x them."""
    tp8, ep8, dp8 = (_plan(R1, "--gpu", "H200", *a) for a in (("-tp", "8"), ("-tp", "8", "-ep"),
                                                              ("-tp", "1", "-dp", "8", "-ep")))
    assert _term(tp8, "weights") == _term(ep8, "weights")
    # beside the parameters, every rank's MLA layers add a bf16 copy of their heads' kv_b_proj after loading
    # (tests/test_mla_dequantized_copies.py): 61 x (128 - 16) heads x (128 + 128) x 512 x 2 bytes more at DP 8
    copies = 61 * (128 - 16) * 256 * 512 * 2
    assert abs((_term(dp8, "weights") - _term(tp8, "weights") - copies) / (100_840_747_360 - 85_140_130_848) - 1) < 1e-3
    assert "data_parallel" not in tp8
    layout = dp8["data_parallel"]
    assert (layout["gpus"], layout["expert_parallel_size"], layout["routed_experts_per_gpu"]) == (8, 8, 32)
    assert layout["max_concurrency_per_dp_rank"] == dp8["max_concurrency"] >= 1
    assert layout["max_concurrency_total"] == 8 * dp8["max_concurrency"]
    assert dp8["engine"]["gpu_kv_cache_tokens"] < tp8["engine"]["gpu_kv_cache_tokens"]


def test_profile_run_moe_buffers_cover_every_dp_rank_tokens():
    """Qwen3-30B-A3B at TP 1: DP 2 + EP all-gathers both ranks' dummy batches before the experts (moe_runner.py
    _maybe_dispatch, allgather_reducescatter), so the fused-MoE workspace covers 2 x max_num_batched_tokens: one more
    batch of k x (max(I, K) + max(N, K)) x 2 bytes = 8 x (2048 + 2048) x 2 = 65,536 bytes a token. The workspace
    stays allocated (v1/worker/workspace.py) under the sampler pass, which sets both peaks: 1,024 x 151,936 logits x 2
    bytes and the forward's (8,192 + 1,024) x 2,048 x 2 hidden states held, above the forward's own 8,192 x (2 x 2,048
    + 5,120 q/k/v) x 2 bytes (and, with DP, its 2 x 8,192 x 2,048 x 2 gathered hidden states)."""
    one, two = _plan(QWEN, "--gpu", "H200", "-c", "8192"), _plan(QWEN, "--gpu", "H200", "-c", "8192", "-dp", "2",
                                                                  "-ep")
    tokens = one["engine"]["max_num_batched_tokens"]
    workspace = tokens * 8 * (2048 + 2048) * 2
    assert _term(one, "profile_peak") == 1024 * 151936 * 2 + (tokens + 1024) * 2048 * 2 + workspace
    assert _term(two, "profile_peak") - _term(one, "profile_peak") == workspace
    assert _term(two, "weights") < _term(one, "weights")


def test_dense_dp_ranks_are_independent_engines():
    """A dense model's DP ranks are engines of their own (v1/engine/core.py run_engine_core:
    reconfigure_for_independent_dp_rank): every per-rank figure as without DP, twice the requests in all."""
    plain, dp2 = _plan(LLAMA, "--gpu", "H100", "-c", "8192"), _plan(LLAMA, "--gpu", "H100", "-c", "8192", "-dp", "2")
    for key in ("kv_budget_bytes_per_gpu", "kv_capacity_tokens", "max_concurrency"):
        assert plain[key] == dp2[key]
    assert plain["decode"] == dp2["decode"]
    assert dp2["data_parallel"]["max_concurrency_total"] == 2 * plain["max_concurrency"]


def test_a_sweep_names_each_total_by_its_plan():
    """-tp 1,2 with -c 8K,32K -dp 2: four DP footnotes, two a TP degree with different totals; each names the plan
    it totals (max len, KV dtype, tp), so two lines of "(tp 1)" with different totals do not contradict each other."""
    result = run_kvplan("estimate", QWEN, "--gpu", "H200", "-tp", "1,2", "-c", "8K,32K", "-dp", "2", "-ep")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for context in ("8,192", "32,768"):
        for tp in (1, 2):
            assert f"--enable-expert-parallel (max len {context} bf16 tp {tp}): 2 engine core(s)" in text
    single = " ".join(run_kvplan("estimate", QWEN, "--gpu", "H200", "-c", "8K", "-dp", "2").stdout.split())
    assert "--data-parallel-size 2 (tp 1): 2 engine core(s)" in single


def test_the_html_page_says_whose_figures_it_shows():
    """--format html showed one DP rank's requests with nothing saying so (the text footnotes were left out); the
    page now carries the DP / EP line with the deployment's total, the override's pool and the drafter line."""
    page = run_kvplan("estimate", QWEN, "--gpu", "H200", "-c", "8K", "-dp", "2", "-ep", "--num-gpu-blocks-override",
                      "3000", "--speculative-config", '{"method": "ngram", "num_speculative_tokens": 1}',
                      "--format", "html")
    assert page.returncode == 0, page.stderr
    text = " ".join(page.stdout.split())
    assert "the figures above are one DP rank&#x27;s" in text and "requests resident in all" in text
    assert "the KV cache is 3,000 blocks" in text and "by --num-gpu-blocks-override" in text
    assert "--speculative-config: speculative ngram, 1 draft token a step, no draft weights" in text
    plain = run_kvplan("estimate", QWEN, "--gpu", "H200", "-c", "8K", "--format", "html").stdout
    assert "engine core(s)" not in plain and "--num-gpu-blocks-override" not in plain


def test_decode_reads_the_busiest_rank_experts():
    """DeepSeek-R1 at TP 8 + EP, batch 1: one token picks 8 of 256 experts, each a rank's 32 with p = 8/256; the
    busiest of 8 ranks is taken as mean + sd x sqrt(2 ln 8) = 1 + sqrt(32 p (1 - p) x 2 ln 8) experts, against 1/8
    of all 8 touched at TP 8 (1 expert's bytes): the expert bytes read scale by that count."""
    from kvplan.model.precision import resolve_kv_dtype
    from kvplan.plan.work import decode_work

    spec = resolve(R1)
    precision = resolve_kv_dtype("auto", spec.dtype)
    p = 8 / 256
    busiest = 32 * p + math.sqrt(32 * p * (1 - p) * 2 * math.log(8))
    tp8 = decode_work(spec, 8, precision, 4096, 1).weight_bytes["experts"]
    ep8 = decode_work(spec, 8, precision, 4096, 1, moe_layout(spec, 8, 1, True)).weight_bytes["experts"]
    assert ep8 / tp8 == pytest.approx(busiest / 1, rel=1e-9)


@pytest.mark.parametrize("args, text", [
    (("-dp", "0"), "-dp must be a whole number of engine replicas"),
    (("-dp", "-2"), "-dp must be a whole number of engine replicas"),
    (("--data-parallel-size", "two"), "--data-parallel-size must be a whole number of engine replicas"),
    (("-dp", "2", "--engine", "none"), "-dp is modelled with vLLM only"),
    # the ideal engine's figures would silently leave these vLLM flags out: refused as -dp is
    (("--speculative-config", '{"method": "mtp", "num_speculative_tokens": 1}', "--engine", "none"),
     "--speculative-config is modelled with vLLM only"),
    (("--num-gpu-blocks-override", "5000", "--engine", "none"),
     "--num-gpu-blocks-override is modelled with vLLM only"),
    (("--cpu-offload-gb", "4", "--engine", "none"), "--cpu-offload-gb is modelled with vLLM only"),
    (("--limit-mm-per-prompt", "image=0", "--engine", "none"),
     "--limit-mm-per-prompt is modelled with vLLM only"),
    (("--mm-processor-kwargs", '{"max_pixels": 1003520}', "--engine", "none"),
     "--mm-processor-kwargs is modelled with vLLM only"),
    (("-ep", "--engine", "vllm==0.8.5"), "-ep is modelled from vLLM 0.9 on"),
    (("-ep", "--speculative-config", '{"method": "mtp", "num_speculative_tokens": 1}'), "is not modelled yet"),
])
def test_bad_input_is_one_sentence(args, text):
    run = run_kvplan("estimate", R1, "-tp", "8", *args)
    assert run.returncode == 2 and run.stdout == "" and len(run.stderr.splitlines()) == 1
    assert text in run.stderr


def test_deployments_file_keys(tmp_path):
    """dp and enable_expert_parallel as deployment keys; min_concurrency holds one DP rank (max_concurrency is one
    rank's, as vLLM logs it), the total beside it."""
    path = tmp_path / "d.yaml"
    path.write_text(f"deployments:\n  - name: r1\n    model: {R1}\n    tp: 1\n    dp: 8\n"
                    "    enable_expert_parallel: true\n    gpu: H200\n    context: 32768\n")
    run = run_kvplan("check", "--file", path, "--format", "json")
    assert run.returncode == 0, run.stderr
    (result,) = json.loads(run.stdout)["results"]
    assert result["data_parallel_size"] == 8 and result["max_concurrency_total"] == 8 * result["max_concurrency"]
    for bad in ("0", "'8'", "1.5"):
        path.write_text(f"deployments:\n  - name: r1\n    model: {R1}\n    tp: 1\n    dp: {bad}\n")
        run = run_kvplan("check", "--file", path)
        assert run.returncode == 2 and "dp" in run.stderr and len(run.stderr.splitlines()) == 1
    path.write_text(f"deployments:\n  - name: r1\n    model: {R1}\n    tp: 1\n    enable_expert_parallel: 'yes'\n")
    run = run_kvplan("check", "--file", path)
    assert run.returncode == 2 and "enable_expert_parallel" in run.stderr


@pytest.mark.parametrize("entry, key, line, text", [
    ("    tp: 8\n    pp: 2\n    speculative_config: {method: ngram, num_speculative_tokens: 2}\n", "speculative_config",
     6, "is not modelled with pipeline parallelism"),
    ("    tp: 8\n    engine: vllm==0.8.5\n    dp: 2\n", "dp", 6, "is modelled from vLLM 0.9 on"),
])
def test_an_engine_rule_on_a_file_key_names_the_file_line_and_key(tmp_path, entry, key, line, text):
    """An engine rule met while checking a file's entry (a drafter with pp, a release before the layout) was said
    in the command line's words (--speculative-config, -dp) with no file or line; it now names them as the file's
    own validators do."""
    path = tmp_path / "d.yaml"
    path.write_text(f"deployments:\n  - name: r1\n    model: {R1}\n" + entry)
    run = run_kvplan("check", "--file", path)
    assert run.returncode == 2 and run.stdout == "" and len(run.stderr.splitlines()) == 1
    assert f"{path}:{line}: deployment 'r1' field '{key}' {text}" in run.stderr
