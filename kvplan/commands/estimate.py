"""`kvplan estimate`: resolve the model, build one plan per (context, kv_dtype, tp)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Optional

from ..errors import FieldError, KvplanError
from ..gpu.detect import choose_gpu
from ..model.quantization import apply_weight_precision
from ..model.sources import resolve
from ..model.spec import ModelSpec
from ..plan.budget import flag_budget, gpu_budget
from ..plan.plan import plan
from ..units import parse_size, require_fraction, require_positive
from .describe import model_summary


MAX_PLANS = 256
MAX_BLOCK_SIZE = 2**16
MAX_PREFILL_CHUNKS = 2**15  # chunks priced one by one (plan/prefill.py): ~1-2 s over a whole run


@dataclass(frozen=True)
class EstimateResult:
    spec: ModelSpec
    plans: list
    spell: Callable[[str], str] = str  # field -> the caller's name for it (a flag on the command line)
    view = "estimate"

    def to_dict(self) -> dict:
        return {"model": model_summary(self.spec), "plans": self.rows()}

    def rows(self) -> list:
        return [p.to_dict(self.spell) for p in self.plans]


def estimate(model: str, *, contexts: list, kv_dtypes: list, tps: list, block_size: int = 16,
             kv_budget: Optional[str] = None, gpu: Optional[str] = None, gpu_memory: Optional[str] = None,
             gpu_util: float = 0.9, max_num_batched_tokens: int = 8192, revision: Optional[str] = None,
             batches: tuple = (), quantization: Optional[str] = None, dtype: Optional[str] = None,
             input_len: Optional[int] = None, spell: Callable[[str], str] = str) -> EstimateResult:
    require_fraction("gpu_util", gpu_util)
    sweep = len(contexts) * len(kv_dtypes) * len(tps)
    if sweep > MAX_PLANS:  # bounded work: each plan may search TP degrees and context lengths
        raise KvplanError(f"the sweep asks for {sweep:,} plans (contexts x KV dtypes x TP degrees); at most "
                          f"{MAX_PLANS} per run.")
    require_positive("block_size", block_size, maximum=MAX_BLOCK_SIZE)
    if block_size & (block_size - 1):
        raise FieldError("block_size", f"must be a positive power of two (16 is vLLM's default), got {block_size}.")
    require_positive("max_num_batched_tokens", max_num_batched_tokens)
    chunks = sum(-(-(input_len or c) // max_num_batched_tokens) for c in contexts) * len(kv_dtypes) * len(tps)
    if chunks > MAX_PREFILL_CHUNKS:  # bounded work: time to first token prices every chunk of the prompt
        raise FieldError("max_num_batched_tokens", f"({max_num_batched_tokens:,}) splits the prompts of this run "
                                                   f"into {chunks:,} prefill chunks, more than the "
                                                   f"{MAX_PREFILL_CHUNKS:,} kvplan prices in one run; raise it, or "
                                                   f"ask for shorter contexts or fewer plans.")
    budget_bytes = parse_size(kv_budget, "kv_budget") if kv_budget is not None else None
    memory = parse_size(gpu_memory, "gpu_memory") if gpu_memory is not None else None
    spec = apply_weight_precision(resolve(model, revision), quantization, dtype)
    device = choose_gpu(gpu)

    @lru_cache(maxsize=None)
    def budget_for(tp: int):
        if budget_bytes is not None:
            return flag_budget(budget_bytes)
        return gpu_budget(spec, tp, device, gpu_util, max_num_batched_tokens, memory)

    plans = [plan(spec, context=c, kv_dtype=d, tp=t, budget_for=budget_for, block_size=block_size, gpu=device,
                  batches=tuple(batches), input_len=input_len, max_num_batched_tokens=max_num_batched_tokens)
             for c in contexts for d in kv_dtypes for t in tps]
    return EstimateResult(spec, plans, spell)
