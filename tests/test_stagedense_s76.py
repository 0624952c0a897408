"""Two fixes of session 76 (stagedense).

1. V0's profile forward prices an MoE model's dense MLP layers (vllm_profile.dense_layers_outgrow) only on a pipeline
   stage whose own layers include one. Each stage builds layers [start, end) of get_pp_indices (distributed/utils.py
   0.8.5:70-118; kvplan's pp_partition), the rest PPMissingLayer (models/utils.py make_layers 0.8.5:595-613), and
   its forward loops over those alone (deepseek_v2.py 0.8.5:658; 0.6.0 / 0.5.5 :459). DeepSeek-V2-Lite's layer i is
   MoE when i >= first_k_dense_replace (1) and i % moe_layer_freq (1) == 0 (deepseek_v2.py 0.8.5:526-528): layer 0
   alone is dense, so at -pp 2 (27 layers: 14 + 13) stage 0 holds it and stage 1 has none. Llama-4-Maverick's layer i
   is MoE when (i + 1) % interleave_moe_layer_step (2) == 0 (llama4.py 0.8.5:276-278): every even layer is dense,
   so both stages of 48 layers hold some.

   DeepSeek-V2-Lite on an H100, vLLM 0.8.5 (pp > 1 falls back to V0 in 0.8.0-0.9.0: vllm_v0_pp.py), bf16, tp 1,
   -c 32768 (V0's scheduler batch: 32,768 tokens; the fused-MoE chunk 32,768: envs.py 0.8.5:456-457):
     activations: hidden 2,048 (hidden state and residual) + q/k/v (16 + 2) x 128 = 2,304 ->
       (2 x 2,048 + 2,304) x 2 B = 12,800 B a token;
     experts: top 6 of 1,408 (N 2 x 1,408 = 2,816 > K 2,048), fused_experts_impl's caches k (max(N, K) + I):
       6 x (2,816 + 1,408) x 2 = 50,688 B a token;
     layer 0's dense MLP (DeepseekV2MLP of 10,944): gate/up and activated outputs 3 x 10,944 x 2 = 65,664 B a token.
   Stage 0 (layers 0-13): 32,768 x (12,800 + 65,664) = 2,571,108,352 B.
   Stage 1 (layers 14-26): 32,768 x (12,800 + 50,688) = 2,080,374,784 B (it was 2,571,108,352 before the fix, the
   dense layer priced on a stage that has none), above its V0 sampler pass (256 x 102,400 x 38 B = 996,147,200 B
   plus what it holds), so the forward is its peak.
   With --pp-layer-partition 4,23 stage 1 (23 layers and the LM head) sets the plan: its budget rises by
   2,571,108,352 - 2,080,374,784 = 490,733,568 B.

2. `kvplan check` on gemma-3-27b-it, H100, vLLM 0.18.1, --kv-cache-memory-bytes 15032385536 (14 GiB), -c 131072,
   --max-num-batched-tokens 8192: vLLM starts, and 0.18.1 has no whole-prompt admission check (0.8.3-0.18.x admit a
   prompt on its first chunk: vllm_admission_gate.py, scheduler.py 0.18.1:722): the prompt preempts itself once a
   chunk finds no free block. 11,468 blocks of 1,310,720 B (14 GiB // 1,310,720 = 15,032,385,536 // 1,310,720 =
   11,468), one kept back as the null block (block_pool.py 0.8.3:57): 11,467 handed out. check's finding says why in
   estimate's words (render/estimate.py held_none_reason), where it had said only that vLLM keeps 0.
"""

from conftest import deployments_file, estimate_plan, run_kvplan

from kvplan.engines import get_engine
from kvplan.engines.vllm_profile import dense_layers, dense_layers_outgrow
from kvplan.engines.vllm_versions import behaviour
from kvplan.model.sources import resolve
from kvplan.plan.catalog import find_gpu
from kvplan.plan.sharding import Stage, pp_stages

V2_LITE = "deepseek-ai/DeepSeek-V2-Lite"
MAVERICK = "meta-llama/Llama-4-Maverick-17B-128E-Instruct"
GEMMA = "google/gemma-3-27b-it"

ACTIVATION, EXPERTS, DENSE = (2 * 2048 + (16 + 2) * 128) * 2, 6 * (2816 + 1408) * 2, 3 * 10944 * 2
STAGE0_FORWARD = 32768 * (ACTIVATION + DENSE)
STAGE1_FORWARD = 32768 * (ACTIVATION + EXPERTS)


def _peak(budget):
    return next(t for t in budget.terms if t.name == "profile_peak")


def test_hand_figures():
    assert (ACTIVATION, EXPERTS, DENSE) == (12_800, 50_688, 65_664)
    assert (STAGE0_FORWARD, STAGE1_FORWARD) == (2_571_108_352, 2_080_374_784)


def test_the_spec_knows_its_dense_layers():
    spec = resolve(V2_LITE)
    assert spec.ffn_kinds == ("dense",) + ("moe",) * 26  # first_k_dense_replace 1
    maverick = resolve(MAVERICK)
    assert maverick.ffn_kinds[:4] == ("dense", "moe", "dense", "moe") and len(maverick.ffn_kinds) == 48
    assert resolve("meta-llama/Llama-3.1-8B-Instruct").ffn_kinds == ()  # no routed experts


def test_dense_layers_follow_the_stage():
    spec, maverick = resolve(V2_LITE), resolve(MAVERICK)
    first, last = pp_stages(27, 2)
    assert (first.first_layer, first.end_layer, last.first_layer, last.end_layer) == (0, 14, 14, 27)
    assert dense_layers(spec) and dense_layers(spec, first) and not dense_layers(spec, last)
    assert all(dense_layers(maverick, s) for s in pp_stages(48, 2))
    assert dense_layers(maverick, Stage(3, 4, 36, 48))
    # V0 itself (0.5.1: chunk 65,536, the experts' buffers separate): 163,840 tokens' dense layer outgrows them,
    # on the stage that holds it only
    rules = behaviour("0.5.1")
    assert dense_layers_outgrow(spec, 1, 163_840, rules, stage=first)
    assert not dense_layers_outgrow(spec, 1, 163_840, rules, stage=last)


def test_v0_pipeline_stages_price_their_own_dense_layers():
    engine, spec, gpu = get_engine("vllm==0.8.5"), resolve(V2_LITE), find_gpu("h100")
    first, last = pp_stages(spec.num_hidden_layers, 2)
    stage0 = engine.budget(spec, 1, gpu, None, stage=first, context=32768)
    stage1 = engine.budget(spec, 1, gpu, None, stage=last, context=32768)
    assert stage0.activation_bytes == STAGE0_FORWARD
    assert "the dense layers' MLP larger" in _peak(stage0).source
    assert stage1.activation_bytes == STAGE1_FORWARD  # was STAGE0_FORWARD
    assert "dense layers" not in _peak(stage1).source
    assert 256 * 102_400 * 38 < STAGE1_FORWARD  # the sampler pass below the forward


def test_maverick_stages_both_keep_the_dense_term():
    engine, spec, gpu = get_engine("vllm==0.8.5"), resolve(MAVERICK), find_gpu("h200")
    activation, dense = (2 * 5120 + (10 + 2 * 2) * 128) * 2, 3 * 16384 // 4 * 2  # tests/test_nits2_s76.py
    for stage in pp_stages(spec.num_hidden_layers, 2):
        budget = engine.budget(spec, 4, gpu, None, stage=stage, context=65536)
        assert budget.activation_bytes == 65536 * (activation + dense) == 3_187_671_040
        assert "the dense layers' MLP larger" in _peak(budget).source


def test_partition_whose_later_stage_sets_the_plan():
    plan = estimate_plan(V2_LITE, "--gpu", "H100", "--engine", "vllm==0.8.5", "-pp", "2", "-c", "32768",
                         "--pp-layer-partition", "4,23")
    assert plan["engine"]["core"] == "v0" and plan["pp_partition"] == [4, 23]
    assert plan["budget"]["stage"] == 1
    assert plan["budget"]["activation_bytes"] == STAGE1_FORWARD
    terms = {t["name"]: t["bytes"] for t in plan["budget"]["terms"]}
    assert plan["kv_budget_bytes_per_gpu"] == terms["memory"] - terms["weights"] - STAGE1_FORWARD - terms["non_torch"]
    assert STAGE0_FORWARD - STAGE1_FORWARD == 490_733_568  # what stage 1's budget gained


CHECK = ("-tp", "1", "--gpu", "H100", "--engine", "vllm==0.18.1", "--kv-cache-memory-bytes", "15032385536",
         "-c", "131072", "--max-num-batched-tokens", "8192")
WHY = ("it starts but holds no request: vLLM 0.18.1 admits a prompt on its first chunk, and one that then finds no "
       "free block preempts itself")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def test_check_says_why_a_started_server_holds_none():
    assert 15_032_385_536 // 1_310_720 == 11_468
    r = run_kvplan("check", GEMMA, *CHECK)
    assert r.returncode == 0, r.stderr
    said = _one_line(r.stdout)
    assert "vLLM keeps 0 sequences of 131072 tokens resident" in said
    assert WHY in said
    assert "of its 11,468 blocks the pool hands out 11,467, keeping one back as the null block" in said
    # the same words as estimate's line
    e = run_kvplan("estimate", GEMMA, *CHECK[2:])
    assert e.returncode == 0, e.stderr
    assert WHY.removeprefix("it starts but holds no request: ") in _one_line(e.stdout)


def test_check_says_why_in_a_deployment_file(tmp_path):
    path = deployments_file(tmp_path, f"""\
  - name: gemma
    model: {GEMMA}
    tp: 1
    gpu: H100
    engine: vllm==0.18.1
    kv_budget: 15032385536
    context: 131072
    max_num_batched_tokens: 8192
    min_concurrency: 1
""")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 1, r.stderr
    assert WHY in r.stdout
