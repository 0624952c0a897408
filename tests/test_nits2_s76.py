"""Three small fixes of session 76 (nits2).

1. V0's profile forward of an MoE model with dense layers, wherever V0 runs: 0.8-0.10.x falling back to V0
   (vllm_v1_oracle.v0_rules, era "v0") as well as <= 0.7 (vllm_profile.dense_layers_outgrow). Read in the wheels
   0.8.5 and 0.9.2: V0 runs eager (the piecewise compile only under VLLM_USE_V1: config.py 0.8.5:3884-3898,
   0.9.2:4558-4564), profiles its scheduler's batch (worker/model_runner.py 0.8.5:1233-1237, 0.9.2:1296-1300),
   its dense layers are DeepseekV2MLP of intermediate_size (deepseek_v2.py 0.8.5:88-92, :526-540) and LlamaMLP of
   intermediate_size_mlp (llama4.py 0.8.5:276-290), and fused_experts_impl allocates M x k x max(N, K) and
   M x k x N / 2 for M = min(tokens, VLLM_FUSED_MOE_CHUNK_SIZE 32,768) (envs.py 0.8.5:456-457; fused_moe.py
   0.8.5:1275-1304, 0.9.2:1266-1300).
   - DeepSeek-V2-Lite, --dtype float32 (4 B; 0.8.0-0.9.1 fall back to V0 for it), tp 1, H100, 0.9.1, 32,768 tokens:
     hidden 2,048, 16 heads of 128 and one MLA "KV head" (kvplan's q/k/v width (16 + 2) x 128 = 2,304);
     activations 2 x 2,048 + 2,304 = 6,400 values = 25,600 B a token; experts top 6 of 1,408 (N 2,816, K 2,048):
     6 x (2,816 + 1,408) x 4 = 101,376 B; layer 0's dense MLP 3 x 10,944 x 4 = 131,328 B, larger.
     Forward: 32,768 x (25,600 + 131,328) = 5,142,216,704 B (4.79 GiB); before 32,768 x (25,600 + 101,376) =
     4,160,749,568 (3.88 GiB), 981,467,136 B (0.914 GiB) more. The cache: 576 x 27 layers x 4 B = 62,208 B a token,
     blocks of 64 tokens (3,981,312 B): 7,607,059,825 // 3,981,312 = 1,910 blocks before, (7,607,059,825 -
     981,467,136) // 3,981,312 = 6,625,592,689 // 3,981,312 = 1,664 after; 32,768-token requests of 512 blocks:
     3 both times (1,664 less V0's 1% watermark 16 = 1,648 >= 3 x 512).
   - Llama-4-Maverick at tp 4 x pp 2 on H200, 0.8.5 (pp > 1 falls back to V0 in 0.8.0-0.9.0), 65,536 tokens:
     hidden 5,120, 10 heads and 2 KV heads of 128 a rank: activations (2 x 5,120 + 14 x 128) x 2 = 24,064 B a token;
     experts top 1 of 8,192 / 4 = 2,048 (N 4,096, K 5,120): (5,120 + 2,048) x 2 = 14,336 B; dense 3 x 16,384 / 4 x 2
     = 24,576 B. Stage 0's forward: 65,536 x (24,064 + 24,576) = 3,187,671,040 B, before 65,536 x 24,064 + 32,768 x
     14,336 = 2,046,820,352.
   - Jamba-1.5-Mini at tp 2, 0.9.2 (V0 for its Mamba state), 32,768 tokens: experts top 2 of 14,336 / 2 = 7,168
     (N 14,336, K 4,096): 2 x (14,336 + 7,168) x 2 = 86,016 B; dense 3 x 7,168 x 2 = 43,008 B: the experts' larger,
     unchanged.
2. The vision tower's note names --skip-mm-profiling as the caller spells it (render/estimate.py vision_note).
3. gemma-3-27b-it, H100, 0.20.0, 14 GiB of KV, 8,192 batched tokens (tests/test_nits_s76.py has the arithmetic):
   11,468 blocks of 1,310,720 B; vLLM prices a request of 131,072 tokens at cdiv(131,072, 16) + 6 x 577 = 11,654
   blocks = 15,275,130,880 B = 14.23 GiB; its estimate 128,096 (8,006 + 3,462 = 11,468 blocks), the remedy 128,080
   (8,005 + 3,462 = 11,467, the pool less the null block).
"""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

from conftest import deployments_file, estimate_plan, run_kvplan

from kvplan.engines.vllm_versions import behaviour

V2_LITE = "deepseek-ai/DeepSeek-V2-Lite"
MAVERICK = "meta-llama/Llama-4-Maverick-17B-128E-Instruct"
JAMBA = "ai21labs/AI21-Jamba-1.5-Mini"
GEMMA = "google/gemma-3-27b-it"


def _peak_term(plan: dict) -> dict:
    return next(t for t in plan["budget"]["terms"] if t["name"] == "profile_peak")


def test_v0_fallback_prices_deepseek_dense_layer():
    plan = estimate_plan(V2_LITE, "--gpu", "H100", "--engine", "vllm==0.9.1", "--dtype", "float32", "-c", "32768")
    assert plan["engine"]["core"] == "v0"
    activation, experts, dense = (2 * 2048 + (16 + 2) * 128) * 4, 6 * (2816 + 1408) * 4, 3 * 10944 * 4
    assert (activation, experts, dense) == (25_600, 101_376, 131_328)
    assert plan["budget"]["activation_bytes"] == 32768 * (activation + dense) == 5_142_216_704
    terms = {t["name"]: t["bytes"] for t in plan["budget"]["terms"]}
    assert plan["kv_budget_bytes_per_gpu"] == terms["memory"] - terms["weights"] - 5_142_216_704 - terms["non_torch"]
    assert plan["kv_budget_bytes_per_gpu"] == 6_625_592_689  # 7,607,059,825 before, less 981,467,136
    assert plan["engine"]["num_gpu_blocks"] == 6_625_592_689 // (64 * 576 * 27 * 4) == 1664  # 1,910 before
    assert plan["max_concurrency"] == 3
    assert "the dense layers' MLP larger (32768 tokens x 3 x 10944 / 1 x 4 B = 4.01 GiB)" in _peak_term(plan)["source"]


def test_v0_pipeline_fallback_prices_maverick_dense_layers():
    plan = estimate_plan(MAVERICK, "--gpu", "H200", "--engine", "vllm==0.8.5", "-tp", "4", "-pp", "2", "-c", "65536")
    assert plan["engine"]["core"] == "v0"
    activation, experts, dense = (2 * 5120 + (10 + 2 * 2) * 128) * 2, (5120 + 2048) * 2, 3 * 16384 // 4 * 2
    assert (activation, experts, dense) == (24_064, 14_336, 24_576)
    # stage 0 (no sampler) now the smaller budget; its forward had been 2,046,820,352 B, stage 1 the smaller
    assert plan["budget"]["stage"] == 0
    assert plan["budget"]["activation_bytes"] == 65536 * (activation + dense) == 3_187_671_040
    assert 65536 * activation + 32768 * experts == 2_046_820_352


def test_v0_fallback_keeps_jamba_experts_where_they_are_larger():
    plan = estimate_plan(JAMBA, "--gpu", "H100", "--engine", "vllm==0.9.2", "-tp", "2", "-c", "32768")
    activation = (2 * 4096 + (16 + 2 * 4) * 128) * 2  # 22,528
    experts, dense = 2 * (14336 + 7168) * 2, 3 * 7168 * 2
    assert experts == 86_016 > dense == 43_008
    assert plan["budget"]["activation_bytes"] == 32768 * (activation + experts) == 3_556_769_792
    assert "dense layers" not in _peak_term(plan)["source"]


def test_dense_term_follows_the_engine_not_the_buffers():
    """0.9.1 on V1 leaves the dense layers out (compiled forward not read); the same release's rules on V0 (as
    v0_rules makes them) take them."""
    from kvplan.engines.vllm_profile import dense_layers_outgrow
    from kvplan.model.sources import resolve

    spec = resolve(V2_LITE)
    v1 = behaviour("0.9.1")
    assert v1.moe_buffers == "caches" and not dense_layers_outgrow(spec, 1, 32768, v1)
    assert dense_layers_outgrow(spec, 1, 32768, replace(v1, era="v0"))
    # inside the chunk at bf16: experts 6 x 4,224 x 2 = 50,688 B a token, dense 65,664: the dense layer, on V0
    assert dense_layers_outgrow(spec, 1, 8192, replace(v1, era="v0"))


def test_vision_note_spelled_by_the_caller():
    from kvplan.cli.flags import flag
    from kvplan.render.estimate import vision_note

    budget = SimpleNamespace(terms=[SimpleNamespace(name="profile_peak", source="vision tower over 32 images x")])
    assert vision_note(budget, flag).endswith("(--skip-mm-profiling leaves it out, as vLLM's)")
    assert vision_note(budget, str).endswith("(skip_mm_profiling leaves it out, as vLLM's)")
    out = " ".join(run_kvplan("estimate", GEMMA, "--gpu", "H200", "-c", "8192").stdout.split())
    assert f"dummy images (--skip-mm-profiling leaves it out, as vLLM's)" in out


def test_vision_note_in_a_deployment_file(tmp_path):
    path = deployments_file(tmp_path, f"  - name: vision\n    model: {GEMMA}\n    tp: 1\n    gpu: H200\n"
                                      f"    context: 8192\n")
    result = run_kvplan("check", "--file", str(path), "--format", "json")
    text = json.dumps(json.loads(result.stdout))
    assert "(skip_mm_profiling leaves it out, as vLLM's)" in text and "--skip-mm-profiling" not in text


GEMMA_ARGS = ("--gpu", "H100", "--engine", "vllm==0.20.0", "--kv-cache-memory-bytes", "15032385536", "-c", "131072",
              "--max-num-batched-tokens", "8192")
GAP = ("--max-model-len 128080 (vLLM's estimate 128,096 starts but never admits a full-length prompt: its start-up "
       "check lets one request take all 11,468 blocks, and the pool, keeping one as the null block, hands out "
       "11,467)")


def test_length_remedy_says_why_it_is_below_vllms_estimate():
    plan = estimate_plan(GEMMA, *GEMMA_ARGS)
    assert plan["engine"]["refusal"]["estimated_max_model_len"] == 128_096
    assert plan["suggestion"].endswith(GAP)
    assert "needed_bytes" not in plan["engine"]["refusal"]  # the reason quotes it
    table = " ".join(run_kvplan("estimate", GEMMA, *GEMMA_ARGS).stdout.split())
    assert GAP + "." in table
    # next to the start refusal, vLLM's own price of a request, kvplan's footprint named as such
    assert (8192 + 6 * 577) * 1_310_720 == 15_275_130_880 and round(15_275_130_880 / 2**30, 2) == 14.23
    assert ("max len 131,072 bf16 tp 1 does not start: vLLM's start-up check prices one request at 14.23 GiB of KV "
            "per GPU (kvplan's 10.4 GiB per request is what one keeps once admitted), the budget is 14.0 GiB;") in table
    check = run_kvplan("check", GEMMA, "-tp", "1", *GEMMA_ARGS)
    assert check.returncode == 1 and GAP + "." in " ".join(check.stdout.split())


def test_length_remedy_clause_through_a_deployment_file(tmp_path):
    path = deployments_file(tmp_path, f"  - name: gemma\n    model: {GEMMA}\n    tp: 1\n    gpu: H100\n"
                                      f"    engine: vllm==0.20.0\n    kv_budget: 14GiB\n    context: 131072\n"
                                      f"    max_num_batched_tokens: 8192\n")
    result = run_kvplan("check", "--file", str(path), "--format", "json")
    (finding,) = [f for f in json.loads(result.stdout)["results"][0]["findings"] if f["level"] == "error"]
    assert finding["message"].endswith("context 128080 (vLLM's estimate 128,096 starts but never admits a "
                                       "full-length prompt: its start-up check lets one request take all 11,468 "
                                       "blocks, and the pool, keeping one as the null block, hands out 11,467).")


def test_estimate_gap_words_by_release_and_direction():
    from kvplan.engines.figures import Refusal
    from kvplan.engines.vllm_estimate_gap import estimate_gap_words

    refused = Refusal("...", 128096, needed_bytes=1)
    at = SimpleNamespace(refusal=refused, num_gpu_blocks=11468, version="0.20.0")
    assert estimate_gap_words(at, 131072, 128096) == ""  # the two agree
    assert "all 11,468 blocks" in estimate_gap_words(at, 131072, 128080)
    later = replace(refused)
    assert "takes more free blocks than the start-up check prices" in estimate_gap_words(
        SimpleNamespace(refusal=later, num_gpu_blocks=11468, version="0.29.0"), 131072, 128080)
    assert estimate_gap_words(at, 131072, 128200).startswith("above vLLM's estimate 128,096, made on the memory left "
                                                             "at 131,072 tokens")
    configuration = SimpleNamespace(refusal=replace(refused, configuration=True), num_gpu_blocks=1, version="0.20.0")
    assert estimate_gap_words(configuration, 131072, 128080) == ""
