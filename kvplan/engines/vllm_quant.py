"""vLLM's refusals of a weight quantisation on a GPU and in a served dtype (config/vllm.py
VllmConfig._get_quantization_config, 0.32.0 :895-913; 0.11.0 config/__init__.py:258-272, 0.14.0 config/vllm.py:405-419,
0.33.0 :929-943, 0.34.0 :891-905, the same text in each): once ModelConfig has settled the method
(ModelConfig._verify_quantization: a checkpoint's quant_method, or an override class that claims it), VllmConfig
raises
- "The quantization method {q} is not supported for the current GPU. Minimum capability: {min}. Current capability:
  {cc}." where the GPU's capability (major x 10 + minor) is below the method's get_min_capability(), then
- "{dtype} is not supported for quantization method {q}. Supported dtypes: [...]" where the dtype the model is served
  in (a torch dtype, printed as torch.float32) is not in its get_supported_act_dtypes().

The method-level check is what every method here meets; compressed-tensors then checks each layer's scheme
(compressed_tensors.py _check_scheme_supported, 0.32.0 :392-417, "Quantization scheme is not supported..."), whose
minimum is 75 for every scheme kvplan prices (W8A16 fp8, int8 W8A8, WNA16, NVFP4: schemes/*.py get_min_capability;
fp8 W8A8 asks 89 but falls back to W8A16 below it, compressed_tensors.py:890-899) and no catalog GPU is below 7.5, so
that check is not modelled. ModelOpt's FP8 and NVFP4 configs are separate methods (modelopt / modelopt_fp4), checked
at method level.

Only on a CUDA GPU of known capability. On ROCm vLLM's capability comes from the GCN arch (platforms/rocm.py 0.32.0
:973-984: gfx90a 9.0, gfx942 9.4), past every minimum here, and every method kvplan prices is in ROCm's
supported_quantization (rocm.py:614-638); which AWQ / GPTQ class ROCm runs before 0.22 / 0.24 (Marlin or not, whose
dtypes differ) is not read, so ROCm is left unrefused. Releases before 0.11.0 (no sources read) are taken to refuse as
0.11.0 does.
"""

from __future__ import annotations

from typing import Optional

from .figures import Refusal
from .vllm_versions import PINNED, parse_version, release_rule

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
}
# A checkpoint's AWQ / GPTQ method as ModelConfig._verify_quantization overrides it: from 0.24 (AWQ) / 0.22 (GPTQ) the
# Auto* class claims it unless --quantization names another (0.32.0 auto_awq.py:263, auto_gptq.py:214); before,
# the Marlin class claims it where check_marlin_supported passes (capability >= 80, 75 from 0.14:
# utils/marlin_utils.py 0.11.0 :46, 0.14.0 :54) and --quantization is unset, marlin or the Marlin name; else the plain
# class runs (awq_marlin.py / gptq_marlin.py override_quantization_method, "forcing awq" when asked for by name).
# kvplan assumes a checkpoint Marlin takes (4 / 8 bits, group -1 / 32 / 64 / 128), as published AWQ / GPTQ ones are.
AUTO_SINCE = {"awq": (0, 24), "gptq": (0, 22)}
MARLIN_MIN = (((0, 14), 75, "0.14.0 utils/marlin_utils.py:54"), ((0, 11), 80, "0.11.0 utils/marlin_utils.py:46"))
GPT_OSS_SINCE = (0, 20)  # Mxfp4Config / GptOssMxfp4Config.override_quantization_method: gpt_oss_mxfp4 (0.20.0 :117-134)

# the flags the remedies below write, by field: Refusal.advice writes them as its caller spells the fields
REMEDY_FLAGS = (("engine", "--engine"), ("quantization", "--quantization"), ("dtype", "--dtype"))
GPU_REFUSAL = ("The quantization method {method} is not supported for the current GPU. Minimum capability: {least}. "
               "Current capability: {cc}.")
DTYPE_REFUSAL = "{dtype} is not supported for quantization method {method}. Supported dtypes: [{supported}]"


def _capability_int(capability) -> int:
    return capability[0] * 10 + capability[1]


def vllm_method(spec, capability=(), version: str = PINNED) -> Optional[str]:
    """The method ModelConfig.quantization names once _verify_quantization has run, for `spec`'s checkpoint and
    --quantization on a GPU of `capability` (CUDA) in `version`; None when the weights are not quantised."""
    asked = getattr(spec, "quantization_asked", "") or None
    checkpoint = getattr(spec, "quantization", "")
    if not checkpoint:
        return asked
    release = parse_version(version)
    if checkpoint in AUTO_SINCE:
        if release >= AUTO_SINCE[checkpoint]:
            return f"auto_{checkpoint}" if asked in (None, checkpoint, f"{checkpoint}_marlin", "marlin") else asked
        marlin = capability and _capability_int(capability) >= release_rule(MARLIN_MIN, version, 80)
        takes = asked in (None, "marlin", f"{checkpoint}_marlin")
        return f"{checkpoint}_marlin" if marlin and takes else asked or checkpoint
    if checkpoint == "mxfp4" and getattr(spec, "model_type", "") == "gpt_oss" and release >= GPT_OSS_SINCE:
        return "gpt_oss_mxfp4"
    if checkpoint == "fp8" and getattr(spec, "architecture", "") == "DeepseekV4ForCausalLM":
        return "deepseek_v4_fp8"  # 0.32.0 models/deepseek_v4/quant_config.py:140 override; Fp8Config's limits (:29)
    return checkpoint


def method_rule(method: str, version: str = PINNED) -> Optional[tuple]:
    """(minimum capability, supported dtypes) of `method` in `version`; None for a method not read here."""
    rows = METHODS.get(method)
    return release_rule(rows, version, rows[-1][1]) if rows else None


def gpu_quantization_refusal(spec, capability=(), version: str = PINNED, served: str = "",
                             servable: tuple = ("bf16", "fp16", "fp32")) -> Optional[Refusal]:
    """vLLM's refusal of `spec`'s weight quantisation on a CUDA GPU of `capability`, served in `served` (kvplan's
    dtype name: bf16 / fp16 / fp32; the spec's when empty): the capability check first, then the dtype's.
    `servable`: the dtypes vLLM serves this model in on this GPU (vllm.servable_dtypes), which a remedy may name."""
    from .vllm_sparse import is_rocm_platform

    if not capability or is_rocm_platform(capability):
        return None
    method = vllm_method(spec, capability, version)
    rule = method_rule(method, version) if method else None
    if rule is None:
        return None
    least, dtypes = rule
    served = served or spec.dtype
    cc = _capability_int(capability)
    if cc < least:
        return Refusal(GPU_REFUSAL.format(method=method, least=least, cc=cc), None, configuration=True,
                       field="quantization", remedy=_gpu_remedy(spec, method, least, capability, version, servable),
                       remedy_flags=REMEDY_FLAGS)
    if served not in dtypes:
        listed = ", ".join(TORCH[d] for d in dtypes)
        return Refusal(DTYPE_REFUSAL.format(dtype=TORCH[served], method=method, supported=listed), None,
                       configuration=True, field="dtype",
                       remedy=_dtype_remedy(spec, method, dtypes, capability, servable), remedy_flags=REMEDY_FLAGS)
    return None


def _without(spec, method: str) -> str:
    """The model served without `method`: without --quantization, or (a quantised checkpoint) another checkpoint."""
    if getattr(spec, "quantization", ""):
        return f"a checkpoint of the model not quantised as {method}"
    return f"the model without --quantization {getattr(spec, 'quantization_asked', '') or method}"


def _gpu_remedy(spec, method: str, least: int, capability, version: str, servable: tuple) -> str:
    """Words: the first later release (a row of the method's) whose checks pass on this GPU in this dtype (the
    minimums only fall, so the later ones pass too), the model without the method, or a GPU that meets the
    minimum."""
    later = sorted(row[0] for row in METHODS[method] if row[0] > parse_version(version)[:2])
    passing = [r for r in later if gpu_quantization_refusal(spec, capability, ".".join(map(str, r)) + ".0",
                                                            servable=servable) is None]
    newer = f"--engine vllm=={'.'.join(map(str, passing[0]))}.0 or newer, or " if passing else ""
    return f"vLLM accepts {newer}{_without(spec, method)}, or a GPU of compute capability {least // 10}.{least % 10} " \
           f"or more"


def _dtype_remedy(spec, method: str, dtypes: tuple, capability, servable: tuple) -> str:
    """Words: a --dtype the method takes that this GPU and this model take too (`servable`); else why none is, and
    what else vLLM accepts."""
    names = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
    takes = [d for d in dtypes if d in names and d in servable]
    if takes:
        return f"vLLM accepts --dtype {names[takes[0]]}"
    why = []
    if "bf16" in dtypes:
        why.append(f"bfloat16 needs compute capability 8.0, this GPU has {capability[0]}.{capability[1]}")
    if "fp16" in dtypes and "fp16" not in servable:
        why.append(f"vLLM refuses float16 for {spec.model_type.removesuffix('_text')}")
    gpu = ", or a GPU of compute capability 8.0 or more (bfloat16)" if "bf16" in dtypes else ""
    return f"no --dtype is both one {method} takes and one vLLM serves this model in on this GPU ({'; '.join(why)}): " \
           f"vLLM accepts {_without(spec, method)}{gpu}"

