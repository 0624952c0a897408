"""vLLM's refusals of a weight quantisation on a GPU and in the served dtype (engines/vllm_quant.py), the weights
advice that no longer offers a refused fp8, the GPU's name in the bfloat16 refusal, the served precision in the
estimate's heading, and a drafter served in a float32 target's dtype.

vLLM's text, read by hand:
- config/vllm.py 0.32.0:895-913 VllmConfig._get_quantization_config: "The quantization method {q} is not supported
  for the current GPU. Minimum capability: {min}. Current capability: {cc}." (cc = major x 10 + minor) and
  "{model_config.dtype} is not supported for quantization method {q}. Supported dtypes: {list}" (a list of torch
  dtypes, printed as [torch.bfloat16, torch.float16]: repr(torch.half) is torch.float16).
- minimums and dtypes (model_executor/layers/quantization/): fp8.py 0.11.0:110-115 80, 0.14.0:148-153 and 0.32.0
  :142-147 75, [bfloat16, half]; mxfp4.py 0.32.0:71-80 80, [bfloat16] (GptOssMxfp4Config inherits, name
  gpt_oss_mxfp4 from 0.20.0); awq.py 0.23.0:71-77 AWQConfig 75, [half]; auto_awq.py 0.32.0:229-234 75, [half,
  bfloat16]; gptq.py 0.21.0:131-137 60, [half]; auto_gptq.py 0.22.0:181-186 60, [half, bfloat16]; modelopt.py
  ModelOptFp8Config 0.11.0:81-86 89, 0.27.0:403-408 80.
- platforms/cuda.py 0.32.0:636-654 check_if_supports_dtype: "Your {gpu_name} GPU has compute capability 7.5."
  with get_device_name NVML's name ("Tesla T4").
- config/speculative.py 0.32.0:1289-1301: the draft ModelConfig takes dtype=self.target_model_config.dtype.
"""

import json
from dataclasses import replace

import pytest

from tests.conftest import run_kvplan

from kvplan.engines.vllm_model_dtype import gpu_dtype_refusal, on_gpu
from kvplan.engines.vllm_engine import VllmEngine
from kvplan.engines.vllm_quant import gpu_quantization_refusal, method_rule, scheme_refusal, vllm_method
from kvplan.engines.vllm_sparse import ROCM
from kvplan.plan.catalog import find_gpu
from kvplan.engines.vllm_speculative import Speculative, draft_weights, with_drafter
from kvplan.model.quantization import apply_weight_precision
from kvplan.model.sources import resolve

# a published AWQ / GPTQ checkpoint's quantization_config (AutoAWQ: 4 bits, groups of 128, zero points; GPTQ:
# symmetric, no activation ordering), as model/params.quantization_fields keeps it
AWQ_FIELDS = (("bits", 4), ("group_size", 128), ("zero_point", True))
GPTQ_FIELDS = (("bits", 4), ("group_size", 128), ("sym", True), ("desc_act", False))
LLAMA_1B, LLAMA_70B, GEMMA3, GPT_OSS = ("meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.1-70B-Instruct",
                                        "google/gemma-3-4b-it", "openai/gpt-oss-20b")
T4, A100, L4, H100 = (7, 5), (8, 0), (8, 9), (9, 0)


def _engine(*args):
    r = run_kvplan("estimate", *args, "-c", "4096", "--format", "json")
    assert r.returncode == 0, r.stderr
    (plan,) = json.loads(r.stdout)["plans"]
    return plan["engine"]


def _text(*args):
    r = run_kvplan("estimate", *args, env={"COLUMNS": "400"})
    assert r.returncode == 0, r.stderr
    return " ".join(r.stdout.split())


# -- the capability check -----------------------------------------------------------------------------------------

def test_fp8_on_a_t4_is_refused_before_0_14_and_taken_from_it():
    refused = _engine(LLAMA_1B, "--gpu", "t4", "-q", "fp8", "--engine", "vllm==0.12.0")
    assert not refused["starts"]
    assert refused["refusal"]["reason"] == ("The quantization method fp8 is not supported for the current GPU. "
                                            "Minimum capability: 80. Current capability: 75.")
    assert refused["refusal"]["field"] == "quantization" and refused["refusal"]["configuration"]
    assert "--engine vllm==0.14.0 or newer" in refused["refusal"]["remedy"]
    assert "compute capability 8.0 or more" in refused["refusal"]["remedy"]
    assert _engine(LLAMA_1B, "--gpu", "t4", "-q", "fp8", "--engine", "vllm==0.14.0")["starts"]
    assert _engine(LLAMA_1B, "--gpu", "t4", "-q", "fp8")["starts"]  # served float16, which fp8 takes
    assert _engine(LLAMA_1B, "--gpu", "a100-80gb", "-q", "fp8", "--engine", "vllm==0.12.0")["starts"]


def test_gpt_oss_mxfp4_checkpoint_needs_capability_8_0():
    """gpt-oss's checkpoint names mxfp4; vLLM 0.20 on runs it as gpt_oss_mxfp4 (Mxfp4Config's override), before as
    mxfp4; 80 either way, so a T4 refuses it and an A100 / L4 / H100 do not."""
    refused = _engine(GPT_OSS, "--gpu", "t4")["refusal"]
    assert refused["reason"] == ("The quantization method gpt_oss_mxfp4 is not supported for the current GPU. "
                                 "Minimum capability: 80. Current capability: 75.")
    # the checkpoint's method, not the class vLLM runs it with
    assert "a checkpoint of the model not quantised as mxfp4," in refused["remedy"]
    older = _engine(GPT_OSS, "--gpu", "t4", "--engine", "vllm==0.19.0")["refusal"]["reason"]
    assert older.startswith("The quantization method mxfp4 is not supported")
    spec = resolve(GPT_OSS, None)
    for capability in (A100, L4, H100):
        assert gpu_quantization_refusal(on_gpu(spec, capability), capability) is None


def test_quantization_mxfp4_asked_on_a_t4_is_online_from_0_28():
    """--quantization mxfp4 of a checkpoint without a quantization config: Mxfp4Config() to 0.27 (0.27.0
    model_loader/weight_utils.py:363-364 `return quant_cls()`; mxfp4.py 80, [bfloat16]); from 0.28 the mxfp4 online
    shorthand (config/quantization.py 0.28.0:135-138 _ONLINE_SHORTHANDS "mxfp4"; weight_utils.py 0.28.0:318-325 and
    0.32.0 :359-362 build OnlineQuantizationConfig), whose limits are 75 and [bfloat16, half] (online/base.py 0.28.0
    :109-116, 0.32.0 :205-212)."""
    assert _engine(LLAMA_1B, "--gpu", "t4", "-q", "mxfp4", "--engine", "vllm==0.32.0")["starts"]
    assert _engine(LLAMA_1B, "--gpu", "t4", "-q", "mxfp4", "--engine", "vllm==0.28.0")["starts"]
    refused = _engine(LLAMA_1B, "--gpu", "t4", "-q", "mxfp4", "--engine", "vllm==0.27.0")["refusal"]
    assert refused["reason"] == ("The quantization method mxfp4 is not supported for the current GPU. Minimum "
                                 "capability: 80. Current capability: 75.")
    assert "--engine vllm==0.28.0 or newer" in refused["remedy"]
    assert "the model without --quantization mxfp4" in refused["remedy"]
    llama = resolve(LLAMA_1B, None)
    asked = replace(llama, quantization_asked="mxfp4")
    assert method_rule("mxfp4", "0.28.0", asked) == (75, ("bf16", "fp16"))
    assert method_rule("mxfp4", "0.27.0", asked) == (80, ("bf16",))
    # a checkpoint that names mxfp4 keeps its own class (weight_utils.py 0.28.0:271-287 reads it first)
    assert method_rule("gpt_oss_mxfp4", "0.32.0", resolve(GPT_OSS, None)) == (80, ("bf16",))


def test_quantization_mxfp4_in_float16_on_an_h100():
    """The online class takes float16 (online/base.py 0.32.0:205-207); Mxfp4Config before 0.28 takes bfloat16 only."""
    assert _engine(LLAMA_1B, "--gpu", "h100", "-q", "mxfp4", "--dtype", "float16")["starts"]
    refused = _engine(LLAMA_1B, "--gpu", "h100", "-q", "mxfp4", "--dtype", "float16", "--engine",
                      "vllm==0.27.0")["refusal"]
    assert refused["reason"] == ("torch.float16 is not supported for quantization method mxfp4. Supported dtypes: "
                                 "[torch.bfloat16]")
    assert refused["remedy"] == "vLLM accepts --dtype bfloat16"


def test_quantization_fp8_online_from_0_31_keeps_fp8s_numbers():
    """--quantization fp8 of an unquantised checkpoint: OnlineQuantizationConfig from 0.31 (weight_utils.py 0.31.0
    :341-349 "--quantization fp8 is deprecated for online quantization"), 75 and [bfloat16, half] as Fp8Config's
    own from 0.14 (fp8.py 0.32.0:142-147)."""
    asked = replace(resolve(LLAMA_1B, None), quantization_asked="fp8")
    assert method_rule("fp8", "0.31.0", asked) == method_rule("fp8", "0.30.0", asked) == (75, ("bf16", "fp16"))


def test_modelopt_fp8_minimum_went_from_89_to_80_in_0_27():
    """ModelOptFp8Config 89 (0.11.0 modelopt.py:85) to 0.26, 80 from 0.27.0 (:407): an A100 refused, an L4 (8.9)
    taken, in 0.26.0."""
    spec = replace(resolve(LLAMA_1B, None), quantization="modelopt")
    refusal = gpu_quantization_refusal(spec, A100, "0.26.0")
    assert refusal.reason == ("The quantization method modelopt is not supported for the current GPU. Minimum "
                              "capability: 89. Current capability: 80.")
    assert "--engine vllm==0.27.0 or newer" in refusal.remedy
    assert gpu_quantization_refusal(spec, L4, "0.26.0") is None
    assert gpu_quantization_refusal(spec, A100, "0.27.0") is None


# -- the dtype check ------------------------------------------------------------------------------------------------

def test_no_later_release_is_offered_where_the_dtype_check_would_refuse_it():
    """Gemma 3 on a T4 under 0.12.0: fp8's minimum (80) refuses it first; 0.14.0 lowers it to 75, but float32 is
    still not an fp8 dtype there, so no release is offered."""
    refused = _engine(GEMMA3, "--gpu", "t4", "-q", "fp8", "--engine", "vllm==0.12.0")["refusal"]
    assert refused["reason"].startswith("The quantization method fp8 is not supported for the current GPU.")
    assert "--engine" not in refused["remedy"]


def test_gemma_3_on_a_t4_with_fp8_is_refused_for_its_float32():
    """A T4 serves Gemma 3 in float32 (no bfloat16 below 8.0, vLLM refuses float16 for gemma3); fp8 takes bfloat16
    and float16 only, and no --dtype both passes here: the remedy names none."""
    refused = _engine(GEMMA3, "--gpu", "t4", "-q", "fp8")["refusal"]
    assert refused["reason"] == ("torch.float32 is not supported for quantization method fp8. Supported dtypes: "
                                 "[torch.bfloat16, torch.float16]")
    assert refused["field"] == "dtype" and "--dtype" not in refused["remedy"].split(": ", 1)[1]
    assert "the model without --quantization fp8" in refused["remedy"]
    assert "a GPU of compute capability 8.0 or more" in refused["remedy"]
    assert _engine(GEMMA3, "--gpu", "a100-80gb", "-q", "fp8")["starts"]  # bfloat16 there


def test_gpt_oss_asked_in_float16_names_bfloat16():
    """gpt-oss's checkpoint runs as gpt_oss_mxfp4 on ROCm too (its override is platform-independent: config/model.py
    0.32.0 _verify_quantization; "gpt_oss_mxfp4" in rocm.py 0.32.0:637), and the dtype check is VllmConfig's on
    every platform: an MI300X refuses float16 as an H100 does."""
    for gpu in ("h100", "mi300x"):
        refused = _engine(GPT_OSS, "--gpu", gpu, "--dtype", "float16")["refusal"]
        assert refused["reason"] == ("torch.float16 is not supported for quantization method gpt_oss_mxfp4. "
                                     "Supported dtypes: [torch.bfloat16]")
        assert refused["remedy"] == "vLLM accepts --dtype bfloat16"
    assert _engine(GPT_OSS, "--gpu", "mi300x")["starts"]


def test_rocm_runs_awq_marlin_from_0_19_and_auto_awq_from_0_24():
    """ROCm's AWQ checkpoint runs the plain AWQConfig (float16 only: awq.py 0.18.1:69-70) before 0.19, where
    is_awq_marlin_compatible asks CUDA (awq_marlin.py 0.18.1:229); AWQMarlinConfig from 0.19 (is_cuda_alike, 0.19.0
    :312; [half, bfloat16], :202-203), AutoAWQConfig from 0.24 (auto_awq.py 0.24.0:225-230): all refuse float32."""
    awq = replace(resolve(GEMMA3, None), quantization="awq", quantization_fields=AWQ_FIELDS, dtype="fp32",
                  dtype_asked=True)
    for version, method, dtypes in (("0.18.1", "awq", "torch.float16"),
                                    ("0.20.0", "awq_marlin", "torch.float16, torch.bfloat16"),
                                    ("0.24.0", "auto_awq", "torch.float16, torch.bfloat16")):
        assert gpu_quantization_refusal(awq, ROCM, version).reason == (
            f"torch.float32 is not supported for quantization method {method}. Supported dtypes: [{dtypes}]")


# -- remedies checked against every configuration refusal --------------------------------------------------------

def test_dtype_remedies_with_fp8_name_no_dtype_fp8_refuses():
    """Gemma 3 with fp8 on a T4: bfloat16 needs 8.0 (platforms/cuda.py 0.32.0:636-654), float16 is refused for
    gemma3 (config/model.py 0.32.0:2395-2400), float32 by fp8 (fp8.py 0.32.0:142-147: [bfloat16, half]). So no
    --dtype is named, where the worker's and the model's refusals alone named float32."""
    for dtype in ("bfloat16", "float16"):
        remedy = _engine(GEMMA3, "--gpu", "T4", "-q", "fp8", "--dtype", dtype)["refusal"]["remedy"]
        assert remedy.startswith("no --dtype gets past vLLM's checks for this model on this GPU: vLLM accepts ")
        assert "--dtype float32 (or" not in remedy and "float32 or auto" not in remedy
        assert "the model without --quantization fp8 with --dtype float32" in remedy
    refused = _engine(GEMMA3, "--gpu", "T4", "-q", "fp8", "--dtype", "float32")["refusal"]
    assert refused["reason"].startswith("torch.float32 is not supported for quantization method fp8.")
    plain = _engine(GEMMA3, "--gpu", "T4", "--dtype", "float32")["refusal"]  # without fp8: only memory stops it
    assert plain is None or not plain.get("configuration")


def test_gpu_remedy_offers_only_what_passes_the_rest_of_the_chain():
    """DeepSeek-V3.2 on a T4 under 0.11.0: fp8 asks 80 there (fp8.py 0.11.0:110-115), 75 from 0.14, but no sparse MLA
    backend runs on a T4 or an A100 (vllm_sparse.SPARSE_MAJORS: Hopper and Blackwell), so neither a release nor a
    GPU of 8.0 is offered: Hopper GPUs are, by name, since FlashMLA's sparse kernels run on no 12.x GPU (RTX 5090,
    RTX PRO 6000: UNCHECKED_SPARSE_GPU), so not every GPU from 9.0 on takes it."""
    remedy = _engine("deepseek-ai/DeepSeek-V3.2", "--gpu", "T4", "--engine", "vllm==0.11.0")["refusal"]["remedy"]
    assert "--engine" not in remedy and "8.0" not in remedy
    assert "a GPU such as H100-80GB-SXM" in remedy and "or more" not in remedy and "RTX" not in remedy
    assert not _engine("deepseek-ai/DeepSeek-V3.2", "--gpu", "a100-80gb", "--engine", "vllm==0.11.0")["starts"]
    assert not _engine("deepseek-ai/DeepSeek-V3.2", "--gpu", "T4", "--engine", "vllm==0.14.0")["starts"]


def test_gpt_oss_in_float16_on_a_t4_names_the_dtype_a_faster_gpu_needs():
    """gpt_oss_mxfp4 asks 80 and takes bfloat16 only (mxfp4.py 0.32.0:71-80): an A100 refuses float16 too."""
    remedy = _engine(GPT_OSS, "--gpu", "T4", "--dtype", "float16")["refusal"]["remedy"]
    assert "a GPU of compute capability 8.0 or more with --dtype bfloat16" in remedy
    assert not _engine(GPT_OSS, "--gpu", "a100-80gb", "--dtype", "float16")["starts"]
    assert _engine(GPT_OSS, "--gpu", "a100-80gb", "--dtype", "bfloat16")["starts"]


# -- compressed-tensors' schemes, a removed method, the memo -------------------------------------------------------

def _with_stored(spec, stored: str):
    params = tuple(replace(g, stored=stored) if g.name in ("attention", "dense") else g for g in spec.params)
    return replace(spec, quantization="compressed-tensors", params=params)


@pytest.mark.parametrize("stored, last_80, first_75", [("fp8-w8a16", "0.14.1", "0.16.0"),
                                                       ("fp8-w8a8", "0.14.1", "0.16.0"),
                                                       ("nvfp4", "0.14.1", "0.16.0"),
                                                       ("int4-w4a16", "0.11.2", "0.12.0")])
def test_compressed_tensors_schemes_asked_8_0_in_older_releases(stored, last_80, first_75):
    """schemes/*.py get_min_capability: w8a16_fp8 80 in 0.11.0-0.14.1, 75 in 0.16.0 (fp8 W8A8, 89, falls back to it
    below 8.9: compressed_tensors.py 0.14.1:623-640); w4a16_nvfp4 80 to 0.14.1, 75 in 0.16.0 (W4A4 falls back to it
    without CUTLASS FP4: :611-621); wNa16 80 in 0.11.2, 75 in 0.12.0. The check: compressed_tensors.py 0.14.0:756
    _check_scheme_supported, "Quantization scheme is not supported for the current GPU. Min capability: ..." """
    spec = on_gpu(_with_stored(resolve(LLAMA_1B, None), stored), T4, last_80)
    assert gpu_quantization_refusal(spec, T4, last_80) is None  # the method itself asks 70
    refused = scheme_refusal(spec, T4, last_80)
    assert refused.reason == ("Quantization scheme is not supported for the current GPU. Min capability: 80. Current "
                              "capability: 75.")
    assert scheme_refusal(spec, T4, first_75) is None and scheme_refusal(spec, A100, last_80) is None
    assert scheme_refusal(_with_stored(spec, "int8-w8a8"), T4, "0.11.0") is None  # w8a8_int8: 75


def test_bitsandbytes_checkpoint_is_an_unknown_method_from_0_28():
    """bitsandbytes.py is in 0.27.1's quantization/ and gone from 0.28.0's, so ModelConfig._verify_quantization
    raises "Unknown quantization method: bitsandbytes. Must be one of [...]" (config/model.py 0.28.0:1280-1285)."""
    spec = replace(resolve(LLAMA_1B, None), quantization="bitsandbytes")
    refused = gpu_quantization_refusal(spec, A100, "0.28.0")
    assert refused.first_sentence == "Unknown quantization method: bitsandbytes"
    assert refused.field == "engine" and refused.options == ("vllm==0.27.1",) and refused.onward == "older"
    assert gpu_quantization_refusal(spec, A100, "0.27.1") is None
    assert gpu_quantization_refusal(spec, ROCM, "0.28.0") is not None  # before any platform check
    assert gpu_quantization_refusal(spec, (), "0.28.0") is not None  # whatever the GPU
    engine, a100 = VllmEngine("0.32.0"), find_gpu("A100-80GB")
    asked = dict(engine="vllm==0.32.0", kv_dtype="auto", context=4096, block_size=None)
    refused = engine.configuration_refusal(spec, asked, 1, a100)
    fixes = engine.fixes(spec, refused, kv_dtype="auto", context=4096, block_size=None, tp=1, gpu=a100)
    assert [fix.words() for fix in fixes] == ["engine vllm==0.27.1 or older"]


def test_configuration_refusal_memo_tells_gpus_of_one_capability_apart():
    """The bfloat16 refusal names the GPU (platforms/cuda.py 0.32.0:636-654), so two GPUs of capability 7.5 with
    different names get their own answers."""
    t4 = find_gpu("T4")
    other = replace(t4, name="T4-other", aliases=("NVIDIA Other T4",))
    spec = replace(resolve(LLAMA_1B, None), dtype_asked=True)
    engine = VllmEngine()
    asked = dict(engine="vllm==0.32.0", kv_dtype="auto", context=4096, block_size=None)
    assert "Your Tesla T4 GPU" in engine.configuration_refusal(spec, asked, 1, t4).reason
    assert "Your NVIDIA Other T4 GPU" in engine.configuration_refusal(spec, asked, 1, other).reason


def test_awq_and_gptq_by_name_ran_float16_only_kernels_before_the_auto_classes(write_config):
    """--quantization awq of an AWQ checkpoint kept AWQConfig (float16 only) to 0.23 (awq_marlin.py: "forcing awq");
    0.24 maps awq to AutoAWQConfig (float16, bfloat16). gptq likewise: GPTQConfig to 0.21, AutoGPTQConfig from 0.22.
    The checkpoints here are stored in bfloat16, which `auto` serves on an A100."""
    from tests.hub_configs import LLAMA3_8B

    for method, fields, last, first in (("awq", AWQ_FIELDS, "0.23.0", "0.24.0"),
                                        ("gptq", GPTQ_FIELDS, "0.21.0", "0.22.0")):
        path = write_config({**LLAMA3_8B, "quantization_config": {"quant_method": method, **dict(fields)}},
                            f"{method}.json")
        refused = _engine(path, "--gpu", "a100-80gb", "-q", method, "--engine", f"vllm=={last}")["refusal"]
        assert refused["reason"] == (f"torch.bfloat16 is not supported for quantization method {method}. Supported "
                                     f"dtypes: [torch.float16]")
        assert refused["remedy"] == "vLLM accepts --dtype float16"
        assert _engine(path, "--gpu", "a100-80gb", "-q", method, "--engine", f"vllm=={first}")["starts"]
        assert _engine(path, "--gpu", "a100-80gb", "-q", method, "--engine", f"vllm=={last}", "--dtype",
                       "float16")["starts"]
        assert _engine(path, "--gpu", "a100-80gb", "--engine", f"vllm=={last}")["starts"]  # Marlin's class


def test_the_method_an_awq_checkpoint_runs_as():
    """Before 0.24 AWQMarlinConfig claims an AWQ checkpoint where Marlin runs (80, 75 from 0.14:
    utils/marlin_utils.py 0.11.0:46, 0.14.0:54) and --quantization is unset; from 0.24 AutoAWQConfig (auto_awq)."""
    awq = replace(resolve(LLAMA_1B, None), quantization="awq", quantization_fields=AWQ_FIELDS)
    assert vllm_method(awq, T4, "0.12.0") == "awq" and vllm_method(awq, A100, "0.12.0") == "awq_marlin"
    assert vllm_method(awq, T4, "0.14.0") == "awq_marlin"
    assert vllm_method(replace(awq, quantization_asked="awq"), A100, "0.20.0") == "awq"
    assert vllm_method(awq, T4, "0.32.0") == "auto_awq"
    gptq = replace(awq, quantization="gptq", quantization_fields=GPTQ_FIELDS)
    assert vllm_method(gptq, H100, "0.21.0") == "gptq_marlin" and vllm_method(gptq, H100, "0.22.0") == "auto_gptq"
    # a T4 before 0.14 runs the plain AWQ kernel: float16 only, so a float32 Gemma 3 is refused there
    gemma = on_gpu(replace(resolve(GEMMA3, None), quantization="awq", quantization_fields=AWQ_FIELDS), T4,
                        "0.12.0")
    assert gpu_quantization_refusal(gemma, T4, "0.12.0").reason == (
        "torch.float32 is not supported for quantization method awq. Supported dtypes: [torch.float16]")


def test_compressed_tensors_takes_float32():
    """CompressedTensorsConfig 70, [float32, float16, bfloat16] (0.32.0 compressed_tensors.py:119-124)."""
    spec = on_gpu(replace(resolve(GEMMA3, None), quantization="compressed-tensors"), T4)
    assert spec.dtype == "fp32" and gpu_quantization_refusal(spec, T4) is None


def test_check_exits_1_for_a_refused_checkpoint(tmp_path):
    path = tmp_path / "deployments.yaml"
    path.write_text(f"deployments:\n  - name: g\n    model: {GPT_OSS}\n    tp: 1\n    gpu: t4\n    context: 4096\n")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 1
    result = json.loads(r.stdout)["results"][0]
    assert not result["passed"] and result["engine"]["refusal"]["field"] == "quantization"
    assert result["engine"]["refusal"]["reason"].startswith("The quantization method gpt_oss_mxfp4")


# -- the weights advice ---------------------------------------------------------------------------------------------

def test_weights_advice_offers_fp8_only_where_vllm_takes_it():
    gemma = _text(GEMMA3, "--gpu", "t4")
    assert "--quantization fp8" not in gemma
    assert ("Not fp8 weights: vllm 0.32.0 refuses them here: torch.float32 is not supported for quantization method "
            "fp8. Supported dtypes: [torch.bfloat16, torch.float16].") in gemma
    llama = _text(LLAMA_70B, "--gpu", "t4", "-c", "8192")
    assert "fp8 weights (an fp8 checkpoint or --quantization fp8" in llama  # float16 on a T4: fp8 takes it
    old = _text(LLAMA_70B, "--gpu", "t4", "-c", "8192", "--engine", "vllm==0.12.0")
    assert "--quantization fp8" not in old and "Minimum capability: 80. Current capability: 75." in old


# -- the GPU's name, the heading, the drafter -------------------------------------------------------------------------

def test_bfloat16_refusal_names_the_gpu_as_nvml_does():
    refused = _engine(LLAMA_1B, "--gpu", "t4", "--dtype", "bfloat16")["refusal"]["reason"]
    assert refused == ("Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your Tesla T4 GPU "
                       "has compute capability 7.5. You can use float16 instead by explicitly setting the `dtype` flag "
                       "in CLI, for example: --dtype=half.")
    spec = replace(resolve(LLAMA_1B, None), dtype_asked=True)
    assert "Your GPU has compute capability 7.5." in gpu_dtype_refusal(spec, T4).reason  # no name known


def test_heading_names_the_weights_the_budget_prices():
    """Gemma 3 4B: 4,300,079,472 parameters (bundled), 8,600,158,944 bytes in bfloat16 (8.01 GiB); a T4 serves it
    in float32: 17,200,317,888 bytes = 16.02 GiB, what the budget line subtracts."""
    assert 4_300_079_472 * 2 == 8_600_158_944 and 4_300_079_472 * 4 == 17_200_317_888
    t4 = _text(GEMMA3, "--gpu", "t4", "-c", "4096")
    assert "google/gemma-3-4b-it on T4: 34 layers, 16.0 GiB weights (served as float32)" in t4
    assert "- weights 16.0 GiB" in t4
    h100 = _text(GEMMA3, "--gpu", "h100", "-c", "4096")
    assert "google/gemma-3-4b-it on H100-80GB-SXM: 34 layers, 8.01 GiB weights " in h100 + " "
    t4_llama = _text(LLAMA_1B, "--gpu", "t4", "-c", "4096")
    assert "(served as" not in t4_llama  # float16 for bfloat16: the same bytes


def test_draft_model_served_in_a_float32_targets_dtype():
    """gemma-3-4b-it drafting for gemma-3-12b-it: 4,300,079,472 parameters, 8,600,158,944 bytes in bfloat16 on an
    H100, 17,200,317,888 in float32 on a T4 (the target's dtype)."""
    spec = with_drafter(resolve("google/gemma-3-12b-it", None), Speculative("draft_model", 2, GEMMA3), "0.32.0")
    assert draft_weights(on_gpu(spec, H100).draft, 1) == 8_600_158_944
    t4 = on_gpu(spec, T4)
    assert t4.dtype == "fp32" and draft_weights(t4.draft, 1) == 17_200_317_888


def test_mtp_modules_follow_dtype_float32():
    """Qwen3-Next's one MTP module in bfloat16: attention 54,526,976 + shared expert 6,295,552 + experts
    3,221,225,472 + router 2,097,152 + norms 16,797,696 = 3,300,942,848 bytes; --dtype float32 doubles it."""
    spec = resolve("Qwen/Qwen3-Next-80B-A3B-Thinking", None)
    mtp = Speculative("mtp", 1)
    total = 54_526_976 + 6_295_552 + 3_221_225_472 + 2_097_152 + 16_797_696
    assert draft_weights(with_drafter(spec, mtp, "0.32.0").draft, 1) == total == 3_300_942_848
    fp32 = with_drafter(apply_weight_precision(spec, None, "float32"), mtp, "0.32.0")
    assert draft_weights(fp32.draft, 1) == 2 * total


@pytest.mark.parametrize("method, fields", [("fp8", ()), ("awq", AWQ_FIELDS), ("gptq", GPTQ_FIELDS)])
def test_h100_takes_every_method_in_16_bits(method, fields):
    spec = replace(resolve(LLAMA_1B, None), quantization=method, quantization_fields=fields)
    assert gpu_quantization_refusal(on_gpu(spec, H100), H100) is None
    if method == "fp8":
        spec = apply_weight_precision(resolve(LLAMA_1B, None), method)  # online, from the 16-bit checkpoint
        assert gpu_quantization_refusal(on_gpu(spec, H100), H100) is None


def test_float16_refused_for_gemma_3_names_what_the_gpu_serves_it_in():
    """No bfloat16 on a T4 (platforms/cuda.py 0.32.0:636-654): the float16 refusal's remedy names float32 there,
    bfloat16 on an H100."""
    assert _engine(GEMMA3, "--gpu", "t4", "--dtype", "float16")["refusal"]["remedy"] == \
        "vLLM accepts --dtype float32 or auto"
    assert _engine(GEMMA3, "--gpu", "h100", "--dtype", "float16")["refusal"]["remedy"] == \
        "vLLM accepts --dtype bfloat16 or auto"


def test_html_heading_names_the_served_precision():
    r = run_kvplan("estimate", GEMMA3, "--gpu", "t4", "-c", "4096", "--format", "html")
    assert r.returncode == 0 and "34 layers, 16.0 GiB weights (served as float32)" in r.stdout


# -- the review's commands, as typed --------------------------------------------------------------------------------

def _typed(*args):
    r = run_kvplan("estimate", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["plans"][0]["engine"]


def test_the_reviewed_commands_as_typed():
    """Each command of the review, as typed: online mxfp4 taken on a T4 (online/base.py 0.32.0:205-212: 75) and in
    float16 on an H100; no remedy vLLM would refuse in turn."""
    assert _typed(LLAMA_1B, "--gpu", "T4", "-q", "mxfp4", "--engine", "vllm==0.32.0")["refusal"] is None
    assert _typed(LLAMA_1B, "--gpu", "H100", "-q", "mxfp4", "--dtype", "float16")["refusal"] is None
    for dtype in ("bfloat16", "float16"):
        remedy = _typed(GEMMA3, "--gpu", "T4", "-q", "fp8", "--dtype", dtype)["refusal"]["remedy"]
        assert "vLLM accepts the model without --quantization fp8 with --dtype float32" in remedy
        assert "accepts --dtype" not in remedy
    remedy = _typed("deepseek-ai/DeepSeek-V3.2", "--gpu", "T4", "--engine", "vllm==0.11.0", "-c", "8192")["refusal"]
    assert remedy["remedy"] == "vLLM accepts a GPU such as H100-80GB-SXM, H100-80GB-PCIe, H100-NVL, GH200"  # no 12.x
    remedy = _typed(GPT_OSS, "--gpu", "T4", "--dtype", "float16")["refusal"]["remedy"]
    assert remedy == ("vLLM accepts a checkpoint of the model not quantised as mxfp4, or a GPU of compute "
                      "capability 8.0 or more with --dtype bfloat16")
