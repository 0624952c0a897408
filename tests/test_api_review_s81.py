"""Session 81 review of the API's dict MODEL and Verification (tests/test_api_config_s81.py's features), as a library
user meets them: two dicts under one name, a pathlib.Path for MODEL, a Verification that lacks its verdict or is
copied, emit's options, and the README's claims for the dict example.

Numbers are hand arithmetic on the configs (KV bytes a token: layers x 2 (K and V) x KV heads x head_dim x 2 B) and
the README's own comments; no formula under test is copied."""

import copy
import json
import os
import pickle
import re
from pathlib import Path, PurePosixPath

import pytest
import yaml

import kvplan
from kvplan import api
from kvplan.errors import FieldError, KvplanError

from conftest import ROOT, environment

LLAMA = "meta-llama/Llama-3.1-8B"
RECORDED = ROOT / "benchmarks/device_runs/s54_h200_2026-12-05/s53_verify_llama8b_0.32.0.json"


def bundled_config(model_id: str) -> dict:
    return yaml.safe_load((ROOT / "model_specs" / f"{model_id.replace('/', '--')}.yaml").read_text())["config"]


# ---- two different dicts under one name ----------------------------------------------------------------------

def test_two_dicts_with_one_name_plan_apart_in_one_process():
    """A memo keyed by the model's name would hand the second dict the first one's spec."""
    full = {**bundled_config(LLAMA), "_name_or_path": "my-org/llama"}
    half = {**full, "num_hidden_layers": 16}
    first = kvplan.estimate(full, gpu="H100", max_model_len=8192)
    second = kvplan.estimate(half, gpu="H100", max_model_len=8192)
    assert first[0].kv_bytes_per_token == 32 * 2 * 8 * 128 * 2
    assert second[0].kv_bytes_per_token == 16 * 2 * 8 * 128 * 2
    entry = {"tp": 1, "gpu": "L4", "context": 8192}
    gate = kvplan.check_deployments([{**entry, "name": "full", "model": full}, {**entry, "name": "half", "model": half},
                                     {**entry, "name": "again", "model": full}])
    assert [row["model"] for row in gate] == ["my-org/llama"] * 3
    assert gate[0]["max_concurrency"] == gate[2]["max_concurrency"] < gate[1]["max_concurrency"]
    # under a bundled id's name too: the bundled spec and the dict are two models
    named = {**half, "_name_or_path": LLAMA}
    gate = kvplan.check_deployments([{**entry, "name": "bundled", "model": LLAMA},
                                     {**entry, "name": "dict", "model": named}])
    assert gate[0]["max_concurrency"] < gate[1]["max_concurrency"]
    assert gate[0]["max_concurrency"] == kvplan.check(LLAMA, tensor_parallel_size=1, gpu="L4",
                                                      max_model_len=8192)[0]["max_concurrency"]


def test_a_dict_changed_after_the_call_leaves_the_plans_alone():
    config = bundled_config(LLAMA)
    plans = kvplan.estimate(config, gpu="H100", max_model_len=8192)
    before = plans.to_dict()
    config["num_hidden_layers"] = 1
    assert plans.to_dict() == before and plans[0].kv_bytes_per_token == 131072


# ---- MODEL as a pathlib.Path ---------------------------------------------------------------------------------

def written(tmp_path: Path, config: dict) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_a_path_object_reads_as_the_path_text(tmp_path):
    folder = written(tmp_path, {**bundled_config(LLAMA), "num_hidden_layers": 16})
    for given in (folder, folder / "config.json", PurePosixPath(folder)):
        plans = kvplan.estimate(given, gpu="H100", max_model_len=8192)
        assert plans.to_dict() == kvplan.estimate(str(given), gpu="H100", max_model_len=8192).to_dict()
        assert plans[0].kv_bytes_per_token == 16 * 2 * 8 * 128 * 2
        rows = kvplan.check(given, tensor_parallel_size=[1, 2], gpu="L4", max_model_len=8192)
        assert rows.to_dict() == kvplan.check(str(given), tensor_parallel_size=[1, 2], gpu="L4",
                                              max_model_len=8192).to_dict()
        gate = kvplan.check_deployments([{"name": "a", "model": given, "tp": 1, "gpu": "L4", "context": 8192}])
        assert gate[0]["model_id"] == str(given) and gate[0]["max_concurrency"] == rows[0]["max_concurrency"]


def test_a_relative_path_object_is_a_path_never_a_hub_id_or_bundled_spec(tmp_path):
    """Path('meta-llama/Llama-3.1-8B') names the folder of that name here, not the bundled spec; a Path that does
    not exist is said so, never asked of the Hub."""
    folder = tmp_path / LLAMA
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({**bundled_config(LLAMA), "num_hidden_layers": 16}))
    with environment({"HF_HUB_OFFLINE": "1"}, tmp_path):
        plans = kvplan.estimate(Path(LLAMA), gpu="H100", max_model_len=8192)
        assert plans[0].kv_bytes_per_token == 16 * 2 * 8 * 128 * 2
        assert plans.to_dict()["model"]["id"] == LLAMA  # named as the path, as `kvplan estimate ./<it>` names it
        rows = kvplan.check(Path(LLAMA), tensor_parallel_size=1, gpu="L4", max_model_len=8192)
        assert rows[0]["max_concurrency"] == kvplan.check(f"./{LLAMA}", tensor_parallel_size=1, gpu="L4",
                                                          max_model_len=8192)[0]["max_concurrency"]
        with pytest.raises(KvplanError, match=r"^MODEL '\./owner/missing' does not exist; give a config.json"):
            kvplan.estimate(Path("owner/missing"))


def test_verify_takes_a_path_object_as_its_text(tmp_path, monkeypatch):
    from kvplan.commands import verify as command
    from kvplan.commands.verify import VerifyResult

    given = []
    monkeypatch.setattr(command, "verify", lambda model, **options: given.append(model) or VerifyResult(
        json.loads(RECORDED.read_text())))
    folder = written(tmp_path, bundled_config(LLAMA))
    api.verify(folder)
    assert given == [str(folder)]


def test_a_bytes_path_is_refused_naming_model():
    class BytesPath(os.PathLike):
        def __fspath__(self):
            return b"/tmp/config.json"

    for call in (lambda: kvplan.estimate(BytesPath()), lambda: kvplan.check(BytesPath(), tensor_parallel_size=1)):
        with pytest.raises(FieldError, match=r"^model must be a Hugging Face id, a config.json, a model folder or a "
                                             r"config.json's object \(a dict\), got "):
            call()


# ---- Verification --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(RECORDED.read_text())


@pytest.mark.parametrize("held", [{}, {"verdict": None}, {"verdict": {}}, {"verdict": {"ok": False}},
                                  {"verdict": {"ok": "yes"}}, {"verdict": {"ok": 1}}])
def test_ok_is_false_unless_the_verdict_says_true(held):
    assert kvplan.Verification(held).ok is False


def test_a_dict_that_is_no_verify_result_is_refused_in_a_sentence(recorded):
    partial = kvplan.Verification({key: value for key, value in recorded.items() if key != "gpu"})
    for fmt in ("table", "csv"):
        with pytest.raises(FieldError, match=r"^result has no 'gpu', which every `kvplan verify --format json` "
                                             r"result holds; "):
            kvplan.emit(partial, fmt)
    for bad in ({}, {"verdict": None}):
        for call in (lambda: kvplan.emit(kvplan.Verification(bad), "table"), kvplan.Verification(bad).rows):
            with pytest.raises(FieldError, match=r"^result has no verdict"):
                call()
    assert json.loads(kvplan.emit(kvplan.Verification({"verdict": {"ok": True}}), "json")) == {"verdict": {"ok": True}}


def test_a_copy_stays_a_verification(recorded):
    verification = kvplan.Verification(recorded)
    for copied in (verification.copy(), copy.copy(verification), copy.deepcopy(verification),
                   pickle.loads(pickle.dumps(verification))):
        assert type(copied) is kvplan.Verification and copied == recorded
        assert copied.ok is recorded["verdict"]["ok"]
        assert kvplan.emit(copied, "csv") == kvplan.emit(verification, "csv")
    assert json.loads(json.dumps(verification)) == recorded


def test_a_plain_verify_dict_given_to_emit_is_told_to_wrap_it(recorded):
    with pytest.raises(FieldError, match=r"kvplan\.Verification\(result\)"):
        kvplan.emit(dict(recorded), "json")


def test_emit_options_are_checked(recorded):
    plans = kvplan.estimate(LLAMA, gpu="H100", max_model_len=8192)
    assert kvplan.emit(plans, "table", chart=True)
    for result in (kvplan.Verification(recorded), kvplan.check(LLAMA, tensor_parallel_size=1, gpu="H100")):
        with pytest.raises(FieldError, match=r"^chart draws kvplan\.estimate's curves"):
            kvplan.emit(result, "table", chart=True)
    with pytest.raises(FieldError, match=r"^colour is not an option of emit, which takes chart=True"):
        kvplan.emit(plans, "table", colour=True)


# ---- the README -------------------------------------------------------------------------------------------------

def test_the_readme_dict_example_gives_what_its_comments_say():
    """test_api.py runs the block and checks its first prints; the values the later lines claim are checked here."""
    block = re.search(r"### From Python\n\n```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    names: dict = {}
    exec(compile(block, "README.md", "exec"), names)
    dict_line = next(line for line in block.splitlines() if line.startswith("kvplan.estimate(config"))
    claimed = int(re.search(r"#\s*(\d+)", dict_line).group(1))
    assert eval(dict_line.split("#")[0], names) == claimed == 16 * 2 * 8 * 128 * 2
    gate_line = next(line for line in block.splitlines() if line.startswith("gate.ok"))
    ok, concurrency = re.search(r"#\s*(True|False) (\d+)", gate_line).groups()
    assert eval(gate_line.split("#")[0], names) == (ok == "True", int(concurrency))
