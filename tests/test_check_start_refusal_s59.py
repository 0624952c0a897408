"""A deployment vLLM refuses to start fails `kvplan check` without min_concurrency (docs/ci.md, "The rules"): a CI
gate passes nothing that cannot run. The ideal pool (engine: none) models no engine's start-up: a warning there."""
import json

from conftest import deployments_file, run_kvplan

L70 = "meta-llama/Llama-3.1-70B-Instruct"


def _result(tmp_path, extra: str = ""):
    path = deployments_file(tmp_path, f"  - name: a\n    model: {L70}\n    tp: 1\n    gpu: H100\n"
                                      f"    context: 8192\n{extra}")
    run = run_kvplan("check", "--file", path, "--format", "json")
    return run, json.loads(run.stdout)["results"][0]


def test_weights_past_the_gpu_fail_without_min_concurrency(tmp_path):
    # 70.6e9 parameters x 2 bytes = 131 GiB of bf16 weights against one H100's 80 GB: vLLM stops before any cache
    run, result = _result(tmp_path)
    assert run.returncode == 1 and not result["passed"]
    (error,) = result["errors"]
    assert error.startswith("not one sequence fits") and "vLLM would refuse to start" in error
    assert "would fit with tp 2" in error


def test_the_ideal_pool_keeps_it_a_warning(tmp_path):
    run, result = _result(tmp_path, "    engine: none\n")
    assert run.returncode == 0 and result["passed"] and not result["errors"]
    assert any(w.startswith("not one sequence fits") and "set min_concurrency" in w for w in result["warnings"])


def test_one_sequence_that_fits_passes(tmp_path):
    # the same model at tp 2: 65.7 GiB of weights a GPU leaves room for the cache; no finding about capacity
    path = deployments_file(tmp_path, f"  - name: b\n    model: {L70}\n    tp: 2\n    gpu: H100\n    context: 8192\n")
    run = run_kvplan("check", "--file", path, "--format", "json")
    (ok,) = json.loads(run.stdout)["results"]
    assert run.returncode == 0 and ok["passed"] and ok["max_concurrency"] > 0
    assert not any("not one sequence fits" in w for w in ok["warnings"])
