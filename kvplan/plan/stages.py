"""Every pipeline stage's budget and blocks, for a plan with pp > 1 (the JSON's `stages`).

vLLM sizes one KV cache a worker: each profiles its own memory (its layers' weights; the embeddings on stage 0, the
LM head and the sampler's profile pass on the last, a later stage's hidden-state inputs) and counts its own blocks
at its own page (its layers), then every worker takes the smallest count (vllm.Startup.stage_blocks). The plan's
top-level figures are that stage's; this says what each stage holds, from the budgets and counts plan() and
the engine model already made (nothing is reckoned here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from .budget import Budget


@dataclass(frozen=True)
class PipelineStage:
    stage: int
    first_layer: int  # decoder layers [first_layer, end_layer) (get_pp_indices: sharding.pp_stages)
    end_layer: int
    budget: Budget  # this stage's, as served_budget made it
    kv_blocks: Optional[int]  # its worker's own count before the smallest is taken; None: none counted
    sets_capacity: bool  # the stage whose count (the engine's rule) the plan's capacity comes from

    def to_dict(self, spell: Callable[[str], str] = str) -> dict:
        b = self.budget
        return dict(stage=self.stage, first_layer=self.first_layer, end_layer=self.end_layer,
                    layers=self.end_layer - self.first_layer, weights_bytes_per_gpu=b.weights_bytes_per_gpu,
                    activation_bytes=b.activation_bytes, terms=b.terms_dict(spell),
                    kv_budget_bytes_per_gpu=b.kv_budget_bytes_per_gpu, kv_blocks=self.kv_blocks,
                    sets_capacity=self.sets_capacity)


def pipeline_stages(stages: tuple, budgets: list, counts: tuple, capacity_stage: Optional[int]) -> tuple:
    """One PipelineStage a stage of `stages` (sharding.Stage), with its budget and its engine count (`counts`:
    EngineResult.stage_blocks, () where none was counted); () without a pipeline."""
    if len(stages) < 2:
        return ()
    counts = counts or (None,) * len(stages)
    return tuple(PipelineStage(s.index, s.first_layer, s.end_layer, b, n, s.index == capacity_stage)
                 for s, b, n in zip(stages, budgets, counts))


def differs(stages: tuple) -> bool:
    """Whether the stages' budgets or counts differ (a table line is worth it)."""
    return len({(s.budget.kv_budget_bytes_per_gpu, s.kv_blocks) for s in stages}) > 1
