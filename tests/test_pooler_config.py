"""vLLM's --pooler-config (engines/vllm_pooler_config.py): its pooling type before the Sentence Transformers module's
and the class's, on the pooling runner and (as vLLM keeps it) the generate runner; the other fields' names by
release; the refusals, one line each.

Independent sources: tests/data/vllm_pooler_config.json, vLLM 0.34.0's own parser (TypeAdapter(PoolerConfig)
.validate_json, engine/arg_utils.py 0.34.0:368-373), ModelConfig and EngineArgs on Qwen3-8B's config.json
(benchmarks/vllm_reference/pooler_config.py; no device, so EngineArgs' 2,048-token tier, an L40S's in kvplan); the
PoolerConfig field names of every unpacked release (config/pooler.py, read with ast where the sdists are present);
and the lines cited at each test, read by hand.
"""

import ast
import json
from dataclasses import replace
from pathlib import Path

import pytest

from kvplan import api
from kvplan.engines.vllm_pooler_config import (FIELDS, pooler_config_choice, pooler_config_refusal, release_fields,
                                               user_pooling_types)
from kvplan.engines.vllm_pooling_budget import incremental_prefill
from kvplan.errors import FieldError
from tests.conftest import deployments_file, load_yaml, one_error_line, run_kvplan

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = json.loads((ROOT / "tests" / "data" / "vllm_pooler_config.json").read_text())
QWEN3_8B = dict(load_yaml((ROOT / "model_specs" / "Qwen--Qwen3-8B.yaml").read_text())["config"])
TRANSFORMER = {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}
POOLING = {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
MEAN = {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True, "pooling_mode_lasttoken": False}
SDISTS = Path("/tmp/s52/sd")


def _folders(tmp_path) -> dict:
    """The reference script's two folders: Qwen3-8B's config.json, and the same beside a MEAN Pooling module."""
    folders = {"plain": tmp_path / "plain", "st_mean": tmp_path / "st_mean"}
    for folder in folders.values():
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(QWEN3_8B))
    (folders["st_mean"] / "modules.json").write_text(json.dumps([TRANSFORMER, POOLING]))
    (folders["st_mean"] / "1_Pooling").mkdir()
    (folders["st_mean"] / "1_Pooling" / "config.json").write_text(json.dumps(MEAN))
    return folders


def _spec(folder, runner="auto", pooler_config=None):
    from kvplan.model.sources import resolve

    return replace(resolve(str(folder)), runner=runner, pooler_config=pooler_config_choice(pooler_config))


def _plan(*args, context: int = 32_768) -> dict:
    r = run_kvplan("estimate", "Qwen/Qwen3-8B", "-c", str(context), "--gpu", "H100", "--format", "json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["plans"][0]


# ---- 1. vLLM 0.34.0's own ModelConfig / EngineArgs -----------------------------------------------------------------

RUN = [case for case in REFERENCE["cases"] if "refused" not in case]
REFUSED = [case for case in REFERENCE["cases"] if "refused" in case]


def test_the_reference_is_vllm_034s():
    assert REFERENCE["vllm"] == "0.34.0" and len(RUN) == 12 and len(REFUSED) == 7


@pytest.mark.parametrize("case", RUN, ids=lambda c: c["name"])
def test_settings_match_vllm_034s_own(tmp_path, case):
    """Chunked prefill, prefix caching and `vllm serve`'s batched tokens as vLLM 0.34.0 set them; among them the
    brief's cases: Qwen3ForCausalLM --runner pooling with MEAN (off, 32,768) and LAST (on, 2,048), and a modules.json
    MEAN model overridden to LAST (on): the user's type wins (config/model.py 0.34.0:807-813)."""
    from kvplan.engines.vllm_engine import VllmEngine
    from kvplan.plan.catalog import find_gpu

    spec = _spec(_folders(tmp_path)[case["folder"]], case["runner"], case["pooler_config"])
    assert pooler_config_refusal(spec, "0.34.0") is None
    assert incremental_prefill(spec, "0.34.0") is case["enable_chunked_prefill"] is case["enable_prefix_caching"]
    settings = VllmEngine("0.34.0").settings(REFERENCE["max_model_len"], find_gpu("L40S"), spec=spec)
    assert (settings.prefix_caching, settings.max_num_batched_tokens) == (case["enable_prefix_caching"],
                                                                          case["max_num_batched_tokens"])
    user_seq, user_tok = user_pooling_types(spec, "0.34.0")
    if case["runner_type"] == "generate":  # vLLM keeps the user's object as given, merging nothing
        assert (user_seq, user_tok) == (case["seq_pooling_type"], case["tok_pooling_type"])
    else:
        assert user_seq in (None, case["seq_pooling_type"]) and user_tok in (None, case["tok_pooling_type"])


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c["name"])
def test_what_vllm_034_refuses_is_refused(tmp_path, case):
    """Each pooler config vLLM 0.34.0's parser refuses (a pydantic ValidationError) is refused by kvplan too."""
    assert case["refused"] == "ValidationError"
    try:
        spec = _spec(_folders(tmp_path)["plain"], case["runner"], case["pooler_config"])
    except FieldError as exc:
        assert case["name"] == "not_an_object" and exc.field == "pooler_config"
        return
    said = pooler_config_refusal(spec, "0.34.0")
    assert said is not None and "\n" not in said
    if case["name"] in ("bad_type", "lower_case", "seq_given_tok"):  # vLLM: "Input should be 'CLS', 'LAST' or ..."
        assert "CLS, LAST, MEAN" in said
    if case["name"] == "unknown_field":  # "pooling_typ  Unexpected keyword argument"
        assert "'pooling_typ'" in said


# ---- 2. the field names by release ---------------------------------------------------------------------------------

def _source_fields(version: str) -> tuple:
    tree = ast.parse((SDISTS / f"vllm-{version}" / "vllm" / "config" / "pooler.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "PoolerConfig")
    return tuple(n.target.id for n in cls.body if isinstance(n, ast.AnnAssign))


def test_the_fields_are_vllm_034s():
    assert sorted(release_fields("0.34.0")) == REFERENCE["fields"]


@pytest.mark.skipif(not SDISTS.is_dir(), reason="the unpacked vLLM sdists are not on this machine")
def test_the_fields_of_every_release_read():
    versions = sorted((p.name[len("vllm-"):] for p in SDISTS.glob("vllm-0.*") if p.is_dir()),
                      key=lambda v: tuple(map(int, v.split("."))))
    versions = [v for v in versions if tuple(map(int, v.split("."))) >= (0, 11)]
    assert len(versions) >= 30
    for version in versions:
        assert sorted(release_fields(version)) == sorted(_source_fields(version)), version
    assert [row[0] for row in FIELDS] == sorted((row[0] for row in FIELDS), reverse=True)


@pytest.mark.parametrize("version, refused", [("0.11.0", False), ("0.13.0", False), ("0.14.1", False),
                                              ("0.16.0", True), ("0.34.0", True)])
def test_an_unknown_field_by_release(tmp_path, version, refused):
    """Up to 0.14.1 PoolerConfig is a bare pydantic dataclass (config/pooler.py 0.14.0:6, :22), which ignores a name
    it lacks (pydantic's default extra="ignore"); from 0.16.0 @config forbids it (config/utils.py 0.16.0:55)."""
    spec = _spec(_folders(tmp_path)["plain"], "pooling", '{"pooling_typ": "MEAN"}')
    assert (pooler_config_refusal(spec, version) is not None) is refused
    if not refused:  # ignored: the class's LAST stays, chunked prefill on
        assert incremental_prefill(spec, version) is True


def test_seq_pooling_type_before_014_is_ignored(tmp_path):
    """0.13.0 has no seq_pooling_type (config/pooler.py 0.13.0:22, one pooling_type): dropped, LAST stays (on)."""
    spec = _spec(_folders(tmp_path)["plain"], "pooling", '{"seq_pooling_type": "MEAN"}')
    assert pooler_config_refusal(spec, "0.13.0") is None and incremental_prefill(spec, "0.13.0") is True
    assert incremental_prefill(spec, "0.14.0") is False  # config/model.py 0.14.0:1570-1580: MEAN off


# ---- 3. the pooling type by release --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, by_release", [
    ("MEAN", {"0.11.0": False, "0.12.0": False, "0.13.0": False, "0.14.0": False, "0.34.0": False}),
    ("LAST", {"0.11.0": True, "0.12.0": True, "0.13.0": True, "0.14.0": True, "0.34.0": True}),
    # 0.11.0 arg_utils.py:1564-1567 last only; 0.12.0 config/model.py:1783-1784 all off; 0.13.0 :1694-1703 all on;
    # 0.14 on: ALL is a token type, STEP off (0.34.0 :2250-2252)
    ("ALL", {"0.11.0": False, "0.12.0": False, "0.13.0": True, "0.14.0": True, "0.34.0": True}),
    ("STEP", {"0.11.0": False, "0.12.0": False, "0.13.0": False, "0.14.0": False, "0.34.0": False}),
])
def test_the_users_type_on_the_pooling_runner(tmp_path, kind, by_release):
    spec = _spec(_folders(tmp_path)["plain"], "pooling", {"pooling_type": kind})
    for version, on in by_release.items():
        assert pooler_config_refusal(spec, version) is None
        assert incremental_prefill(spec, version) is on, version


def test_the_users_type_beats_the_module_before_014_too(tmp_path):
    """0.11.0-0.13.0 merge the module's pooling_type only where the user's is None (config/model.py 0.11.0:566-571)."""
    spec = _spec(_folders(tmp_path)["st_mean"], "auto", {"pooling_type": "LAST"})
    assert incremental_prefill(replace(spec, pooler_config=None), "0.13.0") is False  # the module's MEAN
    assert incremental_prefill(spec, "0.13.0") is True


@pytest.mark.parametrize("version, said", [
    ("0.11.0", "LAST, ALL, CLS, STEP, MEAN"),  # PoolingType (model_executor/layers/pooler.py 0.11.0:32-38)
    ("0.12.0", "LAST, ALL, CLS, STEP, MEAN"),  # PoolingTypeStr (config/pooler.py 0.12.0:14)
    ("0.14.0", "CLS, LAST, MEAN, ALL, STEP"),  # SequencePoolingType | TokenPoolingType (0.14.0:14-18, :26)
])
def test_an_invalid_type_names_the_releases(version, said):
    r = run_kvplan("estimate", "Qwen/Qwen3-8B", "--runner", "pooling", "--engine", f"vllm=={version}",
                   "--pooler-config", '{"pooling_type": "MAX"}')
    line = one_error_line(r)
    assert said in line and "'MAX'" in line and version in line


def test_tok_pooling_type_takes_token_types_only(tmp_path):
    spec = _spec(_folders(tmp_path)["plain"], "pooling", '{"tok_pooling_type": "MEAN"}')
    assert "ALL, STEP" in pooler_config_refusal(spec, "0.34.0")


def test_both_alias_and_field_is_refused_from_014(tmp_path):
    """config/pooler.py 0.14.0:112-120: "Cannot set both `pooling_type` and `tok_pooling_type`"."""
    spec = _spec(_folders(tmp_path)["plain"], "pooling", '{"pooling_type": "STEP", "tok_pooling_type": "ALL"}')
    assert "`tok_pooling_type`" in pooler_config_refusal(spec, "0.14.0")
    assert pooler_config_refusal(spec, "0.13.0") is None  # 0.13 has no tok_pooling_type: ignored


# ---- 4. the generate runner ----------------------------------------------------------------------------------------

def test_the_generate_runner_by_release(tmp_path):
    """vLLM keeps the user's object on the generate runner: 0.12.0's is_chunked_prefill_supported calls .lower() on
    its pooling_type (config/model.py 0.12.0:1774-1783: None stops it); 0.11.x's VllmConfig turns chunked prefill off
    unless "last", in any case (config/__init__.py 0.11.0:405-410), keeping the batched tokens (not modelled)."""
    plain = _folders(tmp_path)["plain"]
    assert "calls .lower() on None" in pooler_config_refusal(_spec(plain, "generate", {"dimensions": 8}), "0.12.0")
    assert pooler_config_refusal(_spec(plain, "generate", {"dimensions": 8}), "0.14.0") is None
    assert "does not plan" in pooler_config_refusal(_spec(plain, "generate", {"pooling_type": "MEAN"}), "0.11.0")
    lower_last = _spec(plain, "generate", {"pooling_type": "last"})
    assert pooler_config_refusal(lower_last, "0.11.0") is None and incremental_prefill(lower_last, "0.11.0") is True
    mean = _spec(plain, "generate", {"pooling_type": "MEAN"})
    assert [incremental_prefill(mean, v) for v in ("0.12.0", "0.13.0", "0.20.0")] == [False, False, False]
    assert incremental_prefill(_spec(plain, "generate"), "0.34.0") is True


def test_the_figures_before_and_after():
    """Qwen3-8B at 30K on an H100: MEAN makes vLLM's batched tokens the max model length (pooling_mean: 30,720),
    which the profile pass then holds: fewer requests, on both runners. 30,720 tokens since session 67 (32,768
    before): with the 0.705 GiB graph term the pooling runner holds 12 at 32K with MEAN or without.
    By hand, a 16-token block of 36 layers x 2 x 8 KV heads x 128 x 2 B = 2,359,296 bytes, 1,920 a sequence, kvplan's
    forward peak 102,400 B a token; resident = (blocks - 1 - 1,920) // 1,920 + 1:
    generate 78,216,094,024 - weights 16,381,470,720 - peak 8,192 x 102,400 - non-torch 536,870,912 - runner state
    679,583,744 - graphs 756,987,985 = 59,022,319,863 -> 25,016 blocks, 13; with MEAN the peak is 30,720 x 102,400:
    56,715,452,663 -> 24,039, 12. Pooling (weights 15,136,811,008 without the LM head, no runner state):
    60,946,563,319 -> 25,832, 13; with MEAN 58,639,696,119 -> 24,854, 12."""
    generate, mean_generate = _plan(context=30_720), _plan("--pooler-config", '{"pooling_type": "MEAN"}',
                                                           context=30_720)
    pooling = _plan("--runner", "pooling", context=30_720)
    mean_pooling = _plan("--runner", "pooling", "--pooler-config", '{"pooling_type": "MEAN"}', context=30_720)
    assert [p["engine"]["max_num_batched_tokens"] for p in (generate, mean_generate, pooling, mean_pooling)] == [
        8_192, 30_720, 8_192, 30_720]
    assert [p["engine"]["num_gpu_blocks"] for p in (generate, mean_generate, pooling, mean_pooling)] == [
        25_016, 24_039, 25_832, 24_854]
    assert [p["max_concurrency"] for p in (generate, mean_generate, pooling, mean_pooling)] == [13, 12, 13, 12]
    assert mean_pooling["max_concurrency"] < pooling["max_concurrency"]
    assert mean_generate["max_concurrency"] < generate["max_concurrency"]
    assert mean_generate["engine"]["runner"] == "generate"
    assert _plan("--pooler-config", '{"dimensions": 8}', context=30_720)["max_concurrency"] == \
        generate["max_concurrency"]


# ---- 5. the flag's wiring ------------------------------------------------------------------------------------------

def test_an_unknown_field_is_one_line_naming_it():
    line = one_error_line(run_kvplan("estimate", "Qwen/Qwen3-8B", "--pooler-config", '{"pooling_typ": "MEAN"}'))
    assert "'pooling_typ'" in line and "seq_pooling_type" in line


def test_not_an_object_and_engine_none():
    assert "JSON object" in one_error_line(run_kvplan("estimate", "Qwen/Qwen3-8B", "--pooler-config", "MEAN"))
    line = one_error_line(run_kvplan("estimate", "Qwen/Qwen3-8B", "--engine", "none", "--pooler-config", "{}"))
    assert "--pooler-config" in line and "with vLLM only" in line


def test_before_011_it_is_not_read():
    line = one_error_line(run_kvplan("estimate", "Qwen/Qwen3-8B", "--engine", "vllm==0.10.2", "--pooler-config",
                                     '{"pooling_type": "LAST"}'))
    assert "from 0.11 on" in line


def test_check_and_api_agree_with_estimate(tmp_path):
    mean = {"pooling_type": "MEAN"}
    plans = api.estimate("Qwen/Qwen3-8B", gpu="H100", max_model_len=32_768, runner="pooling", pooler_config=mean)
    assert plans == api.estimate("Qwen/Qwen3-8B", gpu="H100", max_model_len=32_768, runner="pooling",
                                 pooler_config=json.dumps(mean))
    checked = api.check("Qwen/Qwen3-8B", tensor_parallel_size=1, gpu="H100", max_model_len=32_768, runner="pooling",
                        pooler_config=mean)
    assert checked[0]["max_concurrency"] == plans[0].max_concurrency
    file = deployments_file(tmp_path, "  - name: emb\n    model: Qwen/Qwen3-8B\n    tp: 1\n    gpu: H100\n"
                                      "    context: 32768\n    runner: pooling\n    pooler_config:\n"
                                      "      pooling_type: MEAN\n")
    result = run_kvplan("check", "--file", file, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert f'"kv_budget_bytes_per_gpu": {plans[0].kv_budget_bytes_per_gpu}' in result.stdout
    cli = run_kvplan("check", "Qwen/Qwen3-8B", "--tp", "1", "--gpu", "H100", "-c", "32768", "--runner",
                     "pooling", "--pooler-config", json.dumps(mean), "--format", "json")
    assert cli.returncode == 0 and f'"max_concurrency": {plans[0].max_concurrency}' in cli.stdout
    file.write_text(file.read_text().replace("pooling_type: MEAN", "pooling_type: MAX"))
    bad = run_kvplan("check", "--file", file, "--format", "json")
    assert bad.returncode != 0 and "CLS, LAST, MEAN, ALL, STEP" in bad.stdout + bad.stderr


def test_a_remedy_never_names_a_release_that_refuses_it():
    """The releases at which the flag's rules change are among those a remedy tries; each meets the refusal through
    configuration_refusal (vllm_engine._pooler_config_refusal), as the release asked does."""
    from kvplan.engines.vllm_engine import releases

    assert {"0.11.0", "0.12.0", "0.14.0", "0.16.0"} <= set(releases())


def test_check_refuses_it_under_engine_none_as_estimate_does():
    """The ideal engine has no chunked-prefill rule: estimate and check refuse --pooler-config under --engine none."""
    for command in (("estimate", "Qwen/Qwen3-8B"), ("check", "Qwen/Qwen3-8B", "--tp", "1")):
        line = one_error_line(run_kvplan(*command, "--gpu", "h100", "-c", "8192", "--engine", "none",
                                         "--pooler-config", '{"dimensions": 8}'))
        assert "--pooler-config is modelled with vLLM only" in line


def test_a_deployments_value_json_cannot_hold_is_one_line(tmp_path):
    """YAML reads `2024-01-01` as a date, which no JSON (vLLM's form of the flag) holds: one line, exit 2."""
    path = tmp_path / "deployments.yaml"
    path.write_text("deployments:\n  - name: a\n    model: Qwen/Qwen3-8B\n    gpu: h100\n    tp: 1\n    context: 8192\n"
                    "    runner: pooling\n    pooler_config: {task: 2024-01-01}\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert "field 'pooler_config' must be vLLM's form, a JSON object" in line
