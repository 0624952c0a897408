"""A checked deployment as the row check returns (the JSON contract's keys): its fields, verdict, findings, shape
and the capacity plan's numbers; keys a deployment may leave unset only where it sets them."""

from __future__ import annotations

from typing import Optional

from ...model.spec import ModelSpec
from ...engines.vllm_pooling import runner_name
from ...plan.plan import release_of, unplanned_block_size
from ..deployments import Deployment
from ..estimate import auto_fit_record
from .capacity import Capacity
from .results import Findings
from .served import engine_for


def deployment_row(dep: Deployment, spec: ModelSpec, sharding, precision, device, found: Capacity,
                   findings: Findings) -> dict:
    errors = findings.messages("error")
    return {
        "name": dep.name,
        "model": str(dep.model),  # as given; a config.json's object (the API's model=<dict>) by its name
        "model_id": spec.name,
        "file": dep.file,
        "line": dep.line,
        "tp": dep.tp,
        "pp": dep.pp,
        "pp_partition": _listed(sharding.stage_layers(spec.num_hidden_layers)),  # as estimate's plans give them
        "passed": not errors,
        "errors": errors,
        "warnings": findings.messages("warning"),
        "findings": [{"level": f.level, "key": f.key, "line": f.line, "message": f.message} for f in findings.found],
        "num_attention_heads": spec.num_attention_heads,
        "num_key_value_heads": spec.kv_heads,
        "mla": spec.is_mla,
        "kv_heads_per_gpu": sharding.served_kv_heads_per_gpu,
        "kv_heads_replicated": sharding.replicated,
        "context": dep.context,
        **({"auto_fit": auto_fit_record(dep.fitted_from, dep.context, found.planned)}
           if dep.auto_fit else {}),  # only under auto: the JSON's other keys stay as they were
        "kv_dtype": precision.name,
        "gpu": device.name if dep.kv_budget is None else None,
        "node_gpus": device.node_gpus,  # the node the remedies keep a TP group within, and where it comes from
        "node_gpus_source": device.node_source,
        "kv_budget_bytes_per_gpu": found.budget_per_gpu,
        **found.numbers,
        "runner": runner_name(spec, release_of(engine_for(dep))),  # as estimate's plans say it, --engine none too
        "min_concurrency": dep.min_concurrency,
        **({"block_size": dep.block_size} if dep.block_size is not None else {}),  # only when set: the JSON's keys
        **_set_keys(dep),
    }


def planned_shape(dep: Deployment, found: Capacity, engine) -> dict:
    """The pipeline stages and block size the deployment was planned with, as estimate's plan of it states them: pp
    1 where unset, the block the plan laid its cache out in (or, where sharding failed, unplanned_block_size's). The
    CSV's `pp` and `block_size`, where the JSON keeps what the deployment set (docs/ci.md)."""
    planned = found.planned
    return {"pp": dep.pp or 1,
            "block_size": planned.block_size if planned is not None else unplanned_block_size(engine, dep.block_size)}


# the keys a row carries only when the deployment sets them (the JSON contract's other keys stay as they were)
SET_ONLY_KEYS = ("min_model_len", "quantization", "dtype", "max_num_seqs", "max_num_batched_tokens",
                 "pp_layer_partition", "gpu_memory", "dcp", "dcp_interleave", "dcp_comm_backend", "dcp_q_replicate",
                 "pcp")


def _listed(value: Optional[tuple]) -> Optional[list]:
    return list(value) if value is not None else None


def _set_keys(dep: Deployment) -> dict:
    values = {key: getattr(dep, key) for key in SET_ONLY_KEYS}
    return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()
            if value is not None}
