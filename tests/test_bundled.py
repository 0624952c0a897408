"""Bundled specs: every file parses, ids and aliases resolve offline, ids never escape model_specs/."""

import json
from pathlib import Path

import pytest

from conftest import ROOT, load_yaml, run_kvplan
from kvplan.model.sources import bundled_files, find_bundled, load_bundled, resolve

REQUIRED_IDS = [
    "meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-70b-hf", "meta-llama/Meta-Llama-3-8B",
    "meta-llama/Meta-Llama-3-70B",
    "meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B-Instruct", "meta-llama/Llama-3.1-405B",
    "meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.2-3B", "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "mistralai/Mistral-7B-v0.1", "mistralai/Mistral-7B-v0.3", "mistralai/Mixtral-8x7B-v0.1",
    "mistralai/Mixtral-8x22B-v0.1", "Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-72B-Instruct", "Qwen/Qwen3-8B",
    "Qwen/Qwen3-14B", "Qwen/Qwen3-32B", "Qwen/Qwen3-30B-A3B", "Qwen/Qwen3-235B-A22B",
    "Qwen/Qwen3-Next-80B-A3B-Instruct", "google/gemma-2-9b", "google/gemma-2-27b", "google/gemma-3-4b-it",
    "google/gemma-3-27b-it", "deepseek-ai/DeepSeek-V2-Lite", "deepseek-ai/DeepSeek-V3", "deepseek-ai/DeepSeek-R1",
    "deepseek-ai/DeepSeek-V3.2", "zai-org/GLM-5.2", "deepseek-ai/DeepSeek-V4-Pro", "moonshotai/Kimi-K2-Instruct",
    "Qwen/Qwen3-VL-8B-Instruct", "Qwen/Qwen3-VL-30B-A3B-Instruct", "Qwen/Qwen2.5-VL-7B-Instruct",
    "openai/gpt-oss-20b", "openai/gpt-oss-120b", "microsoft/Phi-3-mini-4k-instruct",
    "microsoft/Phi-3-medium-4k-instruct", "tiiuae/falcon-7b", "tiiuae/falcon-40b", "MiniMaxAI/MiniMax-M2.7",
]


def test_at_least_thirty_specs_with_sources():
    files = bundled_files()
    assert len(files) >= 30
    for path in files:
        entry = load_yaml(path.read_text())
        assert entry["source"], path.name
        assert path.stem == entry["id"].replace("/", "--"), path.name


@pytest.mark.parametrize("model_id", REQUIRED_IDS)
def test_required_ids_resolve(model_id):
    spec = resolve(model_id)
    assert spec.num_hidden_layers > 0 and spec.weights.bytes > 0
    assert find_bundled(model_id.upper()) is not None  # ids are case-insensitive


def test_layouts_of_bundled_families():
    assert resolve("deepseek-ai/DeepSeek-V3").is_mla
    assert resolve("google/gemma-3-4b-it").windows == {1024: 29}  # transformers' defaults fill the 4B's file
    assert resolve("tiiuae/falcon-40b").kv_heads == 8  # RefinedWeb's n_head_kv
    assert resolve("openai/gpt-oss-20b").windows == {128: 12}
    kinds = {layer.kind for layer in resolve("Qwen/Qwen3-Next-80B-A3B-Instruct").layers}
    assert kinds == {"full", "linear"}
    gpt_oss = resolve("openai/gpt-oss-20b").weights  # mxfp4 experts: ~12.8 GiB stored, not 2 bytes a parameter
    assert 12 * 2**30 < gpt_oss.bytes < 14 * 2**30


@pytest.mark.parametrize("bad", ["../model_specs/x", "/etc/passwd-like/id", "a/b/c", "..", "x/..", "foo bar/baz"])
def test_ids_never_escape(bad, tmp_path):
    result = run_kvplan("estimate", bad, cwd=tmp_path, env={"HF_HUB_CACHE": str(tmp_path / "hub")})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_fresh_install_offline_estimate(tmp_path):
    """HF_HUB_OFFLINE=1 and an empty Hub cache: the bundled spec answers."""
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HOME": str(tmp_path / "home")}
    result = run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "--format", "json",
                        env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)["plans"][0]
    assert row["kv_bytes_per_token"] == 131_072
    assert row["budget"]["weights_bytes_per_gpu"] == 16_060_522_496
    assert not (tmp_path / "empty").exists() or not any((tmp_path / "empty").iterdir())


def test_models_command_json():
    result = run_kvplan("models", "--format", "json")
    assert result.returncode == 0, result.stderr
    models = json.loads(result.stdout)["models"]
    ids = {m["id"] for m in models}
    assert "deepseek-ai/DeepSeek-V3" in ids and len(models) == len(bundled_files())
    assert all(m["layers"] > 0 and m["parameters"] > 0 for m in models)


def test_models_pair_each_layers_kv_heads_with_its_own_head_dim():
    """kv_heads and head_dim are each the largest over the layers (Gemma 4 31B: 16 and 512, a pair no layer has);
    kv_shapes pairs them per layer shape (16 KV heads of 256 on its sliding layers, 4 of 512 on its full ones), and
    the table shows those pairs, not the two maxima."""
    result = run_kvplan("models", "--format", "json")
    models = {m["id"]: m for m in json.loads(result.stdout)["models"]}
    gemma = models["google/gemma-4-31B-it"]
    assert (gemma["kv_heads"], gemma["head_dim"]) == (16, 512)
    assert gemma["kv_shapes"] == ["16x256 sliding", "4x512 full"]
    assert models["XiaomiMiMo/MiMo-V2-Flash"]["kv_shapes"] == ["4x192/128 full", "8x192/128 sliding"]
    assert models["deepseek-ai/DeepSeek-V4-Pro"]["kv_shapes"] == ["V4 latent 512"]
    assert models["deepseek-ai/DeepSeek-V3.2"]["kv_shapes"] == ["MLA 576 sparse"]
    assert models["meta-llama/Llama-3.1-8B"]["kv_shapes"] == ["8x128 full"]
    assert models["tiiuae/falcon-mamba-7b"]["kv_shapes"] == ["mamba state"]
    table = run_kvplan("models", env={"COLUMNS": "200"}).stdout
    gemma_row = next(line for line in table.splitlines() if line.startswith("google/gemma-4-31B-it "))
    assert "16x256 sliding, 4x512 full" in gemma_row and "16/" not in gemma_row
    v4_row = next(line for line in table.splitlines() if line.startswith("deepseek-ai/DeepSeek-V4-Pro "))
    assert "MLA" not in v4_row


def test_gpus_command():
    result = run_kvplan("gpus", "--format", "json")
    data = json.loads(result.stdout)
    names = {g["name"] for g in data["gpus"]}
    assert {"A100-40GB", "A100-80GB", "H100-80GB-SXM", "H100-80GB-PCIe", "H200", "B200", "L40S", "L4", "A10G",
            "RTX-3090", "RTX-4090", "MI300X"} <= names
    h100 = next(g for g in data["gpus"] if g["name"] == "H100-80GB-SXM")
    assert abs(h100["memory_bytes"] / 2**30 - 79.2) < 0.1  # what the runtime reports, not 80
    assert run_kvplan("gpus").returncode == 0


@pytest.mark.parametrize("alias", ["h100", "H100-80GB", "h100_sxm", "H100 80GB HBM3"])
def test_gpu_aliases(alias):
    from kvplan.plan.catalog import find_gpu
    assert find_gpu(alias).name == "H100-80GB-SXM"


def test_wheel_layout_resolves_specs_inside_the_package(tmp_path):
    """Lay the package out as pyproject.toml's wheel target does (its force-include mapping read from the file),
    then resolve a bundled id from a process that sees only that layout."""
    import shutil
    import subprocess
    import sys
    import tomllib

    wheel = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    site = tmp_path / "site"
    for package in wheel["packages"]:
        shutil.copytree(ROOT / package, site / package, ignore=shutil.ignore_patterns("__pycache__"))
    for source, target in wheel["force-include"].items():
        shutil.copytree(ROOT / source, site / target)
    code = ("from kvplan.model.sources import resolve, spec_dir; import kvplan; "
            "print(spec_dir()); print(resolve('meta-llama/Llama-3.1-8B-Instruct').num_hidden_layers)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                         env={"PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    folder, layers = out.stdout.split()
    assert Path(folder) == site / "kvplan" / "_model_specs" and layers == "32"


def test_every_layer_kind_a_bundled_spec_holds_is_a_kvlayer():
    """KVLayer, the model package's union of layer kinds, names every kind a spec's layers may hold (DeepSeek-V4's
    window cache was left out of it when its four kinds were merged)."""
    from typing import get_args

    from kvplan.model import KVLayer

    ids = [load_yaml(path.read_text())["id"] for path in bundled_files()]
    kinds = {type(layer) for model_id in ids for layer in resolve(model_id).layers}
    assert kinds <= set(get_args(KVLayer)), kinds - set(get_args(KVLayer))
