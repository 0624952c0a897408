"""`kvplan estimate`: resolve the model, build one plan per (context, kv_dtype, tp)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Optional

from ..errors import FieldError
from ..gpu.detect import choose_gpu
from ..model.quantization import apply_weight_precision
from ..model.sources import resolve
from ..model.spec import ModelSpec
from ..plan.budget import flag_budget, gpu_budget
from ..plan.max_len import default_max_model_len
from ..plan.plan import plan
from ..units import parse_size, require_fraction, require_positive
from .curve import curves
from .describe import model_summary


@dataclass(frozen=True)
class EstimateResult:
    spec: ModelSpec
    plans: list
    spell: Callable[[str], str] = str  # field -> the caller's name for it (a flag on the command line)
    default_context: bool = False  # no context was given: the model's own max length, as vLLM
    curves: tuple = ()  # commands/curve.py Curves, when a chart was asked for
    view = "estimate"

    def to_dict(self) -> dict:
        data = {"model": model_summary(self.spec), "plans": self.rows()}
        if self.curves:
            data["curves"] = [c.to_dict() for c in self.curves]
        return data

    def rows(self) -> list:
        return [p.to_dict(self.spell) for p in self.plans]


def estimate(model: str, *, contexts: Optional[list] = None, kv_dtypes: list = ("auto",), tps: list = (1,),
             block_size: int = 16,
             kv_budget: Optional[str] = None, gpu: Optional[str] = None, gpu_memory: Optional[str] = None,
             gpu_util: float = 0.9, max_num_batched_tokens: int = 8192, revision: Optional[str] = None,
             batches: tuple = (), quantization: Optional[str] = None, dtype: Optional[str] = None,
             input_len: Optional[int] = None, spell: Callable[[str], str] = str,
             chart: bool = False) -> EstimateResult:
    """`chart`: also the concurrency curves behind `--chart` and `--format html` (commands/curve.py)."""
    require_fraction("gpu_util", gpu_util)
    if block_size < 1 or block_size & (block_size - 1):
        raise FieldError("block_size", f"must be a positive power of two (16 is vLLM's default), got {block_size}.")
    require_positive("max_num_batched_tokens", max_num_batched_tokens)
    budget_bytes = parse_size(kv_budget, "kv_budget") if kv_budget is not None else None
    memory = parse_size(gpu_memory, "gpu_memory") if gpu_memory is not None else None
    spec = apply_weight_precision(resolve(model, revision), quantization, dtype)
    device = choose_gpu(gpu)
    default_context = not contexts
    contexts = contexts or [default_max_model_len(spec)]

    @lru_cache(maxsize=None)
    def budget_for(tp: int):
        if budget_bytes is not None:
            return flag_budget(budget_bytes)
        return gpu_budget(spec, tp, device, gpu_util, max_num_batched_tokens, memory)

    plans = [plan(spec, context=c, kv_dtype=d, tp=t, budget_for=budget_for, block_size=block_size, gpu=device,
                  batches=tuple(batches), input_len=input_len, max_num_batched_tokens=max_num_batched_tokens)
             for c in contexts for d in kv_dtypes for t in tps]
    drawn = curves(spec, plans, budget_for, device, block_size, max_num_batched_tokens) if chart else ()
    return EstimateResult(spec, plans, spell, default_context, drawn)
