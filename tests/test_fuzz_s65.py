"""Defects the s65 fuzz round found (/tmp/s65/fuzz), each reproduced here. Bad input is one line on stderr naming the
field and what is valid, exit 2.

H1  `kvplan check MODEL --file deploy.yaml` read MODEL as a second deployments file and said "--file MODEL does not
    exist", naming a flag the user never gave the model to.
H2  the redundant experts' flags with EPLB off were never held to the release: --num-redundant-experts 0 under vLLM
    0.32 (whose argparse dropped the flag in 0.12; the docs say it is always refused) and --eplb-config under a
    release before 0.10.2 (which has no such flag) planned silently; with --enable-eplb both were refused.
H3  block_configs (Nemotron-NAS / DeciLM layers without attention or with their own KV heads; NemotronH puzzle
    layers with their own experts) and DeciLM-7B's num_key_value_heads_per_layer were read past: every layer was
    sized as a plain Llama layer with all query heads as KV heads (21x the KV bytes of the case below).
H4  a rope_scaling or rope_parameters that is no mapping (a list, a string) was skipped, and the model planned at its
    unscaled length; transformers (and so vLLM) cannot read such a config.
H5  --speculative-config's prompt_lookup_min / prompt_lookup_max: values vLLM's SpeculativeConfig refuses (below 1,
    min above max for ngram) planned silently.
H6  `kvplan check MODEL -tp N --num-redundant-experts K` handed the flag's text to the deployments file's reader,
    which refused every K as "must be a whole number of experts, unquoted, got '0'": the flag never worked in check.
"""

from __future__ import annotations

import json

import pytest
from conftest import one_error_line, run_kvplan

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
MOE = "Qwen/Qwen3-30B-A3B"
LLAMA_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
                "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
                "tie_word_embeddings": False, "torch_dtype": "bfloat16"}


def _deployments(tmp_path, extra: str = ""):
    path = tmp_path / "deploy.yaml"
    path.write_text(f"deployments:\n  - name: a\n    model: {MOE}\n    tp: 1\n    context: 4096\n{extra}")
    return path


# ---- H1: MODEL beside --file -------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [LLAMA, "no-such-deploy.yaml"])
def test_an_argument_beside_file_that_is_no_file_is_said_so(tmp_path, extra):
    line = one_error_line(run_kvplan("check", extra, "--file", _deployments(tmp_path)))
    assert f"'{extra}'" in line and "--file" in line and "deployments file" in line
    assert "--file " + extra not in line  # it was never given to --file


def test_a_folder_beside_file_is_said_so(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    line = one_error_line(run_kvplan("check", folder, "--file", _deployments(tmp_path)))
    assert "is a folder" in line and "--file " + str(folder) not in line


def test_files_beside_file_are_still_read(tmp_path):
    first = _deployments(tmp_path)
    second = tmp_path / "second.yaml"
    second.write_text(first.read_text().replace("name: a", "name: b"))
    result = run_kvplan("check", "--file", first, second, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert [r["name"] for r in json.loads(result.stdout)["results"]] == ["a", "b"]


# ---- H2: the redundant experts' flags with EPLB off --------------------------------------------------------------

def test_num_redundant_experts_0_is_refused_where_the_release_has_no_such_flag():
    line = one_error_line(run_kvplan("estimate", MOE, "-c", "4K", "--num-redundant-experts", "0"))
    assert "--num-redundant-experts" in line and "removed in vLLM 0.12" in line


def test_num_redundant_experts_0_needs_the_release_that_added_it():
    line = one_error_line(run_kvplan("estimate", MOE, "-c", "4K", "--num-redundant-experts", "0",
                                     "--engine", "vllm==0.9.0"))
    assert "--num-redundant-experts" in line and "0.9.2" in line


def test_num_redundant_experts_0_plans_where_the_release_has_the_flag():
    assert run_kvplan("estimate", MOE, "-c", "4K", "--num-redundant-experts", "0",
                      "--engine", "vllm==0.10.0").returncode == 0


def test_eplb_config_before_its_release_is_refused_with_eplb_off():
    line = one_error_line(run_kvplan("estimate", MOE, "-c", "4K", "--eplb-config", '{"window_size": 10}',
                                     "--engine", "vllm==0.9.0"))
    assert "--eplb-config" in line and "0.10.2" in line


def test_eplb_config_with_eplb_off_still_plans_where_the_release_has_it():
    assert run_kvplan("estimate", MOE, "-c", "4K", "--eplb-config", '{"window_size": 10}').returncode == 0


def test_num_redundant_experts_0_in_a_deployments_file_is_refused_on_its_line(tmp_path):
    line = one_error_line(run_kvplan("check", "--file", _deployments(tmp_path, "    num_redundant_experts: 0\n")))
    assert "deploy.yaml:6:" in line and "'num_redundant_experts'" in line and "removed in vLLM 0.12" in line


def test_check_reads_the_num_redundant_experts_flag_as_estimate_does():
    assert run_kvplan("check", MOE, "-tp", "1", "-c", "4K", "--num-redundant-experts", "0",
                      "--engine", "vllm==0.10.0").returncode == 0
    line = one_error_line(run_kvplan("check", MOE, "-tp", "1", "-c", "4K", "--num-redundant-experts", "0"))
    assert "removed in vLLM 0.12" in line and "unquoted" not in line
    line = one_error_line(run_kvplan("check", MOE, "-tp", "1", "--num-redundant-experts", "x"))
    assert line.endswith("--num-redundant-experts must be a whole number of experts, 0 or more, got 'x'.")


def test_the_api_refuses_num_redundant_experts_0_as_the_command_line_does():
    from kvplan import api
    from kvplan.errors import KvplanError

    with pytest.raises(KvplanError, match="num_redundant_experts.*removed in vLLM 0.12"):
        api.estimate(MOE, max_model_len=4096, num_redundant_experts=0)


# ---- H3: per-layer block settings --------------------------------------------------------------------------------

NEMOTRON_NAS = {"architectures": ["DeciLMForCausalLM"], "model_type": "nemotron-nas", "hidden_size": 8192,
                "num_hidden_layers": 4, "num_attention_heads": 64, "vocab_size": 128256,
                "max_position_embeddings": 131072, "torch_dtype": "bfloat16",
                "block_configs": [
                    {"attention": {"n_heads_in_group": 8, "no_op": False}, "ffn": {"ffn_mult": 1.3, "no_op": False}},
                    {"attention": {"n_heads_in_group": None, "no_op": True}, "ffn": {"ffn_mult": 1.3, "no_op": False}},
                    {"attention": {"n_heads_in_group": 16, "no_op": False}, "ffn": {"ffn_mult": 2.0, "no_op": False}},
                    {"attention": {"n_heads_in_group": None, "no_op": True}, "ffn": {"ffn_mult": 2.0, "no_op": True}}]}


def test_nemotron_nas_block_configs_are_refused_not_read_as_a_uniform_model(write_config):
    line = one_error_line(run_kvplan("estimate", write_config(NEMOTRON_NAS)))
    assert "'block_configs'" in line and "nemotron_nas.py" in line


def test_nemotronh_puzzle_block_configs_are_refused(write_config):
    config = {**LLAMA_CONFIG, "architectures": ["NemotronHForCausalLM"], "model_type": "nemotron_h",
              "hybrid_override_pattern": "M*" * 16, "mamba_num_heads": 64, "mamba_head_dim": 64,
              "ssm_state_size": 128, "n_groups": 8, "conv_kernel": 4, "expand": 2,
              "block_configs": [{"block_type": "moe", "n_routed_experts": 64}, {"block_type": "attention"}] * 16}
    assert "'block_configs'" in one_error_line(run_kvplan("estimate", write_config(config)))


def test_decilm_per_layer_kv_heads_are_refused(write_config):
    config = {**LLAMA_CONFIG, "architectures": ["DeciLMForCausalLM"], "model_type": "deci",
              "num_key_value_heads_per_layer": [4] * 16 + [2] * 16}
    del config["num_key_value_heads"]
    assert "'num_key_value_heads_per_layer'" in one_error_line(run_kvplan("estimate", write_config(config)))


@pytest.mark.parametrize("value", [None, []])
def test_an_empty_block_configs_still_plans(write_config, value):
    assert run_kvplan("estimate", write_config({**LLAMA_CONFIG, "block_configs": value}),
                      "-c", "4K").returncode == 0


# ---- H4: rope_scaling that is no mapping -------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["rope_scaling", "rope_parameters"])
@pytest.mark.parametrize("value, shown", [([1, 2], "[1, 2]"), ("linear", '"linear"'), (8, "8")])
def test_a_rope_entry_that_is_no_mapping_is_refused_by_name(write_config, key, value, shown):
    line = one_error_line(run_kvplan("estimate", write_config({**LLAMA_CONFIG, key: value})))
    assert f"'{key}'" in line and "mapping" in line and shown in line


def test_a_null_rope_scaling_still_plans(write_config):
    assert run_kvplan("estimate", write_config({**LLAMA_CONFIG, "rope_scaling": None}),
                      "-c", "4K").returncode == 0


# ---- H5: the ngram proposer's window -----------------------------------------------------------------------------

@pytest.mark.parametrize("extra, said", [
    ({"prompt_lookup_max": 0}, "prompt_lookup_max must be a whole number, 1 or more, got 0"),
    ({"prompt_lookup_min": -1}, "prompt_lookup_min must be a whole number, 1 or more, got -1"),
    ({"prompt_lookup_max": 2.5}, "prompt_lookup_max must be a whole number, 1 or more"),
    ({"prompt_lookup_min": True}, "prompt_lookup_min must be a whole number, 1 or more"),
    ({"prompt_lookup_min": 5, "prompt_lookup_max": 2}, "prompt_lookup_min (5) must be at most prompt_lookup_max (2)"),
])
def test_an_ngram_window_vllm_refuses_is_refused(extra, said):
    config = json.dumps({"method": "ngram", "num_speculative_tokens": 3, **extra})
    line = one_error_line(run_kvplan("estimate", LLAMA, "-c", "4K", "--speculative-config", config))
    assert "--speculative-config" in line and said in line


@pytest.mark.parametrize("extra", [{}, {"prompt_lookup_max": 4}, {"prompt_lookup_min": 2, "prompt_lookup_max": 4},
                                   {"prompt_lookup_min": None}])
def test_an_ngram_window_vllm_takes_still_plans(extra):
    config = json.dumps({"method": "ngram", "num_speculative_tokens": 3, **extra})
    result = run_kvplan("estimate", LLAMA, "-c", "4K", "--speculative-config", config)
    assert result.returncode == 0, result.stderr


def test_min_above_max_is_ngrams_rule_only():
    """vLLM compares the two for the ngram proposers only; suffix decoding leaves them unread."""
    config = json.dumps({"method": "suffix", "num_speculative_tokens": 3, "prompt_lookup_min": 5,
                         "prompt_lookup_max": 2})
    assert run_kvplan("estimate", LLAMA, "-c", "4K", "--speculative-config", config).returncode == 0


# ---- routed experts with none chosen per token -------------------------------------------------------------------

MIXTRAL_LIKE = {**LLAMA_CONFIG, "architectures": ["MixtralForCausalLM"], "model_type": "mixtral",
                "num_local_experts": 8, "num_experts_per_tok": 2}


def test_routed_experts_with_0_per_token_are_refused(write_config):
    """num_experts_per_tok 0 beside 8 routed experts: planned before as if every expert were read each step
    (batch-1 ITL 40.4 ms at 4K on an H100 against 12.0 ms at top 2, Mixtral-8x7B's shapes); vLLM's FusedMoE takes a
    top_k of 1 or more."""
    line = one_error_line(run_kvplan("estimate", write_config({**MIXTRAL_LIKE, "num_experts_per_tok": 0})))
    assert line.endswith("config field 'num_experts_per_tok' must be a positive integer, got 0.")
    assert run_kvplan("estimate", write_config(MIXTRAL_LIKE)).returncode == 0
    # a dense model may carry the field at 0 (no routed experts: nothing to choose)
    assert run_kvplan("estimate", write_config({**LLAMA_CONFIG, "num_experts_per_tok": 0})).returncode == 0
