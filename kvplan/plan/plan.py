"""One Plan per (context, kv_dtype, tp): sharding, capacity, budget and decode speed of one GPU, and the
nearest single changes that would make a plan fit."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Optional

from ..errors import FieldError
from ..model.precision import Precision, resolve_kv_dtype
from ..model.spec import ModelSpec
from ..units import require_positive
from .budget import Budget
from .capacity import capacity
from .catalog import GPU, speed_profile
from .prefill import Prefill, prefill
from .sharding import shard
from .speed import Decode, decode

DEFAULT_BLOCK_SIZE = 16
MAX_TP = 64


@dataclass(frozen=True)
class Plan:
    model: str
    context: int
    kv_dtype: str
    kv_dtype_scheme: str
    tp: int
    block_size: int
    tp_valid: bool
    tp_errors: tuple
    tp_warnings: tuple
    kv_heads_per_gpu: Optional[int]
    kv_bytes_per_token: Optional[int]
    kv_bytes_per_token_per_gpu: Optional[int]
    kv_bytes_per_sequence_per_gpu: Optional[int]
    state_bytes_per_sequence_per_gpu: Optional[int]
    kv_budget_bytes_per_gpu: int
    kv_blocks: Optional[int]
    kv_capacity_tokens: Optional[int]
    max_concurrency: Optional[int]
    contiguous_bytes_per_sequence_per_gpu: Optional[int]
    contiguous_max_concurrency: Optional[int]
    fits: bool
    fits_with: tuple  # the nearest single changes that fit, as (field, value): ("tp", 4), ("kv_dtype", "fp8")
    budget: Budget
    decode: Optional[Decode]  # whenever the TP degree is valid and a GPU is known
    prefill: Optional[Prefill]

    def suggestion(self, spell: Callable[[str], str] = str) -> Optional[str]:
        """What would fit, in the caller's words for each field (`spell`: field -> flag or key)."""
        if self.fits or not self.tp_valid:
            return None
        if not self.fits_with:
            return "nothing up to tp 64 fits: the weights alone exceed the budget of one GPU" \
                if self.kv_budget_bytes_per_gpu <= 0 else "no TP degree up to 64 or fp8 makes it fit"
        return "would fit with " + " or ".join(f"{spell(key)} {value}" for key, value in self.fits_with)

    def to_dict(self, spell: Callable[[str], str] = str) -> dict:
        data = asdict(self)
        data["tp_errors"], data["tp_warnings"] = list(self.tp_errors), list(self.tp_warnings)
        del data["fits_with"]
        data["suggestion"] = self.suggestion(spell)
        return data


def plan(spec: ModelSpec, *, context: int, kv_dtype: str, tp: int, budget_for: Callable[[int], Budget],
         block_size: int = DEFAULT_BLOCK_SIZE, gpu: Optional[GPU] = None, bandwidth: Optional[float] = None,
         batches: tuple = (), input_len: Optional[int] = None, max_num_batched_tokens: int = 8192,
         suggest: bool = True) -> Plan:
    """`budget_for(tp)` gives the budget of one GPU at that TP degree (weights shrink with TP), so a plan that
    does not fit can say which TP degree would. With a `gpu`, decode is estimated at batch 1, at max
    concurrency and at every one of `batches` (`bandwidth` overrides the GPU's), and prefill for `input_len`
    prompt tokens (default: the whole context) at batch 1."""
    require_positive("context", context)
    require_positive("block_size", block_size)
    if input_len is not None:
        require_positive("input_len", input_len)
        if input_len > context:
            raise FieldError("input_len", f"({input_len}) must not exceed the context ({context}): the engine "
                                          f"refuses a prompt longer than its max model length.")
    for batch in batches:
        require_positive("batch", batch)
    precision = resolve_kv_dtype(kv_dtype, spec.dtype)
    sharding = shard(spec, tp)
    budget = budget_for(tp)
    common = dict(model=spec.name, context=context, kv_dtype=precision.name, kv_dtype_scheme=precision.scheme,
                  tp=tp, block_size=block_size, tp_valid=sharding.valid, tp_errors=sharding.errors,
                  tp_warnings=sharding.warnings, kv_budget_bytes_per_gpu=budget.kv_budget_bytes_per_gpu,
                  budget=budget)
    if not sharding.valid:
        return Plan(**common, kv_heads_per_gpu=None, kv_bytes_per_token=None, kv_bytes_per_token_per_gpu=None,
                    kv_bytes_per_sequence_per_gpu=None, state_bytes_per_sequence_per_gpu=None, kv_blocks=None,
                    kv_capacity_tokens=None, max_concurrency=None, contiguous_bytes_per_sequence_per_gpu=None,
                    contiguous_max_concurrency=None, fits=False, fits_with=(), decode=None, prefill=None)
    numbers = capacity(spec, tp, precision, context, block_size, budget.kv_budget_bytes_per_gpu)
    fits = numbers.max_concurrency > 0
    changes = ()
    if not fits and suggest:
        changes = tuple(fitting_changes(spec, context, precision, tp, block_size, budget_for))
    speed = prompt = None
    if gpu is not None:
        profile, rate = speed_profile(gpu), bandwidth or gpu.decode_bandwidth
        speed = decode(spec, tp, precision, context, numbers.max_concurrency, batches, profile, rate)
        prompt = prefill(spec, tp, precision, input_len or context, max_num_batched_tokens, profile, rate)
    return Plan(**common, kv_heads_per_gpu=sharding.kv_heads_per_gpu, **asdict(numbers), fits=fits,
                fits_with=changes, decode=speed, prefill=prompt)


def _concurrency(spec, context, precision, tp, block_size, budget_for, pp=None) -> int:
    if not shard(spec, tp, pp).valid:
        return 0
    return capacity(spec, tp, precision, context, block_size, budget_for(tp).kv_budget_bytes_per_gpu).max_concurrency


def fitting_changes(spec: ModelSpec, context: int, precision: Precision, tp: int, block_size: int,
                    budget_for: Callable[[int], Budget], target: int = 1, pp: Optional[int] = None) -> list:
    """The nearest single changes that hold `target` sequences: [("tp", 4), ("kv_dtype", "fp8"),
    ("context", 81920)] — a larger TP degree, fp8 KV, or the longest context that fits as is."""
    def reaches(context=context, precision=precision, tp=tp) -> bool:
        return _concurrency(spec, context, precision, tp, block_size, budget_for, pp) >= target

    changes = []
    bigger = next((t for t in range(tp + 1, MAX_TP + 1) if reaches(tp=t)), None)
    if bigger:
        changes.append(("tp", bigger))
    if precision.bits > 8 and reaches(precision=resolve_kv_dtype("fp8", spec.dtype)):
        changes.append(("kv_dtype", "fp8"))
    low, high = 0, context - 1  # what fits shrinks monotonically with the context length
    while low < high:
        mid = (low + high + 1) // 2
        if reaches(context=mid):
            low = mid
        else:
            high = mid - 1
    if low > 0:
        changes.append(("context", low))
    return changes
