"""vLLM's quantisation refusals as the review of session 54 found them: the order of ModelConfig's refusals and the
float-cache check, the deprecation bypass offered only where it works, BitBLAS's and Marlin 2:4's checkpoint formats,
and the words of the summary and the remedies (engines/vllm_quant.py, vllm_wna16.py, vllm_dtype_remedy.py).

Every text and number below was read by hand in vLLM's sources (model_executor/layers/quantization/ unless a path
says otherwise), file:line per release at each test.
"""

import json

import pytest

from tests.conftest import estimate_plan, run_kvplan
from tests.hub_configs import LLAMA3_8B, QWEN2_5_7B

from kvplan.engines import vllm
from kvplan.engines.vllm_model_dtype import on_gpu
from kvplan.engines.figures import Refusal
from kvplan.engines.vllm_quant import gpu_quantization_refusal, vllm_method
from kvplan.engines.vllm_sparse import ROCM
from kvplan.model.parse import parse_config

H100, A100, T4 = (9, 0), (8, 0), (7, 5)
BYPASS = "--allow-deprecated-quantization (vLLM's flag; kvplan does not take it)"
DEPRECATED = ("The quantization method {} is deprecated and will be removed in future versions of vLLM. To bypass, "
              "set `--allow-deprecated-quantization`.")
FBGEMM = {"quant_method": "fbgemm_fp8", "activation_scale_ub": 1200.0, "modules_to_not_convert": ["lm_head"]}
MARLIN24 = {"quant_method": "gptq", "bits": 4, "group_size": 128, "checkpoint_format": "marlin_24"}


def _write(tmp_path, config: dict, qcfg=None, dtype: str = "bfloat16", name: str = "config.json"):
    body = {**config, "torch_dtype": dtype}
    if qcfg is not None:
        body["quantization_config"] = qcfg
    path = tmp_path / name
    path.write_text(json.dumps(body))
    return path


def _plan(path, *args):
    return estimate_plan(path, "-c", "4096", *args)


def _refusal(path, *args):
    return _plan(path, *args)["engine"]["refusal"]


def _checkpoint(qcfg: dict, dtype: str = "float16"):
    return parse_config({**LLAMA3_8B, "torch_dtype": dtype, "quantization_config": qcfg}, "ckpt")


# -- 1: -q gptq reads quantize_config.json (fixed on main before this branch) --------------------------------------

def test_gptq_by_flag_reads_quantize_config_json(tmp_path):
    """weight_utils.py 0.32.0:365-395: --quantization gptq of a config without a quantization_config reads
    quantize_config.json (GPTQConfig.get_config_filenames, auto_gptq.py 0.32.0:187); 4 bits: int4-gptq."""
    folder = tmp_path / "legacy"
    folder.mkdir()
    _write(folder, QWEN2_5_7B, dtype="float16")
    (folder / "quantize_config.json").write_text(json.dumps({"bits": 4, "group_size": 128, "desc_act": False,
                                                            "sym": True}))
    r = run_kvplan("estimate", folder, "-q", "gptq", "--gpu", "H100", "-c", "4096", "--format", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["model"]["weights_dtype"] == "int4-gptq" and out["plans"][0]["engine"]["refusal"] is None


# -- 2: the deprecation's bypass only where every check then passes ------------------------------------------------

def test_fbgemm_on_a_t4_is_not_offered_the_bypass_alone(tmp_path):
    """fbgemm_fp8 is deprecated from 0.14.0 (__init__.py 0.32.0 DEPRECATED_QUANTIZATION_METHODS; config/model.py
    0.32.0:1459-1472); with --allow-deprecated-quantization VllmConfig then asks FBGEMMFp8Config's capability, 80
    (fbgemm_fp8.py 0.32.0:62-67), which a T4 (7.5) lacks. So the flag is named only with a GPU of 8.0 or more, and an
    unquantised checkpoint (Llama-3-8B in float16 on a T4, no quantisation check) is offered as well."""
    refused = _refusal(_write(tmp_path, LLAMA3_8B, FBGEMM), "--gpu", "T4")
    assert refused["reason"] == DEPRECATED.format("fbgemm_fp8")
    assert refused["remedy"] == ("vLLM accepts a checkpoint of the model not quantised as fbgemm_fp8, or "
                                 f"{BYPASS} on a GPU of compute capability 8.0 or more")


def test_fbgemm_on_an_h100_is_offered_the_bypass(tmp_path):
    """An H100 (9.0) meets 80 and bfloat16 is one of [bfloat16, float16] (fbgemm_fp8.py 0.32.0:62-63): the bypass
    stands beside 0.13.0, the last release before the deprecation (0.13.0 has no DEPRECATED_QUANTIZATION_METHODS)."""
    refused = _refusal(_write(tmp_path, LLAMA3_8B, FBGEMM), "--gpu", "H100")
    assert refused["remedy"] == f"it starts with --engine vllm==0.13.0 or older; or vLLM accepts {BYPASS}"


def test_the_bypass_names_the_dtype_it_needs_with_a_float16_cache(tmp_path):
    """0.33.0 with --kv-cache-dtype float16 on a bfloat16 checkpoint: with the bypass, VllmConfig
    ._reject_mismatched_float_kv_cache refuses the cache (config/vllm.py 0.33.0:1492-1508) unless the model is served
    in float16 too, which FBGEMMFp8Config takes."""
    refused = _refusal(_write(tmp_path, LLAMA3_8B, FBGEMM), "--gpu", "H100", "--engine", "vllm==0.33.0",
                       "--kv-cache-dtype", "float16")
    assert refused["reason"] == DEPRECATED.format("fbgemm_fp8")
    assert refused["remedy"].endswith(f"; or vLLM accepts {BYPASS} with --dtype float16")


# -- 3: ModelConfig's refusals before the float-cache check, the class's after it ----------------------------------

def test_deprecation_comes_before_the_float_cache_mismatch(tmp_path):
    """ModelConfig is built first (engine/arg_utils.py 0.33.0:2280, VllmConfig at :2883) and _verify_quantization runs
    in its __post_init__ (config/model.py 0.33.0:922); the float-cache check is VllmConfig's (config/vllm.py
    0.33.0:1540)."""
    refused = _refusal(_write(tmp_path, LLAMA3_8B, FBGEMM), "--gpu", "H100", "--engine", "vllm==0.33.0",
                       "--kv-cache-dtype", "float16")
    assert refused["reason"] == DEPRECATED.format("fbgemm_fp8")


def test_an_unknown_method_comes_before_the_float_cache_mismatch(tmp_path):
    """"marlin" is no registered method (config/model.py 0.33.0 _verify_quantization "Unknown quantization method")."""
    path = _write(tmp_path, QWEN2_5_7B, {"quant_method": "marlin", "bits": 4, "group_size": 128}, "float16")
    refused = _refusal(path, "--gpu", "H100", "--engine", "vllm==0.33.0", "--kv-cache-dtype", "bfloat16")
    assert refused["reason"].startswith("Unknown quantization method: marlin. Must be one of")


def test_the_class_constructor_comes_after_the_float_cache_mismatch(tmp_path):
    """_get_quantization_config (AutoGPTQConfig's constructor refuses 3 bits: auto_gptq.py 0.32.0 :152-155) runs at
    config/vllm.py 0.33.0:1608, after the float-cache check at :1540 (0.34.0 :1555 after :1484)."""
    path = _write(tmp_path, QWEN2_5_7B, {"quant_method": "gptq", "bits": 3, "group_size": 128, "sym": True,
                                         "desc_act": False}, "float16")
    for version in ("0.33.0", "0.34.0"):
        refused = _refusal(path, "--gpu", "H100", "--engine", f"vllm=={version}", "--kv-cache-dtype", "bfloat16")
        assert refused["reason"] == ('kv_cache_dtype="bfloat16" is incompatible with dtype="float16". Please set '
                                     '`--kv-cache-dtype` to `auto` or `float16`.')
    assert _refusal(path, "--gpu", "H100", "--engine", "vllm==0.33.0")["reason"] == \
        "Unsupported quantization config: bits=3, sym=True"


# -- 4: checkpoint formats with classes of their own to 0.14.1 -----------------------------------------------------

def test_a_marlin_24_checkpoint_is_gptq_marlin_24s_to_0_14_1():
    """The overrides' order puts gptq_marlin_24 before gptq_marlin (config/model.py 0.11.0:905-919); its override
    claims checkpoint_format "marlin_24" under no --quantization or gptq (gptq_marlin_24.py 0.11.0:113-127) and its
    from_config reads bits and group_size only (:107-111): no desc_act needed. 80 and [torch.half] (:93-100). In 0.14.x
    it is deprecated (__init__.py 0.14.0:52); 0.16.0 has no gptq_marlin_24.py, so the checkpoint is plain GPTQ, which
    fails to load it (B_24 / B_meta / s stored, gptq_marlin_24.py 0.14.1:274-277; qweight / scales / qzeros asked,
    auto_gptq.py 0.32.0:427-429): kvplan refuses the format itself (test_s54_fix5)."""
    spec = _checkpoint(MARLIN24)
    assert vllm_method(spec, H100, "0.11.0") == "gptq_marlin_24" == vllm_method(spec, H100, "0.13.0")
    assert gpu_quantization_refusal(spec, H100, "0.11.0") is None
    assert gpu_quantization_refusal(spec, T4, "0.13.0").reason == (
        "The quantization method gptq_marlin_24 is not supported for the current GPU. Minimum capability: 80. "
        "Current capability: 75.")
    bf16 = _checkpoint(MARLIN24, "bfloat16")
    assert gpu_quantization_refusal(bf16, A100, "0.13.0").reason == (
        "torch.bfloat16 is not supported for quantization method gptq_marlin_24. Supported dtypes: [torch.float16]")
    assert gpu_quantization_refusal(spec, H100, "0.14.1").reason == DEPRECATED.format("gptq_marlin_24")
    assert vllm_method(spec, H100, "0.16.0") == "gptq"
    assert gpu_quantization_refusal(spec, H100, "0.16.0").reason.startswith("vLLM removed gptq_marlin_24 ")


@pytest.mark.parametrize("change, reason", [
    ({"bits": 3}, "Marlin_24 does not support quant_type = None. Only weight_bits = [ScalarType.uint4b8, "
                  "ScalarType.uint8b128] are supported."),
    ({"group_size": 64}, "Marlin_24 does not support group_size = 64. Only group_sizes = [-1, 128] are supported."),
    ({"bits": None}, None),
])
def test_marlin_24s_constructor(change, reason):
    """gptq_marlin_24.py 0.11.0:44-63: quant_type {4: uint4b8, 8: uint8b128}.get(bits), None otherwise (ScalarType's
    repr "ScalarType.uint4b8": scalar_type.py 0.11.0:251-252); group sizes [-1, 128] (:31). A key set to null is
    present for get_from_keys (base_config.py 0.11.0:120-126), so bits None reaches the quant_type check."""
    spec = _checkpoint({**MARLIN24, **change})
    refused = gpu_quantization_refusal(spec, H100, "0.11.0")
    expected = reason or ("Marlin_24 does not support quant_type = None. Only weight_bits = [ScalarType.uint4b8, "
                          "ScalarType.uint8b128] are supported.")
    assert refused.reason == expected and refused.field == "quantization"
    missing = _checkpoint({"quant_method": "gptq", "bits": 4, "checkpoint_format": "marlin_24"})
    assert gpu_quantization_refusal(missing, H100, "0.11.0").reason == ("Cannot find any of ['group_size'] in the "
                                                                        "model's quantization config.")


def test_a_bitblas_checkpoint_is_bitblas_to_0_14_1():
    """BitBLASConfig's override comes first (config/model.py 0.11.0:906) and claims checkpoint_format "bitblas" or
    is_bitblas_format (bitblas.py 0.11.0:147-163); its get_from_keys defaults (:124-144: sym false), bits in
    [1, 2, 4, 8], sym in [False, True] (:77-86; utils/bitblas_utils.py 0.11.0:25-26); 70 and [half, bfloat16]
    (:111-118). Deprecated in 0.14.x (__init__.py 0.14.0:51)."""
    spec = _checkpoint({"quant_method": "gptq", "bits": 4, "group_size": 128, "is_bitblas_format": True})
    assert vllm_method(spec, T4, "0.13.0") == "bitblas" and gpu_quantization_refusal(spec, T4, "0.13.0") is None
    two = _checkpoint({"quant_method": "gptq", "bits": 2, "checkpoint_format": "bitblas"})
    assert gpu_quantization_refusal(two, H100, "0.11.0") is None
    three = _checkpoint({"quant_method": "gptq", "bits": 3, "checkpoint_format": "bitblas"})
    assert gpu_quantization_refusal(three, H100, "0.11.0").reason == ("BitBLAS does not support weight_bits = 3. "
                                                                      "Only weight_bits = [1, 2, 4, 8] are supported.")
    null = _checkpoint({"quant_method": "gptq", "bits": 4, "sym": None, "checkpoint_format": "bitblas"})
    assert gpu_quantization_refusal(null, H100, "0.11.0").reason == ("BitBLAS does not support is_sym = None. Only "
                                                                     "sym = [False, True] are supported.")
    assert gpu_quantization_refusal(spec, H100, "0.14.0").reason == DEPRECATED.format("bitblas")
    assert vllm_method(spec, H100, "0.16.0") == "gptq"


def test_format_classes_are_not_on_rocms_list():
    """platforms/rocm.py 0.11.0:178 supported_quantization has neither gptq_marlin_24 nor bitblas."""
    assert gpu_quantization_refusal(_checkpoint(MARLIN24), ROCM, "0.11.0").reason == (
        "gptq_marlin_24 quantization is currently not supported in rocm.")


def test_a_marlin_24_checkpoint_end_to_end(tmp_path):
    """The reviewer's m24 config on an H100: 0.11.0 starts (float16, 80 met); 0.32.0 has no class for the format and
    would fail to load its tensors whatever keys are added (review 6): kvplan names 0.13.0 only (the last release
    before the deprecation whose class takes it), no added keys."""
    path = _write(tmp_path, QWEN2_5_7B, MARLIN24, "float16")
    assert _refusal(path, "--gpu", "H100", "--engine", "vllm==0.11.0") is None
    refused = _refusal(path, "--gpu", "H100")
    assert refused["reason"].startswith("vLLM removed gptq_marlin_24 (the class for checkpoint_format marlin_24)")
    # Qwen2ForCausalLM is registered from 0.3.0 (models/__init__.py 0.3.0:40): the run starts there
    assert refused["remedy"] == "it starts with --engine vllm==0.13.0 (any release from 0.3.0 before 0.14.0)"


# -- 5: the summary keeps the value, the remedies name the checkpoint's method -------------------------------------

def test_the_summary_keeps_the_value_at_fault(tmp_path):
    bits3 = _write(tmp_path, QWEN2_5_7B, {"quant_method": "gptq", "bits": 3, "group_size": 128, "sym": True,
                                          "desc_act": False}, "float16", "bits3.json")
    assert _plan(bits3, "--gpu", "H100")["suggestion"] == (
        "vllm 0.32.0 refuses the configuration: Unsupported quantization config: bits=3, sym=True; it starts with "
        "--engine vllm==0.21.0 (any release from 0.3.0 before 0.22.0); or vLLM accepts a checkpoint of the model not "
        "quantised as gptq")
    marlin = _write(tmp_path, QWEN2_5_7B, {"quant_method": "marlin", "bits": 4, "group_size": 128}, "float16",
                    "marlin.json")
    assert _plan(marlin, "--gpu", "H100")["suggestion"] == (
        "vllm 0.32.0 refuses the configuration: Unknown quantization method: marlin; vLLM accepts a checkpoint of the "
        "model not quantised as marlin")


def test_other_summaries_still_stop_at_the_colon():
    why = Refusal("No valid attention backend found for cuda with kv_cache_dtype x: the Octave formats have one", None)
    assert why.summary == "No valid attention backend found for cuda with kv_cache_dtype x"
    assert Refusal("a: b", None, headline="a: b").summary == "a: b"


def test_a_missing_sym_names_the_key_to_add(tmp_path):
    """AutoGPTQConfig.from_config reads sym (auto_gptq.py 0.22.0:197-200) and takes (4, true) only (:100-101): the
    checkpoint's quantization_config with sym true passes; GPTQConfig to 0.21.0 does not read sym (gptq.py
    0.21.0:144-150)."""
    path = _write(tmp_path, QWEN2_5_7B, {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False},
                  "float16")
    assert _refusal(path, "--gpu", "H100")["remedy"] == (
        'it starts with --engine vllm==0.21.0 (any release from 0.3.0 before 0.22.0); or vLLM accepts the checkpoint '
        'with "sym": true added to its quantization_config, where it was quantised so, or a checkpoint of the model '
        'not quantised as gptq')


def test_a_missing_desc_act_before_0_30_takes_either_value(tmp_path):
    """GPTQConfig (0.21.0) reads desc_act (gptq.py 0.21.0:150) and refuses neither value; AutoGPTQ's
    activation-ordering refusal starts at 0.30 (utils/gptq_utils.py 0.30.0:28-37)."""
    path = _write(tmp_path, QWEN2_5_7B, {"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": True},
                  "float16")
    assert _refusal(path, "--gpu", "H100", "--engine", "vllm==0.21.0")["remedy"] == (
        'vLLM accepts the checkpoint with "desc_act" (true or false, as it was quantised) added to its '
        'quantization_config, or a checkpoint of the model not quantised as gptq')


def test_the_configuration_order_through_the_engine():
    """configuration_refusal as start() calls it: the deprecation first, then the cache (0.33.0)."""
    from kvplan.model.precision import resolve_kv_dtype

    spec = on_gpu(parse_config({**LLAMA3_8B, "quantization_config": FBGEMM}, "f"), H100, "0.33.0")
    cache = resolve_kv_dtype("float16", spec.dtype, spec.auto_kv_dtype)
    refused = vllm.configuration_refusal(spec, cache, tp=1, length=4096, block_size=None,
                                         version="0.33.0", capability=H100, checked=False)
    assert refused.reason == DEPRECATED.format("fbgemm_fp8")
    allowed = vllm.configuration_refusal(spec, cache, tp=1, length=4096, block_size=None,
                                         version="0.33.0", capability=H100, checked=False, allow_deprecated=True)
    assert allowed.reason.startswith('kv_cache_dtype="float16" is incompatible with dtype="bfloat16"')
