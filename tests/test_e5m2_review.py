"""Session 57 (e5m2fix): the review of the fp8_e5m2 work, read by hand in vLLM's source (paths under vllm/ of the
release named).

- Attention built without quant_config gets no KV cache method (attention/layer.py 0.11.0:166-167, attention.py
  0.34.0:209-213 `if quant_config else None`), so neither the fp8_e5m2 check nor CompressedTensorsKVCacheMethod's
  scheme validation nor the kv_cache_scheme fp8 overwrite (attention.py 0.34.0:308-312 reads
  getattr(quant_config, ...)) happens. Such calls, found by an AST scan of every model file: jamba.py 0.11.0:205,
  0.34.0:231; bailing_moe.py 0.34.0:147; lfm2.py 0.30.0:153 (0.34.0:164-171 through attention_cls); falcon_h1.py
  0.14.1:273 (0.16.0 :278-285 passes it); nemotron_h.py 0.13.0:484 (0.14.0 :480-487 passes it).
- Dense MLA: no CUDA MLA backend lists fp8_e5m2 (flashmla.py 0.11.1:43-47, 0.18.0:50-56, 0.34.0:48-54; triton_mla.py
  0.11.1:31 "auto" only, 0.18.0:32-38 fp8 and fp8_e4m3; flashattn_mla.py 0.11.1:45, 0.34.0:42-46 16-bit only;
  flashinfer_mla.py / cutlass_mla.py 0.11.1:39-43 / :40-44, major 10 only), and the selector checks the list from
  0.11.1 (platforms/cuda.py 0.11.1:380-413 get_valid_backends); 0.11.0 picks by GPU and block only (cuda.py
  0.11.0:240-300). MLAAttention picks its backend after _init_kv_cache_quant up to 0.17 (attention/layer.py 0.11.1:690
  then :695) and before it from 0.18 (mla_attention.py 0.18.0:333 then :370; 0.34.0 :533 then :568).
- compression_config's settings: errors name the key they came from.

Hand arithmetic: Jamba (tests/hub_configs.JAMBA) has 4 attention layers (period 8 of 32) of 8 KV heads x 128:
4 x 2 x 8 x 128 = 8,192 elements a token, 1 byte each in fp8, 2 in bf16. DeepSeek-V2-Lite: 27 layers x a 576-wide
latent = 15,552 elements a token.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from kvplan.engines.vllm_e5m2 import E5M2, attention_without_quant_config
from kvplan.model.parse import parse_config
from tests.checkpoints import checkpoint_folder
from tests.conftest import estimate_plan, one_error_line, run_kvplan
from tests.hub_configs import DEEPSEEK_V2_LITE, JAMBA, LLAMA3_8B

FP8 = {"quant_method": "fp8", "activation_scheme": "dynamic", "weight_block_size": [128, 128]}
GROUP = {"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": False, "symmetric": True}
CT_SCHEME = {"quant_method": "compressed-tensors", "format": "float-quantized", "ignore": ["lm_head"],
             "config_groups": {"group_0": {"targets": ["Linear"], "weights": GROUP, "input_activations": GROUP}},
             "kv_cache_scheme": GROUP}
MODELOPT_FP8 = {"quant_method": "modelopt", "quantization": {"quant_algo": "FP8", "exclude_modules": ["lm_head"]}}
JAMBA_FP8, JAMBA_BF16 = 4 * 2 * 8 * 128, 4 * 2 * 8 * 128 * 2
V2_LITE_FP8 = 27 * 576
BACKEND = "No valid attention backend found for cuda"


def test_the_hand_arithmetic():
    assert (JAMBA_FP8, JAMBA_BF16, V2_LITE_FP8) == (8_192, 16_384, 15_552)


def _plan(tmp_path, config: dict, engine: str, dtype: str, gpu: str = "h100", name: str = "ckpt") -> dict:
    folder = checkpoint_folder(tmp_path, config, name=name)
    return estimate_plan(folder, "-c", "2048", "--gpu", gpu, "--engine", engine, "--kv-cache-dtype", dtype)


def _reason(plan: dict) -> str:
    return (plan["engine"].get("refusal") or {}).get("reason", "")


# ---- 1. attention built without quant_config -------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["vllm==0.11.0", "vllm==0.23.0", "vllm==0.34.0"])
def test_an_fp8_jamba_takes_e5m2(tmp_path, engine):
    """jamba.py builds Attention without quant_config: Fp8Config is never asked, no refusal (Llama's is refused)."""
    plan = _plan(tmp_path, {**JAMBA, "quantization_config": FP8}, engine, "fp8_e5m2")
    assert (plan["engine"]["starts"], plan["kv_bytes_per_token"]) == (True, JAMBA_FP8)


def test_an_fp8_llama_is_still_refused(tmp_path):
    assert _reason(_plan(tmp_path, {**LLAMA3_8B, "quantization_config": FP8}, "vllm==0.34.0", "fp8_e5m2")) == E5M2


@pytest.mark.parametrize("engine", ["vllm==0.20.0", "vllm==0.32.0"])
def test_a_jambas_kv_cache_scheme_is_never_read(tmp_path, engine):
    """No layer sees the scheme: auto stays bf16 (it is fp8 for Llama: test_e5m2_checkpoints), and a scheme vLLM
    would refuse (strategy channel: compressed_tensors.py 0.32.0 validate_kv_cache_scheme) is not validated."""
    plan = _plan(tmp_path, {**JAMBA, "quantization_config": CT_SCHEME}, engine, "auto")
    assert (plan["engine"]["starts"], plan["kv_bytes_per_token"]) == (True, JAMBA_BF16)
    bad = {**CT_SCHEME, "kv_cache_scheme": {**GROUP, "strategy": "channel"}}
    plan = _plan(tmp_path, {**JAMBA, "quantization_config": bad}, engine, "auto", name="bad")
    assert plan["engine"]["starts"] is True


def test_llamas_bad_kv_cache_scheme_is_refused(tmp_path):
    bad = {**CT_SCHEME, "kv_cache_scheme": {**GROUP, "strategy": "channel"}}
    assert _reason(_plan(tmp_path, {**LLAMA3_8B, "quantization_config": bad}, "vllm==0.32.0", "auto")).startswith(
        "Invalid strategy for compressed-tensors KV cache")


@pytest.mark.parametrize("architecture, version, without", [
    ("FalconH1ForCausalLM", "0.14.1", True),  # falcon_h1.py 0.14.1:273
    ("FalconH1ForCausalLM", "0.16.0", False),  # 0.16.0:278-285 quant_config=quant_config
    ("NemotronHForCausalLM", "0.13.0", True),  # nemotron_h.py 0.13.0:484
    ("NemotronHForCausalLM", "0.14.0", False),  # 0.14.0:480-487
    ("Lfm2ForCausalLM", "0.34.0", True),  # lfm2.py 0.34.0:164-171 attention_cls(...) without it
    ("BailingMoeV2ForCausalLM", "0.34.0", True),  # bailing_moe.py 0.34.0:147
    ("Plamo2ForCausalLM", "0.26.0", True),  # plamo2.py 0.26.0:619, the last release with the file
    ("LlamaForCausalLM", "0.34.0", False),
])
def test_the_table_by_release(architecture, version, without):
    spec = replace(parse_config(LLAMA3_8B, "x"), architecture=architecture)
    assert attention_without_quant_config(spec, version) is without


# ---- 2. dense MLA: no backend takes fp8_e5m2 ----------------------------------------------------------------------

@pytest.mark.parametrize("engine, gpu, starts, remedy", [
    ("vllm==0.11.0", "h100", True, None),  # no dtype check at selection (cuda.py 0.11.0:240-300)
    ("vllm==0.11.1", "h100", False, "it starts with --kv-cache-dtype auto, fp8, fp8_e4m3"),  # flashmla.py :43-47
    ("vllm==0.17.0", "a100-80gb", False, "it starts with --kv-cache-dtype auto"),  # TRITON_MLA only, 16-bit
    ("vllm==0.18.0", "a100-80gb", False, "it starts with --kv-cache-dtype auto, fp8, fp8_e4m3"),  # triton_mla :32-38
    ("vllm==0.34.0", "b200", False, "it starts with --kv-cache-dtype auto, fp8, fp8_e4m3"),
])
def test_an_unquantised_deepseek_v2_lite_with_e5m2(tmp_path, engine, gpu, starts, remedy):
    plan = _plan(tmp_path, DEEPSEEK_V2_LITE, engine, "fp8_e5m2", gpu)
    assert (plan["engine"]["starts"], plan["kv_bytes_per_token"]) == (starts, V2_LITE_FP8)
    if not starts:
        assert _reason(plan).startswith(BACKEND) and "fp8_e5m2" in _reason(plan)
        assert plan["engine"]["refusal"]["remedy"] == remedy


@pytest.mark.parametrize("engine, gpu, starts", [("vllm==0.17.0", "a100-80gb", False),
                                                 ("vllm==0.17.0", "h100", True),
                                                 ("vllm==0.18.0", "a100-80gb", True)])
def test_dense_mla_fp8_by_gpu_and_release(tmp_path, engine, gpu, starts):
    """Before 0.18 only FLASHMLA (majors 9, 10) and Blackwell's backends take fp8 (flashmla.py 0.17.0:50-55, :74)."""
    assert _plan(tmp_path, DEEPSEEK_V2_LITE, engine, "fp8", gpu)["engine"]["starts"] is starts


@pytest.mark.parametrize("engine, reason", [("vllm==0.17.0", E5M2), ("vllm==0.18.0", BACKEND)])
def test_a_modelopt_deepseek_v2_lite_by_release(tmp_path, engine, reason):
    """ModelOpt hands MLAAttention a method from 0.17 (modelopt.py 0.17.0:176-177): its check first in 0.17, the
    backend's from 0.18."""
    plan = _plan(tmp_path, {**DEEPSEEK_V2_LITE, "quantization_config": MODELOPT_FP8}, engine, "fp8_e5m2")
    assert _reason(plan).startswith(reason)


# ---- 4. errors name the key the settings came from ----------------------------------------------------------------

@pytest.mark.parametrize("settings, field", [
    ({"quant_method": "sparseml"}, "quant_method"),
    ({"quant_method": "compressed-tensors", "format": "float-quantized"}, "config_groups"),
    ({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": GROUP}}}, "config_groups.g.targets"),
])
@pytest.mark.parametrize("key", ["compression_config", "quantization_config"])
def test_errors_name_the_key(tmp_path, settings, field, key):
    line = one_error_line(run_kvplan("estimate", checkpoint_folder(tmp_path, {**LLAMA3_8B, key: settings}),
                                     "--gpu", "h100"))
    assert f"config field '{key}.{field}'" in line
