"""Defects found in session 66, each reproduced here.

I1  a Mixtral config with `num_local_experts: 0` (or without the field) planned as a dense model of
    intermediate_size-wide MLPs; vLLM 0.32.0's MixtralForCausalLM builds a FusedMoE of num_local_experts experts in
    every layer (mixtral.py:247) and has no dense fallback, as Qwen2/3-MoE and DeepSeek have (qwen2_moe.py:319).
I2  `-c auto` checked the prefill-chunk bound on the model's own length before auto-fit picked the length planned.
I3  `kvplan models` showed "-" as the max length of configs that name none (Falcon), where vLLM and `kvplan
    estimate` serve 2,048 (vLLM config/model.py _get_and_verify_max_len's fallback).
I4  `--engine none --no-enable-prefix-caching` planned, the flag silently ignored (`--enable-prefix-caching` was
    refused).
"""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import ROOT, estimate_plan, one_error_line, run_kvplan


def _bundled_config(name: str) -> dict:
    return yaml.safe_load((ROOT / "model_specs" / name).read_text())["config"]


@pytest.mark.parametrize("spec, field", [("mistralai--Mixtral-8x7B-v0.1.yaml", "num_local_experts"),
                                         ("openai--gpt-oss-20b.yaml", "num_local_experts"),
                                         ("MiniMaxAI--MiniMax-M2.7.yaml", "num_local_experts")])
@pytest.mark.parametrize("value", [0, None])
def test_an_always_moe_family_without_experts_is_refused(tmp_path, spec, field, value):
    config = _bundled_config(spec)
    assert config[field] > 0  # the bundled spec names its count in this field
    # null, as a file can write it (transformers keeps None, which vLLM's FusedMoE cannot take); a config without the
    # key gets its class's default count instead (tests/test_config_defaults_s72.py)
    config[field] = value
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    line = one_error_line(run_kvplan("estimate", path, "--gpu", "H100", "-c", "4096"))
    assert f"'{field}'" in line and "1 or more" in line


def test_a_family_with_a_dense_fallback_still_plans_dense_at_zero(tmp_path):
    config = _bundled_config("Qwen--Qwen3-30B-A3B.yaml")
    config["num_experts"] = 0  # qwen3_moe.py builds a dense MLP where num_experts is 0
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    dense = estimate_plan(path, "--gpu", "H100", "-c", "4096")
    moe = estimate_plan("Qwen/Qwen3-30B-A3B", "--gpu", "H100", "-c", "4096")
    # each layer then reads a dense MLP 6,144 wide where batch 1 read 8 of 128 experts 768 wide (the same bytes)
    # and a 128 x 2,048 router: what differs is the 48 routers in bf16
    difference = moe["decode"]["weights_bytes_read_batch1"] - dense["decode"]["weights_bytes_read_batch1"]
    assert difference == 48 * 128 * 2048 * 2


# ---- I2: --max-model-len auto on a model whose own length is past what kvplan prices in one run ------------------
# The chunk bound was checked on the model's own length before auto-fit had picked one: a 2,000,000,000-position
# Mixtral at tp 2 (which holds 436,160 tokens on an H100) was refused for 244,141 prefill chunks it would never walk.

def test_auto_fit_bounds_the_fitted_length_not_the_models_own(tmp_path):
    config = _bundled_config("mistralai--Mixtral-8x7B-v0.1.yaml")
    config["max_position_embeddings"] = 2_000_000_000
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    fitted = estimate_plan(path, "--gpu", "H100", "--tp", "2", "-c", "auto")
    assert fitted["context"] < 1_000_000 and fitted["max_concurrency"] == 1
    prompt = fitted["prefill"]["input_len"]
    assert prompt == fitted["context"] - 1  # vLLM 0.32 keeps room for one output token
    assert fitted["prefill"]["chunks"] == -(-prompt // 8192)
    # and the fitted plan is the plan asked at that length, TTFT included
    asked = estimate_plan(path, "--gpu", "H100", "--tp", "2", "-c", str(fitted["context"]))
    assert asked["prefill"] == fitted["prefill"] and asked["max_concurrency"] == fitted["max_concurrency"]


def test_auto_fit_still_refuses_a_walk_past_the_bound(tmp_path):
    config = _bundled_config("mistralai--Mixtral-8x7B-v0.1.yaml")
    config["max_position_embeddings"] = 2_000_000_000
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    # at tp 1 the weights leave no cache at all: no length fits, the model's own stays, and its prompt is refused
    line = one_error_line(run_kvplan("estimate", path, "--gpu", "H100", "-c", "auto"))
    assert "--max-num-batched-tokens" in line and "244,141 prefill chunks" in line


# ---- I3: kvplan models' max len is the length estimate serves by default ----------------------------------------

@pytest.mark.parametrize("model, length", [("tiiuae/falcon-7b", 2048), ("tiiuae/falcon-mamba-7b", 2048),
                                           ("meta-llama/Llama-3.1-8B-Instruct", 131072)])
def test_models_lists_the_default_max_model_len(model, length):
    rows = json.loads(run_kvplan("models", "--format", "json").stdout)["models"]
    row = next(r for r in rows if r["id"] == model or model in r["aliases"])
    assert row["default_max_model_len"] == length
    assert estimate_plan(model, "--gpu", "H100")["context"] == length
    table = run_kvplan("models").stdout
    line = next(line for line in table.splitlines() if line.startswith(row["id"] + " "))
    assert f"{length:,}" in line.split()


# ---- I4: --engine none refuses --no-enable-prefix-caching as it refuses --enable-prefix-caching -------------------
# get_engine tested the flag's truth, so the tri-state flag's False (the user's --no-...) read as not given.

@pytest.mark.parametrize("flag", ["--enable-prefix-caching", "--no-enable-prefix-caching"])
def test_engine_none_refuses_either_prefix_caching_flag(flag):
    line = one_error_line(run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--engine", "none", flag))
    assert line.startswith(f"kvplan: error: {flag} is modelled with vLLM only")
