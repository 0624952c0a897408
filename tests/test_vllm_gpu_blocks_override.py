"""vLLM's --num-gpu-blocks-override in the engine model (engines/vllm_workers.py OVERRIDE_RULES): the pool holds
exactly N blocks, capacity follows from N, and nothing in vLLM compares N blocks with the memory it profiled. Held to
vLLM 0.32.0's own EngineCore._initialize_kv_caches and KVCacheManager run on the CPU with the override set
(tests/data/vllm_gpu_blocks_override.json, made by benchmarks/vllm_reference/gpu_blocks_override.py)."""

import json
from pathlib import Path

import pytest

from conftest import run_kvplan, vllm_reference

ROOT = Path(__file__).resolve().parents[1]
reference = vllm_reference()
DATA = json.loads((ROOT / "tests" / "data" / "vllm_gpu_blocks_override.json").read_text())
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def _kvplan(case: dict):
    """kvplan's start-up for vLLM's inputs, with the override (reference.kvplan_startup's settings)."""
    from kvplan.engines.vllm import start
    from kvplan.model.precision import resolve_kv_dtype

    inputs = case["inputs"]
    _, settings = reference.kvplan_startup(case)
    spec = reference.model_spec(inputs["model"])
    return start(spec, tp=1, precision=resolve_kv_dtype("auto", spec.dtype), settings=settings,
                 available=[inputs["available_kv_cache_bytes"]], override=inputs["num_gpu_blocks_override"])


def _id(case: dict) -> str:
    return f"{case['inputs']['model']}-{case['inputs']['num_gpu_blocks_override']}"


@pytest.mark.parametrize("case", DATA["cases"], ids=_id)
def test_blocks_tokens_refusal_and_residents_as_vllm(case):
    """vLLM's num_gpu_blocks, its "Overriding" and size lines, its refusal (checked against N blocks less the null
    block, 0.20.1+) and the requests its KVCacheManager admits; where N blocks exceed the budget vLLM starts (its
    harness never allocates) and kvplan says the allocation would fail."""
    result = _kvplan(case)
    fig = result.figures
    assert fig.log_lines[1] == case["override_log_lines"][0]
    if case.get("refusal"):
        assert not fig.starts and fig.refusal.reason == case["refusal"]["message"]
        assert fig.refusal.estimated_max_model_len == case["refusal"]["estimated_max_model_len"]
        return
    n = case["inputs"]["num_gpu_blocks_override"]
    assert fig.num_gpu_blocks == case["kv"]["num_gpu_blocks"] == n
    if n * case["kv"]["bytes_per_block"] > case["inputs"]["available_kv_cache_bytes"]:
        assert case["starts"] and not fig.starts and "would fail with CUDA out of memory" in fig.refusal.reason
        return
    assert fig.starts and list(fig.log_lines[2:]) == case["log_lines"]
    assert fig.resident_sequences == case["resident"]["requests"]


def test_the_data_is_vllms_own():
    assert DATA["header"]["vllm_version"] == "0.32.0"
    kinds = {(bool(c["starts"]), bool(c.get("refusal"))) for c in DATA["cases"]}
    assert kinds == {(True, False), (False, True)}


def test_capacity_follows_the_blocks():
    """Llama-3.1-8B at 8K on an L40S: 2 x 8 KV heads x 128 x 2 bytes x 32 layers = 131,072 bytes a token, so a
    16-token block of every layer is 2 MiB and one request 8,192 / 16 = 512 blocks; 5,000 blocks hold
    5,000 x 16 = 80,000 tokens, 5,000 / 512 = 9.77x, and (5,000 - 1) // 512 = 9 requests resident."""
    run = run_kvplan("estimate", LLAMA, "--gpu", "l40s", "-c", "8192", "--num-gpu-blocks-override", "5000",
                     "--format", "json")
    assert run.returncode == 0, run.stderr
    (plan,) = json.loads(run.stdout)["plans"]
    e = plan["engine"]
    assert (e["num_gpu_blocks"], e["gpu_kv_cache_tokens"], plan["max_concurrency"]) == (5000, 80_000, 9)
    assert e["num_gpu_blocks_override"] == 5000 and e["override_kv_cache_bytes"] == 5000 * 16 * 131_072
    # 12,453: the blocks the budget itself holds (test_a_pool_larger_than_the_budget_fails_to_allocate)
    assert "Overriding num_gpu_blocks=12453 with num_gpu_blocks_override=5000" in e["log_lines"]
    table = run_kvplan("estimate", LLAMA, "--gpu", "l40s", "-c", "8192", "--num-gpu-blocks-override", "5000")
    assert "the KV cache is 5,000 blocks (9.77 GiB) by --num-gpu-blocks-override" in " ".join(table.stdout.split())
    plain = run_kvplan("estimate", LLAMA, "--gpu", "l40s", "-c", "8192", "--format", "json")
    assert "num_gpu_blocks_override" not in json.loads(plain.stdout)["plans"][0]["engine"]


def test_a_pool_larger_than_the_budget_fails_to_allocate(tmp_path):
    """12,453 blocks fit the L40S budget (26,116,933,089 B = 24.32 GiB, V2 runner buffers of 256 sequences counted:
    the 25,531,743,794 B of the old 1.25 GiB graph term + 585,189,295 B for its 0.705 GiB; // 2 MiB a block = 12,453);
    20,000 (20,000 x 2 MiB = 39.06 GiB) do not:
    vLLM starts sizing them (nothing checks) and the worker's allocation fails, so the estimate says so and check
    fails on the key."""
    run = run_kvplan("estimate", LLAMA, "--gpu", "l40s", "-c", "8192", "--num-gpu-blocks-override", "20000")
    text = " ".join(run.stdout.split())
    assert run.returncode == 0 and "asks for 39.06 GiB of KV cache a GPU, more than the 24.32 GiB" in text
    assert "--num-gpu-blocks-override 20,000 blocks do not fit the budget; at most 12,453 do." in text
    path = tmp_path / "deployments.yaml"
    path.write_text(f"deployments:\n  - name: l\n    model: {LLAMA}\n    tp: 1\n    gpu: l40s\n    context: 8192\n"
                    "    num_gpu_blocks_override: 20000\n")
    result = run_kvplan("check", "--file", path, "--format", "json")
    assert result.returncode == 1
    (finding,) = json.loads(result.stdout)["results"][0]["findings"]
    assert finding["key"] == "num_gpu_blocks_override" and "CUDA out of memory" in finding["message"]
    as_json = run_kvplan("estimate", LLAMA, "--gpu", "l40s", "-c", "8192", "--num-gpu-blocks-override", "20000",
                         "--format", "json")
    (plan,) = json.loads(as_json.stdout)["plans"]
    assert plan["engine"]["refusal"]["allocation_fails"] is True  # a crash, not one of vLLM's own refusals
    refused = run_kvplan("estimate", LLAMA, "--gpu", "l4", "--format", "json")  # 131,072 tokens: vLLM refuses
    (plan,) = json.loads(refused.stdout)["plans"]
    assert plan["engine"]["refusal"] is not None and "allocation_fails" not in plan["engine"]["refusal"]


def test_releases_before_0_20_1_check_the_profiled_memory():
    """Before vllm#41069 (0.20.1) the one-request check ran on the profiled memory and the override came after it
    (may_override_num_blocks): 300 blocks, fewer than one 8K request's 512, start; 0.9.1 ignored the override
    (logged only; vllm#19503 fixed it in 0.9.2)."""
    def engine(version):
        run = run_kvplan("estimate", LLAMA, "--gpu", "l40s", "-c", "8192", "--num-gpu-blocks-override", "300",
                         "--engine", f"vllm=={version}", "--format", "json")
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)["plans"][0]
    new, old, ignored = engine("0.32.0"), engine("0.20.0"), engine("0.9.1")
    assert not new["engine"]["starts"] and old["engine"]["starts"]
    assert old["engine"]["num_gpu_blocks"] == 300 and old["max_concurrency"] == 0
    assert ignored["engine"]["num_gpu_blocks"] > 10_000 and "num_gpu_blocks_override" not in ignored["engine"]


def test_the_footnote_says_what_the_log_says():
    """300 blocks hold no 8K request (512 blocks): 0.32 refuses to start, and the footnote says so; 0.20.0 starts (its
    log shows the pool and a 0.59x concurrency, no refusal) and never schedules one, so the footnote must not say
    "does not start" there."""
    def footnote(version):
        run = run_kvplan("estimate", LLAMA, "--gpu", "l40s", "-c", "8192", "--num-gpu-blocks-override", "300",
                         "--engine", f"vllm=={version}")
        assert run.returncode == 0, run.stderr
        return " ".join(run.stdout.split())
    new, old = footnote("0.32.0"), footnote("0.20.0")
    assert "max len 8,192 bf16 tp 1 does not start: --num-gpu-blocks-override 300 blocks hold no request" in new
    assert "max len 8,192 bf16 tp 1 starts but holds no request: --num-gpu-blocks-override 300 blocks" in old
    assert "does not start" not in old and "refuses to start" not in old


@pytest.mark.parametrize("value", ["0", "-4", "1.5", "lots", "true"])
def test_bad_values_are_one_line(value):
    run = run_kvplan("estimate", LLAMA, "--num-gpu-blocks-override", value)
    assert run.returncode == 2 and run.stdout == "" and len(run.stderr.splitlines()) == 1
    assert "--num-gpu-blocks-override must be a whole number of KV-cache blocks" in run.stderr


@pytest.mark.parametrize("value", ["0", "true", "1.5", "'12'"])
def test_bad_values_in_a_deployments_file(tmp_path, value):
    path = tmp_path / "d.yaml"
    path.write_text(f"deployments:\n  - name: l\n    model: {LLAMA}\n    tp: 1\n    num_gpu_blocks_override: {value}\n")
    run = run_kvplan("check", "--file", path)
    assert run.returncode == 2 and "num_gpu_blocks_override" in run.stderr and len(run.stderr.splitlines()) == 1
