"""One deployment through check's rules, in the order its findings are said: the values its release refuses as
input (exit 2), the sharding (plan/sharding.py), estimate's warnings on the model and its flags, the capacity rule
(capacity.py), estimate's notices; then its row (row.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Optional

from ...model.files import unloadable_notes
from ...model.hub import unchecked_notes
from ...model.precision import resolve_kv_dtype
from ...model.spec import ModelSpec
from ...engines import unused_media_note
from ...engines.vllm_config_read import unlisted_note
from ...engines.vllm_gemma2_window import window_capper
from ...engines.vllm_graphs import refuse_capture_flags
from ...engines.vllm_lora import ignored_note
from ...engines.vllm_pooler_config import ignored_note as ignored_pooler_note
from ...engines.vllm_pooling import pooling_field, pooling_note
from ...engines.vllm_speculative import served
from ...plan.capacity import token_bytes
from ...plan.max_len import default_max_model_len, served_length_limit
from ...plan.plan import moe_layout_of, node_note, release_of, with_layout_errors
from ...plan.sharding import shard, valid_tp_degrees
from ...render.estimate import small_budget_note
from ...render.text import size
from ..deployments import AUTO_FIT, Deployment
from ..estimate import ignored_beside_kv_budget
from .auto_fit import fitted
from .capacity import Capacity, capacity
from .notices import cache_flag_findings, engine_notices, plan_notices, spec_notices
from .results import Findings
from .row import deployment_row, planned_shape
from .served import device_for, engine_for, spec_for


def check_deployment(dep: Deployment, spell: Callable[[str], str] = str, resolved: Optional[dict] = None) -> tuple:
    """(the deployment's row, the pp and block size it was planned with: row.planned_shape). `resolved`: the models
    read so far in this check() call (read_model); None: a dict of this deployment's own."""
    resolved = {} if resolved is None else resolved
    spec = served(spec_for(dep, resolved), engine_for(dep), dep.pp or 1)
    asked = dep.context if dep.context != AUTO_FIT else None  # the length the deployment sets (None: not one)
    if dep.context is None:  # vLLM's default: the model's own max length
        dep = replace(dep, context=default_max_model_len(spec))
    _refuse_unlisted_values(spec, dep)
    if dep.context == AUTO_FIT:  # vLLM's auto-fit: the deployment is checked at the length vLLM would start with
        dep = fitted(spec, dep)
    engine = engine_for(dep)  # `auto` as the engine serves the model on this GPU (a T4's float16 or float32)
    viewed = engine.on_gpu(spec, device_for(dep)) if hasattr(engine, "on_gpu") else spec
    precision = resolve_kv_dtype(dep.kv_dtype, viewed.dtype, viewed.auto_kv_dtype)
    findings = Findings(dep)
    sharding = _sharding(spec, dep, precision, spell, findings)
    device = device_for(dep)
    _served_warnings(spec, dep, device, spell, resolved, findings)
    found = capacity(spec, dep, sharding, precision, device, asked, spell, resolved, findings)
    _notices(spec, dep, found, spell, findings)
    row = deployment_row(dep, spec, sharding, precision, device, found, findings)
    return row, planned_shape(dep, found, engine)


def _refuse_unlisted_values(spec: ModelSpec, dep: Deployment) -> None:
    """Bad input before any rule: a value the release's --kv-cache-dtype, --quantization or --block-size does not
    list, a CUDA-graph capture pair no TP degree starts, LoRA on a model kvplan does not price it for."""
    if hasattr(engine_for(dep), "check_kv_dtype"):  # a value the release's --kv-cache-dtype does not list
        engine_for(dep).check_kv_dtype(dep.kv_dtype)
    if hasattr(engine_for(dep), "check_quantization"):  # nor its --quantization
        engine_for(dep).check_quantization(dep.quantization)
    if hasattr(engine_for(dep), "check_block_size"):  # nor its --block-size
        engine_for(dep).check_block_size(dep.block_size)
    if getattr(engine_for(dep), "flags", None) is not None:  # a capture pair no TP degree starts: before sharding
        refuse_capture_flags(engine_for(dep).flags, engine_for(dep).version, dep.max_num_batched_tokens)
        _refuse_unpriced_lora(spec, engine_for(dep))


def _sharding(spec: ModelSpec, dep: Deployment, precision, spell, findings: Findings):
    """The deployment's sharding (TP, PP, the MoE layout EPLB asks), its errors on the key at fault and its
    warnings on tp (the replicated KV heads' bytes said once, after every layer shape's)."""
    layout = moe_layout_of(engine_for(dep), spec, dep.tp)  # EPLB's refusals at this TP degree fail it as bad TP does
    tp_only = shard(spec, dep.tp)
    partition = dep.pp_layer_partition  # as plan() shards: a partition without pp is checked against pp 1
    sharding = with_layout_errors(shard(spec, dep.tp, dep.pp or (1 if partition else None), partition, spell,
                                        release_of(engine_for(dep)), dep.dcp or 1), layout)
    refusals = layout.errors if layout is not None else ()
    stages = "pp_layer_partition" if partition else "pp"  # the key a pipeline error points at
    last_tp = next((error for error in reversed(sharding.errors) if error in tp_only.errors), None)
    for error in sharding.errors:
        key = "tp" if error in tp_only.errors else _eplb_key(dep) if error in refusals else stages
        if error == last_tp:  # what would fix it, once, after the heads' rules
            error = f"{error.rstrip('.')}; {_sharding_degrees(spec, dep, spell)}."
        findings.add("error", key, error)
    replicated = [warning for warning in sharding.warnings if "replicated" in warning]
    for warning in sharding.warnings:
        if replicated and warning == replicated[-1]:  # the whole cache's figures, once (after every layer shape's)
            warning = f"{warning.rstrip('.')}; {_replication(spec, dep.tp, precision, dep.dcp or 1)}."
        findings.add("warning", "tp", warning)
    return sharding


def _sharding_degrees(spec: ModelSpec, dep: Deployment, spell) -> str:
    """The TP degrees within one node whose heads shard as vLLM splits them (the rules `kvplan check --suggest` lists
    by: plan/sharding.valid_tp_degrees), said as a remedy: "would shard with tp 1, 2 or 4 within one H100-80GB-SXM
    node"."""
    device = device_for(dep)
    degrees = [str(s.tp) for s in valid_tp_degrees(spec, device.node_gpus)]
    if not degrees:
        return f"no {spell('tp')} within {device.node_words(spell)} shards it"
    listed = degrees[0] if len(degrees) == 1 else f"{', '.join(degrees[:-1])} or {degrees[-1]}"
    return f"would shard with {spell('tp')} {listed} within {device.node_words(spell)}"


def _served_warnings(spec: ModelSpec, dep: Deployment, device, spell, resolved: dict, findings: Findings) -> None:
    """What vLLM runs yet warns of, or ignores, as estimate says it: a TP group past one node, a length past the
    model's, flags the model or the release ignores, a model folder or Hub listing kvplan could not read whole, the
    pooling runner, the Transformers backend, and what the cache flags did: each a warning on the key it speaks of
    (a prefix-caching flag that changes nothing planned: a notice)."""
    add = findings.add
    past_node = node_note(dep.tp, device, spell)
    if past_node:  # vLLM runs it (its Ray executor warns): a warning, not a failure
        add("warning", "tp", past_node)
    length_limit, limit_key = served_length_limit(spec)
    if length_limit and dep.context > length_limit:
        limit = limit_key if spec.length_key != "sliding_window" else \
            f"the sliding window {window_capper(spec, spell)} caps the length to"
        add("warning", "context", f"context {dep.context} exceeds {limit} "
                                  f"({length_limit}); vLLM serves longer sequences only with RoPE "
                                  f"scaling or VLLM_ALLOW_LONG_MAX_MODEL_LEN.")
    engine_flags = getattr(engine_for(dep), "flags", None)  # the ideal engine refuses the multimodal flags itself
    unused = "" if engine_flags is None else unused_media_note(spec, engine_flags, spell, engine_for(dep).version)
    if unused:  # vLLM ignores them on a text-only model: a warning on the first one's key, not a failure
        add("warning", engine_flags.unused_on(spec, engine_for(dep).version)[0], unused + ".")
    ignored = ignored_note(engine_flags.lora_ignored, spell) if engine_flags is not None else ""
    if ignored:  # vLLM ignores them without enable_lora: a warning on the first one's key, not a failure
        add("warning", engine_flags.lora_ignored[0], ignored + ".")
    for note in unloadable_notes(spec.notes):  # a folder with shards missing: the plan prices what vLLM won't load
        add("warning", "model", note + ".")
    for note in unchecked_notes(spec.notes):  # the Hub said nothing of hf_quant_config.json or modules.json
        add("warning", "model", note + ".")
    pooled = pooling_note(spec, release_of(engine_for(dep)), spell)  # estimate's rule note
    if pooled:  # on the runner / convert key that picked the pooling runner, else the model's line
        add("warning", pooling_field(spec, release_of(engine_for(dep))) or "model", pooled + ".")
    unlisted = unlisted_note(spec, release_of(engine_for(dep)))  # estimate's note: the Transformers backend decides
    if unlisted:
        add("warning", "model", unlisted + ".")
    dropped = ignored_pooler_note(spec, release_of(engine_for(dep)), spell)
    if dropped:  # names vLLM 0.11-0.15 drop without a word: a warning on the pooler_config key, not a failure
        add("warning", "pooler_config", dropped + ".")
    for level, key, said in cache_flag_findings(dep, spec, resolved, spell):  # what the cache flags did, on their key
        add(level, key, said + ".")


def _notices(spec: ModelSpec, dep: Deployment, found: Capacity, spell, findings: Findings) -> None:
    """Last, what estimate says beside its figures: budget settings kv_budget makes moot, a kv_budget without its
    unit (a warning), and the notes on the model, the engine and the plan."""
    moot = ignored_beside_kv_budget(dep.kv_budget, dep.gpu_util, dep.gpu_memory, spell)
    if moot:
        findings.add("notice", "gpu_util" if dep.gpu_util is not None else "gpu_memory", moot + ".")
    unitless = small_budget_note(found.explained.budget, spell) if found.explained is not None else ""
    if unitless:  # a kv_budget missing its unit, as estimate warns of it
        findings.add("warning", "kv_budget", unitless)
    for key, said in spec_notices(spec, spell) + engine_notices(dep, found.planned, spell) + \
            plan_notices(dep, found.explained, spell):  # estimate's, last
        findings.add("notice", key, said if said.endswith(".") else said + ".")


def _replication(spec: ModelSpec, tp: int, precision, dcp: int = 1) -> str:
    """A token's KV over the group against one unreplicated copy; under -dcp D a token is on tp / D of the GPUs."""
    group, single = token_bytes(spec, tp, precision) * tp // dcp, token_bytes(spec, 1, precision)
    return (f"at kv_dtype {precision.name} one token takes {size(group)} of KV across the {tp} GPUs vs "
            f"{size(single)} unreplicated ({group} vs {single} bytes, +{group - single})")


def _eplb_key(dep: Deployment) -> str:
    """The deployment's key that set EPLB's redundant experts (a refusal of the layout points at its line)."""
    balancer = engine_for(dep).flags.enable_eplb
    return balancer.spelling if balancer is not None and balancer.redundant else "enable_eplb"


def _refuse_unpriced_lora(spec, engine) -> None:
    """enable_lora on a model kvplan does not price LoRA for (vllm_lora.layout: FieldError, exit 2), before the sharding
    is judged: estimate meets it building the budget, which it does at every TP degree, a refused one included, so
    a deployment at a TP degree that does not split the heads is bad input there too, not a failed rule (exit 1). A
    class vLLM refuses LoRA for (vllm_lora.lora_refusal) stays the plan's refusal, as in estimate (adapter_slots)."""
    from ...engines.vllm_lora import layout, lora_refusal

    config = engine.flags.enable_lora
    if config and lora_refusal(spec, engine.version, config) is None:
        layout(spec, engine.version)

