"""Defects the s57 fuzz campaign found (/tmp/s57/fuzz), each reproduced here:

D1  -q mxfp4 on a dense model naming no MLP width divided by zero in the MXFP4 expert padding. vLLM pads routed
    experts only: Mxfp4Config.get_quant_method gives a LinearBase UnquantizedLinearMethod and RoutedExperts an MoE
    method (model_executor/layers/quantization/mxfp4.py 0.32.0:91-107), whose maybe_roundup_sizes is the one place
    sizes are rounded up (:607-625). A dense model's weights load as stored.
D5  api.check kept every resolved model for the life of the process: a config.json edited between calls was not
    read again.
D6  api.check with a model that is no text raised TypeError (unhashable) where api.estimate raises FieldError.
D8  a --kv-cache-dtype no release takes was refused listing vLLM 0.34's values under any engine.
"""

from __future__ import annotations

import json

import pytest
from conftest import estimate_plan, one_error_line, run_kvplan
from tests.hub_configs import LLAMA3_8B

import kvplan
from kvplan.errors import FieldError

LLAMA_8B = {  # meta-llama/Llama-3.1-8B's config.json, its rope scaling left out
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
    "max_position_embeddings": 8192, "vocab_size": 128256, "torch_dtype": "bfloat16", "tie_word_embeddings": False,
    "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
}


# D1 ------------------------------------------------------------------------------------------------------------

def _weights(*args) -> int:
    return estimate_plan(*args, "--gpu", "h100")["budget"]["weights_bytes_per_gpu"]


def test_mxfp4_on_dense_falcon_loads_its_weights_as_stored():
    # falcon-7b's config names no intermediate_size (its MLP is 4 x hidden); its checkpoint is 14,434,379,520 bytes
    # of bf16 (metadata.total_size of its pytorch_model.bin.index.json), loaded as stored: nothing is padded
    # -- up to 0.27, where Mxfp4Config quantises routed experts only. From 0.28 -q mxfp4 on a bf16 checkpoint is the
    # online method, which quantises every linear layer too (vllm_mxfp4_online.py; session 73): less than stored.
    plain = _weights("tiiuae/falcon-7b", "--engine", "vllm==0.27.0")
    assert _weights("tiiuae/falcon-7b", "-q", "mxfp4", "--engine", "vllm==0.27.0") == plain == 14_434_379_520
    assert _weights("tiiuae/falcon-7b", "-q", "mxfp4", "--engine", "vllm==0.32.0") < plain


def test_mxfp4_check_on_dense_falcon_gives_a_verdict():
    run = run_kvplan("check", "tiiuae/falcon-40b", "-tp", "1", "-q", "mxfp4")
    assert run.returncode in (0, 1), run.stderr  # a verdict, not kvplan's internal error (exit 3)
    assert "ZeroDivisionError" not in run.stderr


def test_mxfp4_on_a_llama_config_without_intermediate_size(write_config):
    config = {key: value for key, value in LLAMA_8B.items() if key != "intermediate_size"}
    path = write_config(config)
    plain = estimate_plan(str(path), "--gpu", "h100", "--engine", "vllm==0.27.0")
    old = estimate_plan(str(path), "--gpu", "h100", "-q", "mxfp4", "--engine", "vllm==0.27.0")
    assert old["budget"]["weights_bytes_per_gpu"] == plain["budget"]["weights_bytes_per_gpu"]
    # from 0.28 the online method quantises the linear layers too (vllm_mxfp4_online.py; session 73)
    served = estimate_plan(str(path), "--gpu", "h100", "-q", "mxfp4")
    assert served["budget"]["weights_bytes_per_gpu"] < plain["budget"]["weights_bytes_per_gpu"]
    weights = next(t for t in served["budget"]["terms"] if t["name"] == "weights")
    assert "padded" not in weights["source"]  # no experts, no kernel tile


def test_mxfp4_on_dense_llama_says_no_padding():
    weights = next(t for t in estimate_plan("meta-llama/Llama-3.1-8B", "--gpu", "h100", "-q", "mxfp4")
                   ["budget"]["terms"] if t["name"] == "weights")
    assert "padded" not in weights["source"]  # it read "MXFP4 experts padded x1.0000" of experts holding nothing


# D5 ------------------------------------------------------------------------------------------------------------

def test_check_reads_an_edited_config_again(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(LLAMA_8B))
    before = kvplan.check(str(tmp_path), tensor_parallel_size=8)[0]
    # 36 query heads: tp 8 does not divide them (36 = 4 x 9)
    (tmp_path / "config.json").write_text(json.dumps({**LLAMA_8B, "num_attention_heads": 36,
                                                      "num_key_value_heads": 12}))
    after = kvplan.check(str(tmp_path), tensor_parallel_size=8)[0]
    assert before["passed"] and before["num_attention_heads"] == 32
    assert not after["passed"] and after["num_attention_heads"] == 36


def test_check_reads_a_model_once_per_call(monkeypatch):
    from kvplan.commands.check import served as command

    reads = []
    real = command.resolve
    monkeypatch.setattr(command, "resolve", lambda *a, **k: reads.append(a[0]) or real(*a, **k))
    kvplan.check("meta-llama/Llama-3.1-8B", tensor_parallel_size=[1, 2, 4, 8])
    assert reads == ["meta-llama/Llama-3.1-8B"]  # four deployments, one read
    kvplan.check("meta-llama/Llama-3.1-8B", tensor_parallel_size=1)
    assert len(reads) == 2  # a new call reads it again


# D6 ------------------------------------------------------------------------------------------------------------

# a dict ({}) is a config.json's object since session 81 (tests/test_api_config_s81.py), read as that file
@pytest.mark.parametrize("model", [[], set(), ["meta-llama/Llama-3.1-8B"]])
def test_check_refuses_a_model_that_is_no_text_as_estimate_does(model):
    with pytest.raises(FieldError) as estimate:
        kvplan.estimate(model)
    with pytest.raises(FieldError) as check:
        kvplan.check(model, tensor_parallel_size=1)
    assert check.value.field == estimate.value.field == "model"
    assert str(check.value) == str(estimate.value)


# D8 ------------------------------------------------------------------------------------------------------------

def _listed(*args) -> str:
    return one_error_line(run_kvplan(*args, "--kv-cache-dtype", "bogus"))


def test_an_unknown_kv_dtype_lists_the_default_release():
    line = _listed("estimate", "meta-llama/Llama-3.1-8B", "--gpu", "h100")
    # the default engine is vLLM 0.32.0; the octave_* formats were first listed in 0.33.0
    # (vllm/config/cache.py 0.33.0:58-60, absent from 0.32.0's CacheDType)
    assert "vLLM 0.32.0's --kv-cache-dtype values" in line
    assert "octave" not in line and "ultraquant_4bit" in line


def test_an_unknown_kv_dtype_lists_the_chosen_release():
    # vllm/config/cache.py 0.11.0:25-26: CacheDType = auto, bfloat16, fp8, fp8_e4m3, fp8_e5m2, fp8_inc
    for command in (("estimate", "meta-llama/Llama-3.1-8B", "--gpu", "h100"),
                    ("check", "meta-llama/Llama-3.1-8B", "-tp", "1")):
        line = _listed(*command, "--engine", "vllm==0.11.0")
        listed = line.split("use one of ")[1].split(" (")[0].split(", ")
        assert sorted(listed) == sorted(["auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc"])
        assert "vLLM 0.11.0's" in line


def test_an_unknown_kv_dtype_under_no_engine_says_which_list():
    line = _listed("estimate", "meta-llama/Llama-3.1-8B", "--gpu", "h100", "--engine", "none")
    assert "vLLM 0.34's --kv-cache-dtype values" in line and "no release is chosen" in line
    assert "octave_k3v4" in line  # 0.34.0 lists it (config/cache.py)


def test_a_deployments_file_lists_its_engines_values(tmp_path):
    path = tmp_path / "deployments.yaml"
    path.write_text("deployments:\n- name: a\n  model: meta-llama/Llama-3.1-8B\n  tp: 1\n  kv_dtype: bogus\n"
                    "  engine: vllm==0.11.0\n")
    line = one_error_line(run_kvplan("check", "--file", str(path)))
    assert ":5:" in line and "vLLM 0.11.0's" in line and "turboquant" not in line


# ---- D2-D4: quantisation settings vLLM itself stops on, refused in one line (not a traceback) -----------------------


FP8_TENSOR = {"num_bits": 8, "type": "float", "strategy": "tensor", "symmetric": True, "dynamic": False}
CT = {"quant_method": "compressed-tensors", "format": "float-quantized", "ignore": ["lm_head"],
      "config_groups": {"group_0": {"targets": ["Linear"], "weights": FP8_TENSOR, "input_activations": FP8_TENSOR}}}


def _config_error(tmp_path, qcfg) -> str:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({**LLAMA3_8B, "quantization_config": qcfg}))
    return one_error_line(run_kvplan("estimate", folder, "--gpu", "h100"))


@pytest.mark.parametrize("ignore", [True, 1, -1, None, False, 0])
def test_a_compressed_tensors_ignore_vllm_cannot_iterate(tmp_path, ignore):
    """compressed_tensors.py 0.32.0:254 reads config.get("ignore", []) and casts it to a list without checking;
    should_ignore_layer iterates it: null, a bool or a number raises TypeError."""
    assert "'quantization_config.ignore' must be a list" in _config_error(tmp_path, {**CT, "ignore": ignore})


def test_a_string_ignore_is_read_as_vllm_reads_it(tmp_path):
    """A string is iterated letter by letter (no letter names a layer): the LM head then counts as quantised, as the
    "Linear" target reaches it in vLLM too; no refusal."""
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({**LLAMA3_8B, "quantization_config": {**CT, "ignore": "lm_head"}}))
    assert run_kvplan("estimate", folder, "--gpu", "h100").returncode == 0


@pytest.mark.parametrize("where", ["ignore", "targets"])
def test_a_pattern_that_does_not_compile(tmp_path, where):
    """re:-prefixed entries are matched with re.match as each layer is built (config_utils.py
    is_equal_or_regex_match): "re:(" raises re.error there."""
    if where == "ignore":
        qcfg, field = {**CT, "ignore": ["lm_head", "re:("]}, "quantization_config.ignore"
    else:
        group = {**CT["config_groups"]["group_0"], "targets": ["re:.*["]}
        qcfg, field = {**CT, "config_groups": {"group_0": group}}, "quantization_config.config_groups.group_0.targets"
    line = _config_error(tmp_path, qcfg)
    assert f"'{field}' holds" in line and "not a regular expression" in line


@pytest.mark.parametrize("sym", [[], {}, [True]])
@pytest.mark.parametrize("dynamic", [None, {"+:model.layers.0.*": {"bits": 8}}])
def test_a_gptq_sym_vllm_cannot_look_up(tmp_path, sym, dynamic):
    """`(bits, sym) in TYPE_MAP` (gptq_marlin.py 0.11.0:236, auto_gptq.py 0.32.0:152) raises TypeError on a list or
    an object, with or without dynamic rules."""
    qcfg = {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False, "sym": sym}
    if dynamic:
        qcfg["dynamic"] = dynamic
    assert "'quantization_config.sym' must be true or false" in _config_error(tmp_path, qcfg)


@pytest.mark.parametrize("engine, hinted", [("vllm==0.11.0", False), ("vllm==0.20.0", True), ("vllm==0.32.0", True)])
def test_the_int8_hint_only_where_the_release_takes_it(engine, hinted):
    """int8_per_token_head is a --kv-cache-dtype value from 0.20.0 (config/cache.py:31), absent from 0.11.0's list
    (auto, fp8, fp8_e4m3, fp8_e5m2, fp8_inc, bfloat16: config/cache.py 0.11.0:25-26): the hint names it only there."""
    line = one_error_line(run_kvplan("estimate", "meta-llama/Llama-3.1-8B", "--gpu", "h100", "--kv-cache-dtype",
                                     "int8", "--engine", engine))
    assert ("use int8_per_token_head" in line) is hinted
    if not hinted:
        assert "auto, fp8, fp8_e4m3, fp8_e5m2, fp8_inc, bfloat16 (vLLM 0.11.0's" in line
