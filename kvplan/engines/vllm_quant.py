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

A method vLLM no longer registers is refused before that, whatever the GPU (config/model.py _verify_quantization,
0.28.0 :1280-1285 "Unknown quantization method: {q}. Must be one of [...]"): bitsandbytes from 0.28.0 (REMOVED).

compressed-tensors then checks each layer's scheme as the model is built (compressed_tensors.py get_scheme ->
_check_scheme_supported, 0.11.0 :626, 0.14.0 :756, 0.32.0 :994): "Quantization scheme is not supported for the current
GPU. Min capability: {min}. Current capability: {cc}." (0.11-0.14 pass the three parts as separate RuntimeError
arguments, so vLLM prints them as a tuple; kvplan joins them). The schemes kvplan prices (CT_SCHEME_MIN) ask 75 from
0.16.0 but 80 before: fp8 W8A16 (where fp8 W8A8, 89, falls back to it) and NVFP4 (W4A4 falls back to W4A16 without
CUTLASS FP4) to 0.14.1, WNA16 in 0.11.x; int8 W8A8 75 throughout. kvplan reads the format a parameter group stores
(ParamGroup.stored: one format a group), not each layer's. ModelOpt's FP8 and NVFP4 configs are separate methods
(modelopt / modelopt_fp4), checked at method level.

Only on a GPU of known capability. On ROCm vLLM's capability comes from the GCN arch (platforms/rocm.py 0.32.0
:973-984: gfx90a 9.0, gfx942 9.4), past every minimum here, so only the dtype check can refuse there, and it is
platform-independent: applied to every method whose class ROCm runs is known. Which AWQ / GPTQ class ROCm runs
before 0.24 / 0.22 (Marlin or not, whose dtypes differ) is not read, so those checkpoints are left unrefused there;
nor is ROCm's supported_quantization list (rocm.py:614-638) modelled. Releases before 0.11.0 (no sources read) are
taken to refuse as 0.11.0 does.
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
# methods a release no longer registers (its last release): config/model.py _verify_quantization raises for them
# (0.28.0 :1280-1285); bitsandbytes.py is gone from 0.28.0's quantization/ (0.27.1 has it)
REMOVED = {"bitsandbytes": "0.27.1"}
UNKNOWN_METHOD = ("Unknown quantization method: {method}. Must be one of the methods vLLM {version} registers "
                  "(model_executor/layers/quantization/__init__.py QUANTIZATION_METHODS).")
# compressed-tensors: the capability each scheme kvplan prices (ParamGroup.stored, model/quantized.py Scheme.stored)
# asks as vLLM picks it below capability 8.9 (schemes/*.py get_min_capability): fp8 W8A8 falls back to W8A16 there
# (compressed_tensors.py 0.14.1 :623-640), NVFP4 W4A4 to W4A16 without CUTLASS FP4 (:611-621)
_FP8_CT = (((0, 16), 75, "0.16.0 schemes/compressed_tensors_w8a16_fp8.py"),
           ((0, 11), 80, "0.11.0 schemes/compressed_tensors_w8a16_fp8.py; the same to 0.14.1"))
_NVFP4_CT = (((0, 16), 75, "0.16.0 schemes/compressed_tensors_w4a16_nvfp4.py"),
             ((0, 11), 80, "0.11.0 schemes/compressed_tensors_w4a16_nvfp4.py; the same to 0.14.1"))
_WNA16_CT = (((0, 12), 75, "0.12.0 schemes/compressed_tensors_wNa16.py"),
             ((0, 11), 80, "0.11.0 schemes/compressed_tensors_wNa16.py; the same to 0.11.2"))
CT_SCHEME_MIN = {"fp8-w8a8": _FP8_CT, "fp8-w8a16": _FP8_CT, "nvfp4": _NVFP4_CT, "nvfp4-w4a16": _NVFP4_CT,
                 "int4-w4a16": _WNA16_CT, "int8-w8a16": _WNA16_CT,
                 "int8-w8a8": (((0, 11), 75, "0.11.0 schemes/compressed_tensors_w8a8_int8.py"),)}
SCHEME_REFUSAL = ("Quantization scheme is not supported for the current GPU. Min capability: {least}. Current "
                  "capability: {cc}.")
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
        cuda = len(tuple(capability or ())) == 2  # not ROCm (vllm_sparse.ROCM), whose class is not read
        marlin = cuda and _capability_int(capability) >= release_rule(MARLIN_MIN, version, 80)
        takes = asked in (None, "marlin", f"{checkpoint}_marlin")
        return f"{checkpoint}_marlin" if marlin and takes else asked or checkpoint
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


def _rocm_class_unknown(spec, version: str) -> bool:
    """An AWQ / GPTQ checkpoint before the Auto* classes: which class ROCm runs (Marlin or not) is not read."""
    checkpoint = getattr(spec, "quantization", "")
    return checkpoint in AUTO_SINCE and parse_version(version) < AUTO_SINCE[checkpoint]


def unknown_method_refusal(spec, version: str = PINNED) -> Optional[Refusal]:
    """ModelConfig's refusal of a checkpoint's method the release no longer registers (REMOVED), on any platform."""
    checkpoint = getattr(spec, "quantization", "")
    last = REMOVED.get(checkpoint)
    if last is None or parse_version(version) <= parse_version(last):
        return None
    return Refusal(UNKNOWN_METHOD.format(method=checkpoint, version=version), None, configuration=True,
                   field="engine", options=(f"vllm=={last}",), onward="older")


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


def boundaries() -> list:
    """The releases (3-tuples, oldest first) at which a rule of this module changes: the quantisation checks pass
    or refuse alike between two of them."""
    firsts = {row[0] for rows in METHODS.values() for row in rows} | {row[0] for row in MARLIN_MIN}
    firsts |= {row[0] for rows in CT_SCHEME_MIN.values() for row in rows}
    firsts |= set(AUTO_SINCE.values()) | set(ONLINE_SINCE.values()) | {GPT_OSS_SINCE}
    firsts |= {parse_version(last) for last in REMOVED.values()}
    return sorted({tuple(r) + (0,) * (3 - len(r)) for r in firsts})


def gpu_quantization_refusal(spec, capability=(), version: str = PINNED, served: str = "",
                             servable: tuple = ("bf16", "fp16", "fp32"), search: bool = True) -> Optional[Refusal]:
    """vLLM's refusal of `spec`'s weight quantisation on a CUDA GPU of `capability`, served in `served` (kvplan's
    dtype name: bf16 / fp16 / fp32; the spec's when empty): the capability check first, then the dtype's.
    `servable`: the dtypes vLLM serves this model in on this GPU (vllm.servable_dtypes), which a remedy may name;
    `search`: the capability refusal names the first later release that takes it (_first_later)."""
    from .vllm_sparse import is_rocm_platform

    refused = unknown_method_refusal(spec, version)  # whatever the GPU
    if refused is not None or not capability:
        return refused
    rocm = is_rocm_platform(capability)
    if rocm and _rocm_class_unknown(spec, version):
        return None
    method = vllm_method(spec, () if rocm else capability, version)
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
    """The model served without `method`: without --quantization, or (a quantised checkpoint) another checkpoint."""
    if getattr(spec, "quantization", ""):
        return f"a checkpoint of the model not quantised as {method}"
    return f"the model without --quantization {getattr(spec, 'quantization_asked', '') or method}"


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

