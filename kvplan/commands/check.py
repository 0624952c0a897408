"""`kvplan check`: the CI gate. Each deployment runs through the sharding rules (plan/sharding.py) and, when
it names a min_concurrency, through the capacity plan. The result says per deployment what passed, what failed
and on which key of the deployments file; `ok` is false when any rule fails."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Callable, Optional

from ..errors import KvplanError
from ..gpu.detect import choose_gpu
from ..model.precision import resolve_kv_dtype
from ..model.sources import resolve
from ..model.spec import ModelSpec
from ..plan.budget import flag_budget, gpu_budget
from ..plan.capacity import token_bytes
from ..plan.max_len import default_max_model_len
from ..plan.plan import DEFAULT_BLOCK_SIZE, MAX_TP, fitting_changes, plan
from ..plan.sharding import shard, valid_tp_degrees, weights_per_gpu
from ..render.text import size
from .deployments import Deployment, one_line


@dataclass(frozen=True)
class Finding:
    level: str  # "error" or "warning"
    key: Optional[str]  # the deployment field at fault (tp, pp, min_concurrency, context), None: the entry
    message: str
    line: Optional[int]


@dataclass(frozen=True)
class CheckResult:
    results: list  # one dict per deployment
    view = "check"

    @property
    def ok(self) -> bool:
        return all(r["passed"] for r in self.results)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "results": self.results}

    def rows(self) -> list:
        return [{k: v for k, v in r.items() if k != "findings"} for r in self.results]


@dataclass(frozen=True)
class SuggestResult:
    report: dict
    view = "suggest"

    def to_dict(self) -> dict:
        return self.report

    def rows(self) -> list:
        return self.report["valid_tp"]


@lru_cache(maxsize=None)
def _resolve(model: str, revision: Optional[str]) -> ModelSpec:
    return resolve(model, revision)


def _spec_for(dep: Deployment) -> ModelSpec:
    try:
        return _resolve(dep.model, dep.revision)
    except KvplanError as exc:
        if dep.file is None:
            raise
        raise KvplanError(one_line(f"{dep.file}:{dep.line_of('model')}: deployment {dep.name!r} field 'model': "
                                   f"{exc}")) from None


def _budget_for(spec: ModelSpec, dep: Deployment):
    """budget_for(tp) as plan() takes it. With pp stages each GPU holds num_hidden_layers/pp layers (the pp
    rule makes that even) and weights/(tp x pp); plan() counts every layer per GPU, so the budget it gets is
    the per-GPU budget times pp: the same sequence count, exactly, for an even split."""
    pp = dep.pp or 1
    device = None if dep.kv_budget is not None else choose_gpu(dep.gpu)

    @lru_cache(maxsize=None)
    def budget_for(tp: int):
        if device is None:
            budget = flag_budget(dep.kv_budget)
        else:
            budget = gpu_budget(spec, tp, device, dep.gpu_util)
            if pp > 1:
                weights = weights_per_gpu(spec, tp, pp)
                budget = replace(budget, weights_bytes_per_gpu=weights, kv_budget_bytes_per_gpu=(
                    budget.kv_budget_bytes_per_gpu + budget.weights_bytes_per_gpu - weights))
        return replace(budget, kv_budget_bytes_per_gpu=budget.kv_budget_bytes_per_gpu * pp)

    return budget_for


def _replication(spec: ModelSpec, tp: int, precision) -> str:
    group, single = token_bytes(spec, tp, precision) * tp, token_bytes(spec, 1, precision)
    return (f"at kv_dtype {precision.name} one token takes {size(group)} of KV across the {tp} GPUs vs "
            f"{size(single)} unreplicated ({group} vs {single} bytes, +{group - single})")


def what_would_reach(spec: ModelSpec, dep: Deployment, budget_for, target: int, precision,
                     spell: Callable[[str], str]) -> str:
    """The nearest changes that hold `target` sequences, in the caller's words for each field."""
    changes = fitting_changes(spec, dep.context, precision, dep.tp, DEFAULT_BLOCK_SIZE, budget_for, target, dep.pp)
    if not changes:
        return f"no tp up to {MAX_TP}, fp8 KV or shorter context reaches it on this budget"
    options = [f"{spell(key)} {value}" for key, value in changes]
    return "would fit with " + ", ".join(options[:-1]) + (" or " if len(options) > 1 else "") + options[-1]


def check_deployment(dep: Deployment, spell: Callable[[str], str] = str) -> dict:
    spec = _spec_for(dep)
    if dep.context is None:  # vLLM's default: the model's own max length
        dep = replace(dep, context=default_max_model_len(spec))
    precision = resolve_kv_dtype(dep.kv_dtype, spec.dtype)
    tp_only = shard(spec, dep.tp)
    sharding = shard(spec, dep.tp, dep.pp)
    findings = []

    def add(level: str, key: Optional[str], message: str) -> None:
        findings.append(Finding(level, key, one_line(message), dep.line_of(key)))

    for error in sharding.errors:
        add("error", "tp" if error in tp_only.errors else "pp", error)
    for warning in sharding.warnings:
        if "replicated" in warning:
            warning = f"{warning.rstrip('.')}; {_replication(spec, dep.tp, precision)}."
        add("warning", "tp", warning)
    if spec.max_position_embeddings and dep.context > spec.max_position_embeddings:
        add("warning", "context", f"context {dep.context} exceeds max_position_embeddings "
                                  f"({spec.max_position_embeddings}); vLLM serves longer sequences only with RoPE "
                                  f"scaling or VLLM_ALLOW_LONG_MAX_MODEL_LEN.")

    pp = dep.pp or 1
    budget_for = _budget_for(spec, dep)
    budget = budget_for(dep.tp)
    budget_per_gpu = budget.kv_budget_bytes_per_gpu // pp
    numbers = dict.fromkeys(("kv_bytes_per_token", "kv_bytes_per_token_per_gpu",
                              "kv_bytes_per_sequence_per_gpu", "max_concurrency"))
    if sharding.valid:
        result = plan(spec, context=dep.context, kv_dtype=dep.kv_dtype, tp=dep.tp, budget_for=budget_for,
                      block_size=DEFAULT_BLOCK_SIZE, suggest=False)
        have, want = result.max_concurrency, dep.min_concurrency
        per_sequence = (result.kv_bytes_per_sequence_per_gpu + result.state_bytes_per_sequence_per_gpu) // pp
        numbers = dict(kv_bytes_per_token=result.kv_bytes_per_token,
                       kv_bytes_per_token_per_gpu=result.kv_bytes_per_token_per_gpu // pp,
                       kv_bytes_per_sequence_per_gpu=result.kv_bytes_per_sequence_per_gpu // pp,
                       max_concurrency=have)
        shape = f"tp {dep.tp}" + (f", pp {pp}" if pp > 1 else "")
        where = (f"the KV budget of {size(budget_per_gpu)} per GPU holds {have} sequences of {dep.context} "
                 f"tokens ({size(per_sequence)} each per GPU at {shape}, kv_dtype {precision.name})")
        if want is not None and have < want:
            add("error", "min_concurrency",
                f"max_concurrency {have} < min_concurrency {want}: {where}, and {want} need "
                f"{size(want * per_sequence)} per GPU; "
                f"{what_would_reach(spec, dep, budget_for, want, precision, spell)}.")
        elif want is None and have == 0:
            add("warning", None, f"not one sequence fits: {where}; "
                                 f"{what_would_reach(spec, dep, budget_for, 1, precision, spell)} "
                                 f"(set min_concurrency to make capacity a rule).")
    errors = [f.message for f in findings if f.level == "error"]
    return {
        "name": dep.name,
        "model": dep.model,
        "model_id": spec.name,
        "file": dep.file,
        "line": dep.line,
        "tp": dep.tp,
        "pp": dep.pp,
        "passed": not errors,
        "errors": errors,
        "warnings": [f.message for f in findings if f.level == "warning"],
        "findings": [{"level": f.level, "key": f.key, "line": f.line, "message": f.message} for f in findings],
        "num_attention_heads": spec.num_attention_heads,
        "num_key_value_heads": spec.kv_heads,
        "mla": spec.is_mla,
        "kv_heads_per_gpu": sharding.kv_heads_per_gpu,
        "kv_heads_replicated": sharding.replicated,
        "context": dep.context,
        "kv_dtype": precision.name,
        "gpu": budget.gpu_name,
        "kv_budget_bytes_per_gpu": budget_per_gpu,
        **numbers,
        "min_concurrency": dep.min_concurrency,
    }


def check(deployments: list, spell: Callable[[str], str] = str) -> CheckResult:
    """Every deployment; suggestions name the fields as `spell` writes them (a deployments file's keys by
    default: tp 4, kv_dtype fp8, context 16384)."""
    return CheckResult([check_deployment(dep, spell) for dep in deployments])


def suggest(model: str, revision: Optional[str] = None) -> SuggestResult:
    spec = _resolve(model, revision)
    degrees = []
    for s in valid_tp_degrees(spec, MAX_TP):
        degrees.append({"tp": s.tp, "attention_heads_per_gpu": spec.num_attention_heads // s.tp,
                        "kv_heads_per_gpu": s.kv_heads_per_gpu, "kv_heads_replicated": s.replicated,
                        "warnings": list(s.warnings)})
    return SuggestResult({"model": spec.name, "num_attention_heads": spec.num_attention_heads,
                          "num_key_value_heads": spec.kv_heads, "mla": spec.is_mla, "max_tp": MAX_TP,
                          "valid_tp": degrees})
