"""Session 54's API / CLI consistency fixes, each through the command line and the Python API.

1. gpu_memory (kvplan's own --gpu-memory, a deployments file's gpu_memory, the API's keyword) is read one way
   everywhere: a size with its unit (80GiB, 80GB, vLLM's 80G), or a number without one, which is bytes (a whole
   float too: the API's and YAML's 85899345920.0); a fraction of a byte (79.5) and a bare number below 1 MiB (40:
   40 GiB meant) are refused with the unit to write. estimate() took a float only as text and refused it where
   check() took it.
2. Pipeline errors name pp and the layer partition as the caller spells them (plan/sharding.py shard(spell=...)):
   --pipeline-parallel-size / --pp-layer-partition on the command line, pipeline_parallel_size / pp_layer_partition
   in the API, pp / pp_layer_partition in a deployments file; estimate said `pp_partition`, a name nobody types.
3. Laguna before vLLM 0.31 (0.30.0 models/laguna.py:509-517 with its own config class, configs/laguna.py:59,
   :67-68: mlp_only_layers [0] and decoder_sparse_step 1 when unset) and from 0.31 (0.31.0 laguna.py:59-67,
   :519-522: mlp_layer_types) build the same MoE layers for a config that carries both keys agreeing, as the
   published ones do; where they disagree kvplan says so in the rules.
4. 0.34's extensible KV cache is checked after warmup at one block count, the smallest any worker measured
   (v1/core/kv_cache_planning.py:1883-1884), worker by worker in rank order (shrink_kv_cache_configs :1827-1861;
   ranks laid out dp, pp, pcp, tp: distributed/parallel_state.py:2164-2170): with uneven stages the refusal words
   stage 0's bytes.
"""

import json

import pytest
from conftest import deployments_file, one_error_line, run_kvplan

import kvplan
from kvplan.errors import FieldError

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"  # bundled: 32 layers, 8 KV heads of 128, bfloat16
KV_BYTES_PER_TOKEN_PER_LAYER = 2 * 8 * 128 * 2  # K and V, 8 heads, head_dim 128, 2 bytes: 4,096
GiB = 2**30


def _json(*args) -> dict:
    run = run_kvplan(*args, "--format", "json")
    assert run.returncode in (0, 1), run.stderr
    return json.loads(run.stdout)


# 1. gpu_memory -------------------------------------------------------------------------------------------------

def test_a_whole_float_is_bytes_in_estimate_and_check():
    """80 GiB = 85,899,345,920 bytes, however it is written."""
    whole_float = 85899345920.0
    (as_float,) = kvplan.estimate(LLAMA_8B, gpu_memory=whole_float)
    (as_text,) = kvplan.estimate(LLAMA_8B, gpu_memory="80GiB")
    assert as_float.budget.gpu_memory_bytes == as_text.budget.gpu_memory_bytes == 85899345920
    assert as_float.max_concurrency == as_text.max_concurrency
    (checked,) = kvplan.check(LLAMA_8B, tensor_parallel_size=1, gpu_memory=whole_float)
    assert checked["gpu_memory"] == 85899345920 and checked["max_concurrency"] == as_text.max_concurrency


def test_kv_cache_memory_bytes_takes_a_whole_float_too():
    (plan,) = kvplan.estimate(LLAMA_8B, kv_cache_memory_bytes=1e10)
    (row,) = kvplan.check(LLAMA_8B, tensor_parallel_size=1, kv_cache_memory_bytes=1e10)
    assert plan.kv_budget_bytes_per_gpu == row["kv_budget_bytes_per_gpu"] == 10**10


@pytest.mark.parametrize("value, unit", [(79.5, "79.5GiB"), ("79.5", "79.5GiB"), (40, "40GiB"), (40.0, "40GiB"),
                                         ("40", "40GiB")])
def test_api_refuses_a_unit_left_off_in_both_functions(value, unit):
    for ask in (lambda: kvplan.estimate(LLAMA_8B, gpu_memory=value),
                lambda: kvplan.check(LLAMA_8B, tensor_parallel_size=1, gpu_memory=value)):
        with pytest.raises(FieldError) as error:
            ask()
        assert error.value.field == "gpu_memory" and f"e.g. {unit}." in str(error.value), str(error.value)
        assert "--gpu-memory" not in str(error.value)


def test_one_mib_without_a_unit_is_still_bytes():
    """The floor is 1 MiB = 1,048,576 bytes: one byte less is refused, that much is a (tiny) GPU."""
    (plan,) = kvplan.estimate(LLAMA_8B, gpu_memory=1048576)
    assert plan.budget.gpu_memory_bytes == 1048576 and plan.max_concurrency == 0
    with pytest.raises(FieldError, match="1,048,575 bytes"):
        kvplan.estimate(LLAMA_8B, gpu_memory=1048575)


@pytest.mark.parametrize("command", [("estimate", LLAMA_8B), ("check", LLAMA_8B, "-tp", "1")])
@pytest.mark.parametrize("value, words", [("40", "'40' is 40 bytes (a number without a unit is bytes), less than "
                                                 "any GPU has; write the unit, e.g. 40GiB."),
                                          ("79.5", "'79.5' is not a whole number of bytes (a number without a unit "
                                                   "is bytes); write the unit, e.g. 79.5GiB.")])
def test_cli_refuses_a_unit_left_off(command, value, words):
    line = one_error_line(run_kvplan(*command, "--gpu-memory", value))
    assert line == f"kvplan: error: --gpu-memory {words}"


@pytest.mark.parametrize("value, fine", [("40", False), ("40.0", False), ("79.5", False), ("80GiB", True),
                                         ("85899345920", True), ("85899345920.0", True)])
def test_deployments_file_reads_gpu_memory_as_the_flag_does(tmp_path, value, fine):
    path = deployments_file(tmp_path, f"  - name: a\n    model: {LLAMA_8B}\n    tp: 1\n    gpu_memory: {value}\n")
    run = run_kvplan("check", "--file", path, "--format", "json")
    if fine:
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["results"][0]["gpu_memory"] == 85899345920
    else:
        line = one_error_line(run)
        assert f"{path}:5: deployment 'a' field 'gpu_memory'" in line and "write the unit" in line, line


# 2. pipeline errors in the caller's names ----------------------------------------------------------------------

def test_estimate_names_the_partition_flag_and_keyword():
    """32 layers: 20 + 10 is not 32."""
    (row,) = _json("estimate", LLAMA_8B, "-pp", "2", "--pp-layer-partition", "20,10")["plans"]
    assert row["tp_errors"] == ["--pp-layer-partition 20,10 must be 2 positive layer counts summing to "
                                "num_hidden_layers (32)."]
    (plan,) = kvplan.estimate(LLAMA_8B, pipeline_parallel_size=2, pp_layer_partition=[20, 10])
    assert plan.tp_errors == ("pp_layer_partition 20,10 must be 2 positive layer counts summing to "
                              "num_hidden_layers (32).",)


def test_too_many_stages_names_pp_in_the_callers_words():
    (row,) = _json("estimate", LLAMA_8B, "-pp", "64")["plans"]
    assert row["tp_errors"][0].startswith("--pipeline-parallel-size 64 exceeds num_hidden_layers (32)")
    (plan,) = kvplan.estimate(LLAMA_8B, pipeline_parallel_size=40)
    assert plan.tp_errors[0].startswith("pipeline_parallel_size 40 exceeds num_hidden_layers (32)")


def test_check_names_both_fields_in_each_surface(tmp_path):
    """A partition of 2 stages against pp 1 is refused as bad input (session 55), in each surface's names."""
    tail = ("has 2 stages (16,16) but {pp} is 1 (its default): vLLM needs one layer count per stage "
            "(VLLM_PP_LAYER_PARTITION); set {pp} to 2, or give 1 layer count.")
    line = one_error_line(run_kvplan("check", LLAMA_8B, "-tp", "1", "--pp-layer-partition", "16,16"))
    assert line == "kvplan: error: --pp-layer-partition " + tail.format(pp="--pipeline-parallel-size")
    with pytest.raises(FieldError) as refused:
        kvplan.check(LLAMA_8B, tensor_parallel_size=1, pp_layer_partition=(16, 16))
    assert str(refused.value) == "pp_layer_partition " + tail.format(pp="pipeline_parallel_size")
    path = deployments_file(tmp_path, f"  - name: a\n    model: {LLAMA_8B}\n    tp: 1\n"
                                      f"    pp_layer_partition: [16, 16]\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert line == f"kvplan: error: {path}:5: deployment 'a' field 'pp_layer_partition' " + tail.format(pp="pp")
    assert "pp_partition" not in line


# 3. Laguna's MoE layers before and from vLLM 0.31 -----------------------------------------------------------------

LAGUNA = dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=8, num_attention_heads=16,
              num_key_value_heads=4, head_dim=128, vocab_size=32000, max_position_embeddings=32768,
              torch_dtype="bfloat16", architectures=["LagunaForCausalLM"], model_type="laguna",
              moe_intermediate_size=512, shared_expert_intermediate_size=512, num_experts=16, num_experts_per_tok=2)
ONE_DENSE = ["dense"] + ["sparse"] * 7  # what transformers writes and 0.31 reads
LAGUNA_NOTE = "vLLM before 0.31 reads mlp_only_layers and decoder_sparse_step"


def _laguna(write_config, **keys) -> dict:
    return _json("estimate", write_config(dict(LAGUNA, **keys)), "-c", "4K", "--engine", "vllm==0.30.0")


@pytest.mark.parametrize("keys", [dict(mlp_only_layers=[0], mlp_layer_types=ONE_DENSE),  # the published shape
                                  dict(mlp_layer_types=ONE_DENSE),  # 0.30's class fills mlp_only_layers [0]
                                  dict(mlp_only_layers=[0], decoder_sparse_step=1)])  # transformers fills the list
def test_laguna_keys_that_agree_plan_the_same_and_say_nothing(write_config, keys):
    """Layer 0 a dense MLP of intermediate_size, 3 x 2,048 x 6,144 = 37,748,736 parameters, layers 1-7 MoE, by
    either release's rule: no note, and the same weights with or without the older keys."""
    result = _laguna(write_config, **keys)
    assert not any(LAGUNA_NOTE in rule for rule in result["model"]["rules"])
    published = _laguna(write_config, mlp_only_layers=[0], mlp_layer_types=ONE_DENSE)
    assert result["model"]["parameters"] == published["model"]["parameters"]


def test_laguna_keys_that_disagree_are_said(write_config):
    """mlp_only_layers [0, 1]: 0.30 builds layers 2-7 MoE (6), mlp_layer_types layers 1-7 (7)."""
    result = _laguna(write_config, mlp_only_layers=[0, 1], mlp_layer_types=ONE_DENSE)
    (note,) = [rule for rule in result["model"]["rules"] if LAGUNA_NOTE in rule]
    assert "6 MoE layers where mlp_layer_types (0.31 on) has 7" in note
    stepped = _laguna(write_config, decoder_sparse_step=2, mlp_layer_types=ONE_DENSE)  # 0.30: layers 1, 3, 5, 7
    assert any("4 MoE layers where mlp_layer_types (0.31 on) has 7" in r for r in stepped["model"]["rules"])


# 4. the after-warmup refusal with uneven stages -----------------------------------------------------------------

def _uneven(via_api: bool) -> dict:
    """8 + 24 layers on a 24 GiB GPU under 0.34: stage 1 passes the profile-time check and falls short after
    warmup."""
    args = dict(pipeline_parallel_size=2, pp_layer_partition="8,24", engine="vllm==0.34.0", max_model_len=131072,
                gpu_memory="24GiB")
    if via_api:
        (plan,) = kvplan.estimate(LLAMA_8B, **args)
        return plan.to_dict()["engine"]
    (row,) = _json("estimate", LLAMA_8B, "-pp", "2", "--pp-layer-partition", "8,24", "--engine", "vllm==0.34.0",
                   "-c", "131072", "--gpu-memory", "24GiB")["plans"]
    return row["engine"]


@pytest.mark.parametrize("via_api", [False, True])
def test_after_warmup_refusal_words_stage_zero(via_api):
    """At the common count N, stage 0 (8 layers) is checked first: its block is 8 x block_size x 4,096 bytes; a
    131,072-token request needs 131,072 x 8 x 4,096 = 4.0 GiB of it, the pool holds (N - 1) blocks (the null
    block held back), and the longest length that fits is (N - 1) x block_size. Stage 1 (24 layers) would have
    said 12.0 GiB needed."""
    engine = _uneven(via_api)
    blocks, block = engine["num_gpu_blocks"], engine["block_size"]
    per_block = 8 * block * KV_BYTES_PER_TOKEN_PER_LAYER
    assert 131072 * 8 * KV_BYTES_PER_TOKEN_PER_LAYER == 4 * GiB
    reason = engine["refusal"]["reason"]
    assert "(4.0 GiB KV cache is needed, which is larger than the available KV cache memory " \
           f"({(blocks - 1) * per_block / GiB:.2f} GiB)" in reason, reason
    assert "12.0 GiB KV cache is needed" not in reason and "CUDA graphs and warmup" in reason
    assert engine["refusal"]["estimated_max_model_len"] == (blocks - 1) * block
