"""compressed-tensors and ModelOpt checkpoints: kvplan's weights against vLLM 0.32.0's own layers (frozen by
benchmarks/vllm_reference/quantized_weights.py), against hand arithmetic, and the refusals."""

import copy
import json
from pathlib import Path

import pytest

from conftest import load_yaml, run_kvplan
from hub_configs import LLAMA3_8B
from kvplan.errors import FieldError, KvplanError
from kvplan.model import parse_config
from kvplan.model.quantization import with_quantization
from kvplan.model.quantized import Scheme, scheme_bytes
from kvplan.plan.catalog import COMPUTE

ROOT = Path(__file__).resolve().parents[1]
FROZEN = json.loads((ROOT / "tests" / "data" / "vllm_quantized_weights.json").read_text())
# parameters vLLM registers beside the weights that are no weight bytes: the attention layer's KV-cache q/k/v/prob
# scales and zero points, and the packed layers' int64 / per-expert `weight_shape` records (16 bytes a layer)
NOT_WEIGHTS = ("q_scale:", "k_scale:", "v_scale:", "prob_scale:", "q_zero_point:", "k_zero_point:", "v_zero_point:",
               "weight_shape:", "w13_weight_shape:", "w2_weight_shape:")


def _spec(model: str, qcfg: dict):
    cfg = load_yaml((ROOT / "model_specs" / (model.replace("/", "--") + ".yaml")).read_text())["config"]
    return parse_config({**copy.deepcopy(cfg), "quantization_config": copy.deepcopy(qcfg)}, model)


@pytest.mark.parametrize("case", FROZEN["cases"], ids=[c["case"] for c in FROZEN["cases"]])
def test_weights_are_the_bytes_vllm_allocates(case):
    assert "error" not in case
    weights = case["bytes"] - sum(v for k, v in case["by_parameter"].items() if k.startswith(NOT_WEIGHTS))
    spec = _spec(case["model"], case["quantization_config"])
    assert sum(g.bytes for g in spec.params) == weights
    experts = next((g.bytes for g in spec.params if g.name == "experts"), 0)
    expert_shapes = sum(v for k, v in case["by_parameter"].items() if k.startswith(("w13_weight_shape",
                                                                                  "w2_weight_shape")))
    assert experts == case["parts"]["experts"] - expert_shapes


def test_frozen_header_names_vllm_and_the_script():
    header = FROZEN["header"]
    assert header["vllm_version"].startswith("0.32.0")
    assert header["script"] == "benchmarks/vllm_reference/quantized_weights.py"


H = 4096  # one 4096 x 4096 matrix, by hand
HAND = [
    (Scheme("fp8-w8a8", 8, "channel"), H * H + 4 * H),  # 1 byte a weight, a float32 scale a row
    (Scheme("fp8-w8a8", 8, "tensor", input_scales=1), H * H + 4 + 4),  # ModelOpt FP8: weight and input scale
    (Scheme("fp8-w8a8", 8, "block", 128, 128), H * H + 4 * 32 * 32),
    (Scheme("int4-w4a16", 4, "group", 128, packed=True), H * H // 2 + H * 32 * 2),  # bf16 scale a group
    (Scheme("int4-w4a16", 4, "group", 128, zero_points=True, packed=True),
     H * H // 2 + H * 32 * 2 + H // 8 * 32 * 4),  # + 4-bit zeros, 8 to an int32
    (Scheme("int8-w8a16", 8, "channel", packed=True), H * H + H * 2),
    (Scheme("nvfp4", 4, "nvfp4", input_scales=1), H * H // 2 + H * H // 16 + 4 + 4),  # fp8 scale a 16
    (Scheme("nvfp4-w4a16", 4, "nvfp4"), H * H // 2 + H * H // 16 + 4),
]


@pytest.mark.parametrize("scheme,expected", HAND, ids=[f"{s.stored}-{s.scales}" for s, _ in HAND])
def test_one_matrix_by_hand(scheme, expected):
    assert scheme_bytes(scheme, H, H, 2) == expected


def _ct(weights: dict, inputs=None, fmt="pack-quantized", **extra) -> dict:
    return {"quant_method": "compressed-tensors", "format": fmt, "ignore": ["lm_head"],
            "config_groups": {"group_0": {"targets": ["Linear"], "weights": weights, "input_activations": inputs}},
            **extra}


W4A16 = {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128, "symmetric": True}


def test_ignore_and_targets_pick_the_layers():
    base = parse_config(LLAMA3_8B, "llama")
    ignored = parse_config({**LLAMA3_8B, "quantization_config": _ct(W4A16, ignore=["lm_head", "re:.*self_attn.*"])},
                           "llama")
    stored = {g.name: g.stored for g in ignored.params if g.parameters}
    assert stored["attention"] == "bf16" and stored["dense"] == "int4-w4a16" and stored["lm_head"] == "bf16"
    attention = next(g for g in base.params if g.name == "attention")
    assert next(g for g in ignored.params if g.name == "attention").bytes == attention.bytes
    # the LM head only when a target names it; one layer's MLP left out by name
    head = _ct(W4A16, ignore=["model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj",
                              "model.layers.0.mlp.down_proj"])
    head["config_groups"]["group_0"]["targets"] = ["Linear", "lm_head"]
    spec = parse_config({**LLAMA3_8B, "quantization_config": head}, "llama")
    dense = next(g for g in spec.params if g.name == "dense")
    per_layer = dense.parameters // 32
    assert dense.bytes == pytest.approx(per_layer * 2 + 31 * per_layer * (0.5 + 2 / 128))
    assert next(g for g in spec.params if g.name == "lm_head").stored == "int4-w4a16"


def test_modelopt_reads_hf_quant_config_form_and_excludes_by_wildcard():
    qcfg = {"quant_method": "modelopt", "quantization": {"quant_algo": "NVFP4", "group_size": 16,
                                                         "exclude_modules": ["lm_head", "model.layers.1*"]}}
    spec = parse_config({**LLAMA3_8B, "quantization_config": qcfg}, "llama")
    dense = next(g for g in spec.params if g.name == "dense")
    per_layer = dense.parameters // 32
    assert dense.stored == "nvfp4"
    # "model.layers.1*" leaves layers 1 and 10-19 in bf16; the rest: half a byte and an fp8 scale per 16 weights,
    # and two float32 global scales (weight, input) for each of gate, up and down
    assert dense.bytes == pytest.approx(11 * per_layer * 2 + 21 * (per_layer * (0.5 + 1 / 16) + 3 * 8), rel=1e-9)


@pytest.mark.parametrize("qcfg,words", [
    ({"quant_method": "modelopt", "quant_algo": "INT4_AWQ"}, ("quant_algo", "INT4_AWQ", "NVFP4")),
    ({"quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 32}, ("group_size", "16")),
    (_ct({**W4A16, "actorder": "group"}), ("actorder", "refused by vLLM")),
    (_ct({"num_bits": 4, "type": "float", "strategy": "group", "group_size": 32}, fmt="mxfp4-pack-quantized"),
     ("config_groups.group_0", "does not price")),
    ({"quant_method": "compressed-tensors", "format": "pack-quantized"}, ("config_groups", "missing")),
    # a string, not a list: each character matched as a substring once left every layer in bf16 (vLLM refuses it)
    ({"quant_method": "modelopt", "quantization": {"quant_algo": "NVFP4", "exclude_modules": "lm_head"}},
     ("quantization.exclude_modules", "must be a list")),
    ({"quant_method": "modelopt", "quant_algo": "FP8", "ignore": "lm_head"}, ("quantization_config.ignore", "list")),
])
def test_unpriced_variants_are_refused_in_one_sentence(write_config, qcfg, words):
    with pytest.raises(KvplanError, match="config field"):
        parse_config({**LLAMA3_8B, "quantization_config": qcfg}, "llama")
    result = run_kvplan("estimate", write_config({**LLAMA3_8B, "quantization_config": qcfg}))
    assert result.returncode == 2 and result.stdout == ""
    err = result.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert all(w in err for w in words), err


def test_quantization_flag_refuses_another_method_on_a_compressed_tensors_checkpoint():
    spec = parse_config({**LLAMA3_8B, "quantization_config": _ct(W4A16)}, "llama")
    with pytest.raises(FieldError, match="stored as int4-w4a16"):
        with_quantization(spec, "fp8")


def test_peaks_follow_the_stored_precision():
    assert COMPUTE["B200"].peak("nvfp4") == 9000e12  # fp4 tensor cores
    assert COMPUTE["H200"].peak("nvfp4") == COMPUTE["H200"].bf16  # Hopper: Marlin weight-only FP4
    assert COMPUTE["H200"].peak("fp8-w8a8") == COMPUTE["H200"].fp8
    assert COMPUTE["H200"].peak("fp8-w8a16") == COMPUTE["H200"].peak("int4-w4a16") == COMPUTE["H200"].bf16
    assert COMPUTE["A100-80GB"].peak("fp8-w8a8") == COMPUTE["A100-80GB"].bf16  # no fp8 tensor cores


@pytest.mark.parametrize("qcfg", [_ct(W4A16), {"quant_method": "modelopt", "quant_algo": "FP8"}])
def test_verify_refuses_the_formats_it_does_not_run(qcfg):
    from kvplan.verify.arch import architecture

    raw = {**LLAMA3_8B, "quantization_config": qcfg}
    with pytest.raises(KvplanError, match="stores weights as (int4-w4a16|fp8-w8a8); verify's forward pass runs"):
        architecture(raw, parse_config(raw, "llama"), 1)


def test_a_target_naming_the_layer_wins_over_linear_whatever_the_group_order():
    """find_matched_target tries the layer's name (and re:) against every group's targets before its class, so an
    attention regex in a later group beats an earlier "Linear" group: Llama-3-8B's q, k, v, o (4,096 + 1,024 +
    1,024 + 4,096 rows of 4,096) in fp8 with a float32 scale a row, in either order."""
    fp8 = {"targets": ["re:.*self_attn.*"], "format": "float-quantized",
           "weights": {"num_bits": 8, "type": "float", "strategy": "channel", "symmetric": True},
           "input_activations": {"num_bits": 8, "type": "float", "strategy": "token", "dynamic": True}}
    int4 = {"targets": ["Linear"], "format": "pack-quantized", "weights": W4A16}
    for groups in ({"a": fp8, "b": int4}, {"b": int4, "a": fp8}):
        qcfg = {"quant_method": "compressed-tensors", "format": "mixed", "ignore": ["lm_head"], "config_groups": groups}
        spec = parse_config({**LLAMA3_8B, "quantization_config": qcfg}, "llama")
        assert next(g.bytes for g in spec.params if g.name == "attention") == 32 * (10240 * 4096 + 4 * 10240)
