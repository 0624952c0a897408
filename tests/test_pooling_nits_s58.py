"""Session 58 (pooling-nits): the runner said on every plan and check result (a null engine under --engine none left it
unsaid), check's pooling warning on the key that picked the pooling runner, and --pooler-config names vLLM 0.11-0.15
ignore said in a note.

Read by hand:
- config/model.py 0.34.0:1327-1350 _get_runner_type: `if runner != "auto": return runner`; then `convert in {"auto",
  "none"}` leaves it to _get_default_runner_type (:1303-1325: a Sentence Transformers Pooling module first, then the
  architecture), any other convert gives "pooling". pooler_config is read nowhere there: it never picks the runner.
- config/utils.py 0.11.0:22-35, 0.14.1:35-48: `config` returns the class unchanged; config/pooler.py 0.11.0:12-14,
  0.14.1:21-23: PoolerConfig a bare pydantic dataclass (pydantic's default extra="ignore"); engine/arg_utils.py
  0.11.0:200, 0.14.1:282: the flag parsed by TypeAdapter(PoolerConfig).validate_json. config/utils.py 0.16.0:55:
  extra="forbid" from 0.16.0. 0.11.0's PoolerConfig has no use_activation, 0.13.0's no seq_pooling_type.
- Qwen3-8B (model_specs/Qwen--Qwen3-8B.yaml): vocab_size 151,936, hidden_size 4,096, tie_word_embeddings false, bf16:
  an untied LM head of 151,936 x 4,096 x 2 = 1,244,659,712 bytes.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import logging
import re
import sys
import types
from pathlib import Path

import pytest

from tests.conftest import deployments_file, line_of, load_yaml, run_kvplan

ROOT = Path(__file__).resolve().parents[1]
QWEN3_8B = dict(load_yaml((ROOT / "model_specs" / "Qwen--Qwen3-8B.yaml").read_text())["config"])
TRANSFORMER = {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}
POOLING = {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
LAST = {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False, "pooling_mode_lasttoken": True}
LM_HEAD_BYTES = 151_936 * 4_096 * 2  # Qwen3-8B's untied bf16 LM head, by hand
SDISTS = Path("/tmp/s52/sd")


def _st_folder(tmp_path) -> Path:
    """Qwen3-8B's config.json beside a modules.json listing a Pooling module (LAST): pooling by --runner auto."""
    folder = tmp_path / "st_qwen3"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(QWEN3_8B))
    (folder / "modules.json").write_text(json.dumps([TRANSFORMER, POOLING]))
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(LAST))
    return folder


def _estimate(model, *args, fmt="json"):
    r = run_kvplan("estimate", model, "--gpu", "H100", "-c", "32768", "--format", fmt, *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


# ---- 1. the runner on every plan -----------------------------------------------------------------------------------

def test_engine_none_says_the_runner_its_null_engine_leaves_unsaid():
    pooled = json.loads(_estimate("Qwen/Qwen3-8B", "--engine", "none", "--runner", "pooling"))["plans"][0]
    plain = json.loads(_estimate("Qwen/Qwen3-8B", "--engine", "none"))["plans"][0]
    assert pooled["engine"] is None and plain["engine"] is None
    assert (pooled["runner"], plain["runner"]) == ("pooling", "generate")  # --runner pooling: _get_runner_type
    # the figures agree with the key: the pooling plan's weights lack exactly the untied LM head
    assert plain["budget"]["weights_bytes_per_gpu"] - pooled["budget"]["weights_bytes_per_gpu"] == LM_HEAD_BYTES


def test_a_modules_json_makes_it_pooling_under_engine_none(tmp_path):
    plan = json.loads(_estimate(str(_st_folder(tmp_path)), "--engine", "none"))["plans"][0]
    assert plan["engine"] is None and plan["runner"] == "pooling"


def test_under_vllm_the_plan_and_the_engine_block_agree():
    for args, runner in ((("--runner", "pooling"), "pooling"), ((), "generate"), (("--convert", "embed"), "pooling")):
        plan = json.loads(_estimate("Qwen/Qwen3-8B", *args))["plans"][0]
        assert plan["runner"] == plan["engine"]["runner"] == runner, args


def test_yaml_and_csv_say_the_same_runner_on_every_row():
    args = ("--engine", "none", "--runner", "pooling", "-tp", "1,3")  # 32 query heads: tp 3 does not shard
    plans = json.loads(_estimate("Qwen/Qwen3-8B", *args))["plans"]
    assert [p["runner"] for p in plans] == ["pooling", "pooling"] and plans[1]["tp_valid"] is False
    assert [p["runner"] for p in load_yaml(_estimate("Qwen/Qwen3-8B", *args, fmt="yaml"))["plans"]] == \
        ["pooling", "pooling"]
    text = _estimate("Qwen/Qwen3-8B", *args, fmt="csv")
    header = text.splitlines()[0].split(",")
    assert header[-1] == "runner"  # appended: the columns before keep their places
    assert [row["runner"] for row in csv.DictReader(io.StringIO(text))] == ["pooling", "pooling"]


def test_check_results_carry_the_runner_too():
    r = run_kvplan("check", "Qwen/Qwen3-8B", "--tp", "1", "--gpu", "H100", "-c", "32768", "--engine", "none",
                   "--runner", "pooling", "--format", "json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)["results"][0]
    assert result["engine"] is None and result["runner"] == "pooling"
    rows = list(csv.DictReader(io.StringIO(run_kvplan("check", "Qwen/Qwen3-8B", "--tp", "1", "--gpu", "H100", "-c",
                                                      "32768", "--format", "csv").stdout)))
    assert rows[0]["runner"] == "generate" == rows[0]["engine_runner"]


# ---- 2. check's pooling warning on the key that picked the runner --------------------------------------------------

ENTRIES = """  - name: by-runner
    model: Qwen/Qwen3-8B
    tp: 1
    gpu: H100
    context: 32768
    runner: pooling
    pooler_config:
      pooling_type: MEAN
  - name: by-convert
    model: Qwen/Qwen3-8B
    tp: 1
    gpu: H100
    context: 32768
    convert: embed
  - name: by-modules
    model: {folder}
    tp: 1
    gpu: H100
    context: 32768
    pooler_config:
      pooling_type: MEAN
"""


def _pooling_findings(path) -> dict:
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    return {result["name"]: [(f["key"], f["line"]) for f in result["findings"]
                             if "pooling runner" in f["message"]] for result in json.loads(r.stdout)["results"]}


def test_the_pooling_warning_points_at_the_key_that_picked_it(tmp_path):
    path = deployments_file(tmp_path, ENTRIES.format(folder=_st_folder(tmp_path)))
    found = _pooling_findings(path)
    # counted in ENTRIES by hand: line 1 is `deployments:`, by-runner's runner at 7, by-convert's convert at 15
    assert found["by-runner"] == [("runner", 7)] == [("runner", line_of(path, "runner: pooling", "by-runner"))]
    assert found["by-convert"] == [("convert", 15)]
    # --runner auto, a modules.json's Pooling module: the model's line (pooler_config never picks the runner)
    assert found["by-modules"] == [("model", 17)]


def test_the_annotation_carries_the_runner_line(tmp_path):
    path = deployments_file(tmp_path, ENTRIES.format(folder=_st_folder(tmp_path)))
    r = run_kvplan("check", "--file", path.name, cwd=tmp_path, env={"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": ""})
    assert r.returncode == 0, r.stderr
    notes = [n for n in r.stderr.splitlines() if n.startswith("::warning ") and "pooling runner" in n]
    assert any(n.startswith("::warning file=deployments.yaml,line=7::by-runner:") for n in notes), notes
    assert any(n.startswith("::warning file=deployments.yaml,line=15::by-convert:") for n in notes), notes


# ---- 3. --pooler-config names vLLM 0.11-0.15 ignore ----------------------------------------------------------------

@pytest.mark.parametrize("version, ignored", [
    ("0.11.0", ["seq_pooling_type", "typo", "use_activation"]), ("0.13.0", ["seq_pooling_type", "typo"]),
    ("0.14.1", ["typo"]),
    ("0.15.1", ["typo"]),  # 0.15 taken as 0.14.1: 0.14's fields, still ignored
])
def test_an_ignored_field_is_named_in_a_note(version, ignored):
    given = {"pooling_type": "LAST", "use_activation": True, "seq_pooling_type": "LAST", "typo": 1}
    if version >= "0.14":
        del given["pooling_type"]  # both pooling_type and seq_pooling_type are refused from 0.14
    model = json.loads(_estimate("Qwen/Qwen3-8B", "--engine", f"vllm=={version}", "--runner", "pooling",
                                 "--pooler-config", json.dumps(given)))["model"]
    notes = [rule for rule in model["rules"] if "ignores --pooler-config" in rule]
    assert len(notes) == 1, model["rules"]
    named = notes[0].split("--pooler-config field", 1)[1].split(":", 1)[0]
    assert sorted(re.findall(r"'([^']+)'", named)) == ignored
    assert notes[0].startswith(f"vLLM {version} ignores")


def test_no_note_without_an_unknown_name_and_a_refusal_from_016():
    model = json.loads(_estimate("Qwen/Qwen3-8B", "--engine", "vllm==0.14.1", "--runner", "pooling",
                                 "--pooler-config", '{"pooling_type": "MEAN", "dimensions": 8}'))["model"]
    assert not [rule for rule in model["rules"] if "ignores --pooler-config" in rule]
    refused = run_kvplan("estimate", "Qwen/Qwen3-8B", "--engine", "vllm==0.16.0", "--runner", "pooling",
                         "--pooler-config", '{"typo": 1}')
    assert refused.returncode == 2 and "refuses --pooler-config field 'typo'" in refused.stderr


def test_check_warns_at_the_pooler_config_line(tmp_path):
    path = deployments_file(tmp_path, "  - name: emb\n    model: Qwen/Qwen3-8B\n    tp: 1\n    gpu: H100\n"
                                      "    context: 32768\n    engine: vllm==0.14.1\n    runner: pooling\n"
                                      "    pooler_config:\n      pooling_type: MEAN\n      normalise: true\n")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 0, r.stderr  # a warning, not a failure
    findings = json.loads(r.stdout)["results"][0]["findings"]
    ignored = [f for f in findings if "ignores pooler_config field 'normalise'" in f["message"]]
    assert [(f["level"], f["key"], f["line"]) for f in ignored] == [("warning", "pooler_config", 9)]  # by hand
    text = run_kvplan("check", "--file", path, "--format", "csv").stdout
    assert "ignores pooler_config field 'normalise'" in next(csv.DictReader(io.StringIO(text)))["warnings"]


def _sdist_pooler_config(version: str):
    """vLLM `version`'s own PoolerConfig, its module loaded alone (its vllm imports stubbed as config/utils.py's
    `config` of that release is: the class unchanged)."""
    stubs = {name: types.ModuleType(name) for name in ("vllm", "vllm.config", "vllm.utils", "vllm.config.utils",
                                                        "vllm.logger", "vllm.utils.hashing")}
    stubs["vllm.config.utils"].config = lambda cls: cls
    stubs["vllm.logger"].init_logger = logging.getLogger
    stubs["vllm.utils.hashing"].safe_hash = lambda *args, **kwargs: hashlib.md5(*args)
    saved = {name: sys.modules.get(name) for name in stubs}
    sys.modules.update(stubs)
    try:
        spec = importlib.util.spec_from_file_location(f"pooler_{version}", SDISTS / f"vllm-{version}" / "vllm" /
                                                      "config" / "pooler.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
    return module.PoolerConfig


@pytest.mark.skipif(not SDISTS.is_dir(), reason="the unpacked vLLM sdists are not on this machine")
@pytest.mark.parametrize("version", ["0.11.0", "0.13.0", "0.14.1"])
def test_the_releases_own_class_drops_the_name(version):
    """arg_utils.py's parse (TypeAdapter(PoolerConfig).validate_json) on the release's own class: the unknown name is
    gone, the known one kept, nothing raised; kvplan names the same one."""
    from dataclasses import replace

    from pydantic import TypeAdapter

    from kvplan.engines.vllm_pooler_config import ignored_fields, pooler_config_choice
    from kvplan.model.sources import resolve

    text = '{"pooling_type": "MEAN", "pooling_typ": "CLS"}'
    parsed = TypeAdapter(_sdist_pooler_config(version)).validate_json(text)
    assert parsed.pooling_type == "MEAN" and not hasattr(parsed, "pooling_typ")
    spec = replace(resolve("Qwen/Qwen3-8B"), runner="pooling", pooler_config=pooler_config_choice(text))
    assert ignored_fields(spec, version) == ("pooling_typ",)
