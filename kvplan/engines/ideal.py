"""`--engine none`: kvplan's ideal paged arithmetic, no engine in the way. Every layer holds exactly the blocks
its kind says (model/kinds.py), no block is held back, no in-flight reserve, one pool per GPU; the plan reports
`engine: null`. The GPU budget is kvplan's generic estimate with fixed reserves (plan/budget.py gpu_budget),
not any engine's profile run, of the weights the model serves: a pooling model (embedding, classification, reward:
engines/vllm_pooling.py, the pinned release's rule) loads no untied LM head, as vllm_pooling_budget.without_lm_head
drops it from vLLM's budget, so the plan's note that it runs on a pooling runner and its weights agree."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from ..model.precision import normalize_dtype_name
from ..plan.budget import gpu_budget
from ..plan.capacity import capacity
from ..plan.sharding import stage_weights
from .vllm_pooling import pooling_runner
from .vllm_pooling_budget import without_lm_head


@dataclass(frozen=True)
class EngineResult:
    """What plan() takes from an engine model."""

    figures: Optional[object]  # EngineFigures, None without an engine
    max_concurrency: int
    limited_by: str  # memory | max_num_seqs
    kv_blocks: int
    kv_capacity_tokens: int
    block_size: int
    # each pipeline stage's own blocks, in stage order (None: a stage holding no KV layer; (): none counted), and the
    # stage whose figures set the plan's capacity (None: none counted)
    stage_blocks: tuple = ()
    capacity_stage: Optional[int] = None


class IdealEngine:
    name = "none"
    version = None
    default_gpu_util = 0.9

    def __init__(self, enforce_eager: bool = False):
        self.enforce_eager = enforce_eager  # no CUDA graphs: no graph reserve

    def dummy_sampler(self, spec, gpu=None) -> str:
        return "gumbel"  # no sampler terms of its own: verify's profile run takes the lightest pass

    def cache_precision(self, spec, precision, gpu=None, tp=None):
        return precision  # no engine rule: the cache the KV dtype names

    def default_block_size(self) -> int:
        return 16

    def unsharded_block_size(self) -> int:
        return self.default_block_size()

    def on_gpu(self, spec, gpu=None):
        """`spec` with its Mamba temporal state in the dtype its own config declares (Qwen3.5's mamba_ssm_dtype,
        Nemotron-H's mamba_ssm_cache_dtype: ModelSpec.config_ssm_dtype / ssm_cache_dtype), else the model dtype:
        no engine handler decides it here, but the precision the model's authors ask for is the model's. A spec an
        engine's view already set them on (verify's served_spec) keeps them."""
        if not spec.linear_layers or spec.state_dtypes:
            return spec
        declared = spec.config_ssm_dtype or spec.ssm_cache_dtype
        temporal = spec.dtype if declared in ("", "auto") else normalize_dtype_name(declared)
        state = (spec.dtype, temporal)
        return spec if state == spec.state_dtypes else replace(spec, state_dtypes=state)

    def budget(self, spec, tp: int, gpu, gpu_util: Optional[float], *, gpu_memory: Optional[int] = None,
               stage=None, context: Optional[int] = None, max_num_batched_tokens: Optional[int] = None,
               max_num_seqs: Optional[int] = None, **_):
        util = self.default_gpu_util if gpu_util is None else gpu_util
        served = without_lm_head(spec)  # a pooling model serves no untied LM head (vllm_pooling_budget.py)
        budget = gpu_budget(served, tp, gpu, util, max_num_batched_tokens, gpu_memory, stage, not self.enforce_eager,
                            pooling=pooling_runner(spec))
        return budget if served is spec else _headless(budget, served, tp, stage)

    def capacity(self, stage_specs: list, *, context: int, precision, tp: int, budgets: list,
                 block_size: int, max_num_seqs: Optional[int] = None, **_) -> EngineResult:
        """Per stage: budget // bytes per sequence; the tightest stage sets the plan."""
        numbers = [capacity(s, tp, precision, context, block_size, b) for s, b in zip(stage_specs, budgets)]
        tight = min(range(len(numbers)), key=lambda i: numbers[i].max_concurrency)
        most = numbers[tight].max_concurrency
        limited = "memory"
        if max_num_seqs is not None and most > max_num_seqs:
            most, limited = max_num_seqs, "max_num_seqs"
        # the plan's blocks and tokens are that stage's, as its budget is (plan.py): not another stage's fewer blocks
        return EngineResult(None, most, limited, numbers[tight].kv_blocks, numbers[tight].kv_capacity_tokens,
                            block_size, tuple(n.kv_blocks for n in numbers), tight)


def _headless(budget, spec, tp: int, stage):
    """`budget` (gpu_budget of `spec`, whose untied LM head without_lm_head dropped), said so, with a pipeline's last
    stage holding no head either: gpu_budget's stage_weights reads a spec without an lm_head group as tied, and
    loads the embedding again there (stage_weights `head`)."""
    weights = stage_weights(spec, tp, stage, head=False)
    extra = budget.weights_bytes_per_gpu - weights
    terms = tuple(replace(t, bytes=weights, source=t.source + "; no LM head (a pooling model serves none)")
                  if t.name == "weights" else t for t in budget.terms)
    return replace(budget, kv_budget_bytes_per_gpu=budget.kv_budget_bytes_per_gpu + extra,
                   weights_bytes_per_gpu=weights, terms=terms)
