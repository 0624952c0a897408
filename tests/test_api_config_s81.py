"""Session 81 (apiconfig): the Python API takes a config.json's object (a dict) for MODEL, read by the one config
reader as that file on disk (kvplan/model/sources.py, source 0: nothing beside it, never the Hub); and
`kvplan.api.verify` returns a `Verification` (a dict, with `.ok`, `.to_dict()`) that `kvplan.emit` renders as
`kvplan verify --format fmt` does.

The dict's plans are held to `kvplan estimate path/config.json --format json` for the same config written to disk
(the bundled specs' configs: dense GQA, MLA, sliding-window multimodal, hybrid gated-DeltaNet), the names aside; the
numbers that are not an equality come from hand arithmetic on the configs. Verify's wrapping is tested on a result
recorded on an H200 (benchmarks/device_runs/, as test_verify_csv_s62.py reads it) and with the GPU run replaced, so
no GPU is needed."""

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

import kvplan
from kvplan import api
from kvplan.errors import FieldError, KvplanError
from kvplan.model import sources

from conftest import ROOT, one_error_line, run_kvplan

SPECS = ROOT / "model_specs"
RECORDED = ROOT / "benchmarks/device_runs/s54_h200_2026-12-05/s53_verify_llama8b_0.32.0.json"
LLAMA = "meta-llama/Llama-3.1-8B"


def bundled_config(model_id: str) -> dict:
    """The config.json a bundled spec holds (model_specs/<owner>--<name>.yaml, its `config`)."""
    return yaml.safe_load((SPECS / f"{model_id.replace('/', '--')}.yaml").read_text(encoding="utf-8"))["config"]


def written(tmp_path: Path, config: dict, folder: str = "model") -> Path:
    """`config` as a config.json on disk, alone in its folder (what `kvplan estimate PATH` reads)."""
    where = tmp_path / folder
    where.mkdir()
    path = where / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def nameless(doc: dict) -> dict:
    """An estimate document without the fields that name the model (its id, each plan's `model`)."""
    doc = json.loads(json.dumps(doc))
    doc["model"].pop("id")
    for plan in doc["plans"]:
        plan.pop("model")
    return doc


# one per kind of model, with a sweep at which every plan fits (a suggestion would name the flags the API spells
# as keywords, the one difference the API documents)
KINDS = [
    pytest.param(LLAMA, ("--max-model-len", "8192,32K", "--kv-cache-dtype", "auto,fp8"),
                 {"max_model_len": [8192, "32K"], "kv_cache_dtype": ["auto", "fp8"]}, id="dense-gqa"),
    pytest.param("deepseek-ai/DeepSeek-V2-Lite", ("--max-model-len", "8192,32K", "-tp", "1,2"),
                 {"max_model_len": [8192, "32K"], "tensor_parallel_size": [1, 2]}, id="mla"),
    pytest.param("google/gemma-3-12b-it", ("--max-model-len", "8192,32K", "--kv-cache-dtype", "auto,fp8"),
                 {"max_model_len": [8192, "32K"], "kv_cache_dtype": ["auto", "fp8"]}, id="sliding-window-vl"),
    pytest.param("Qwen/Qwen3-Next-80B-A3B-Thinking", ("--max-model-len", "32K", "-tp", "4,8"),
                 {"max_model_len": "32K", "tensor_parallel_size": [4, 8]}, id="hybrid-deltanet"),
]


@pytest.mark.parametrize("model_id, flags, keywords", KINDS)
def test_a_dict_plans_as_its_config_json_on_disk(tmp_path, model_id, flags, keywords):
    config = bundled_config(model_id)
    path = written(tmp_path, config)
    run = run_kvplan("estimate", path, "--gpu", "H100", *flags, "--format", "json")
    assert run.returncode == 0, run.stderr
    cli = json.loads(run.stdout)
    plans = kvplan.estimate(config, gpu="H100", **keywords)
    doc = plans.to_dict()
    assert cli["model"]["id"] == str(path) and doc["model"]["id"] == "config"  # no _name_or_path in these
    assert {p["model"] for p in doc["plans"]} == {"config"}
    assert nameless(doc) == nameless(cli)
    assert len(doc["plans"]) == len(cli["plans"]) >= 2


@pytest.mark.parametrize("model_id", ["Qwen/Qwen3-Next-80B-A3B-Thinking", "deepseek-ai/DeepSeek-V2-Lite"])
def test_a_dict_and_its_path_give_one_document_suggestions_included(tmp_path, model_id):
    """Through the API both ways (the suggestions spelled alike): plans that do not fit, with their remedies."""
    config = bundled_config(model_id)
    keywords = {"gpu": "L4", "max_model_len": "32K", "tensor_parallel_size": [1, 2]}
    from_dict = kvplan.estimate(config, **keywords).to_dict()
    from_file = kvplan.estimate(str(written(tmp_path, config)), **keywords).to_dict()
    assert any(p["suggestion"] for p in from_dict["plans"])
    assert nameless(from_dict) == nameless(from_file)


def test_the_hand_arithmetic_of_the_dicts():
    # Llama-3.1-8B: 32 layers x (K and V) x 8 KV heads x 128 dims x 2 B (bf16)
    llama = kvplan.estimate(bundled_config(LLAMA), gpu="H100", max_model_len=8192)
    assert llama[0].kv_bytes_per_token == 32 * 2 * 8 * 128 * 2 == 131072
    # its weights: the config's estimate (no checkpoint beside a dict) is meta-llama/Llama-3.1-8B's index total_size
    assert llama.to_dict()["model"]["weights_bytes"] == 16_060_522_496
    # DeepSeek-V2-Lite: MLA caches one latent per layer, 27 x (kv_lora_rank 512 + qk_rope_head_dim 64) x 2 B
    mla = kvplan.estimate(bundled_config("deepseek-ai/DeepSeek-V2-Lite"), gpu="H100", max_model_len=8192)
    assert mla[0].kv_bytes_per_token == 27 * (512 + 64) * 2 == 31104


def test_a_bundled_id_as_the_name_is_still_the_dict():
    """_name_or_path names the model; it is never looked up: a patched Llama keeps its 16 layers under the bundled
    id's name."""
    config = {**bundled_config(LLAMA), "num_hidden_layers": 16, "_name_or_path": LLAMA}
    plans = kvplan.estimate(config, gpu="H100", max_model_len=8192)
    assert plans[0].kv_bytes_per_token == 16 * 2 * 8 * 128 * 2
    doc = plans.to_dict()
    assert doc["model"]["id"] == LLAMA and doc["plans"][0]["model"] == LLAMA
    assert doc["model"]["num_hidden_layers"] == 16
    assert "bundled" not in doc["model"]["weights_source"]


@pytest.mark.parametrize("given, name", [("my-org/patched-llama", "my-org/patched-llama"), ("", "config"),
                                         ("   ", "config"), (None, "config"), (7, "config"), ("./llama", "./llama")])
def test_the_name_is_name_or_path_else_config(given, name):
    config = {**bundled_config(LLAMA), "_name_or_path": given}
    assert kvplan.estimate(config, gpu="H100", max_model_len=8192).to_dict()["model"]["id"] == name
    rows = kvplan.check(config, tensor_parallel_size=[1, 2], gpu="H100", max_model_len=8192)
    assert {(row["model"], row["model_id"]) for row in rows} == {(name, name)}


def test_nothing_beside_it_nor_the_hub_is_read(tmp_path, monkeypatch):
    """A dict named after a folder that holds another config.json, an hf_quant_config.json (ModelOpt FP8, which
    would re-price the weights) and a modules.json is read from the dict alone; the Hub, the bundled specs and the
    file system are never asked."""
    config = bundled_config(LLAMA)
    folder = written(tmp_path, {**config, "num_hidden_layers": 4}).parent
    (folder / "hf_quant_config.json").write_text(json.dumps(
        {"producer": {"name": "modelopt", "version": "0.29.0"},
         "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8", "exclude_modules": ["lm_head"]}}))
    (folder / "modules.json").write_text("[]")
    on_disk = kvplan.estimate(str(folder), gpu="H100", max_model_len=8192).to_dict()
    assert on_disk["plans"][0]["kv_dtype"] == "fp8_e4m3"  # the side file is read for the folder

    def asked(*args, **kwargs):
        raise AssertionError(f"a dict config asked {args}")

    for name in ("from_hub", "find_bundled", "existing_path", "from_path", "load_json", "local_weights"):
        monkeypatch.setattr(sources, name, asked)
    doc = kvplan.estimate({**config, "_name_or_path": str(folder)}, gpu="H100", max_model_len=8192).to_dict()
    assert doc["model"]["id"] == str(folder) and doc["model"]["num_hidden_layers"] == 32
    assert doc["plans"][0]["kv_dtype"] == "bf16" and doc["model"]["weights_bytes"] == 16_060_522_496
    assert not any("hf_quant_config" in note for plan in doc["plans"] for note in plan.get("notes") or [])


def test_a_dict_loads_no_hub_client_nor_yaml():
    code = ("import json, sys, kvplan; config = json.loads(sys.argv[1]); "
            "plans = kvplan.estimate(config, gpu='H100', max_model_len=8192); "
            "heavy = {'torch', 'numpy', 'huggingface_hub', 'yaml', 'typer', 'rich'} & "
            "{m.split('.')[0] for m in sys.modules}; print(plans[0].kv_bytes_per_token, sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(bundled_config(LLAMA))], capture_output=True,
                         text=True, cwd=ROOT, timeout=60,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_ENDPOINT": "http://127.0.0.1:9"})
    assert out.stdout.strip() == "131072 []", out.stderr


def test_a_bad_field_is_refused_as_the_files_is(tmp_path):
    config = {**bundled_config(LLAMA), "num_attention_heads": "x"}
    line = one_error_line(run_kvplan("estimate", written(tmp_path, config)))
    for call in (lambda: kvplan.estimate(config), lambda: kvplan.check(config, tensor_parallel_size=1),
                 lambda: api.verify(config)):  # verify reads the model before it looks for a GPU
        with pytest.raises(KvplanError) as caught:
            call()
        assert "kvplan: error: " + str(caught.value) == line
        assert "config field 'num_attention_heads' must be a positive integer" in line


@pytest.mark.parametrize("patch, words", [
    ({"rope_scaling": {"factor": {8.0}}}, "holds a value of type set at 'rope_scaling.factor'"),
    ({"layer_types": ["full", object()]}, "holds a value of type object at 'layer_types[1]'"),
    ({"torch_dtype": types.SimpleNamespace()}, "holds a value of type types.SimpleNamespace at 'torch_dtype'"),
    ({"big": 10 ** 5000}, "holds an integer of thousands of digits at 'big'"),
    ({(1, 2): 3}, "has the key (1, 2)"),
])
def test_what_no_json_file_holds_is_refused_naming_where(patch, words):
    config = {**bundled_config(LLAMA), **patch}
    for call in (lambda: kvplan.estimate(config), lambda: kvplan.estimate(model=config),
                 lambda: kvplan.check(config, tensor_parallel_size=1), lambda: api.verify(config)):
        with pytest.raises(FieldError) as caught:
            call()
        assert caught.value.field == "model" and str(caught.value).startswith("model " + words), caught.value
        assert "\n" not in str(caught.value)


def test_a_config_that_holds_itself_or_nests_too_deep():
    config = bundled_config(LLAMA)
    looped = {**config}
    looped["text_config"] = looped
    with pytest.raises(FieldError, match=r"^model holds itself at 'text_config'"):
        kvplan.estimate(looped)
    deep = inner = {}
    for _ in range(2000):  # past json.dumps' recursion
        inner["a"] = {}
        inner = inner["a"]
    with pytest.raises(FieldError, match=r"^model nests deeper than 32 levels at 'x\.a\.a"):
        kvplan.estimate({**config, "x": deep})
    shallow = inner = {}
    for _ in range(40):  # written, then refused by the file reader's bound, as the file's would be
        inner["a"] = {}
        inner = inner["a"]
    with pytest.raises(KvplanError, match=r"^the config 'config' nests deeper than 32 levels"):
        kvplan.estimate({**config, "x": shallow})


def test_other_mappings_and_tuples_are_written_as_json_writes_them():
    config = bundled_config("google/gemma-4-31B-it")  # a text_config nested in it, with its layer_types list
    text = {key: tuple(value) if isinstance(value, list) else value for key, value in config["text_config"].items()}
    proxied = types.MappingProxyType({**config, "architectures": tuple(config["architectures"]),
                                      "text_config": types.MappingProxyType(text)})
    assert any(isinstance(value, tuple) for value in text.values())
    assert kvplan.estimate(proxied, gpu="H100").to_dict() == kvplan.estimate(config, gpu="H100").to_dict()


@pytest.mark.parametrize("model", [None, 7, ["meta-llama/Llama-3.1-8B"], b"config.json"])
def test_what_is_neither_text_nor_a_mapping_is_refused(model):
    with pytest.raises(FieldError, match=r"^model must be a Hugging Face id, a config.json, a model folder or a "
                                         r"config.json's object \(a dict\), got "):
        kvplan.estimate(model)


def test_an_empty_dict_is_an_empty_config_json(tmp_path):
    line = one_error_line(run_kvplan("estimate", written(tmp_path, {})))
    for call in (lambda: kvplan.estimate({}), lambda: kvplan.check({}, tensor_parallel_size=1)):
        with pytest.raises(KvplanError) as caught:
            call()
        assert "kvplan: error: " + str(caught.value) == line
        assert "config field 'num_hidden_layers' is missing" in line


def test_check_a_dict_as_its_path(tmp_path):
    config = {**bundled_config("google/gemma-3-12b-it"), "_name_or_path": "google/gemma-3-12b-it-patched"}
    path = str(written(tmp_path, config))
    keywords = {"tensor_parallel_size": [1, 2, 4], "gpu": "L4", "max_model_len": "32K", "min_concurrency": 4}
    from_dict, from_file = kvplan.check(config, **keywords), kvplan.check(path, **keywords)
    assert from_dict.ok == from_file.ok and len(from_dict) == 3

    def without_names(doc: dict) -> dict:
        for row in doc["results"]:
            row.pop("model"), row.pop("model_id")
        return doc

    assert without_names(from_dict.to_dict()) == without_names(from_file.to_dict())
    assert {row["model"] for row in from_dict} == {"google/gemma-3-12b-it-patched"}


def test_check_deployments_takes_a_dict_model(tmp_path):
    config = bundled_config(LLAMA)
    entry = {"name": "chat", "tp": 1, "gpu": "L4", "context": 8192, "min_concurrency": 2}
    gate = kvplan.check_deployments([{**entry, "model": config}])
    by_path = kvplan.check_deployments([{**entry, "model": str(written(tmp_path, config))}])
    assert gate.ok and gate[0]["max_concurrency"] == by_path[0]["max_concurrency"]
    assert (gate[0]["model"], gate[0]["model_id"]) == ("config", "config")
    with pytest.raises(KvplanError, match=r"^deployment 'chat' field 'model' holds a value of type set at 'x'"):
        kvplan.check_deployments([{**entry, "model": {**config, "x": {1}}}])
    with pytest.raises(KvplanError, match=r"^deployment 'chat': config field 'num_attention_heads' must be"):
        kvplan.check_deployments([{**entry, "model": {**config, "num_attention_heads": 0}}])


def test_two_dicts_under_one_name_are_two_models():
    """check reads each model once per call, keyed by what names it: two different dicts both named 'config' are
    read each as itself."""
    config = bundled_config(LLAMA)
    entry = {"tp": 1, "gpu": "L4", "context": 8192}
    gate = kvplan.check_deployments([{**entry, "name": "a", "model": config},
                                     {**entry, "name": "b", "model": {**config, "num_hidden_layers": 16}}])
    assert [row["num_attention_heads"] for row in gate] == [32, 32]
    assert gate[1]["max_concurrency"] > gate[0]["max_concurrency"]


# ---- verify's result ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(RECORDED.read_text())


def test_a_verification_is_the_dict_with_ok_and_the_document(recorded):
    from kvplan.commands.verify import VerifyResult
    from kvplan.render import emit as command_emit  # what `kvplan verify` writes (cli show: render.emit)

    verification = kvplan.Verification(recorded)
    assert isinstance(verification, dict) and verification == recorded
    assert verification["verdict"]["ok"] is recorded["verdict"]["ok"] and verification.ok is recorded["verdict"]["ok"]
    assert verification.to_dict() == json.loads(command_emit(VerifyResult(recorded), "json"))
    for fmt in ("table", "json", "yaml", "csv", "JSON"):
        assert kvplan.emit(verification, fmt) == command_emit(VerifyResult(recorded), fmt), fmt
    assert verification.rows() == VerifyResult(recorded).rows()
    with pytest.raises(FieldError, match=r"^format 'html' is not one of table, json, yaml, csv\.$"):
        kvplan.emit(verification, "html")


def test_a_verification_renders_what_it_holds_now(recorded):
    verification = kvplan.Verification(json.loads(json.dumps(recorded)))
    verification["verdict"] = {**verification["verdict"], "ok": not recorded["verdict"]["ok"]}
    assert verification.ok is (not recorded["verdict"]["ok"])
    assert json.loads(kvplan.emit(verification, "json"))["verdict"]["ok"] is (not recorded["verdict"]["ok"])


def test_api_verify_returns_a_verification(recorded, monkeypatch):
    """The GPU run replaced by the recorded result: what api.verify hands back, and the model it passes on (a dict
    as the config object the readers take)."""
    from kvplan.commands import verify as command
    from kvplan.commands.verify import VerifyResult

    given = []

    def run(model, **options):
        given.append(model)
        return VerifyResult(json.loads(json.dumps(recorded)))

    monkeypatch.setattr(command, "verify", run)
    result = api.verify(LLAMA, max_model_len="8K")
    assert isinstance(result, kvplan.Verification) and result == recorded and result.ok is recorded["verdict"]["ok"]
    assert result["verdict"]["ok"] is recorded["verdict"]["ok"]  # the dict code written for it still reads it
    assert kvplan.emit(result, "csv") == kvplan.emit(kvplan.Verification(recorded), "csv")
    api.verify({**bundled_config(LLAMA), "_name_or_path": "patched"})
    assert given[0] == LLAMA and isinstance(given[1], sources.ConfigObject) and given[1].name == "patched"
    assert json.loads(given[1].text)["num_hidden_layers"] == 32


def test_emit_still_refuses_what_no_function_returned(recorded):
    with pytest.raises(FieldError, match=r"^result must be what kvplan.estimate or kvplan.check returned"):
        kvplan.emit(recorded, "json")  # a plain dict: wrap it, Verification(result)


def test_a_saved_result_of_an_older_kvplan_renders_under_todays_names(recorded):
    """boundary.distinct_blocks was renamed no_block_shared (verify/recorded.py RENAMED): the dict keeps what it was
    given, its document and renderings the current name, as the command reads a recorded result."""
    old = json.loads(json.dumps(recorded))
    old["boundary"] = {("distinct_blocks" if key == "no_block_shared" else key): value
                       for key, value in old["boundary"].items()}
    verification = kvplan.Verification(old)
    assert "distinct_blocks" in verification["boundary"]
    assert verification.to_dict()["boundary"]["no_block_shared"] == recorded["boundary"]["no_block_shared"]
    assert "distinct_blocks" not in kvplan.emit(verification, "yaml")
