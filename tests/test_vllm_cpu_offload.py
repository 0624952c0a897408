"""vLLM's --cpu-offload-gb in the engine model (engines/vllm_budget.py offloaded_weights): the decoder layers'
weights vLLM moves to CPU memory are not in the budget's weights term, where the release's model runner installs
the offloader at all."""

import json

from conftest import run_kvplan

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
ARGS = (LLAMA, "--gpu", "l40s", "--context", "8192", "--format", "json")


def _plan(*extra) -> dict:
    result = run_kvplan("estimate", *ARGS, *extra)
    assert result.returncode == 0, result.stderr
    (plan,) = json.loads(result.stdout)["plans"]
    return plan


def _weights(plan: dict) -> dict:
    return next(t for t in plan["budget"]["terms"] if t["name"] == "weights")


def test_offloaded_gib_leave_the_weights_term():
    """Llama-3.1-8B (16,060,522,496 bytes, the bundled checkpoint size) with 10 GiB offloaded keeps 16,060,522,496 -
    10 x 2^30 = 5,323,104,256 bytes on the GPU, and the KV cache takes the difference (24 -> 34 sequences of 8K on an
    L40S: a budget of 26,116,933,089 B with vLLM's 0.705 GiB graph term, then 36,854,351,329 B, is 12,453 and
    17,573 blocks of 2 MiB; 12,452 and 17,572 past the null block // 512 blocks a request = 24 and 34); 1000 GiB
    move the decoder layers only: the embedding and the LM head (2 x 128,256 x 4,096 bf16 = 2,101,346,304 bytes)
    stay, as make_layers wraps the layers alone."""
    plain, ten, all_ = _plan(), _plan("--cpu-offload-gb", "10"), _plan("--cpu-offload-gb", "1000")
    assert _weights(plain)["bytes"] == 16_060_522_496
    assert _weights(ten)["bytes"] == 16_060_522_496 - 10 * 2**30 == 5_323_104_256
    assert "10.0 GiB of the decoder layers' weights in CPU memory" in _weights(ten)["source"]
    assert (plain["max_concurrency"], ten["max_concurrency"]) == (24, 34)
    assert _weights(all_)["bytes"] == 2 * 128_256 * 4_096 * 2 == 2_101_346_304


def test_model_runner_v2_before_0_28_ignores_it():
    """vLLM 0.22-0.27's Model Runner V2 never installs the offloader (vllm#51396; v1/worker/gpu/model_runner.py sets
    it from 0.28): Llama-3.1-8B runs on V2 in 0.25.1, so the flag leaves its weights as they are, and says so."""
    weights = _weights(_plan("--cpu-offload-gb", "10", "--engine", "vllm==0.25.1"))
    assert weights["bytes"] == 16_060_522_496
    assert "does nothing on V2 before 0.28" in weights["source"]


def test_bad_values_and_releases_without_the_flag_are_one_line(tmp_path):
    for value in ("-1", "lots", "inf"):
        run = run_kvplan("estimate", LLAMA, "--cpu-offload-gb", value)
        assert run.returncode == 2 and run.stdout == "" and len(run.stderr.splitlines()) == 1
        assert "--cpu-offload-gb must be a number of GiB from 0 to 1,073,741,824" in run.stderr
    old = run_kvplan("estimate", LLAMA, "--cpu-offload-gb", "4", "--engine", "vllm==0.5.2")
    assert old.returncode == 2 and "--cpu-offload-gb needs vLLM 0.5.3 or later" in old.stderr
    path = tmp_path / "deployments.yaml"
    path.write_text(f"deployments:\n  - name: l\n    model: {LLAMA}\n    tp: 1\n    gpu: l40s\n    context: 8192\n"
                    "    min_concurrency: 30\n    cpu_offload_gb: 10\n")
    result = run_kvplan("check", "--file", path, "--format", "json")
    assert result.returncode == 0, result.stderr  # 34 >= 30 with the offload; 24 without
    assert json.loads(result.stdout)["results"][0]["max_concurrency"] == 34
