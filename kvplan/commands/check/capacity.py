"""The capacity rule: the deployment planned as estimate plans it (vLLM's budget, blocks and start-up), its numbers
for the row, and the findings on them: vLLM refusing to start, min_concurrency not held, not one sequence fitting,
min_model_len not served, and the length auto-fit picked."""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

from ...model.spec import ModelSpec
from ...engines.vllm_auto_fit import NO_TOKEN, no_fit_refusal
from ...plan.plan import plan, prompt_for, release_of
from ...plan.remedy_words import length_note
from ...render.estimate import cache_dtype_note, held_none_reason, start_up_price
from ...render.text import size
from ..deployments import Deployment
from ..estimate import bounded_prefill, refused_length
from .auto_fit import auto_reach, fit_words
from .notices import asked_eight_bits_kept, prompt_limit_note
from .remedies import what_would_reach
from .requirements import past_the_cap, short_of_length
from .results import Findings
from .served import device_and_budget, engine_for, other_engine, settings_for


class Capacity(NamedTuple):
    numbers: dict  # the row's figures (None each where sharding failed)
    budget_per_gpu: Optional[int]
    planned: object  # the deployment's Plan, None where sharding failed
    explained: object  # the plan whose figures estimate's notes explain: None where the server does not start


def capacity(spec: ModelSpec, dep: Deployment, sharding, precision, device, asked: Optional[int], spell,
             resolved: dict, findings: Findings) -> Capacity:
    """The deployment's plan where its sharding is valid, its findings added to `findings`. `asked`: the context
    the deployment sets (None under auto-fit or the model's own)."""
    add = findings.add
    pp = dep.pp or 1
    budget_for = device_and_budget(spec, dep)[1]
    if dep.max_num_batched_tokens is not None:  # a chunk the file sets that splits prompts past what kvplan walks
        limit = refused_length(spec, engine_for(dep), dep.context)  # a length vLLM refuses anyway: said too
        bounded_prefill([prompt_for(None, dep.context, spec, release_of(engine_for(dep))).tokens],
                        dep.max_num_batched_tokens, 1, refused=(dep.context, limit) if limit else ())
    numbers = dict.fromkeys(("kv_bytes_per_token", "kv_bytes_per_token_per_gpu", "kv_bytes_per_sequence_per_gpu",
                             "max_concurrency", "max_concurrency_limited_by", "engine"))
    if not sharding.valid:
        return Capacity(numbers, None, None, None)
    result = plan(spec, context=dep.context, kv_dtype=dep.kv_dtype, tp=dep.tp, budget_for=budget_for,
                  block_size=dep.block_size, suggest=False, remedies=True, speed=False, engine=engine_for(dep),
                  pp=pp, gpu=device, spell=spell, other_engine=other_engine(dep, resolved, spec), **settings_for(dep))
    if dep.auto_fit:  # where no length fits, vLLM's auto-fit refuses in its own words
        result = no_fit_refusal(result)
    budget_per_gpu = result.kv_budget_bytes_per_gpu
    have, want = result.max_concurrency, dep.min_concurrency
    per_sequence = result.kv_bytes_per_sequence_per_gpu + result.state_bytes_per_sequence_per_gpu
    numbers = dict(kv_bytes_per_token=result.kv_bytes_per_token,
                   kv_bytes_per_token_per_gpu=result.kv_bytes_per_token_per_gpu,
                   kv_bytes_per_sequence_per_gpu=result.kv_bytes_per_sequence_per_gpu, max_concurrency=have,
                   max_concurrency_limited_by=result.max_concurrency_limited_by,
                   engine=result.engine.to_dict(spell) if result.engine else None)
    if result.parallel is not None:  # min_concurrency holds one DP rank to it, as max_concurrency is one rank's
        numbers.update(data_parallel_size=result.parallel.dp, max_concurrency_total=result.total_concurrency)
    refusal = result.engine.refusal if result.engine else None
    where = _resident_words(dep, result, per_sequence, precision)
    crashes = refusal is not None and refusal.allocation_fails
    refused = refusal is not None and refusal.configuration  # whatever the memory: not a capacity question
    aside = ""  # a clause of its own after `where`: vLLM's refusal, or why the server runs none
    if crashes:  # a crash at start-up, not one of vLLM's refusals
        add("error", "num_gpu_blocks_override", refusal.reason + ".")
    elif refused:
        add("error", _refusal_key(dep, refusal), refused_message(refusal, result.engine.version, spell))
        if refusal.field == "context":  # the error on context says it, in vLLM's words
            findings.drop_warnings_on("context")
    elif refusal is not None:  # vLLM's words quoted, its advice left to the remedy the finding ends with
        aside = f'vLLM would refuse to start, saying "{refusal.statement}"'
    elif held_none_reason(result):  # it starts, yet never runs one: why, in estimate's words
        aside = f"it starts but holds no request: {held_none_reason(result)}"
    where += f"; {aside}" if aside else ""
    also = "; " if aside else ", and "  # after a clause of its own, ", and" would read as part of it
    explained = None if refused or crashes else result  # a server that does not start has no figures to explain
    kept = "" if refused or crashes or asked_eight_bits_kept(result) else cache_dtype_note(result)
    limited = None if refused or crashes else prompt_limit_note(spec, dep, device, spell)
    if limited:  # vLLM serves no prompt of the whole length (0.7.1-0.7.3 on MLA): said on context
        add("warning", "context", limited)
    if kept:  # the engine stores another cache than kv_dtype asks (a kv_cache_scheme in vLLM 0.15-0.21, Falcon)
        add("warning", "kv_dtype", kept + ".")
    if want is not None and have < want and not refused and result.max_concurrency_limited_by == "max_num_seqs":
        add("error", "max_num_seqs" if dep.max_num_seqs is not None else "min_concurrency",
            past_the_cap(spec, dep, have, where, precision, spell, device,
                         result.engine.virtual_engines if result.engine else 1))
    elif want is not None and have < want and not refused:  # a server that does not start holds no capacity
        need = f"{want} need about {size(want * per_sequence)} per GPU"
        groups = result.engine.num_kv_cache_groups if result.engine else 0
        if groups > 1 and want * per_sequence <= budget_per_gpu:  # bytes would hold them, the block groups don't
            need += f" as bytes, but vLLM's {groups} KV-cache block groups (equal pages, padded) hold only {have}"
        reach = auto_reach(spec, dep, want, precision, spell, device, resolved) if dep.auto_fit else \
            what_would_reach(spec, dep, budget_for, want, precision, spell, device)
        add("error", "min_concurrency", f"max_concurrency {have} < min_concurrency {want}: {where}{also}{need}; "
                                        f"{reach}.")
    elif want is None and have == 0 and not crashes and not refused:
        # vLLM refusing to start is a deployment that cannot work: an error without min_concurrency too; the
        # ideal pool (engine none) models no engine's start-up, so there it stays a warning
        level = "error" if refusal is not None else "warning"
        reach = auto_reach(spec, dep, 1, precision, spell, device, resolved) if dep.auto_fit else \
            what_would_reach(spec, dep, budget_for, 1, precision, spell, device,
                             note=length_note(result.engine, dep.context))
        add(level, None, f"not one sequence fits: {where}; {reach}"
                         + ("." if level == "error" else " (set min_concurrency to make capacity a rule)."))
    if dep.min_model_len is not None and dep.context < dep.min_model_len and not refused and not crashes:
        add("error", "min_model_len", short_of_length(spec, dep, asked, max(want or 1, 1), precision, spell,
                                                      device, resolved) + ".")
    if dep.auto_fit and (refusal is None or not refusal.reason.startswith(NO_TOKEN)):
        add("notice", "context", fit_words(dep, spell))
    return Capacity(numbers, budget_per_gpu, result, explained)


def _resident_words(dep: Deployment, result, per_sequence: int, precision) -> str:
    """What the server keeps resident, on which budget, at which footprint of a request and shape (and, under -dp,
    on each rank): the sentence every capacity finding quotes."""
    pp = dep.pp or 1
    shape = f"tp {dep.tp}" + (f", pp {pp} ({','.join(map(str, result.pp_partition))} layers)" if pp > 1 else "")
    who = "an ideal paged pool" if dep.engine == "none" else "vLLM"
    refusal = result.engine.refusal if result.engine else None
    # kvplan's footprint of a request, and vLLM's start-up price of one where its refusal quotes another
    priced = start_up_price(refusal, per_sequence)
    each = (f"kvplan's footprint of an admitted request: {size(per_sequence)} of KV per GPU" if priced
            else f"{size(per_sequence)} of KV each per GPU")
    fit = f" (vLLM's auto-fit, from the model's {dep.fitted_from})" \
        if dep.auto_fit and dep.fitted_from != dep.context else ""
    where = (f"{who} keeps {result.max_concurrency} sequences of {dep.context} tokens{fit} resident "
             f"{_on_budget(result.kv_budget_bytes_per_gpu)} ({each} at {shape}, kv_dtype {precision.name}"
             + (f"; vLLM's start-up check prices one at {priced}" if priced else "") + ")")
    if result.parallel is not None and result.parallel.dp > 1:
        where += f", on each of {result.parallel.dp} DP ranks ({result.total_concurrency} in all)"
    return where


def _on_budget(budget: int) -> str:
    """The KV budget of one GPU in words: 'on a KV budget of 12.3 GiB per GPU', or, where the weights and the
    engine's other terms take the whole GPU, the shortfall, never a negative budget (as estimate's budget line says
    it: render/estimate.py)."""
    if budget > 0:
        return f"on a KV budget of {size(budget)} per GPU"
    return f"with nothing left for the KV cache, {size(-budget)} short per GPU"


def refused_message(refusal, version: str, spell: Callable[[str], str]) -> str:
    """vLLM's refusal of a deployment's configuration (whatever the memory), in its own first sentence, and kvplan's
    remedy naming the field as `spell` writes it; vLLM's whole message where kvplan has no remedy of its own."""
    if not refusal.remedy:
        return f"vLLM {version} does not start: {refusal.reason.rstrip('.')}."
    return f"vLLM {version} does not start: {refusal.first_sentence}; {refusal.advice(spell)}."


def _refusal_key(dep: Deployment, refusal) -> str:
    """The deployment's key a configuration refusal lands on: its field, or, for a served dtype the deployment does
    not set (a T4's float32 Gemma 3 that fp8 weights refuse), the quantization that brought it."""
    field = refusal.field or "kv_dtype"
    if field == "dtype" and dep.dtype is None and dep.quantization is not None:
        return "quantization"
    return field
