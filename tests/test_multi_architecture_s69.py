"""Session 69: a config.json whose "architectures" names more than one class. What vLLM does with the list, read by hand
in each release's own source:
- 0.32.0 config/model.py:730 hands the whole list to registry.py _ModelRegistry.inspect_model_cls (:1323-1374):
  where no name is in the registry and model_impl is auto, it tries the Transformers backend on architectures[0]
  (:1345-1355, again :1363-1372); otherwise it walks the names in order and serves the first it can inspect
  (:1357-1361); only then _raise_for_unsupported (:1374; :1177-1209): the first name of the list that
  _PREVIOUSLY_SUPPORTED_MODELS names (:1186-1195; :800 MotifForCausalLM "0.10.2", :801 Phi3SmallForCausalLM
  "0.9.2") gets its own message, else "Model architectures {architectures} are not supported for now." with the
  whole list (:1205-1209). Listed at :149 LlamaForCausalLM, :238 Qwen2Model.
- 0.2.0 model_loader.py:50-57 _get_model_architecture and 0.6.6 / 0.7.1 registry.py inspect_model_cls (0.7.1:382-393,
  _raise_for_unsupported :346-356): the same walk, the same message, no Transformers backend.
- 0.7.2 model_loader/utils.py:92-98: the Transformers backend only where no name is listed (:45-74, each name).
So the first name the release lists decides; a name no release lists is served, if at all, only where it is first.
kvplan's registries by release (vllm_registry.py FIRST_LISTED: Qwen2Model from 0.6.4, Qwen3ForCausalLM from 0.8.4;
RETIRED: Phi3SmallForCausalLM listed up to 0.9.2) pick the name; the plans below are compared with the plan of the
config naming that name alone. vLLM 0.23's V2 runner is the default for LlamaForCausalLM only (config/vllm.py
DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES, vllm_runner._V23), which shows which name a plan was made for."""

import json

import pytest
import yaml

from conftest import ROOT, deployments_file, run_kvplan

import kvplan.api as api
from kvplan.engines.vllm_config_read import BACKEND_MAY_SERVE, architecture_refusal, listed_anywhere
from kvplan.engines.vllm_registry import RETIRED, lists, served_name
from kvplan.engines.vllm_remedy import release_boundaries

LLAMA = yaml.safe_load((ROOT / "model_specs" / "meta-llama--Llama-3.1-8B.yaml").read_text())["config"]
QWEN25 = yaml.safe_load((ROOT / "model_specs" / "Qwen--Qwen2.5-7B.yaml").read_text())["config"]
FOO, BAZ = "FooBarForCausalLM", "BazQuxForCausalLM"  # no release lists either
BEFORE, FROM = ("0.2.0", "0.6.6", "0.7.1"), ("0.7.2", "0.8.0", "0.23.0", "0.32.0", "0.34.0")  # the backend's 0.7.2


def _plan(tmp_path, config, names, engine, name="config.json"):
    path = tmp_path / name
    path.write_text(json.dumps({**config, "architectures": names}))
    (plan,) = api.estimate(str(path), max_model_len=8192, engine=f"vllm=={engine}", gpu="H100")
    return plan


def _figures(plan) -> tuple:
    engine = plan.engine
    return (plan.fits, plan.max_concurrency, engine.num_gpu_blocks, engine.available_kv_cache_bytes,
            engine.refusal is None, tuple(engine.log_lines))


def _rules(path, engine) -> list:
    r = run_kvplan("estimate", path, "-c", "8192", "--engine", f"vllm=={engine}", "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["model"]["rules"]


@pytest.mark.parametrize("engine", BEFORE + FROM)
@pytest.mark.parametrize("names", [[FOO, "LlamaForCausalLM"], ["LlamaForCausalLM", FOO]])
def test_a_listed_name_in_either_order_is_planned_as_it(tmp_path, names, engine):
    """The walk (0.32.0 :1357-1361, 0.7.1 :388-391, 0.2.0 :52-54) finds LlamaForCausalLM whatever its place: no
    refusal, no note on the unlisted name, the plan of a config naming LlamaForCausalLM alone."""
    assert served_name(names, engine) == "LlamaForCausalLM"
    plan = _plan(tmp_path, LLAMA, names, engine)
    assert plan.engine.refusal is None and plan.fits
    assert _figures(plan) == _figures(_plan(tmp_path, LLAMA, ["LlamaForCausalLM"], engine, "alone.json"))
    assert not any("registry" in rule for rule in _rules(tmp_path / "config.json", engine))


def test_the_runner_is_the_served_names(tmp_path):
    """0.23.0 runs LlamaForCausalLM on its V2 runner and an unknown class on V1: the multi-name config's plan is
    Llama's, not the first name's (whose engine figures differ)."""
    alone = {names[0]: _figures(_plan(tmp_path, LLAMA, names, "0.23.0", f"{names[0]}.json"))
             for names in ([FOO], ["LlamaForCausalLM"])}
    assert alone[FOO] != alone["LlamaForCausalLM"]
    assert _figures(_plan(tmp_path, LLAMA, [FOO, "LlamaForCausalLM"], "0.23.0")) == alone["LlamaForCausalLM"]


@pytest.mark.parametrize("engine", BEFORE)
def test_all_unlisted_before_the_backend_is_refused_with_the_whole_list(tmp_path, engine):
    """0.7.1 :354-356 / 0.2.0 :55-57: "Model architectures ['FooBarForCausalLM', 'BazQuxForCausalLM'] are not
    supported for now"; the remedy is the backend's first release, which may or may not serve the first name."""
    plan = _plan(tmp_path, LLAMA, [FOO, BAZ], engine)
    refusal = plan.engine.refusal
    assert not plan.fits and refusal.field == "engine"
    assert refusal.reason == (f"Model architectures ['{FOO}', '{BAZ}'] are not supported for now (no vLLM release "
                              f"lists them; vllm=={engine} lists none of them and predates the Transformers backend "
                              f"of v0.7.2).")
    assert refusal.advice() == f"it starts with engine vllm==0.7.2 or newer ({BACKEND_MAY_SERVE})"


@pytest.mark.parametrize("engine", FROM)
def test_all_unlisted_from_the_backend_is_tried_on_the_first_name(tmp_path, engine):
    """:1345-1355 and :1363-1372 try architectures[0] alone: the note names it, not the second."""
    plan = _plan(tmp_path, LLAMA, [FOO, BAZ], engine)
    assert plan.engine.refusal is None
    (note,) = [rule for rule in _rules(tmp_path / "config.json", engine) if "registry" in rule]
    assert note.startswith(f"no vLLM release lists {FOO} in its registry: vLLM {engine} hands it to its Transformers "
                           f"backend") and BAZ not in note


@pytest.mark.parametrize("retired", ["MotifForCausalLM", "Phi3SmallForCausalLM"])
def test_a_retired_name_first_then_a_listed_one_is_served_as_the_listed(tmp_path, retired):
    """0.32.0 names both in _PREVIOUSLY_SUPPORTED_MODELS (:800-801) and refuses each alone (:1186-1195), but the walk
    finds LlamaForCausalLM (:149) before _raise_for_unsupported is reached."""
    alone = _plan(tmp_path, LLAMA, [retired], "0.32.0", "retired.json").engine.refusal
    assert alone is not None and alone.reason.startswith(f"Model architecture {retired} was supported in vLLM until")
    plan = _plan(tmp_path, LLAMA, [retired, "LlamaForCausalLM"], "0.32.0")
    assert plan.engine.refusal is None and plan.fits
    assert _figures(plan) == _figures(_plan(tmp_path, LLAMA, ["LlamaForCausalLM"], "0.32.0", "alone.json"))


def test_a_retired_name_first_then_an_unlisted_one_gets_its_own_message(tmp_path):
    """No name listed: the backend is tried on MotifForCausalLM (kvplan, as for the name alone, takes it to have no
    class), then _raise_for_unsupported walks to the first retired name (:1186-1195, :800 "0.10.2")."""
    refusal = _plan(tmp_path, LLAMA, ["MotifForCausalLM", FOO], "0.32.0").engine.refusal
    assert refusal.reason == ("Model architecture MotifForCausalLM was supported in vLLM until v0.10.2, and is not "
                              "supported anymore. Please use an older version of vLLM if you want to use this model "
                              "architecture.")
    assert refusal.field == "engine"


def test_an_unlisted_name_first_then_a_retired_one_is_tried_on_the_backend(tmp_path):
    """No name listed in 0.32.0 (Phi3SmallForCausalLM only in _PREVIOUSLY_SUPPORTED_MODELS, :801): the backend gets
    architectures[0] (:1345-1355), so kvplan plans it with the note; 0.6.6 still lists Phi3SmallForCausalLM (from
    0.4.3) and serves that."""
    names = [FOO, "Phi3SmallForCausalLM"]
    assert served_name(names, "0.32.0") == FOO and served_name(names, "0.6.6") == "Phi3SmallForCausalLM"
    assert _plan(tmp_path, LLAMA, names, "0.32.0").engine.refusal is None
    assert any(rule.startswith(f"no vLLM release lists {FOO}") for rule in _rules(tmp_path / "config.json", "0.32.0"))
    assert _plan(tmp_path, LLAMA, names, "0.6.6").engine.refusal is None
    assert not any("registry" in rule for rule in _rules(tmp_path / "config.json", "0.6.6"))


def test_a_name_listed_later_decides_from_its_release(tmp_path):
    """[unlisted, Qwen2Model]: 0.6.0 lists neither (Qwen2Model from 0.6.4) and refuses, its remedy the first release
    that lists the second name, which needs no backend; from 0.6.4 the plan is Qwen2Model's (a pooling model)."""
    names = [FOO, "Qwen2Model"]
    refusal = _plan(tmp_path, QWEN25, names, "0.6.0").engine.refusal
    assert refusal.reason == (f"Model architectures ['{FOO}', 'Qwen2Model'] are not supported for now (vLLM's registry "
                              f"lists Qwen2Model from v0.6.4 on; vllm==0.6.0 lists none of them and predates the "
                              f"Transformers backend of v0.7.2).")
    # 0.8.0-0.9.1 serve a pooling model on V0's pooling runner, which kvplan refuses as not modelled
    # (engines/vllm_v1_oracle.py V0_UNMODELLED), so the onward remedy starts where V1 pools
    assert refusal.advice() == "it starts with engine vllm==0.9.2 or newer"
    for engine in ("0.6.4", "0.7.2", "0.32.0"):
        alone = _figures(_plan(tmp_path, QWEN25, ["Qwen2Model"], engine, "alone.json"))
        assert _figures(_plan(tmp_path, QWEN25, names, engine)) == alone, engine


def test_a_name_listed_later_first_is_passed_over_until_its_release(tmp_path):
    """[Qwen3ForCausalLM, Qwen2ForCausalLM]: 0.8.0 lists only the second and serves it; 0.8.4 the first."""
    names = ["Qwen3ForCausalLM", "Qwen2ForCausalLM"]
    assert served_name(names, "0.8.0") == "Qwen2ForCausalLM" and served_name(names, "0.8.4") == "Qwen3ForCausalLM"
    assert _plan(tmp_path, QWEN25, names, "0.8.0").engine.refusal is None
    # the first name alone is refused by 0.8.0 (from v0.8.4 on), so it is the walk that serves the pair
    assert architecture_refusal("Qwen3ForCausalLM", "0.8.0") is not None


def test_check_follows_the_served_name(tmp_path):
    """`kvplan check`: the listed name after an unlisted one passes without the note; two unlisted names warn on the
    first (from 0.7.2) and fail before 0.7.2."""
    (tmp_path / "served.json").write_text(json.dumps({**LLAMA, "architectures": [FOO, "LlamaForCausalLM"]}))
    (tmp_path / "unlisted.json").write_text(json.dumps({**LLAMA, "architectures": [FOO, BAZ]}))
    body = "".join(f"  - name: {name}\n    model: {tmp_path / model}\n    gpu: h100\n    context: 8192\n    tp: 1\n"
                   f"{extra}" for name, model, extra in (("served", "served.json", ""),
                                                         ("unlisted", "unlisted.json", ""),
                                                         ("old", "unlisted.json", "    engine: vllm==0.6.6\n")))
    r = run_kvplan("check", "--file", deployments_file(tmp_path, body), "--format", "json")
    assert r.returncode == 1, r.stderr  # the old release's refusal is a violation
    served, unlisted, old = json.loads(r.stdout)["results"]
    assert served["passed"] and served["warnings"] == []
    assert unlisted["passed"] and len(unlisted["warnings"]) == 1
    assert unlisted["warnings"][0].startswith(f"no vLLM release lists {FOO} in its registry")
    assert not old["passed"]
    assert any(f"Model architectures ['{FOO}', '{BAZ}'] are not supported for now" in e for e in old["errors"])


def test_the_walk_lists_what_the_one_name_rule_lets_pass():
    """vllm_registry.lists, the walk's test of one name, against the one-name refusal at every release boundary: a
    name some release lists is listed exactly where it is not refused."""
    names = {name for name in RETIRED} | {"LlamaForCausalLM", "Qwen2Model", "Qwen3ForCausalLM", "SmolLM3ForCausalLM",
                                          "LlamaForSequenceClassification", "ExaoneMoEForCausalLM", FOO}
    for release in release_boundaries():
        for name in names:
            assert lists(name, release) == (listed_anywhere(name) and architecture_refusal(name, release) is None), \
                (name, release)


def test_the_backend_note_is_one_sentence():
    assert ". " not in BACKEND_MAY_SERVE and not BACKEND_MAY_SERVE.endswith(".")
