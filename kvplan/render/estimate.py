"""`kvplan estimate` for people: per plan, what vLLM would log at startup (its own three lines); then the plans
table with a legend for every column shown, and the footnotes that say which rules applied and what would fit.
The table keeps context, KV dtype, TP and the request count at any width and drops the other columns, least
important first, when the terminal is narrow."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Optional

from ..model.vision import UNCOUNTED_TOWER
from ..plan.plan import KEEPS_ROOM, Plan, no_prompt_words
from ..plan.remedy_words import changes_in_words
from ..plan.sharding import pipeline_refusal
from ..plan.stages import differs
from .text import Column, fitted_table, left_out, prompt_words, size


def escape(text: str) -> str:
    """User-controlled text (ids, paths, engine messages) as literal rich text."""
    from rich.markup import escape as rich_escape

    return rich_escape(str(text))

SMALL_KV_BUDGET = 2**20  # a --kv-cache-memory-bytes below 1 MiB is almost surely a missing unit

COLUMNS = (
    Column("max len", legend="tokens per request (vLLM's --max-model-len)"),
    Column("KV dtype", justify="left", legend=""),
    Column("TP", legend=""),
    Column("requests", legend="requests of max len the engine holds at once (vLLM's \"Maximum concurrency\" "
                              "rounded down, unless a note below gives both); ! = a warning below"),
    Column("KV memory", priority=2, legend="KV-cache memory per GPU (vLLM's \"Available KV cache memory\")"),
    Column("KV tokens", priority=4, legend=""),  # kv_tokens_legend: what the figure counts, by the plans' engine
    Column("per request", priority=3, legend="KV bytes one request of max len holds per GPU (paged, windows "
                                             "capped)"),
    Column("per token", priority=5, legend="KV bytes of one token per GPU, all layers"),
    Column("ITL ms b1|max", priority=6,
           legend="predicted inter-token latency (ms per output token) at batch 1 | at max requests"),
    Column("tok/s b1|max", priority=7,
           legend="output tokens per second of the whole batch, at batch 1 | at max requests"),
)


def _engine(plan):
    """The engine model's startup figures for this plan, when the planner produced them."""
    return getattr(plan, "engine", None)


def configuration_refusal(plan):
    """The engine's refusal of this plan's configuration whatever the memory (a cache dtype, a length past the
    model's own, an architecture the release does not serve), else None."""
    refusal = getattr(_engine(plan), "refusal", None)
    return refusal if getattr(refusal, "configuration", False) else None


def gpu_refusal(plan):
    """The engine's refusal of the GPU itself (sparse MLA or DeepSeek-V4 where no kernel of theirs runs), the same
    for every row of an estimate: said once, in the footnotes (gpu_refusal_line), not per row."""
    refusal = configuration_refusal(plan)
    return refusal if refusal is not None and refusal.field == "gpu" else None


def refused_gpu_name(plan, device=None) -> str:
    """The GPU a refusal of the GPU names: the budget's, else (a KV budget given: no GPU budget) `device`, the GPU
    planned on (EstimateResult.gpu), whose compute capability the engine picked its kernels by all the same."""
    return plan.budget.gpu_name or getattr(device, "name", None) or "the GPU planned on"


def gpu_refusal_line(plan, spell=str, device=None) -> str:
    """A refusal of the GPU, once for every plan it stops: vLLM's words and what would start."""
    e, refusal = _engine(plan), gpu_refusal(plan)
    advice = refusal.advice(spell)
    return (f"[red]{escape(e.name)} {escape(e.version)} does not start on "
            f"{escape(refused_gpu_name(plan, device))}:[/red] "
            f"{escape(refusal.reason.rstrip('.'))}" + (f"; {escape(advice)}." if advice else "."))


def log_block(plan, spell=str) -> list:
    """vLLM's startup lines for one plan, verbatim, under a header naming the plan; its refusal when it would
    not start (a refusal of the GPU is left to the footnotes, said once); what stays resident."""
    e = _engine(plan)
    if e is None or not (e.log_lines or e.refusal) or gpu_refusal(plan) is not None:
        return []
    pp = f", {spell('pp')} {plan.pp}" if plan.pp > 1 else ""
    kv = header_kv_dtype(plan)
    kv = f"{spell('kv_dtype')} {kv}, " if kv else ""
    out = [f"[bold]{escape(e.name)} {escape(e.version)}[/bold] at {spell('context')} {plan.context}, "
           f"{kv}{spell('tp')} {plan.tp}{pp}{dcp_words(plan, spell)}:"]
    note = cache_dtype_note(plan)
    if note:
        out.append(f"  [yellow]{note}[/yellow]")
    out += [f"  {escape(line)}" for line in e.log_lines]
    if e.refusal is not None:
        out.append(f"  [red]refuses to start:[/red] {escape(e.refusal.reason)}")
    elif resident_line(plan, spell):
        out.append(f"  {resident_line(plan, spell)}")
    return out


def dcp_words(plan, spell=str) -> str:
    """", -dcp D" and its interleave (where not 1) as given, and ", -pcp P (N GPUs)" (tp x pp x pcp), for a plan's
    header; '' without either."""
    dcp, pcp = getattr(plan, "dcp", None), getattr(plan, "pcp", None)
    interleave, comm = getattr(plan, "dcp_interleave", None), getattr(plan, "dcp_comm_backend", None)
    replicate = getattr(plan, "dcp_q_replicate", None)
    words = f", {spell('dcp')} {dcp}" + (f", {spell('dcp_interleave')} {interleave}" if interleave else "") \
        + (f", {spell('dcp_comm_backend')} {comm}" if comm else "") \
        + (f", {switch_words('dcp_q_replicate', replicate, spell)}" if replicate is not None else "") if dcp else ""
    dp = plan.parallel.dp if getattr(plan, "parallel", None) is not None else 1
    gpus = f"{plan.core_gpus * dp} GPUs" + (f" with {spell('dp')} {dp}" if dp > 1 else "")
    return words + (f", {spell('pcp')} {pcp} ({gpus})" if pcp else "")


def switch_words(field: str, on: bool, spell=str) -> str:
    """A boolean setting given either way, as the caller names its fields (`spell`): a flag alone when on and in its
    --no- form when off, as vLLM's BooleanOptionalAction takes it ("--no-dcp-q-replicate"); a deployment file's
    key or the API's keyword with its value when off ("dcp_q_replicate false"), alone when on (as
    parallel_capacity names enable_expert_parallel)."""
    spelled = spell(field)
    if on:
        return spelled
    return "--no-" + spelled[2:] if spelled.startswith("--") else f"{spelled} false"


def resident_line(plan, spell=str) -> str:
    """The requests resident where --max-num-seqs, not memory, caps them; '' otherwise."""
    if plan.max_concurrency_limited_by != "max_num_seqs":
        return ""
    return f"resident: {plan.max_concurrency:,} requests ({seqs_cap(plan, spell)})"


def seqs_cap(plan, spell=str) -> str:
    """Why max_num_seqs holds the requests: it caps them, or each of V0's virtual engines (vllm_v0_pp.py)."""
    e = _engine(plan)
    engines = 1 if e is None else e.virtual_engines
    if engines == 1:
        return f"{spell('max_num_seqs')} caps them"
    return (f"{spell('max_num_seqs')} caps each of V0's {engines} virtual engines, one a pipeline stage, at "
            f"{plan.max_concurrency // engines:,}")


def dtype_label(plan, kept_only: bool = False) -> str:
    """The KV dtype asked: kvplan's name, or the spelling asked where it is another spelling of that precision
    (`fp8` for fp8_e4m3: vLLM's sparse MLA keeps the two apart). `kept_only`: the spelling only where the engine
    keeps another cache than the name (a row then still matches the JSON's kv_dtype wherever the two agree)."""
    from ..model.precision import kv_dtype_name, vllm_name

    asked = getattr(plan, "kv_cache_dtype", "")
    alias = asked not in ("", "auto", plan.kv_dtype, vllm_name(plan.kv_dtype)) and kv_dtype_name(asked) == plan.kv_dtype
    if kept_only and alias:
        e = _engine(plan)
        alias = e is not None and e.kv_cache_dtype not in (None, plan.kv_dtype)
    return asked if alias else plan.kv_dtype


def asked_vllm_name(plan) -> str:
    from ..model.precision import vllm_name

    if plan.kv_dtype == "fp32":  # a float32 model's cache: only `auto` names it (vLLM's list has no float32)
        return "auto"
    return vllm_name(dtype_label(plan))


def header_kv_dtype(plan) -> str:
    """The KV dtype a plan's header names, as the release's own --kv-cache-dtype would be typed: the model's dtype
    that `auto` resolves to where the release lists it, `auto` where it does not (bfloat16 is a choice from vLLM
    0.11, float16 from 0.18: vllm_versions.KV_DTYPE_SINCE), '' before 0.3.0, which has no such flag."""
    name = asked_vllm_name(plan)
    e = _engine(plan)
    if e is None or e.name != "vllm":
        return name
    from ..engines.vllm_versions import KV_DTYPE_FLAG_SINCE, kv_dtype_choices, parse_version

    if parse_version(e.version) < KV_DTYPE_FLAG_SINCE:
        return ""
    return name if name in kv_dtype_choices(e.version) else "auto"


def cache_dtype_note(plan) -> str:
    """The engine's cache dtype where it is not the one asked (Falcon's bf16, V3.2's fp8_ds_mla), else '' (also on a
    GPU the engine refuses: no backend there keeps anything)."""
    e = _engine(plan)
    if e is None or e.kv_cache_dtype == plan.kv_dtype or gpu_refusal(plan) is not None:
        return ""
    article = "an" if e.kv_cache_dtype.startswith(("fp8", "int8")) else "a"
    return (f"this model's attention keeps {article} {e.kv_cache_dtype} cache in {e.name} where the KV dtype asks "
            f"{asked_vllm_name(plan)} (the engine's rule for this attention)")


TERM_NAMES = {"weights": "weights", "profile_peak": "profile peak", "activation": "activations",
              "non_torch": "non-torch", "cuda_context": "CUDA context", "cuda_graphs": "CUDA graphs", "nccl": "NCCL",
              "margin": "transient margin", "runner_state": "runner buffers", "lora": "LoRA slots",
              "mamba_cache": "Mamba state cache"}


def budget_lines(plans: list, spell=str) -> list:
    """Each tp's budget line, of its first plan; where some of its KV dtypes run on V0 and some on V1 (v0_notes), one
    for each engine, naming its dtypes."""
    by_tp: dict = {}
    for p in plans:
        engine = getattr(_engine(p), "v0_reason", "")
        by_tp.setdefault(p.tp, {}).setdefault(engine, []).append(p)
    lines = []
    for tp, engines in by_tp.items():
        for group in engines.values():
            dtypes = "/".join(dict.fromkeys(p.kv_dtype for p in group))
            named = f"(tp {tp}, {dtypes}" if len(engines) > 1 else f"(tp {tp}"
            lines.append(budget_line(group[0], spell).replace(f"(tp {tp}", named, 1) + ".")
    return lines


def stage_lines(plans: list) -> list:
    """Where a pipeline's stages differ, a line a TP degree (of its first plan, as budget_lines): the stage whose
    blocks set the capacity, then the other stages' KV budgets (plan/stages.py); none at pp 1."""
    lines, said = [], set()
    for p in plans:
        if p.tp in said or not differs(p.stages):
            continue
        said.add(p.tp)
        tight = next((s for s in p.stages if s.sets_capacity), None)
        others = ", ".join(f"stage {s.stage} {size(s.budget.kv_budget_bytes_per_gpu)}" for s in p.stages
                           if s is not tight)
        if tight is None:  # no stage counted blocks (refused before the memory)
            lines.append(f"Pipeline stages (tp {p.tp}): KV budgets {others}.")
            continue
        blocks = f", {tight.kv_blocks:,} blocks" if tight.kv_blocks is not None else ""
        lines.append(f"Pipeline stages (tp {p.tp}): stage {tight.stage} sets capacity "
                     f"({size(tight.budget.kv_budget_bytes_per_gpu)}{blocks}); {others}.")
    return lines


def v0_notes(plans: list) -> list:
    """One line per V0 fallback among the plans (engines/vllm_v1_oracle.py: a release from 0.8 that serves them on
    its V0 engine), each naming its reason once: "vLLM 0.8.5 serves fp8_e4m3 on its V0 engine for ..."."""
    said: dict = {}
    for p in plans:
        e = _engine(p)
        if e is not None and getattr(e, "v0_reason", ""):
            said.setdefault((e.version, e.v0_reason), []).append(p.kv_dtype)
    return [f"Engine: vLLM {version} serves {'/'.join(dict.fromkeys(dtypes))} on its V0 engine, not V1, for {reason} "
            f"(EngineArgs._is_v1_supported_oracle): its budget, blocks and log lines are V0's."
            for (version, reason), dtypes in said.items()]


def budget_line(plan: Plan, spell=str) -> str:
    b = plan.budget
    if b.source != "gpu":
        return f"KV budget per GPU: {size(b.kv_budget_bytes_per_gpu)} ({spell('kv_budget')})"
    terms = f"{b.gpu_name} {size(b.gpu_memory_bytes)} x {b.gpu_util:.2f}"
    for t in b.terms:
        if t.name in TERM_NAMES and (t.bytes or t.name in ("weights", "profile_peak", "activation")):
            headless = " (no LM head)" if t.name == "weights" and "; no LM head" in t.source else ""  # pooling
            terms += f" - {TERM_NAMES[t.name]} {size(t.bytes)}{headless}"
    whose = f", {b.engine}" if b.engine else ", kvplan's generic reserves"
    where = f" pp stage {b.stage}" if b.stage is not None else ""
    left = b.kv_budget_bytes_per_gpu
    total = size(left) if left > 0 else f"nothing left (short by {size(-left)})"
    graphs = graph_reserve_note(b)
    return (f"KV budget (tp {plan.tp}{where}{whose}) = {terms} = {total}" + (f"; {graphs}" if graphs else "")
            + lora_graphs_note(b) + vision_note(b, spell) + override_note(plan, spell))


def graph_reserve_note(budget) -> str:
    """Why a release that reserves CUDA-graph memory reserves none here (the model runner, --enforce-eager, ROCm,
    capture sizes that leave no graph: vllm_budget.graph_reserve), from the graph term's source; '' otherwise."""
    why = next((t.source.split("0: ", 1)[1] for t in budget.terms if t.name == "cuda_graphs" and not t.bytes
                and "0: " in t.source and "after the cache was sized" not in t.source), None)
    return f"no CUDA-graph reserve: {why}" if why else ""


def lora_graphs_note(budget) -> str:
    """LoRA's second capture of every graph size, where the graph term's source says so (vllm_budget._lora_graphs:
    LoRA built, graphs captured); JSON has it in that source only."""
    from ..engines.vllm_lora import GRAPHS_NOTE

    return f"; {GRAPHS_NOTE}" if any(t.name == "cuda_graphs" and GRAPHS_NOTE in t.source for t in budget.terms) else ""


def override_note(plan: Plan, spell=str) -> str:
    """The KV cache a --num-gpu-blocks-override sizes, whatever the budget leaves (engines/vllm_workers.py
    OVERRIDE_RULES)."""
    e = _engine(plan)
    blocks = getattr(e, "num_gpu_blocks_override", None)
    if not blocks:
        return ""
    return (f"; the KV cache is {blocks:,} blocks ({size(e.override_kv_cache_bytes)}) by "
            f"{spell('num_gpu_blocks_override')}, not what the budget leaves")


def vision_note(b, spell=str) -> str:
    """What the profile peak says of a multimodal model's vision tower (vllm_profile.encoder_pass), for the line; the
    switch that leaves the pass out as the caller names it (`spell`: the flag, a deployment key, the API keyword)."""
    peak = next((t.source for t in b.terms if t.name == "profile_peak"), "")
    images = re.search(r"vision tower over (\d+) images", peak)
    if images:
        return (f"; the profile peak holds the vision tower's pass over {images.group(1)} dummy images "
                f"({switch_words('skip_mm_profiling', True, spell)} leaves it out, as vLLM's)")
    return "; this architecture's vision-tower profile pass is not modelled" if "not modelled" in peak else ""


def override_fix(plan: Plan, spell=str) -> str:
    """What --num-gpu-blocks-override would have to be for a plan it keeps from starting."""
    e, flag = _engine(plan), spell("num_gpu_blocks_override")
    per_block = e.override_kv_cache_bytes // e.num_gpu_blocks_override
    most = plan.kv_budget_bytes_per_gpu // per_block
    if e.override_kv_cache_bytes > plan.kv_budget_bytes_per_gpu:
        return f"{flag} {e.num_gpu_blocks_override:,} blocks do not fit the budget; at most {most:,} do."
    budget = f", and the budget holds {most:,}." if most > 0 else "."
    if e.virtual_engines > 1:  # V0 schedules a share of them a stage (vllm_v0_pp.py)
        return (f"{flag} {e.num_gpu_blocks_override:,} blocks hold no request of max len: {v0_shares(e)}"
                f"{watermark_words(e)}, so at least {e.fewest_blocks:,} in all" + budget)
    from ..engines.vllm_admission_gate import admission_rule

    null = e.core == "v0" or admission_rule(e.version).null_block  # V1 keeps none back before 0.8.3
    kept = "its watermark kept free" if e.watermark_blocks else ("the null block included" if null else
                                                                 f"vLLM {e.version} keeps no null block back")
    return (f"{flag} {e.num_gpu_blocks_override:,} blocks hold no request of max len; one needs "
            f"{e.fewest_blocks:,} ({kept})" + budget)


def v0_shared(plan) -> bool:
    """Whether V0's virtual engines, one a pipeline stage, share the plan's logged blocks (vllm_v0_pp.py)."""
    e = _engine(plan)
    return e is not None and e.virtual_engines > 1 and bool(e.num_gpu_blocks)


def v0_shares(e) -> str:
    """How V0's virtual engines split the blocks `e` (EngineFigures) logs, against what one request of max len
    needs: "each of V0's 2 virtual engines (one a pipeline stage) schedules 1,570 of the 3,140 blocks (25,120
    tokens), and one request of max len needs 2,048" (vllm_v0_pp.py: block manager num_gpu_blocks // pp)."""
    share = e.num_gpu_blocks // e.virtual_engines
    return (f"each of V0's {e.virtual_engines} virtual engines (one a pipeline stage) schedules {share:,} of the "
            f"{e.num_gpu_blocks:,} blocks ({share * e.block_size:,} tokens), and one request of max len needs "
            f"{e.blocks_per_request:,}")


def decode_cells(p: Plan) -> tuple:
    """(ITL ms, tokens/s) of the engine estimate at batch 1 and at max concurrency ("-" where nothing fits)."""
    if not p.decode or not p.fits:
        return "-", "-"  # not one request runs: there is no decode step to time
    one, full = p.decode.at(1), p.decode.at(p.max_concurrency) if p.fits else None
    itl = f"{one.itl_ms:.1f} | " + (f"{full.itl_ms:.1f}" if full else "-")
    rate = f"{one.tokens_per_s:,.0f} | " + (f"{full.tokens_per_s:,.0f}" if full else "-")
    return itl, rate


def plan_label(p: Plan, plans: list) -> str:
    """The words that tell a plan's speed line from the others of the run: its tp, and its KV dtype where the plans
    differ in it (a prompt's length already names the max len)."""
    kv = f"{dtype_label(p, kept_only=True)}, " if len({q.kv_dtype for q in plans}) > 1 else ""
    return f"{kv}tp {p.tp}"


def batch_line(p: Plan, plans: list, spell=str) -> str:
    """The decode estimates at the batch sizes --batch asked for (the table's cells hold batch 1 and max requests
    only); '' where none was asked or the plan holds no request (no decode cells either)."""
    if not p.decode or not p.fits:
        return ""
    asked = [q for q in p.decode.points if q.batch not in (1, p.max_concurrency)]
    if not asked:
        return ""
    cells = [f"{q.batch:,}: {q.itl_ms:.1f} ms, {q.tokens_per_s:,.0f} tok/s"
             + ("" if q.fits else f" [yellow](more than the {p.max_concurrency:,} held)[/yellow]") for q in asked]
    return (f"{spell('batch')} (max len {p.context:,}, {plan_label(p, plans)}): ITL and tok/s at batch "
            + "; ".join(cells) + ".")


def speed_lines(plans: list, spell=str) -> list:
    from ..engines.vllm_graphs_off import graphs_off_named

    lines = ["ITL and tok/s: engine estimate = bytes read / bandwidth + per-layer fixed cost + all-reduce latency + "
             "matmul FLOPs over the dense peak, constants fitted on public engine measurements (--format json: "
             "every batch, the roofline floor, the constants and their source)."]
    eager = any(p.budget.engine.endswith("enforce eager") for p in plans if p.budget.engine)
    # --enforce-eager, or the rule of the release the graph term names (a NONE given, -O0, splitting_ops [], ...)
    causes = [cause for cause in dict.fromkeys(graphs_off_named(p.budget) for p in plans) if cause]
    if eager or causes:
        said = "[yellow]--enforce-eager:[/yellow]" if eager else \
            f"[yellow]No CUDA graphs:[/yellow] {' / '.join(causes)} captures none, and"
        lines.append(f"{said} the decode and prefill times assume CUDA graphs, as the measurements they are fitted on "
                     "ran; eager steps launch every kernel from the host and run slower at small batches.")
    lines += [line for line in (batch_line(p, plans, spell) for p in plans) if line]
    lines += pcp_speed_lines(plans, spell)
    for p in plans:
        if p.decode and p.decode.constants["fallback"]:
            lines.append(f"[yellow]Speed:[/yellow] {p.decode.constants['fallback']}.")
        if p.prefill and p.fits:  # no prompt runs where not one request is held (refused, or no room for it)
            lines.append(f"Time to first token, {prompt_words(p.prefill.input_len, p.prefill.input_len_note)} at "
                         f"batch 1 ({plan_label(p, plans)}): "
                         f"{p.prefill.ttft_ms:,.0f} ms ({p.prefill.chunks} chunk"
                         f"{'s' if p.prefill.chunks > 1 else ''} of at most {p.prefill.chunk_tokens:,} tokens).")
        elif p.decode and p.fits and p.engine is not None:  # timed, yet no prompt: the release serves none here
            lines.append(no_prompt_line(p))
    return lines


def pcp_speed_lines(plans: list, spell=str) -> list:
    """-pcp P: what its decode and prefill times are (plan/speed.py, plan/prefill.py), by how the release runs a
    decode request (engines/vllm_pcp.py decodes_replicated: on every rank before 0.32, on one owner from 0.32)."""
    timed = [p for p in plans if getattr(p, "pcp", None) and p.fits and p.decode]
    copied = {pcp_decodes_replicated(p) for p in timed}
    lines = []
    if False in copied:
        lines.append(f"{spell('pcp')}: a batch is the engine's, each PCP rank decoding ceil(batch / P) of its requests "
                     "from its own copy of their cache, the MoE layers over all P ranks' tokens (experts over TP x "
                     "PCP); a prompt's chunk splits over the P ranks in 2P pieces (DualChunkSwap). Both add the "
                     "ranks' collectives over P each step: the new latent KV gathered every layer, the MoE's "
                     "all-gathers and reduce-scatter, the hidden states gathered to sample.")
    if True in copied:
        lines.append(f"{spell('pcp')}: vLLM 0.27-0.31 run every decode request on every PCP rank, so a step is pcp 1's "
                     "at the whole batch but for the MoE layers, which run P copies of each token with the experts "
                     "over TP x PCP, and the collectives over P (the MoE's all-gathers and reduce-scatter, the hidden "
                     "states gathered to sample); a prompt's chunk splits over the P ranks in 2P pieces "
                     "(DualChunkSwap), its new latent KV gathered every layer.")
    return lines


def pcp_decodes_replicated(p: Plan) -> bool:
    """Whether the plan's release runs every decode request on every PCP rank (engines/vllm_pcp.py)."""
    from ..engines.vllm_pcp import decodes_replicated

    return p.engine is not None and decodes_replicated(p.engine.version)


def no_prompt_line(p: Plan) -> str:
    """Why a plan that holds requests times no prompt: at a max model length of 1 the release keeps its one token
    for output (plan.default_prompt)."""
    return (f"[yellow]Time to first token:[/yellow] none at max len {p.context:,} (tp {p.tp}): vLLM "
            f"{p.engine.version} {KEEPS_ROOM}, so {no_prompt_words()}.")


def weights_exceed(plan: Plan) -> bool:
    return plan.budget.weights_exceed


def _what_is_bad(p: Plan) -> str:
    """A refused row's label: the TP degree's errors (heads that do not divide, an experts' layout), the pipeline's
    (more stages than layers, a partition that does not sum), or both."""
    pipeline, other = bool(p.pp_errors), len(p.tp_errors) > len(p.pp_errors)
    return "bad TP, PP" if pipeline and other else "bad PP" if pipeline else "bad TP"


def _row(p: Plan) -> list:
    head = [f"{p.context:,}", dtype_label(p, kept_only=True), str(p.tp)]
    if not p.tp_valid:
        return head + [f"[red]{_what_is_bad(p)}[/red]", size(p.kv_budget_bytes_per_gpu), "-", "-", "-", "-", "-"]
    if weights_exceed(p):
        requests = "[red]no room[/red]"
    elif p.fits:
        requests = f"{p.max_concurrency:,}" + (" [yellow]![/yellow]" if p.tp_warnings else "")
    else:
        requests = "[red]0[/red]"
    itl, rate = decode_cells(p)
    budget = size(p.kv_budget_bytes_per_gpu) if p.kv_budget_bytes_per_gpu > 0 else "[red]none[/red]"
    return head + [requests, budget, f"{p.kv_capacity_tokens:,}" if p.kv_budget_bytes_per_gpu > 0 else "0",
                   size(p.kv_bytes_per_sequence_per_gpu), size(p.kv_bytes_per_token_per_gpu), itl, rate]


PP_COLUMN = Column("PP", legend="pipeline stages (vLLM's --pipeline-parallel-size); figures are the tightest "
                                  "stage's")


# what the KV tokens column counts (engines/vllm_logged_tokens.py): vLLM's logged figure, kept as users compare it
KV_TOKENS_LEGENDS = {
    "requests": "vLLM's \"GPU KV cache size\" per GPU: max len x the requests of max len it holds (unrounded), "
                "not its token slots",
    "slots": "token slots in the KV cache per GPU: blocks x block size, per block group (vLLM's \"GPU KV cache "
             "size\")",
    "v0_slots": "token slots in the KV cache per GPU: V0's GPU blocks x block size (V0 logs no token count)",
    "ideal": "token slots of the ideal paged pool per GPU: blocks x block size (with windows or linear state, "
             "requests x max len)",
}


def kv_tokens_legend(plans: list) -> str:
    """What the KV tokens column counts for these plans (one engine for all): the engine's logged figure as its
    release counts it, or the ideal pool's; "" where no plan has a figure to show (none shards)."""
    from ..engines.vllm_logged_tokens import logged_tokens_count

    figures = next((p.engine for p in plans if _engine(p) is not None), None)
    if figures is not None and figures.name == "vllm":
        return KV_TOKENS_LEGENDS[logged_tokens_count(figures.version, figures.core)]
    return KV_TOKENS_LEGENDS["ideal"] if any(p.tp_valid for p in plans) else ""


def columns_for(plans: list) -> list:
    """The estimate's columns (PP only when a plan has pipeline stages), the KV tokens legend the plans' own."""
    with_pp = any(getattr(p, "pp", 1) > 1 for p in plans)
    columns = [replace(c, legend=kv_tokens_legend(plans)) if c.header == "KV tokens" else c for c in COLUMNS]
    return [*columns[:3], PP_COLUMN, *columns[3:]] if with_pp else columns


def plan_rows(plans: list) -> tuple:
    """(the columns, one row of cells a plan): the table's, and the html page's."""
    columns = columns_for(plans)
    rows = [_row(p) for p in plans]
    if PP_COLUMN in columns:
        rows = [row[:3] + [str(p.pp)] + row[3:] for row, p in zip(rows, plans)]
    return columns, rows


def plans_table(plans: list, title: str, width: Optional[int]):
    """(table, the columns shown)."""
    return fitted_table(*plan_rows(plans), width, title=title)


def served_spec(result):
    """The model as the engine serves it on the GPU planned on (a T4's float32 Gemma 3: the weights the budget
    prices); the spec as read where the engine has no such view."""
    engine, gpu = getattr(result, "engine", None), getattr(result, "gpu", None)
    return engine.on_gpu(result.spec, gpu) if gpu is not None and hasattr(engine, "on_gpu") else result.spec


def fp8_refusal(result):
    """vLLM's refusal of --quantization fp8 for this model on this GPU in the dtype it serves it in (None where it
    takes it, or where the engine is not vLLM): the weights advice offers fp8 only where vLLM would start with it."""
    engine, gpu = getattr(result, "engine", None), getattr(result, "gpu", None)
    if getattr(engine, "name", "") != "vllm" or gpu is None:
        return None
    from ..engines.vllm_model_dtype import quantization_refusal
    from ..engines.vllm_engine import _capability

    asked = replace(served_spec(result), quantization_asked="fp8")
    return quantization_refusal(asked, _capability(gpu), engine.version)


def _weights_message(plan: Plan, spec, spell, fp8_refused=None) -> str:
    """`fp8_refused`: vLLM's refusal of fp8 weights here (fp8_refusal), which then are not offered."""
    b = plan.budget
    fp8 = spec.weights.bytes / max(spec.weights.parameters, 1) > 1.5  # 16-bit weights: fp8 halves them
    # a refused row's changes were searched at its remedy (its own line says so), not at this configuration; a TP
    # degree within one node, or a tp x pp shape (plan.fitting_remedies, staged_remedy, staged_cost)
    options = [] if configuration_refusal(plan) else [changes_in_words(o, spell) for o in plan.fitting_options
                                                       if "tp" in dict(o)]
    reserves = b.usable_bytes - b.weights_bytes_per_gpu - b.kv_budget_bytes_per_gpu  # activations, runtime
    room = b.usable_bytes - reserves
    # no stages for a model vLLM runs without them (SupportsPP), nor with a drafter (kvplan places none with pp)
    staged = spec.draft is None and not pipeline_refusal(spec, plan.engine.version if plan.engine else None)
    if room > 0 and staged:
        stages = -(-b.weights_bytes_per_gpu // room)
        options.append(f"{spell('pp')} {stages} or more (each stage holds 1/{stages} of the layers; the "
                       f"weights alone need that)")
    half = b.weights_bytes_per_gpu // 2
    if fp8 and fp8_refused is None and half <= room:
        options.append(f"fp8 weights (an fp8 checkpoint or {spell('quantization')} fp8: about {size(half)} per GPU)")
    elif fp8 and fp8_refused is None:  # halved, they still do not fit this tp: fp8 only shrinks a split's share
        options.append(f"fp8 weights (an fp8 checkpoint or {spell('quantization')} fp8: about {size(half)} per GPU, "
                       f"too much alone at tp {plan.tp}: with a split)")
    engine = f"{plan.engine.name} {plan.engine.version}" if plan.engine is not None else "the engine"
    refused = f" Not fp8 weights: {engine} refuses them here: {escape(fp8_refused.reason.rstrip('.'))}." \
        if fp8 and fp8_refused is not None else ""
    return (f"[red]the weights alone do not fit at tp {plan.tp}:[/red] {size(b.weights_bytes_per_gpu)} per GPU "
            f"against {size(b.usable_bytes)} usable ({b.gpu_name} {size(b.gpu_memory_bytes)} x "
            f"{b.gpu_util:.2f}); split or shrink them: " + ", ".join(options) + "." + refused)


def footnotes(result, plans: list, spell=str) -> list:
    from ..commands.describe import layout_rules

    spec = result.spec
    fp8_refused = fp8_refusal(result)
    drafter = served_spec(result).draft if spec.draft is not None else None  # its cache dtype on this GPU
    lines = [f"Rules: {rule}." for rule in layout_rules(spec, drafter)]
    w = spec.weights
    tower = f"; {UNCOUNTED_TOWER}" if spec.tower_uncounted else ""
    lines.append(f"Weights: {w.parameters / 1e9:,.2f}B parameters, {size(w.bytes)} stored ({w.dtype or 'mixed'}; "
                 f"{w.source}{tower}).")
    if spec.draft is not None:
        lines.append(drafter_line(replace(spec, draft=drafter), spell))
    lines += budget_lines(plans, spell)
    lines += stage_lines(plans)
    lines += [f"[yellow]{note}.[/yellow]" for note in getattr(result, "notes", ())]
    lines += v0_notes(plans)
    dtypes = {p.kv_dtype: dtype_scheme(p) for p in plans}
    lines.append("KV dtype: " + "; ".join(f"{k} = {v}" for k, v in dtypes.items()) + ".")
    from ..plan.max_len import served_length_limit

    limit, limit_key = served_length_limit(spec)
    if getattr(result, "default_context", False):
        from ..plan.max_len import default_max_model_len

        lines.append(f"max len {default_max_model_len(spec):,} = {_default_length_source(spec, spell)}, vLLM's "
                     f"default; set {spell('context')} (or auto, the longest that fits) to plan another.")
    fitted = getattr(result, "auto_fitted", None)
    if fitted is not None:
        for index, original in fitted:
            p = plans[index]
            lines.append(f"{spell('context')} auto: vLLM's auto-fit reduces max_model_len from {original:,} to "
                         f"{p.context:,} for {p.kv_dtype} tp {p.tp} to fit the available KV cache memory; planned at "
                         f"that length.")
        if not fitted and all(p.fits for p in plans):  # a refused row fits nothing (its own line says why)
            lines.append(f"{spell('context')} auto: the model's full length fits (vLLM's auto-fit keeps it).")
    for context in sorted({p.context for p in plans}):
        if limit and context > limit:
            capped = getattr(spec, "length_key", "") == "sliding_window"  # --disable-sliding-window's cap
            limit_name = f"sliding window ({_capper(spec, spell)})" if capped else limit_key
            if getattr(spec, "rope_base_length", None):
                limit_name += " x its RoPE factor"
            lines.append(f"[yellow]{spell('context')} {context:,} exceeds the model's {limit_name} "
                         f"({limit:,}):[/yellow] vLLM refuses it unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, and "
                         f"positions past {limit:,} are out of the model's training range.")
    small = small_budget_note(plans[0].budget, spell, mark=lambda text: f"[yellow]{text}[/yellow]")
    if small:
        lines.append(small)
    for p in plans:
        for message in p.tp_errors:
            lines.append(f"[red]tp {p.tp}:[/red] {message}")
        if not p.tp_valid:
            continue
        for message in p.tp_warnings:
            lines.append(f"[yellow]! tp {p.tp}:[/yellow] {message}")
        held = concurrency_note(p, spell)
        if held:
            lines.append(held)
        if not p.fits and gpu_refusal(p):  # the GPU itself: one line for every row it stops
            lines.append(gpu_refusal_line(p, spell, result.gpu))
            if weights_exceed(p):
                lines.append(_weights_message(p, spec, spell, fp8_refused))
        elif not p.fits and configuration_refusal(p):  # refused whatever the memory: no byte count explains it
            lines.append(f"[red]max len {p.context:,} {dtype_label(p)} tp {p.tp} does not start:[/red] "
                         f"{escape(p.suggestion(spell))}.")
            if weights_exceed(p):  # vLLM stops at its first error; the weights would stop it next
                lines.append(_weights_message(p, spec, spell, fp8_refused))
        elif weights_exceed(p):
            lines.append(_weights_message(p, spec, spell, fp8_refused))
        elif not p.fits and override_note(p):  # releases before 0.20.1 start, and never schedule one
            outcome = "starts but holds no request" if _engine(p).starts else "does not start"
            lines.append(f"[red]max len {p.context:,} {p.kv_dtype} tp {p.tp} {outcome}:[/red] "
                         + override_fix(p, spell))
        elif not p.fits and v0_shared(p):
            # the budget holds a request, the share one V0 scheduler gets of it does not (vllm_v0_pp.py); where
            # vLLM starts all the same, concurrency_note has said so
            head = f"[red]max len {p.context:,} {p.kv_dtype} tp {p.tp}"
            lines.append(f"{head} starts but holds no request:[/red] {p.suggestion(spell)}." if _engine(p).starts
                         else f"{head} does not fit:[/red] {v0_shares(_engine(p))}; {p.suggestion(spell)}.")
        elif held_none_reason(p):
            lines.append(f"[red]max len {p.context:,} {p.kv_dtype} tp {p.tp} starts but holds no request:[/red] "
                         f"{held_none_reason(p)}; {p.suggestion(spell)}.")
        elif not p.fits:
            priced = request_price(p)
            lines.append(f"[red]max len {p.context:,} {p.kv_dtype} tp {p.tp} does not "
                         f"{'start' if priced.startswith('vLLM') else 'fit'}:[/red] {priced}, the budget is "
                         f"{size(max(p.kv_budget_bytes_per_gpu, 0))}; {p.suggestion(spell)}.")
    swept = len({(p.context, p.kv_dtype) for p in plans}) > 1  # then tp alone does not name the plan
    lines += [parallel_line(p, spell, swept) for p in plans if p.parallel is not None and p.tp_valid]
    lines.extend(speed_lines(plans, spell))
    return sorted(set(lines), key=lines.index)


def held_none_reason(p: Plan) -> str:
    """Why plan `p`'s engine starts, its start-up check passed, and holds no request of max len (never_runs): V1's
    admission by release, or a pool that holds less than its check priced (vllm_hybrid_manager.py: 0.8.3-0.9.0 check
    the sliding layers at their window, then size the pool with every layer in full); '' where it holds one, does
    not start, or another line says why (the weights, --num-gpu-blocks-override, V0's shares). Estimate's line and
    check's finding both say it from here."""
    e = _engine(p)
    if p.fits or e is None or not e.starts or not e.blocks_per_request:
        return ""
    if weights_exceed(p) or override_note(p) or v0_shared(p):
        return ""
    return never_runs(e)


def never_runs(e) -> str:
    """Why an engine that starts holds no request of max len: V1's admission by release (vllm_admission_gate.py:
    gemma-3-27b-it at 128,096 tokens on 0.20.0 needs 11,468 blocks free, the pool hands out 11,467 of 11,468), else
    the blocks its start-up priced against those it has."""
    from ..engines.vllm_admission_gate import never_admitted_words

    if e.admission_blocks is not None and e.num_gpu_blocks:
        return never_admitted_words(e.version, e.admission_blocks, e.num_gpu_blocks)
    return (f"one request of max len needs {e.blocks_per_request:,} of the {e.num_gpu_blocks:,} blocks vLLM "
            f"{e.version} has")


def request_price(p: Plan) -> str:
    """What one request of max len takes, beside the budget: kvplan's footprint (the table's "per request"), or
    where vLLM's start-up check refused it for memory at a price that reads otherwise (start_up_price), vLLM's price
    with the footprint named as such (a sliding window's pages padded to the groups' size: gemma-3-27b-it at 131,072
    tokens, 14.23 GiB against the 10.4 GiB one keeps)."""
    kept = size(p.kv_bytes_per_sequence_per_gpu)
    priced = start_up_price(getattr(_engine(p), "refusal", None), p.kv_bytes_per_sequence_per_gpu)
    if not priced:
        return f"one request needs {kept} of KV per GPU"
    return (f"vLLM's start-up check prices one request at {priced} of KV per GPU (kvplan's {kept} "
            f"per request is what one keeps once admitted)")


def start_up_price(refusal, kept: int) -> str:
    """vLLM's price of one request of max len where its start-up check refused it for memory (Refusal.needed_bytes:
    every block its layer groups reserve), as its message rounds it ("14.23 GiB"); '' where there is none or it
    reads as kvplan's footprint `kept` (bytes) does."""
    from ..engines.figures import format_gib

    needed = getattr(refusal, "needed_bytes", 0)
    return "" if not needed or size(needed) == size(kept) else f"{format_gib(needed)} GiB"


def small_budget_note(budget, spell=str, mark=str) -> str:
    """A KV budget given below SMALL_KV_BUDGET, most likely a number missing its unit; '' otherwise. `mark` dresses
    the first half (estimate's colour)."""
    n = budget.kv_budget_bytes_per_gpu
    if budget.source == "gpu" or n >= SMALL_KV_BUDGET:
        return ""
    return (mark(f"{spell('kv_budget')} {n} is {n:,} bytes") + f" (a bare number is bytes, as in vLLM): did you mean "
            f"{n}G ({n} GiB) or {n}GiB?")


def watermark_words(e) -> str:
    """What V0's block manager keeps free when it admits a request (vllm_v0_admission.py); '' on V1."""
    if not e.watermark_blocks:
        return ""
    return (f", admitting a request only while it leaves {e.watermark_blocks:,} of them free (the block manager's 1% "
            f"watermark)")


def concurrency_note(p: Plan, spell=str) -> str:
    """Where the row's `requests` (what the engine holds at once: vllm_admission, max_num_seqs) is not vLLM's logged
    "Maximum concurrency" rounded down, both and why; '' where they agree."""
    e = _engine(p)
    engines = 1 if e is None else e.virtual_engines
    if e is not None and e.starts and p.max_concurrency == 0 and e.num_gpu_blocks and e.watermark_blocks + engines > 1:
        # V0 starts on the whole count up to 0.7 (vllm_v0_pp.py), and admits into a share less its watermark
        share = e.num_gpu_blocks // engines
        who = f"each of V0's {engines} virtual engines (one a pipeline stage) schedules" if engines > 1 \
            else "V0's scheduler schedules"
        left = share - e.watermark_blocks
        need = f", fewer than the {e.blocks_per_request:,} one request of max len needs" if e.blocks_per_request else ""
        return (f"max len {p.context:,} {dtype_label(p)} tp {p.tp}: vLLM starts, but {who} {share:,} blocks"
                f"{watermark_words(e)}: {left:,} blocks ({left * e.block_size:,} tokens){need}, so it never runs "
                f"one (\"exceeds the capacity of block_manager\").")
    if not p.fits or e is None or p.max_concurrency is None:
        return ""
    figure = e.max_concurrency
    if figure is None and e.num_gpu_blocks:  # V0 before 0.6.3 logs its blocks alone
        figure = e.num_gpu_blocks * e.block_size / p.context
    if figure is None:
        return ""
    logged = int(figure)
    if p.max_concurrency == logged:
        return ""
    if p.max_concurrency_limited_by == "max_num_seqs":
        why = seqs_cap(p, spell)
    elif p.max_concurrency > logged:
        why = ("vLLM's figure counts each request at the blocks of its whole max len, while a running one holds "
               "fewer: blocks past a sliding window or attention chunk, and Mamba states behind the newest, are freed")
    elif engines > 1:
        why = (f"V0's {engines} virtual engines, one a pipeline stage, each schedule their own "
               f"{e.num_gpu_blocks // engines:,} blocks{watermark_words(e)}")
    elif e.watermark_blocks:
        why = f"V0's scheduler schedules {e.num_gpu_blocks:,} blocks{watermark_words(e)}"
    elif e.core == "v0":
        why = ("the scheduler admits a request only while all its blocks are free, out of the pool less its null "
               "block")
    else:  # by release: the admission gate, the null block (vllm_admission_gate.py)
        from ..engines.vllm_admission_gate import fewer_words
        why = fewer_words(e.version)
    said = f"vLLM logs \"Maximum concurrency\" {figure:,.2f}x" if e.max_concurrency is not None else (
        f"vLLM {e.version} logs no \"Maximum concurrency\" (from 0.6.3), but its {e.num_gpu_blocks:,} blocks hold "
        f"{figure:,.2f} of max len")
    return (f"max len {p.context:,} {dtype_label(p)} tp {p.tp}: requests {p.max_concurrency:,} is what the engine "
            f"holds at once; {said} ({why}).")


def dtype_scheme(plan) -> str:
    """What the plan's KV dtype stores, for the legend: the engine's cache where it keeps another (plan.
    kv_dtype_scheme), the dtype's own on a GPU the engine refuses (no backend there keeps anything)."""
    from ..model.precision import PRECISIONS

    if gpu_refusal(plan) is not None and plan.kv_dtype in PRECISIONS:
        return PRECISIONS[plan.kv_dtype].scheme
    return plan.kv_dtype_scheme


def drafter_line(spec, spell=str) -> str:
    """--speculative-config: what the drafter adds to the figures, and what it does not."""
    return (f"{spell('speculative_config')}: {spec.draft.describe}; its memory is counted (draft weights, KV "
            f"layers), not its speed-up: decode times are the target's alone (acceptance not modelled).")


def parallel_line(p: Plan, spell=str, swept: bool = False) -> str:
    """--data-parallel-size / --enable-expert-parallel: what the figures are one of, the deployment's total
    (parallel_capacity), and how decode is timed across the ranks; `swept`: the plans differ in max len or KV dtype,
    so the line names them as well as tp."""
    if p.pcp and not p.decode:  # no decode or prefill time (no GPU to time them on)
        return f"{parallel_capacity(p, spell, swept)}{eplb_note(p.parallel)}"
    if p.pcp:
        share = "all" if pcp_decodes_replicated(p) else f"ceil(b / {p.pcp})"
        return (f"{parallel_capacity(p, spell, swept)} Decode at batch b = b requests on every DP rank in the same "
                f"step, each PCP rank of a core decoding {share} of them (MoE layers over all ranks' "
                f"tokens); time to first token with every DP rank's step as large.{eplb_note(p.parallel)}")
    return (f"{parallel_capacity(p, spell, swept)} Decode at batch b = b requests on every DP rank in the same step "
            f"(MoE layers over all ranks' tokens; under EP the busiest rank's touched experts); time to first token as "
            f"without DP / EP.{eplb_note(p.parallel)}")


def parallel_capacity(p: Plan, spell=str, swept: bool = False) -> str:
    """parallel_line's words on capacity alone (check's, which times nothing): the GPUs, whose figures they are, the
    requests resident in all, the layout of the ranks."""
    layout = p.parallel
    which = f"max len {p.context:,} {p.kv_dtype} tp {p.tp}" if swept else f"tp {p.tp}"
    gpus = layout.dp * p.core_gpus
    held = f"{p.total_concurrency:,} requests resident in all" if p.fits else "none resident"
    flags = ([f"{spell('dp')} {layout.dp}"] if layout.dp > 1 else []) + (
        [spell("enable_expert_parallel")] if layout.expert_parallel else []) + (
        [spell("enable_eplb")] if layout.eplb else [])
    return (f"{' + '.join(flags)} ({which}): {layout.dp} engine core(s) x {p.core_gpus} GPU(s) = {gpus} GPUs; "
            f"the figures above are one DP rank's, as its vLLM log prints them: {held}. "
            f"{layout.describe(p.pp)[0].upper()}{layout.describe(p.pp)[1:]}.")


def eplb_note(layout) -> str:
    """--enable-eplb: its memory is counted; its effect on speed is assumed away."""
    if not layout.eplb:
        return ""
    return (" EPLB: its redundant experts and buffers are counted in the budget; decode reads as without them (a "
            "token reads one replica of each expert; rebalancing assumed to keep the busiest rank at uniform "
            "routing's load, its weight transfers not timed).")


def legend(shown: list, columns: list = COLUMNS):
    """What each shown column holds, one per line, and which columns the width left out."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column(style="dim")
    for column in shown:
        if column.legend:
            grid.add_row(column.header, column.legend)
    if left_out(columns, shown):
        grid.add_row("", left_out(columns, shown))
    return grid


SERVED_NAMES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}  # vLLM's --dtype names


def weights_heading(spec, served) -> str:
    """The weights as the budget prices them: in the dtype the engine serves them in on this GPU, named where it is
    not the checkpoint's ("16.0 GiB weights (served as float32)")."""
    if served.dtype == spec.dtype or served.weights.bytes == spec.weights.bytes:
        return f"{size(served.weights.bytes)} weights"
    return f"{size(served.weights.bytes)} weights (served as {SERVED_NAMES.get(served.dtype, served.dtype)})"


def placement(gpu_name: str, device, spell=str) -> str:
    """Where the plans run, for the title: " on H100-80GB-SXM", and the node the user gave, which the remedies keep TP
    within (" on H100-80GB-SXM, nodes of --gpus-per-node 4"); the catalog's node goes unsaid, as before the flag."""
    node = device.node_setting(spell) if device is not None else ""
    words = [f"on {gpu_name}"] if gpu_name else []
    words += [f"nodes of {node}"] if node else []
    return (" " + ", ".join(words)) if words else ""


def renderable(result, width: Optional[int] = None, chart: bool = False):
    from rich.console import Group
    from rich.text import Text

    spec = result.spec
    plans = result.plans
    # a KV budget given outright has no GPU term, yet decode and prefill are timed on the GPU: the title names it
    gpu_name = plans[0].budget.gpu_name or getattr(result.gpu, "name", None)
    title = (escape(spec.name) + placement(gpu_name, result.gpu, result.spell) +
             f": {spec.num_hidden_layers} layers, {weights_heading(spec, served_spec(result))}")
    parts = []
    for p in plans:
        parts += [Text.from_markup(line) for line in log_block(p, result.spell)]
    table, shown = plans_table(plans, title, width)
    parts += [table, legend(shown, columns_for(plans))]
    parts += [Text.from_markup(line) for line in footnotes(result, plans, result.spell)]
    if chart:
        from .chart import charts

        parts += charts(result, width)
    return Group(*parts)


def _capper(spec, spell) -> str:
    from ..engines.vllm_gemma2_window import window_capper

    return window_capper(spec, spell)


def _default_length_source(spec, spell) -> str:
    """Where the default max len comes from: the model's own length, or the window --disable-sliding-window caps it
    to (vLLM's _get_and_verify_max_len, config/model.py 0.32.0:2544-2550, max_len_key 'sliding_window'), each
    scaled by the RoPE factor (engines/vllm_rope_len.py; its note says how), or LongRoPE's original length."""
    if getattr(spec, "rope_default_length", None):
        return "the config's original_max_position_embeddings (LongRoPE's default)"
    scaled = ", scaled by its RoPE factor (see the RoPE note)" if getattr(spec, "rope_base_length", None) else ""
    if getattr(spec, "length_key", "") == "sliding_window":
        own = f"({spec.config_length:,}) " if spec.config_length else "(none in the config) "
        return f"the model's max_position_embeddings {own}capped to its sliding window by " \
               f"{_capper(spec, spell)}{scaled}"
    if scaled:
        return f"the model's own (max_position_embeddings{scaled})"
    source = "max_position_embeddings" if spec.max_position_embeddings else "none in the config: vLLM's fallback"
    return f"the model's own ({source})"
