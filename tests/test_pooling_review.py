"""Session 57 (poolfix): the Sentence Transformers Pooling module's own config.json, its pooling type by release, and
the review's nits (modules.json read only as far as vLLM reads it, check's pooling note, --engine none's head,
Lfm2BidirectionalModel).

Read by hand:
- transformers_utils/config.py get_pooling_config: the Pooling item's `"{}/config.json".format(pooling["path"])`
  read with get_hf_file_to_dict (None where there is no file: repo_utils.py 0.34.0:497-522). 0.11.0-0.13.0: the
  first key set to true, through get_pooling_config_name, which raises NotImplementedError for a name outside LAST /
  ALL / CLS / STEP / MEAN; no `or {}`, so no file is AttributeError (0.11.0:751-762, :765-782; 0.13.0:774-786).
  0.14.0-0.29.0: every key set to true, parse_pooling_type, a CLS / LAST / MEAN sets seq_pooling_type and ALL /
  STEP tok_pooling_type, the last one read winning; others skipped; a missing file reads as {} (0.14.0:799-813).
  0.30.0 on: also a string "pooling_mode" (0.30.0:946-949, 0.34.0:1113-1116).
- config/model.py: those values are set on the pooler config before the class's defaults fill what is unset
  (0.11.0:566-575, 0.14.0:537-549, 0.34.0:807-821); attn_type reads the class's own default (CLS: encoder_only,
  0.12.0:1753-1760, 0.34.0:2217-2226); chunked prefill and prefix caching: 0.11.0 arg_utils.py:1563-1567 pooling_type
  "last" only; 0.12.0 config/model.py:1772-1798 off for all / mean / step / cls; 0.13.0 :1683-1707 off for mean /
  step / cls; 0.14.0:1567-1600 and 0.34.0:2237-2309 off for seq MEAN / CLS or tok STEP.
- modules.json: `next(item for item in modules_dict if item["type"] ...)` twice, up to the first Pooling then the
  first Normalize module (0.11.0:741-748, 0.34.0:1086-1100): an empty top level iterates nothing; `5 in {...}` is
  False; a list "type" is unhashable from 0.30 (a set lookup).

Run (vLLM 0.34.0's own ModelConfig and EngineArgs, as benchmarks/vllm_reference/pooling_defaults.py's case(), on
folders with Qwen3-8B's config.json, a modules.json [Transformer, Pooling at 1_Pooling] and 1_Pooling/config.json,
max_model_len 32,768, no device: the 2,048-token tier), VLLM_034 below: seq_pooling_type, enable_chunked_prefill
(= enable_prefix_caching in every row), max_num_batched_tokens. get_pooling_config itself on such folders:
{"pooling_mode_mean_sqrt_len_tokens": true} -> MEAN, {"pooling_mode_max_tokens": true} -> no type (vLLM warns and
takes the class's), {"pooling_mode": "mean"} -> MEAN, {"pooling_mode_mean_tokens": true,
"pooling_mode_lasttoken": true} -> LAST, no 1_Pooling/config.json -> no type.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.conftest import load_yaml, one_error_line, run_hub, run_kvplan
from tests.fake_hub import cached_repo, hub_env, repo_handler, serving
from tests.hub_configs import QWEN2_5_7B

ROOT = Path(__file__).resolve().parents[1]
QWEN3_8B = dict(load_yaml((ROOT / "model_specs" / "Qwen--Qwen3-8B.yaml").read_text())["config"])
TRANSFORMER = {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}
POOLING = {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
NEWER_POOLING = {**POOLING, "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling"}
NORMALIZE = {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
MEAN = {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True, "pooling_mode_lasttoken": False,
        "include_prompt": True}
LAST = {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False, "pooling_mode_lasttoken": True,
        "include_prompt": True}
CLS = {"pooling_mode_cls_token": True}
MAX = {"pooling_mode_max_tokens": True, "include_prompt": True}
NAMED_MEAN = {"pooling_mode": "mean", "include_prompt": True}
SQRT = {"pooling_mode_mean_tokens": False, "pooling_mode_mean_sqrt_len_tokens": True}
MEAN_THEN_LAST = {"pooling_mode_mean_tokens": True, "pooling_mode_lasttoken": True}
NO_FILE = None
# (architecture, model_type, 1_Pooling/config.json, seq type, chunked prefill, batched tokens): vLLM 0.34.0 run
VLLM_034 = [
    ("Qwen3ForCausalLM", "qwen3", MEAN, "MEAN", False, 32_768),
    ("Qwen3ForCausalLM", "qwen3", LAST, "LAST", True, 2_048),
    ("Qwen3ForCausalLM", "qwen3", CLS, "CLS", False, 32_768),
    ("Qwen3ForCausalLM", "qwen3", MAX, "LAST", True, 2_048),
    ("Qwen3ForCausalLM", "qwen3", NO_FILE, "LAST", True, 2_048),
    ("Qwen3Model", "qwen3", NAMED_MEAN, "MEAN", False, 32_768),
    ("Qwen2ForProcessRewardModel", "qwen2", LAST, "LAST", False, 32_768),  # tok STEP, the class's
]
GiB = 2**30


def _folder(tmp_path, name, pooling, modules=(TRANSFORMER, POOLING), config=None):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config or QWEN2_5_7B))
    (folder / "modules.json").write_text(json.dumps(list(modules)) if not isinstance(modules, str) else modules)
    if pooling is not None:
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return folder


def _qwen3(tmp_path, name, architecture, model_type, pooling):
    return _folder(tmp_path, name, pooling, config=dict(QWEN3_8B, architectures=[architecture],
                                                        model_type=model_type))


def _estimate(model, *args, env=None) -> dict:
    r = run_kvplan("estimate", model, "--format", "json", *args, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _peak_source(result: dict) -> str:
    return next(t["source"] for t in result["plans"][0]["budget"]["terms"] if t["name"] == "profile_peak")


# ---- 1. the Pooling module's pooling type --------------------------------------------------------------------------

@pytest.mark.parametrize("row", VLLM_034, ids=lambda r: f"{r[0]}-{r[3]}-{r[4]}")
def test_settings_match_vllm_034s_own(tmp_path, row):
    """An L40S (48 GB) takes EngineArgs' 2,048 / 256 tier, as vLLM with no device does (pooling_defaults.py)."""
    from kvplan.engines.vllm_engine import VllmEngine
    from kvplan.engines.vllm_pooling import st_pooling_types
    from kvplan.engines.vllm_pooling_budget import incremental_prefill
    from kvplan.model.sources import resolve
    from kvplan.plan.catalog import find_gpu

    architecture, model_type, pooling, seq, chunked, tokens = row
    spec = resolve(str(_qwen3(tmp_path, "m", architecture, model_type, pooling)))
    named = st_pooling_types(spec, "0.34.0")[0]
    assert (named or "LAST") == seq  # the class's LAST where the file names no sequence type
    assert incremental_prefill(spec, "0.34.0") is chunked
    settings = VllmEngine("0.34.0").settings(32_768, find_gpu("L40S"), spec=spec)
    assert (settings.prefix_caching, settings.max_num_batched_tokens) == (chunked, tokens)


def test_a_mean_pooling_embedder_profiles_the_whole_length_on_an_h100(tmp_path):
    """The review's case: a MEAN-pooling decoder embedder (Qwen2.5-7B's config as gte-Qwen2's layout) at -c 32768 on
    an H100, vLLM 0.32.0: chunked prefill off, so max_num_batched_tokens is max_model_len (32,768, not the H100's
    8,192) and the profile forwards 32,768 tokens: 3.14 GiB less KV cache (the forward over 4x the tokens), 31
    sequences, not 32. The same folder pooling LAST keeps 8,192. By hand, a 16-token block of 28 layers x 2 x 4 KV
    heads x 128 x 2 B = 917,504 bytes, 2,048 a sequence: MEAN 58,284,702,967 // 917,504 = 63,525 blocks, (63,524 -
    2,048) // 2,048 + 1 = 31; LAST 61,656,923,383 // 917,504 = 67,200 blocks, 32 (30 and 32 with the 1.25 GiB graph
    term before session 67: 585,189,295 bytes less each)."""
    mean = _estimate(_folder(tmp_path, "mean", MEAN), "--gpu", "h100", "-c", "32768", "--engine", "vllm==0.32.0")
    last = _estimate(_folder(tmp_path, "last", LAST), "--gpu", "h100", "-c", "32768", "--engine", "vllm==0.32.0")
    assert "forward over 32768 tokens" in _peak_source(mean) and "forward over 8192 tokens" in _peak_source(last)
    kv = [r["plans"][0]["budget"]["kv_budget_bytes_per_gpu"] for r in (last, mean)]
    assert round((kv[0] - kv[1]) / GiB, 2) == 3.14
    assert (last["plans"][0]["max_concurrency"], mean["plans"][0]["max_concurrency"]) == (32, 31)


@pytest.mark.parametrize("pooling, by_release", [
    # 0.11 reads pooling_type "last" only; 0.12 keeps LAST only; 0.13 LAST / ALL; 0.14 on: off for MEAN / CLS
    (MEAN, {"0.11.0": False, "0.12.0": False, "0.13.0": False, "0.14.0": False, "0.29.0": False, "0.34.0": False}),
    (LAST, {"0.11.0": True, "0.12.0": True, "0.13.0": True, "0.14.0": True, "0.29.0": True, "0.34.0": True}),
    # mean_sqrt_len parses as MEAN in every release (split at the first "_")
    (SQRT, {"0.11.0": False, "0.13.0": False, "0.14.0": False, "0.34.0": False}),
    # the string "pooling_mode" from 0.30 only: before, no type, the class's LAST
    (NAMED_MEAN, {"0.11.0": True, "0.13.0": True, "0.14.0": True, "0.29.0": True, "0.30.0": False, "0.34.0": False}),
    # two set: the first (MEAN) up to 0.13, the last (LAST) from 0.14
    (MEAN_THEN_LAST, {"0.11.0": False, "0.13.0": False, "0.14.0": True, "0.34.0": True}),
    (CLS, {"0.11.0": False, "0.12.0": False, "0.13.0": False, "0.14.0": False, "0.34.0": False}),
], ids=["mean", "last", "sqrt", "named", "mean-then-last", "cls"])
def test_the_pooling_type_by_release(tmp_path, pooling, by_release):
    from kvplan.engines.vllm_pooling_budget import incremental_prefill
    from kvplan.model.sources import resolve

    spec = resolve(str(_folder(tmp_path, "m", pooling)))  # Qwen2ForCausalLM: the class pools LAST
    assert {version: incremental_prefill(spec, version) for version in by_release} == by_release


def test_the_file_overrides_a_class_default_but_not_a_cls_class(tmp_path):
    """GritLM pools MEAN (gritlm.py 0.20.0:199): a LAST Pooling module makes it LAST, so on from 0.14 (0.13: LAST
    kept too). Qwen2ForRewardModel's ALL is off in 0.12 (all) and on with a LAST module. A class whose default is
    CLS builds encoder-only attention whatever the module names (attn_type reads the class's default)."""
    from types import SimpleNamespace

    from kvplan.engines.vllm_pooling_budget import incremental_prefill
    from kvplan.model.sources import resolve

    def spec(architecture, pooling):
        listed = (POOLING["type"],) if pooling is not None else ()
        modes = (tuple((k, v) for k, v in pooling.items() if v is True),) if pooling is not None else ()
        return SimpleNamespace(name="m", architecture=architecture, registered_architecture=architecture,
                               st_pooling=listed, st_pooling_modes=modes)

    assert not incremental_prefill(spec("GritLM", None), "0.34.0")
    assert incremental_prefill(spec("GritLM", LAST), "0.34.0") and incremental_prefill(spec("GritLM", LAST), "0.13.0")
    assert not incremental_prefill(spec("Qwen2ForRewardModel", None), "0.12.0")
    assert incremental_prefill(spec("Qwen2ForRewardModel", LAST), "0.12.0")
    assert not incremental_prefill(spec("ColQwen3", LAST), "0.34.0")
    # the spec a folder gives carries the same fields
    folder_spec = resolve(str(_folder(tmp_path, "m", LAST)))
    assert folder_spec.st_pooling_modes == ((("pooling_mode_lasttoken", True), ("include_prompt", True)),)


def test_a_newer_type_module_is_read_from_0_30(tmp_path):
    """Qwen2Model is pooling by its suffix in every release; its modules.json lists the newer Pooling type only, which
    0.29 does not look for (its class's LAST: on) and 0.30 does (MEAN: off)."""
    from kvplan.engines.vllm_pooling_budget import incremental_prefill
    from kvplan.model.sources import resolve

    config = dict(QWEN2_5_7B, architectures=["Qwen2Model"])
    spec = resolve(str(_folder(tmp_path, "m", MEAN, modules=(TRANSFORMER, NEWER_POOLING), config=config)))
    assert incremental_prefill(spec, "0.29.0") and not incremental_prefill(spec, "0.30.0")


def test_a_generating_model_is_untouched(tmp_path):
    """No Pooling module (or a release that does not look for its type, on a generating class): the generate runner,
    whatever a 1_Pooling/config.json beside it says."""
    from kvplan.engines.vllm_pooling_budget import incremental_prefill
    from kvplan.model.sources import resolve

    spec = resolve(str(_folder(tmp_path, "m", MEAN, modules=(TRANSFORMER, NORMALIZE))))
    assert spec.st_pooling == () and spec.st_pooling_modes == ()
    assert all(incremental_prefill(spec, v) for v in ("0.11.0", "0.34.0"))
    newer = resolve(str(_folder(tmp_path, "n", MEAN, modules=(TRANSFORMER, NEWER_POOLING))))
    assert incremental_prefill(newer, "0.29.0") and not incremental_prefill(newer, "0.30.0")


@pytest.mark.parametrize("engine", ["vllm==0.11.0", "vllm==0.12.0", "vllm==0.13.0"])
@pytest.mark.parametrize("pooling, says", [
    (NO_FILE, "has no config.json, which vLLM {v} reads for its pooling type"),
    (MAX, "names 'pooling_mode_max_tokens' first, pooling type MAX, which vLLM {v} does not know"),
    ({"pooling_mode_cls_token": False, "include_prompt": True}, "names 'include_prompt' first, pooling type INCLUDE"),
], ids=["no-file", "max", "include-prompt"])
def test_0_11_to_0_13_stop_on_the_file(tmp_path, engine, pooling, says):
    """vLLM 0.11-0.13 raise at start-up (AttributeError on None.items(); NotImplementedError): one line, exit 2, in
    estimate and check; 0.14 starts (the class's LAST)."""
    version = engine.split("==")[1]
    folder = _folder(tmp_path, "m", pooling)
    line = one_error_line(run_kvplan("estimate", folder, "--gpu", "h100", "-c", "8192", "--engine", engine))
    assert says.format(v=version) in line, line
    deployments = tmp_path / "deployments.yaml"
    deployments.write_text(f"deployments:\n  - name: gte\n    model: {folder}\n    tp: 1\n    gpu: H100\n"
                           f"    context: 8192\n    engine: {engine}\n")
    r = run_kvplan("check", "--file", deployments)
    assert r.returncode == 2 and says.format(v=version) in r.stderr, r.stdout + r.stderr
    assert _estimate(folder, "--gpu", "h100", "-c", "8192", "--engine", "vllm==0.14.0")


def test_a_malformed_pooling_config_is_one_line(tmp_path):
    """A non-empty array has no .items() in any release; an empty one reads as none (`or {}` from 0.14)."""
    folder = _folder(tmp_path, "m", ["mean"])
    line = one_error_line(run_kvplan("estimate", folder, "--gpu", "h100", "-c", "8192"))
    assert "1_Pooling/config.json in" in line and "must be a JSON object" in line and "got an array" in line, line
    assert _estimate(_folder(tmp_path, "e", []), "--gpu", "h100", "-c", "8192")


# ---- the Hub -------------------------------------------------------------------------------------------------------

@pytest.fixture
def hub():
    handler = repo_handler({})
    with serving(handler) as endpoint:
        yield handler, endpoint


def test_the_hub_repos_pooling_config_is_read(hub, tmp_path):
    handler, endpoint = hub
    handler.hold({"config.json": QWEN2_5_7B, "modules.json": [TRANSFORMER, POOLING], "1_Pooling/config.json": MEAN})
    r = run_hub("estimate", "acme/gte", "--gpu", "h100", "-c", "32768", "--format", "json",
                      env=hub_env(tmp_path, endpoint))
    assert r.returncode == 0, r.stderr
    assert "forward over 32768 tokens" in _peak_source(json.loads(r.stdout))


def _closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_a_hub_that_cannot_be_asked_for_it_leaves_a_note(tmp_path):
    """modules.json in the cache, the module's config.json not: the Hub cannot be reached, so the plan says so and
    takes the class's type (vLLM's `or {}` when the download fails, 0.14 on)."""
    cached_repo(tmp_path, "acme/gte", {"config.json": QWEN2_5_7B, "modules.json": [TRANSFORMER, POOLING]})
    r = run_hub("estimate", "acme/gte", "--gpu", "h100", "-c", "32768", "--format", "json",
                      env=hub_env(tmp_path, _closed_port()))
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert "forward over 8192 tokens" in _peak_source(result)
    assert any("could not be asked for the repo's Sentence Transformers Pooling module's 1_Pooling/config.json (it "
               "could not be reached)" in rule for rule in result["model"]["rules"]), result["model"]["rules"]


# ---- 2. nits -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("modules", ["{}", '""', "[]"], ids=["object", "string", "array"])
def test_an_empty_top_level_is_no_pooling_module(tmp_path, modules):
    """vLLM iterates nothing: get_pooling_config returns None, the architecture's runner (generate)."""
    result = _estimate(_folder(tmp_path, "m", None, modules=modules), "--gpu", "h100", "-c", "8192")
    assert not any("pooling runner" in rule for rule in result["model"]["rules"])


@pytest.mark.parametrize("modules", [
    [{"idx": 0, "type": 5}, POOLING],  # `5 in {...}` / `5 == "..."`: no match, no error
    [TRANSFORMER, POOLING, {k: v for k, v in POOLING.items() if k != "path"}],  # a second Pooling: never read
    [TRANSFORMER, POOLING, NORMALIZE, "junk"],  # past both scans' first matches
], ids=["number-type", "second-pooling-without-path", "after-the-scans"])
def test_what_vllm_does_not_read_is_not_refused(tmp_path, modules):
    result = _estimate(_folder(tmp_path, "m", LAST, modules=modules), "--gpu", "h100", "-c", "8192")
    assert any("pooling runner" in rule for rule in result["model"]["rules"])


@pytest.mark.parametrize("modules, says", [
    ([{"idx": 0, "type": ["x"]}, POOLING], "its item 0 has a \"type\" that is an array, which a set lookup refuses "
                                           "(start-up stops there on vLLM 0.30 and later)"),
    ([NEWER_POOLING, {"type": "sentence_transformers.base.modules.normalize.Normalize"}, 7],
     "its item 2 is a number (start-up stops there on vLLM 0.11-0.29)"),  # 0.29 scans on for its Normalize name
    ([TRANSFORMER, NORMALIZE, 7], "its item 2 is a number (start-up stops there on vLLM)"),
], ids=["unhashable-type", "old-scan-reads-on", "no-pooling-scans-all"])
def test_what_stops_some_release_stays_one_line(tmp_path, modules, says):
    line = one_error_line(run_kvplan("estimate", _folder(tmp_path, "m", LAST, modules=modules), "--gpu", "h100",
                                     "-c", "8192"))
    assert says in line, line


def test_check_says_the_pooling_note(tmp_path):
    """As estimate's rules say it (vllm_pooling.pooling_note): a warning on the model's line."""
    folder = _folder(tmp_path, "gte", LAST)
    deployments = tmp_path / "deployments.yaml"
    deployments.write_text(f"deployments:\n  - name: gte\n    model: {folder}\n    tp: 1\n    gpu: H100\n"
                           f"    context: 8192\n")
    r = run_kvplan("check", "--file", deployments, "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    (result,) = json.loads(r.stdout)["results"]
    (finding,) = [f for f in result["findings"] if "pooling runner" in f["message"]]
    assert (finding["level"], finding["key"], finding["line"]) == ("warning", "model", 3)
    rules = _estimate(folder, "--gpu", "h100", "-c", "8192")["model"]["rules"]
    assert finding["message"].rstrip(".") in rules


def test_engine_none_loads_no_untied_head(tmp_path):
    """--engine none says the model runs on a pooling runner; its weights drop Qwen2.5-7B's untied head, 152,064 x
    3,584 x 2 B, as vLLM's budget does; at pp 2 the last stage holds no head (nor the embedding again: the first
    stage's embedding, 152,064 x 3,584 x 2 B too, stays where it is)."""
    from kvplan.engines.ideal import IdealEngine
    from kvplan.model.sources import resolve
    from kvplan.plan.catalog import find_gpu
    from kvplan.plan.sharding import pp_stages

    pooled = _folder(tmp_path, "gte", LAST)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps(QWEN2_5_7B))
    head = 152_064 * 3_584 * 2
    weights = [_estimate(folder, "--gpu", "h100", "-c", "8192", "--engine", "none")["plans"][0]["budget"]
               ["weights_bytes_per_gpu"] for folder in (plain, pooled)]
    assert weights[0] - weights[1] == head
    first, last = pp_stages(QWEN2_5_7B["num_hidden_layers"], 2)
    engine, gpu = IdealEngine(), find_gpu("H100")
    specs = resolve(str(plain)), resolve(str(pooled))
    lasts = [engine.budget(spec, 1, gpu, None, stage=last) for spec in specs]
    firsts = [engine.budget(spec, 1, gpu, None, stage=first) for spec in specs]
    assert lasts[0].weights_bytes_per_gpu - lasts[1].weights_bytes_per_gpu == pytest.approx(head, abs=1)
    assert firsts[0].weights_bytes_per_gpu == pytest.approx(firsts[1].weights_bytes_per_gpu, abs=1)
    logits = 256 * 152_064 * 4 * 3  # the generic reserve's sampler logits, which a pooling model has not
    freed = lasts[1].kv_budget_bytes_per_gpu - lasts[0].kv_budget_bytes_per_gpu
    assert freed == pytest.approx(head + logits, abs=1)
    assert "no LM head" in next(t.source for t in lasts[1].terms if t.name == "weights")


def test_lfm2_bidirectional_is_encoder_only(tmp_path):
    """lfm2.py 0.34.0:500-514: EncoderOnlyAttention and a stateless bidirectional convolution: no cache to size."""
    from test_params import _script_config

    config = dict(_script_config("LFM2_1_2B"), architectures=["Lfm2BidirectionalModel"])
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    line = one_error_line(run_kvplan("estimate", path, "--gpu", "h100", "-c", "8192"))
    assert "(Lfm2BidirectionalModel) is an encoder-only model" in line, line


@pytest.mark.parametrize("version, refused", [("0.11.0", True), ("0.13.0", True), ("0.14.0", False)])
def test_a_remedys_release_meets_the_pooling_modules_refusal(tmp_path, version, refused):
    """A remedy that tries another release asks VllmEngine.configuration_refusal, which carries the same 0.11-0.13
    start-up failure (no 1_Pooling/config.json: None.items(), transformers_utils/config.py 0.11.0:751-762) as a
    refusal on the engine, so no remedy names a release that stops there."""
    from kvplan.engines.vllm_engine import VllmEngine
    from kvplan.model.sources import resolve
    from kvplan.plan.catalog import find_gpu

    spec = resolve(str(_folder(tmp_path, f"nofile-{version}", None)))
    asked = dict(engine=f"vllm=={version}", kv_dtype="auto", context=8192, block_size=None)
    refusal = VllmEngine(version).configuration_refusal(spec, asked, 1, find_gpu("H100"))
    assert (refusal is not None and refusal.field == "engine" and "has no config.json" in refusal.reason) is refused


def test_engine_none_reserves_no_logits_for_a_pooling_model(tmp_path):
    """--engine none's generic activation reserve holds fp32 logits of 256 requests, three copies, for a model that
    samples; a pooling model samples nothing: 256 x 151,936 (Qwen3's vocabulary) x 4 B x 3 = 466,747,392 B less."""
    def activation(architecture):
        folder = tmp_path / architecture
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(dict(QWEN3_8B, architectures=[architecture])))
        result = _estimate(folder, "--gpu", "h100", "-c", "8192", "--engine", "none")
        return next(t for t in result["plans"][0]["budget"]["terms"] if t["name"] == "activation")

    generating, pooled = activation("Qwen3ForCausalLM"), activation("Qwen3ForSequenceClassification")
    assert generating["bytes"] - pooled["bytes"] == 256 * 151_936 * 4 * 3 == 466_747_392
    assert "logits" in generating["source"] and "logits" not in pooled["source"]


def test_the_budget_line_says_the_weights_have_no_lm_head(tmp_path):
    """The header names the checkpoint's weights; the budget line's smaller weights term says why it is smaller."""
    folder = tmp_path / "cls"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(dict(QWEN3_8B, architectures=["Qwen3ForSequenceClassification"])))
    for engine in ("vllm", "none"):
        table = run_kvplan("estimate", folder, "--gpu", "h100", "-c", "8192", "--engine", engine).stdout
        assert "(no LM head)" in " ".join(table.split())
