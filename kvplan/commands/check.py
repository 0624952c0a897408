"""`kvplan check`: the CI gate. Each deployment runs through the sharding rules (plan/sharding.py) and, when
it names a min_concurrency, through the capacity plan. The result says per deployment what passed, what failed
and on which key of the deployments file; `ok` is false when any rule fails."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Callable, Optional

from ..errors import FieldError, KvplanError, RefusedInput, quote, respelled, values_as_yaml
from ..gpu.detect import choose_gpu
from ..model.precision import resolve_kv_dtype
from ..model.files import unloadable_notes
from ..model.hub import unchecked_notes
from ..model.quantization import apply_weight_precision, settings_file_method
from ..model.sources import resolve
from ..model.spec import ModelSpec, identical
from ..engines import EngineFlags, get_engine, unused_media_note
from ..engines.vllm_lora import ignored_note
from ..engines.vllm_graphs import refuse_capture_flags
from ..engines.figures import figure_columns, later_figure_columns
from ..engines.vllm_config_read import refuse_encoder_only, unlisted_note
from ..engines.vllm_v1_oracle import refuse_v0_unmodelled
from ..engines.vllm_auto_fit import NO_TOKEN, no_fit_refusal, refuse_auto_fit
from ..engines.vllm_pooling import pooling_field, pooling_note, refuse_st_pooling, runner_name
from ..engines.vllm_cache_flags import with_cache_flags
from ..engines.vllm_cache_notes import cache_flag_notes
from ..engines.vllm_prefix_flag import prefix_notes
from ..engines.vllm_rope_len import rope_note
from ..engines.vllm_gemma2_window import window_capper
from ..engines.vllm_pooler_config import ignored_note as ignored_pooler_note, refuse_pooler_config
from ..engines.vllm_runner_flag import refuse_runner
from ..engines.vllm_speculative import served
from ..engines.vllm_versions import release_transformers
from ..plan.budget import prompt_limit
from ..plan.capacity import token_bytes
from ..plan.catalog import with_node_gpus
from ..plan.max_len import default_max_model_len, served_length_limit
from ..plan.plan import (MAX_TP, fitting_remedies, length_note, moe_layout_of, plan, prompt_for,
                         prompt_limit_warning, raised_cap, reaching, release_of, node_note, remedy_reach,
                         with_layout_errors)
from ..plan.sharding import shard, valid_tp_degrees
from .estimate import auto_fitted, bounded_prefill, budget_function, ignored_beside_kv_budget, refused_length
from ..render.estimate import (cache_dtype_note, concurrency_note, drafter_line, graph_reserve_note, lora_graphs_note,
                               held_none_reason, override_fix, override_note, parallel_capacity, resident_line,
                               small_budget_note, start_up_price, v0_notes, vision_note, weights_exceed)
from ..render.text import size
from .deployments import AUTO_FIT, VALID_KEYS, Deployment, one_line



@dataclass(frozen=True)
class Finding:
    level: str  # "error", "warning" or "notice" (what estimate explains of the same plan; never fails or warns)
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
        """The same columns in the same order whatever the deployments (a refused, unsharded or data-parallel
        one included): CHECK_COLUMNS, then anything else a row carries, sorted."""
        from ..render.formats import flatten

        flat = [flatten({k: v for k, v in r.items() if k not in ("findings", "engine")}) for r in self.results]
        engines = [{k: v for k, v in (r["engine"] or {}).items() if v is not None} for r in self.results]
        flat = [{**row, **flatten(engine, "engine_")} for row, engine in zip(flat, engines)]
        extra = sorted({key for row in flat for key in row} - set(CHECK_COLUMNS))
        return [{column: row.get(column) for column in CHECK_COLUMNS + tuple(extra)} for row in flat]


# check's CSV / HTML columns: a deployment's fields and numbers, then the engine's figures, each present on every
# row so that a script reads a column by position whatever the deployments (refused, unsharded, data-parallel);
# `runner` (generate | pooling), then the engine's later keys (the remedy's release range), last, where a new column
# leaves the others' places alone
CHECK_COLUMNS = ("name", "model", "model_id", "file", "line", "tp", "pp", "pp_partition", "passed", "errors",
                 "warnings", "num_attention_heads", "num_key_value_heads", "mla", "kv_heads_per_gpu",
                 "kv_heads_replicated", "context", "kv_dtype", "gpu", "node_gpus", "node_gpus_source",
                 "kv_budget_bytes_per_gpu", "kv_bytes_per_token",
                 "kv_bytes_per_token_per_gpu", "kv_bytes_per_sequence_per_gpu", "max_concurrency",
                 "max_concurrency_limited_by", "data_parallel_size", "max_concurrency_total", "min_concurrency",
                 "block_size", "quantization", "dtype", "max_num_seqs", "max_num_batched_tokens", "pp_layer_partition",
                 "gpu_memory") + tuple(f"engine_{key}" for key in figure_columns()) + ("runner",) \
    + tuple(f"engine_{key}" for key in later_figure_columns())


@dataclass(frozen=True)
class SuggestResult:
    report: dict
    view = "suggest"

    def to_dict(self) -> dict:
        return self.report

    def rows(self) -> list:
        return self.report["valid_tp"]


def _resolve(dep: Deployment, resolved: dict) -> ModelSpec:
    """The deployment's model, read once per check() call: `resolved` (that call's, keyed by model, revision,
    settings file and the transformers the deployment's release installs, which fills the fields its config leaves
    out: vllm_versions.release_transformers) is shared by its deployments and their remedies under other releases,
    and a config.json edited between calls is read again. A model that is no text is resolve()'s to refuse, as
    estimate's is, not a key."""
    settings = settings_file_method(dep.quantization)
    if not isinstance(dep.model, str):
        return resolve(dep.model, dep.revision, quantization=settings)  # FieldError('model')
    try:
        version = get_engine(dep.engine).version
    except FieldError:  # a bad engine is said where the deployment's engine is read, after its model's errors
        version = None
    transformers = release_transformers(version)
    key = (dep.model, dep.revision, settings, transformers)
    if key not in resolved:
        resolved[key] = resolve(dep.model, dep.revision, quantization=settings, transformers=transformers)
    return resolved[key]


def _spec_for(dep: Deployment, resolved: dict) -> ModelSpec:
    """The model as the deployment serves its weights: its dtype, then its quantization (as estimate's; awq / gptq
    also read the settings file vLLM reads beside a config.json with none: model/sources.py resolve)."""
    try:
        spec = with_cache_flags(replace(_resolve(dep, resolved), runner=dep.runner, convert=dep.convert,
                                        pooler_config=dep.pooler_config), dep)  # as estimate's flags
        refuse_encoder_only(spec, get_engine(dep.engine).version)  # said on the model's line, as any model error
        refuse_v0_unmodelled(spec, get_engine(dep.engine).version)  # V0 kvplan does not model: not planned
        refuse_runner(spec, get_engine(dep.engine).version)  # a runner the class cannot do, as vLLM's ModelConfig
        refuse_pooler_config(spec, get_engine(dep.engine).version)  # a field or type the release refuses
        refuse_st_pooling(spec, get_engine(dep.engine).version)  # 0.11-0.13 stop on a Pooling module's config.json
    except KvplanError as exc:
        if dep.file is None or getattr(exc, "field", None) == "quantization":
            raise  # a refusal of the quantization key: check() says that key's line
        # a refused runner or pooler config: on its key, with the keys the file names (RefusedInput)
        key, said = (exc.field, exc.spelled()) if isinstance(exc, RefusedInput) and exc.field else ("model", exc)
        raise KvplanError(one_line(f"{dep.file}:{dep.line_of(key)}: deployment {dep.name!r} field '{key}': "
                                   f"{said}")) from None
    return apply_weight_precision(spec, dep.quantization, dep.dtype)  # FieldError: check() says the key's line


def _cache_flag_findings(dep: Deployment, spec: ModelSpec, resolved: dict, spell) -> list:
    """(key, sentence) for each of the Mamba dtypes, --disable-sliding-window, --enable-prefix-caching and
    --mamba-block-size the deployment sets: estimate's notes (vllm_cache_notes.cache_flag_notes,
    vllm_prefix_flag.prefix_notes), each on the key it speaks of."""
    found = []
    if dep.mamba_cache_dtype or dep.mamba_ssm_cache_dtype or dep.disable_sliding_window:
        said = cache_flag_notes(_resolve(dep, resolved), spec, dep, release_of(_engine(dep)), spell)
        keys = ([next(k for k in ("mamba_cache_dtype", "mamba_ssm_cache_dtype") if getattr(dep, k))]
                if dep.mamba_cache_dtype or dep.mamba_ssm_cache_dtype else []) + \
            (["disable_sliding_window"] if dep.disable_sliding_window else [])
        found += zip(keys, said)
    # prefix_notes says the prefix-caching flag first, then the Mamba block, each only where given
    keys = [k for k in ("enable_prefix_caching", "mamba_block_size") if getattr(dep, k) is not None]
    return found + list(zip(keys, prefix_notes(spec, dep, release_of(_engine(dep)), spell)))


def _plan_notices(dep: Deployment, result, spell) -> list:
    """(key, sentence) for what estimate's footnotes explain of the same plan (render/estimate.py, the one render
    path): the requests held against vLLM's logged concurrency (else a max_num_seqs cap), the DP / EP ranks the
    figures are one of, a KV cache sized by num_gpu_blocks_override (and what it would take), a CUDA-graph reserve
    left out, LoRA's second graph capture, the vision tower's profile pass. `result`: the deployment's Plan, None
    where there is none to explain (sharding failed, vLLM refuses it, or it crashes)."""
    if result is None:
        return []
    capped = result.max_concurrency_limited_by == "max_num_seqs" and dep.max_num_seqs is not None
    eager = next((k for k in ("enforce_eager", "max_cudagraph_capture_size", "cudagraph_capture_sizes")
                  if getattr(dep, k)), None)
    ranks = next((k for k in ("dp", "enable_expert_parallel", "enable_eplb", "eplb_config") if getattr(dep, k)), "dp")
    said = [("max_num_seqs" if capped else None, concurrency_note(result, spell) or resident_line(result, spell)),
            (ranks, parallel_capacity(result, spell) if result.parallel is not None else ""),
            ("num_gpu_blocks_override", override_note(result, spell).removeprefix("; ")),
            ("num_gpu_blocks_override", _override_fix(result, spell)),
            (eager, graph_reserve_note(result.budget)),
            ("enable_lora", lora_graphs_note(result.budget).removeprefix("; ")),
            (None, vision_note(result.budget, spell).removeprefix("; "))]
    return [(key, respelled(text, BUDGET_FLAGS, spell)) for key, text in said if text]


# the flags the budget terms' own sources name as the command line writes them (engines/vllm_budget.py); the
# notes render/estimate.py words (vision_note, override_note) spell theirs through the caller already
BUDGET_FLAGS = (("enforce_eager", "--enforce-eager"),)


def _override_fix(result, spell) -> str:
    """What num_gpu_blocks_override would have to be where it alone keeps every request out (estimate's footnote,
    render/estimate.py override_fix); '' otherwise."""
    blocked = not result.fits and not weights_exceed(result) and override_note(result)
    return override_fix(result, spell) if blocked else ""


def _engine_notices(dep: Deployment, result, spell) -> list:
    """(key, sentence) for estimate's notes on the engine that serves the plan, refused or not: the GPUs of one engine
    core under -pcp (tp x pp x pcp, Plan.core_gpus; with -dp parallel_capacity says it), and the V0 fallback of a
    release from 0.8 (render/estimate.py v0_notes). `result`: the deployment's Plan, None where sharding failed."""
    if result is None:
        return []
    said = [("engine", note) for note in v0_notes([result])]
    if dep.pcp and result.parallel is None:
        said.insert(0, ("pcp", f"{spell('pcp')} {dep.pcp}: one engine core is tp {dep.tp} x pp {dep.pp or 1} x pcp "
                               f"{dep.pcp} = {result.core_gpus} GPUs (vLLM's world size), the figures each GPU's"))
    return said


def _spec_notices(spec: ModelSpec, spell) -> list:
    """(key, sentence) for estimate's notes on the model as served that explain a setting: the length vLLM derives
    from a RoPE scaling (vllm_rope_len.rope_note), the drafter's memory (render/estimate.py drafter_line)."""
    said = [("context", rope_note(spec)),
            ("speculative_config", drafter_line(spec, spell) if spec.draft is not None else "")]
    return [(key, text) for key, text in said if text]


def _device(dep: Deployment):
    """The deployment's GPU, with its gpu_memory and gpus_per_node in place of the catalog's (as estimate's
    --gpu-memory and --gpus-per-node)."""
    device = with_node_gpus(choose_gpu(dep.gpu), dep.gpus_per_node)
    return device if dep.gpu_memory is None else replace(device, memory_bytes=dep.gpu_memory)


def _settings(dep: Deployment) -> dict:
    """plan()'s engine settings the deployment sets: its layer partition and batch limits (None: the engine's)."""
    return dict(pp_partition=dep.pp_layer_partition, max_num_seqs=dep.max_num_seqs,
                max_num_batched_tokens=dep.max_num_batched_tokens)


def _prompt_limit_note(spec: ModelSpec, dep: Deployment, device, spell) -> str:
    """plan()'s warning where the engine serves no prompt of the whole length (plan.prompt_limit_warning), "" where
    it does."""
    engine = _engine(dep)
    limit = prompt_limit(engine, spec, device, dep.context, dep.pp or 1, dep.max_num_batched_tokens,
                         dep.max_num_seqs, dep.kv_dtype)
    return prompt_limit_warning(engine, limit, dep.context, spell)


def _budget_for(spec: ModelSpec, dep: Deployment):
    """budget_for(tp[, stage]) as plan() takes it: vLLM's budget of one GPU of each pipeline stage (its own
    layers and weights: embeddings on the first stage, the LM head on the last), or the deployment's kv_budget
    on every GPU."""
    device = _device(dep)
    return device, budget_function(spec, engine=_engine(dep), device=device, gpu_util=dep.gpu_util,
                                   context=dep.context, kv_budget=dep.kv_budget, gpu_memory=dep.gpu_memory,
                                   max_num_batched_tokens=dep.max_num_batched_tokens, max_num_seqs=dep.max_num_seqs,
                                   block_size=dep.block_size,
                                   asked_context=dep.fitted_from if dep.fitted_from != dep.context else None)


def _engine(dep: Deployment):
    from ..engines import enable_eplb, eplb_spelled_off, ignored_lora
    from ..engines.vllm_dcp import check_tp
    from .deployments import lora_settings

    check_tp(dep.dcp, (dep.tp,))  # -dcp dividing the deployment's TP degree
    balancer = enable_eplb(dep.enable_eplb, dep.eplb_config, dep.num_redundant_experts)
    adapters = lora_settings(vars(dep))
    ignored = ignored_lora(dep.enable_lora, dep.max_loras, dep.max_lora_rank, dep.lora_dtype, dep.fully_sharded_loras)
    return get_engine(dep.engine, EngineFlags(dep.enforce_eager, dep.skip_mm_profiling, dep.language_model_only,
                                              dep.limit_mm_per_prompt, dep.mm_encoder_tp_mode, dep.cpu_offload_gb,
                                              num_gpu_blocks_override=dep.num_gpu_blocks_override,
                                              speculative=dep.speculative_config, dp=dep.dp, dcp=dep.dcp,
                                              dcp_interleave=dep.dcp_interleave,
                                              dcp_comm_backend=dep.dcp_comm_backend,
                                              dcp_q_replicate=dep.dcp_q_replicate, pcp=dep.pcp,
                                              enable_expert_parallel=dep.enable_expert_parallel,
                                              mm_processor_kwargs=dep.mm_processor_kwargs, enable_eplb=balancer,
                                              eplb_spelled_off=eplb_spelled_off(dep.enable_eplb, dep.eplb_config,
                                                                                dep.num_redundant_experts),
                                              enable_lora=adapters, lora_ignored=ignored,
                                              pooler_config=dep.pooler_config,
                                              max_cudagraph_capture_size=dep.max_cudagraph_capture_size,
                                              cudagraph_capture_sizes=dep.cudagraph_capture_sizes,
                                              mamba_cache_dtype=dep.mamba_cache_dtype,
                                              mamba_ssm_cache_dtype=dep.mamba_ssm_cache_dtype,
                                              disable_sliding_window=dep.disable_sliding_window,
                                              enable_prefix_caching=dep.enable_prefix_caching,
                                              mamba_block_size=dep.mamba_block_size, kv_budget=dep.kv_budget))


def _replication(spec: ModelSpec, tp: int, precision, dcp: int = 1) -> str:
    """A token's KV over the group against one unreplicated copy; under -dcp D a token is on tp / D of the GPUs."""
    group, single = token_bytes(spec, tp, precision) * tp // dcp, token_bytes(spec, 1, precision)
    return (f"at kv_dtype {precision.name} one token takes {size(group)} of KV across the {tp} GPUs vs "
            f"{size(single)} unreplicated ({group} vs {single} bytes, +{group - single})")


def what_would_reach(spec: ModelSpec, dep: Deployment, budget_for, target: int, precision,
                     spell: Callable[[str], str], device=None, along: tuple = (), note=lambda _: "",
                     keep=lambda _: True) -> str:
    """The nearest remedies that hold `target` sequences (plan.fitting_remedies: each with max_num_seqs raised where
    the cap stops it; a multimodal deployment's text-only one), each with the changes `along` (the cap a caller has
    raised already), in the caller's words for every field each one changes; said first where none keeps to one
    node (plan.Reach). `note`: a clause after an option (plan.length_note); `keep(changes)`: whether a remedy found
    is offered (auto-fit's, _auto_reach)."""
    remedies = fitting_remedies(spec, dep.context, precision, dep.tp, dep.block_size, budget_for, target, dep.pp,
                                settings=dict(engine=_engine(dep), gpu=device, **_settings(dep)))
    remedies += [r for r in (_text_only_remedy(spec, dep, target),) if r]
    remedies = [r for r in remedies if keep(r)]
    reach = remedy_reach(spec, dep.tp, dep.pp, precision, device, release_of(_engine(dep)), _engine(dep))
    if not remedies:
        even = f", even with {_changes_in_words(along, spell)}" if along else ""
        return f"{reach.nothing(spell, 'reaches it')} on this budget{even}"
    short = reach.shortfall(remedies, spell, "reaches it")
    return (f"{short}; " if short else "") + "would fit with " + _options_in_words([r + along for r in remedies],
                                                                                    spell, note)


def _options_in_words(options: list, spell: Callable[[str], str], note=lambda _: "") -> str:
    """Remedies, each a tuple of (field, value) changes, as one list that reads one way: the changes every option
    shares said once ("tp 2, kv_dtype fp8 or context 288, each with max_num_seqs 1500"); otherwise options of
    several changes apart by "; or" ("tp 2; or kv_dtype fp8 and max_num_seqs 1500"), single ones by commas. `note`:
    a clause in parentheses after an option (plan.length_note)."""
    shared = tuple(c for c in options[0] if all(c in o for o in options)) if len(options) > 1 else ()
    own = [tuple(c for c in o if c not in shared) for o in options]
    if not all(own):  # an option that is only the shared changes: each said whole
        shared, own = (), options
    words = [_changes_in_words(changes, spell) + (f" ({note(whole)})" if note(whole) else "")
             for changes, whole in zip(own, options)]
    if any(len(changes) > 1 for changes in own):
        listed = "; or ".join(words)
    else:
        listed = ", ".join(words[:-1]) + (" or " if len(words) > 1 else "") + words[-1]
    return listed + (f", each with {_changes_in_words(shared, spell)}" if shared else "")


def _changes_in_words(changes: tuple, spell: Callable[[str], str]) -> str:
    """((tp, 2), (max_num_seqs, 1500)) as "tp 2 and max_num_seqs 1500", each field as `spell` writes it."""
    return " and ".join(_change_in_words(field, value, spell) for field, value in changes)


def _change_in_words(field: str, value, spell: Callable[[str], str]) -> str:
    if field == "language_model_only":  # a switch: its name alone
        return f"{spell(field)} (text only: no vision tower)"
    return f"{spell(field)} {value}"


def _text_only_remedy(spec: ModelSpec, dep: Deployment, target: int) -> Optional[tuple]:
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
        return _planned(spec, raised, dep.pp or 1, *_budget_for(spec, raised))

    try:
        return reaching((("language_model_only", True),), target, plan_with)
    except KvplanError:  # a release without the flag
        return None


def other_engine(dep: Deployment, resolved: dict, planned: Optional[ModelSpec] = None):
    """plan()'s other_engine for `dep`: the deployment under another release (a remedy's), as check plans it;
    `resolved`: the check() call's models (_resolve); `planned`: the spec the deployment itself is planned with."""
    built: list = [planned] if planned is not None else []  # the specs built so far: most releases serve it alike

    @lru_cache(maxsize=None)  # a remedy plans each release's range and the changes that fit at it
    def build(name: str, context: int):
        other = replace(dep, engine=name, context=context)
        spec = served(_spec_for(other, resolved), _engine(other), other.pp or 1)
        # an identical spec built for another release is that one, so that the memos keyed by a spec's identity
        # (plan._stage_specs, the engine's settings and stage-free budget terms) serve every release alike, as
        # estimate's one spec does
        spec = next((held for held in built if identical(held, spec)), spec)
        if not any(held is spec for held in built):
            built.append(spec)
        return (spec, _engine(other), _budget_for(spec, other)[1])
    return build


def refused_message(refusal, version: str, spell: Callable[[str], str]) -> str:
    """vLLM's refusal of a deployment's configuration (whatever the memory), in its own first sentence, and kvplan's
    remedy naming the field as `spell` writes it; vLLM's whole message where kvplan has no remedy of its own."""
    if not refusal.remedy:
        return f"vLLM {version} does not start: {refusal.reason.rstrip('.')}."
    return f"vLLM {version} does not start: {refusal.first_sentence}; {refusal.advice(spell)}."


def _refusal_key(dep: Deployment, refusal) -> str:
    """The deployment's key a configuration refusal lands on: its field, or, for a served dtype the deployment does
    not set (a T4's float32 Gemma 3 that fp8 weights refuse), the quantization that brought it."""
    field = refusal.field or "kv_dtype"
    if field == "dtype" and dep.dtype is None and dep.quantization is not None:
        return "quantization"
    return field


def _planned(spec: ModelSpec, dep: Deployment, pp: int, device, budget_for):
    """The deployment's plan, nothing suggested, no speed."""
    return plan(spec, context=dep.context, kv_dtype=dep.kv_dtype, tp=dep.tp, budget_for=budget_for,
                block_size=dep.block_size, suggest=False, speed=False, engine=_engine(dep), pp=pp, gpu=device,
                **_settings(dep))


def _fitted(spec: ModelSpec, dep: Deployment) -> Deployment:
    """--max-model-len auto (AUTO_FIT): the deployment at the length vLLM's auto-fit picks, planned from the model's
    own by the rule estimate plans it with (estimate.auto_fitted: each refusal's estimate until one starts), that
    length kept as fitted_from (vLLM builds the runner's buffers at it: _budget_for). Refused before vLLM 0.14.0,
    which has no auto-fit (vllm_auto_fit.refuse_auto_fit)."""
    refuse_auto_fit(release_of(_engine(dep)))
    own = default_max_model_len(spec)
    start = replace(dep, context=own, fitted_from=own)

    def plan_at(context: int, kv_dtype: str, tp: int, asked: Optional[int] = None):
        at = replace(start, context=context)
        return _planned(spec, at, at.pp or 1, *_budget_for(spec, at))
    return replace(start, context=auto_fitted(plan_at(own, dep.kv_dtype, dep.tp), plan_at).context)


def _fit_words(dep: Deployment, spell) -> str:
    """What vLLM's auto-fit made of the deployment's length, as estimate's note says it (render/estimate.py)."""
    if dep.fitted_from == dep.context:
        return f"{spell('context')} auto: the model's full length {dep.context} fits (vLLM's auto-fit keeps it)."
    return (f"{spell('context')} auto: vLLM's auto-fit reduces max_model_len from {dep.fitted_from} to {dep.context} "
            f"to fit the available KV cache memory; checked at that length.")


def _passes(dep: Deployment, target: int, resolved: dict) -> bool:
    """Whether `dep` (a deployment a remedy changed) starts and holds `target` requests at a length of at least its
    min_model_len: at the length auto-fit picks where its context is AUTO_FIT, as check_deployment plans it."""
    try:
        spec = served(_spec_for(dep, resolved), _engine(dep), dep.pp or 1)
        if dep.context == AUTO_FIT:
            dep = _fitted(spec, dep)
        held = no_fit_refusal(_planned(spec, dep, dep.pp or 1, *_budget_for(spec, dep)))
    except KvplanError:  # a change the engine's rules refuse as input: no remedy
        return False
    starts = held.engine is None or held.engine.refusal is None
    return held.tp_valid and starts and (held.max_concurrency or 0) >= target and \
        dep.context >= (dep.min_model_len or 0)


def _auto_reach(spec: ModelSpec, dep: Deployment, target: int, precision, spell, device, resolved: dict) -> str:
    """what_would_reach for a deployment under auto-fit. The remedies are searched at the length the gate needs: the
    model's own where more than one request is asked (a length auto-fit shortens is the longest that holds one
    request, so it holds no second), else min_model_len (or the model's own); each is offered only where the
    deployment so changed passes with auto-fit picking its length again (_passes), or, where the remedy names a
    context, at that fixed length in place of auto."""
    own = dep.fitted_from
    length = own if target > 1 or dep.min_model_len is None else min(dep.min_model_len, own)
    at = replace(dep, context=length, fitted_from=None)

    def keep(changes: tuple) -> bool:
        changed = replace(at, **dict(changes))
        if "pp" in dict(changes):  # vLLM's own layer split, as the remedy planned it
            changed = replace(changed, pp_layer_partition=None)
        return _passes(changed if "context" in dict(changes) else replace(changed, context=AUTO_FIT), target,
                       resolved)
    return what_would_reach(spec, at, _budget_for(spec, at)[1], target, precision, spell, device, keep=keep)


def _short_of_length(spec: ModelSpec, dep: Deployment, asked: Optional[int], target: int, precision, spell, device,
                     resolved: dict) -> str:
    """min_model_len's error: the length served below it, how it came to be (auto-fit's fit, the context set
    (`asked`), or the model's own, shorter), and what would serve it."""
    want, own = dep.min_model_len, default_max_model_len(spec)
    head = f"max_model_len {dep.context} < min_model_len {want}: "
    if dep.auto_fit:
        return (f"{head}vLLM's auto-fit reduces max_model_len from {dep.fitted_from} to {dep.context} to fit the "
                f"available KV cache memory; {_auto_reach(spec, dep, target, precision, spell, device, resolved)}")
    if want > own:
        return f"{head}the model's own max length is {own} (vLLM refuses a longer max_model_len without RoPE scaling)"
    said = f"{spell('context')} {asked} as set"  # the model's own length is shorter only where `want` is past it
    at = replace(dep, context=want)
    if _passes(at, target, resolved):
        return f"{head}{said}; {spell('context')} {want} holds {target}"
    reach = what_would_reach(spec, at, _budget_for(spec, at)[1], target, precision, spell, device,
                             keep=lambda changes: dict(changes).get("context", want) >= want)
    return f"{head}{said}; at {spell('context')} {want}, {reach}"


def _asked_eight_bits_kept(result) -> bool:
    """An fp8 cache asked and an fp8 one kept in the engine's own layout (DeepSeek-V3.2 / V4's fp8_ds_mla): the
    deployment gets the 8-bit cache it asked for, so check has nothing to warn of (estimate still says it)."""
    kept = result.engine.kv_cache_dtype if result.engine else ""
    return str(result.kv_dtype).startswith("fp8") and str(kept).startswith("fp8")


def _past_the_cap(spec: ModelSpec, dep: Deployment, have: int, where: str, precision, spell, device,
                  engines: int = 1) -> str:
    """min_concurrency above the max_num_seqs the scheduler runs at once (v1/core/sched/scheduler.py): planned again
    with the cap raised to min_concurrency (plan.raised_cap), whose per-request runner buffers shrink the cache, to
    say whether raising it is enough or what else is needed. `engines`: V0's virtual engines, each running
    max_num_seqs on its own (vllm_v0_pp.py), so the cap asked is min_concurrency / engines, rounded up."""
    want, flag = dep.min_concurrency, spell("max_num_seqs")

    def plan_with(changes: tuple):
        raised = replace(dep, **dict(changes))
        return _planned(spec, raised, dep.pp or 1, device, _budget_for(spec, raised)[1])

    cap, held = raised_cap(want, plan_with, engines)
    raised, words = replace(dep, **dict(cap)), _changes_in_words(cap, spell)  # max_num_seqs, the batched tokens
    runs = f"{flag} {have} sequences at once" if engines == 1 else \
        (f"{flag} {have // engines} sequences at once on each of V0's {engines} virtual engines (one a pipeline "
         f"stage), {have} in all")
    head = f"max_concurrency {have} < min_concurrency {want}: vLLM runs at most {runs} ({where})"
    if held.max_concurrency >= want:  # exactly there: more sequences mean more runner buffers, a smaller cache
        return f"{head}; it holds {want} with {words}."
    reach = what_would_reach(spec, raised, _budget_for(spec, raised)[1], want, precision, spell, device, along=cap)
    return f"{head}, and at {words} its KV cache holds {held.max_concurrency}; {reach}."


def _on_budget(budget: int) -> str:
    """The KV budget of one GPU in words: 'on a KV budget of 12.3 GiB per GPU', or, where the weights and the
    engine's other terms take the whole GPU, the shortfall, never a negative budget (as estimate's budget line says
    it: render/estimate.py)."""
    if budget > 0:
        return f"on a KV budget of {size(budget)} per GPU"
    return f"with nothing left for the KV cache, {size(-budget)} short per GPU"


def _eplb_key(dep: Deployment) -> str:
    """The deployment's key that set EPLB's redundant experts (a refusal of the layout points at its line)."""
    balancer = _engine(dep).flags.enable_eplb
    return balancer.spelling if balancer is not None and balancer.redundant else "enable_eplb"


def _refuse_unpriced_lora(spec, engine) -> None:
    """enable_lora on a model kvplan does not price LoRA for (vllm_lora.layout: FieldError, exit 2), before the sharding
    is judged: estimate meets it building the budget, which it does at every TP degree, a refused one included, so
    a deployment at a TP degree that does not split the heads is bad input there too, not a failed rule (exit 1). A
    class vLLM refuses LoRA for (vllm_lora.lora_refusal) stays the plan's refusal, as in estimate (adapter_slots)."""
    from ..engines.vllm_lora import layout, lora_refusal

    config = engine.flags.enable_lora
    if config and lora_refusal(spec, engine.version, config) is None:
        layout(spec, engine.version)


def check_deployment(dep: Deployment, spell: Callable[[str], str] = str, resolved: Optional[dict] = None) -> dict:
    """`resolved`: the models read so far in this check() call (_resolve); None: a dict of this deployment's own."""
    resolved = {} if resolved is None else resolved
    spec = served(_spec_for(dep, resolved), _engine(dep), dep.pp or 1)
    asked = dep.context if dep.context != AUTO_FIT else None  # the length the deployment sets (None: not one)
    if dep.context is None:  # vLLM's default: the model's own max length
        dep = replace(dep, context=default_max_model_len(spec))
    if hasattr(_engine(dep), "check_kv_dtype"):  # a value the release's --kv-cache-dtype does not list
        _engine(dep).check_kv_dtype(dep.kv_dtype)
    if hasattr(_engine(dep), "check_quantization"):  # nor its --quantization
        _engine(dep).check_quantization(dep.quantization)
    if hasattr(_engine(dep), "check_block_size"):  # nor its --block-size
        _engine(dep).check_block_size(dep.block_size)
    if getattr(_engine(dep), "flags", None) is not None:  # a capture pair no TP degree starts: before sharding
        refuse_capture_flags(_engine(dep).flags, _engine(dep).version, dep.max_num_batched_tokens)
        _refuse_unpriced_lora(spec, _engine(dep))
    if dep.context == AUTO_FIT:  # vLLM's auto-fit: the deployment is checked at the length vLLM would start with
        dep = _fitted(spec, dep)
    engine = _engine(dep)  # `auto` as the engine serves the model on this GPU (a T4's float16 or float32)
    viewed = engine.on_gpu(spec, _device(dep)) if hasattr(engine, "on_gpu") else spec
    precision = resolve_kv_dtype(dep.kv_dtype, viewed.dtype, viewed.auto_kv_dtype)
    layout = moe_layout_of(_engine(dep), spec, dep.tp)  # EPLB's refusals at this TP degree fail it as bad TP does
    tp_only = shard(spec, dep.tp)
    partition = dep.pp_layer_partition  # as plan() shards: a partition without pp is checked against pp 1
    sharding = with_layout_errors(shard(spec, dep.tp, dep.pp or (1 if partition else None), partition, spell,
                                        release_of(_engine(dep)), dep.dcp or 1), layout)
    findings = []

    def add(level: str, key: Optional[str], message: str) -> None:
        findings.append(Finding(level, key, one_line(message), dep.line_of(key)))

    refusals = layout.errors if layout is not None else ()
    stages = "pp_layer_partition" if partition else "pp"  # the key a pipeline error points at
    for error in sharding.errors:
        add("error", "tp" if error in tp_only.errors else _eplb_key(dep) if error in refusals else stages, error)
    replicated = [warning for warning in sharding.warnings if "replicated" in warning]
    for warning in sharding.warnings:
        if replicated and warning == replicated[-1]:  # the whole cache's figures, once (after every layer shape's)
            warning = f"{warning.rstrip('.')}; {_replication(spec, dep.tp, precision, dep.dcp or 1)}."
        add("warning", "tp", warning)
    device = _device(dep)
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
    engine_flags = getattr(_engine(dep), "flags", None)  # the ideal engine refuses the multimodal flags itself
    unused = "" if engine_flags is None else unused_media_note(spec, engine_flags, spell, _engine(dep).version)
    if unused:  # vLLM ignores them on a text-only model: a warning on the first one's key, not a failure
        add("warning", engine_flags.unused_on(spec, _engine(dep).version)[0], unused + ".")
    ignored = ignored_note(engine_flags.lora_ignored, spell) if engine_flags is not None else ""
    if ignored:  # vLLM ignores them without enable_lora: a warning on the first one's key, not a failure
        add("warning", engine_flags.lora_ignored[0], ignored + ".")
    for note in unloadable_notes(spec.notes):  # a folder with shards missing: the plan prices what vLLM won't load
        add("warning", "model", note + ".")
    for note in unchecked_notes(spec.notes):  # the Hub said nothing of hf_quant_config.json or modules.json
        add("warning", "model", note + ".")
    pooled = pooling_note(spec, release_of(_engine(dep)), spell)  # estimate's rule note
    if pooled:  # on the runner / convert key that picked the pooling runner, else the model's line
        add("warning", pooling_field(spec, release_of(_engine(dep))) or "model", pooled + ".")
    unlisted = unlisted_note(spec, release_of(_engine(dep)))  # estimate's note: the Transformers backend decides
    if unlisted:
        add("warning", "model", unlisted + ".")
    dropped = ignored_pooler_note(spec, release_of(_engine(dep)), spell)
    if dropped:  # names vLLM 0.11-0.15 drop without a word: a warning on the pooler_config key, not a failure
        add("warning", "pooler_config", dropped + ".")
    for key, said in _cache_flag_findings(dep, spec, resolved, spell):  # what the cache flags did, on their key
        add("warning", key, said + ".")

    pp = dep.pp or 1
    budget_for = _budget_for(spec, dep)[1]
    if dep.max_num_batched_tokens is not None:  # a chunk the file sets that splits prompts past what kvplan walks
        limit = refused_length(spec, _engine(dep), dep.context)  # a length vLLM refuses anyway: said too
        bounded_prefill([prompt_for(None, dep.context, spec, release_of(_engine(dep))).tokens],
                        dep.max_num_batched_tokens, 1, refused=(dep.context, limit) if limit else ())
    numbers = dict.fromkeys(("kv_bytes_per_token", "kv_bytes_per_token_per_gpu", "kv_bytes_per_sequence_per_gpu",
                             "max_concurrency", "max_concurrency_limited_by", "engine"))
    budget_per_gpu, explained, planned = None, None, None  # explained: the plan whose figures estimate's notes explain
    if sharding.valid:
        result = planned = plan(spec, context=dep.context, kv_dtype=dep.kv_dtype, tp=dep.tp, budget_for=budget_for,
                      block_size=dep.block_size, suggest=False, remedies=True, speed=False, engine=_engine(dep),
                      pp=pp, gpu=device, spell=spell, other_engine=other_engine(dep, resolved, spec),
                      **_settings(dep))
        if dep.auto_fit:  # where no length fits, vLLM's auto-fit refuses in its own words
            result = planned = no_fit_refusal(result)
        budget_per_gpu = result.kv_budget_bytes_per_gpu
        have, want = result.max_concurrency, dep.min_concurrency
        per_sequence = result.kv_bytes_per_sequence_per_gpu + result.state_bytes_per_sequence_per_gpu
        numbers = dict(kv_bytes_per_token=result.kv_bytes_per_token,
                       kv_bytes_per_token_per_gpu=result.kv_bytes_per_token_per_gpu,
                       kv_bytes_per_sequence_per_gpu=result.kv_bytes_per_sequence_per_gpu, max_concurrency=have,
                       max_concurrency_limited_by=result.max_concurrency_limited_by,
                       engine=result.engine.to_dict(spell) if result.engine else None)
        if result.parallel is not None:  # min_concurrency holds one DP rank to it, as max_concurrency is one rank's
            numbers.update(data_parallel_size=result.parallel.dp, max_concurrency_total=result.total_concurrency)
        shape = f"tp {dep.tp}" + (f", pp {pp} ({','.join(map(str, result.pp_partition))} layers)" if pp > 1 else "")
        who = "an ideal paged pool" if dep.engine == "none" else "vLLM"
        refusal = result.engine.refusal if result.engine else None
        # kvplan's footprint of a request, and vLLM's start-up price of one where its refusal quotes another
        priced = start_up_price(refusal, per_sequence)
        each = (f"kvplan's footprint of an admitted request: {size(per_sequence)} of KV per GPU" if priced
                else f"{size(per_sequence)} of KV each per GPU")
        fit = f" (vLLM's auto-fit, from the model's {dep.fitted_from})" \
            if dep.auto_fit and dep.fitted_from != dep.context else ""
        where = (f"{who} keeps {have} sequences of {dep.context} tokens{fit} resident {_on_budget(budget_per_gpu)} "
                 f"({each} at {shape}, kv_dtype {precision.name}"
                 + (f"; vLLM's start-up check prices one at {priced}" if priced else "") + ")")
        if result.parallel is not None and result.parallel.dp > 1:
            where += f", on each of {result.parallel.dp} DP ranks ({result.total_concurrency} in all)"
        crashes = refusal is not None and refusal.allocation_fails
        refused = refusal is not None and refusal.configuration  # whatever the memory: not a capacity question
        if crashes:  # a crash at start-up, not one of vLLM's refusals
            add("error", "num_gpu_blocks_override", refusal.reason + ".")
        elif refused:
            add("error", _refusal_key(dep, refusal), refused_message(refusal, result.engine.version, spell))
            if refusal.field == "context":  # the error on context says it, in vLLM's words
                findings[:] = [f for f in findings if not (f.level == "warning" and f.key == "context")]
        elif refusal is not None:
            where += f"; vLLM would refuse to start: {refusal.reason.split('. Try')[0]}"
        elif held_none_reason(result):  # it starts, yet never runs one: why, in estimate's words
            where += f"; it starts but holds no request: {held_none_reason(result)}"
        explained = None if refused or crashes else result  # a server that does not start has no figures to explain
        kept = "" if refused or crashes or _asked_eight_bits_kept(result) else cache_dtype_note(result)
        limited = None if refused or crashes else _prompt_limit_note(spec, dep, device, spell)
        if limited:  # vLLM serves no prompt of the whole length (0.7.1-0.7.3 on MLA): said on context
            add("warning", "context", limited)
        if kept:  # the engine stores another cache than kv_dtype asks (a kv_cache_scheme in vLLM 0.15-0.21, Falcon)
            add("warning", "kv_dtype", kept + ".")
        if want is not None and have < want and not refused and result.max_concurrency_limited_by == "max_num_seqs":
            add("error", "max_num_seqs" if dep.max_num_seqs is not None else "min_concurrency",
                _past_the_cap(spec, dep, have, where, precision, spell, device,
                              result.engine.virtual_engines if result.engine else 1))
        elif want is not None and have < want and not refused:  # a server that does not start holds no capacity
            need = f"{want} need about {size(want * per_sequence)} per GPU"
            groups = result.engine.num_kv_cache_groups if result.engine else 0
            if groups > 1 and want * per_sequence <= budget_per_gpu:  # bytes would hold them, the block groups don't
                need += f" as bytes, but vLLM's {groups} KV-cache block groups (equal pages, padded) hold only {have}"
            reach = _auto_reach(spec, dep, want, precision, spell, device, resolved) if dep.auto_fit else \
                what_would_reach(spec, dep, budget_for, want, precision, spell, device)
            add("error", "min_concurrency", f"max_concurrency {have} < min_concurrency {want}: {where}, and {need}; "
                                            f"{reach}.")
        elif want is None and have == 0 and not crashes and not refused:
            # vLLM refusing to start is a deployment that cannot work: an error without min_concurrency too; the
            # ideal pool (engine none) models no engine's start-up, so there it stays a warning
            level = "error" if refusal is not None else "warning"
            reach = _auto_reach(spec, dep, 1, precision, spell, device, resolved) if dep.auto_fit else \
                what_would_reach(spec, dep, budget_for, 1, precision, spell, device,
                                 note=length_note(result.engine, dep.context))
            add(level, None, f"not one sequence fits: {where}; {reach}"
                             + ("." if level == "error" else " (set min_concurrency to make capacity a rule)."))
        if dep.min_model_len is not None and dep.context < dep.min_model_len and not refused and not crashes:
            add("error", "min_model_len", _short_of_length(spec, dep, asked, max(want or 1, 1), precision, spell,
                                                           device, resolved) + ".")
        if dep.auto_fit and (refusal is None or not refusal.reason.startswith(NO_TOKEN)):
            add("notice", "context", _fit_words(dep, spell))
    moot = ignored_beside_kv_budget(dep.kv_budget, dep.gpu_util, dep.gpu_memory, spell)
    if moot:
        add("notice", "gpu_util" if dep.gpu_util is not None else "gpu_memory", moot + ".")
    unitless = small_budget_note(explained.budget, spell) if explained is not None else ""
    if unitless:  # a kv_budget missing its unit, as estimate warns of it
        add("warning", "kv_budget", unitless)
    for key, said in _spec_notices(spec, spell) + _engine_notices(dep, planned, spell) + \
            _plan_notices(dep, explained, spell):  # estimate's, last
        add("notice", key, said if said.endswith(".") else said + ".")
    errors = [f.message for f in findings if f.level == "error"]
    return {
        "name": dep.name,
        "model": dep.model,
        "model_id": spec.name,
        "file": dep.file,
        "line": dep.line,
        "tp": dep.tp,
        "pp": dep.pp,
        "pp_partition": _listed(sharding.stage_layers(spec.num_hidden_layers)),  # as estimate's plans give them
        "passed": not errors,
        "errors": errors,
        "warnings": [f.message for f in findings if f.level == "warning"],
        "findings": [{"level": f.level, "key": f.key, "line": f.line, "message": f.message} for f in findings],
        "num_attention_heads": spec.num_attention_heads,
        "num_key_value_heads": spec.kv_heads,
        "mla": spec.is_mla,
        "kv_heads_per_gpu": sharding.served_kv_heads_per_gpu,
        "kv_heads_replicated": sharding.replicated,
        "context": dep.context,
        **({"auto_fit": {"from": dep.fitted_from, "to": None if _no_length(planned) else dep.context}}
           if dep.auto_fit else {}),  # only under auto: the JSON's other keys stay as they were
        "kv_dtype": precision.name,
        "gpu": device.name if dep.kv_budget is None else None,
        "node_gpus": device.node_gpus,  # the node the remedies keep a TP group within, and where it comes from
        "node_gpus_source": device.node_source,
        "kv_budget_bytes_per_gpu": budget_per_gpu,
        **numbers,
        "runner": runner_name(spec, release_of(_engine(dep))),  # as estimate's plans say it, --engine none too
        "min_concurrency": dep.min_concurrency,
        **({"block_size": dep.block_size} if dep.block_size is not None else {}),  # only when set: the JSON's keys
        **_set_keys(dep),
    }


# the keys a row carries only when the deployment sets them (the JSON contract's other keys stay as they were)
SET_ONLY_KEYS = ("min_model_len", "quantization", "dtype", "max_num_seqs", "max_num_batched_tokens",
                 "pp_layer_partition", "gpu_memory", "dcp", "dcp_interleave", "dcp_comm_backend", "dcp_q_replicate",
                 "pcp")


def _no_length(planned) -> bool:
    """Whether auto-fit found no length at all (vLLM's auto-fit refusal, vllm_auto_fit.NO_TOKEN)."""
    refusal = getattr(getattr(planned, "engine", None), "refusal", None)
    return refusal is not None and refusal.reason.startswith(NO_TOKEN)


def _listed(value: Optional[tuple]) -> Optional[list]:
    return list(value) if value is not None else None


def _set_keys(dep: Deployment) -> dict:
    values = {key: getattr(dep, key) for key in SET_ONLY_KEYS}
    return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()
            if value is not None}


def check(deployments: list, spell: Callable[[str], str] = str) -> CheckResult:
    """Every deployment; suggestions name the fields as `spell` writes them (a deployments file's keys by
    default: tp 4, kv_dtype fp8, context 16384)."""
    results, resolved = [], {}  # resolved: each model read once in this call (_resolve)
    for dep in deployments:
        try:
            with values_as_yaml() if dep.file is not None else nullcontext():  # a file's values as it wrote them
                results.append(check_deployment(dep, spell, resolved))
        except FieldError as exc:  # an engine rule on a file's key (a release without the flag, pp with a drafter)
            if dep.file is None or exc.field not in VALID_KEYS:
                raise
            raise KvplanError(one_line(exc.spelled(f"{dep.file}:{dep.line_of(exc.field)}: deployment "
                                                   f"{quote(dep.name)} field '{exc.field}'"))) from None
    return CheckResult(results)


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
