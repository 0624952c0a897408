"""A --dtype given is served as given or refused, where vLLM resolves only `auto` per GPU (config/model.py
_resolve_auto_dtype): bfloat16 on a GPU below compute capability 8.0 (platforms/cuda.py check_if_supports_dtype,
0.32.0 :637-654) and float16 for Gemma 2 / 3 and GLM-4 (config/model.py _check_valid_dtype, 0.32.0 :2380-2400)."""

import json

from tests.conftest import run_kvplan


def _engine(*args):
    (plan,) = json.loads(run_kvplan("estimate", *args, "-c", "4096", "--format", "json").stdout)["plans"]
    return plan["engine"]


def test_bfloat16_asked_on_a_t4_is_refused_and_auto_is_served_in_float16():
    refused = _engine("meta-llama/Llama-3.2-1B-Instruct", "--gpu", "t4", "--dtype", "bfloat16")
    assert refused["refusal"]["reason"].startswith("Bfloat16 is only supported on GPUs with compute capability of at "
                                                   "least 8.0. Your GPU has compute capability 7.5.")
    assert refused["refusal"]["field"] == "dtype" and "--dtype float16" in refused["refusal"]["remedy"]
    auto = _engine("meta-llama/Llama-3.2-1B-Instruct", "--gpu", "t4")
    assert auto["starts"] and auto["kv_cache_dtype"] == "fp16"  # kvplan's short name
    assert _engine("meta-llama/Llama-3.2-1B-Instruct", "--gpu", "t4", "--dtype", "float16")["starts"]
    assert _engine("meta-llama/Llama-3.2-1B-Instruct", "--gpu", "h100", "--dtype", "bfloat16")["starts"]


def test_float16_asked_for_gemma_3_is_refused_on_any_gpu():
    refused = _engine("google/gemma-3-4b-it", "--gpu", "h100", "--dtype", "float16")
    assert refused["refusal"]["reason"] == ("The model type 'gemma3_text' does not support float16. Reason: Numerical "
                                            "instability. Please use bfloat16 or float32 instead.")
    assert _engine("google/gemma-3-4b-it", "--gpu", "h100", "--dtype", "bfloat16")["starts"]
    assert _engine("meta-llama/Llama-3.2-1B-Instruct", "--gpu", "h100", "--dtype", "float16")["starts"]
