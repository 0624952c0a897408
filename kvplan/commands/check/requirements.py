"""The errors of a deployment short of what it requires, each with what would reach it: min_concurrency above
the max_num_seqs cap (past_the_cap), and a served length below min_model_len (short_of_length)."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from ...model.spec import ModelSpec
from ...plan.max_len import default_max_model_len
from ...plan.plan import raised_cap
from ...plan.remedy_words import changes_in_words
from ..deployments import Deployment
from .auto_fit import auto_reach, passes
from .remedies import what_would_reach
from .served import device_and_budget, plan_deployment


def short_of_length(spec: ModelSpec, dep: Deployment, asked: Optional[int], target: int, precision, spell, device,
                    resolved: dict) -> str:
    """min_model_len's error: the length served below it, how it came to be (auto-fit's fit, the context set
    (`asked`), or the model's own, shorter), and what would serve it."""
    want, own = dep.min_model_len, default_max_model_len(spec)
    head = f"max_model_len {dep.context} < min_model_len {want}: "
    if want > own:  # auto-fit too: it fits from the model's own length down, never past it
        return f"{head}the model's own max length is {own} (vLLM refuses a longer max_model_len without RoPE scaling)"
    if dep.auto_fit:
        return (f"{head}vLLM's auto-fit reduces max_model_len from {dep.fitted_from} to {dep.context} to fit the "
                f"available KV cache memory; {auto_reach(spec, dep, target, precision, spell, device, resolved)}")
    said = f"{spell('context')} {asked} as set"  # the model's own length is shorter only where `want` is past it
    at = replace(dep, context=want)
    if passes(at, target, resolved):
        return f"{head}{said}; would fit with {spell('context')} {want}"  # the words of every remedy
    reach = what_would_reach(spec, at, device_and_budget(spec, at)[1], target, precision, spell, device,
                             keep=lambda changes: dict(changes).get("context", want) >= want)
    return f"{head}{said}; at {spell('context')} {want}, {reach}"


def past_the_cap(spec: ModelSpec, dep: Deployment, have: int, where: str, precision, spell, device,
                 engines: int = 1) -> str:
    """min_concurrency above the max_num_seqs the scheduler runs at once (v1/core/sched/scheduler.py): planned again
    with the cap raised to min_concurrency (plan.raised_cap), whose per-request runner buffers shrink the cache, to
    say whether raising it is enough or what else is needed. `engines`: V0's virtual engines, each running
    max_num_seqs on its own (vllm_v0_pp.py), so the cap asked is min_concurrency / engines, rounded up."""
    want, flag = dep.min_concurrency, spell("max_num_seqs")

    def plan_with(changes: tuple):
        raised = replace(dep, **dict(changes))
        return plan_deployment(spec, raised, dep.pp or 1, device, device_and_budget(spec, raised)[1])

    cap, held = raised_cap(want, plan_with, engines)
    raised, words = replace(dep, **dict(cap)), changes_in_words(cap, spell)  # max_num_seqs, the batched tokens
    runs = f"{flag} {have} sequences at once" if engines == 1 else \
        (f"{flag} {have // engines} sequences at once on each of V0's {engines} virtual engines (one a pipeline "
         f"stage), {have} in all")
    head = f"max_concurrency {have} < min_concurrency {want}: vLLM runs at most {runs} ({where})"
    if held.max_concurrency >= want:  # exactly there: more sequences mean more runner buffers, a smaller cache
        return f"{head}; it holds {want} with {words}."
    reach = what_would_reach(spec, raised, device_and_budget(spec, raised)[1], want, precision, spell, device,
                             along=cap)
    return f"{head}, and at {words} its KV cache holds {held.max_concurrency}; {reach}."
