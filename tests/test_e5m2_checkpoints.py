"""Session 57 (e5m2): vLLM refuses --kv-cache-dtype fp8_e5m2 wherever the quantisation config hands an attention layer
a KV cache method, not only beside a compressed-tensors kv_cache_scheme (engines/vllm_e5m2.py).

Read by hand (paths under vllm/ of the release named):
- The check: a layer whose quant method loads weights (should_load_quant_weights: not None, not
  UnquantizedLinearMethod; attention/layer.py 0.14.0:50-54, attention.py 0.34.0:94-98) and whose kv_cache_dtype is
  fp8_e5m2 raises "fp8_e5m2 kv-cache is not supported with fp8 checkpoints." (attention/layer.py 0.11.0:166-175 inline,
  0.14.1 :132-137; attention.py 0.16.0:162-167, 0.23.0 :163-168); from 0.24.0 not for a CompressedTensorsKVCacheMethod
  whose config has kv_cache_scheme None (0.24.0 :164-183, 0.34.0 :216-235).
- Fp8Config.get_quant_method: `isinstance(layer, Attention)` -> Fp8KVCacheMethod (fp8.py 0.11.0:184-185, 0.30.0
  :224-225, 0.34.0:211-212). --quantization fp8 of a bf16 checkpoint: Fp8Config() to 0.30.0 (model_loader/
  weight_utils.py 0.30.0:385-390), OnlineQuantizationConfig from 0.31.0 (:342-349), which hands an attention layer
  nothing (online/base.py 0.31.0:392-396, 0.34.0:345-354).
- CompressedTensorsConfig.get_quant_method: every Attention, scheme or not (compressed_tensors.py 0.11.0:136-137,
  0.23.0:205-206, 0.24.0:205-206).
- ModelOpt FP8 / NVFP4: Attention in 0.11.0 (modelopt.py :197-198, :820-821); Attention and MLAAttention in
  0.11.1-0.11.2 (:237-238, :915-916) and from 0.17.0 (:176-177; 0.34.0 :239-240); Attention only in 0.12.0 (:157-158)
  to 0.16.0 (:182-183). kv_cache_quant_algo plays no part in it.
- MLA: 0.11.0 builds it as Attention(use_mla=True) (model_executor/layers/mla.py:96); from 0.11.1 MLAAttention
  (attention/layer.py 0.11.1:641, nn.Module + AttentionLayerBase, not Attention), which Fp8Config and
  CompressedTensorsConfig (`isinstance(layer, Attention)`) never hand a method.
- Falcon builds its Attention without cache_config (models/falcon.py 0.20.0:173-197): its layers see auto.
- Mxfp4Config answers None for an attention layer (mxfp4.py 0.20.0:92-97); AWQ / GPTQ configs have no attention
  branch.
- Sparse MLA from 0.18.0: MLAAttention picks its backend (mla_attention.py 0.18.0:333) before _init_kv_cache_quant
  (:370); in 0.17.0 the other way round (class lines 61 and 64 of mla_attention.py's MLAAttention).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from kvplan.api import estimate
from kvplan.engines import vllm
from kvplan.engines.vllm_model_dtype import on_gpu
from kvplan.engines.vllm_e5m2 import E5M2, handed_classes
from kvplan.model.parse import parse_config
from kvplan.model.precision import resolve_kv_dtype
from kvplan.model.sources import resolve
from tests.checkpoints import checkpoint_folder
from tests.conftest import estimate_plan, run_kvplan
from tests.hub_configs import DEEPSEEK_V2_LITE, FALCON_7B, GPT_OSS_20B, LLAMA3_8B

H100, B200 = (9, 0), (10, 0)
FP8 = {"quant_method": "fp8", "activation_scheme": "dynamic", "weight_block_size": [128, 128]}
FP8_GROUP = {"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": False, "symmetric": True}
CT_NO_SCHEME = {"quant_method": "compressed-tensors", "format": "float-quantized", "ignore": ["lm_head"],
                "config_groups": {"group_0": {"targets": ["Linear"], "weights": FP8_GROUP,
                                              "input_activations": FP8_GROUP}}}
CT_SCHEME = {**CT_NO_SCHEME, "kv_cache_scheme": FP8_GROUP}
MODELOPT_FP8 = {"quant_method": "modelopt", "quantization": {"quant_algo": "FP8", "exclude_modules": ["lm_head"]}}
MODELOPT_FP8_KV = {"quant_method": "modelopt",
                   "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8", "exclude_modules": ["lm_head"]}}
MODELOPT_NVFP4 = {"quant_method": "modelopt",
                  "quantization": {"quant_algo": "NVFP4", "group_size": 16, "exclude_modules": ["lm_head"]}}
GPTQ = {"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": True, "desc_act": False}
# Llama-3-8B: 32 layers x K and V x 8 KV heads x 128: fp8 1 byte an element, bf16 2
LLAMA_FP8, LLAMA_BF16 = 32 * 2 * 8 * 128, 32 * 2 * 8 * 128 * 2


def test_the_hand_arithmetic():
    assert (LLAMA_FP8, LLAMA_BF16) == (65_536, 131_072)


def _plan(tmp_path, config: dict, engine: str, dtype: str = "fp8_e5m2", *extra) -> dict:
    folder = checkpoint_folder(tmp_path, config)
    return estimate_plan(folder, "-c", "2048", "--gpu", "h100", "--engine", engine, "--kv-cache-dtype", dtype, *extra)


def _refused(plan: dict) -> bool:
    """True where the plan is refused for fp8_e5m2 (with the remedy), False where it starts; anything else fails."""
    refusal = plan["engine"].get("refusal") or {}
    if refusal.get("reason") == E5M2:
        assert plan["engine"]["starts"] is False
        assert refusal["remedy"] == "it starts with --kv-cache-dtype auto, fp8, fp8_e4m3"
        return True
    assert plan["engine"]["starts"], refusal
    return False


# ---- an fp8 checkpoint: Fp8Config hands every Attention one, in every release -----------------------------------

@pytest.mark.parametrize("engine", ["vllm==0.11.0", "vllm==0.23.0", "vllm==0.24.0", "vllm==0.32.0", "vllm==0.34.0"])
def test_an_fp8_checkpoint_refuses_e5m2_in_every_release(tmp_path, engine):
    assert _refused(_plan(tmp_path, {**LLAMA3_8B, "quantization_config": FP8}, engine))


@pytest.mark.parametrize("asked, per_token", [("auto", LLAMA_BF16), ("fp8", LLAMA_FP8), ("fp8_e4m3", LLAMA_FP8)])
def test_the_remedys_dtypes_start(tmp_path, asked, per_token):
    plan = _plan(tmp_path, {**LLAMA3_8B, "quantization_config": FP8}, "vllm==0.32.0", asked)
    assert (plan["engine"]["starts"], plan["kv_bytes_per_token"]) == (True, per_token)


def test_an_unquantised_checkpoint_takes_e5m2(tmp_path):
    plan = _plan(tmp_path, LLAMA3_8B, "vllm==0.32.0")
    assert (plan["engine"]["starts"], plan["kv_bytes_per_token"]) == (True, LLAMA_FP8)


# ---- --quantization fp8 of a 16-bit checkpoint: Fp8Config() to 0.30, OnlineQuantizationConfig from 0.31 ----------

@pytest.mark.parametrize("engine, refused", [
    ("vllm==0.11.0", True),
    ("vllm==0.30.0", True),  # weight_utils.py 0.30.0:385-390 quant_cls(): Fp8Config, fp8.py :224-225
    ("vllm==0.31.0", False),  # weight_utils.py 0.31.0:342-349: OnlineQuantizationConfig, no attention method
    ("vllm==0.34.0", False),
])
def test_online_fp8_by_release(tmp_path, engine, refused):
    assert _refused(_plan(tmp_path, LLAMA3_8B, engine, "fp8_e5m2", "--quantization", "fp8")) is refused


# ---- compressed-tensors: without a scheme refused to 0.23; with one outside 0.16-0.21 ----------------------------

@pytest.mark.parametrize("engine, refused", [
    ("vllm==0.11.0", True),
    ("vllm==0.20.0", True),  # the layer's fp8 overwrite needs a scheme (attention.py 0.20.0:232-238)
    ("vllm==0.23.0", True),  # attention.py 0.23.0:163-168: any KV cache method
    ("vllm==0.24.0", False),  # 0.24.0:177-183: a compressed-tensors method without kv_cache_scheme passes
    ("vllm==0.34.0", False),
])
def test_compressed_tensors_without_a_scheme_by_release(tmp_path, engine, refused):
    assert _refused(_plan(tmp_path, {**LLAMA3_8B, "quantization_config": CT_NO_SCHEME}, engine)) is refused


@pytest.mark.parametrize("engine, refused", [
    ("vllm==0.14.1", True),  # attention/layer.py 0.14.1:192 keeps the asked dtype
    ("vllm==0.16.0", False),  # attention.py 0.16.0:231-236 makes it fp8 first
    ("vllm==0.21.0", False),
    ("vllm==0.22.0", True),  # 0.22.0:238 auto only
    ("vllm==0.23.0", True),
    ("vllm==0.24.0", True),  # the exemption is for a config without a scheme only
])
def test_compressed_tensors_with_a_scheme_by_release(tmp_path, engine, refused):
    assert _refused(_plan(tmp_path, {**LLAMA3_8B, "quantization_config": CT_SCHEME}, engine)) is refused


# ---- ModelOpt FP8 / NVFP4: every Attention, whatever kv_cache_quant_algo says ------------------------------------

@pytest.mark.parametrize("qcfg", [MODELOPT_FP8, MODELOPT_FP8_KV, MODELOPT_NVFP4])
@pytest.mark.parametrize("engine", ["vllm==0.11.0", "vllm==0.14.1", "vllm==0.32.0", "vllm==0.34.0"])
def test_modelopt_refuses_e5m2_on_attention(tmp_path, qcfg, engine):
    assert _refused(_plan(tmp_path, {**LLAMA3_8B, "quantization_config": qcfg}, engine))


def test_modelopts_kv_algo_replaces_auto_only(tmp_path):
    """kv_cache_quant_algo FP8 makes auto fp8_e4m3 (engine/arg_utils.py 0.34.0:2329-2332), an explicit dtype stays."""
    plan = _plan(tmp_path, {**LLAMA3_8B, "quantization_config": MODELOPT_FP8_KV}, "vllm==0.32.0", "auto")
    assert (plan["engine"]["starts"], plan["kv_bytes_per_token"]) == (True, LLAMA_FP8)


# ---- MLA: which configs hand MLAAttention one, by release; no CUDA MLA backend takes fp8_e5m2 from 0.11.1 ------
# (supported_kv_cache_dtypes: flashmla.py 0.11.1:43-47, triton_mla.py 0.11.1:31, 0.18.0 :32-38, 0.34.0 :113-119 ...),
# and from 0.18 the backend is picked first (mla_attention.py 0.18.0:333 before :370, 0.34.0 :533 before :568)
BACKEND = "No valid attention backend"


@pytest.mark.parametrize("qcfg, engine, reason", [
    (FP8, "vllm==0.11.0", E5M2),  # MLA is Attention(use_mla=True) (layers/mla.py 0.11.0:96)
    (FP8, "vllm==0.11.1", BACKEND),  # MLAAttention: fp8.py's `isinstance(layer, Attention)` misses it
    (FP8, "vllm==0.34.0", BACKEND),
    (CT_NO_SCHEME, "vllm==0.11.0", E5M2),
    (CT_NO_SCHEME, "vllm==0.11.1", BACKEND),
    (MODELOPT_FP8, "vllm==0.11.0", E5M2),
    (MODELOPT_FP8, "vllm==0.11.2", E5M2),  # modelopt.py 0.11.2:237-238 (Attention, MLAAttention), checked first
    (MODELOPT_FP8, "vllm==0.12.0", BACKEND),  # 0.12.0:157-158 Attention only
    (MODELOPT_FP8, "vllm==0.16.0", BACKEND),  # 0.16.0:182-183
    (MODELOPT_FP8, "vllm==0.17.0", E5M2),  # 0.17.0:176-177 (Attention, MLAAttention), the check before the backend
    (MODELOPT_FP8, "vllm==0.34.0", BACKEND),  # 0.34.0:239-240 hands it one, but the backend refuses first
])
def test_mla_layers_by_config_and_release(tmp_path, qcfg, engine, reason):
    plan = _plan(tmp_path, {**DEEPSEEK_V2_LITE, "quantization_config": qcfg}, engine)
    assert plan["engine"]["starts"] is False
    assert plan["engine"]["refusal"]["reason"].startswith(reason)


def test_the_layer_classes_handed():
    """The table behind the MLA rows above, for a spec with both kinds of layer."""
    spec = parse_config({**LLAMA3_8B, "quantization_config": MODELOPT_FP8}, "x")
    assert handed_classes(spec, "0.11.0") == ("Attention", "MLAAttention")
    assert handed_classes(spec, "0.14.1") == ("Attention",)
    assert handed_classes(spec, "0.17.0") == ("Attention", "MLAAttention")
    assert handed_classes(replace(spec, quantization="fp8"), "0.11.1") == ("Attention",)
    assert handed_classes(replace(spec, quantization=""), "0.32.0") == ()


# ---- configs that hand an attention layer nothing, and layers built with auto ----------------------------------

@pytest.mark.parametrize("config", [{**LLAMA3_8B, "torch_dtype": "float16", "quantization_config": GPTQ},
                                    GPT_OSS_20B])
def test_methods_without_an_attention_method_take_e5m2(tmp_path, config):
    assert not _refused(_plan(tmp_path, config, "vllm==0.32.0"))


@pytest.mark.parametrize("engine", ["vllm==0.14.1", "vllm==0.32.0"])
def test_falcon_builds_its_layers_with_auto(tmp_path, engine):
    """Falcon's layers never see fp8_e5m2 (KV_DTYPE_QUIRKS): no refusal beside an fp8 checkpoint either."""
    plan = _plan(tmp_path, {**FALCON_7B, "quantization_config": FP8}, engine)
    assert not _refused(plan)
    assert plan["kv_bytes_per_token"] == 32 * 2 * 1 * 64 * 2  # 32 layers, one KV head of 64, bf16 (auto)


# ---- sparse MLA: the backend's refusal first from 0.18 ----------------------------------------------------------

def _refusal(spec, version: str, capability, tp: int = 8):
    served = on_gpu(spec, capability, version)
    asked = resolve_kv_dtype("fp8_e5m2", served.dtype, served.auto_kv_dtype)
    return vllm.configuration_refusal(served, asked, tp=tp, length=4096, block_size=None, version=version,
                                      capability=capability, checked=False)


@pytest.mark.parametrize("version, reason", [
    ("0.16.0", "No valid attention backend"),  # ModelOpt hands MLAAttention nothing (modelopt.py 0.16.0:182-183)
    ("0.17.0", E5M2),  # handed (0.17.0:176-177), the check before the backend (mla_attention.py 0.17.0)
    ("0.18.0", "No valid attention backend"),  # the backend first (mla_attention.py 0.18.0:333, :370)
])
def test_a_sparse_mla_modelopt_checkpoint(version, reason):
    spec = replace(resolve("zai-org/GLM-5.2"), quantization="modelopt")
    assert _refusal(spec, version, H100).reason.startswith(reason)


def test_deepseek_v32s_config_rewrite_leaves_no_e5m2_to_refuse():
    """models/config.py turns fp8* into fp8_ds_mla before any layer up to 0.17 (vllm_sparse.CONFIG_REWRITE)."""
    spec = replace(resolve("deepseek-ai/DeepSeek-V3.2"), quantization="modelopt")
    assert _refusal(spec, "0.11.0", H100) is None
    assert _refusal(spec, "0.17.0", B200) is None


# ---- the refusal reaches check and the API as estimate's does --------------------------------------------------

def test_check_names_kv_dtype(tmp_path):
    folder = checkpoint_folder(tmp_path, {**LLAMA3_8B, "quantization_config": FP8})
    path = tmp_path / "deployments.yaml"
    path.write_text(f"deployments:\n  - name: e5m2\n    model: {folder}\n    tp: 1\n    gpu: H100\n"
                    f"    context: 8192\n    kv_dtype: fp8_e5m2\n    engine: vllm==0.32.0\n    min_concurrency: 1\n")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 1, r.stdout + r.stderr
    (result,) = json.loads(r.stdout)["results"]
    assert result["errors"] == ["vLLM 0.32.0 does not start: fp8_e5m2 kv-cache is not supported with fp8 checkpoints; "
                                "it starts with kv_dtype auto, fp8, fp8_e4m3."]
    assert result["findings"][0]["key"] == "kv_dtype"


def test_the_api_says_it(tmp_path):
    folder = checkpoint_folder(tmp_path, {**LLAMA3_8B, "quantization_config": MODELOPT_NVFP4})
    (plan,) = estimate(str(folder), max_model_len=8192, gpu="H100", kv_cache_dtype="fp8_e5m2", engine="vllm==0.32.0")
    refusal = plan.to_dict()["engine"]["refusal"]
    assert (refusal["reason"], refusal["field"]) == (E5M2, "kv_dtype")
