"""Session 57: a compressed-tensors checkpoint whose settings sit under config.json's "compression_config".

Read by hand in vLLM's source:
- The method: ModelConfig._parse_quant_hf_config takes hf_config.quantization_config, and where that is None
  hf_config.compression_config (config/model.py 0.11.0:857-861); the text_config's only where the wrapper gives none
  (0.11.0:886-890). 0.14.0 on: model_arch_config_convertor.py _normalize_quantization_config (0.14.0:138-142,
  0.32.0:263-267, 0.34.0:241-245) and get_quantization_config (0.14.0:175-181).
- The weights: get_quant_config reads hf_config.quantization_config, then the text_config's, then
  hf_config.compression_config (model_loader/weight_utils.py 0.11.0:239-247, 0.32.0:235-242, 0.34.0:256-263).
- Checkpoints of this shape: llm-compressor's 2024 output (e.g. neuralmagic's FP8 Llama 3 repos), config_groups with
  8-bit float weights and input activations per tensor, lm_head ignored.

Hand arithmetic (tests/test_hf_quant_config.py's count of Llama-3.1-8B): per layer 7 matrices of 218,103,808
elements in fp8 (one byte) with a float32 weight scale and a float32 input scale each; the embeddings, LM head and
norms in bf16 (2,101,878,784 bytes): 32 x (218,103,808 + 7 x 8) + 2,101,878,784 = 9,081,202,432 bytes, against
16,060,522,496 in bf16.
"""

from __future__ import annotations

import json

import pytest

from tests.checkpoints import checkpoint_folder
from tests.conftest import one_error_line, run_kvplan
from tests.hub_configs import LLAMA3_8B, MISTRAL3_WRAPPER
from kvplan.model.config import COMPRESSION_NOTE
from kvplan.model.sources import resolve

LLAMA = {**LLAMA3_8B, "max_position_embeddings": 131072}  # Llama-3.1-8B's shape
FP8_TENSOR = {"num_bits": 8, "type": "float", "strategy": "tensor", "symmetric": True, "dynamic": False,
              "group_size": None, "block_structure": None, "observer": "minmax", "observer_kwargs": {}}
COMPRESSED = {"config_groups": {"group_0": {"targets": ["Linear"], "weights": FP8_TENSOR,
                                            "input_activations": FP8_TENSOR, "output_activations": None}},
              "format": "naive-quantized", "ignore": ["lm_head"], "kv_cache_scheme": None,
              "quant_method": "compressed-tensors", "quantization_status": "frozen"}
FP8_BYTES = 32 * (218_103_808 + 7 * 8) + 2_101_878_784
BF16_BYTES = 16_060_522_496


def test_the_hand_arithmetic():
    assert FP8_BYTES == 9_081_202_432


def test_a_compression_config_prices_the_checkpoint(tmp_path):
    spec = resolve(str(checkpoint_folder(tmp_path, {**LLAMA, "compression_config": COMPRESSED})))
    assert (spec.quantization, spec.weights.bytes, spec.weights.dtype) == ("compressed-tensors", FP8_BYTES,
                                                                           "fp8-w8a8")
    assert COMPRESSION_NOTE in spec.notes


def _plan(folder) -> dict:
    r = run_kvplan("estimate", folder, "--gpu", "h100", "-c", "8192", "--format", "json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    result["model"].pop("id")
    result["model"]["rules"] = [rule for rule in result["model"]["rules"] if "compression_config" not in rule]
    for plan in result["plans"]:
        plan.pop("model")
    return result


def test_the_same_plan_as_under_quantization_config(tmp_path):
    """vLLM builds one quantisation config from either key: the plans are the same but for the note."""
    old = _plan(checkpoint_folder(tmp_path, {**LLAMA, "compression_config": COMPRESSED}, name="old"))
    new = _plan(checkpoint_folder(tmp_path, {**LLAMA, "quantization_config": COMPRESSED}, name="new"))
    assert old == new
    bf16 = _plan(checkpoint_folder(tmp_path, LLAMA, name="bf16"))
    assert old["plans"][0]["max_concurrency"] > bf16["plans"][0]["max_concurrency"]


def test_a_kv_cache_scheme_in_it_stores_fp8_under_auto(tmp_path):
    """The attention layer reads kv_cache_scheme from the quantisation config built from compression_config."""
    scheme = {**COMPRESSED, "kv_cache_scheme": {"num_bits": 8, "type": "float", "strategy": "tensor",
                                                "symmetric": True, "dynamic": False}}
    old = _plan(checkpoint_folder(tmp_path, {**LLAMA, "compression_config": scheme}, name="old"))
    new = _plan(checkpoint_folder(tmp_path, {**LLAMA, "quantization_config": scheme}, name="new"))
    assert old == new and old["plans"][0]["kv_dtype"].startswith("fp8")


def test_quantization_config_wins(tmp_path):
    """compression_config is read only where hf_config has no quantization_config (a null one is none)."""
    own = {"quant_method": "fp8", "activation_scheme": "dynamic"}
    spec = resolve(str(checkpoint_folder(tmp_path, {**LLAMA, "quantization_config": own,
                                                    "compression_config": COMPRESSED}, name="both")))
    assert spec.quantization == "fp8" and COMPRESSION_NOTE not in spec.notes
    spec = resolve(str(checkpoint_folder(tmp_path, {**LLAMA, "quantization_config": None,
                                                    "compression_config": COMPRESSED}, name="null")))
    assert (spec.quantization, spec.weights.bytes) == ("compressed-tensors", FP8_BYTES)


def test_a_null_compression_config_is_none(tmp_path):
    spec = resolve(str(checkpoint_folder(tmp_path, {**LLAMA, "compression_config": None})))
    assert (spec.quantization, spec.weights.bytes) == ("", BF16_BYTES)
    assert COMPRESSION_NOTE not in spec.notes


WRAPPER = MISTRAL3_WRAPPER  # a multimodal wrapper over a small Mistral (tests/hub_configs.py)


def test_a_wrappers_compression_config_is_read_a_text_configs_is_refused(tmp_path):
    """hf_config's compression_config reaches the weights' reader; the text_config's alone makes the method
    compressed-tensors (model_arch_config_convertor.py 0.34.0:285-292) but never reaches the weights' reader
    (weight_utils.py 0.34.0:256-263), which then calls CompressedTensorsConfig() with no arguments (:381-396;
    get_config_filenames() is [], compressed_tensors.py 0.34.0:388-389): a TypeError, so kvplan refuses it."""
    outer = resolve(str(checkpoint_folder(tmp_path, {**WRAPPER, "compression_config": COMPRESSED}, name="outer")))
    assert outer.quantization == "compressed-tensors" and COMPRESSION_NOTE in outer.notes
    inner = {**WRAPPER, "text_config": {**WRAPPER["text_config"], "compression_config": COMPRESSED}}
    r = run_kvplan("estimate", checkpoint_folder(tmp_path, inner, name="inner"), "--gpu", "h100")
    assert r.returncode == 2
    line = one_error_line(r)
    assert "text_config.compression_config" in line and "top level" in line


def test_a_text_configs_compression_config_beside_a_quantization_config_is_unread(tmp_path):
    """Where a quantization_config comes first (the wrapper's or the text_config's own), vLLM never reads it."""
    own = {"quant_method": "fp8", "activation_scheme": "dynamic"}
    inner = {**WRAPPER, "text_config": {**WRAPPER["text_config"], "compression_config": COMPRESSED,
                                        "quantization_config": own}}
    assert resolve(str(checkpoint_folder(tmp_path, inner, name="inner"))).quantization == "fp8"
    outer = {**WRAPPER, "quantization_config": own,
             "text_config": {**WRAPPER["text_config"], "compression_config": COMPRESSED}}
    assert resolve(str(checkpoint_folder(tmp_path, outer, name="outer"))).quantization == "fp8"


@pytest.mark.parametrize("value", [["compressed-tensors"], "compressed-tensors", 8])
def test_a_compression_config_not_an_object_is_one_line(tmp_path, value):
    line = one_error_line(run_kvplan("estimate", checkpoint_folder(tmp_path, {**LLAMA, "compression_config": value}),
                                     "--gpu", "h100"))
    assert "compression_config" in line
