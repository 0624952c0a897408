"""vLLM's AWQ / GPTQ classes by the checkpoint's quantization_config, the deprecated and unregistered methods, ROCm's
supported_quantization, and --quantization awq / gptq of a checkpoint without a quantization_config
(engines/vllm_wna16.py, engines/vllm_quant.py, model/quantization.py).

Every text and number below was read by hand in vLLM's sources (model_executor/layers/quantization/ unless a path
says otherwise), file:line per release at each test.
"""

import json

import pytest

from tests.conftest import one_error_line, run_kvplan
from tests.hub_configs import LLAMA3_8B

from kvplan.engines.vllm_model_dtype import on_gpu, quantization_refusal
from kvplan.engines.vllm_quant import gpu_quantization_refusal, marlin_refusal, vllm_method
from kvplan.engines.vllm_sparse import ROCM
from kvplan.model.parse import parse_config

A100, H100, T4 = (8, 0), (9, 0), (7, 5)
AWQ = {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}
GPTQ = {"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": True, "desc_act": False}


def _checkpoint(qcfg: dict, dtype: str = "bfloat16"):
    """Llama-3-8B's config with a quantization_config, its weights stored in `dtype`."""
    return parse_config({**LLAMA3_8B, "torch_dtype": dtype, "quantization_config": qcfg}, "ckpt")


def _refused(spec, capability, version):
    """The quantisation refusal of `spec` as vLLM `version` serves it (`auto`) on a GPU of `capability`, or None."""
    served = on_gpu(spec, capability, version)
    return quantization_refusal(served, capability, version) or marlin_refusal(served, capability, version)


def _engine(path, *args):
    r = run_kvplan("estimate", path, "-c", "4096", "--format", "json", *args)
    assert r.returncode == 0, r.stderr
    (plan,) = json.loads(r.stdout)["plans"]
    return plan["engine"]


def _write(tmp_path, qcfg: dict, dtype: str = "bfloat16", name: str = "ckpt.json"):
    path = tmp_path / name
    path.write_text(json.dumps({**LLAMA3_8B, "torch_dtype": dtype, "quantization_config": qcfg}))
    return path


# -- the reader ---------------------------------------------------------------------------------------------------

def test_the_reader_keeps_the_keys_vllms_awq_and_gptq_classes_read():
    """awq_marlin.py 0.20.0:312-334 reads quant_method, bits, group_size, zero_point; gptq_marlin.py 0.21.0:278-300
    bits, group_size, sym, desc_act; awq.py 0.23.0:89-91 w_bit / q_group_size before them. Lists and the rest are not
    kept."""
    spec = _checkpoint({**AWQ, "modules_to_not_convert": ["lm_head"]})
    assert spec.quantization == "awq"
    assert spec.quantization_fields == (("bits", 4), ("group_size", 128), ("zero_point", True))
    legacy = _checkpoint({"quant_method": "awq", "w_bit": 4, "q_group_size": 64, "zero_point": True})
    assert legacy.quantization_fields == (("w_bit", 4), ("q_group_size", 64), ("zero_point", True))
    assert _checkpoint(GPTQ).quantization_fields == (("bits", 4), ("group_size", 128), ("sym", True),
                                                     ("desc_act", False))


def test_auto_round_is_priced_as_its_bits_and_groups():
    """quant_method auto-round (inc.py 0.16.0:439) stores GPTQ-packed int4 with an fp16 scale and a packed zero per
    group of 128, as AWQ / GPTQ do. Llama-3-8B by hand, rows x cols per layer: q and o 4096 x 4096, k and v 1024 x 4096,
    gate and up 14336 x 4096, down 4096 x 14336; each r x c / 2 bytes + r x c / 128 groups x 2.5 bytes:
    q, o 8,716,288; k, v 2,179,072; gate, up, down 30,507,008; a layer 113,311,744, 32 layers 3,625,975,808. The rest in
    float16: embed and lm_head 2 x 128,256 x 4,096 + norms 65 x 4,096 = 1,050,939,392 parameters, 2,101,878,784 bytes.
    Total 5,727,854,592."""
    assert 2 * 8_716_288 + 2 * 2_179_072 + 3 * 30_507_008 == 113_311_744
    assert 32 * 113_311_744 + 2 * (2 * 128_256 * 4_096 + 65 * 4_096) == 5_727_854_592
    spec = _checkpoint({"quant_method": "auto-round", "bits": 4, "group_size": 128, "sym": True}, "float16")
    assert spec.weights.dtype == "int4-auto-round" and spec.weights.bytes == 5_727_854_592


# -- which AWQ / GPTQ class claims the checkpoint -----------------------------------------------------------------

@pytest.mark.parametrize("change", [{"group_size": 256}, {"zero_point": False}, {"bits": None}])
def test_awq_marlin_needs_4_bits_zero_points_and_a_marlin_group(change):
    """Before 0.24, AWQMarlinConfig claims an AWQ checkpoint only where is_awq_marlin_compatible passes (awq_marlin.py
    0.20.0:312-334): bits, group_size and zero_point set; zero points leave Marlin uint4 (utils/marlin_utils.py
    0.20.0:73) and groups -1 / 32 / 64 / 128 (:30). Else the plain AWQConfig runs, float16 only (awq.py 0.20.0:71-72)
    where AWQMarlinConfig takes bfloat16 too (awq_marlin.py 0.20.0:204-205): an A100 serving the bfloat16 checkpoint is
    refused. A w_bit-only config (bits None here) is AWQConfig's to read (awq.py 0.20.0:89, w_bit first), not Marlin's.
    From 0.24 AutoAWQConfig claims it whatever the group (auto_awq.py 0.24.0:225-230: [half, bfloat16])."""
    qcfg = {**AWQ, **change}
    if change.get("bits", 4) is None:
        qcfg = {**{k: v for k, v in AWQ.items() if k != "bits"}, "w_bit": 4}
    spec = _checkpoint(qcfg)
    assert vllm_method(_checkpoint(AWQ), A100, "0.20.0") == "awq_marlin"
    assert _refused(_checkpoint(AWQ), A100, "0.20.0") is None
    assert vllm_method(spec, A100, "0.20.0") == "awq"
    assert _refused(spec, A100, "0.20.0").reason == ("torch.bfloat16 is not supported for quantization method awq. "
                                                     "Supported dtypes: [torch.float16]")
    assert vllm_method(spec, A100, "0.24.0") == "auto_awq" and _refused(spec, A100, "0.24.0") is None


def test_gptq_marlin_needs_symmetric_4_or_8_bits_and_desc_act_set():
    """is_gptq_marlin_compatible (gptq_marlin.py 0.21.0:278-300): bits, group_size, sym and desc_act set, (bits, sym)
    (4, True) or (8, True) (:104-105), a Marlin group. Else GPTQConfig, float16 only (gptq.py 0.21.0:131-132), which
    reads desc_act itself (:150): without it, "Cannot find any of ['desc_act'] in the model's quantization config."
    (base_config.py 0.21.0:133-141)."""
    assert vllm_method(_checkpoint({**GPTQ, "bits": 8}), H100, "0.21.0") == "gptq_marlin"
    assert _refused(_checkpoint({**GPTQ, "bits": 8}), H100, "0.21.0") is None
    asym = _checkpoint({**GPTQ, "sym": False})
    assert vllm_method(asym, H100, "0.21.0") == "gptq"
    assert _refused(asym, H100, "0.21.0").reason == ("torch.bfloat16 is not supported for quantization method gptq. "
                                                     "Supported dtypes: [torch.float16]")
    unset = _checkpoint({k: v for k, v in GPTQ.items() if k != "desc_act"}, "float16")
    assert vllm_method(unset, H100, "0.21.0") == "gptq"
    assert _refused(unset, H100, "0.21.0").reason == ("Cannot find any of ['desc_act'] in the model's quantization "
                                                      "config.")


def test_a_t4_runs_plain_awq_before_0_14():
    """Marlin has no quant type below capability 80 until 0.14 (utils/marlin_utils.py 0.13.0:51), 75 from 0.14.0
    (:54): a T4's AWQ checkpoint runs AWQConfig in 0.13.0 and AWQMarlinConfig in 0.14.0."""
    spec = _checkpoint(AWQ, "float16")
    assert vllm_method(spec, T4, "0.13.0") == "awq" and vllm_method(spec, T4, "0.14.0") == "awq_marlin"


# -- what the constructors refuse ----------------------------------------------------------------------------------

def test_awq_8_bits_is_refused_by_every_class():
    """awq.py 0.23.0:53-56 "Currently, only 4-bit weight quantization is supported for AWQ, but got 8 bits." (8 bits
    and zero points: no Marlin type, marlin_utils.py 0.23.0:77); auto_awq.py 0.24.0:201-207 "Unsupported num_bits = 8.
    Supported: 4. For 8-bit AWQ, use Marlin backend by setting backend='awq:marlin' or backend='marlin'." No release
    takes it, so none is offered."""
    spec = _checkpoint({**AWQ, "bits": 8}, "float16")
    old = _refused(spec, H100, "0.23.0")
    assert old.reason == "Currently, only 4-bit weight quantization is supported for AWQ, but got 8 bits."
    new = _refused(spec, H100, "0.24.0")
    assert new.reason == ("Unsupported num_bits = 8. Supported: 4. For 8-bit AWQ, use Marlin backend by setting "
                          "backend='awq:marlin' or backend='marlin'.")
    assert new.options == () and old.options == ()


def test_auto_gptq_refuses_asymmetric_and_3_bit_checkpoints_from_0_22():
    """auto_gptq.py 0.22.0:100-101 TYPE_MAP (4, True) / (8, True), :155-158 "Unsupported quantization config:
    bits={bits}, sym={sym}"; GPTQConfig before took 2, 3, 4 or 8 bits of either symmetry (gptq.py 0.21.0:92-95), so a
    float16 checkpoint is offered 0.21.0 or older."""
    for change, text in (({"sym": False}, "bits=4, sym=False"), ({"bits": 3}, "bits=3, sym=True")):
        spec = _checkpoint({**GPTQ, **change}, "float16")
        assert _refused(spec, H100, "0.21.0") is None
        refused = _refused(spec, H100, "0.22.0")
        assert refused.reason == f"Unsupported quantization config: {text}"
        assert refused.options == ("vllm==0.21.0",) and refused.onward == "older"


def test_auto_gptq_refuses_activation_ordering_within_groups_from_0_30(tmp_path):
    """utils/gptq_utils.py 0.30.0:28-37, called first in AutoGPTQConfig.__init__ (auto_gptq.py 0.30.0:118): desc_act
    true with group_size -1 is dropped (:29-31), with groups refused: "GPTQ group activation ordering (desc_act=True)
    is no longer supported. Use a checkpoint with static activation ordering or desc_act=False." Not in 0.29.0's
    auto_gptq.py (no such call)."""
    ordered = {**GPTQ, "desc_act": True}
    assert _refused(_checkpoint(ordered, "float16"), H100, "0.29.0") is None
    refused = _refused(_checkpoint(ordered, "float16"), H100, "0.30.0")
    assert refused.reason == ("GPTQ group activation ordering (desc_act=True) is no longer supported. Use a checkpoint "
                              "with static activation ordering or desc_act=False.")
    assert _refused(_checkpoint({**ordered, "group_size": -1}, "float16"), H100, "0.34.0") is None
    engine = _engine(_write(tmp_path, ordered, "float16"), "--gpu", "h100")
    assert not engine["starts"] and engine["refusal"]["field"] == "quantization"
    assert "--engine vllm==0.29.0 or older" in engine["refusal"]["remedy"]


def test_auto_gptq_layers_refuse_a_group_marlin_lacks(tmp_path):
    """AutoGPTQLinearMethod.__init__ asks verify_marlin_supported (auto_gptq.py 0.22.0:311-320, 0.34.0:317-331):
    "Marlin does not support group_size = 256. Only group_sizes = [-1, 32, 64, 128] are supported."
    (utils/marlin_utils.py 0.22.0:139-143). GPTQConfig (0.21.0) takes any group."""
    spec = _checkpoint({**GPTQ, "group_size": 256}, "float16")
    assert marlin_refusal(spec, H100, "0.21.0") is None and _refused(spec, H100, "0.21.0") is None
    for version in ("0.22.0", "0.34.0"):
        refused = marlin_refusal(spec, H100, version)
        assert refused.reason == ("Marlin does not support group_size = 256. Only group_sizes = [-1, 32, 64, 128] are "
                                  "supported.")
    engine = _engine(_write(tmp_path, {**GPTQ, "group_size": 256}, "float16"), "--gpu", "h100")
    assert engine["refusal"]["reason"].startswith("Marlin does not support group_size = 256.")
    assert "--engine vllm==0.21.0 or older" in engine["refusal"]["remedy"]


# -- deprecated and unregistered methods ---------------------------------------------------------------------------

DEPRECATED = ("The quantization method {} is deprecated and will be removed in future versions of vLLM. To bypass, "
              "set `--allow-deprecated-quantization`.")


def test_fbgemm_fp8_is_deprecated_from_0_14(tmp_path):
    """DEPRECATED_QUANTIZATION_METHODS holds fbgemm_fp8 from 0.14.0 (__init__.py 0.14.0:49, 0.16.0:41, 0.34.0:55),
    none in 0.13.0; config/model.py 0.14.0:950-963 (0.32.0:1459-1472, 0.34.0:1492-1505) raises the text above (as
    two ValueError arguments) unless --allow-deprecated-quantization. FBGEMMFp8Config takes an H100 in 0.13.0 (80,
    [bfloat16, float16]: fbgemm_fp8.py 0.13.0:60-65)."""
    spec = _checkpoint({"quant_method": "fbgemm_fp8", "activation_scale_ub": 1200.0})
    assert _refused(spec, H100, "0.13.0") is None
    for version in ("0.14.0", "0.32.0", "0.34.0"):
        refused = _refused(spec, H100, version)
        assert refused.reason == DEPRECATED.format("fbgemm_fp8") and refused.field == "engine"
        assert refused.options == ("vllm==0.13.0",) and refused.onward == "older"
    remedy = _engine(_write(tmp_path, {"quant_method": "fbgemm_fp8"}), "--gpu", "h100")["refusal"]["remedy"]
    assert "--engine vllm==0.13.0 or older" in remedy and "--allow-deprecated-quantization" in remedy


def test_fbgemm_fp8_check_exits_1(tmp_path):
    config = _write(tmp_path, {"quant_method": "fbgemm_fp8"})
    path = tmp_path / "deployments.yaml"
    path.write_text(f"deployments:\n  - name: f\n    model: {config}\n    tp: 1\n    gpu: h100\n    context: 4096\n")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 1
    refusal = json.loads(r.stdout)["results"][0]["engine"]["refusal"]
    assert refusal["reason"] == DEPRECATED.format("fbgemm_fp8")


def test_auto_round_deprecated_in_0_14_and_inc_from_0_15():
    """AutoRoundConfig, "auto-round", 60 and [half, bfloat16] (auto_round.py 0.13.0:98-107) to 0.14.1, deprecated in
    0.14.0-0.14.1 (__init__.py 0.14.0:57); from 0.15.0 INCConfig's override claims quant_method auto-round
    (inc.py 0.15.0:457-464, 0.16.0:435-442), 60 and [half, bfloat16] (0.15.0 :102-107, 0.16.0 :101-106), and inc is
    not deprecated (__init__.py 0.15.0:41-52, 0.16.0:38-45)."""
    spec = _checkpoint({"quant_method": "auto-round", "bits": 4, "group_size": 128, "sym": True})
    assert vllm_method(spec, T4, "0.13.0") == "auto-round" and _refused(spec, H100, "0.13.0") is None
    refused = _refused(spec, H100, "0.14.1")
    assert refused.reason == DEPRECATED.format("auto-round")
    assert refused.options == ("vllm==0.15.0",) and refused.onward == "newer"
    assert vllm_method(spec, H100, "0.16.0") == "inc" and _refused(spec, H100, "0.16.0") is None
    assert _refused(on_gpu(spec, T4, "0.32.0"), T4, "0.32.0") is None  # 60: a T4 (float16) too


def test_a_marlin_checkpoint_is_unknown_in_every_release_read():
    """"marlin" is in no QUANTIZATION_METHODS (__init__.py 0.11.0:9-38, 0.34.0) and no override claims quant_method
    marlin (awq_marlin / gptq_marlin ask awq / gptq: awq_marlin.py 0.11.0:170, gptq_marlin.py 0.11.0:228), so
    config/model.py 0.11.0:959-963 raises "Unknown quantization method: marlin. Must be one of [...]"."""
    spec = _checkpoint({"quant_method": "marlin", "bits": 4, "group_size": 128})
    for version in ("0.11.0", "0.34.0"):
        refused = gpu_quantization_refusal(spec, H100, version)
        assert refused.first_sentence == "Unknown quantization method: marlin"
        assert refused.field == "quantization" and refused.options == ()


# -- ROCm's supported_quantization -----------------------------------------------------------------------------------

def test_rocm_refuses_methods_outside_its_list():
    """platforms/interface.py 0.20.0:650-657 verify_quantization: "{q} quantization is currently not supported in rocm."
    (device_name "rocm"). ModelOpt FP8 (modelopt) is not in rocm.py 0.20.0:406's list and is in 0.21.0:406's;
    bitsandbytes joins at 0.17.0 (:324); inc at 0.28.0 (:513), so an AutoRound checkpoint (inc from 0.16) is refused
    on ROCm 0.16-0.27, and as auto-round before (no release's list has it)."""
    from dataclasses import replace

    modelopt = replace(_checkpoint(AWQ), quantization="modelopt", quantization_fields=())
    refused = gpu_quantization_refusal(modelopt, ROCM, "0.20.2")
    assert refused.reason == "modelopt quantization is currently not supported in rocm."
    assert refused.options == ("vllm==0.21.0",) and refused.onward == "newer"
    assert gpu_quantization_refusal(modelopt, ROCM, "0.21.0") is None
    bnb = replace(modelopt, quantization="bitsandbytes")
    assert gpu_quantization_refusal(bnb, ROCM, "0.16.0").reason == ("bitsandbytes quantization is currently not "
                                                                    "supported in rocm.")
    assert gpu_quantization_refusal(bnb, ROCM, "0.17.0") is None
    rounded = _checkpoint({"quant_method": "auto-round", "bits": 4, "group_size": 128, "sym": True})
    assert gpu_quantization_refusal(rounded, ROCM, "0.13.0").reason.startswith("auto-round quantization is currently")
    assert gpu_quantization_refusal(rounded, ROCM, "0.27.0").reason.startswith("inc quantization is currently")
    assert gpu_quantization_refusal(rounded, ROCM, "0.28.0") is None
    assert gpu_quantization_refusal(rounded, A100, "0.27.0") is None  # CUDA has no such list


def test_rocm_runs_plain_gptq_until_auto_gptq():
    """gptq_marlin.py 0.21.0:285 claims for CUDA or CPU only: ROCm runs GPTQConfig (float16 only, gptq.py 0.21.0
    :131-132) until AutoGPTQConfig in 0.22.0 (in rocm.py 0.22.0:411's list, [half, bfloat16])."""
    spec = _checkpoint(GPTQ)
    assert vllm_method(spec, ROCM, "0.21.0") == "gptq"
    assert gpu_quantization_refusal(spec, ROCM, "0.21.0").reason == (
        "torch.bfloat16 is not supported for quantization method gptq. Supported dtypes: [torch.float16]")
    assert gpu_quantization_refusal(spec, ROCM, "0.22.0") is None


def test_deepseek_v4_on_an_mi300x_needs_0_21():
    """DeepSeek-V4's checkpoint runs as deepseek_v4_fp8 (models/deepseek_v4.py 0.20.0:134), which rocm.py 0.20.0:406's
    list lacks and 0.21.0:406's has."""
    engine = _engine("deepseek-ai/DeepSeek-V4-Flash", "--gpu", "mi300x", "-tp", "8", "--engine", "vllm==0.20.0")
    assert engine["refusal"]["reason"] == "deepseek_v4_fp8 quantization is currently not supported in rocm."
    assert "--engine vllm==0.21.0 or newer" in engine["refusal"]["remedy"]
    assert _engine("deepseek-ai/DeepSeek-V4-Flash", "--gpu", "mi300x", "-tp", "8", "--engine", "vllm==0.21.0",
                   "--kv-cache-dtype", "fp8")["starts"]  # 0.21.0 refuses `auto` (test_v4_auto_dtype_s71)


# -- --quantization awq / gptq of a checkpoint without a quantization_config ----------------------------------------

@pytest.mark.parametrize("flag", ["-q", "--quantization"])
def test_awq_of_an_unquantised_checkpoint_is_bad_input(flag):
    """vLLM has no AWQ settings to read: get_quant_config finds no quantization_config and no quant_config.json /
    quantize_config.json and raises "Cannot find the config file for awq" (model_loader/weight_utils.py 0.11.0:289,
    0.32.0:375, 0.34.0:410). Before, kvplan priced Llama-3.2-1B as a 4-bit AWQ checkpoint."""
    line = one_error_line(run_kvplan("estimate", "meta-llama/Llama-3.2-1B-Instruct", flag, "awq", "--gpu", "a100"))
    assert line == (f"kvplan: error: {flag} awq needs a checkpoint quantised with AWQ: this model's config has no "
                    "quantization_config and no quant_config.json or quantize_config.json lies beside its config.json "
                    "(vLLM reads that file instead), so vLLM stops at \"Cannot find the config file for awq\".")


def test_gptq_of_an_unquantised_checkpoint_in_a_deployments_file(tmp_path):
    path = tmp_path / "deployments.yaml"
    path.write_text("deployments:\n  - name: g\n    model: meta-llama/Llama-3.2-1B-Instruct\n    tp: 1\n    gpu: h100\n"
                    "    context: 4096\n    quantization: gptq\n")
    line = one_error_line(run_kvplan("check", "--file", path))
    assert line == (f"kvplan: error: {path}:7: deployment 'g' field 'quantization' gptq needs a checkpoint quantised "
                    "with GPTQ: this model's config has no quantization_config and no quantize_config.json lies beside "
                    "its config.json (vLLM reads that file instead), so vLLM stops at \"Cannot find the config file "
                    "for gptq\".")


def test_gptq_by_name_of_an_8_bit_gptq_checkpoint_is_taken(tmp_path):
    """The method names the class, whatever the bits (config/model.py 0.21.0 _verify_quantization compares method
    names); an AWQ checkpoint asked as gptq is refused as a mismatch, as before."""
    path = _write(tmp_path, {**GPTQ, "bits": 8}, "float16")
    assert _engine(path, "--gpu", "h100", "-q", "gptq", "--engine", "vllm==0.21.0")["starts"]
    line = one_error_line(run_kvplan("estimate", _write(tmp_path, AWQ, name="awq.json"), "-q", "gptq"))
    assert line == ("kvplan: error: -q gptq does not match the checkpoint, whose weights are stored as int4-awq; vLLM "
                    "refuses a different method for a quantised checkpoint.")
