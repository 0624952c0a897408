"""`kvplan check`: the CI gate. Each deployment runs through the sharding rules (plan/sharding.py) and, when
it names a min_concurrency, through the capacity plan. The result says per deployment what passed, what failed
and on which key of the deployments file; `ok` is false when any rule fails.

Where each rule lives: deployment.py (the rules in order: bad input, sharding, estimate's warnings, notices),
capacity.py (the plan and its findings), requirements.py (min_concurrency past the max_num_seqs cap,
min_model_len), remedies.py (what would reach a target, said by plan/remedy_words.py), auto_fit.py (--max-model-len
auto), notices.py (estimate's notes on a key), served.py (the deployment as the engine serves it), row.py (the
row's keys), results.py (the result objects)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Callable, Optional

from ...errors import FieldError, KvplanError, quote, values_as_yaml
from ...model.sources import resolve
from ...plan.plan import MAX_TP
from ...plan.sharding import valid_tp_degrees
from ..deployments import VALID_KEYS, one_line
from .deployment import check_deployment
from .results import CheckResult, SuggestResult


def check(deployments: list, spell: Callable[[str], str] = str) -> CheckResult:
    """Every deployment; suggestions name the fields as `spell` writes them (a deployments file's keys by
    default: tp 4, kv_dtype fp8, context 16384)."""
    results, shapes, resolved = [], [], {}  # resolved: each model read once in this call (read_model)
    for dep in deployments:
        try:
            with values_as_yaml() if dep.file is not None else nullcontext():  # a file's values as it wrote them
                row, shape = check_deployment(dep, spell, resolved)
                results.append(row)
                shapes.append(shape)
        except FieldError as exc:  # an engine rule on a file's key (a release without the flag, pp with a drafter)
            if dep.file is None or exc.field not in VALID_KEYS:
                raise
            raise KvplanError(one_line(exc.spelled(f"{dep.file}:{dep.line_of(exc.field)}: deployment "
                                                   f"{quote(dep.name)} field '{exc.field}'"))) from None
    return CheckResult(results, tuple(shapes))


def suggest(model: str, revision: Optional[str] = None) -> SuggestResult:
    spec = resolve(model, revision)
    degrees = []
    for s in valid_tp_degrees(spec, MAX_TP):
        degrees.append({"tp": s.tp, "attention_heads_per_gpu": spec.num_attention_heads // s.tp,
                        "kv_heads_per_gpu": s.kv_heads_per_gpu, "kv_heads_replicated": s.replicated,
                        "warnings": list(s.warnings)})
    return SuggestResult({"model": spec.name, "num_attention_heads": spec.num_attention_heads,
                          "num_key_value_heads": spec.kv_heads, "mla": spec.is_mla, "max_tp": MAX_TP,
                          "valid_tp": degrees})
