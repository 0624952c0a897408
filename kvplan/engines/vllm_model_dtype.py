"""The dtype vLLM serves a model in on each GPU and vLLM's refusals of it, whatever the memory.

Rules and where vLLM has them (paths under vllm/):
- dtype=auto (served_dtype): the checkpoint's where the platform supports it, else the first it supports
  (config/model.py _resolve_auto_dtype; platforms/cuda.py supported_dtypes: no bfloat16 below compute capability
  8.0; NO_FLOAT16's families never float16); the model as served there, its `auto` cache and Mamba states with it
  (on_gpu).
- a --dtype given that the GPU or the model does not take (explicit_dtype_refusal: platforms/cuda.py
  check_if_supports_dtype, config/model.py _check_valid_dtype).
- a float16 / bfloat16 --kv-cache-dtype other than the model's, from 0.33 (float_kv_refusal: config/vllm.py
  _reject_mismatched_float_kv_cache).
- the weight quantisation on this GPU, its remedy naming only a --dtype the GPU and the model take
  (quantization_refusal, built_quantization_refusal over vllm_quant.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from .figures import Refusal
from .vllm_kv_dtype import gpu_auto_kv_dtype
from .vllm_mamba_state import mamba_state_dtypes
from .vllm_quant import REMEDY_FLAGS, gpu_quantization_refusal, quant_config_refusal
from .vllm_registry import served_architecture
from .vllm_sparse import is_rocm_platform
from .vllm_versions import PINNED, parse_version, release_rule

# The dtype vLLM's dtype=auto serves a model in (config/model.py _resolve_auto_dtype, 0.33.0:2423-2464, 0.34.0
# :2467-2508; the same from 0.11.0 :1647): the checkpoint's where the platform supports it, else the first the
# platform supports. CUDA below compute capability 8.0 (a T4) supports float16 and float32, no bfloat16
# (platforms/cuda.py supported_dtypes, 0.33.0:256-266, 0.34.0:297-307, 0.11.0:62-72); float16 is struck off for the
# families of _FLOAT16_NOT_SUPPORTED_MODELS (0.33.0:2398-2403, 0.34.0:2442-2447; plamo2 too up to 0.26.0), whose
# first choice left is float32. (A float32 checkpoint is already read as bf16: parse.py _model_dtype.)
CUDA_BF16_SINCE = (8, 0)
NO_FLOAT16 = (((0, 27), ("gemma2", "gemma3", "gemma3_text", "glm4"), "0.27.0 config/model.py drops plamo2"),
              ((0, 11), ("gemma2", "gemma3", "gemma3_text", "plamo2", "glm4"), "0.11.0 config/model.py:1581-1588"))


def served_dtype(spec, capability=(), version: str = PINNED) -> str:
    """The dtype (kvplan's short name) vLLM `version` serves `spec` in on a GPU of `capability` under dtype=auto
    (config/model.py _resolve_auto_dtype); a --dtype given is served as given or refused (explicit_dtype_refusal);
    the model's own on an unknown GPU or on ROCm."""
    if getattr(spec, "dtype_asked", False):
        return spec.dtype
    supported = servable_dtypes(spec, capability, version)
    return spec.dtype if spec.dtype in supported else supported[0]


def servable_dtypes(spec, capability=(), version: str = PINNED) -> tuple:
    """The dtypes (kvplan's names, in the platform's order) vLLM `version` serves `spec` in on a GPU of `capability`:
    no bfloat16 on CUDA below 8.0, no float16 for the models of NO_FLOAT16 (served_dtype)."""
    cuda = bool(capability) and not is_rocm_platform(capability)
    supported = ("fp16", "fp32") if cuda and tuple(capability) < CUDA_BF16_SINCE else ("bf16", "fp16", "fp32")
    if getattr(spec, "model_type", "") in release_rule(NO_FLOAT16, version, ()):
        supported = tuple(d for d in supported if d != "fp16")
    return supported


def quantization_refusal(spec, capability=(), version: str = PINNED) -> Optional[Refusal]:
    """vllm_quant.gpu_quantization_refusal for `spec` as served on this GPU, its remedy naming only a --dtype that
    the GPU and the model take too (servable_dtypes): ModelConfig's refusals and VllmConfig's together
    (vllm.configuration_refusal puts the float-cache check between them)."""
    return gpu_quantization_refusal(spec, capability, version, servable=servable_dtypes(spec, capability, version))


def built_quantization_refusal(spec, capability=(), version: str = PINNED) -> Optional[Refusal]:
    """vllm_quant.quant_config_refusal (the class's constructor, the capability and the dtype, as VllmConfig builds
    the quantisation config) for `spec` as served on this GPU, a remedy naming only a --dtype it takes."""
    return quant_config_refusal(spec, capability, version, servable=servable_dtypes(spec, capability, version))


# platforms/cuda.py check_if_supports_dtype (0.32.0 :636-654; the same text 0.11.0 :510-515 to 0.34.0 :692-697): the
# GPU named as get_device_name gives it (NVML's name: "Tesla T4"; catalog.device_name)
BF16_GPU_REFUSAL = ("Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your {gpu} GPU has "
                    "compute capability {cc}. You can use float16 instead by explicitly setting the `dtype` flag in "
                    "CLI, for example: --dtype=half.")
# config/model.py _check_valid_dtype with the reason _FLOAT16_NOT_SUPPORTED_MODELS gives every NO_FLOAT16 model
FLOAT16_MODEL_REFUSAL = ("The model type {model_type!r} does not support float16. Reason: Numerical instability. "
                         "Please use bfloat16 or float32 instead.")


def explicit_dtype_refusal(spec, capability=(), version: str = PINNED, gpu_name: str = "") -> Optional[Refusal]:
    """vLLM's refusal of a --dtype given that this GPU or this model does not take: bfloat16 below compute capability
    8.0 (platforms/cuda.py check_if_supports_dtype, 0.32.0 :636-654; `gpu_name` as vLLM prints it), float16 for the
    models of NO_FLOAT16 (config/model.py _check_valid_dtype, 0.32.0 :2395-2400, which adds the reason). `auto`
    resolves per GPU instead (served_dtype). The remedy is said in words: kvplan's search does not change --dtype."""
    return model_dtype_refusal(spec, version, capability) or gpu_dtype_refusal(spec, capability, version, gpu_name)


def gpu_dtype_refusal(spec, capability=(), version: str = PINNED, gpu_name: str = "") -> Optional[Refusal]:
    """The worker's refusal of --dtype bfloat16 below compute capability 8.0 (explicit_dtype_refusal)."""
    cuda = bool(capability) and not is_rocm_platform(capability)
    if not (getattr(spec, "dtype_asked", False) and cuda and spec.dtype == "bf16"
            and tuple(capability) < CUDA_BF16_SINCE):
        return None
    served = "float32" if getattr(spec, "model_type", "") in release_rule(NO_FLOAT16, version, ()) else "float16"
    text = BF16_GPU_REFUSAL.format(gpu=gpu_name, cc=f"{capability[0]}.{capability[1]}")
    return Refusal(text if gpu_name else text.replace("Your  GPU", "Your GPU"), None, configuration=True,
                   field="dtype", remedy=f"vLLM accepts --dtype {served} (or auto, which vLLM resolves to it)",
                   remedy_flags=REMEDY_FLAGS)


def model_dtype_refusal(spec, version: str = PINNED, capability=()) -> Optional[Refusal]:
    """ModelConfig's refusal of --dtype float16 for a model of NO_FLOAT16 (explicit_dtype_refusal); the remedy names
    the dtypes this GPU serves it in (servable_dtypes: float32 alone on a T4)."""
    if not getattr(spec, "dtype_asked", False):
        return None
    model_type = getattr(spec, "model_type", "")
    if spec.dtype == "fp16" and model_type in release_rule(NO_FLOAT16, version, ()):
        # vLLM names hf_config.model_type: a multimodal Gemma 3's gemma3, not its text_config's gemma3_text
        named = model_type.removesuffix("_text") if spec.multimodal else model_type
        first = _TORCH_NAMES[servable_dtypes(spec, capability, version)[0]]  # bfloat16; float32 below 8.0
        return Refusal(FLOAT16_MODEL_REFUSAL.format(model_type=named), None, configuration=True, field="dtype",
                       remedy=f"vLLM accepts --dtype {first} or auto", remedy_flags=REMEDY_FLAGS)
    return None


def on_gpu(spec, capability=(), version: str = PINNED):
    """`spec` as vLLM `version` serves it on a GPU of `capability`: in the dtype it serves there (served_dtype: a
    T4's float16 for a bfloat16 checkpoint, float32 for Gemma 2 / 3 and GLM-4 there, whose weights and `auto` cache
    then take 4 bytes an element), what `auto` stores there (gpu_auto_kv_dtype), the Mamba states' dtypes
    (mamba_state_dtypes: ModelSpec.state_dtypes) and the drafter's cache dtype (vllm_draft_cache.drafter_caches)."""
    dtype = served_dtype(spec, capability, version)
    if dtype == "fp32" and spec.dtype != "fp32":
        from ..model.quantization import drafter_in_dtype, with_dtype

        spec = drafter_in_dtype(replace(with_dtype(spec, "float32"), dtype_asked=False))
    auto = gpu_auto_kv_dtype(spec, capability, version)
    spec = spec if (auto, dtype) == (spec.auto_kv_dtype, spec.dtype) else replace(spec, auto_kv_dtype=auto, dtype=dtype)
    # the per-sequence state in the dtypes its page is sized in (plan/capacity.py state_bytes reads them)
    state = mamba_state_dtypes(spec, version) if spec.linear_layers else ()
    spec = spec if state == spec.state_dtypes else replace(spec, state_dtypes=state)
    from .vllm_draft_cache import drafter_caches

    return drafter_caches(spec, capability, version)  # the drafter's cache dtype (its kv_cache_dtype, GLM's hook)


# A float16 / bfloat16 --kv-cache-dtype other than the model's dtype, from 0.33 (config/vllm.py 0.33.0:1492-1508
# VllmConfig._reject_mismatched_float_kv_cache, 0.34.0 :1431-1447): called in __post_init__ right after
# try_verify_and_update_config (0.33.0 :1539-1540, 0.34.0 :1483-1484), so a per-architecture rewrite comes first:
# DeepSeek-V3.2's bfloat16 becomes auto (model_executor/models/config.py 0.33.0:84-86, 0.34.0 :91-93), the handler
# MODELS_CONFIG_MAP picks by the top-level name vLLM resolved (config/vllm.py 0.32.0:2638-2659).
FLOAT_KV_SINCE = (0, 33)
FLOAT_KV_REWRITTEN = {"DeepseekV32ForCausalLM": "bfloat16"}
FLOAT_KV_REFUSAL = ('kv_cache_dtype="{asked}" is incompatible with dtype="{model}". Please set `--kv-cache-dtype` '
                    'to {allowed}.')
_TORCH_NAMES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}  # str(torch dtype) less "torch."


def float_kv_refusal(spec, precision, version: str = PINNED, capability=()) -> Optional[Refusal]:
    """vLLM's refusal of an explicit float16 / bfloat16 cache that is not the dtype the model is served in on this
    GPU (served_dtype; FLOAT_KV_SINCE on); `auto` and that dtype pass."""
    asked = precision.spelling
    if asked not in ("float16", "bfloat16") or parse_version(version)[:2] < FLOAT_KV_SINCE:
        return None
    if FLOAT_KV_REWRITTEN.get(served_architecture(spec, version)) == asked:  # a handler's: the resolved name
        return None
    served = served_dtype(spec, capability, version)
    model = _TORCH_NAMES.get(served, served)
    if model == asked:
        return None
    same = model in ("float16", "bfloat16")
    allowed = f"`auto` or `{model}`" if same else "`auto`"
    return Refusal(FLOAT_KV_REFUSAL.format(asked=asked, model=model, allowed=allowed), None, configuration=True,
                   field="kv_dtype", options=("auto", model) if same else ("auto",))
