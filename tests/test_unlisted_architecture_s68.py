"""Session 68: an architecture no vLLM release lists. vLLM 0.32.0 (read by hand in the sdist):
- model_executor/models/registry.py:1323-1374 inspect_model_cls: with model_impl "auto" and no name of the config's
  architectures in the registry, _try_resolve_transformers (:1222-1295) hands it to the Transformers backend where
  transformers (getattr(transformers, architecture)) or the checkpoint's auto_map has a compatible class; otherwise
  _raise_for_unsupported (:1206-1209): "Model architectures [...] are not supported for now."
- :1297-1320 _normalize_arch serves a name whose suffix (config/model.py:2322-2339) swapped for another is listed
  ("LlamaForSequenceClassification" as "LlamaForCausalLM", converted).
- registry lines of names it lists: :112 Qwen3NextForCausalLM, :149 LlamaForCausalLM, :716 GPTNeoXForCausalLM
  (through the Transformers backend), :747 TransformersForCausalLM; :706 MLPSpeculatorPreTrainedModel is commented
  out; :800 MotifForCausalLM is in _PREVIOUSLY_SUPPORTED_MODELS (served until 0.10.2), not listed.
The Transformers backend is tried from 0.7.2 (vllm_registry's docstring: model_loader/utils.py 0.7.2:92-98)."""

import json
from pathlib import Path

import pytest
import yaml

from conftest import deployments_file, run_kvplan

from kvplan.engines.vllm_config_read import architecture_refusal, listed_anywhere
from kvplan.engines.vllm_registry_names import LISTED_0_32

ROOT = Path(__file__).resolve().parent.parent
QWEN25 = yaml.safe_load((ROOT / "model_specs" / "Qwen--Qwen2.5-7B.yaml").read_text())["config"]
UNLISTED = {**QWEN25, "architectures": ["FooBarForCausalLM"], "model_type": "foobar"}
NOTE = ("no vLLM release lists FooBarForCausalLM in its registry: vLLM 0.32.0 hands it to its Transformers backend, "
        "which serves it only where the installed transformers (or the checkpoint's auto_map code) has a compatible "
        "class for it, and refuses it otherwise; kvplan plans the layers its config names")


def test_names_read_from_the_pinned_release():
    for name in ("Qwen3NextForCausalLM", "LlamaForCausalLM", "GPTNeoXForCausalLM", "TransformersForCausalLM"):
        assert name in LISTED_0_32, name
    for name in ("MLPSpeculatorPreTrainedModel", "MotifForCausalLM", "FooBarForCausalLM"):
        assert name not in LISTED_0_32, name
    assert listed_anywhere("MotifForCausalLM")  # an older release lists it (RETIRED)
    assert not listed_anywhere("MLPSpeculatorPreTrainedModel") and not listed_anywhere("FooBarForCausalLM")


@pytest.mark.parametrize("name", ["LlamaForSequenceClassification", "MistralForTokenClassification", "Qwen3Model",
                                  "Gemma2ForRewardModeling"])
def test_a_name_served_through_its_suffix_is_listed(name):
    assert listed_anywhere(name)


def test_every_bundled_model_is_listed_somewhere():
    """Every bundled spec is a real checkpoint some vLLM release serves by name (Falcon's RWForCausalLM up to
    0.28.0)."""
    specs = sorted((ROOT / "model_specs").glob("*.yaml"))
    assert len(specs) > 50
    for path in specs:
        config = yaml.safe_load(path.read_text())["config"]
        for name in config.get("architectures") or []:
            assert listed_anywhere(name), (path.name, name)


def _estimate(write_config, *flags):
    path = write_config(UNLISTED)
    r = run_kvplan("estimate", path, "-c", "8192", "--format", "json", *flags)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_an_unlisted_architecture_is_planned_with_the_note(write_config):
    out = _estimate(write_config)
    assert NOTE in out["model"]["rules"]
    (plan,) = out["plans"]
    assert plan["fits"] and plan["engine"]["refusal"] is None
    listed = {**UNLISTED, "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"}
    r = run_kvplan("estimate", write_config(listed, "listed.json"), "-c", "8192", "--format", "json")
    assert not any("registry" in rule for rule in json.loads(r.stdout)["model"]["rules"])
    # the same layers, planned alike: the note changes no figure
    assert json.loads(r.stdout)["plans"][0]["max_concurrency"] == plan["max_concurrency"]


def test_no_note_without_an_engine_release(write_config):
    out = _estimate(write_config, "--engine", "none")
    assert not any("registry" in rule for rule in out["model"]["rules"])


@pytest.mark.parametrize("release", ["0.2.0", "0.5.5", "0.6.6", "0.7.1"])
def test_before_the_transformers_backend_it_is_refused(write_config, release):
    (plan,) = _estimate(write_config, "--engine", f"vllm=={release}")["plans"]
    refusal = plan["engine"]["refusal"]
    assert refusal["reason"] == (f"Model architectures ['FooBarForCausalLM'] are not supported for now (no vLLM "
                                 f"release lists them; vllm=={release} predates the Transformers backend of v0.7.2).")
    # session 69: the remedy says the backend may not serve it (vllm_config_read.BACKEND_MAY_SERVE)
    assert refusal["field"] == "engine" and refusal["remedy"] == (
        "it starts with --engine vllm==0.7.2 or newer (the Transformers backend it tries on a name its registry lacks "
        "may or may not serve it)")
    assert not plan["fits"]


def test_from_the_transformers_backend_it_is_not_refused():
    for release in ("0.7.2", "0.8.0", "0.32.0", "0.34.0"):
        assert architecture_refusal("FooBarForCausalLM", release) is None


def test_check_warns_on_the_model_key(write_config, tmp_path):
    path = write_config(UNLISTED)
    deployments = deployments_file(tmp_path, f"  - name: foo\n    model: {path}\n    gpu: h100\n    context: 8192\n"
                                             f"    tp: 1\n")
    r = run_kvplan("check", "--file", deployments, "--format", "json")
    assert r.returncode == 0, r.stderr
    (result,) = json.loads(r.stdout)["results"]
    assert result["passed"] and result["warnings"] == [NOTE + "."]
    (finding,) = result["findings"]
    assert (finding["level"], finding["key"], finding["line"]) == ("warning", "model", 3)
