"""What kvplan says clears a refusal of the served dtype or of the weight quantisation (vllm.configuration_refusal's
model / GPU / quantisation dtype checks, a method's or a compressed-tensors scheme's minimum capability): every
change it names is put back through the whole chain of configuration refusals (`trial`) and named only where vLLM
then gets past all of them. The changes are ones kvplan's fix search (vllm_remedy.py: engine, kv_dtype, context,
block_size) does not make, so they are said in words:
- a --dtype (bfloat16, float16, float32; `auto` beside it where it resolves to the same one here);
- failing that, an AWQ / GPTQ checkpoint's quantization_config with the true / false keys its class reads and it
  lacks added (desc_act, sym, zero_point; a value named where only it passes), the model without its quantisation
  (--quantization dropped, or an unquantised checkpoint, with a --dtype where it needs one), a GPU of the catalog with
  a higher compute capability (served in the dtype `auto` gives there, or the --dtype asked; "or more" only where
  every catalog GPU past it passes too);
- for a deprecated method (bypass_remedy), vLLM's --allow-deprecated-quantization, with a --dtype or on such a GPU
  where the flag alone does not get past the rest, else the unquantised model.
A later release that takes the quantisation on this GPU is the fix search's (Refusal.fix_field "engine", its options
the first release whose own check passes): searched, checked and planned there, and said before these words.
The cache a release or GPU stores for `auto` is kept as this view has it (the model's own, DeepSeek-V4's
fp8_ds_mla; SM10x's GLM-5.x fp8 is not re-derived)."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from itertools import product

from ..model.precision import resolve_kv_dtype

NAMES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
MAX_GPU_NAMES = 4


def checked_remedy(refusal, spec, precision, capability, version: str, trial, servable) -> tuple:
    """(remedy, also): kvplan's words for what clears `refusal` of `spec` (as served on this GPU) with `precision`,
    each change checked with `trial(spec, precision, version=, capability=, gpu_name=)` (configuration_refusal,
    unchecked); and those of them that stand beside the fix search's (Refusal.also: a later release is the search's,
    Refusal.fix_field), "" where none do. `servable(spec, capability, version)`: vllm_model_dtype.servable_dtypes."""
    auto = partial(auto_dtype, servable=servable)
    passing = passing_dtypes(spec, precision, trial) if refusal.field == "dtype" else []
    if passing:
        return _dtype_words(refusal, spec, capability, version, passing, auto), ""
    others = [words for words in (_keys_added(spec, precision, capability, version, trial),
                                  _unquantised(spec, precision, capability, version, trial),
                                  _other_gpu(spec, precision, capability, version, trial, auto)) if words]
    lead = "no --dtype gets past vLLM's checks for this model on this GPU: " if refusal.field == "dtype" else ""
    if not others:
        return lead + "kvplan finds no --dtype, unquantised model or GPU that vLLM accepts here", ""
    words = "vLLM accepts " + ", or ".join(others)
    return lead + words, words


def bypass_remedy(refusal, spec, precision, capability, version: str, trial, servable) -> tuple:
    """(remedy, also) for a deprecated method's refusal (vllm_quant.deprecated_refusal, whose options the fix search
    plans): vLLM's --allow-deprecated-quantization where, with it, every configuration check passes (`trial` with
    allow_deprecated); else the model without its quantisation and that flag on a GPU that then takes it, each checked
    with `trial` as checked_remedy does."""
    from .vllm_quant import BYPASS

    bypassed = partial(trial, allow_deprecated=True)
    dtypes = [] if bypassed(spec, precision) is None else passing_dtypes(spec, precision, bypassed)
    if bypassed(spec, precision) is None or dtypes:
        others = [BYPASS + (f" with --dtype {NAMES[dtypes[0]]}" if dtypes else "")]
    else:
        gpu = _other_gpu(spec, precision, capability, version, bypassed, partial(auto_dtype, servable=servable))
        others = [words for words in (_unquantised(spec, precision, capability, version, trial),
                                      f"{BYPASS} on {gpu}" if gpu else "") if words]
    release = [f"--engine {refusal.options[0]} or {refusal.onward}"] if refusal.options else []
    if not release and not others:
        return "kvplan finds no release, unquantised model or GPU that vLLM accepts here", ""
    also = "vLLM accepts " + ", or ".join(others) if others else ""
    return "vLLM accepts " + ", or ".join(release + others), also


def _trial_precision(changed, spec, precision):
    """The cache `changed` stores: the one asked where a --kv-cache-dtype was named, else what `auto` means for it."""
    if precision.spelling and precision.spelling != spec.auto_kv_dtype:
        return precision
    return resolve_kv_dtype("auto", changed.dtype, changed.auto_kv_dtype)


def _with_dtype(spec, dtype: str):
    from ..model.quantization import with_dtype

    return with_dtype(spec, NAMES[dtype])


def passing_dtypes(spec, precision, trial) -> list:
    """The --dtype values (kvplan's names) other than the one served with which no configuration check refuses."""
    out = []
    for dtype in NAMES:
        if dtype == spec.dtype:
            continue
        changed = _with_dtype(spec, dtype)
        if trial(changed, _trial_precision(changed, spec, precision)) is None:
            out.append(dtype)
    return out


def _checkpoint_16bit(spec) -> str:
    """The 16-bit dtype the checkpoint's unquantised weights are stored in, as far as this view still says (a T4's
    float16 view keeps the groups as stored; a float32 one is a bfloat16 checkpoint's: parse.py reads float32 as
    bfloat16)."""
    stored = {group.stored for group in getattr(spec, "params", ()) if group.parameters}
    if spec.dtype == "fp32" or "bf16" in stored:
        return "bf16"
    return "fp16" if "fp16" in stored else spec.dtype


def auto_dtype(spec, capability, version: str, servable) -> str:
    """The dtype `--dtype auto` serves `spec` in on a GPU of `capability` (vllm_model_dtype.served_dtype, from the
    checkpoint); `servable`: vllm_model_dtype.servable_dtypes."""
    dtypes = servable(spec, capability, version)
    checkpoint = _checkpoint_16bit(spec)
    return checkpoint if checkpoint in dtypes else dtypes[0]


def _dtype_words(refusal, spec, capability, version: str, passing: list, auto_dtype) -> str:
    """The refusal's own phrasing, naming the first dtype that passes (a quantisation's: in the method's order)."""
    auto = auto_dtype(spec, capability, version)
    if refusal.reason.startswith("Bfloat16 is only supported"):
        first = passing[0]
        return f"vLLM accepts --dtype {NAMES[first]}" + (" (or auto, which vLLM resolves to it)" if auto == first
                                                         else "")
    if "does not support float16" in refusal.reason:
        first = passing[0]
        return f"vLLM accepts --dtype {NAMES[first]}" + (" or auto" if auto == first else "")
    from .vllm_quant import method_rule, vllm_method

    method = vllm_method(spec, capability, version)
    rule = method_rule(method, version, spec) if method else None
    order = [d for d in (rule[1] if rule else ()) if d in passing] + passing
    return f"vLLM accepts --dtype {NAMES[order[0]]}"


def _keys_added(spec, precision, capability, version: str, trial) -> str:
    """The checkpoint with the true / false keys its class's constructor reads and its quantization_config lacks
    (vllm_wna16.missing_keys: desc_act, sym, zero_point) added, each value named where only it passes; "" where a
    missing key is not one of those, or no values pass."""
    from .vllm_quant import vllm_method
    from .vllm_wna16 import BOOLEAN_KEYS, missing_keys

    method = vllm_method(spec, capability, version)
    keys = [group[-1] for group in missing_keys(spec, method)] if method else []
    if not keys or any(key not in BOOLEAN_KEYS for key in keys):
        return ""
    passing = [values for values in product((False, True), repeat=len(keys))
               if trial(replace(spec, quantization_fields=spec.quantization_fields + tuple(zip(keys, values))),
                        precision) is None]
    if not passing:
        return ""
    taken = [{values[i] for values in passing} for i in range(len(keys))]
    parts = [f'"{key}": {str(next(iter(values))).lower()}' if len(values) == 1 else
             f'"{key}" (true or false, as it was quantised)' for key, values in zip(keys, taken)]
    fixed = ", where it was quantised so" if any(len(values) == 1 for values in taken) else ""
    return f"the checkpoint with {' and '.join(parts)} added to its quantization_config{fixed}"


def _unquantised(spec, precision, capability, version: str, trial) -> str:
    """The model without its quantisation, with a --dtype where the one served is refused too."""
    from .vllm_quant import unquantised_words, vllm_method

    method = vllm_method(spec, capability, version) or getattr(spec, "quantization", "")
    if not method:
        return ""
    plain = replace(spec, quantization="", quantization_asked="")
    words = unquantised_words(spec, method)
    if trial(plain, precision) is None:
        return words
    dtypes = passing_dtypes(plain, precision, trial)
    return f"{words} with --dtype {NAMES[dtypes[0]]}" if dtypes else ""


def _served_on(spec, capability, version: str, auto_dtype):
    """`spec` as a GPU of `capability` serves it: the --dtype asked, else what `auto` gives there."""
    dtype = spec.dtype if getattr(spec, "dtype_asked", False) else auto_dtype(spec, capability, version)
    return spec if dtype == spec.dtype else replace(spec, dtype=dtype)


def _gpu_outcome(spec, precision, capability, gpu_name: str, version: str, trial, auto_dtype):
    """None where a GPU of `capability` refuses it whatever the dtype; "" where it takes it as asked; a dtype's name
    where it takes it with that --dtype."""
    served = _served_on(spec, capability, version, auto_dtype)
    if trial(served, _trial_precision(served, spec, precision), capability=capability, gpu_name=gpu_name) is None:
        return ""
    for dtype in NAMES:
        changed = _with_dtype(served, dtype)
        if dtype != served.dtype and trial(changed, _trial_precision(changed, spec, precision),
                                           capability=capability, gpu_name=gpu_name) is None:
            return dtype
    return None


def _other_gpu(spec, precision, capability, version: str, trial, auto_dtype) -> str:
    """The catalog's CUDA GPUs of a higher compute capability that pass: "a GPU of compute capability 8.0 or more"
    where every one from the first passing does alike, else the ones that do, by name."""
    from ..plan.catalog import CATALOG, device_name
    from .vllm_sparse import is_rocm_platform

    if not capability or is_rocm_platform(capability):
        return ""
    gpus = sorted((g for g in CATALOG if g.compute_capability and tuple(g.compute_capability) > tuple(capability)),
                  key=lambda g: tuple(g.compute_capability))
    by_capability = {}
    for gpu in gpus:
        by_capability.setdefault(tuple(gpu.compute_capability), []).append(gpu)
    outcomes = {cc: _gpu_outcome(spec, precision, cc, device_name(group[0]), version, trial, auto_dtype)
                for cc, group in by_capability.items()}
    passing = [cc for cc, outcome in outcomes.items() if outcome is not None]
    if not passing:
        return ""
    first = passing[0]
    onward = [outcomes[cc] for cc in outcomes if cc >= first]
    dtype = outcomes[first]
    with_dtype = f" with --dtype {NAMES[dtype]}" if dtype else ""
    if all(outcome == dtype for outcome in onward):
        return f"a GPU of compute capability {first[0]}.{first[1]} or more{with_dtype}"
    names = [gpu.name for cc in passing for gpu in by_capability[cc] if outcomes[cc] == dtype][:MAX_GPU_NAMES]
    return f"a GPU such as {', '.join(names)}{with_dtype}"
