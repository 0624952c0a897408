"""`kvplan estimate`: resolve the model, build one plan per (context, kv_dtype, tp)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache, partial
from typing import Callable, Optional, Union

from ..engines import EngineFlags, get_engine, unused_media_note
from ..engines.vllm_auto_fit import NO_TOKEN, no_fit_refusal, refuse_auto_fit
from ..engines.vllm_cache_notes import cache_flag_notes
from ..engines.vllm_config_read import model_length_refusal, refuse_encoder_only, unlisted_note
from ..engines.vllm_lora import lora_notes
from ..engines.vllm_v1_oracle import refuse_v0_unmodelled
from ..engines.vllm_pooling import pooling_note, refuse_st_pooling
from ..engines.vllm_pooler_config import ignored_note as ignored_pooler_note, refuse_pooler_config
from ..engines.vllm_chunked_flag import chunked_notes
from ..engines.vllm_prefix_flag import prefix_notes
from ..engines.vllm_runner_flag import refuse_runner
from ..engines.vllm_speculative import served
from ..engines.vllm_versions import release_transformers
from ..errors import FieldError, KvplanError
from ..gpu.detect import choose_gpu
from ..model.precision import check_kv_dtype
from ..model.quantization import apply_weight_precision
from ..model.sources import resolve
from ..model.spec import ModelSpec, identical
from ..plan.budget import batched_tokens, flag_budget
from ..plan.catalog import node_gpus, with_node_gpus
from ..plan.max_len import default_max_model_len
from ..plan.plan import check_input_len, plan, prompt_for
from ..plan.sharding import require_stage_counts
from ..units import parse_gpu_memory, parse_size, require_fraction, require_positive
from .describe import model_summary
from .sweep_plan import naming_plan


MAX_PLANS = 256
MAX_PREFILL_CHUNKS = 2**15  # prompt chunks priced one by one (plan/prefill.py, the engine's admission): per run
MAX_LAYER_PLANS = 2**13  # plans x decoder layers per run: the engine model walks every layer of a plan ~10 times


@dataclass(frozen=True)
class EstimateResult:
    spec: ModelSpec
    plans: list
    spell: Callable[[str], str] = str  # field -> the caller's name for it (a flag on the command line)
    default_context: bool = False  # no context was given: the model's own max length, as vLLM
    curves: tuple = ()  # commands/curve.py Curves, when a chart was asked for
    auto_fitted: Optional[tuple] = None  # with auto-fit: (plan index, the model's own length) of plans it shortened
    # the GPU and the engine model planned on (not in the JSON): what the GPU serves the model in, and which weight
    # quantisation the engine refuses there, for the text's heading and advice
    gpu: Optional[object] = None
    engine: Optional[object] = None
    notes: tuple = ()  # what the run's flags did not change (ignored_beside_kv_budget), for the text's notes
    view = "estimate"

    def to_dict(self) -> dict:
        data = {"model": model_summary(self.spec), "plans": self.rows()}
        if self.curves:
            data["curves"] = [c.to_dict() for c in self.curves]
        return data

    def rows(self) -> list:
        rows = [p.to_dict(self.spell) for p in self.plans]
        if self.auto_fitted is None:  # only under auto: the JSON's other keys stay as they were, as check's
            return rows
        fitted = dict(self.auto_fitted)
        return [after_context(row, "auto_fit", auto_fit_record(fitted.get(i, p.context), p.context, p))
                for i, (row, p) in enumerate(zip(rows, self.plans))]

    def csv_rows(self) -> list:
        """rows() with the engine's figures in the columns check's CSV writes (figure_columns) and decode's and
        prefill's in theirs, whatever the plans: flattened from the plans alone, a refusal's columns came and went
        with a refusal, and a plan without a record (an unshardable TP degree, --engine none, -c 1's untimed
        prompt) left one empty column in its place, so a script's column moved from one run to the next."""
        from ..engines.figures import figure_columns, later_figure_columns
        from ..plan.prefill import prefill_columns
        from ..plan.speed import decode_columns
        from ..render.formats import flatten

        fixed = {"engine": figure_columns() + later_figure_columns(), "decode": decode_columns(),
                 "prefill": prefill_columns()}

        def cells(columns: tuple, record: Optional[dict]) -> dict:  # a null record inside (a refusal of None) is
            return dict.fromkeys(columns) | {k: v for k, v in flatten(record or {}).items()  # its own columns
                                             if k in columns or v is not None}

        return [{**row, **{key: cells(columns, row[key]) for key, columns in fixed.items()}} for row in self.rows()]


def after_context(row: dict, key: str, value) -> dict:
    """`row` with `key` right after its context, where check's rows carry it too."""
    items = list(row.items())
    at = next((i + 1 for i, (name, _) in enumerate(items) if name == "context"), len(items))
    return dict(items[:at] + [(key, value)] + items[at:])


def auto_fit_record(asked: int, length: int, planned) -> dict:
    """The JSON's `auto_fit` under --max-model-len auto, estimate's plans and check's rows alike: the length auto-fit
    started from (the model's own) and the one it picked, None where no length holds a token (no_length)."""
    return {"from": asked, "to": None if no_length(planned) else length}


def no_length(planned) -> bool:
    """Whether auto-fit found no length at all (vLLM's auto-fit refusal, vllm_auto_fit.NO_TOKEN)."""
    refusal = getattr(getattr(planned, "engine", None), "refusal", None)
    return refusal is not None and refusal.reason.startswith(NO_TOKEN)


def ignored_beside_kv_budget(kv_budget, gpu_util, gpu_memory, spell: Callable[[str], str] = str) -> str:
    """The GPU settings a KV budget given outright makes moot, in one sentence; '' where none was given. vLLM takes
    --kv-cache-memory-bytes as the cache's size and skips its memory profile: "kv_cache_memory_bytes (when
    not-None) ignores gpu_memory_utilization" (0.32.0 config/cache.py:257-264, v1/worker/gpu_worker.py:649-673);
    the GPU's memory (kvplan's --gpu-memory) then enters no term either."""
    if kv_budget is None:
        return ""
    moot = [spell(field) for field, value in (("gpu_util", gpu_util), ("gpu_memory", gpu_memory)) if value is not None]
    if not moot:
        return ""
    verb = "changes" if len(moot) == 1 else "change"
    why = "vLLM sizes the KV cache as given" + (" and ignores gpu_memory_utilization" if gpu_util is not None else "")
    return (f"{' and '.join(moot)} {verb} nothing beside {spell('kv_budget')}: {why}"
            + ("; the GPU's memory enters no term" if gpu_memory is not None else ""))


def budget_function(spec: ModelSpec, *, engine, device, gpu_util: Optional[float], context: int,
                    kv_budget: Optional[int] = None, gpu_memory: Optional[int] = None,
                    max_num_batched_tokens: Optional[int] = None, max_num_seqs: Optional[int] = None,
                    block_size: Optional[int] = None, asked_context: Optional[int] = None):
    """budget_for(tp[, stage][, kv_dtype][, pp]) as plan() takes it, cached: the engine's budget of one GPU for the
    --kv-cache-dtype served (plan.served_budget; `pp` where a pipeline cannot be laid out), or the given one.
    `block_size`: --block-size; `asked_context`: the length asked where --max-model-len auto plans `context`.
    budget_for.at(context=..., block_size=...): the same deployment's at another length or block size (a remedy's),
    for vLLM builds buffers the budget counts at both (engines/vllm_budget.py runner_state)."""
    asked = dict(engine=engine, device=device, gpu_util=gpu_util, context=context, kv_budget=kv_budget,
                 gpu_memory=gpu_memory, max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs,
                 block_size=block_size, asked_context=asked_context)

    @lru_cache(maxsize=None)
    def budget_for(tp: int, stage=None, kv_dtype: str = "auto", pp: int = 1):
        if kv_budget is not None:
            return flag_budget(kv_budget, None if stage is None else stage.index)
        return engine.budget(spec, tp, device, gpu_util, gpu_memory=gpu_memory, stage=stage, context=context,
                             max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs,
                             block_size=block_size, asked_context=asked_context, kv_dtype=kv_dtype, pp=pp)

    budget_for.at = lambda **changes: budget_function(  # a new length is the one asked: no auto-fit behind it
        spec, **{**asked, **changes, **({"asked_context": None} if "context" in changes else {})})
    return budget_for


def estimate(model: str, *, contexts: Optional[list] = None, kv_dtypes: list = ("auto",), tps: list = (1,),
             block_size: Optional[int] = None,
             kv_budget: Optional[Union[int, float, str]] = None, gpu: Optional[str] = None,
             gpu_memory: Optional[Union[int, float, str]] = None,
             gpu_util: Optional[float] = None, max_num_batched_tokens: Optional[int] = None,
             max_num_seqs: Optional[int] = None, engine: str = "vllm", pp: int = 1,
             pp_partition: Optional[tuple] = None, revision: Optional[str] = None, batches: tuple = (),
             quantization: Optional[str] = None, dtype: Optional[str] = None, input_len: Optional[int] = None,
             spell: Callable[[str], str] = str, chart: bool = False, auto_fit: bool = False,
             flags: EngineFlags = EngineFlags(), gpus_per_node: Optional[int] = None) -> EstimateResult:
    """Plans for the cross product of contexts (default: the model's own max length, as vLLM), kv_dtypes and
    tps. `chart`: also the concurrency curves behind `--chart` and `--format html` (commands/curve.py).
    `auto_fit`: vLLM's `--max-model-len auto` (or -1): start from the model's own length and, where the engine
    would refuse it, plan the length vLLM's auto-fit picks (kv_cache_utils._auto_fit_max_model_len: the same
    estimate its refusal names). `flags`: the engine's flags that change its budget (--enforce-eager,
    --skip-mm-profiling, --language-model-only: engines.EngineFlags). `gpus_per_node`: the GPUs of one node in place
    of the catalog's (GPU.node_gpus), which the remedies keep a TP group within."""
    # a value given twice is planned once (-c 8K,8192, --kv-cache-dtype fp8,fp8, -tp 2,2); distinct_plans drops the
    # plans two spellings make alike
    contexts = distinct(contexts or []) or None
    kv_dtypes, tps = distinct(kv_dtypes, _kv_spelling), distinct(tps)
    budget_bytes = parse_size(kv_budget, "kv_budget") if kv_budget is not None else None
    flags = replace(flags, kv_budget=budget_bytes)  # the release's rules refuse it before 0.10.2 (FLAG_SINCE)
    engine_model = get_engine(engine, flags)
    if gpu_util is not None:
        require_fraction("gpu_util", gpu_util)
    sweep = len(contexts or [0]) * len(kv_dtypes) * len(tps)
    if sweep > MAX_PLANS:  # bounded work: each plan may search TP degrees and context lengths
        raise KvplanError(f"the sweep asks for {sweep:,} plans (contexts x KV dtypes x TP degrees); at most "
                          f"{MAX_PLANS} per run.")
    if block_size is not None:
        # imported here, as curve below: most runs need neither (deployments builds check's 52-field Deployment)
        from .deployments import block_size as valid_block_size

        valid_block_size(block_size)
    for field, value in (("max_num_batched_tokens", max_num_batched_tokens), ("max_num_seqs", max_num_seqs)):
        if value is not None:
            require_positive(field, value)
    require_positive("pp", pp)
    if gpus_per_node is not None:
        node_gpus(gpus_per_node)
    require_stage_counts(pp, pp_partition)  # the caller's own settings disagree: bad input, before the model
    memory = parse_gpu_memory(gpu_memory) if gpu_memory is not None else None
    for kv_dtype in kv_dtypes:  # as vLLM spells it (--engine none too); a value the release's flag does not list
        getattr(engine_model, "check_kv_dtype", check_kv_dtype)(kv_dtype)
    if hasattr(engine_model, "check_quantization"):  # nor its --quantization
        engine_model.check_quantization(quantization)
    if hasattr(engine_model, "check_block_size"):  # nor its --block-size
        engine_model.check_block_size(block_size)
    if auto_fit:  # nor --max-model-len auto (before 0.14.0)
        refuse_auto_fit(engine_model.version)
    # the config's omitted fields as the transformers the release installs fills them (--engine none: the newest)
    table = release_transformers(engine_model.version)
    plain = apply_weight_precision(resolve(model, revision, quantization=quantization, transformers=table),
                                   quantization, dtype)
    weighted = flags.with_runner(plain)  # --runner / --convert / --pooler-config, the Mamba dtypes, the window switch
    refuse_encoder_only(weighted, engine_model.version)  # vLLM's rules by release; --engine none: the newest's
    refuse_v0_unmodelled(weighted, engine_model.version)  # V0 kvplan does not model (MiniMax's, pooling): not planned
    refuse_runner(weighted, engine_model.version)  # a runner the class cannot do, as vLLM's ModelConfig
    refuse_pooler_config(weighted, engine_model.version)  # a field or type the release refuses
    refuse_st_pooling(weighted, engine_model.version)  # 0.11-0.13 stop on a Pooling module's missing config.json
    spec = served(weighted, engine_model, pp)
    unused = unused_media_note(spec, flags, spell, engine_model.version)
    if unused:  # vLLM ignores them here: said, not refused
        spec = replace(spec, notes=spec.notes + (unused,))
    # LoRA settings vLLM ignores; what LoRA costs that is not modelled
    for said in lora_notes(flags, spell, spec, engine_model.version):
        spec = replace(spec, notes=spec.notes + (said,))
    for said in cache_flag_notes(plain, spec, flags, engine_model.version, spell):  # what the cache flags did
        spec = replace(spec, notes=spec.notes + (said,))
    pooled = pooling_note(spec, engine_model.version, spell)
    if pooled:  # it generates no tokens: its decode figures are said to be a generating model's
        spec = replace(spec, notes=spec.notes + (pooled,))
    unlisted = unlisted_note(spec, engine_model.version)
    if unlisted:  # no release lists its architecture: the Transformers backend's to serve or refuse
        spec = replace(spec, notes=spec.notes + (unlisted,))
    dropped = ignored_pooler_note(spec, engine_model.version, spell)
    if dropped:  # --pooler-config names vLLM 0.11-0.15 drop without a word: said, not refused
        spec = replace(spec, notes=spec.notes + (dropped,))
    # what --enable-prefix-caching / --no-enable-prefix-caching and --mamba-block-size did (vllm_prefix_flag.py)
    spec = replace(spec, notes=spec.notes + prefix_notes(spec, flags, engine_model.version, spell))
    # and what --enable-chunked-prefill / --no-enable-chunked-prefill did (vllm_chunked_flag.py)
    if engine_model.name == "vllm":
        spec = replace(spec, notes=spec.notes + chunked_notes(spec, flags, engine_model.version))
    device = with_node_gpus(choose_gpu(gpu), gpus_per_node)
    if memory is not None:
        device = replace(device, memory_bytes=memory)
    default_context = not contexts
    contexts = contexts or [default_max_model_len(spec)]
    layer_plans = len(contexts) * len(kv_dtypes) * len(tps) * spec.num_hidden_layers
    if layer_plans > MAX_LAYER_PLANS:
        raise KvplanError(f"the sweep asks for {layer_plans // spec.num_hidden_layers:,} plans of a "
                          f"{spec.num_hidden_layers:,}-layer model; at most {MAX_LAYER_PLANS:,} plans x layers per "
                          f"run ({MAX_LAYER_PLANS // spec.num_hidden_layers:,} plans of this model).")
    # the fields the sweep gives more than one value, each named by a plan refused (a value without separators: a
    # comma would read as a sweep)
    axes = (("context", contexts), ("kv_dtype", kv_dtypes), ("tp", tps))
    swept = [field for field, values in axes if len(values) > 1]

    def naming(context: int, kv_dtype: str, tp: int):
        """A refusal raised while planning at these values names the plan where the sweep has several
        (sweep_plan.naming_plan)."""
        at = {"context": context, "kv_dtype": kv_dtype, "tp": tp}
        return naming_plan(tuple((field, at[field]) for field in swept), spell)

    def chunk_at(kv_dtype: str) -> int:
        with naming(max(contexts), kv_dtype, tps[0]):  # the release's settings refuse the first plan at this dtype
            return batched_tokens(engine_model, spec, device, max(contexts), pp, max_num_batched_tokens, max_num_seqs,
                                  kv_dtype)

    # at the longest length: a shorter one caps the default only where its prompt is one chunk anyway
    chunk = min(chunk_at(kv_dtype) for kv_dtype in kv_dtypes)  # V0's default where a dtype falls back to it
    owner = None if max_num_batched_tokens else "vLLM's" if hasattr(engine_model, "settings") else "kvplan's"
    if input_len is not None:  # as plan() checks it, before the chunk bound would blame max_num_batched_tokens
        check_input_len(input_len, min(contexts), spec, engine_model.version)

    def bound(lengths: list, plans_per_length: int) -> None:
        prompts = [prompt_for(input_len, c, spec, engine_model.version).tokens for c in lengths]
        refused = [(c, limit) for c in lengths for limit in [refused_length(spec, engine_model, c)] if limit]
        bounded_prefill(prompts, chunk, plans_per_length, owner, max(refused, default=()))

    if not auto_fit:  # auto-fit's lengths are known once it has planned: bounded then, before any prompt is timed
        bound(contexts, len(kv_dtypes) * len(tps))

    def plan_at(context: int, kv_dtype: str, tp: int, suggest: bool = True, asked: Optional[int] = None,
                ttft: bool = True):
        """`ttft` False (a chart's point, at lengths the asked prompt may exceed): no prompt is timed. A refusal
        raised while planning it names the plan where the sweep has more than one (sweep_plan.naming_plan)."""
        with naming(asked or context, kv_dtype, tp):
            return plan_one(context, kv_dtype, tp, suggest, asked, ttft)

    def plan_one(context: int, kv_dtype: str, tp: int, suggest: bool, asked: Optional[int], ttft: bool):
        budget_for = budgets(context, asked)
        return plan(spec, context=context, kv_dtype=kv_dtype, tp=tp, budget_for=budget_for, block_size=block_size,
                    gpu=device, batches=tuple(batches), input_len=input_len if ttft else None, engine=engine_model,
                    pp=pp, pp_partition=pp_partition, max_num_seqs=max_num_seqs,
                    max_num_batched_tokens=max_num_batched_tokens, suggest=suggest, spell=spell,
                    other_engine=other_engine, ttft=ttft)

    @lru_cache(maxsize=None)  # one read per transformers table a remedy's releases install
    def read_as(transformers: Optional[str]) -> ModelSpec:
        """The model as another release's transformers fills the fields its config leaves out."""
        return flags.with_runner(apply_weight_precision(
            resolve(model, revision, quantization=quantization, transformers=transformers), quantization, dtype))

    @lru_cache(maxsize=None)  # a sweep's refused rows plan the same releases' fixes again
    def other_engine(name: str, context: int):
        """This deployment under another release (a remedy's): its spec as that release serves it (read with the
        transformers it installs where that fills the config's omitted fields otherwise), the engine model with the
        same flags, and its budget."""
        release = get_engine(name, flags)
        own = release_transformers(release.version)
        served_spec = served(weighted if own == table else read_as(own), release, pp)
        # the spec planned, where this release serves it alike: the memos keyed by a spec's identity (the engine's
        # configuration refusals, settings and stage-free budget terms) then answer the remedy's search and each
        # release's plan at once
        served_spec = spec if identical(served_spec, spec) else served_spec
        return served_spec, release, budget_function(
            served_spec, engine=release, device=device, gpu_util=gpu_util, context=context, kv_budget=budget_bytes,
            gpu_memory=memory, max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs,
            block_size=block_size)

    @lru_cache(maxsize=None)
    def budgets(context: int, asked: Optional[int] = None):
        return budget_function(spec, engine=engine_model, device=device, gpu_util=gpu_util, context=context,
                               kv_budget=budget_bytes, gpu_memory=memory,
                               max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs,
                               block_size=block_size, asked_context=asked)

    plans = [plan_at(c, d, t, ttft=not auto_fit) for c in contexts for d in kv_dtypes for t in tps]
    fitted = []
    if auto_fit:
        untimed = partial(plan_at, ttft=False)
        for i, p in enumerate(plans):
            fit = auto_fitted(p, untimed)
            if fit.context != p.context:
                fitted.append((i, p.context))
                plans[i] = fit
        bound([p.context for p in plans], 1)
        asked = dict(fitted)
        plans = [no_fit_refusal(plan_at(p.context, p.asked_kv_dtype, p.tp, asked=asked.get(i)))
                 for i, p in enumerate(plans)]
    plans, fitted = distinct_plans(plans, fitted, spell)
    drawn = ()
    if chart:
        from .curve import curves

        drawn = curves(plans, plan_at)
    moot = ignored_beside_kv_budget(kv_budget, gpu_util, gpu_memory, spell)
    return EstimateResult(spec, plans, spell, default_context and not auto_fit, drawn,
                          tuple(fitted) if auto_fit else None, device, engine_model, (moot,) if moot else ())


def distinct(values, key=lambda value: value) -> list:
    """`values` in order, each once by `key`: a sweep plans a value given twice once (-c 8K,8192 is one length)."""
    seen, kept = set(), []
    for value in values:
        if key(value) not in seen:
            seen.add(key(value))
            kept.append(value)
    return kept


def _kv_spelling(name) -> str:
    """--kv-cache-dtype's values as typed (FP8 and " fp8" are not merged into fp8: they are refused, as vLLM refuses
    them, model/choices.py)."""
    return str(name)


def distinct_plans(plans: list, fitted: list, spell: Callable[[str], str]) -> tuple:
    """`plans` less each one identical to an earlier one (the same JSON row: two spellings of one KV dtype, fp8 and
    fp8_e4m3 outside sparse MLA, or auto and the model's dtype), the first spelling kept; `fitted`'s (plan index,
    length) renumbered to match."""
    import json

    rows, kept, index = set(), [], {}
    for i, p in enumerate(plans):
        row = json.dumps(p.to_dict(spell), sort_keys=True, default=str)
        if row not in rows:
            rows.add(row)
            index[i] = len(kept)
            kept.append(p)
    return kept, [(index[i], length) for i, length in fitted if i in index]


AUTO_FIT_ROUNDS = 8  # each round's refusal estimates a shorter length; vLLM's fits converge in two (0.34)


def auto_fitted(plan, plan_at):
    """vLLM's --max-model-len auto (kv_cache_utils._auto_fit_max_model_len): the longest length that every worker
    holds one request of. vLLM fits on every worker's figure and keeps the smallest (0.34.0
    v1/core/kv_cache_planning.py:1416-1424), and 0.34 fits again, only shorter, on the cache measured after warmup
    (:1885-1899); kvplan re-plans at each refusal's estimate until one starts (the estimate of the first worker that
    refuses, then of the next, then of the measured cache). The runner's buffers built before profiling keep the
    length asked (vllm_budget.block_tables)."""
    asked = plan.context
    for _ in range(AUTO_FIT_ROUNDS):
        refusal = getattr(plan.engine, "refusal", None)
        estimate_len = getattr(refusal, "estimated_max_model_len", None)
        if not estimate_len or estimate_len >= plan.context:
            return plan
        plan = plan_at(estimate_len, plan.asked_kv_dtype, plan.tp, asked=asked)
    return plan


def refused_length(spec, engine_model, length: int) -> Optional[int]:
    """The model's own max length where a vLLM release refuses max model length `length` past it while it reads the
    config (vllm_config_read.length_refusal: before any request, so no prompt of that length reaches it); else None."""
    if getattr(engine_model, "name", "") != "vllm":
        return None
    refusal = model_length_refusal(spec, length)
    return refusal.estimated_max_model_len if refusal is not None else None


def bounded_prefill(prompts: list, chunk: int, plans_per_context: int, default_owner: Optional[str] = None,
                    refused: tuple = ()) -> None:
    """Bounded work: a prompt runs as chunks of `chunk` (max_num_batched_tokens) tokens, and time to first token and
    the engine's admission walk them one by one; a run that would walk more than MAX_PREFILL_CHUNKS says so instead.
    `prompts`: the tokens of each max model length's prompt (plan.prompt_for: the one asked, else the release's
    default); `default_owner`: whose default `chunk` is ("vLLM's") where the caller set no max_num_batched_tokens;
    `refused`: (the longest of the run's lengths the engine refuses, the model's own, refused_length), said too."""
    chunks = sum(-(-tokens // chunk) for tokens in prompts) * plans_per_context
    if chunks <= MAX_PREFILL_CHUNKS:
        return
    value = f"({default_owner} default here, {chunk:,})" if default_owner else f"({chunk:,})"
    bound = (f"splits the prompts of this run into {chunks:,} prefill chunks, more than the {MAX_PREFILL_CHUNKS:,} "
             f"kvplan prices in one run")
    if refused:  # the length is at fault first: vLLM refuses it whatever the chunks
        # a length written without thousands separators after its flag: -c 1,048,576 would read as a sweep
        length, own = refused
        raise FieldError("context", f"{length} is past the model's own {own:,} tokens, which vLLM refuses unless "
                                    f"VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, and past what kvplan plans: "
                                    f"max_num_batched_tokens {value} {bound}; ask for {own:,} tokens or less.",
                         names=("max_num_batched_tokens",))
    raise FieldError("max_num_batched_tokens", f"{value} {bound}; raise it, or ask for shorter max model lengths or "
                                               f"fewer plans.", names=("context",))
