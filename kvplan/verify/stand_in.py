"""Verify's bad input that no GPU would change, refused before the CUDA probe: the plan verify makes once it has
detected the GPU (verify/planned.py plan_for_gpu) worked out first on stand-ins, the catalog's CUDA GPUs (verify
reads memory through NVML and runs NVRTC kernels: no ROCm GPU runs it). A refusal every stand-in meets in the same
words (vLLM's settings checks, the flags a release refuses for the model, a configuration it refuses whatever the
memory) is said on a machine without a GPU, where engineers prepare a run and CI checks one, as estimate says it.
One whose words differ between GPUs (defaults by memory class, backends by compute capability) waits for the
detected GPU, as memory does (a rank's weights, a budget too small for one request).

Cost: a valid run plans one stand-in, the H100 estimate defaults to, without decode speeds or remedies (estimate's
planning: milliseconds, no torch). Only input refused there is planned on the other stand-ins, stopping at the
first that plans it or refuses it in other words."""

from __future__ import annotations

from typing import Optional, Union

from ..engines.figures import Refusal, fixes_advice
from ..errors import FieldError, KvplanError, quote
from .planned import Options, plan_for_gpu


def stand_ins() -> list:
    """The catalog's CUDA GPUs, the default estimate states first (the one a valid run plans alone; not the detected
    one: detecting is the probe this precedes)."""
    from ..engines.vllm_runner import is_rocm
    from ..plan.catalog import CATALOG, DEFAULT_GPU, find_gpu

    first = find_gpu(DEFAULT_GPU)
    return [first] + [gpu for gpu in CATALOG if gpu.name != first.name and not is_rocm(gpu)]


def refusal_on(spec, opts: Options, gpu) -> Union[KvplanError, Refusal, None]:
    """What refuses verify's plan on `gpu` before any memory counts: bad input raised while planning, or the
    engine's refusal of the configuration itself (Refusal.configuration: whatever the memory); None where the plan
    gets as far as the memory's verdict."""
    try:
        _, _, _, plan = plan_for_gpu(spec, opts, gpu, gpu.memory_bytes, bare=True)
    except KvplanError as exc:
        return exc
    refusal = plan.engine.refusal if plan.engine is not None else None
    return refusal if refusal is not None and refusal.configuration else None


def _words(said) -> tuple:
    """What two stand-ins' refusals must share to be one: the sentence raised, or the engine's field and reason."""
    return ("raised", str(said)) if isinstance(said, KvplanError) else ("engine", said.field, said.reason)


def refuse_on_every_gpu(spec, opts: Options) -> None:
    """Raise the refusal every stand-in meets in the same words (refusal_on), before the CUDA probe; nothing where one
    plans it, or two refuse it in different words (the detected GPU's are the ones that hold then)."""
    first = None
    for gpu in stand_ins():
        said = refusal_on(spec, opts, gpu)
        if said is None or (first is not None and _words(said) != _words(first)):
            return
        first = first or said
    if isinstance(first, KvplanError):
        raise first
    from ..engines import get_engine

    engine = get_engine(opts.engine, opts.flags)
    raise any_gpu_refusal(spec, first, engine, context=opts.context, kv_dtype=opts.kv_dtype,
                          block_size=opts.block_size, tp=opts.tp, given=given_values(opts, engine.version))


def given_values(opts: Options, version: str) -> dict:
    """The inputs a configuration refusal may name, as verify's flags take them (None: left to vLLM)."""
    return {"context": opts.context, "kv_dtype": opts.kv_dtype, "block_size": opts.block_size,
            "max_num_seqs": opts.max_num_seqs, "max_num_batched_tokens": opts.max_num_batched_tokens,
            "mamba_ssm_cache_dtype": opts.flags.mamba_ssm_cache_dtype, "engine": f"vllm=={version}"}


def any_gpu_refusal(spec, refusal: Refusal, engine, *, context: int, kv_dtype: str, block_size: Optional[int],
                    tp: int, given: dict) -> KvplanError:
    """vLLM's refusal of the configuration on any GPU, in verify's words: the input at fault and its value, vLLM's
    own summary, and the values the release accepts instead (its fix search, unplanned: whether those hold a request
    is the GPU's to say). `given`: the inputs by field (given_values); a field verify takes no flag for (the model's
    dtype, its quantisation) is said of the model."""
    fixes = engine.fixes(spec, refusal, kv_dtype=kv_dtype, context=context, block_size=block_size, tp=tp)
    advice = fixes_advice(fixes) or refusal.remedy
    whom = "the model" if refusal.field == "engine" else "it"
    words = f"vLLM {engine.version} refuses {whom} on any GPU (\"{refusal.summary}\"){'; ' + advice if advice else ''}."
    if refusal.field not in given:
        return KvplanError(f"{quote(spec.name)}: {words}")
    value = given[refusal.field]
    # the value as the flag takes it: "-c 8,192" would read as a sweep of 8 and 192
    return FieldError(refusal.field, f"{value}: {words}" if value is not None else f"(vLLM's choice): {words}",
                      names=tuple(dict.fromkeys(field for fix in fixes for field, _ in fix.changes)))
