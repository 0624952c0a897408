"""Session 57 (stpool): a Sentence Transformers modules.json listing a Pooling module makes vLLM's runner pooling,
before the architecture is looked at.

Read by hand:
- config/model.py ModelConfig._get_default_runner_type, first line of its body: `if get_pooling_config(self.model,
  self.revision): return "pooling"` (0.11.0:752, 0.14.0:771, 0.20.0:843, 0.24.0:877, 0.28.0:1106, 0.32.0:1277,
  0.34.0:1310), commented "Some Sentence Transformers models use *ForCausalLM archs".
- transformers_utils/config.py get_pooling_config (0.11.0:711-762, 0.14.0:743-817, 0.32.0:949-1030,
  0.34.0:1057-1138): modules.json read where file_or_path_exists (a local folder: `(path / name).is_file()`,
  transformers_utils/repo_utils.py 0.32.0:262-266; the Hub: the cache, its .no_exist record, then the Hub,
  :267-283); None (no file, or JSON null) -> None; otherwise the first item whose item["type"] names a Pooling
  module: "sentence_transformers.models.Pooling" (== in 0.11.0:742 ... 0.29.0:858), from 0.30.0 the set
  _ST_POOLING_MODULE_TYPES, which adds "sentence_transformers.sentence_transformer.modules.pooling.Pooling"
  (0.30.0:56-59, 0.34.0:97-100). With one, a dict that always has a key ("pooling_type"/"normalize" in 0.11.0,
  "use_activation" from 0.14.0): truthy whatever the module's config.json holds; without one, None (0.34.0:1138).
- The same function, run (vLLM 0.34.0's source, `cd /tmp/s52/sd/vllm-0.34.0 && /tmp/v34/bin/python`, CPU torch):
  on a folder with Qwen2.5-7B's config.json and gte-Qwen2's modules.json (Transformer, Pooling at "1_Pooling",
  Normalize; no 1_Pooling/config.json) it returned {'use_activation': True}, and ModelConfig._get_default_runner_type
  (called on a stand-in self with the real ModelRegistry) answered "pooling" for ["Qwen2ForCausalLM"]; with
  modules.json [Transformer, Normalize], or [], "generate" (get_pooling_config: None); with the newer Pooling type
  "pooling"; with JSON null, None. It raised on a top-level object ("TypeError: string indices must be integers"),
  an item without "type" (KeyError 'type') and a Pooling item without "path" (KeyError 'path'): vLLM stops there.
- What the runner changes that a plan shows: a pooling model's default prompt is the whole max length (the default
  prompt of a generating text model is one less from 0.11.1: tests/test_prompt_len_review.py BOUNDARIES), and the
  model's rules say it runs on the pooling runner.
"""

from __future__ import annotations

import json
import socket

import pytest

from tests.conftest import one_error_line, run_hub, run_kvplan
from tests.fake_hub import COMMIT, cached_repo, hub_env, repo_handler, serving
from tests.hub_configs import QWEN2_5_7B

TRANSFORMER = {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}
POOLING = {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
NEWER_POOLING = {**POOLING, "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling"}
NORMALIZE = {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
GTE_MODULES = [TRANSFORMER, POOLING, NORMALIZE]  # Alibaba-NLP/gte-Qwen2-7B-instruct's modules.json
NO_POOLING = [TRANSFORMER, NORMALIZE]
SAID = "because its modules.json lists a Sentence Transformers Pooling module"
CONTEXT = 8192


# gte-Qwen2-7B-instruct's 1_Pooling/config.json (last-token pooling): vLLM 0.11-0.13 stop without the file
# (tests/test_pooling_review.py), so the folders here carry it
GTE_POOLING = {"word_embedding_dimension": 3584, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False,
               "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
               "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": True, "include_prompt": True}


def _folder(tmp_path, modules, name="gte", config=QWEN2_5_7B, pooling=GTE_POOLING):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    if modules is not None:
        (folder / "modules.json").write_text(modules if isinstance(modules, str) else json.dumps(modules))
    if pooling is not None:
        (folder / POOLING["path"]).mkdir()
        (folder / POOLING["path"] / "config.json").write_text(json.dumps(pooling))
    return folder


def _estimate(model, *args, env=None) -> dict:
    r = run_kvplan("estimate", model, "--gpu", "h100", "-c", CONTEXT, "--format", "json", *args, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _runner(result: dict) -> str:
    """The runner a plan shows: its rules' note, and the default prompt (the whole length for a pooling model)."""
    pooled = any("runs on vLLM's pooling runner" in rule for rule in result["model"]["rules"])
    prompt = result["plans"][0]["prefill"]["input_len"]
    assert prompt == (CONTEXT if pooled else CONTEXT - 1), (pooled, prompt)  # test_prompt_len_review BOUNDARIES
    return "pooling" if pooled else "generate"


# ---- a local folder -----------------------------------------------------------------------------------------------

def test_gte_qwen2s_modules_json_makes_a_causal_lm_pooling(tmp_path):
    result = _estimate(_folder(tmp_path, GTE_MODULES))
    assert _runner(result) == "pooling"
    (note,) = [rule for rule in result["model"]["rules"] if "pooling runner" in rule]
    assert note.startswith(f"Qwen2ForCausalLM runs on vLLM's pooling runner (embedding, classification or reward), "
                           f"{SAID}, which vLLM looks for before the architecture")
    # the same config.json with no modules.json beside it: its architecture's runner
    assert _runner(_estimate(_folder(tmp_path, None, "plain"))) == "generate"


def test_the_note_in_the_table_too(tmp_path):
    r = run_kvplan("estimate", _folder(tmp_path, GTE_MODULES), "--gpu", "h100", "-c", CONTEXT)
    assert r.returncode == 0, r.stderr
    assert SAID in " ".join(r.stdout.split())


@pytest.mark.parametrize("modules", [NO_POOLING, [], "null"], ids=["transformer-normalize", "empty", "null"])
def test_no_pooling_module_keeps_the_architectures_runner(tmp_path, modules):
    """get_pooling_config answers None for these (vLLM 0.34.0 run on each: the module docstring)."""
    from kvplan.model.sources import resolve

    folder = _folder(tmp_path, modules)
    assert resolve(str(folder)).st_pooling == ()
    assert _runner(_estimate(folder)) == "generate"


def test_the_spec_carries_the_listed_types(tmp_path):
    from kvplan.model.sources import resolve

    spec = resolve(str(_folder(tmp_path, [TRANSFORMER, NEWER_POOLING, POOLING, POOLING])))
    assert spec.st_pooling == (NEWER_POOLING["type"], POOLING["type"])  # each once, in the file's order


@pytest.mark.parametrize("engine, runner", [
    ("vllm==0.29.0", "generate"),  # "sentence_transformers.models.Pooling" alone (0.29.0:858)
    ("vllm==0.30.0", "pooling"),  # _ST_POOLING_MODULE_TYPES (0.30.0:56-59)
    ("vllm==0.34.0", "pooling"),  # (0.34.0:97-100)
])
def test_the_newer_pooling_type_counts_from_0_30(tmp_path, engine, runner):
    """The release's answer everywhere a plan reads it: the note and the default prompt (_runner), and the budget's
    weights, which drop the LM head only where the runner is pooling (vllm_pooling_budget.without_lm_head; Qwen2.5-
    7B's untied head, 152,064 x 3,584 in bf16)."""
    from kvplan.engines.vllm_pooling import pooling_runner
    from kvplan.model.sources import resolve

    folder = _folder(tmp_path, [TRANSFORMER, NEWER_POOLING])
    result = _estimate(folder, "--engine", engine)
    assert _runner(result) == runner
    assert pooling_runner(resolve(str(folder)), engine.split("==")[1]) is (runner == "pooling")
    generating = _estimate(_folder(tmp_path, NO_POOLING, "plain"), "--engine", engine)
    weights = [plan["plans"][0]["budget"]["weights_bytes_per_gpu"] for plan in (generating, result)]
    dropped = weights[0] - weights[1]
    assert dropped == (152_064 * 3_584 * 2 if runner == "pooling" else 0)


@pytest.mark.parametrize("engine", ["vllm==0.11.0", "vllm==0.29.0", "vllm==0.32.0"])
def test_the_classic_pooling_type_counts_in_every_release_read(tmp_path, engine):
    assert _runner(_estimate(_folder(tmp_path, GTE_MODULES), "--engine", engine)) == "pooling"


def test_a_config_json_path_reads_the_modules_beside_it(tmp_path):
    """As hf_quant_config.json: a file named config.json stands for its folder; another name does not (vLLM takes a
    folder)."""
    folder = _folder(tmp_path, GTE_MODULES)
    assert _runner(_estimate(folder / "config.json")) == "pooling"
    (folder / "qwen.json").write_text(json.dumps(QWEN2_5_7B))
    assert _runner(_estimate(folder / "qwen.json")) == "generate"


def test_a_folder_named_modules_json_is_no_file(tmp_path):
    """file_or_path_exists asks is_file() (repo_utils.py 0.32.0:265-266)."""
    folder = _folder(tmp_path, None)
    (folder / "modules.json").mkdir()
    assert _runner(_estimate(folder)) == "generate"


@pytest.mark.parametrize("modules, says", [
    ("[{oops", "is not valid JSON"),
    ({"0": POOLING}, "must be a JSON list of Sentence Transformers modules, each an object with a \"type\" "
                     "(and the Pooling module a \"path\"), as vLLM reads it; got an object"),
    ([{"idx": 0, "path": ""}, POOLING], "its item 0 has no \"type\" (start-up stops there on vLLM)."),
    ([TRANSFORMER, "Pooling"], "its item 1 is a string (start-up stops there on vLLM)."),
    ([TRANSFORMER, {k: v for k, v in POOLING.items() if k != "path"}],
     "its Pooling module (item 1) has no \"path\", from which vLLM would read the module's config.json"),
], ids=["json", "object", "no-type", "string-item", "no-path"])
def test_a_malformed_modules_json_is_one_line_naming_it(tmp_path, modules, says):
    """vLLM stops on these (TypeError / KeyError, the module docstring): kvplan says so in one line, exit 2."""
    folder = _folder(tmp_path, modules)
    line = one_error_line(run_kvplan("estimate", folder, "--gpu", "h100", "-c", CONTEXT))
    assert f"modules.json in '{folder}'" in line and says in line, line


def test_the_other_architectures_runner_rules_stand(tmp_path):
    """An architecture already pooling stays so with a modules.json that lists no Pooling module (get_pooling_config
    None: the registry / suffix rule decides), and is said without the modules.json reason."""
    config = {**QWEN2_5_7B, "architectures": ["Qwen2ForRewardModel"]}
    result = _estimate(_folder(tmp_path, NO_POOLING, config=config))
    assert _runner(result) == "pooling"
    assert not any(SAID in rule for rule in result["model"]["rules"])


def test_pooling_runner_reads_the_spec_field():
    from types import SimpleNamespace

    from kvplan.engines.vllm_pooling import pooling_runner

    causal = SimpleNamespace(registered_architecture="Qwen3ForCausalLM", architecture="Qwen3ForCausalLM")
    assert not pooling_runner(causal)  # Qwen/Qwen3-Embedding-8B's config.json alone
    assert pooling_runner(SimpleNamespace(**vars(causal), st_pooling=(POOLING["type"],)))  # with its modules.json
    newer = SimpleNamespace(**vars(causal), st_pooling=(NEWER_POOLING["type"],))
    assert pooling_runner(newer, "0.30.0") and not pooling_runner(newer, "0.29.0")
    assert pooling_runner(newer)  # None: the pinned 0.32.0


# ---- the Hub ------------------------------------------------------------------------------------------------------

@pytest.fixture
def hub():
    handler = repo_handler({})
    with serving(handler) as endpoint:
        yield handler, endpoint


def _hub(hub, tmp_path, files: dict):
    handler, endpoint = hub
    handler.asked.clear()
    handler.hold(files)
    return run_hub("estimate", "acme/gte", "--gpu", "h100", "-c", CONTEXT, "--format", "json",
                         env=hub_env(tmp_path, endpoint))


def test_the_hub_repos_modules_json_is_read(hub, tmp_path):
    r = _hub(hub, tmp_path, {"config.json": QWEN2_5_7B, "modules.json": GTE_MODULES})
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert _runner(result) == "pooling"
    assert any(SAID in rule for rule in result["model"]["rules"])


def test_a_repo_without_it_is_its_architectures_and_asked_once(hub, tmp_path):
    """A 404 is no file: said nowhere; huggingface_hub records the absence (.no_exist), so a second run asks nothing
    (the cache first, as file_or_path_exists: repo_utils.py 0.32.0:268-283)."""
    first = _hub(hub, tmp_path, {"config.json": QWEN2_5_7B})
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert _runner(result) == "generate"
    assert not any("modules.json" in rule for rule in result["model"]["rules"])
    asked = hub[0].asked["modules.json"]
    assert asked >= 1
    assert (tmp_path / "cache" / "models--acme--gte" / ".no_exist" / COMMIT / "modules.json").is_file()
    handler, endpoint = hub
    second = run_hub("estimate", "acme/gte", "--gpu", "h100", "-c", CONTEXT, "--format", "json",
                           env=hub_env(tmp_path, endpoint))
    assert second.returncode == 0, second.stderr
    assert handler.asked["modules.json"] == asked  # not asked again


def test_a_malformed_hub_modules_json_is_one_line_naming_the_repo(hub, tmp_path):
    r = _hub(hub, tmp_path, {"config.json": QWEN2_5_7B, "modules.json": {"0": POOLING}})
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "modules.json of acme/gte on the Hugging Face Hub must be a JSON list" in r.stderr


def test_offline_the_cached_snapshot_holds_it_or_not(tmp_path):
    cached_repo(tmp_path, "acme/gte", {"config.json": QWEN2_5_7B, "modules.json": GTE_MODULES})
    cached_repo(tmp_path, "acme/qwen", {"config.json": QWEN2_5_7B})
    env = hub_env(tmp_path, offline=True)
    for repo, runner in (("acme/gte", "pooling"), ("acme/qwen", "generate")):
        r = run_hub("estimate", repo, "--gpu", "h100", "-c", CONTEXT, "--format", "json", env=env)
        assert r.returncode == 0, r.stderr
        assert _runner(json.loads(r.stdout)) == runner, repo


def _closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_a_hub_that_cannot_be_reached_leaves_a_note(tmp_path):
    """config.json from the cache (hub.py _fetch_config); modules.json cannot be asked for: the plan says so and
    takes the architecture's runner, as for hf_quant_config.json."""
    cached_repo(tmp_path, "acme/gte", {"config.json": QWEN2_5_7B})
    r = run_hub("estimate", "acme/gte", "--gpu", "h100", "-c", CONTEXT, "--format", "json",
                      env=hub_env(tmp_path, _closed_port()))
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert _runner(result) == "generate"
    assert any("could not be asked for the repo's modules.json (it could not be reached), whose Sentence "
               "Transformers Pooling module, where it lists one, makes vLLM serve the model on its pooling runner"
               in rule for rule in result["model"]["rules"]), result["model"]["rules"]


def test_check_warns_where_the_hub_could_not_be_asked(tmp_path):
    cached_repo(tmp_path, "acme/gte", {"config.json": QWEN2_5_7B})
    path = tmp_path / "deployments.yaml"
    path.write_text("deployments:\n  - name: gte\n    model: acme/gte\n    tp: 1\n    gpu: H100\n    context: 8192\n")
    r = run_hub("check", "--file", path, "--format", "json", env=hub_env(tmp_path, _closed_port()))
    assert r.returncode == 0, r.stdout + r.stderr
    (result,) = json.loads(r.stdout)["results"]
    (finding,) = [f for f in result["findings"] if "modules.json" in f["message"]]
    assert (finding["level"], finding["key"], finding["line"]) == ("warning", "model", 3)


def test_a_bundled_spec_lists_no_pooling_module():
    """Bundled specs never ask their Hub repo; none of them is a Sentence Transformers repo."""
    from kvplan.model.bundled import bundled_names
    from kvplan.model.sources import resolve

    assert all(resolve(name).st_pooling == () for name in bundled_names())
