"""--max-model-len auto (context: auto): the deployment at the length vLLM's auto-fit picks, the notice that says
it, and the remedies under auto-fit (each offered only where the changed deployment passes with auto-fit again)."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from ...errors import KvplanError
from ...model.spec import ModelSpec
from ...engines.vllm_auto_fit import no_fit_refusal, refuse_auto_fit
from ...engines.vllm_speculative import served
from ...plan.max_len import default_max_model_len
from ...plan.plan import release_of
from ..deployments import AUTO_FIT, Deployment
from ..estimate import auto_fitted
from .remedies import what_would_reach
from .served import device_and_budget, engine_for, plan_deployment, spec_for


def fitted(spec: ModelSpec, dep: Deployment) -> Deployment:
    """--max-model-len auto (AUTO_FIT): the deployment at the length vLLM's auto-fit picks, planned from the model's
    own by the rule estimate plans it with (estimate.auto_fitted: each refusal's estimate until one starts), that
    length kept as fitted_from (vLLM builds the runner's buffers at it: device_and_budget). Refused before vLLM 0.14.0,
    which has no auto-fit (vllm_auto_fit.refuse_auto_fit)."""
    refuse_auto_fit(release_of(engine_for(dep)))
    own = default_max_model_len(spec)
    start = replace(dep, context=own, fitted_from=own)

    def plan_at(context: int, kv_dtype: str, tp: int, asked: Optional[int] = None):
        at = replace(start, context=context)
        return plan_deployment(spec, at, at.pp or 1, *device_and_budget(spec, at))
    return replace(start, context=auto_fitted(plan_at(own, dep.kv_dtype, dep.tp), plan_at).context)


def fit_words(dep: Deployment, spell) -> str:
    """What vLLM's auto-fit made of the deployment's length, as estimate's note says it (render/estimate.py)."""
    if dep.fitted_from == dep.context:
        return f"{spell('context')} auto: the model's full length {dep.context} fits (vLLM's auto-fit keeps it)."
    return (f"{spell('context')} auto: vLLM's auto-fit reduces max_model_len from {dep.fitted_from} to {dep.context} "
            f"to fit the available KV cache memory; checked at that length.")


def passes(dep: Deployment, target: int, resolved: dict) -> bool:
    """Whether `dep` (a deployment a remedy changed) starts and holds `target` requests at a length of at least its
    min_model_len: at the length auto-fit picks where its context is AUTO_FIT, as check_deployment plans it."""
    try:
        spec = served(spec_for(dep, resolved), engine_for(dep), dep.pp or 1)
        if dep.context == AUTO_FIT:
            dep = fitted(spec, dep)
        held = no_fit_refusal(plan_deployment(spec, dep, dep.pp or 1, *device_and_budget(spec, dep)))
    except KvplanError:  # a change the engine's rules refuse as input: no remedy
        return False
    starts = held.engine is None or held.engine.refusal is None
    return held.tp_valid and starts and (held.max_concurrency or 0) >= target and \
        dep.context >= (dep.min_model_len or 0)


def auto_reach(spec: ModelSpec, dep: Deployment, target: int, precision, spell, device, resolved: dict) -> str:
    """what_would_reach for a deployment under auto-fit. The remedies are searched at the length the gate needs: the
    model's own where more than one request is asked (a length auto-fit shortens is the longest that holds one
    request, so it holds no second), else min_model_len (or the model's own); each is offered only where the
    deployment so changed passes with auto-fit picking its length again (passes), or, where the remedy names a
    context, at that fixed length in place of auto."""
    own = dep.fitted_from
    length = own if target > 1 or dep.min_model_len is None else min(dep.min_model_len, own)
    at = replace(dep, context=length, fitted_from=None)

    def keep(changes: tuple) -> bool:
        changed = replace(at, **dict(changes))
        if "pp" in dict(changes):  # vLLM's own layer split, as the remedy planned it
            changed = replace(changed, pp_layer_partition=None)
        return passes(changed if "context" in dict(changes) else replace(changed, context=AUTO_FIT), target,
                      resolved)
    return what_would_reach(spec, at, device_and_budget(spec, at)[1], target, precision, spell, device, keep=keep)

