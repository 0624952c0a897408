"""vLLM's refusals of a weight quantisation on a GPU and in a served dtype (config/vllm.py
VllmConfig._get_quantization_config, 0.32.0 :895-913; 0.11.0 config/__init__.py:258-272, 0.14.0 config/vllm.py:405-419,
0.33.0 :929-943, 0.34.0 :891-905, the same text in each): once ModelConfig has settled the method
(ModelConfig._verify_quantization: a checkpoint's quant_method, or an override class that claims it), VllmConfig
raises
- "The quantization method {q} is not supported for the current GPU. Minimum capability: {min}. Current capability:
  {cc}." where the GPU's capability (major x 10 + minor) is below the method's get_min_capability(), then
- "{dtype} is not supported for quantization method {q}. Supported dtypes: [...]" where the dtype the model is served
  in (a torch dtype, printed as torch.float32) is not in its get_supported_act_dtypes().
The class whose limits count is the one get_quant_config builds: for --quantization mxfp4 on a checkpoint without a
quantization config, from 0.28 the online one (ONLINE_SINCE: OnlineQuantizationConfig, 75, [bfloat16, float16]), before
Mxfp4Config() itself (0.27.0 model_loader/weight_utils.py:363-364 `return quant_cls()`: 80, [bfloat16]); --quantization
fp8 goes online from 0.31 with Fp8Config's own numbers.

Before those, ModelConfig._verify_quantization refuses, whatever the GPU unless said:
- a method vLLM does not register (0.28.0 config/model.py:1280-1285 "Unknown quantization method: {q}. Must be one of
  [...]"): bitsandbytes from 0.28.0, marlin in every release read (REMOVED); and, though vLLM fails only as it
  loads the weights, a GPTQ checkpoint in BitBLAS's or Marlin 2:4's format from 0.16.0, whose classes are gone
  (gone_format_refusal; vllm_wna16 says why no added key helps);
- on ROCm, a method not in the platform's supported_quantization (platforms/interface.py verify_quantization,
  0.11.0 :344-352, 0.32.0 :1144-1149, 0.34.0 :1168-1173: "{q} quantization is currently not supported in rocm."; the
  lists by release: ROCM_METHODS);
- a deprecated method unless --allow-deprecated-quantization, which kvplan does not take (DEPRECATED: fbgemm_fp8 from
  0.14.0, auto-round in 0.14.x, bitblas and gptq_marlin_24 in 0.14.x and 0.15.x, config/model.py 0.14.0:950-963,
  0.15.0:963-976). The remedy names that flag only where, with it, every configuration check passes
  (vllm_dtype_remedy.bypass_remedy: an fbgemm_fp8 checkpoint on a T4 still meets FBGEMMFp8Config's 80).
These run as ModelConfig is built (ModelConfig.__post_init__, config/model.py 0.33.0:922), so before anything
VllmConfig checks: 0.33's refusal of a float16 / bfloat16 cache other than the model's dtype (config/vllm.py
0.33.0:1540, vllm_model_dtype.float_kv_refusal) comes after them and before _get_quantization_config (:1608; 0.34.0
:1484 then :1555; before 0.33 there is no such check): model_config_refusal, then quant_config_refusal.
Then get_quant_config builds the class, whose constructor may refuse the checkpoint's quantization_config (an AWQ /
GPTQ checkpoint's bits, activation ordering or a missing key: vllm_wna16.py, which also says which class claims such a
checkpoint: Marlin's by its group size, bits, zero point or symmetry, the plain one, or from 0.24 / 0.22 the Auto*
one; to 0.15.1 BitBLAS's or Marlin 2:4's by its checkpoint_format), before the capability check; AutoGPTQ's linear
layers ask Marlin for the group size as the model is built.
AutoRound's checkpoints (quant_method auto-round) run as AutoRoundConfig to 0.14.1 and as INCConfig from 0.15.0, whose
override claims them (inc.py 0.15.0:457-464, 0.16.0:435-442, 0.32.0 inc/inc.py:361-368; "inc" joins the overrides in
config/model.py 0.15.0:899). --quantization awq / gptq of a checkpoint without a quantization_config never gets this
far: kvplan refuses it as input (model/quantization.py CHECKPOINT_ONLY).

compressed-tensors then checks each layer's scheme as the model is built (compressed_tensors.py get_scheme ->
_check_scheme_supported, 0.11.0 :626, 0.14.0 :756, 0.32.0 :994): "Quantization scheme is not supported for the current
GPU. Min capability: {min}. Current capability: {cc}." (0.11-0.28 pass the three parts as separate RuntimeError
arguments, 0.15.0 :353-357, 0.28.0 :394-398, so vLLM prints them as a tuple; one string from 0.29.0 :394-398; kvplan
joins them). The schemes kvplan prices (CT_SCHEME_MIN) ask 75 from 0.16.0 but 80 before: fp8 W8A16 (where fp8 W8A8,
89, falls back to it) and NVFP4 (W4A4 falls back to W4A16 without CUTLASS FP4) to 0.15.1 (schemes/
compressed_tensors_w8a16_fp8.py 0.15.0:38, compressed_tensors_w4a16_nvfp4.py 0.15.0:32), WNA16 in 0.11.x; int8
W8A8 75 throughout. kvplan reads the format a parameter group stores (ParamGroup.stored: one format a group), not each
layer's. ModelOpt's FP8 and NVFP4 configs are separate methods
(modelopt / modelopt_fp4), checked at method level.

The capability and dtype checks only on a GPU of known capability. On ROCm vLLM's capability comes from the GCN arch
(platforms/rocm.py 0.32.0:973-984: gfx90a 9.0, gfx942 9.4), past every minimum here, so only the dtype check can
refuse there, and it is platform-independent. Releases before 0.11.0 (no sources read) are taken to refuse as 0.11.0
does.
"""
from __future__ import annotations

from typing import Optional

from .figures import Refusal
from .vllm_versions import PINNED, parse_version, release_rule
from .vllm_wna16 import AUTO_SINCE, FORMAT_CLASSES_LAST, class_refusal, format_method, gone_format, \
    layer_refusal, wna16_method
from .vllm_wna16 import boundaries as wna16_boundaries

TORCH = {"bf16": "torch.bfloat16", "fp16": "torch.float16", "fp32": "torch.float32", "fp8": "torch.float8_e4m3fn"}
_BF16_HALF, _HALF_BF16 = ("bf16", "fp16"), ("fp16", "bf16")

# vLLM method name -> ((first release, (get_min_capability, get_supported_act_dtypes in vLLM's order), where), ...),
# newest first; paths under model_executor/layers/quantization/
METHODS = {
    "fp8": (((0, 14), (75, _BF16_HALF), "0.14.0 fp8.py:148-153 (Marlin's W8A16 fallback on Turing); 0.32.0 :142-147"),
            ((0, 11), (80, _BF16_HALF), "0.11.0 fp8.py:110-115")),
    "deepseek_v4_fp8": (((0, 20), (75, _BF16_HALF), "0.32.0 models/deepseek_v4/quant_config.py:29 "
                                                    "DeepseekV4FP8Config(Fp8Config)"),),
    "fbgemm_fp8": (((0, 11), (80, _BF16_HALF), "0.11.0 fbgemm_fp8.py:46-51; 0.32.0 :62-67"),),
    # AWQConfig (awq.py, to 0.23): the plain kernel, float16 only
    "awq": (((0, 24), (75, _HALF_BF16), "0.24.0 auto_awq.py:225-230: 'awq' is AutoAWQConfig (__init__.py:141)"),
            ((0, 11), (75, ("fp16",)), "0.11.0 awq.py:56-61, the same to 0.23.0")),
    "awq_marlin": (((0, 24), (75, _HALF_BF16), "0.24.0 auto_awq.py:225-230 (__init__.py:142)"),
                   ((0, 14), (75, _HALF_BF16), "0.14.0 awq_marlin.py:120-125"),
                   ((0, 11), (80, _HALF_BF16), "0.11.0 awq_marlin.py:86-91")),
    "auto_awq": (((0, 24), (75, _HALF_BF16), "0.24.0 auto_awq.py:225-230; 0.32.0 :229-234"),),
    "gptq": (((0, 22), (60, _HALF_BF16), "0.22.0 auto_gptq.py:181-186: 'gptq' is AutoGPTQConfig (__init__.py:155)"),
             ((0, 11), (60, ("fp16",)), "0.11.0 gptq.py:102-108, the same to 0.21.0")),
    "gptq_marlin": (((0, 22), (60, _HALF_BF16), "0.22.0 auto_gptq.py:181-186 (__init__.py:156)"),
                    ((0, 14), (75, _HALF_BF16), "0.14.0 gptq_marlin.py:180-185"),
                    ((0, 11), (80, _HALF_BF16), "0.11.0 gptq_marlin.py:152-157")),
    "auto_gptq": (((0, 22), (60, _HALF_BF16), "0.22.0 auto_gptq.py:181-186; 0.32.0 :178-183"),),
    # the classes that claim a checkpoint by its format to 0.15.1 (vllm_wna16.FORMAT_CLASSES_LAST)
    "gptq_marlin_24": (((0, 11), (80, ("fp16",)), "0.11.0 gptq_marlin_24.py:93-100; 0.14.1 and 0.15.x :95-102"),),
    "bitblas": (((0, 11), (70, _HALF_BF16), "0.11.0 bitblas.py:111-118; 0.14.1 and 0.15.x :125-132"),),
    # GptOssMxfp4Config (0.20 on) inherits both from Mxfp4Config
    "mxfp4": (((0, 11), (80, ("bf16",)), "0.11.0 mxfp4.py:121-130; 0.32.0 :71-80"),),
    "gpt_oss_mxfp4": (((0, 20), (80, ("bf16",)), "0.20.0 mxfp4.py GptOssMxfp4Config(Mxfp4Config); 0.32.0 :116"),),
    "compressed-tensors": (((0, 11), (70, ("fp32", "fp16", "bf16")),
                            "0.11.0 compressed_tensors/compressed_tensors.py:86-91; 0.32.0 :119-124"),),
    "modelopt": (((0, 27), (80, _BF16_HALF), "0.27.0 modelopt.py:403-408 ModelOptFp8Config; 0.32.0 :441-446"),
                 ((0, 11), (89, _BF16_HALF), "0.11.0 modelopt.py:81-86, the same to 0.26.0")),
    "modelopt_fp4": (((0, 14), (75, ("bf16", "fp16", "fp8")), "0.14.0 modelopt.py:1029-1034; 0.32.0 :764-769"),
                     ((0, 11), (80, ("bf16", "fp16", "fp8")), "0.11.0 modelopt.py:639-644 ModelOptNvFp4Config")),
    "bitsandbytes": (((0, 11), (70, ("fp32", "fp16", "bf16")), "0.11.0 bitsandbytes.py:71-76, to 0.27.1"),),
    "auto-round": (((0, 11), (60, _HALF_BF16), "0.11.0 auto_round.py:92-97, to 0.14.1"),),
    "inc": (((0, 15), (60, _HALF_BF16), "0.15.0 inc.py:102-107 (0.15.1 the same); 0.16.0 :101-106; 0.32.0 "
                                        "inc/inc.py:262-267"),),
    "moe_wna16": (((0, 11), (70, _BF16_HALF), "0.11.0 moe_wna16.py:75-81; 0.34.0 :105-111"),),
    # online/base.py OnlineQuantizationConfig: what --quantization builds without a checkpoint config (ONLINE_SINCE)
    "online": (((0, 28), (75, _BF16_HALF), "0.28.0 online/base.py:109-116; 0.32.0 :205-212; 0.34.0 :256-263"),),
}
# --quantization {method} on a checkpoint without a quantization config, from the release get_quant_config builds
# OnlineQuantizationConfig for it: mxfp4 joined _ONLINE_SHORTHANDS in 0.28.0 (config/quantization.py 0.28.0 :135-138;
# weight_utils.py 0.28.0 :318-325 returns the online class; 0.30.0 defers it to a checkpoint without a config,
# :385-389, 0.32.0 :359-362); fp8 from 0.31.0 (weight_utils.py 0.31.0 :341-349, 0.32.0 :350-358: "--quantization fp8 is
# deprecated for online quantization", fp8_per_tensor's args). Before, get_quant_config returns quant_cls() (0.27.0
# :363-364): the method's own class.
ONLINE_SINCE = {"mxfp4": (0, 28), "fp8": (0, 31)}
# methods a release no longer registers (its last release; "": none read, 0.11.0 on): config/model.py
# _verify_quantization raises for them (0.11.0 :959-963, 0.28.0 :1280-1285); bitsandbytes.py is gone from 0.28.0's
# quantization/ (0.27.1 has it); "marlin" is in no QUANTIZATION_METHODS from 0.11.0 (__init__.py 0.11.0:9-39) and no
# override claims a checkpoint naming it (awq_marlin / gptq_marlin ask quant_method awq / gptq)
REMOVED = {"bitsandbytes": "0.27.1", "marlin": ""}
# ModelOpt's own config (params._modelopt_legacy) by release: to 0.13 only producer.name "modelopt" with quant_algo
# exactly "FP8" or "NVFP4" (config/model.py 0.11.0:864-875, 0.13.0:843-851); from 0.14 upper-cased, FP8_PER_CHANNEL_
# PER_TOKEN and FP8_PB_WO too (transformers_utils/model_arch_config_convertor.py 0.14.0:148-160); from 0.26 a
# quantization block holding modelopt_quant_config without the producer (0.26.0:218-236); MIXED_PRECISION from 0.33
# (0.33.0:267; 0.32.0:290 raises for it)
MODELOPT_UPPER_SINCE, MODELOPT_BLOCK_SINCE, MODELOPT_MIXED_SINCE = (0, 14), (0, 26), (0, 33)
MODELOPT_EXACT = ("FP8", "NVFP4")
MODELOPT_UNKNOWN = "Unknown ModelOpt quant algo: {algo}"
MODELOPT_UNREAD = ("vLLM {version} reads ModelOpt's own config only where producer.name is \"modelopt\" (a "
                   "quantization block holding modelopt_quant_config from 0.26.0): it finds no quant_method and serves "
                   "the model unquantised, which kvplan does not price from this checkpoint.")
UNKNOWN_METHOD = ("Unknown quantization method: {method}. Must be one of the methods vLLM {version} registers "
                  "(model_executor/layers/quantization/__init__.py QUANTIZATION_METHODS).")
# compressed-tensors: the capability each scheme kvplan prices (ParamGroup.stored, model/quantized.py Scheme.stored)
# asks as vLLM picks it below capability 8.9 (schemes/*.py get_min_capability): fp8 W8A8 falls back to W8A16 there
# (compressed_tensors.py 0.14.1 :623-640, 0.15.0 :651-668), NVFP4 W4A4 to W4A16 without CUTLASS FP4 (:611-621)
_FP8_CT = (((0, 16), 75, "0.16.0 schemes/compressed_tensors_w8a16_fp8.py"),
           ((0, 11), 80, "0.11.0 schemes/compressed_tensors_w8a16_fp8.py; the same to 0.15.1 (0.15.0 :38)"))
_NVFP4_CT = (((0, 16), 75, "0.16.0 schemes/compressed_tensors_w4a16_nvfp4.py"),
             ((0, 11), 80, "0.11.0 schemes/compressed_tensors_w4a16_nvfp4.py; the same to 0.15.1 (0.15.0 :32)"))
_WNA16_CT = (((0, 12), 75, "0.12.0 schemes/compressed_tensors_wNa16.py"),
             ((0, 11), 80, "0.11.0 schemes/compressed_tensors_wNa16.py; the same to 0.11.2"))
CT_SCHEME_MIN = {"fp8-w8a8": _FP8_CT, "fp8-w8a16": _FP8_CT, "nvfp4": _NVFP4_CT, "nvfp4-w4a16": _NVFP4_CT,
                 "int4-w4a16": _WNA16_CT, "int8-w8a16": _WNA16_CT,
                 "int8-w8a8": (((0, 11), 75, "0.11.0 schemes/compressed_tensors_w8a8_int8.py"),)}
SCHEME_REFUSAL = ("Quantization scheme is not supported for the current GPU. Min capability: {least}. Current "
                  "capability: {cc}.")
GPT_OSS_SINCE = (0, 20)  # Mxfp4Config / GptOssMxfp4Config.override_quantization_method: gpt_oss_mxfp4 (0.20.0 :117-134)
INC_SINCE = (0, 15)  # INCConfig.override_quantization_method claims quant_method auto-round (0.15.0 inc.py:457-464)

# methods ModelConfig refuses unless --allow-deprecated-quantization (DEPRECATED_QUANTIZATION_METHODS, checked after
# the overrides: config/model.py 0.14.0:950-963, 0.32.0:1459-1472, 0.34.0:1492-1505): (the last release before,
# the last deprecated one, "" while still so); fbgemm_fp8 in every list from 0.14.0 (__init__.py 0.14.0:49, 0.16.0:41,
# 0.34.0:55), auto-round in 0.14.x's (0.14.0:57), INCConfig's from 0.15.0 (INC_SINCE; 0.15.0's list drops auto-round);
# bitblas and gptq_marlin_24 in 0.14.x's and 0.15.x's (0.14.0:51-52, 0.14.1:51-52, 0.15.0 and 0.15.1 :46-47), the last
# releases with those classes (vllm_wna16.FORMAT_CLASSES_LAST)
DEPRECATED = {"fbgemm_fp8": ("0.13.0", ""), "auto-round": ("0.13.0", "0.14.1"), "bitblas": ("0.13.0", "0.15.1"),
              "gptq_marlin_24": ("0.13.0", "0.15.1")}
# vLLM passes the text and the method as two ValueError arguments, so it prints them as a tuple; kvplan fills it in
DEPRECATED_BYPASS = "To bypass, set `--allow-deprecated-quantization`."
DEPRECATED_REFUSAL = ("The quantization method {method} is deprecated and will be removed in future versions of vLLM. "
                      + DEPRECATED_BYPASS)
BYPASS = "--allow-deprecated-quantization (vLLM's flag; kvplan does not take it)"
# a GPTQ checkpoint whose format's class is gone (vllm_wna16.gone_format; the docstring there cites the tensors)
FORMAT_GONE = ("vLLM removed {method} (the class for {form}) after {last}, so vLLM {version} would "
               "load this checkpoint as plain GPTQ and look for GPTQ tensors (qweight, qzeros, scales) it lacks.")


def _names(text: str) -> frozenset:
    return frozenset(text.split())


# ROCm's supported_quantization, the methods platforms/interface.py verify_quantization takes there, by release
ROCM_METHODS = (
    ((0, 34), _names("awq auto_awq awq_marlin gptq auto_gptq fp8 deepseek_v4_fp8 compressed-tensors fbgemm_fp8 inc "
                     "quark mxfp4 mxfp8 torchao modelopt modelopt_fp4 modelopt_mxfp8 modelopt_mixed fp8_per_tensor "
                     "fp8_per_block fp8_per_channel mxfp4_hadamard32 online gpt_oss_mxfp4"),
     "0.34.0 platforms/rocm.py:676"),
    ((0, 28), _names("awq auto_awq awq_marlin gptq auto_gptq fp8 deepseek_v4_fp8 compressed-tensors fbgemm_fp8 inc "
                     "quark mxfp4 mxfp8 torchao modelopt modelopt_fp4 modelopt_mxfp8 modelopt_mixed fp8_per_tensor "
                     "fp8_per_block fp8_per_channel online gpt_oss_mxfp4"),
     "0.28.0 platforms/rocm.py:513"),
    ((0, 25), _names("awq auto_awq awq_marlin gptq auto_gptq fp8 deepseek_v4_fp8 compressed-tensors fbgemm_fp8 quark "
                     "mxfp4 mxfp8 torchao bitsandbytes modelopt modelopt_fp4 modelopt_mxfp8 modelopt_mixed "
                     "fp8_per_tensor fp8_per_block fp8_per_channel online gpt_oss_mxfp4"),
     "0.25.0 platforms/rocm.py:459"),
    ((0, 24), _names("awq auto_awq awq_marlin gptq gptq_marlin auto_gptq fp8 deepseek_v4_fp8 compressed-tensors "
                     "fbgemm_fp8 quark mxfp4 mxfp8 torchao bitsandbytes modelopt modelopt_fp4 modelopt_mxfp8 "
                     "modelopt_mixed fp8_per_tensor fp8_per_block fp8_per_channel online gpt_oss_mxfp4"),
     "0.24.0 platforms/rocm.py:459"),
    ((0, 22), _names("awq awq_marlin gptq gptq_marlin auto_gptq fp8 deepseek_v4_fp8 compressed-tensors fbgemm_fp8 "
                     "gguf quark mxfp4 mxfp8 torchao bitsandbytes modelopt modelopt_fp4 modelopt_mxfp8 modelopt_mixed "
                     "fp8_per_tensor fp8_per_block online gpt_oss_mxfp4"),
     "0.22.0 platforms/rocm.py:411"),
    ((0, 21), _names("awq awq_marlin gptq gptq_marlin fp8 deepseek_v4_fp8 compressed-tensors fbgemm_fp8 gguf quark "
                     "mxfp4 mxfp8 torchao bitsandbytes modelopt modelopt_fp4 modelopt_mxfp8 modelopt_mixed "
                     "fp8_per_tensor fp8_per_block online gpt_oss_mxfp4"),
     "0.21.0 platforms/rocm.py:406"),
    ((0, 20), _names("awq awq_marlin gptq gptq_marlin fp8 compressed-tensors fbgemm_fp8 gguf quark mxfp4 "
                     "gpt_oss_mxfp4 torchao bitsandbytes modelopt_fp4"),
     "0.20.0 platforms/rocm.py:406"),
    ((0, 19), _names("awq awq_marlin gptq gptq_marlin fp8 compressed-tensors fbgemm_fp8 gguf quark mxfp4 petit_nvfp4 "
                     "torchao bitsandbytes"),
     "0.19.0 platforms/rocm.py:356"),
    ((0, 17), _names("awq awq_marlin gptq gptq_marlin fp8 compressed-tensors fbgemm_fp8 gguf quark ptpc_fp8 mxfp4 "
                     "petit_nvfp4 torchao bitsandbytes"),
     "0.17.0 platforms/rocm.py:324"),
    ((0, 14), _names("awq awq_marlin gptq gptq_marlin fp8 compressed-tensors fbgemm_fp8 gguf quark ptpc_fp8 mxfp4 "
                     "petit_nvfp4 torchao"),
     "0.14.0 platforms/rocm.py:171"),
    ((0, 11), _names("awq gptq fp8 compressed-tensors fbgemm_fp8 gguf quark ptpc_fp8 mxfp4 petit_nvfp4 torchao"),
     "0.11.0 platforms/rocm.py:178"),
)
ROCM_REFUSAL = "{method} quantization is currently not supported in rocm."

# the flags the remedies below write, by field: Refusal.advice writes them as its caller spells the fields
REMEDY_FLAGS = (("engine", "--engine"), ("quantization", "--quantization"), ("dtype", "--dtype"))
GPU_REFUSAL = ("The quantization method {method} is not supported for the current GPU. Minimum capability: {least}. "
               "Current capability: {cc}.")
DTYPE_REFUSAL = "{dtype} is not supported for quantization method {method}. Supported dtypes: [{supported}]"


def _capability_int(capability) -> int:
    return capability[0] * 10 + capability[1]


def vllm_method(spec, capability=(), version: str = PINNED) -> Optional[str]:
    """The method ModelConfig.quantization names once _verify_quantization has run, for `spec`'s checkpoint and
    --quantization on a GPU of `capability` (CUDA; vllm_sparse.ROCM for an AMD GPU) in `version`; None when the
    weights are not quantised."""
    asked = getattr(spec, "quantization_asked", "") or None
    checkpoint = getattr(spec, "quantization", "")
    if not checkpoint:
        return asked
    claimed = format_method(spec, asked, version)  # BitBLAS's and Marlin 2:4's overrides come first, to 0.14.1
    if claimed:
        return claimed
    release = parse_version(version)
    if checkpoint in AUTO_SINCE:
        return wna16_method(spec, checkpoint, asked, capability, version)
    if checkpoint == "auto-round" and release >= INC_SINCE:
        return "inc"
    if checkpoint == "mxfp4" and getattr(spec, "model_type", "") == "gpt_oss" and release >= GPT_OSS_SINCE:
        return "gpt_oss_mxfp4"
    if checkpoint == "fp8" and getattr(spec, "architecture", "") == "DeepseekV4ForCausalLM":
        return "deepseek_v4_fp8"  # 0.32.0 models/deepseek_v4/quant_config.py:140 override; Fp8Config's limits (:29)
    return checkpoint


def method_rule(method: str, version: str = PINNED, spec=None) -> Optional[tuple]:
    """(minimum capability, supported dtypes) of `method` in `version`; None for a method not read here. With
    `spec`: of the class vLLM builds for it, the online one where --quantization asked it of a checkpoint without a
    quantization config (ONLINE_SINCE)."""
    if spec is not None and _online(spec, method, version):
        method = "online"
    rows = METHODS.get(method)
    return release_rule(rows, version, rows[-1][1]) if rows else None


def _online(spec, method: str, version: str) -> bool:
    since = ONLINE_SINCE.get(method)
    return bool(since) and not getattr(spec, "quantization", "") and parse_version(version) >= since


def _headline(reason: str) -> str:
    """The first sentence of `reason` whole, the value at fault after its ": " kept (Refusal.headline)."""
    return reason.split(". ")[0].rstrip(".")


def unknown_method_refusal(spec, version: str = PINNED) -> Optional[Refusal]:
    """ModelConfig's refusal of a checkpoint's method the release does not register (REMOVED), on any platform: the
    last release that does, where kvplan read one, else the checkpoint itself is at fault."""
    checkpoint = getattr(spec, "quantization", "")
    if checkpoint not in REMOVED:
        return None
    last = REMOVED[checkpoint]
    if last and parse_version(version) <= parse_version(last):
        return None
    reason = UNKNOWN_METHOD.format(method=checkpoint, version=version)
    headline = _headline(reason)
    if not last:
        return Refusal(reason, None, configuration=True, field="quantization", headline=headline,
                       remedy=f"vLLM accepts {unquantised_words(spec, checkpoint)}")
    return Refusal(reason, None, configuration=True, field="engine", options=(f"vllm=={last}",), onward="older",
                   headline=headline)


def modelopt_legacy_refusal(spec, version: str = PINNED) -> Optional[Refusal]:
    """ModelOpt's own config as `version` renames it (MODELOPT_*): an algorithm it does not know in its words, a
    config it does not read as ModelOpt's at all; either with the first release that reads it."""
    if not getattr(spec, "modelopt_legacy", ()):
        return None
    algo, by_producer = spec.modelopt_legacy
    release = parse_version(version)
    if not by_producer and release < MODELOPT_BLOCK_SINCE:
        reason, first = MODELOPT_UNREAD.format(version=version), MODELOPT_BLOCK_SINCE
    elif release < MODELOPT_UPPER_SINCE and algo not in MODELOPT_EXACT:
        reason = MODELOPT_UNKNOWN.format(algo=algo)
        first = MODELOPT_MIXED_SINCE if algo.upper() == "MIXED_PRECISION" else MODELOPT_UPPER_SINCE
    elif release < MODELOPT_MIXED_SINCE and algo.upper() == "MIXED_PRECISION":
        reason, first = MODELOPT_UNKNOWN.format(algo=algo), MODELOPT_MIXED_SINCE
    else:
        return None
    return Refusal(reason, None, configuration=True, field="engine", onward="newer", headline=_headline(reason),
                   options=(f"vllm=={'.'.join(map(str, first + (0,)))}",))


def gone_format_refusal(spec, capability=(), version: str = PINNED) -> Optional[Refusal]:
    """A GPTQ checkpoint in a format whose class `version` no longer has (vllm_wna16.gone_format): vLLM reads it as
    plain GPTQ and fails to load it, whatever keys its quantization_config gains; kvplan says so before the
    constructor's own refusals (a missing desc_act), which no added key gets past. The last release that takes it
    without --allow-deprecated-quantization (DEPRECATED; 0.14.x's refusal names that flag), in words with the
    --dtype it needs there where the fix search's trial of that release meets the class's dtype check."""
    method = gone_format(spec, getattr(spec, "quantization_asked", "") or None, version)
    if method is None:
        return None
    form = "BitBLAS checkpoints" if method == "bitblas" else "checkpoint_format marlin_24"
    reason = FORMAT_GONE.format(method=method, last=FORMAT_CLASSES_LAST, form=form, version=version)
    last = DEPRECATED[method][0]
    dtypes = [d for d in ("bf16", "fp16", "fp32")
              if gpu_quantization_refusal(spec, capability, last, d, search=False) is None]
    words = f"vLLM accepts --engine vllm=={last} or older with --dtype {TORCH[dtypes[0]][6:]}" \
        if dtypes and spec.dtype not in dtypes else ""
    return Refusal(reason, None, configuration=True, field="engine", options=(f"vllm=={last}",), onward="older",
                   headline=_headline(reason), remedy=words, remedy_flags=REMEDY_FLAGS)


def rocm_method_refusal(spec, method: str, version: str = PINNED, search: bool = True) -> Optional[Refusal]:
    """ROCm's refusal of a method outside its supported_quantization (ROCM_METHODS), with the first later release
    whose quantisation checks all pass on ROCm."""
    from .vllm_sparse import ROCM

    if method in release_rule(ROCM_METHODS, version, ROCM_METHODS[-1][1]):
        return None
    later = _first_later(lambda release: gpu_quantization_refusal(spec, ROCM, release, search=False) is None,
                         version) if search else ()
    return Refusal(ROCM_REFUSAL.format(method=method), None, configuration=True, field="quantization",
                   remedy=f"vLLM accepts {unquantised_words(spec, method)}", fix_field="engine",
                   options=later, onward="newer" if later else "", remedy_flags=REMEDY_FLAGS)


def deprecated_refusal(spec, method: str, capability=(), version: str = PINNED, served: str = "",
                       search: bool = True) -> Optional[Refusal]:
    """ModelConfig's refusal of a deprecated method (DEPRECATED): the first later release whose quantisation checks
    all pass, else the last one before the deprecation where they do, or vLLM's bypass flag."""
    if method not in DEPRECATED:
        return None
    before, last = DEPRECATED[method]
    release = parse_version(version)
    if release <= parse_version(before) or (last and release > parse_version(last)):
        return None
    passes = (lambda r: gpu_quantization_refusal(spec, capability, r, served, search=False) is None)
    options, onward = _nearest(passes, version) if search else ((), "")
    bypass = f"vLLM accepts {BYPASS}"
    release_words = f"--engine {options[0]} or {onward}, or " if options else ""
    return Refusal(DEPRECATED_REFUSAL.format(method=method), None, configuration=True, field="engine",
                   options=options, onward=onward, remedy=f"vLLM accepts {release_words}{BYPASS}", also=bypass,
                   remedy_flags=REMEDY_FLAGS)


def class_config_refusal(spec, method: str, capability=(), version: str = PINNED, served: str = "",
                         search: bool = True) -> Optional[Refusal]:
    """What the constructor of an AWQ / GPTQ checkpoint's class refuses of its quantization_config (vllm_wna16
    .class_refusal), as get_quant_config builds it, with the nearest release that takes the checkpoint."""
    reason = class_refusal(spec, method, version, capability)
    if reason is None:
        return None
    passes = (lambda r: gpu_quantization_refusal(spec, capability, r, served, search=False) is None)
    options, onward = _nearest(passes, version) if search else ((), "")
    return Refusal(reason, None, configuration=True, field="quantization", headline=_headline(reason),
                   remedy=f"vLLM accepts {unquantised_words(spec, method)}", fix_field="engine", options=options,
                   onward=onward, remedy_flags=REMEDY_FLAGS)


def marlin_refusal(spec, capability=(), version: str = PINNED, search: bool = True) -> Optional[Refusal]:
    """A GPTQ checkpoint's linear layers refusing a module's type (a `dynamic` rule's bits or sym) or Marlin its
    group size as the model is built (vllm_wna16.layer_refusal), with the nearest release whose layers take it."""
    if getattr(spec, "quantization", "") not in ("gptq", "gptq_marlin"):
        return None
    reason = layer_refusal(vllm_method(spec, capability, version), spec, version)
    if reason is None:
        return None
    passes = (lambda r: marlin_refusal(spec, capability, r, False) is None)
    options, onward = _nearest(passes, version) if search else ((), "")
    return Refusal(reason, None, configuration=True, field="quantization",
                   remedy=f"vLLM accepts {unquantised_words(spec, 'gptq')}", fix_field="engine", options=options,
                   onward=onward, remedy_flags=REMEDY_FLAGS)


def scheme_refusal(spec, capability=(), version: str = PINNED, search: bool = True) -> Optional[Refusal]:
    """compressed-tensors' refusal of a layer's scheme on a CUDA GPU below its minimum (CT_SCHEME_MIN), as the model
    is built; the least capable scheme among the parameter groups' stored formats."""
    from .vllm_sparse import is_rocm_platform

    if not capability or is_rocm_platform(capability) or getattr(spec, "quantization", "") != "compressed-tensors":
        return None
    cc = _capability_int(capability)
    stored = {group.stored for group in getattr(spec, "params", ()) if group.parameters}
    least = max((release_rule(CT_SCHEME_MIN[s], version, 80) for s in stored if s in CT_SCHEME_MIN), default=0)
    if cc >= least:
        return None
    later = _first_later(lambda release: scheme_refusal(spec, capability, release, False) is None, version) \
        if search else ()
    return Refusal(SCHEME_REFUSAL.format(least=least, cc=cc), None, configuration=True, field="quantization",
                   remedy=f"vLLM accepts a GPU of compute capability {least // 10}.{least % 10} or more",
                   fix_field="engine", options=later, onward="newer" if later else "")


def _first_later(passes, version: str) -> tuple:
    """The first release past `version` at which a rule here changes (boundaries) where `passes`, as the fix search's
    option (an engine name), else (): the search checks it and the later ones against every configuration refusal."""
    later = (r for r in boundaries() if r > parse_version(version))
    first = next((r for r in later if passes(".".join(map(str, r)))), None)
    return (f"vllm=={'.'.join(map(str, first))}",) if first else ()


def _nearest(passes, version: str) -> tuple:
    """(options, onward) for the fix search: the first later release where `passes` (_first_later), else the
    newest earlier one of boundaries() (which holds the last release before each rule here), else none."""
    later = _first_later(passes, version)
    if later:
        return later, "newer"
    earlier = (r for r in reversed(boundaries()) if r < parse_version(version))
    last = next((r for r in earlier if passes(".".join(map(str, r)))), None)
    return ((f"vllm=={'.'.join(map(str, last))}",), "older") if last else ((), "")


def boundaries() -> list:
    """The releases (3-tuples, oldest first) at which a rule of this module changes, and the last ones before where a
    remedy names an older release: the quantisation checks pass or refuse alike between two of them."""
    firsts = {row[0] for rows in METHODS.values() for row in rows} | {row[0] for row in ROCM_METHODS}
    firsts |= {row[0] for rows in CT_SCHEME_MIN.values() for row in rows} | wna16_boundaries()
    firsts |= set(ONLINE_SINCE.values()) | {GPT_OSS_SINCE, INC_SINCE}
    firsts |= {MODELOPT_UPPER_SINCE, MODELOPT_BLOCK_SINCE, MODELOPT_MIXED_SINCE}
    firsts |= {parse_version(last) for last in REMOVED.values() if last}
    firsts |= {parse_version(r) for rows in DEPRECATED.values() for r in rows if r}
    return sorted({tuple(r) + (0,) * (3 - len(r)) for r in firsts})


def gpu_quantization_refusal(spec, capability=(), version: str = PINNED, served: str = "",
                             servable: tuple = ("bf16", "fp16", "fp32"), search: bool = True,
                             allow_deprecated: bool = False) -> Optional[Refusal]:
    """vLLM's refusal of `spec`'s weight quantisation on a GPU of `capability` (vllm_sparse.ROCM for an AMD GPU),
    served in `served` (kvplan's dtype name: bf16 / fp16 / fp32; the spec's when empty), in the order start-up meets
    them: ModelConfig's (model_config_refusal), then VllmConfig's (quant_config_refusal). `servable`: the dtypes vLLM
    serves this model in on this GPU (vllm_model_dtype.servable_dtypes), which a remedy may name; `search`: a refusal
    names the nearest release that takes it (_first_later, _nearest); `allow_deprecated`: as with vLLM's
    --allow-deprecated-quantization (a remedy's trial: is_deprecation)."""
    return model_config_refusal(spec, capability, version, served, search, allow_deprecated) or \
        quant_config_refusal(spec, capability, version, served, servable, search)


def model_config_refusal(spec, capability=(), version: str = PINNED, served: str = "", search: bool = True,
                         allow_deprecated: bool = False) -> Optional[Refusal]:
    """ModelConfig._verify_quantization's refusals, as ModelConfig.__post_init__ runs, before VllmConfig exists
    (config/model.py 0.33.0:922, 0.34.0:942; engine/arg_utils.py 0.33.0:2280 builds it, :2883 VllmConfig): an
    unregistered method, a GPTQ format whose class is gone (gone_format_refusal: a load failure kvplan says first),
    ROCm's list, then a deprecated method unless `allow_deprecated`."""
    from .vllm_sparse import is_rocm_platform

    method = vllm_method(spec, capability, version)
    refused = modelopt_legacy_refusal(spec, version) or unknown_method_refusal(spec, version) or \
        gone_format_refusal(spec, capability, version) or \
        (rocm_method_refusal(spec, method, version, search) if is_rocm_platform(capability) and method else None)
    if refused is not None or allow_deprecated:
        return refused
    return deprecated_refusal(spec, method, capability, version, served, search)


def quant_config_refusal(spec, capability=(), version: str = PINNED, served: str = "",
                         servable: tuple = ("bf16", "fp16", "fp32"), search: bool = True) -> Optional[Refusal]:
    """VllmConfig._get_quantization_config's refusals, in VllmConfig.__post_init__ (0.33.0 config/vllm.py:1608, after
    the float-cache check at :1540; 0.34.0 :1555 after :1484; 0.11.0 config/__init__.py:320, the same call): the class's
    constructor (get_quant_config), then the capability check and the dtype's (those two on a GPU of known
    capability)."""
    from .vllm_sparse import is_rocm_platform

    rocm = is_rocm_platform(capability)
    method = vllm_method(spec, capability, version)
    refused = class_config_refusal(spec, method, capability, version, served, search)
    if refused is not None or not capability:
        return refused
    rule = method_rule(method, version, spec) if method else None
    if rule is None:
        return None
    least, dtypes = rule
    served = served or spec.dtype
    cc = 0 if rocm else _capability_int(capability)
    if not rocm and cc < least:
        later = _first_later(lambda release: gpu_quantization_refusal(spec, capability, release, served, servable,
                                                                      search=False) is None, version) if search else ()
        return Refusal(GPU_REFUSAL.format(method=method, least=least, cc=cc), None, configuration=True,
                       field="quantization", remedy=_gpu_remedy(spec, method, least, later),
                       fix_field="engine", options=later, onward="newer" if later else "", remedy_flags=REMEDY_FLAGS)
    if served not in dtypes:
        listed = ", ".join(TORCH[d] for d in dtypes)
        return Refusal(DTYPE_REFUSAL.format(dtype=TORCH[served], method=method, supported=listed), None,
                       configuration=True, field="dtype",
                       remedy=_dtype_remedy(spec, method, dtypes, capability, servable), remedy_flags=REMEDY_FLAGS)
    return None


def unquantised_words(spec, method: str) -> str:
    """The model served without `method`: without --quantization, or (a quantised checkpoint) another checkpoint,
    named by the method its quantization_config names (gptq, not the class vLLM runs it with: auto_gptq)."""
    checkpoint = getattr(spec, "quantization", "")
    if checkpoint:
        return f"a checkpoint of the model not quantised as {checkpoint}"
    return f"the model without --quantization {getattr(spec, 'quantization_asked', '') or method}"


def is_deprecation(refusal) -> bool:
    """Whether `refusal` is deprecated_refusal's, which --allow-deprecated-quantization bypasses."""
    return refusal.reason.endswith(DEPRECATED_BYPASS)


def _gpu_remedy(spec, method: str, least: int, later: tuple) -> str:
    """Words, before configuration_refusal checks them against the rest of the chain (vllm_dtype_remedy): the first
    later release whose own check passes (`later`: _first_later), the model without the method, or a GPU that meets
    the minimum."""
    newer = f"--engine {later[0]} or newer, or " if later else ""
    return f"vLLM accepts {newer}{unquantised_words(spec, method)}, or a GPU of compute capability " \
           f"{least // 10}.{least % 10} or more"


def _dtype_remedy(spec, method: str, dtypes: tuple, capability, servable: tuple) -> str:
    """Words: a --dtype the method takes that this GPU and this model take too (`servable`); else why none is, and
    what else vLLM accepts."""
    names = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
    takes = [d for d in dtypes if d in names and d in servable]
    if takes:
        return f"vLLM accepts --dtype {names[takes[0]]}"
    why = []
    if "bf16" in dtypes and "bf16" not in servable:  # a CUDA GPU below 8.0
        why.append(f"bfloat16 needs compute capability 8.0, this GPU has {capability[0]}.{capability[1]}")
    if "fp16" in dtypes and "fp16" not in servable:
        why.append(f"vLLM refuses float16 for {spec.model_type.removesuffix('_text')}")
    gpu = ", or a GPU of compute capability 8.0 or more (bfloat16)" if "bf16" in dtypes else ""
    return f"no --dtype is both one {method} takes and one vLLM serves this model in on this GPU ({'; '.join(why)}): " \
           f"vLLM accepts {unquantised_words(spec, method)}{gpu}"

