"""Weight precision as a vLLM user sets it: `quantization` (fp8, awq, gptq, mxfp4) and `dtype` (vLLM's --dtype)
re-price the parameter groups' stored precision, and with them the checkpoint size (the KV budget), the bytes
a decode step reads and the tensor-core peak its matmuls run at.

Which groups each method stores quantised mirrors vLLM 0.32 (vllm/model_executor/layers/quantization/):
fp8, awq and gptq quantise every LinearBase layer and the fused MoE experts (Fp8Config / AWQConfig /
GPTQConfig.get_quant_method), never the embedding or the LM head (VocabParallelEmbedding / ParallelLMHead);
mxfp4 quantises the routed experts only (Mxfp4Config.get_quant_method returns UnquantizedLinearMethod for
linear layers). Bytes per quantised parameter are the parameter groups' own per-format rule
(params.quantized_format, params.quantized_bytes) on a hidden x hidden matrix: fp8 as vLLM quantises a 16-bit
checkpoint online (one scale per matrix), mxfp4 at 4.25 bits. awq and gptq re-price nothing: vLLM reads their
settings from the checkpoint only, so they are taken for an AWQ / GPTQ checkpoint (where the name picks the kernel
older releases run) and refused for one without a quantization_config (CHECKPOINT_ONLY). A checkpoint already
quantised one way refuses another (vllm/config/model.py ModelConfig._verify_quantization)."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from ..errors import FieldError, KvplanError, json_kind, quote
from .choices import exact_choice
from .config import NESTED_TEXT_KEYS
from .params import NO_METHOD_NOTE, QUANTIZED_GROUPS, quantized_bytes, quantized_format
from .precision import DTYPE_BYTES
from .spec import ModelSpec, ParamGroup, Weights

QUANTIZATIONS = ("fp8", "awq", "gptq", "mxfp4")
# methods vLLM only reads from a checkpoint: with no quantization_config to read, get_quant_config looks for the
# class's own file (QUANT_CONFIG_FILES) and raises "Cannot find the config file for awq" (model_loader/weight_utils.py
# 0.11.0:289, 0.14.0:315, 0.24.0:372, 0.32.0:375, 0.34.0:410); fp8 and mxfp4 quantise a 16-bit checkpoint online
# instead (engines/vllm_quant.py ONLINE_SINCE)
CHECKPOINT_ONLY = ("awq", "gptq")
# The files get_quant_config reads for --quantization awq / gptq when the checkpoint's config holds no quantization
# settings (no quantization_config, nor one in its text_config, nor a compression_config: weight_utils.py 0.11.0:239-
# 247, 0.32.0:235-242): the -q class's get_config_filenames(), matched by name ending against the *.json of the model
# folder, or of the Hub repo's snapshot (0.11.0:260-292, 0.32.0:332-380, 0.34.0:363-415). The same names in 0.11.0 to
# 0.34.0: GPTQConfig / AutoGPTQConfig quantize_config.json (gptq.py 0.11.0:112, 0.21.0:141; auto_gptq.py 0.22.0:190,
# 0.32.0:187, 0.34.0:195); AWQConfig quant_config.json and quantize_config.json (awq.py 0.11.0:65-70, 0.23.0:81-84),
# AutoAWQConfig the same two (auto_awq.py 0.24.0:234, 0.32.0:238, 0.34.0:240).
QUANT_CONFIG_FILES = {"gptq": ("quantize_config.json",), "awq": ("quant_config.json", "quantize_config.json")}
# ModelOpt 0.29 and older keep a checkpoint's settings in hf_quant_config.json beside config.json (0.31 on: in its
# quantization_config). vLLM's get_config sets that file as hf_config.quantization_config when config.json has no
# top-level quantization_config (absent or null), whatever its compression_config or text_config holds (both are read
# only after hf_config's quantization_config): transformers_utils/config.py 0.11.0:601-611, 0.14.0:684-696,
# 0.20.0:757-769, 0.32.0:890-902, 0.34.0:998-1010, the same in every release between; before a --quantization settings
# file (QUANT_CONFIG_FILES), which get_quant_config looks for only when hf_config has none.
MODELOPT_FILE = "hf_quant_config.json"
_NO_CHECKPOINT_CONFIG = ("{key} needs a checkpoint quantised with {name}: this model's config has no "
                         "quantization_config and no {files} lies beside its config.json (vLLM reads that file "
                         "instead), so vLLM stops at \"Cannot find the config file for {key}\".")
EXPERTS_ONLY = ("experts",)
# a quantization_config without quant_method is read as method None, which no --quantization matches (config/model.py
# 0.11.0:948-957, 0.24.0:1038-1047, 0.32.0:1439-1448, 0.34.0:1472-1481)
_NO_METHOD_MISMATCH = ("{key} does not match the checkpoint, whose quantization_config names no quant_method: vLLM "
                       "stops at \"Quantization method specified in the model config (None) does not match the "
                       "quantization method specified in the `quantization` argument ({key}).\"")
# vLLM's --dtype values (vllm/config/model.py ModelDType) -> kvplan's dtype names; auto keeps the model's.
DTYPES = {"auto": None, "half": "fp16", "float16": "fp16", "bfloat16": "bf16", "float": "fp32", "float32": "fp32"}


def _format_of(method: str, hidden: int) -> tuple:
    """(format name, bytes per parameter, groups it quantises) of `method` applied to a 16-bit checkpoint."""
    fmt, opts = quantized_format({"quant_method": method})
    per_param = quantized_bytes(fmt, opts, hidden, hidden) / (hidden * hidden)
    return fmt, per_param, EXPERTS_ONLY if fmt == "mxfp4" else QUANTIZED_GROUPS


def checkpoint_format(spec: ModelSpec) -> Optional[str]:
    """The format a quantised checkpoint stores its quantised groups in (fp8, mxfp4, int4-awq...), or None."""
    formats = {g.stored for g in spec.params if g.parameters and g.stored not in DTYPE_BYTES}
    return next(iter(sorted(formats)), None)


def _reprice(group: ParamGroup, per_param: float, stored: str) -> ParamGroup:
    """The whole group at `per_param` bytes a parameter, its linear matrices (ParamGroup.linear) with it."""
    linear = group.linear
    if linear is not None and linear.stored == group.stored:
        linear = replace(linear, bytes_per_param=per_param, stored=stored)
    return replace(group, bytes_per_param=per_param, stored=stored, linear=linear)


def _with_groups(spec: ModelSpec, groups: tuple, dtype: str, what: str) -> ModelSpec:
    """The spec with new groups; the checkpoint size moves by what the groups' bytes moved (so an exact
    size from safetensors metadata stays exact in the groups that did not change)."""
    delta = sum(g.bytes for g in groups) - sum(g.bytes for g in spec.params)
    w = spec.weights
    stored = max(int(w.bytes + delta), 0)
    formats = sorted({g.stored for g in groups if g.parameters} - {dtype})
    weights = Weights(w.parameters, stored, formats[0] if formats else dtype, f"{w.source}; {what}")
    return replace(spec, params=groups, weights=weights, dtype=dtype)


def model_dtype(value) -> str:
    """vLLM's --dtype value as vLLM spells it (auto, half, float16, bfloat16, float, float32: argparse's choices, in
    lower case, model/choices.py); FieldError('dtype') naming the values otherwise. Estimate's flag and check's key
    both go through it."""
    key = exact_choice("dtype", value, DTYPES)
    if key is None:
        raise FieldError("dtype", f"{quote(value)} is not a model dtype vLLM takes; use one of "
                                  f"{', '.join(DTYPES)}.")
    return key


def quantization_method(value) -> str:
    """A --quantization method kvplan prices (fp8, awq, gptq, mxfp4), as vLLM spells it (lower case: vLLM refuses
    "Unknown quantization method: FP8", model/choices.py); FieldError('quantization') naming them otherwise.
    Estimate's flag and check's key both go through it."""
    key = exact_choice("quantization", value, QUANTIZATIONS)
    if key is None:
        raise FieldError("quantization", f"{quote(value)} is not a weight quantization kvplan prices; use one of "
                                         f"{', '.join(QUANTIZATIONS)}.")
    return key


def with_dtype(spec: ModelSpec, dtype: Optional[str]) -> ModelSpec:
    """vLLM's --dtype: the groups stored in the model dtype (all but quantised ones) and the KV cache's `auto`
    follow it."""
    if dtype is None:
        return spec
    key = model_dtype(dtype)
    if key == "auto":
        return spec
    new = DTYPES[key]
    if new == spec.dtype:
        return replace(spec, dtype_asked=True)
    groups = tuple(_reprice(g, DTYPE_BYTES[new], new) if g.stored == spec.dtype else g for g in spec.params)
    return replace(_with_groups(spec, groups, new, f"served as {new}"), dtype_asked=True)


def with_quantization(spec: ModelSpec, method: Optional[str]) -> ModelSpec:
    """The spec served with `method`: unchanged when the checkpoint is already stored that way, re-priced
    groups when it is in the model dtype (fp8, mxfp4), an error when it is quantised another way (as vLLM refuses)
    or, for awq / gptq, not quantised at all; any where its quantization_config names no quant_method."""
    if method is None:
        return spec
    key = quantization_method(method)
    if NO_METHOD_NOTE in spec.notes:
        raise FieldError("quantization", _NO_METHOD_MISMATCH.format(key=key))
    current = checkpoint_format(spec)
    if key in CHECKPOINT_ONLY:
        return _named_kernel(spec, key, current)
    fmt, per_param, targets = _format_of(key, spec.hidden_size)
    if current == fmt:
        return spec
    if current is not None:
        raise _mismatch(key, current)
    groups = tuple(_reprice(g, per_param, fmt) if g.name in targets else g for g in spec.params)
    spec = replace(_with_groups(spec, groups, spec.dtype, f"weights re-priced as {key} ({fmt})"),
                   quantization_asked=key)
    if not any(g.parameters for g in groups if g.name in targets):
        spec = replace(spec, notes=spec.notes + (f"{key} quantises routed experts only and this model has none: "
                                                 f"its weights stay {spec.dtype}",))
    return spec


def requantized(spec: ModelSpec, names: tuple, method: str, what: str) -> ModelSpec:
    """`spec` with the LinearBase weight matrices (ParamGroup.linear) of its groups named `names` still in the model
    dtype re-priced as `method` quantises a 16-bit checkpoint (an engine release's own rule: engines/
    vllm_mxfp4_online.py); the norms, biases and sinks beside them stay as they are. `what` says why in the
    weights' source."""
    fmt, per_param, _ = _format_of(method, spec.hidden_size)
    groups = tuple(_reprice_linear(g, per_param, fmt) if g.name in names and g.linear is not None
                   and g.linear.stored == spec.dtype else g for g in spec.params)
    return _with_groups(spec, groups, spec.dtype, what)


def _reprice_linear(group: ParamGroup, per_param: float, stored: str) -> ParamGroup:
    """`group` with its linear matrices at `per_param` bytes each, their shares of what every rank holds whole and
    of what splits by KV heads scaled alike; the group named by the new format (a blend, as gpt-oss's experts)."""
    linear = group.linear
    ratio = per_param / linear.bytes_per_param
    kv = dict(group.kv_split)
    for heads, size in linear.kv_split:
        kv[heads] += round(size * ratio) - size
    return replace(group, bytes_per_param=(group.bytes - linear.bytes + linear.parameters * per_param)
                   / group.parameters, stored=stored,
                   replicated=group.replicated - linear.replicated + round(linear.replicated * ratio),
                   kv_split=tuple(sorted(kv.items())), linear=_reprice(linear, per_param, stored))


def _mismatch(key: str, current: str) -> FieldError:
    return FieldError("quantization", f"{key} does not match the checkpoint, whose weights are stored as {current}; "
                                      f"vLLM refuses a different method for a quantised checkpoint.")


def _named_kernel(spec: ModelSpec, key: str, current: Optional[str]) -> ModelSpec:
    """--quantization awq / gptq: taken only for a checkpoint quantised so, where the name picks the kernel older vLLM
    runs (engines/vllm_quant.py); refused for a checkpoint without a quantization_config (CHECKPOINT_ONLY) and for
    one quantised another way."""
    if spec.quantization == key:
        return replace(spec, quantization_asked=key)
    if current is None and not spec.quantization:
        files = " or ".join(QUANT_CONFIG_FILES[key])
        raise FieldError("quantization", _NO_CHECKPOINT_CONFIG.format(key=key, name=key.upper(), files=files))
    raise _mismatch(key, current or spec.quantization)


def settings_file_method(method) -> Optional[str]:
    """awq / gptq when --quantization `method` is one whose settings vLLM may read from a file beside config.json
    (QUANT_CONFIG_FILES), else None. Never raises: the flag is checked where it is applied (with_quantization)."""
    key = str(method).strip().lower() if isinstance(method, str) else ""
    return key if key in CHECKPOINT_ONLY else None


def has_quantization_settings(raw) -> bool:
    """Whether a raw config.json holds the settings vLLM reads before any file: a quantization_config, one in a
    nested language-model config (kvplan's reader flattens those: config.NESTED_TEXT_KEYS), or a compression_config
    (weight_utils.py 0.32.0:235-242)."""
    if not isinstance(raw, dict):
        return True  # the reader refuses it; nothing to look for
    nested = [raw.get(key) for key in NESTED_TEXT_KEYS if isinstance(raw.get(key), dict)]
    return any(part.get("quantization_config") is not None for part in [raw, *nested]) \
        or raw.get("compression_config") is not None


def reads_modelopt_file(raw) -> bool:
    """Whether vLLM reads MODELOPT_FILE beside this raw config.json: it has no top-level quantization_config."""
    return isinstance(raw, dict) and raw.get("quantization_config") is None


def with_modelopt_file(raw: dict, contents, where: str) -> tuple:
    """(raw, note): config.json with `contents` (MODELOPT_FILE's JSON, read from `where`) as its quantization_config,
    as vLLM's get_config sets it; the rest of kvplan then reads it as any quantization_config (ModelOpt's own shape:
    params.MODELOPT_LEGACY)."""
    if not isinstance(contents, dict):
        raise KvplanError(f"{where} must be a JSON object of quantization settings, got {json_kind(contents)}.")
    note = (f"quantization settings read from {MODELOPT_FILE} beside config.json (ModelOpt 0.29 and older write them "
            f"there), as vLLM does when config.json has no quantization_config")
    return {**raw, "quantization_config": contents}, note


def settings_file_names(method: str, names) -> list:
    """Of a folder's file names, those vLLM's `method` class takes for its settings: *.json (glob, so no hidden
    name) ending with one of QUANT_CONFIG_FILES[method] (weight_utils.py 0.32.0:365-369)."""
    endings = QUANT_CONFIG_FILES[method]
    return sorted(name for name in names if name.endswith(endings) and not name.startswith("."))


def with_settings_file(raw: dict, method: str, found: dict, folder: str = "") -> tuple:
    """(raw, note): config.json as vLLM's --quantization `method` reads it when the config has no settings and
    `found` ({file name: its JSON}) holds the files settings_file_names picked. One file: its contents are the
    quantization_config, with the flag's quant_method (get_quant_config hands the file to the -q class's from_config,
    weight_utils.py 0.32.0:382-395; the class is the flag's, quant_method in the file is not read). None: unchanged
    (with_quantization refuses). More than one: vLLM's refusal (0.32.0:376-380). `folder`: where the files lie, for
    the errors."""
    if not found:
        return raw, None
    if len(found) > 1:
        raise FieldError("quantization", f"{method} finds {len(found)} settings files beside config.json "
                                         f"({', '.join(sorted(found))}), so vLLM stops at \"Found multiple config "
                                         f"files for {method}\"; keep one.")
    (name, contents), = found.items()
    if not isinstance(contents, dict):
        raise KvplanError(f"{name}{f' in {folder}' if folder else ''} must be a JSON object of quantization settings, "
                          f"got {json_kind(contents)}.")
    merged = {**raw, "quantization_config": {**contents, "quant_method": method}}
    return merged, f"{method} settings read from {name} beside config.json, as vLLM's --quantization {method} does"


_TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def drafter_in_dtype(spec: ModelSpec) -> ModelSpec:
    """`spec` with its drafter's weights (engines/vllm_speculative.py Drafter) in the dtype the target is served in:
    vLLM builds a draft model's (and an EAGLE head's) ModelConfig with dtype=target_model_config.dtype, the resolved
    torch dtype (config/speculative.py 0.32.0 :1289-1301), and MTP runs in the target's own ModelConfig
    (:1226-1263); so a float32-served target (a T4's Gemma 3, --dtype float32) serves its drafter in float32, 4 bytes
    a weight. Quantised groups stay as stored."""
    drafter = getattr(spec, "draft", None)
    if drafter is None or not drafter.weighs or spec.dtype not in _TORCH_DTYPES:
        return spec
    params = tuple(_reprice(g, DTYPE_BYTES[spec.dtype], spec.dtype) if g.stored in ("bf16", "fp16")
                   and g.stored != spec.dtype else g for g in drafter.params)
    model = drafter.model
    if model is not None and model.dtype != spec.dtype:
        model = replace(with_dtype(model, _TORCH_DTYPES[spec.dtype]), dtype_asked=False)
    return replace(spec, draft=replace(drafter, params=params, model=model))


def apply_weight_precision(spec: ModelSpec, quantization: Optional[str] = None,
                           dtype: Optional[str] = None) -> ModelSpec:
    """`dtype` first (it names the unquantised groups' precision), then `quantization`."""
    return with_quantization(with_dtype(spec, dtype), quantization)
