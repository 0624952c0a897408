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
                                                   "least 8.0. Your Tesla T4 GPU has compute capability 7.5.")
    assert refused["refusal"]["field"] == "dtype" and "--dtype float16" in refused["refusal"]["remedy"]
    auto = _engine("meta-llama/Llama-3.2-1B-Instruct", "--gpu", "t4")
    assert auto["starts"] and auto["kv_cache_dtype"] == "fp16"  # kvplan's short name
    assert _engine("meta-llama/Llama-3.2-1B-Instruct", "--gpu", "t4", "--dtype", "float16")["starts"]
    assert _engine("meta-llama/Llama-3.2-1B-Instruct", "--gpu", "h100", "--dtype", "bfloat16")["starts"]


def test_float16_asked_for_gemma_3_is_refused_on_any_gpu():
    refused = _engine("google/gemma-3-4b-it", "--gpu", "h100", "--dtype", "float16")
    assert refused["refusal"]["reason"] == ("The model type 'gemma3' does not support float16. Reason: Numerical "
                                            "instability. Please use bfloat16 or float32 instead.")
    assert _engine("google/gemma-3-4b-it", "--gpu", "h100", "--dtype", "bfloat16")["starts"]
    assert _engine("meta-llama/Llama-3.2-1B-Instruct", "--gpu", "h100", "--dtype", "float16")["starts"]


def test_check_names_the_cache_a_t4_keeps_for_gemma_3(tmp_path):
    """check resolves `auto` on the deployment's GPU as the plan does: float32 for Gemma 3 on a T4 (config/model.py
    _resolve_auto_dtype; no float16 for it, no bfloat16 below compute capability 8.0), so its KV dtype and the sizes
    it searches fixes at are float32's: 34 layers x 4 KV heads x 256 x 2 x 4 B = 278,528 B a token, 139,264 a GPU at
    tp 2."""
    path = tmp_path / "deployments.yaml"
    path.write_text("deployments:\n  - name: g\n    model: google/gemma-3-4b-it\n    tp: 2\n    gpu: t4\n"
                    "    context: 4096\n")
    result = json.loads(run_kvplan("check", "--file", path, "--format", "json").stdout)["results"][0]
    assert result["kv_dtype"] == "fp32" and result["kv_bytes_per_token_per_gpu"] == 139_264
    refused = _engine("google/gemma-3-4b-it", "--gpu", "t4", "--dtype", "bfloat16")["refusal"]
    assert "--dtype float32" in refused["remedy"]
