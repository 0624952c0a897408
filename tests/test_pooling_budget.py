"""A pooling model's vLLM budget and settings (engines/vllm_pooling_budget.py): no LM head, the pooler's profile pass
instead of the sampler's, none of Model Runner V2's sampler state, V1 before 0.29, async scheduling off from 0.20,
chunked prefill and prefix caching by the class's pooling type. Figures come from vLLM 0.34.0's own ModelConfig and
EngineArgs (tests/data/vllm_pooling_defaults.json, made by benchmarks/vllm_reference/pooling_defaults.py) or are
worked by hand from the vLLM lines cited."""

import json
from pathlib import Path

import pytest

from conftest import load_yaml
from kvplan.engines.vllm_engine import VllmEngine
from kvplan.engines.vllm_settings import whole_prompt_batch
from kvplan.engines.vllm_pooling_budget import incremental_prefill, pooler_pass_bytes
from kvplan.engines.vllm_runner import async_scheduling, model_runner
from kvplan.engines.vllm_versions import behaviour
from kvplan.model.parse import parse_config
from kvplan.plan.catalog import find_gpu

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = json.loads((ROOT / "tests" / "data" / "vllm_pooling_defaults.json").read_text())
QWEN3_8B = dict(load_yaml((ROOT / "model_specs" / "Qwen--Qwen3-8B.yaml").read_text())["config"])
HEAD = 151_936 * 4_096 * 2  # Qwen3-8B's untied LM head, bf16: vocab x hidden x 2 B
GiB = 2**30


def spec_of(architecture: str, model_type: str = "qwen3"):
    return parse_config(dict(QWEN3_8B, architectures=[architecture], model_type=model_type), architecture)


def budget(architecture: str, version: str, gpu: str = "H100"):
    return VllmEngine(version).budget(spec_of(architecture), 1, find_gpu(gpu), None, context=32_768)


def terms(result) -> dict:
    return {term.name: term for term in result.terms}


# 1. chunked prefill, prefix caching and the batched tokens, as vLLM 0.34.0's own code set them

@pytest.mark.parametrize("case", REFERENCE["cases"], ids=lambda c: f"{c['architecture']}-{c['max_model_len']}")
def test_settings_are_vllm_s(case):
    """EngineArgs with no device takes its "other GPUs" tier, 2,048 / 256: kvplan's for an L40S (48 GB)."""
    assert REFERENCE["vllm"] == "0.34.0" and case["runner_type"] == "pooling" and case["head_dtype"] == "torch.float32"
    model_type = "qwen2" if case["architecture"].startswith("Qwen2") else "qwen3"
    spec = spec_of(case["architecture"], model_type)
    settings = VllmEngine("0.34.0").settings(case["max_model_len"], find_gpu("L40S"), spec=spec)
    assert incremental_prefill(spec, "0.34.0") is case["enable_chunked_prefill"] is case["enable_prefix_caching"]
    assert settings.prefix_caching is case["enable_prefix_caching"]
    assert (settings.max_num_batched_tokens, settings.max_num_seqs) == (case["max_num_batched_tokens"],
                                                                        case["max_num_seqs"])


def test_pooling_type_rule_by_release():
    """Qwen2ForRewardModel pools ALL (qwen2_rm.py 0.11.0:97): 0.11.0 keeps chunked prefill for "last" only
    (arg_utils.py:1563-1577), 0.12.0 turns it off for all / mean / step / cls (config/model.py:1772-1798), 0.13.0
    for mean / step / cls; from 0.14 off for seq MEAN / CLS or tok STEP. GritLM pools MEAN (gritlm.py 0.11.0:218,
    0.20.0:199): off in every release; a generating model: on."""
    reward, grit = spec_of("Qwen2ForRewardModel", "qwen2"), spec_of("GritLM", "llama")
    assert [incremental_prefill(reward, v) for v in ("0.11.0", "0.12.0", "0.13.0", "0.20.0")] == [False, False,
                                                                                                 True, True]
    assert not any(incremental_prefill(grit, v) for v in ("0.11.0", "0.13.0", "0.20.0"))
    assert incremental_prefill(spec_of("Qwen3ForCausalLM"), "0.11.0")


def test_whole_prompt_batch():
    """Chunked prefill off: 0.11.0 takes max_model_len (arg_utils.py 0.11.0:1667-1668), 0.11.1 on max(max_model_len,
    the default) (0.11.1:2013-2018)."""
    assert whole_prompt_batch(2_048, 1_024, "0.11.0") == 1_024
    assert whole_prompt_batch(2_048, 1_024, "0.11.1") == 2_048
    assert whole_prompt_batch(8_192, 32_768, "0.34.0") == 32_768


# 2. the runner and async scheduling

def test_pooling_runs_on_v1_before_0_29():
    """_is_default_v2_model_runner_model returns False for a runner other than "generate" (config/vllm.py 0.22.0:523,
    0.28.0:696); 0.29.0 has no such check. A dense generating Qwen3 is V2 from 0.25 (not_hybrid)."""
    pooled, text = spec_of("Qwen3ForSequenceClassification"), spec_of("Qwen3ForCausalLM")
    for version in ("0.22.0", "0.26.0", "0.28.0"):
        assert model_runner(pooled, behaviour(version), None).name == "V1", version
    assert model_runner(text, behaviour("0.26.0"), None).name == "V2"
    assert model_runner(pooled, behaviour("0.29.0"), None).name == "V2"


def test_async_scheduling_off_for_pooling_from_0_20():
    """config/vllm.py 0.20.0:800-807, 0.32.0:1585-1595: one batch in flight without PP (V2: pp + 0)."""
    pooled, text = spec_of("Qwen3ForSequenceClassification"), spec_of("Qwen3ForCausalLM")
    rules = behaviour("0.32.0")
    assert not async_scheduling(pooled, rules, model_runner(pooled, rules, None))
    assert async_scheduling(pooled, behaviour("0.19.0"), model_runner(pooled, behaviour("0.19.0"), None))
    engine, gpu = VllmEngine("0.32.0"), find_gpu("H100")
    assert engine.settings(32_768, gpu, spec=pooled).in_flight_batches == 1
    assert engine.settings(32_768, gpu, spec=text).in_flight_batches == 2


# 3. the budget's terms

def test_no_lm_head_in_the_weights():
    """The pooling adapters build no LM head (adapters.py 0.34.0:163-167): the estimate loses vocab x hidden x 2 B."""
    pooled, text = terms(budget("Qwen3ForSequenceClassification", "0.32.0")), terms(budget("Qwen3ForCausalLM",
                                                                                         "0.32.0"))
    assert text["weights"].bytes - pooled["weights"].bytes == HEAD
    assert "no LM head" in pooled["weights"].source


def test_a_pipelines_last_stage_keeps_a_tied_embedding():
    """The inner model builds embed_tokens on the last rank where the embedding is tied, whatever the runner
    (qwen2.py 0.34.0:363-375: `get_pp_group().is_first_rank or (config.tie_word_embeddings and
    get_pp_group().is_last_rank)`; Qwen3Model subclasses Qwen2Model); the pooling runner drops an untied lm_head only.
    So at pp 2 a tied pooling model's last stage holds what the generating one's does, and an untied pooling model's
    last stage one vocab x hidden x 2 B head less than its generating twin's."""
    from kvplan.plan.sharding import pp_stages

    last = pp_stages(QWEN3_8B["num_hidden_layers"], 2)[-1]

    def last_stage(architecture, tied):
        spec = parse_config(dict(QWEN3_8B, tie_word_embeddings=tied, architectures=[architecture]), architecture)
        result = VllmEngine("0.32.0").budget(spec, 1, find_gpu("H100"), None, context=32_768, stage=last)
        return terms(result)["weights"].bytes

    assert last_stage("Qwen3Model", True) == last_stage("Qwen3ForCausalLM", True)
    assert last_stage("Qwen3ForCausalLM", False) - last_stage("Qwen3Model", False) == HEAD


def test_no_sampler_state_and_a_pooler_pass():
    """0.32.0 (V2): no penalty counts, sampler rows or grammar bitmask (gpu/model_runner.py:460-518), so no
    runner_state term, and the profile's last pass is no sampler's."""
    pooled, text = terms(budget("Qwen3ForSequenceClassification", "0.32.0")), terms(budget("Qwen3ForCausalLM",
                                                                                         "0.32.0"))
    assert "runner_state" not in pooled and text["runner_state"].bytes > 600 * 2**20
    assert "sampler" not in pooled["profile_peak"].source
    assert pooled["profile_peak"].bytes == text["profile_peak"].bytes  # the forward's 0.78 GiB in both


# vLLM 0.34.0's own _dummy_pooler_run_task (v1/worker/gpu/pool/pooling_runner.py:163-205) run on the CPU over a
# Qwen3Model's DispatchPooler.for_embedding (Qwen3-8B's config; vLLM's ModelConfig; 8,192 bf16 hidden states, 1,024
# requests: an H100's max_num_seqs), by benchmarks/vllm_reference/pooler_outputs.py with /tmp/v34 (session 57):
# "embed" returned 1,024 float32 [4096] rows (16,777,216 B), "token_embed" 1,024 float32 [8, 4096] tensors,
# 134,217,728 B: the largest task's outputs
VLLM_TOKEN_EMBED_OUTPUTS = 134_217_728


def test_the_pooler_pass_against_vllms_own_pooler():
    """The profile's pooler pass on an H100 at 0.34.0: the forward's bf16 hidden states it pools (8,192 x 4,096 x
    2 B, held meanwhile), the token_embed outputs vLLM's own pooler returned (VLLM_TOKEN_EMBED_OUTPUTS) and one
    request's float32 copy beside its normalised rows (tokwise/heads.py 0.34.0: 8 rows x 4,096 x 4 B) = 201,457,664
    B, 0.19 GiB; under the forward's activations over the same tokens, which stay the peak."""
    pooled, text = terms(budget("Qwen3Model", "0.34.0")), terms(budget("Qwen3ForCausalLM", "0.34.0"))
    pooler = 8_192 * 4_096 * 2 + VLLM_TOKEN_EMBED_OUTPUTS + 8 * 4_096 * 4
    assert pooler == 201_457_664 == pooler_pass_bytes(spec_of("Qwen3Model"), 8_192, 1_024)[0]
    assert "pooler over 8192 tokens in 1024 requests" in pooled["profile_peak"].source
    assert f"{round(pooler / GiB, 2)} GiB" in pooled["profile_peak"].source
    assert pooled["profile_peak"].bytes > pooler  # vLLM's pooler figure is not the peak
    assert "forward over 8192 tokens" in pooled["profile_peak"].source


def test_v1_releases_price_graphs_for_pooling():
    """0.26.0: the pooling model on V1, whose graph capture is profiled (0.705 GiB, the median of vLLM's public
    estimates, 756,987,985 bytes; 1.25 GiB before session 67); V2 returned 0."""
    pooled, text = terms(budget("Qwen3ForSequenceClassification", "0.26.0")), terms(budget("Qwen3ForCausalLM",
                                                                                         "0.26.0"))
    assert pooled["cuda_graphs"].bytes == 756_987_985 == int(0.705 * GiB) and text["cuda_graphs"].bytes == 0


def test_process_reward_model_forward_over_a_whole_prompt():
    """Qwen2ForProcessRewardModel steps (STEP): chunked prefill off, so the profile forwards 32,768 tokens on an
    H100 (max(32,768, 8,192))."""
    spec = spec_of("Qwen2ForProcessRewardModel", "qwen2")
    result = VllmEngine("0.32.0").budget(spec, 1, find_gpu("H100"), None, context=32_768)
    assert "forward over 32768 tokens" in terms(result)["profile_peak"].source
