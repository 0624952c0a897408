"""The plan verify judges, worked out without a GPU: the options (the flags given), the engine model they pick, the
defaults filled in for a GPU (resolve_options) and the engine's plan of it (predicted_plan). gpu/rank.py runs them on
the detected GPU; commands/verify.py runs them before any CUDA probe on stand-ins from the catalog
(verify/stand_in.py). No torch here."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from ..engines import TRI_STATE_FLAGS, EngineFlags, get_engine
from ..plan.budget import batched_tokens, flag_budget
from ..plan.plan import plan as make_plan
from ..render.text import size


@dataclass(frozen=True)
class Options:
    tp: int
    context: int
    kv_dtype: str
    gpu_util: Optional[float]  # None: the engine's default
    block_size: Optional[int]  # None: the engine's choice
    max_num_seqs: Optional[int]  # None: what the engine picks on this GPU
    max_num_batched_tokens: Optional[int]
    engine: str = "vllm"
    flags: EngineFlags = EngineFlags()  # the engine flags given (commands/verify.py verify_flags)

    def given_flags(self) -> dict:
        """The engine flags given, by vLLM's keywords, for the result's options: a switch when on, and prefix caching
        and chunked prefill whichever way they were asked (False is --no-enable-prefix-caching, which changes a
        hybrid's block size, or --no-enable-chunked-prefill, which raises the profile's batch)."""
        values = {name: getattr(self.flags, name) for name in VERIFY_FLAGS}
        return {name: list(value) if isinstance(value, tuple) else value for name, value in values.items()
                if value is not None and (value is not False or name in TRI_STATE_FLAGS)}


# the engine flags verify takes (EngineFlags' fields, vLLM's keywords)
VERIFY_FLAGS = ("enforce_eager", "max_cudagraph_capture_size", "cudagraph_capture_sizes", "enable_prefix_caching",
                "mamba_block_size", "disable_sliding_window", "mamba_cache_dtype", "mamba_ssm_cache_dtype",
                "compilation_config", "optimization_level", "enable_chunked_prefill")


def plan_engine(spec, opts: Options):
    """The engine model verify plans with, with the flags given. Verify builds the language model alone, so a
    multimodal model is planned as vLLM runs it with --skip-mm-profiling: the profile peak it measures is the text
    forward's. A release without that flag profiles the encoder too (0.10.0 v1/worker/gpu_model_runner.py:2343-2346,
    which 0.10.1 skips under skip_mm_profiling, :2569), which verify does not build: refused on the release, not on a
    flag the caller never gave."""
    from ..engines.vllm_engine import FLAG_SINCE
    from ..errors import FieldError, quote

    try:
        return get_engine(opts.engine, replace(opts.flags, skip_mm_profiling=spec.multimodal))
    except FieldError as exc:
        if exc.field != "skip_mm_profiling":
            raise
        first = ".".join(map(str, FLAG_SINCE["skip_mm_profiling"]))
        raise FieldError("engine", f"{opts.engine}'s profile run of {quote(spec.name)} runs its media encoder, "
                                   f"which verify does not build (it measures the language model, as "
                                   f"vLLM profiles it with --skip-mm-profiling, a flag from {first}); verify it with "
                                   f"--engine vllm=={first} or later (`kvplan estimate` plans it).") from None


def graph_flags(spec, opts: Options, gpu=None) -> EngineFlags:
    """The flags as the release judged resolves them (engines/vllm_compilation.with_compilation, through get_engine):
    --compilation-config / -O as cudagraph_mode and the capture sizes given in the JSON. What verify captures reads
    these: graphs_off (--enforce-eager, or cudagraph_mode NONE, -O0 among them) captures no decode graph and times
    decode eagerly, as vLLM runs it then, naming the rule that left NONE as the graph term does (engines/
    vllm_graphs_off.graphs_off_cause: the words the deciding step recorded). PIECEWISE, FULL and FULL_DECODE_ONLY
    change only the plan's graph term (vllm_graphs.graph_counts): verify still captures its whole decode step at the
    decode sizes (terms.capture_sizes), the step vLLM's FULL decode graphs hold, rather than pieces its forward has no
    split points for. A plan vLLM
    runs on V0 (0.8-0.10.2's fallback on `gpu`, the catalog's; None: a CUDA GPU of compute capability 8.0 or more)
    captures unless --enforce-eager, whatever the compilation config (engines/vllm_graphs_off.core_flags). Breakable
    CUDA graphs (engines/vllm_breakable.py, on by default for some architectures from 0.23) keep the mode given, so
    the plan captures where a compilation mode below VLLM_COMPILE would otherwise leave none."""
    from ..engines.vllm_graphs_off import core_flags

    engine = plan_engine(spec, opts)
    if not hasattr(engine, "rules_for"):  # the ideal engine: --enforce-eager alone
        return engine.flags
    return core_flags(engine.graph_flags(spec, gpu), engine.rules_for(spec, 1, gpu, opts.kv_dtype))


def resolve_options(spec, opts: Options, gpu, total: int) -> Options:
    """The options with the engine's defaults filled in for this GPU (gpu_memory_utilization, batch limits)."""
    engine = plan_engine(spec, opts)
    device = replace(gpu, memory_bytes=total)
    util = engine.default_gpu_util if opts.gpu_util is None else opts.gpu_util
    seqs = opts.max_num_seqs
    if hasattr(engine, "settings"):
        seqs = engine.settings(opts.context, device, 1, opts.max_num_batched_tokens, seqs, spec,
                               opts.kv_dtype).max_num_seqs
    tokens = batched_tokens(engine, spec, device, opts.context, 1, opts.max_num_batched_tokens, opts.max_num_seqs,
                            opts.kv_dtype)
    return replace(opts, gpu_util=util, max_num_seqs=seqs or 256, max_num_batched_tokens=tokens)


def no_fit_message(spec, plan, gpu_name: str) -> str:
    refusal = plan.engine.refusal if plan.engine is not None else None
    if refusal is not None and refusal.configuration:  # refused whatever the memory: no byte count explains it
        return f"{spec.name} at tp {plan.tp}, {plan.context:,}-token sequences: {plan.suggestion()}."
    b = plan.budget
    reserves = sum(v or 0 for v in (b.activation_bytes, b.cuda_context_bytes, b.cuda_graph_bytes, b.nccl_bytes))
    why = (f"KV budget {size(plan.kv_budget_bytes_per_gpu)} = {size(b.gpu_memory_bytes)} x {b.gpu_util:.2f} - "
           f"weights/TP {size(b.weights_bytes_per_gpu)} - reserves {size(reserves)}")
    if plan.kv_budget_bytes_per_gpu > 0:
        sequence = plan.kv_bytes_per_sequence_per_gpu + plan.state_bytes_per_sequence_per_gpu
        why += f", one sequence needs {size(sequence)}"
    hint = f"; {plan.suggestion()}" if plan.suggestion() else ""
    return (f"{spec.name} at tp {plan.tp} leaves no room for one {plan.context:,}-token sequence on one rank of "
            f"this {gpu_name} ({why}){hint}.")


def predicted_plan(spec, opts: Options, gpu, total: int, budget=None, measured=None, bare: bool = False):
    """The engine's plan of this GPU (its budget terms and resident concurrency), or, given `budget`, the same
    engine's plan of that many KV bytes (what the measured budget holds); `measured` (plan.budget.MeasuredSizing,
    vLLM 0.34): the engine commits those bytes in granules a layer, after checking the profile run's own figure.
    `bare`: without decode speeds and remedies (a stand-in GPU's plan, verify/stand_in.py: only its refusals count)."""
    engine = plan_engine(spec, opts)
    device = replace(gpu, memory_bytes=total)

    def budget_at(context: int, block_size):
        """budget_for at a length and block size; .at(...) another (a remedy's: buffers are built at both)."""
        def budget_for(t, stage=None, kv_dtype: str = "auto"):
            if budget is not None:
                return replace(flag_budget(budget), measured=measured)
            return engine.budget(spec, t, device, opts.gpu_util, gpu_memory=total, stage=stage, context=context,
                                 max_num_batched_tokens=opts.max_num_batched_tokens, max_num_seqs=opts.max_num_seqs,
                                 block_size=block_size, kv_dtype=kv_dtype)

        budget_for.at = lambda **changes: budget_at(**{"context": context, "block_size": block_size, **changes})
        return budget_for

    budget_for = budget_at(opts.context, opts.block_size)
    return make_plan(spec, context=opts.context, kv_dtype=opts.kv_dtype, tp=opts.tp, budget_for=budget_for,
                     block_size=opts.block_size, gpu=device, engine=engine, speed=budget is None and not bare,
                     max_num_batched_tokens=opts.max_num_batched_tokens, max_num_seqs=opts.max_num_seqs,
                     suggest=budget is None and not bare)


def plan_for_gpu(spec, opts: Options, gpu, total: int, bare: bool = False) -> tuple:
    """(spec as served there, the KV precision verify times, the options with the GPU's defaults, the engine's plan)
    of `gpu` with `total` bytes: the steps of verify's plan between detecting the GPU and building the rank, each
    raising bad input as it would there. gpu/verify_run.py runs it on the detected GPU, verify/stand_in.py on the
    catalog's (`bare`: predicted_plan's)."""
    from ..errors import KvplanError
    from .layout import kernel_kv_dtype, served_spec

    served = served_spec(spec, plan_engine(spec, opts), gpu)  # `auto` as the estimate resolves it on this GPU
    precision = kernel_kv_dtype(opts.kv_dtype, served)
    resolved = resolve_options(served, opts, gpu, total)
    plan = predicted_plan(served, resolved, gpu, total, bare=bare)
    if not plan.tp_valid:
        raise KvplanError(f"tp {opts.tp} cannot shard {served.name}: {plan.tp_errors[0].rstrip('.')}.")
    return served, precision, resolved, plan
