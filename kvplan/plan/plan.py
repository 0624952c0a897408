"""One Plan per (context, kv_dtype, tp): sharding, capacity, budget and decode speed of one GPU, and the
nearest single changes that would make a plan fit.

Two kinds of number sit side by side. Arithmetic (kv_bytes_*, contiguous_*): exact bytes from the config, with
ideal paging. Engine (engine, kv_blocks, kv_capacity_tokens, max_concurrency): what the engine model makes of
them (kvplan/engines/): with vLLM, `engine` carries its start-up figures and log lines, kv_blocks is its
num_gpu_blocks, kv_capacity_tokens its "GPU KV cache size" and max_concurrency the sequences of `context` tokens a
running server keeps resident, capped by max_num_seqs (`max_concurrency_limited_by`). With engine "none" they
are the ideal pool: budget // bytes per sequence, and `engine` is None.

Pipeline parallel: each stage holds its own layers (get_pp_indices) and has its own budget (its weights); the
engine takes the fewest blocks any stage counts, and the plan's budget and per-GPU arithmetic fields are that
stage's (`stages` lists every one: plan/stages.py).

Nodes: the remedies keep a TP group within the GPUs of one node (Reach) and put pipeline stages across nodes; the node
is the catalog's (GPU.node_gpus) or the user's (--gpus-per-node, gpus_per_node: GPU.node_given), reported as
node_gpus / node_gpus_source. A TP degree the user asks past their own node is planned with a note (node_note), not
refused: vLLM runs TP across nodes, its Ray executor only warning that it is slow without a fast interconnect."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field as dataclass_field, replace
from typing import Callable, Optional

from ..engines.figures import Fix, first_named, release_number, release_span
from ..engines.vllm_dcp import remedy_engines
from ..engines.vllm_pcp import decodes_replicated, speed_priced
from ..errors import FieldError, KvplanError
from ..memo import remember
from ..model.precision import Precision, resolve_kv_dtype
from ..model.spec import ModelSpec
from ..units import require_positive
from .budget import Budget, batched_tokens, prompt_limit
from .capacity import capacity, token_bytes
from .catalog import GPU, speed_profile
from .longest import longest_fitting, page_cycles
from .prefill import Prefill, prefill
from .remedy_words import length_note, options_said_whole
from .sharding import MoeLayout, Sharding, pipeline_refusal, pp_stages, shard, stage_cache_layers
from .speed import Decode, decode
from .stages import pipeline_stages
from .work import MLA_DECODE_QUERY_LEN

MAX_TP = 64  # `check --suggest` lists the TP degrees the heads allow up to this; remedies stop at one node (Reach)
MAX_STAGED_NODES = 8  # the pipeline remedy's reach: tp x pp over at most this many nodes' GPUs (Reach.most_gpus)


@dataclass(frozen=True)
class Plan:
    model: str
    context: int
    kv_dtype: str
    kv_dtype_scheme: str
    tp: int
    pp: int
    pp_partition: Optional[tuple]  # Sharding.stage_layers: (layers,) at pp 1, None where the pipeline is refused
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
    max_concurrency_limited_by: Optional[str]
    contiguous_bytes_per_sequence_per_gpu: Optional[int]
    contiguous_max_concurrency: Optional[int]
    fits: bool
    # the nearest remedies that hold a request, cheapest first, each a tuple of (field, value) changes
    # (fitting_remedies): (("tp", 4),), (("kv_dtype", "fp8"),), or (("tp", 8), ("kv_dtype", "fp8")) where neither
    # alone does; for a configuration the engine refuses, searched at its first fix (fitting_remedies_for)
    fitting_options: tuple
    budget: Budget
    engine: Optional[object]  # engines.figures.EngineFigures; None with engine "none"
    decode: Optional[Decode]  # whenever the TP degree is valid and a GPU is known
    prefill: Optional[Prefill]
    parallel: Optional[MoeLayout] = None  # --data-parallel-size / --enable-expert-parallel (None: neither given)
    # the KV dtype as asked (auto, fp8, fp8_e4m3, ...): `kv_dtype` names fp8 and fp8_e4m3 alike, vLLM's sparse MLA
    # backends do not (engines/vllm_sparse.py); a re-plan (auto-fit, curves, suggestions) asks it again
    kv_cache_dtype: str = ""
    pp_errors: tuple = ()  # those of tp_errors that are the pipeline's (Sharding.pp_errors); not in the JSON
    # how the caller names fields (field -> flag, deployments key or API keyword): suggestion() and to_dict() speak
    # its words unless told otherwise, as the engine's remedy already does (plan(spell=...)); not in the JSON
    spell: Callable[[str], str] = dataclass_field(default=str, compare=False, repr=False)
    reach: Optional["Reach"] = None  # how far fitting_options were searched (None: not searched); not in the JSON
    # (GPUs, source) of the node a remedy keeps a TP group within (GPU.node_gpus, node_source): in the JSON as
    # node_gpus and node_gpus_source ("catalog" or "gpus_per_node")
    node: tuple = ()
    # the runner vLLM serves the model with, "generate" or "pooling" (vllm_pooling.runner_name): the release's, under
    # --engine none the pinned release's, whose rule drops a pooling model's LM head there too (engines/ideal.py); in
    # the JSON as `runner` on every plan, beside engine.runner, which a null engine (--engine none, a TP degree that
    # does not shard) leaves unsaid
    runner: str = "generate"
    # vLLM's --decode-context-parallel-size, its interleave and --dcp-comm-backend (engines/vllm_dcp.py; None: 1, 1,
    # ag_rs): in the JSON as `dcp`, `dcp_interleave` and `dcp_comm_backend` after `pp`, only where -dcp was given
    # above 1 (the default JSON keeps its keys); --dcp-q-replicate / --no-dcp-q-replicate as `dcp_q_replicate` after
    # them, only where given with -dcp
    dcp: Optional[int] = None
    dcp_interleave: Optional[int] = None
    dcp_comm_backend: Optional[str] = None
    dcp_q_replicate: Optional[bool] = None
    # vLLM's --prefill-context-parallel-size (engines/vllm_pcp.py; None: 1): in the JSON as `pcp` after `pp` (and
    # `dcp`), only where -pcp was given above 1; the GPUs it takes are tp x pp x pcp, the per-GPU figures pcp 1's
    pcp: Optional[int] = None
    # every pipeline stage's budget and blocks (plan/stages.py PipelineStage), in stage order; () at pp 1 or where no
    # stage was budgeted: in the JSON as `stages` last, only where pp > 1 (null where the pipeline is not laid out)
    stages: tuple = ()

    @property
    def fits_with(self) -> tuple:
        """The single changes among fitting_options: (("tp", 4), ("kv_dtype", "fp8"), ("context", 81920))."""
        return tuple(option[0] for option in self.fitting_options if len(option) == 1)

    @property
    def asked_kv_dtype(self) -> str:
        """The KV dtype to plan this row again with: as asked, or the precision's name."""
        return self.kv_cache_dtype or self.kv_dtype

    @property
    def core_gpus(self) -> int:
        """GPUs of one engine core: tp x pp x pcp (config/parallel.py 0.32.0:945-948 world_size; vllm_pcp.py), which
        --data-parallel-size copies."""
        return self.tp * self.pp * (self.pcp or 1)

    @property
    def total_concurrency(self) -> Optional[int]:
        """Requests the whole deployment keeps resident: each of the D data-parallel engine cores holds
        max_concurrency (its own KV cache, scheduler and max_num_seqs)."""
        if self.max_concurrency is None:
            return None
        return self.max_concurrency * (self.parallel.dp if self.parallel is not None else 1)

    def suggestion(self, spell: Optional[Callable[[str], str]] = None) -> Optional[str]:
        """What would fit, in the caller's words for each field (`spell`: field -> flag or key; the plan's own by
        default); None where it fits, its TP degree is refused, or it was planned without suggestions."""
        spell = spell or self.spell
        if self.fits or not self.tp_valid:
            return None
        refusal = self.engine.refusal if self.engine is not None else None
        if refusal is not None and refusal.configuration:
            return self._refused(refusal, spell)
        if self.reach is None:  # planned without suggestions: nothing was searched
            return None
        if not self.fitting_options:
            return self.reach.nothing(spell, "makes it fit") + (": the weights alone exceed the budget of one GPU"
                                                                if self.kv_budget_bytes_per_gpu <= 0 else "")
        note = length_note(self.engine, self.context)  # vLLM's own estimate where it quotes another length
        words = "would fit with " + options_said_whole(self.fitting_options, spell, note)
        short = self.reach.shortfall(self.fitting_options, spell, "fits")
        return f"{short}; {words}" if short else words

    def _refused(self, refusal, spell: Callable[[str], str]) -> str:
        """The engine's refusal of the configuration (whatever the memory), its remedy (Refusal.advice: each fix
        planned) and, where the first fix does not hold a request, what would at it (fitting_options were searched
        there: fitting_remedies_for)."""
        whom = "the model" if refusal.reason.startswith("Model architecture") else "the configuration"
        words = f"{self.engine.name} {self.engine.version} refuses {whom}: {refusal.summary}"
        advice = refusal.advice(spell)
        words += f"; {advice}" if advice else ""
        first = refusal.fixes[0] if refusal.fixes else None
        if first is None or first.fits is not False or not self.fitting_options:  # (none found, or none searched)
            return words
        return words + "; " + fits_at(first, self.fitting_options, spell)

    def to_dict(self, spell: Optional[Callable[[str], str]] = None) -> dict:
        spell = spell or self.spell
        data = asdict(self)
        del data["spell"]
        data["tp_errors"], data["tp_warnings"] = list(self.tp_errors), list(self.tp_warnings)
        data["pp_partition"] = list(self.pp_partition) if self.pp_partition is not None else None
        data["budget"] = self.budget.to_dict(spell)
        data["engine"] = self.engine.to_dict(spell) if self.engine is not None else None
        del data["fitting_options"], data["reach"]
        del data["kv_cache_dtype"]  # the JSON keeps its keys; engine.kv_cache_dtype says what the engine keeps
        del data["pp_errors"]  # tp_errors holds them
        data["suggestion"] = self.suggestion(spell)
        node = data.pop("node")
        data["node_gpus"], data["node_gpus_source"] = node if node else (None, None)
        layout = data.pop("parallel")
        if layout is not None:  # only when DP / EP was asked: the default JSON keeps its keys
            data["data_parallel"] = {
                "data_parallel_size": layout["dp"], "enable_expert_parallel": layout["expert_parallel"],
                "gpus": layout["dp"] * self.core_gpus, "expert_parallel_size": layout["ep"],
                "experts_tp": layout["moe_tp"], "routed_experts": layout["experts"],
                "routed_experts_per_gpu": layout["local_experts"],
                **({"enable_eplb": True, "num_redundant_experts": layout["redundant"]} if layout["eplb"] else {}),
                "max_concurrency_per_dp_rank": self.max_concurrency, "max_concurrency_total": self.total_concurrency,
                "prefill": ("over the PCP ranks, each DP rank's step as large" if self.prefill else
                            "not estimated under -pcp") if self.pcp else
                "TP-equivalent (DP / EP not modelled in time to first token)"}
        data["runner"] = data.pop("runner")  # last: the CSV's earlier columns keep their places
        del data["stages"]
        if self.pp > 1:  # after runner: a pp 1 plan's JSON keeps its keys
            data["stages"] = [s.to_dict(spell) for s in self.stages] if self.stages else None
        return _with_dcp(data, data.pop("dcp"), data.pop("dcp_interleave"), data.pop("pcp"),
                         data.pop("dcp_comm_backend"), data.pop("dcp_q_replicate"))


def _with_dcp(data: dict, dcp: Optional[int], interleave: Optional[int], pcp: Optional[int] = None,
              comm: Optional[str] = None, replicate: Optional[bool] = None) -> dict:
    """The plan's JSON with `dcp`, `dcp_interleave` (1 unless given) and `dcp_comm_backend` (ag_rs unless given)
    after `pp` where -dcp D > 1 was planned (`dcp_q_replicate` after them where given), and `pcp` after them where
    -pcp P > 1 was; unchanged otherwise (an interleave or backend without DCP is ignored, as vLLM ignores them)."""
    if not dcp and not pcp:
        return data
    out = {}
    for key, value in data.items():
        out[key] = value
        if key == "pp":
            out.update(dict(dcp=dcp, dcp_interleave=interleave or 1, dcp_comm_backend=comm or "ag_rs") if dcp
                       else {})
            out.update(dict(dcp_q_replicate=replicate) if dcp and replicate is not None else {})
            out.update(dict(pcp=pcp) if pcp else {})
    return out


def unplanned_block_size(engine, block_size: Optional[int]) -> int:
    """The block size a plan states where no cache is laid out (an unshardable TP degree), estimate's and check's
    alike: the one asked, else the engine's when it refuses the degree (vLLM's release default: 16, 64 from 0.34;
    the ideal pool's 16)."""
    return block_size or _engine(engine).unsharded_block_size()


def _engine(engine):
    from ..engines import get_engine

    return get_engine(engine) if isinstance(engine, str) else engine


def _runner(spec: ModelSpec, model) -> str:
    """The plan's runner: vLLM's for the engine's release (the pinned release's for the ideal engine, as its budget
    asks: engines/ideal.py)."""
    from ..engines.vllm_pooling import runner_name

    return runner_name(spec, getattr(model, "version", None))


def release_of(engine) -> Optional[str]:
    """The vLLM release an engine (name or model) runs; None for one without (the ideal pool: the pinned release's
    sharding rules, sharding.shard)."""
    return getattr(_engine(engine), "version", None)


# vLLM's check of a prompt's length against max_model_len, as the front end validates a request: longer is refused in
# every release read (0.11.0 v1/engine/processor.py:511-537, 0.32.0 v1/engine/input_processor.py:574-591); as long,
# leaving no room for one output token, from 0.11.1 for a generating model that is no multimodal class (0.11.1
# processor.py:602-605, 0.14.0 input_processor.py:694-707, 0.15.0 :731-734, 0.16.0 :766-769: `not
# model_config.is_multimodal_model and runner_type != "pooling"`), and from 0.17.0 for every generating one (0.17.0
# :392, 0.18.0 :365, 0.25.0 :423, 0.32.0 :593-602, 0.34.0 :588: `runner_type == "generate"`). A pooling model
# (engines/vllm_pooling.py) is never refused. 0.11.0 has no such check; the releases before it are taken as 0.11.0 (not
# read). (first release, whom it refuses), newest first:
FULL_PROMPT_REFUSED = (((0, 17), "generate"), ((0, 11, 1), "text"))


def check_input_len(input_len: int, context: int, spec: ModelSpec, version: Optional[str]) -> None:
    """A prompt of `input_len` tokens against the max model length `context` as vLLM `version` validates it
    (FULL_PROMPT_REFUSED); `version` None (the ideal pool): only a prompt longer than the length is refused."""
    require_positive("input_len", input_len)
    if input_len > context:
        why = (f"vLLM refuses a prompt longer than its max model length (\"The decoder prompt (length {input_len}) is "
               f"longer than the maximum model length of {context}.\")" if version is not None else
               "a prompt longer than the max model length does not fit")
        raise FieldError("input_len", f"({input_len:,}) must not exceed context ({context:,}): {why}.",
                         names=("context",))
    if input_len == context and version is not None and _refuses_full_prompt(spec, version):
        vllm_words = (f"The decoder prompt (length {input_len}) plus the number of requested output tokens (at "
                      f"least 1) is longer than the maximum model length of {context}.")
        room = f"at most {context - 1:,}" if context > 1 else no_prompt_words()
        raise FieldError("input_len", f"({input_len:,}) must be below context ({context:,}) for vLLM {version}, which "
                                      f"{KEEPS_ROOM} (\"{vllm_words}\"); {room}.", names=("context",))


KEEPS_ROOM = "keeps room for one output token"


def no_prompt_words() -> str:
    """Why a max model length of 1 serves no prompt under a release that keeps room for an output token."""
    return "a prompt needs a max model length of at least 2"


@dataclass(frozen=True)
class Prompt:
    """The prompt kvplan times where none is asked (default_prompt)."""

    tokens: int
    note: Optional[str]  # why it is shorter than the max model length; None for the whole length


def default_prompt(context: int, spec: ModelSpec, version: Optional[str]) -> Prompt:
    """The prompt kvplan times (time to first token) where none is asked: the longest vLLM `version` admits at the
    max model length `context` (FULL_PROMPT_REFUSED, the rule check_input_len holds an asked one to). The whole
    length where the release admits a prompt that long (before 0.11.1; a multimodal class before 0.17; the ideal
    pool, None; a pooling model always); one token fewer where it keeps room for one output token (0 at a length of
    1: no prompt is served)."""
    require_positive("context", context)
    if version is None or not _refuses_full_prompt(spec, version):
        return Prompt(context, None)
    return Prompt(context - 1, f"vLLM {version} {KEEPS_ROOM}")


def prompt_for(input_len: Optional[int], context: int, spec: ModelSpec, version: Optional[str],
               limit: Optional[int] = None) -> Prompt:
    """The prompt asked (`input_len`, as check_input_len checked it), else the release's default (default_prompt),
    no longer than the `limit` the engine's scheduler serves (budget.prompt_limit; None: the whole length)."""
    if input_len is not None:
        return Prompt(input_len, None)
    prompt = default_prompt(context, spec, version)
    if limit is None or prompt.tokens <= limit:
        return prompt
    return Prompt(limit, f"the longest vLLM {version} serves here: MLA turns its chunked prefill off")


def prompt_limit_warning(model, limit: Optional[int], context: int, spell: Callable[[str], str] = str) -> str:
    """The plan's warning where the engine serves no prompt of the whole length (budget.prompt_limit), "" where it
    does."""
    if limit is None:
        return ""
    from ..engines.vllm_v0_chunked import prompt_limit_words

    return prompt_limit_words(model.version, limit, context, spell) + "."


def _refuses_full_prompt(spec: ModelSpec, version: str) -> bool:
    from ..engines.vllm_multimodal import registry_multimodal
    from ..engines.vllm_pooling import pooling_runner
    from ..engines.vllm_versions import release_rule

    refused = release_rule(FULL_PROMPT_REFUSED, version)
    if refused is None or pooling_runner(spec, version):
        return False
    return refused == "generate" or not registry_multimodal(spec, version)


def moe_layout_of(model, spec: ModelSpec, tp: int) -> Optional[MoeLayout]:
    """The DP / EP layout the engine model's flags ask for (engines.EngineFlags.moe_layout); None without them."""
    flags = getattr(model, "flags", None)
    if flags is None or not (flags.dp or flags.enable_expert_parallel):
        return None
    from ..engines.vllm_versions import parse_version

    return flags.moe_layout(spec, tp, parse_version(model.version))


def with_layout_errors(sharding: Sharding, layout: Optional[MoeLayout]) -> Sharding:
    """The sharding with vLLM's refusals of the experts' layout at this TP degree (MoeLayout.errors: EPLB's uneven
    split) among its errors, so that a sweep marks that row as it marks a TP degree that does not divide the heads."""
    if layout is None or not layout.errors:
        return sharding
    return replace(sharding, errors=sharding.errors + layout.errors)


def _stage_specs(spec: ModelSpec, layer_sets: list) -> list:
    """Each stage's view of `spec` (its cache layers). A remedy's search plans the same stages again and again (a pp
    16 release fix: every boundary release), so each view is built once per (spec, stages) and shared (frozen);
    `spec` is keyed by identity and kept alive with its views."""
    key = (id(spec), tuple(tuple(sorted(s)) for s in layer_sets))
    held = _STAGE_SPECS.get(key)
    if held is not None and held[0] is spec:
        return list(held[1])
    views = tuple(replace(spec, layers=tuple(spec.layers[i] for i in layers)) for layers in key[1])
    remember(_STAGE_SPECS, MAX_STAGE_SPECS, key, (spec, views))  # the oldest goes (and the spec it kept alive)
    return list(views)


_STAGE_SPECS: dict = {}
MAX_STAGE_SPECS = 256


def plan(spec: ModelSpec, *, context: int, kv_dtype: str, tp: int, budget_for: Callable[..., Budget],
         block_size: Optional[int] = None, gpu: Optional[GPU] = None, bandwidth: Optional[float] = None,
         batches: tuple = (), input_len: Optional[int] = None, max_num_batched_tokens: Optional[int] = None,
         suggest: bool = True, engine="none", pp: int = 1, pp_partition: Optional[tuple] = None,
         max_num_seqs: Optional[int] = None, speed: bool = True, spell: Callable[[str], str] = str,
         remedies: Optional[bool] = None, other_engine: Optional[Callable] = None, ttft: bool = True) -> Plan:
    """`budget_for(tp)` gives the budget of one GPU at that TP degree (weights shrink with TP), so a plan that
    does not fit can say which TP degree would; with pp > 1 it is called as budget_for(tp, stage), and always with
    kv_dtype=`kv_dtype` (served_budget). `engine` is a
    name ("vllm", "vllm==0.10", "none") or an engine model; `gpu` sets the engine's batch defaults (the default
    GPU's when None). With a `gpu` (and `speed`), decode is estimated at batch 1, at max concurrency and at every
    one of `batches` (`bandwidth` overrides the GPU's), and prefill for `input_len` prompt tokens (default: the
    longest prompt the release admits at `context`, default_prompt) at batch 1 (`ttft` False leaves it out: a
    chart's points are decode alone). A configuration the engine refuses
    whatever the memory gets its remedies planned (`remedies`, by default with `suggest`): each fix the engine finds
    is planned here, under another release through `other_engine(engine name, context) -> (spec, engine,
    budget_for)` (without it such a fix is left unplanned), and the remedy is worded in `spell`'s names (the
    caller's: flags, keys, API keywords)."""
    require_positive("context", context)
    require_positive("pp", pp)
    asked_spec = spec  # before the GPU's view: a remedy's search asks the engine again (Replan)
    model = _engine(engine)
    if block_size is None:
        block_size = model.default_block_size()
    if block_size is not None:
        require_positive("block_size", block_size)
    if input_len is not None:
        check_input_len(input_len, context, spec, getattr(model, "version", None))
    for batch in batches:
        require_positive("batch", batch)
    engine_gpu = gpu
    if engine_gpu is None:
        from .catalog import DEFAULT_GPU, find_gpu

        engine_gpu = find_gpu(DEFAULT_GPU)
    if hasattr(model, "on_gpu"):  # what `auto` stores on this GPU (GLM-5.x: fp8 on SM10x)
        spec = model.on_gpu(spec, engine_gpu)
    # the longest prompt the engine serves, where shorter than the length (vLLM 0.7.1-0.7.3 on MLA); None: the whole
    limit = prompt_limit(model, spec, engine_gpu, context, pp, max_num_batched_tokens, max_num_seqs, kv_dtype)
    limit_warning = prompt_limit_warning(model, limit, context, spell)
    if input_len is not None and limit is not None and input_len > limit:
        from ..engines.vllm_v0_chunked import prompt_limit_refusal

        raise prompt_limit_refusal(model.version, limit, input_len, context)
    precision = resolve_kv_dtype(kv_dtype, spec.dtype, spec.auto_kv_dtype)
    # the cache the engine keeps for it (V3.2 / V4 under fp8: fp8_ds_mla; Falcon under fp8: bf16), which the bytes a
    # token and a sequence, the decode reads and the prefill count; the row keeps the dtype asked
    kept = model.cache_precision(spec, precision, engine_gpu, tp)
    scheme = precision.scheme if kept.name == precision.name else f"{model.name} keeps {kept.name}: {kept.scheme}"
    layout = moe_layout_of(model, spec, tp)
    # -dcp D: the D ranks sharing a KV head hold its tokens in turn (engines/vllm_dcp.py)
    dcp = dcp_of(model)["dcp"] or 1
    sharding = with_layout_errors(shard(spec, tp, pp if pp > 1 or pp_partition else None, pp_partition, spell,
                                        getattr(model, "version", None), dcp), layout)
    past_node = node_note(tp, engine_gpu, spell)
    stages = pp_stages(spec.num_hidden_layers, pp, pp_partition) if sharding.valid and pp > 1 else ()
    # a pipeline vLLM cannot lay out (sharding.pp_errors) has no stage to budget: the whole model on one GPU, by the
    # rules its pp selects (vLLM 0.8.0-0.9.0 fall back to V0 for any pp > 1: engines/vllm_v0_pp.py), as every pp > 1
    # row of those releases is planned
    whole = pp if sharding.pp_errors else 1
    budgets = [served_budget(budget_for, tp, stage, kv_dtype, whole) for stage in (stages or [None])]
    budget = min(budgets, key=lambda b: b.kv_budget_bytes_per_gpu)
    common = dict(model=spec.name, context=context, kv_dtype=precision.name, kv_dtype_scheme=scheme, spell=spell,
                  kv_cache_dtype=kv_dtype.strip().lower(), tp=tp, pp=pp,
                  pp_partition=sharding.stage_layers(spec.num_hidden_layers),
                  tp_valid=sharding.valid, parallel=layout,
                  tp_errors=sharding.errors,
                  tp_warnings=sharding.warnings + tuple(w for w in (past_node, limit_warning) if w),
                  pp_errors=sharding.pp_errors, kv_budget_bytes_per_gpu=budget.kv_budget_bytes_per_gpu, budget=budget,
                  node=(engine_gpu.node_gpus, engine_gpu.node_source), runner=_runner(spec, model),
                  **dcp_of(model))
    if not sharding.valid:
        return Plan(**common, block_size=unplanned_block_size(model, block_size), kv_heads_per_gpu=None,
                    kv_bytes_per_token=None, kv_bytes_per_token_per_gpu=None, kv_bytes_per_sequence_per_gpu=None,
                    state_bytes_per_sequence_per_gpu=None, kv_blocks=None, kv_capacity_tokens=None,
                    max_concurrency=None, max_concurrency_limited_by=None, contiguous_bytes_per_sequence_per_gpu=None,
                    contiguous_max_concurrency=None, fits=False, fitting_options=(), engine=None, decode=None,
                    prefill=None)
    layer_sets = stage_cache_layers(spec, stages) if stages else [set(range(len(spec.layers)))]
    stage_specs = _stage_specs(spec, layer_sets) if stages else [spec]
    amounts = [b.kv_budget_bytes_per_gpu for b in budgets]
    result = model.capacity(stage_specs, spec=spec, stages=layer_sets, context=context, precision=precision, tp=tp,
                            budgets=amounts, block_size=block_size, gpu=engine_gpu, pp=pp, max_num_seqs=max_num_seqs,
                            max_num_batched_tokens=max_num_batched_tokens,
                            measured=[b.measured for b in budgets] if budget.measured else None)
    if result.capacity_stage is not None and len(budgets) > 1:
        # the stage whose own blocks every worker takes sets the plan's figures: its budget and its cache a token
        # (an uneven split's stage of more layers has the larger block, so the fewest blocks need not be the
        # smallest budget: Llama-3.1-8B -pp 3 on 11/11/10 layers, plan/stages.py)
        budget = budgets[result.capacity_stage]
        common.update(kv_budget_bytes_per_gpu=budget.kv_budget_bytes_per_gpu, budget=budget)
        widest = stage_specs[result.capacity_stage]
    else:  # arithmetic of the stage with the most cache per token, at the engine's block size
        widest = max(stage_specs, key=lambda s: token_bytes(s, tp, kept))
    # under -dcp D a GPU keeps a request's every D-th token: its share of the sequence (dcp above)
    share = -(-context // dcp)
    numbers = capacity(widest, tp, kept, share, result.block_size, budget.kv_budget_bytes_per_gpu)
    fits = result.max_concurrency > 0
    options, reach = (), None
    figures = result.figures
    refusal = figures.refusal if figures is not None else None
    asked = Replan(asked_spec, context, kv_dtype.strip().lower(), block_size, tp, budget_for,
                   dict(engine=model, pp=pp, pp_partition=pp_partition, gpu=gpu, max_num_seqs=max_num_seqs,
                        max_num_batched_tokens=max_num_batched_tokens), other_engine)
    if refusal is not None and refusal.configuration and (suggest if remedies is None else remedies):
        fixes = planned_fixes(model, refusal, asked, engine_gpu)
        # the remedy in the caller's names: the planned fixes', or the engine's own words re-spelled (Refusal.advice)
        refusal = replace(refusal, fixes=fixes)
        if not fixes and not refusal.remedy and hasattr(model, "nothing_clears"):  # said, not left blank
            refusal = model.nothing_clears(asked.spec, refusal, kv_dtype=asked.kv_dtype, context=asked.context,
                                           block_size=asked.block_size, tp=asked.tp, gpu=engine_gpu)
        first = first_named(fixes)  # the range of the fix the remedy names first, for scripts (Refusal.remedy_range)
        refusal = replace(refusal, remedy=refusal.advice(spell), remedy_range=first.span if first else ())
        figures = replace(figures, refusal=refusal)
    if not fits and suggest:
        options = tuple(fitting_remedies_for(refusal, spec, context, precision, tp, block_size, budget_for, pp=pp,
                                             settings=dict(engine=model, pp_partition=pp_partition, gpu=gpu,
                                                           max_num_seqs=max_num_seqs,
                                                           max_num_batched_tokens=max_num_batched_tokens),
                                             asked=asked))
        reach = remedy_reach(spec, tp, pp, precision, gpu, getattr(model, "version", None), model)
    steps = prompt = None
    pcp = dcp_of(model)["pcp"] or 1
    if gpu is not None and speed and (pcp == 1 or speed_priced(model.version)):
        profile, rate = speed_profile(gpu), bandwidth or gpu.decode_bandwidth
        chunk = batched_tokens(model, spec, engine_gpu, context, pp, max_num_batched_tokens, max_num_seqs, kv_dtype)
        # -pcp P: the experts over T x D x P (the budget's layout), whether or not DP / EP was asked
        experts = layout if pcp == 1 else pcp_layout(model, spec, tp)
        # EPLB's redundant experts are second copies: a token reads one replica (MoeLayout.logical)
        reads = experts.logical() if experts is not None else None
        # under -dcp D a GPU reads its share of each sequence, attends over it with its DCP group's D x heads / TP
        # query heads, and exchanges queries, LSEs and partial outputs with the D ranks (work.dcp_exchange); under
        # -pcp P a rank decodes its share of the requests (0.27-0.31: all of them), the MoE layers over all P ranks'
        # (speed.decode)
        replicated = pcp > 1 and decodes_replicated(model.version)
        # -dcp D: how its group exchanges on this GPU's attention backend (a2a, an empty context's exchange)
        comm = model.dcp_comm(spec, kept, engine_gpu) if dcp > 1 else None
        steps = decode(spec, tp, kept, share, result.max_concurrency, batches, profile, rate, reads, dcp, pcp,
                       replicated, comm)
        steps = replace(steps, context=context) if dcp > 1 else steps
        asked = prompt_for(input_len, context, spec, getattr(model, "version", None), limit) if ttft \
            else Prompt(0, None)
        # -pcp P: each chunk over the P ranks, their latent KV gathered (prefill.pcp_chunk_times); -dcp D: a GPU's
        # share of the cache read, the exchange over the D ranks (work.dcp_exchange)
        # a chunk of at most the MLA backend's reorder_batch_threshold tokens runs MLA's decode path
        decode_tokens = model.mla_decode_query_len(spec, kept, engine_gpu) \
            if hasattr(model, "mla_decode_query_len") else MLA_DECODE_QUERY_LEN
        prompt = prefill(spec, tp, kept, asked.tokens, chunk, profile, rate, asked.note, reads, pcp, dcp, comm,
                         decode_tokens) if asked.tokens else None
    arithmetic = asdict(numbers)
    arithmetic.update(kv_bytes_per_token=token_bytes(spec, tp, kept) * tp, kv_blocks=result.kv_blocks,
                      kv_capacity_tokens=result.kv_capacity_tokens, max_concurrency=result.max_concurrency)
    return Plan(**common, block_size=result.block_size, kv_heads_per_gpu=sharding.served_kv_heads_per_gpu, **arithmetic,
                max_concurrency_limited_by=result.limited_by, fits=fits, fitting_options=options, engine=figures,
                decode=steps, prefill=prompt, reach=reach,
                stages=pipeline_stages(stages, budgets, result.stage_blocks, result.capacity_stage))


def pcp_layout(model, spec: ModelSpec, tp: int) -> MoeLayout:
    """The routed experts' layout under -pcp (T x D x P ranks, engines.EngineFlags.moe_layout), DP / EP asked or not."""
    from ..engines.vllm_versions import parse_version

    return model.flags.moe_layout(spec, tp, parse_version(model.version))


def dcp_of(model) -> dict:
    """The plan's `dcp`, `dcp_interleave`, `dcp_comm_backend` and `pcp` (None: 1, 1, ag_rs, 1) from a vLLM model's
    flags; the interleave and the backend only under DCP."""
    flags = getattr(model, "flags", None)
    dcp = getattr(flags, "dcp", None)
    return dict(dcp=dcp, dcp_interleave=getattr(flags, "dcp_interleave", None) if dcp else None,
                dcp_comm_backend=getattr(flags, "dcp_comm_backend", None) if dcp else None,
                dcp_q_replicate=getattr(flags, "dcp_q_replicate", None) if dcp else None,
                pcp=getattr(flags, "pcp", None))


def served_budget(budget_for: Callable[..., Budget], tp: int, stage, kv_dtype: str, pp: int = 1) -> Budget:
    """budget_for(tp[, stage], kv_dtype=) for the --kv-cache-dtype served: every budget_for takes the keyword (the
    engine's depends on it: vLLM 0.34 builds its block tables at that cache's block size, engines/vllm_budget.py
    table_groups; a fixed budget ignores it), so a budget_for without it fails loudly rather than losing the dtype.
    `pp` > 1 with no stage: the whole model at a pipeline that cannot be laid out, by the rules that pp selects
    (budget_for(tp, kv_dtype=, pp=))."""
    served = kv_dtype.strip().lower()
    if stage is not None:
        return budget_for(tp, stage, kv_dtype=served)
    return budget_for(tp, kv_dtype=served, pp=pp) if pp > 1 else budget_for(tp, kv_dtype=served)


def node_note(tp: int, gpu: GPU, spell: Callable[[str], str] = str) -> str:
    """The note for a TP degree past the node the user gave (--gpus-per-node; "" within it, or for the catalog's
    node, which is kvplan's guess at a host, not the user's word for theirs). vLLM runs such a group across nodes:
    its Ray executor only warns that "Tensor parallel workers can be spread out to 2+ nodes which can degrade the
    performance unless you have fast interconnect across nodes" (v1/executor/ray_utils.py _verify_bundles, 0.32.0
    :319-335, 0.34.0 :75-91), its multiprocessing one asks only that the world size divide by --nnodes
    (multiproc_executor.py 0.32.0:282), and its guide shows --tensor-parallel-size 16 over two nodes of 8
    (docs/serving/parallelism_scaling.md 0.32.0:132-137). So an asked degree past the node is planned and said, never
    refused; only the remedies keep TP within the node (Reach)."""
    if not gpu.node_given or tp <= gpu.node_gpus:
        return ""
    return (f"tp {tp} spans more than {gpu.node_words(spell)}: vLLM runs one TP group across nodes, every layer's "
            f"all-reduces crossing the network (its Ray executor warns that this can degrade performance without a "
            f"fast interconnect such as InfiniBand); kvplan's decode times price them at the GPU's own link.")


def _replanned(spec, context, precision, tp, block_size, budget_for, pp=None, settings=None) -> Optional[Plan]:
    """The plan at these fields (no suggestions, no speed); None for a shape the heads or the layout refuse. A sweep's
    rows search the same remedies (row tp 1 tries tp 8, and so does row tp 2): each is planned once per run
    (_REPLANS), plan() being a pure function of these arguments. `spec` is keyed by identity (a field left out of
    its equality, such as a layer's heads_field, still words an error) and kept alive with the answer; the others
    by value (budget_for and an engine model by identity, their default); an unhashable one plans afresh."""
    settings = settings or {}
    try:
        key = (id(spec), context, precision, getattr(precision, "auto", None), tp, block_size, budget_for, pp,
               tuple(sorted(settings.items())))
        hash(key)
    except TypeError:
        return _plan_afresh(spec, context, precision, tp, block_size, budget_for, pp, settings)
    held = _REPLANS.get(key)
    if held is not None and held[0] is spec:
        return held[1]
    answer = _plan_afresh(spec, context, precision, tp, block_size, budget_for, pp, settings)
    remember(_REPLANS, MAX_REPLANS, key, (spec, answer))  # the oldest goes (and the spec it kept alive)
    return answer


_REPLANS: dict = {}
MAX_REPLANS = 1024


def _plan_afresh(spec, context, precision, tp, block_size, budget_for, pp, settings: dict) -> Optional[Plan]:
    version = release_of(settings.get("engine", "none"))
    if not shard(spec, tp, pp if pp and pp > 1 else None, settings.get("pp_partition"), version=version).valid:
        return None
    # a float32 model's cache is `auto`'s only spelling (vLLM's --kv-cache-dtype has no float32)
    asked = "auto" if precision.name == "fp32" else precision.spelling or precision.name
    held = plan(spec, context=context, kv_dtype=asked, tp=tp, budget_for=budget_for,
                block_size=block_size, suggest=False, speed=False, pp=pp or 1, **settings)
    return held if held.tp_valid else None  # EPLB may refuse a degree the heads allow


def virtual_engines(held: Plan) -> int:
    """The schedulers of `held`'s engine that each run max_num_seqs (EngineFigures.virtual_engines); 1 without one."""
    return held.engine.virtual_engines if held.engine is not None else 1


def raised_cap(target: int, plan_with: Callable[[tuple], Optional[Plan]], engines: int = 1) -> tuple:
    """(changes, plan): the engine's cap on the sequences it runs at once raised to `target` (max_num_seqs: vLLM
    0.32.0 v1/core/sched/scheduler.py:129 max_num_running_reqs), and max_num_batched_tokens with it where the engine
    refuses fewer batched tokens than sequences (config/scheduler.py:328-333; engines/vllm_settings.py
    resolve_settings says so on max_num_seqs). `plan_with(changes)` plans the deployment with those settings changed:
    its budget too, as each running request's buffers grow with max_num_seqs. The one place kvplan raises the cap
    (check's remedies). `engines`: the schedulers that each take max_num_seqs on their own (V0's virtual engines, one
    a pipeline stage: vllm_v0_pp.py), so that target / engines, rounded up, a scheduler is enough."""
    target = -(-target // max(engines, 1))
    changes = (("max_num_seqs", target),)
    try:
        return changes, plan_with(changes)
    except FieldError as exc:
        if exc.field != "max_num_seqs":
            raise
    changes += (("max_num_batched_tokens", target),)
    return changes, plan_with(changes)


def reaching(change: tuple, target: int, plan_with: Callable[[tuple], Optional[Plan]]) -> Optional[tuple]:
    """`change` when the deployment so changed holds `target` sequences; `change` and the cap raised (raised_cap)
    where that cap, not memory, keeps it short and the raised plan holds them; None otherwise. `plan_with(cap)`
    plans the changed deployment with the cap changes `cap` (() for the cap as set), None where it cannot be
    planned. The one rule for every remedy kvplan offers against a capacity target (fitting_remedies, check's
    text-only deployment)."""
    held = plan_with(())
    if held is None:
        return None
    if held.max_concurrency >= target:
        return change
    if held.max_concurrency_limited_by != "max_num_seqs":  # memory's limit: no cap raised lifts it
        return None
    cap, held = raised_cap(target, plan_with, virtual_engines(held))
    return change + cap if held is not None and held.max_concurrency >= target else None


def fitting_remedies_for(refusal, spec: ModelSpec, context: int, precision: Precision, tp: int,
                         block_size: Optional[int], budget_for: Callable[..., Budget], pp: Optional[int] = None,
                         settings: Optional[dict] = None, asked: Optional["Replan"] = None) -> list:
    """fitting_remedies (of one request) for a plan the engine may have refused (`refusal`, None for none). A
    configuration refusal holds whatever the TP degree or dtype (a length past the model's own, a block size, a
    release), so the search runs at its first planned fix (Refusal.fixes, `asked` plans it): that fix's one change
    when it holds a request there (a fix of several changes needs them all: the remedy names them), else the remedies
    that fit at it; none when it has no fix or that fix could not be planned."""
    if refusal is None or not refusal.configuration:
        return fitting_remedies(spec, context, precision, tp, block_size, budget_for, pp=pp, settings=settings)
    first = refusal.fixes[0] if refusal.fixes else None
    if first is None or first.fits is None or asked is None:
        return []
    if first.fits:
        return [first.changes] if len(first.changes) == 1 else []
    return asked.fitting_remedies_at(first.changes)


@dataclass(frozen=True)
class Reach:
    """How far the remedies of one deployment are searched (fitting_remedies, the one place they are): TP degrees up
    to the GPUs of one node (GPU.node_gpus: a TP group stays on one host's fabric, vLLM 0.32.0
    docs/serving/parallelism_scaling.md:8-9), fp8 KV alone and with them, then tp x pp shapes with TP within the
    node and pipeline stages across nodes (:9, :122: tp = the GPUs of a node, pp = the number of nodes), at the
    asked KV dtype and fp8, up to MAX_STAGED_NODES nodes' GPUs in all."""

    gpu: GPU  # whose node (GPU.node_gpus) bounds the TP degrees searched, and names itself (GPU.node_words)
    fp8: Optional[Precision]  # the fp8 cache to try; None where the cache is 8 bits or fewer already
    tp: int  # the TP degree asked
    pp: int  # the pipeline degree asked (1 for none)
    tps: tuple  # the TP degrees within the node the heads allow, ascending
    layers: int  # decoder layers: no more pipeline stages than these
    most_gpus: int  # the pipeline remedy's tp x pp at most; 0 where it tries none (a drafter, no SupportsPP)
    barred: str  # what bars every TP degree above `tp` within the node ("the 11 attention heads"); "" for nothing
    dcp: int = 0  # the largest -dcp D the remedies try (engines/vllm_dcp.remedy_engines); 0 for none

    @property
    def node(self) -> int:
        """The largest TP degree searched: the GPUs one TP group may span."""
        return self.gpu.node_gpus

    @property
    def wider(self) -> tuple:
        """The TP degrees the TP remedies try: above the one asked, within the node."""
        return tuple(t for t in self.tps if t > self.tp)

    def stage_degrees(self, tp: int) -> tuple:
        """The pipeline degrees the pipeline remedy tries at `tp`: any but the one asked (the TP remedies' own)."""
        most = min(self.layers, self.most_gpus // tp)
        return tuple(k for k in range(1, most + 1) if k != self.pp)

    def within_one_node(self, remedy: tuple) -> bool:
        """A remedy of TP degree or KV dtype that adds no pipeline stage, or a tp x pp shape that one node holds."""
        fields = dict(remedy)
        if "pp" in fields:
            return fields.get("tp", self.tp) * fields["pp"] <= self.node
        return "tp" in fields or "kv_dtype" in fields or "dcp" in fields

    def shortfall(self, remedies, spell: Callable[[str], str], verb: str) -> str:
        """Why no remedy keeps to one node, where none does: "no tp up to 8 (one H100-80GB-SXM node) fits, even
        with kv_dtype fp8"; the heads' bar or a TP degree past the node where no TP remedy was tried; "" where one
        does."""
        if any(self.within_one_node(remedy) for remedy in remedies):
            return ""
        if not self.barred and self.tp <= self.node:
            even = f", even with {spell('kv_dtype')} fp8" if self.fp8 is not None else ""
            return f"no {self._within(spell)} {verb}{even}"
        short = f", and {spell('kv_dtype')} fp8 alone falls short" if self.fp8 is not None else ""
        return self._no_wider(spell) + short

    def nothing(self, spell: Callable[[str], str], verb: str) -> str:
        """Every remedy searched, none found: "no tp up to 8 (one H100-80GB-SXM node), kv_dtype fp8, tp x pp up to
        64 GPUs or shorter context makes it fit"."""
        wider = not self.barred and self.tp <= self.node
        tried = [self._within(spell)] if wider else []
        tried += [f"{spell('kv_dtype')} fp8"] if self.fp8 is not None else []
        tried += [f"{spell('dcp')} up to {self.dcp}"] if self.dcp else []
        if self.most_gpus:
            tried.append(f"{spell('tp')} x {spell('pp')} up to {self.most_gpus} GPUs")
        tried.append(f"shorter {spell('context')}")
        words = f"no {', '.join(tried[:-1])} or {tried[-1]}" if len(tried) > 1 else f"no {tried[0]}"
        return f"{words} {verb}" if wider else f"{self._no_wider(spell)}; {words} {verb}"

    def _within(self, spell: Callable[[str], str]) -> str:
        return f"{spell('tp')} up to {self.node} ({self.gpu.node_words(spell)})"

    def _no_wider(self, spell: Callable[[str], str]) -> str:
        """Why the TP remedies tried no degree: the asked one is past the node, or the heads bar every one above."""
        if self.tp > self.node:
            return f"{spell('tp')} {self.tp} spans more than {self.gpu.node_words(spell, counted=True)}"
        return f"{self.barred} allow no {spell('tp')} above {self.tp} within {self.gpu.node_words(spell)}"


def remedy_reach(spec: ModelSpec, tp: int, pp: Optional[int], precision: Precision, gpu=None,
                 version: Optional[str] = None, engine=None) -> Reach:
    """The Reach of a deployment at `tp` x `pp` with a `precision` cache on `gpu` (None: the default GPU), served by
    vLLM `version` (None: the pinned release), which may refuse any pipeline stage (sharding.pipeline_refusal);
    `engine` (the engine model with its flags; None: no -dcp remedy) the -dcp degrees it tries."""
    if gpu is None:
        from .catalog import DEFAULT_GPU, find_gpu

        gpu = find_gpu(DEFAULT_GPU)
    node = gpu.node_gpus
    tps = tuple(t for t in range(1, node + 1) if shard(spec, t).valid)
    staged = spec.draft is None and not pipeline_refusal(spec, version)  # kvplan places no drafter with pp
    fp8 = resolve_kv_dtype("fp8", spec.dtype) if precision.bits > 8 else None
    dcp = max((d for d, _ in remedy_engines(engine, spec, tp)), default=0) if engine is not None else 0
    return Reach(gpu, fp8, tp, pp or 1, tps, spec.num_hidden_layers, MAX_STAGED_NODES * node if staged else 0,
                 _barred(spec, tp, node, tps), dcp)


def _barred(spec: ModelSpec, tp: int, node: int, tps: tuple) -> str:
    """What bars every TP degree from tp + 1 to the node's, in words ("" where one is allowed or none is there)."""
    if tp >= node or any(t > tp for t in tps):
        return ""
    heads = spec.num_attention_heads
    attention = all(heads % t for t in range(tp + 1, node + 1))
    return f"the {heads} attention heads" if attention else "the model's heads"


def fitting_remedies(spec: ModelSpec, context: int, precision: Precision, tp: int, block_size: Optional[int],
                     budget_for: Callable[..., Budget], target: int = 1, pp: Optional[int] = None,
                     settings: Optional[dict] = None) -> list:
    """The nearest remedies that hold `target` sequences, cheapest first, each a tuple of (field, value) changes (how
    far: Reach): the smallest larger TP degree within one node, fp8 KV, and where neither alone does, the smallest
    such degree with fp8 KV; the longest context that fits as is (longest.py); and where nothing within one node
    does, the cheapest tp x pp shape (staged_remedy, staged_cost). Each with the engine's cap on running sequences
    raised to `target` (raised_cap) where that cap, not memory, keeps it short:
    ((("tp", 2), ("max_num_seqs", 1500)), (("kv_dtype", "fp8"), ("max_num_seqs", 1500)), ...)."""
    settings = settings or {}
    engine = _engine(settings.get("engine", "none"))
    reach = remedy_reach(spec, tp, pp, precision, settings.get("gpu"), release_of(settings.get("engine", "none")),
                         engine)
    raised_budgets = {}  # the budget at each raised cap and length, built once for the whole search

    def budget_at(changes: tuple):
        if not changes or not hasattr(budget_for, "at"):  # the cap as set, or a fixed budget (no buffer moves)
            return budget_for
        if changes not in raised_budgets:
            raised_budgets[changes] = budget_for.at(**dict(changes))
        return raised_budgets[changes]

    def remedy(change: tuple, context=context, precision=precision, tp=tp, pp=pp, settings=settings, moved=()):
        return reaching(change, target, lambda raised: _replanned(spec, context, precision, tp, block_size,
                                                                  budget_at(moved + raised), pp,
                                                                  {**settings, **dict(raised)}))

    def at_length(length: int) -> Optional[tuple]:
        # on the budget vLLM leaves at that length, as `check` plans it there: its block tables shrink with
        # max_model_len (DeepSeek-V4-Flash, tp 4, H100, vLLM 0.20.0: 0.97 GiB more at 34,560 tokens than at 1M)
        return remedy((("context", length),), context=length, moved=(("context", length),))

    def smallest(found) -> Optional[tuple]:
        return next((r for r in found if r), None)

    def shape(t: int, k: int, fp8: bool) -> Optional[tuple]:  # vLLM's own layer split: no partition
        change = ((("tp", t),) if t != tp else ()) + (("pp", k),) + ((("kv_dtype", "fp8"),) if fp8 else ())
        return remedy(change, tp=t, pp=k, precision=reach.fp8 if fp8 else precision,
                      settings=dict(settings, pp_partition=None))

    remedies = [smallest(remedy((("tp", t),), tp=t) for t in reach.wider)]
    if reach.fp8 is not None:
        remedies.append(remedy((("kv_dtype", "fp8"),), precision=reach.fp8))
    # vLLM's -dcp D (no more GPUs: D of the TP ranks each keep 1/D of a request's cache), the smallest D that holds
    remedies.append(smallest(remedy((("dcp", d),), settings=dict(settings, engine=at_d))
                             for d, at_d in remedy_engines(engine, spec, tp)))
    if reach.fp8 is not None:
        if not any(remedies):
            remedies.append(smallest(remedy((("tp", t), ("kv_dtype", "fp8")), tp=t, precision=reach.fp8)
                                     for t in reach.wider))
    in_one_node = any(remedies)
    asked = _replanned(spec, context, precision, tp, block_size, budget_for, pp, settings)
    if asked is not None and not asked.budget.weights_exceed:  # weights past the GPU leave no length room
        # The longest length that starts AND keeps `target` requests resident, which may sit below the estimate a
        # start refusal quotes (vllm.estimate_max_model_len, vLLM's own figure, kept as vLLM words it); why, by
        # release: engines/vllm_estimate_gap.py. gemma-3-27b-it, 14 GiB of KV (--kv-cache-memory-bytes), H100,
        # 0.20.0, 8,192 batched tokens: 11,468 blocks of 10 pages, a request cdiv(L, 16) full + 6 x 577 sliding;
        # vLLM's estimate 128,096 (8,006 + 3,462 = 11,468 blocks), the remedy 128,080 (8,005 + 3,462 = 11,467).
        remedies.append(longest_fitting(context, at_length, *page_cycles(spec.layers, asked.block_size)))
    if not in_one_node:
        remedies.append(staged_remedy(reach, shape))
    return [r for r in remedies if r]


def staged_remedy(reach: Reach, shape: Callable[[int, int, bool], Optional[tuple]]) -> Optional[tuple]:
    """The pipeline remedy: of the shapes tp x pp (each TP degree the heads allow within the node, each pipeline
    degree up to reach.most_gpus in all) at the asked KV dtype and at fp8, the cheapest (staged_cost) that holds the
    target; `shape(tp, pp, fp8)` is that remedy's changes where it holds it. MLA latents and replicated KV heads do
    not shrink with TP but do with stages, so every TP degree is tried, not only the widest. At one TP degree and
    dtype more stages cost no less and mostly hold more (fewer layers and weights a GPU), so the fewest that hold are
    found by bisection, and a shape costing no less than the best found is not tried. Where stages split a model's
    layer kinds unevenly (DeepSeek-V4's compressed layers, sliding windows) holding is not monotone in pp and the
    bisection may name a costlier shape than one that holds, or none (6 of 172 DeepSeek-V4 searches on GB200 in a
    brute-force comparison, none of ~900 others); a linear scan costs 0.9-2.2 s a search, past estimate's budget."""
    best, found = None, None  # staged_cost of the best remedy found, and its changes
    dtypes = (False, True) if reach.fp8 is not None else (False,)
    for t in reversed(reach.tps):  # the node's TP degree first: the usual answer, a tight bound for the rest
        for rank, fp8 in enumerate(dtypes):
            cheaper = [k for k in reach.stage_degrees(t) if best is None or staged_cost(reach.node, t, k, rank) < best]
            hit = fewest(cheaper, lambda k: shape(t, k, fp8))
            if hit is not None:
                best, found = staged_cost(reach.node, t, hit[0], rank), hit[1]
    return found


def staged_cost(node: int, tp: int, pp: int, fp8: int) -> tuple:
    """What orders the pipeline remedies, cheapest first: the nodes they take, then within one node the fewest GPUs
    (the rest of the node serves other replicas), fewer stages, the asked dtype; across nodes, which are rented and
    wired whole, the asked dtype, then the fewest stages (the widest TP the nodes hold: tp = a node's GPUs, pp = the
    nodes, as vLLM's guide advises, docs/serving/parallelism_scaling.md 0.32.0:122), then the fewest GPUs. Llama-3.1-
    405B at 128K on H100s: tp 8 x pp 2 on two nodes, not tp 4 x pp 3 on the same two."""
    nodes = -(-pp // (node // tp))  # a TP group stays within a node: a node holds node // tp of them
    return (nodes, tp * pp, pp, fp8) if nodes == 1 else (nodes, fp8, pp, tp * pp)


def fewest(degrees: list, holds: Callable[[int], Optional[tuple]]) -> Optional[tuple]:
    """(degree, holds(degree)) for the first of `degrees` (ascending) where holds() answers, taking each degree at
    or past one that holds to hold too; None where the last does not."""
    if not degrees:
        return None
    last = holds(degrees[-1])
    if not last:
        return None
    low, high, found = 0, len(degrees) - 1, (degrees[-1], last)
    while low < high:
        mid = (low + high) // 2
        held = holds(degrees[mid])
        if held:
            high, found = mid, (degrees[mid], held)
        else:
            low = mid + 1
    return found


@dataclass(frozen=True)
class Replan:
    """A plan's deployment as asked (the spec before the GPU's view, the KV dtype as spelled, the block size as
    given), to plan again with some of its fields changed: a configuration refusal's fixes (engine, kv_dtype,
    block_size, context), and the changes that fit at one of them."""

    spec: ModelSpec
    context: int
    kv_dtype: str
    block_size: Optional[int]
    tp: int
    budget_for: Callable[..., Budget]
    settings: dict  # engine, pp, pp_partition, gpu, max_num_seqs, max_num_batched_tokens
    other_engine: Optional[Callable] = None  # (engine name, context) -> (spec, engine, budget_for)

    def _changed(self, changes: tuple) -> Optional[tuple]:
        """(spec, plan() keywords) with `changes` made; None where a release cannot be planned here."""
        fields = dict(context=self.context, kv_dtype=self.kv_dtype, block_size=self.block_size)
        fields.update((field, value) for field, value in changes if field != "engine")
        spec, settings = self.spec, dict(self.settings, budget_for=self.budget_for)
        release = dict(changes).get("engine")
        if release is not None:
            if self.other_engine is None:
                return None
            spec, settings["engine"], settings["budget_for"] = self.other_engine(release, fields["context"])
        # the budget at the changed length or block size (buffers built at both); other_engine's is at the length
        keys = ("block_size",) if release else ("block_size", "context")
        moved = {k: fields[k] for k in keys if fields[k] != getattr(self, k)}
        if moved and hasattr(settings["budget_for"], "at"):
            settings["budget_for"] = settings["budget_for"].at(**moved)
        return spec, dict(settings, tp=self.tp, **fields)

    def at(self, changes: tuple) -> Optional[Plan]:
        """The plan with `changes` made (no suggestions, no speed); None where it cannot be planned here."""
        changed = self._changed(changes)
        if changed is None:
            return None
        spec, keywords = changed
        return plan(spec, suggest=False, speed=False, **keywords)

    def fitting_remedies_at(self, changes: tuple) -> list:
        """fitting_remedies (of one request) of the plan with `changes` made."""
        spec, keywords = self._changed(changes)
        model = _engine(keywords["engine"])
        gpu = keywords["gpu"]
        if gpu is None:
            from .catalog import DEFAULT_GPU, find_gpu

            gpu = find_gpu(DEFAULT_GPU)
        viewed = model.on_gpu(spec, gpu) if hasattr(model, "on_gpu") else spec
        precision = resolve_kv_dtype(keywords["kv_dtype"], viewed.dtype, viewed.auto_kv_dtype)
        settings = {k: keywords[k] for k in ("engine", "pp_partition", "gpu", "max_num_seqs", "max_num_batched_tokens")}
        return fitting_remedies(spec, keywords["context"], precision, self.tp, keywords["block_size"],
                                keywords["budget_for"], pp=keywords["pp"], settings=settings)


def planned_fixes(model, refusal, asked: Replan, gpu) -> tuple:
    """The engine's fixes of `refusal` (checked against its configuration refusals), each planned: whether it then
    holds a request (Fix.fits), else what stops it (Fix.shortfall). A fix that cannot be planned here (a release
    without other_engine, or one whose planning fails on a field: a flag its release lacks) stays unplanned ("vLLM
    accepts ..."). A release fix that holds onward ("or newer") or over a closed run (Fix.span) is planned at every
    boundary release of it (ranged_fixes)."""
    if not hasattr(model, "fixes"):
        return ()
    out = []
    for fix in model.fixes(asked.spec, refusal, kv_dtype=asked.kv_dtype, context=asked.context,
                           block_size=asked.block_size, tp=asked.tp, gpu=gpu):
        outcome = _outcome(asked, fix.changes)
        if outcome is None:  # not planned: no release range claimed past the one named (its flags unchecked there)
            out.append(replace(fix, onward="", span=()) if fix.onward in ("newer", "older") or fix.span else fix)
        elif (fix.onward in ("newer", "older") or fix.span) and hasattr(model, "boundary_releases"):
            out += ranged_fixes(asked, fix, outcome, model.boundary_releases())
        else:
            out.append(replace(fix, fits=outcome[0], shortfall=outcome[1]))
    return tuple(out)


def _outcome(asked: Replan, changes: tuple) -> Optional[tuple]:
    """(fits, shortfall) of the plan with `changes` made; None where it cannot be planned here."""
    try:
        held = asked.at(changes)
    except KvplanError:
        return None
    if held is None:
        return None
    return (True, "") if held.fits else (False, shortfall(held))


def ranged_fixes(asked: Replan, fix: Fix, outcome: tuple, boundaries: tuple) -> list:
    """A release fix whose configuration passes onward ("0.19.0 or newer") or over a closed run ("any release from
    0.11.1 before 0.16.0", Fix.span), planned at each boundary release of it (a rule kvplan models, memory's included,
    changes only at one): the range is claimed only for an outcome every one of them shares. Else the releases that
    hold a request, nearest first, as a closed run (release_span: from the oldest of them before the first newer
    boundary that differs, releases between two boundaries acting as the older one) or alone; and, where the nearest
    does not hold one, what stops it over the run of releases it stops alike. Releases past the first that differs
    are planned only until those runs are known (settled)."""
    first = release_number(fix.changes[0][1])
    newer = fix.onward == "newer" or (bool(fix.span) and release_number(fix.span[0]) == first)
    onward = [r for r in boundaries if (release_number(r) > first if newer else release_number(r) < first)
              and _within(r, fix.span)]
    onward.sort(key=release_number, reverse=not newer)
    rest = fix.changes[1:]
    outcomes = [(fix.changes[0][1].split("==", 1)[1], outcome)]
    last = onward[-1] if onward else outcomes[0][0]
    for release in onward:  # nearest first, until the runs below are known
        outcomes.append((release, _outcome(asked, (("engine", f"vllm=={release}"),) + rest)))
        if settled(outcomes):
            break
    if all(o == outcome for _, o in outcomes):  # every boundary planned, all alike
        return [replace(fix, fits=outcome[0], shortfall=outcome[1])]
    found = []
    fitting = _first_run(outcomes, FITS)
    if fitting:
        found.append(_ranged(fix, fitting, last, boundaries, fits=True))
    if not outcome[0]:
        found.insert(0, _ranged(fix, _first_run(outcomes, outcome), last, boundaries, fits=False,
                                shortfall=outcome[1]))
    return found


FITS = (True, "")  # a planned fix's outcome (fits, shortfall) where it holds a request


def settled(outcomes: list) -> bool:
    """Whether ranged_fixes' answer is known from these outcomes (release, (fits, shortfall)), the fix's own first
    and the boundary releases past it nearest first, whatever the farther ones hold: once one differs from the fix's
    own (the range is not claimed whole), the first run alike ends there; where the fix's own holds a request that
    run is the answer, else the answer also needs the first run that holds one, started and ended."""
    own = outcomes[0][1]
    if all(o == own for _, o in outcomes):
        return False
    if own == FITS:
        return True
    held = [o == FITS for _, o in outcomes]
    return True in held and False in held[held.index(True):]


def _within(release: str, span: tuple) -> bool:
    """`release` lies in the closed run `span` (Fix.span: from its first, before its second); any where it is ()."""
    return not span or release_number(span[0]) <= release_number(release) < release_number(span[1])


def _first_run(outcomes: list, wanted: tuple) -> list:
    """The releases of the first unbroken run with outcome `wanted`, nearest first."""
    run = []
    for release, outcome in outcomes:
        if outcome == wanted:
            run.append(release)
        elif run:
            break
    return run


def _ranged(fix: Fix, run: list, last: str, boundaries: tuple, **outcome) -> Fix:
    """`fix` moved to the first release of `run`: onward where the run reaches `last`, the last boundary of an onward
    fix, else the closed run (release_span; ending where the fix's own does where it reaches that), or that release
    alone."""
    changes = (("engine", f"vllm=={run[0]}"),) + fix.changes[1:]
    if run[-1] == last and fix.onward:
        return replace(fix, changes=changes, **outcome)
    span = release_span(run, boundaries) if len(run) > 1 else ()
    return replace(fix, changes=changes, onward="", span=span, **outcome)



def shortfall(held: Plan) -> str:
    """What keeps a plan from holding one request, in kvplan's words (a fix's planned outcome)."""
    refusal = held.engine.refusal if held.engine is not None else None
    if not held.tp_valid:
        return f"tp {held.tp} is refused ({held.tp_errors[0].rstrip('.')})"
    if held.budget.weights_exceed:
        return "the weights alone do not fit"
    if held.kv_budget_bytes_per_gpu <= 0:
        return "no KV memory is left"
    if refusal is not None and refusal.configuration:
        return f"vLLM refuses it: {refusal.first_sentence}"
    if held.engine is not None and held.engine.starts:
        return "it holds no request"
    return "one request does not fit the KV budget"


def fits_at(fix: Fix, remedies: tuple, spell: Callable[[str], str] = str) -> str:
    """The remedies found at a fix that does not hold a request by itself (fitting_remedies_for), in words: one that
    changes only fields the fix sets stands alone ("would fit with --max-model-len 27504"), the others hold at the
    fix ("at --max-model-len 131072 with --tensor-parallel-size 2")."""
    fields = dict(fix.changes)
    alone = [Fix(tuple((f, dict(remedy).get(f, v)) for f, v in fix.changes)).words(spell)
             for remedy in remedies if all(field in fields for field, _ in remedy)]
    others = options_said_whole([r for r in remedies if not any(field in fields for field, _ in r)], spell)
    at = Fix(fix.changes).words(spell)
    if alone and others:
        return "would fit with " + " or ".join(alone) + f", or at {at} with {others}"
    return "would fit with " + " or ".join(alone) if alone else f"at {at} it would fit with {others}"
