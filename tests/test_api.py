"""The Python API (`import kvplan`: estimate, check, models, gpus, find_gpu) with vLLM's keyword names, errors
that name the keyword, and an import that stays light; and the GPU catalog's names."""

import json
import subprocess
import sys

import pytest

import kvplan
from conftest import ROOT, environment, run_kvplan
from kvplan.plan.catalog import CATALOG, find_gpu, match_device_name

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.fixture(autouse=True)
def offline():
    with environment({"HF_HUB_OFFLINE": "1"}):
        yield


def test_estimate_returns_the_plans_the_command_line_prints():
    plans = kvplan.estimate(MODEL, gpu="H100", max_model_len=[8192, "32K"], kv_cache_dtype=["auto", "fp8"],
                            tensor_parallel_size=[1, 2], gpu_memory_utilization=0.9)
    cli = json.loads(run_kvplan("estimate", MODEL, "--gpu", "H100", "--max-model-len", "8192,32K",
                                "--kv-cache-dtype", "auto,fp8", "-tp", "1,2", "--gpu-memory-utilization", "0.9",
                                "--format", "json").stdout)["plans"]
    assert [p.max_concurrency for p in plans] == [p["max_concurrency"] for p in cli]
    assert [(p.context, p.kv_dtype, p.tp) for p in plans] == [(p["context"], p["kv_dtype"], p["tp"]) for p in cli]


def test_estimate_defaults_are_vllms():
    (plan,) = kvplan.estimate(MODEL, gpu="H100")
    assert plan.context == 131072 and plan.tp == 1 and plan.kv_dtype == "bf16" and plan.block_size == 16


def test_sizes_take_ints_and_vllm_strings():
    a = kvplan.estimate(MODEL, kv_cache_memory_bytes=20 * 2**30, max_model_len=8192)[0]
    b = kvplan.estimate(MODEL, kv_cache_memory_bytes="20G", max_model_len="8K")[0]
    # vLLM: 20 GiB of 2 MiB blocks (16 tokens x 128 KiB) less the null block, 512 blocks per 8K request
    assert a.max_concurrency == b.max_concurrency == (20 * 2**30 // (16 * 131072) - 1) // (8192 // 16) == 19


@pytest.mark.parametrize("kwargs,keyword", [
    ({"tensor_parallel_size": 0}, "tensor_parallel_size"),
    ({"max_model_len": "lots"}, "max_model_len"),
    ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization"),
    ({"kv_cache_dtype": "int8"}, "kv_cache_dtype"),
    ({"kv_cache_memory_bytes": "plenty"}, "kv_cache_memory_bytes"),
    ({"gpu": "a100"}, "gpu"),
])
def test_errors_name_the_keyword_not_the_flag(kwargs, keyword):
    with pytest.raises(kvplan.FieldError) as info:
        kvplan.estimate(MODEL, **kwargs)
    message = str(info.value)
    assert info.value.field == keyword and message.startswith(keyword + " ")
    assert "--" not in message, message


def test_suggestions_use_keywords():
    (plan,) = kvplan.estimate(MODEL, kv_cache_memory_bytes="10G", max_model_len=131072)
    assert plan.suggestion(kvplan.api.keyword) == \
        "would fit with tensor_parallel_size 2 or kv_cache_dtype fp8 or max_model_len 81904"


def test_check_models_gpus():
    results = kvplan.check(MODEL, tensor_parallel_size=[2, 3], max_model_len="32K", min_concurrency=100,
                           gpu="H100")
    assert [r["passed"] for r in results] == [False, False]
    assert "tensor_parallel_size 8" in results[0]["errors"][0] and "num_attention_heads (32)" in results[1]["errors"][0]
    assert any(m["id"] == "meta-llama/Llama-3.1-8B" for m in kvplan.models())
    assert kvplan.find_gpu("NVIDIA H100 NVL").name == "H100-NVL" and len(kvplan.gpus()) == len(CATALOG)


def test_import_kvplan_stays_light():
    code = ("import sys, kvplan; heavy = {'typer', 'rich', 'torch', 'numpy', 'huggingface_hub', 'yaml'} & "
            "{m.split('.')[0] for m in sys.modules}; print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]", out.stderr


# ---- the GPU catalog's names -----------------------------------------------------------------------------

NVIDIA_SMI_NAMES = {  # what nvidia-smi / torch print (RunPod's GPU type ids are these names, and issue logs)
    "NVIDIA A100-SXM4-40GB": "A100-40GB", "NVIDIA A100-PCIE-40GB": "A100-40GB", "NVIDIA A100-SXM4-80GB": "A100-80GB",
    "NVIDIA A100 80GB PCIe": "A100-80GB-PCIe", "NVIDIA H100 80GB HBM3": "H100-80GB-SXM",
    "NVIDIA H100 PCIe": "H100-80GB-PCIe", "NVIDIA H100 NVL": "H100-NVL", "NVIDIA GH200 480GB": "GH200",
    "NVIDIA H20": "H20", "NVIDIA H200": "H200", "NVIDIA H200 NVL": "H200", "NVIDIA B200": "B200",
    "NVIDIA L40S": "L40S", "NVIDIA L40": "L40", "NVIDIA L4": "L4", "NVIDIA A10G": "A10G", "NVIDIA A10": "A10",
    "Tesla T4": "T4", "NVIDIA RTX 6000 Ada Generation": "RTX-6000-Ada", "NVIDIA GeForce RTX 3090": "RTX-3090",
    "NVIDIA GeForce RTX 4090": "RTX-4090", "AMD Instinct MI250X/MI250": "MI250X", "AMD Instinct MI300X": "MI300X",
    "AMD Instinct MI300X OAM": "MI300X", "AMD Instinct MI325X": "MI325X",
}


@pytest.mark.parametrize("name,entry", sorted(NVIDIA_SMI_NAMES.items()))
def test_nvidia_smi_names_resolve_and_detect(name, entry):
    assert find_gpu(name).name == entry
    assert find_gpu(name.lower()).name == entry
    assert match_device_name(name).name == entry


@pytest.mark.parametrize("short,entry", [("gh200", "GH200"), ("h100 nvl", "H100-NVL"), ("H20", "H20"),
                                         ("a10", "A10"), ("t4", "T4"), ("l40", "L40"),
                                         ("rtx 6000 ada", "RTX-6000-Ada"), ("mi250x", "MI250X"),
                                         ("mi325x", "MI325X"), ("h100", "H100-80GB-SXM")])
def test_short_names(short, entry):
    assert find_gpu(short).name == entry


def test_every_alias_is_unique_and_resolves_to_its_entry():
    for gpu in CATALOG:
        for alias in (gpu.name, *gpu.aliases):
            assert find_gpu(alias) is gpu, alias


def test_ambiguous_names_list_the_choices():
    r = run_kvplan("estimate", MODEL, "--gpu", "a100")
    assert r.returncode == 2
    assert "--gpu 'a100' could mean A100-40GB or A100-80GB or A100-80GB-PCIe" in r.stderr


def test_a_typo_suggests_the_entry():
    assert "did you mean H100-80GB-SXM?" in run_kvplan("estimate", MODEL, "--gpu", "h1000").stderr


def test_the_readme_example_runs_and_prints_what_it_says(capsys):
    import re

    text = (ROOT / "README.md").read_text()
    block = re.search(r"### From Python\n\n```python\n(.*?)```", text, re.S).group(1)
    exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out.split("\n")
    claimed = re.search(r"# (8192 bf16 \d+, 8192 fp8_e4m3 \d+, 32768 bf16 \d+)", block).group(1).split(", ")
    assert printed[:3] == claimed


@pytest.mark.parametrize("keywords", [
    {"data_parallel_size": "2"}, {"num_gpu_blocks_override": "3000"}, {"enable_expert_parallel": "yes"},
    {"enable_eplb": "no"}, {"data_parallel_size": 2.0},
])
def test_check_reads_the_new_keywords_as_estimate_does(keywords):
    """check() handed data_parallel_size / num_gpu_blocks_override / the EP flags to the deployments file's
    validators, which take "2" for a quoted YAML value ("unquoted", "a YAML boolean"), while estimate() read "2" as
    2: the same keyword now means the same in both, and an error names the keyword, not YAML."""
    R1 = "deepseek-ai/DeepSeek-R1"
    outcomes = []
    for call in (kvplan.estimate, kvplan.check):
        try:
            call(R1, tensor_parallel_size=8, gpu="H200", max_model_len=8192, **keywords)
            outcomes.append("ok")
        except kvplan.KvplanError as exc:
            assert "YAML" not in str(exc) and "unquoted" not in str(exc)
            assert str(exc).startswith(next(iter(keywords))), str(exc)
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1]
