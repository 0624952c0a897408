"""vLLM's --runner / --convert (engines/vllm_runner_flag.py). vLLM lines read by hand in config/model.py 0.11.0,
0.20.0, 0.32.0, 0.34.0 (cited at each test); the Qwen3 cases also run through vLLM 0.34.0's own ModelConfig on
Qwen3-8B's config.json (session 57, CPU torch): Qwen3ForCausalLM --runner pooling -> runner pooling, convert embed,
LAST / ALL, chunked prefill and prefix caching supported; --runner pooling --convert none -> the refusal quoted
below; Qwen2ForRewardModel --runner generate -> "Embedding models do not support ..."; Qwen3ForSequenceClassification
--runner generate -> accepted, TransformersForCausalLM."""

import json
from pathlib import Path

import pytest
from conftest import load_yaml, one_error_line, run_kvplan

from kvplan import api
from kvplan.engines import EngineFlags
from kvplan.engines.vllm_engine import VllmEngine
from kvplan.engines.vllm_pooling import pooling_note, pooling_runner
from kvplan.engines.vllm_pooling_budget import incremental_prefill
from kvplan.engines.vllm_runner_flag import runner_refusal
from kvplan.model.parse import parse_config
from kvplan.plan.catalog import find_gpu

ROOT = Path(__file__).resolve().parents[1]
QWEN3_8B = dict(load_yaml((ROOT / "model_specs" / "Qwen--Qwen3-8B.yaml").read_text())["config"])
HEAD = 151_936 * 4_096 * 2  # Qwen3-8B's untied LM head, bf16: vocab x hidden x 2 B = 1,244,659,712 B


def spec_of(architecture: str, runner: str = "auto", convert: str = "auto", model_type: str = "qwen3"):
    spec = parse_config(dict(QWEN3_8B, architectures=[architecture], model_type=model_type), architecture)
    return EngineFlags(runner=runner, convert=convert).with_runner(spec)


def terms(spec, version: str = "0.34.0") -> dict:
    result = VllmEngine(version).budget(spec, 1, find_gpu("H100"), None, context=32_768)
    return {term.name: term for term in result.terms}


def test_runner_pooling_drops_the_lm_head_and_samples_nothing():
    """--runner pooling on Qwen3ForCausalLM: converted by as_embedding_model (model_loader/utils.py 0.34.0:326-336;
    _get_default_convert_type -> "embed", config/model.py 0.34.0:1351-1380), whose StageMissingLayer LM head
    (adapters.py 0.34.0:163-167) weighs nothing: the weights lose vocab x hidden x 2 B; the profile's last pass is
    _dummy_pooler_run (v1/worker/gpu/model_runner.py 0.34.0:1093-1099), so no sampler term."""
    generate, pooled = spec_of("Qwen3ForCausalLM"), spec_of("Qwen3ForCausalLM", "pooling")
    assert not pooling_runner(generate, "0.34.0") and pooling_runner(pooled, "0.34.0")
    before, after = terms(generate), terms(pooled)
    assert before["weights"].bytes - after["weights"].bytes == HEAD == 1_244_659_712
    assert "pooler over" in after["profile_peak"].source and "pooler" not in before["profile_peak"].source
    assert "no LM head" in after["weights"].source
    assert incremental_prefill(pooled, "0.34.0") and incremental_prefill(pooled, "0.11.0")  # adapters: LAST
    note = pooling_note(pooled, "0.34.0")
    assert "--runner pooling" in note and "embed adapter" in note and "no LM head" in note


def test_convert_picks_pooling_from_0_22():
    """`--convert embed` alone: pooling from 0.22 (_get_runner_type, config/model.py 0.22.0:935, 0.34.0:1336-1339);
    0.20.0's _get_runner_type (:860-880) returns the architecture's runner: generate, which kvplan refuses."""
    spec = spec_of("Qwen3ForCausalLM", convert="embed")
    assert pooling_runner(spec, "0.34.0") and runner_refusal(spec, "0.34.0") is None
    assert not pooling_runner(spec, "0.20.0") and "generate runner" in runner_refusal(spec, "0.20.0")


def test_runner_pooling_convert_none_is_vllm_s_refusal():
    """config/model.py 0.34.0:751-759 (0.11.0:533-542 lists reward too, _RUNNER_CONVERTS 0.11.0:80-84)."""
    spec = spec_of("Qwen3ForCausalLM", "pooling", "none")
    assert ("This model does not support `--runner pooling`. You can pass `--convert <embed|classify> to adapt it "
            "into a pooling model.") in runner_refusal(spec, "0.34.0")
    assert "<embed|classify|reward>" in runner_refusal(spec, "0.11.0")


def test_runner_generate_on_pooling_classes():
    """A registered pooling class: "This model does not support `--runner generate`." up to 0.21 (0.11.0:527-532,
    0.21.0:552), "Embedding models do not support ..." from 0.22 (0.22.0:594, 0.34.0:738-744). Qwen3ForSequence-
    Classification is no registered class (registry.py 0.34.0 _SEQUENCE_CLASSIFICATION_MODELS :329-357): ModelConfig
    takes it and falls back to TransformersForCausalLM, which kvplan does not plan."""
    reward = spec_of("Qwen2ForRewardModel", "generate", model_type="qwen2")
    assert "Embedding models do not support `--runner generate`." in runner_refusal(reward, "0.34.0")
    assert "This model does not support `--runner generate`." in runner_refusal(reward, "0.20.0")
    classifier = spec_of("Qwen3ForSequenceClassification", "generate")
    said = runner_refusal(classifier, "0.34.0")
    assert "TransformersForCausalLM" in said and "does not plan" in said
    assert runner_refusal(spec_of("Qwen3ForSequenceClassification", "pooling", "classify"), "0.34.0") is None


def test_runner_generate_on_a_sentence_transformers_causal_lm_generates():
    """A modules.json Pooling module picks pooling under --runner auto only (_get_default_runner_type,
    config/model.py 0.34.0:1310); --runner generate on a *ForCausalLM class generates (is_text_generation_model)."""
    spec = spec_of("Qwen3ForCausalLM")
    from dataclasses import replace
    listed = replace(spec, st_pooling=("sentence_transformers.models.Pooling",), st_pooling_modes=(None,))
    assert pooling_runner(listed, "0.34.0")
    generating = replace(listed, runner="generate")
    assert not pooling_runner(generating, "0.34.0") and runner_refusal(generating, "0.34.0") is None
    assert runner_refusal(generating, "0.11.0") is None  # no Pooling-module refusal either: no pooler reads it


@pytest.mark.parametrize("args, said", [(["--runner", "draft"], "--runner must be one of auto, generate, pooling"),
                                        (["--convert", "sum"], "--convert must be one of auto, none, embed")])
def test_bad_values_exit_2(args, said):
    assert said in one_error_line(run_kvplan("estimate", "Qwen/Qwen3-8B", "--gpu", "H100", "-c", "8192", *args))


def test_refusal_exits_2():
    line = one_error_line(run_kvplan("estimate", "Qwen/Qwen3-8B", "--gpu", "H100", "-c", "8192", "--runner",
                                     "pooling", "--convert", "none"))
    assert "This model does not support `--runner pooling`" in line


def test_check_and_api_agree_with_estimate(tmp_path):
    plans = api.estimate("Qwen/Qwen3-8B", gpu="H100", max_model_len=32_768, runner="pooling")
    base = api.estimate("Qwen/Qwen3-8B", gpu="H100", max_model_len=32_768)
    assert plans[0].kv_capacity_tokens > base[0].kv_capacity_tokens
    checked = api.check("Qwen/Qwen3-8B", tensor_parallel_size=1, gpu="H100", max_model_len=32_768, runner="pooling")
    assert checked[0]["kv_budget_bytes_per_gpu"] == plans[0].kv_budget_bytes_per_gpu
    assert checked[0]["max_concurrency"] == plans[0].max_concurrency
    file = tmp_path / "deployments.yaml"
    file.write_text("deployments:\n  - name: emb\n    model: Qwen/Qwen3-8B\n    tp: 1\n    gpu: H100\n"
                    "    context: 32768\n    runner: pooling\n    convert: embed\n")
    result = run_kvplan("check", "--file", file, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert f'"kv_budget_bytes_per_gpu": {plans[0].kv_budget_bytes_per_gpu}' in result.stdout
    file.write_text(file.read_text().replace("runner: pooling", "runner: sideways"))
    assert "'runner'" in one_error_line(run_kvplan("check", "--file", file))


@pytest.mark.parametrize("version, refused", [("0.12.0", True), ("0.13.0", False), ("0.34.0", False)])
def test_a_reward_suffixs_own_convert_by_release(version, refused):
    """_SUFFIX_TO_DEFAULTS maps *RewardModel to reward up to 0.12.0 (config/model.py:1897-1898) and to embed from
    0.13.0 (:1813-1814): --convert embed on an unregistered *RewardModel name is its own convert from 0.13."""
    said = runner_refusal(spec_of("Qwen3ForRewardModel", "pooling", "embed"), version)
    assert (said is not None) is refused


def test_a_remedy_never_names_a_release_that_refuses_the_flags():
    """--convert reward is refused from 0.16 (ConvertType without reward, config/model.py 0.16.0:77): a remedy's
    release meets that refusal through configuration_refusal, as the release asked does."""
    spec = spec_of("Qwen3ForCausalLM", "pooling", "reward")
    gpu = find_gpu("H100")
    for version, refused in (("0.14.0", False), ("0.17.0", True), ("0.34.0", True)):
        asked = dict(engine=f"vllm=={version}", kv_dtype="auto", context=8192, block_size=None)
        refusal = VllmEngine(version).configuration_refusal(spec, asked, 1, gpu)
        assert (refusal is not None and "--convert reward" in refusal.reason) is refused, version


def test_engine_none_takes_the_flags_under_the_pinned_rule():
    """--engine none has no release: the flags decide the runner as the pinned vLLM does (the LM head, the logits)."""
    run = run_kvplan("estimate", "Qwen/Qwen3-8B", "--gpu", "h100", "-c", "8192", "--engine", "none", "--runner",
                     "pooling", "--format", "json")
    assert run.returncode == 0, run.stderr
    assert "no LM head" in " ".join(run.stdout.split())


def test_the_pooling_note_names_the_flags_as_the_caller_spells_them(tmp_path):
    """estimate names vLLM's flags; a deployments file's check names its keys (as its other notes and remedies do)."""
    run = run_kvplan("estimate", "Qwen/Qwen3-8B", "--gpu", "h100", "-c", "8192", "--runner", "pooling")
    assert "because of --runner pooling" in " ".join(run.stdout.split())
    path = tmp_path / "deployments.yaml"
    path.write_text("deployments:\n  - name: a\n    model: Qwen/Qwen3-8B\n    gpu: h100\n    tp: 1\n    context: 8192\n"
                    "    runner: pooling\n")
    run = run_kvplan("check", "--file", path, "--format", "json")
    said = " ".join(json.loads(run.stdout)["results"][0]["warnings"])
    assert "because of runner pooling" in said and "--runner" not in said
