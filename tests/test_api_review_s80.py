"""Session 80's review of kvplan as a library: estimate / check return results that carry the command's document
(`to_dict()` equal to `--format json` loaded) and render through the one path (`kvplan.emit`); a deployments file's
entries check as dicts; check's kv_cache_dtype list is refused as its comma list is; every public function is
annotated. Figures by hand: Llama-3.1-8B has 32 layers, 8 KV heads of 128 dims, bf16 (2 B)."""

import inspect
import json

import pytest

import kvplan
from conftest import environment, run_kvplan

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
LLAMA_KV_BYTES_PER_TOKEN = 32 * 2 * 8 * 128 * 2  # layers x (K, V) x KV heads x head_dim x bf16 bytes = 131072


@pytest.fixture(autouse=True)
def offline():
    with environment({"HF_HUB_OFFLINE": "1", "COLUMNS": "100"}):
        yield


def cli_json(*args) -> dict:
    r = run_kvplan(*args, "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout)


def test_estimate_result_is_the_command_lines_json_document():
    plans = kvplan.estimate(MODEL, gpu="L4", max_model_len=8192, kv_cache_dtype=["auto", "fp8"],
                            tensor_parallel_size=[1, 2])
    assert plans.to_dict() == cli_json("estimate", MODEL, "--gpu", "L4", "--max-model-len", "8192",
                                       "--kv-cache-dtype", "auto,fp8", "-tp", "1,2")
    assert isinstance(plans, list) and len(plans) == 4  # still the list of Plan it was
    assert plans[0].kv_bytes_per_token == LLAMA_KV_BYTES_PER_TOKEN
    assert plans[1].kv_bytes_per_token_per_gpu == LLAMA_KV_BYTES_PER_TOKEN // 2  # 8 KV heads split over tp 2
    assert plans[2].kv_bytes_per_token == LLAMA_KV_BYTES_PER_TOKEN // 2  # fp8: 1 B an element


def test_emit_renders_what_the_command_prints():
    plans = kvplan.estimate(MODEL, gpu="L4", max_model_len=8192, tensor_parallel_size=[1, 2])
    args = ("estimate", MODEL, "--gpu", "L4", "--max-model-len", "8192", "-tp", "1,2")
    for fmt in ("json", "csv", "yaml"):
        assert kvplan.emit(plans, fmt) == run_kvplan(*args, "--format", fmt).stdout, fmt
    lines = run_kvplan(*args).stdout.splitlines(keepends=True)  # the same text, each plan's heading naming the
    for i, line in enumerate(lines):  # fields by the API's keywords (the legend keeps vLLM's flags)
        if line.startswith("vllm 0.32.0 at "):
            for flag, name in (("--max-model-len", "max_model_len"), ("--kv-cache-dtype", "kv_cache_dtype"),
                               ("--tensor-parallel-size", "tensor_parallel_size")):
                lines[i] = lines[i].replace(flag, name)
    assert kvplan.emit(plans, "table") == "".join(lines)
    with pytest.raises(kvplan.FieldError, match=r"^format 'pdf' is not one of table, json"):
        kvplan.emit(plans, "pdf")
    with pytest.raises(kvplan.FieldError, match=r"^result must be what kvplan.estimate or kvplan.check returned"):
        kvplan.emit(list(plans), "json")


def test_chart_gives_the_curves_the_command_line_draws():
    plans = kvplan.estimate(MODEL, gpu="L4", max_model_len=["8K", "32K"], chart=True)
    cli = cli_json("estimate", MODEL, "--gpu", "L4", "--max-model-len", "8K,32K", "--chart")
    assert plans.to_dict()["curves"] == cli["curves"]
    with pytest.raises(kvplan.FieldError, match=r"^chart must be True or False"):
        kvplan.estimate(MODEL, gpu="L4", chart="yes")


def test_check_result_is_the_command_lines_json_document():
    checks = kvplan.check(MODEL, tensor_parallel_size=[1, 2], gpu="L4", max_model_len=8192, min_concurrency=2)
    assert checks.to_dict() == cli_json("check", MODEL, "-tp", "1,2", "--gpu", "L4", "--max-model-len", "8192",
                                         "--min-concurrency", "2")
    assert checks.ok is True and [r["passed"] for r in checks] == [True, True]
    assert kvplan.emit(checks, "csv") == run_kvplan("check", MODEL, "-tp", "1,2", "--gpu", "L4", "--max-model-len",
                                                    "8192", "--min-concurrency", "2", "--format", "csv").stdout


DEPLOYMENTS = [
    {"name": "chat", "model": MODEL, "tp": 1, "gpu": "L4", "context": 8192, "min_concurrency": 2},
    {"name": "wide", "model": MODEL, "tp": 2, "gpu": "L4", "context": 8192, "kv_dtype": "fp8",
     "min_concurrency": 1000},
]


def yaml_file(path, deployments) -> str:
    lines = ["deployments:"]
    for entry in deployments:
        lines += [f"  - {key}: {value}" if i == 0 else f"    {key}: {value}" for i, (key, value) in
                  enumerate(entry.items())]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_check_deployments_takes_the_file_or_its_entries_as_dicts(tmp_path):
    path = yaml_file(tmp_path / "deployments.yaml", DEPLOYMENTS)
    cli = cli_json("check", "--file", path)
    from_file = kvplan.check_deployments(path)
    assert from_file.to_dict() == cli and from_file.ok is False
    from_dicts = kvplan.check_deployments({"deployments": DEPLOYMENTS})

    def unlocated(results: list) -> list:  # dicts have no file and no lines; everything else is the file's
        return [{**{k: v for k, v in r.items() if k not in ("file", "line")},
                 "findings": [{**f, "line": None} for f in r["findings"]]} for r in results]

    assert unlocated(from_dicts.to_dict()["results"]) == unlocated(cli["results"])
    assert kvplan.check_deployments(DEPLOYMENTS).to_dict() == from_dicts.to_dict()  # the list alone
    wide = from_dicts[1]
    assert wide["kv_bytes_per_token_per_gpu"] == LLAMA_KV_BYTES_PER_TOKEN // 2 // 2  # fp8, 4 KV heads a GPU
    assert wide["passed"] is False and "min_concurrency 1000" in wide["errors"][0]


@pytest.mark.parametrize("deployments,message", [
    ([{"name": "chat", "model": MODEL}], "deployment 'chat' is missing 'tp'; every entry needs name, model and tp."),
    ([{"name": "chat", "model": MODEL, "tp": 0}], "deployment 'chat' field 'tp' must be a positive integer, got 0."),
    ([{"name": "chat", "model": MODEL, "tp": 1, "tpp": 2}], "deployment 'chat' has unknown key 'tpp' (did you mean"),
    ([DEPLOYMENTS[0], DEPLOYMENTS[0]], "deployment name 'chat' is used twice; give each entry a unique name."),
    ([], "deployments must be a non-empty list of entries"),
    ({"deployment": []}, "the deployments mapping has unknown key 'deployment'"),
])
def test_check_deployments_bad_entries_are_one_sentence(deployments, message):
    with pytest.raises(kvplan.KvplanError) as caught:
        kvplan.check_deployments(deployments)
    assert str(caught.value).startswith(message)


def test_check_refuses_a_list_of_kv_dtypes_as_its_comma_list():
    said = []
    for kv in (["auto", "fp8"], "auto,fp8"):
        with pytest.raises(kvplan.FieldError) as caught:
            kvplan.check(MODEL, tensor_parallel_size=1, kv_cache_dtype=kv)
        said.append(str(caught.value))
    assert said[0] == said[1].replace("'auto,fp8'", "['auto', 'fp8']")
    assert said[0].startswith("kv_cache_dtype takes one KV-cache dtype in check, got ['auto', 'fp8']")


def test_public_functions_are_annotated():
    for name in kvplan.__all__:
        function = getattr(kvplan, name)
        if not inspect.isfunction(function):
            continue
        signature = inspect.signature(function)
        missing = [p.name for p in signature.parameters.values() if p.annotation is inspect.Parameter.empty]
        assert not missing and signature.return_annotation is not inspect.Signature.empty, (name, missing)
