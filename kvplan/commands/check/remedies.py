"""What would reach a target the deployment misses: the nearest changes that hold that many requests
(plan.fitting_remedies), a multimodal deployment's text-only one among them, said in the caller's words."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Optional

from ...errors import KvplanError
from ...model.spec import ModelSpec
from ...plan.plan import fitting_remedies, reaching, release_of, remedy_reach
from ...plan.remedy_words import changes_in_words, options_in_words
from ..deployments import Deployment
from .served import device_and_budget, engine_for, plan_deployment, settings_for


def what_would_reach(spec: ModelSpec, dep: Deployment, budget_for, target: int, precision,
                     spell: Callable[[str], str], device=None, along: tuple = (), note=lambda _: "",
                     keep=lambda _: True) -> str:
    """The nearest remedies that hold `target` sequences (plan.fitting_remedies: each with max_num_seqs raised where
    the cap stops it; a multimodal deployment's text-only one), each with the changes `along` (the cap a caller has
    raised already), in the caller's words for every field each one changes; said first where none keeps to one
    node (plan.Reach). `note`: a clause after an option (remedy_words.length_note); `keep(changes)`: whether a
    remedy found is offered (auto-fit's, auto_reach)."""
    remedies = fitting_remedies(spec, dep.context, precision, dep.tp, dep.block_size, budget_for, target, dep.pp,
                                settings=dict(engine=engine_for(dep), gpu=device, **settings_for(dep)))
    remedies += [r for r in (text_only_remedy(spec, dep, target),) if r]
    remedies = [r for r in remedies if keep(r)]
    reach = remedy_reach(spec, dep.tp, dep.pp, precision, device, release_of(engine_for(dep)), engine_for(dep))
    if not remedies:
        even = f", even with {changes_in_words(along, spell)}" if along else ""
        return f"{reach.nothing(spell, 'reaches it')} on this budget{even}"
    short = reach.shortfall(remedies, spell, "reaches it")
    return (f"{short}; " if short else "") + "would fit with " + options_in_words([r + along for r in remedies],
                                                                                    spell, note)


def text_only_remedy(spec: ModelSpec, dep: Deployment, target: int) -> Optional[tuple]:
    """A multimodal deployment without its vision tower (vLLM's --language-model-only: a text-only deployment) as
    one more remedy when it holds `target` sequences, with the cap raised where the cap stops it (plan.reaching, as
    every other remedy); None where it would not, or cannot apply."""
    shut = dep.limit_mm_per_prompt is not None and dep.limit_mm_per_prompt.shut(
        spec.vision_encoder.modalities if spec.vision_encoder is not None else ("image",))
    if not spec.multimodal or dep.language_model_only or shut or dep.kv_budget is not None:
        return None
    text = replace(dep, language_model_only=True)

    def plan_with(cap: tuple):
        raised = replace(text, **dict(cap))
        return plan_deployment(spec, raised, dep.pp or 1, *device_and_budget(spec, raised))

    try:
        return reaching((("language_model_only", True),), target, plan_with)
    except KvplanError:  # a release without the flag
        return None
