"""`kvplan estimate` for people: the plans table, and the footnotes that say which rules applied."""

from __future__ import annotations

from ..plan.plan import Plan
from .text import size


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


TERM_NAMES = {"weights": "weights", "profile_peak": "profile peak", "activation": "activations",
              "non_torch": "non-torch", "cuda_context": "CUDA context", "cuda_graphs": "CUDA graphs", "nccl": "NCCL"}


def budget_line(plan: Plan, spell=str) -> str:
    b = plan.budget
    if b.source != "gpu":
        return f"KV budget per GPU: {size(b.kv_budget_bytes_per_gpu)} ({spell('kv_budget')})"
    terms = f"{b.gpu_name} {size(b.gpu_memory_bytes)} x {b.gpu_util:.2f}"
    for t in b.terms:
        if t.name in TERM_NAMES and (t.bytes or t.name in ("weights", "profile_peak", "activation")):
            terms += f" - {TERM_NAMES[t.name]} {size(t.bytes)}"
    whose = f", {b.engine}" if b.engine else ", kvplan's generic reserves"
    where = f" pp stage {b.stage}" if b.stage is not None else ""
    return f"KV budget (tp {plan.tp}{where}{whose}) = {terms} = {size(b.kv_budget_bytes_per_gpu)}"


def engine_lines(plans: list) -> list:
    """Each plan's engine start-up log, as the engine prints it."""
    lines = []
    for p in plans:
        e = p.engine
        if e is None:
            continue
        head = f"{e.name} {e.version}, context {p.context:,} {p.kv_dtype} tp {p.tp}" + (f" pp {p.pp}" if p.pp > 1
                                                                                         else "")
        lines.append(f"[bold]{head}:[/bold]")
        if e.kv_cache_dtype != p.kv_dtype:
            lines.append(f"  [yellow]this model's attention keeps a {e.kv_cache_dtype} cache in {e.name} whatever "
                         f"the KV dtype asks (a family quirk of the engine)[/yellow]")
        lines += [f"  {escape(line)}" for line in e.log_lines]
        if e.refusal is not None:
            lines.append(f"  [red]refuses to start:[/red] {escape(e.refusal.reason)}")
        else:
            lines.append(f"  resident: {p.max_concurrency:,} sequences of {p.context:,} tokens "
                         f"(limited by {p.max_concurrency_limited_by})")
    return lines


def decode_cells(p: Plan) -> tuple:
    """(ITL ms, tokens/s) of the engine estimate at batch 1 and at max concurrency ("-" where nothing fits)."""
    if not p.decode:
        return "-", "-"
    one, full = p.decode.at(1), p.decode.at(p.max_concurrency) if p.fits else None
    itl = f"{one.itl_ms:.1f}|" + (f"{full.itl_ms:.1f}" if full else "-")
    rate = f"{one.tokens_per_s:,.0f}|" + (f"{full.tokens_per_s:,.0f}" if full else "-")
    return itl, rate


def plans_table(plans: list, title: str):
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False, pad_edge=False)
    # Short headers keep the table inside 100 columns; the footnote and --help spell them out.
    for name, justify in (("context", "right"), ("KV", "left"), ("TP", "right"), ("KV/tok/GPU", "right"),
                          ("seq/GPU", "right"), ("budget/GPU", "right"), ("pool tokens", "right"),
                          ("max seqs", "right"), ("ITL ms b1|max", "right"), ("tok/s b1|max", "right")):
        table.add_column(name, justify=justify, no_wrap=True)
    for p in plans:
        head = [f"{p.context:,}", p.kv_dtype.replace("_e4m3", "").replace("_e5m2", "e5m2"), str(p.tp)]
        if not p.tp_valid:
            table.add_row(*head, "-", "-", size(p.kv_budget_bytes_per_gpu), "-", "[red]bad TP[/red]", "-", "-")
            continue
        seqs = f"{p.max_concurrency:,}" if p.fits else "[red]no fit[/red]"
        if p.fits and p.tp_warnings:
            seqs += " [yellow]![/yellow]"
        itl, rate = decode_cells(p)
        table.add_row(*head, size(p.kv_bytes_per_token_per_gpu), size(p.kv_bytes_per_sequence_per_gpu),
                      size(p.kv_budget_bytes_per_gpu), f"{p.kv_capacity_tokens:,}", seqs, itl, rate)
    return table


def footnotes(spec, plans: list, spell=str) -> list:
    from ..commands.describe import layout_rules

    lines = [f"Rules: {rule}." for rule in layout_rules(spec)]
    w = spec.weights
    lines.append(f"Weights: {w.parameters / 1e9:,.2f}B parameters, {size(w.bytes)} stored ({w.dtype or 'mixed'}; "
                 f"{w.source}).")
    seen = set()
    for p in plans:
        if p.tp not in seen:
            seen.add(p.tp)
            lines.append(budget_line(p, spell) + ".")
    dtypes = {p.kv_dtype: p.kv_dtype_scheme for p in plans}
    lines.append("KV precision: " + "; ".join(f"{k} = {v}" for k, v in dtypes.items()) + ".")
    for p in plans:
        for message in p.tp_errors:
            lines.append(f"[red]tp {p.tp}:[/red] {message}")
        if not p.tp_valid:
            continue
        for message in p.tp_warnings:
            lines.append(f"[yellow]tp {p.tp}:[/yellow] {message}")
        if not p.fits:
            lines.append(f"[red]context {p.context:,} {p.kv_dtype} tp {p.tp} does not fit:[/red] one sequence "
                         f"needs {size(p.kv_bytes_per_sequence_per_gpu)} per GPU; {p.suggestion(spell)}.")
    lines.extend(speed_lines(plans))
    return sorted(set(lines), key=lines.index)


def speed_lines(plans: list) -> list:
    lines = ["ITL (ms per output token) and tok/s (the whole batch) at batch 1 and at max seqs: engine estimate = "
             "bytes read / bandwidth + per-layer fixed cost + all-reduce latency + matmul FLOPs over the dense peak, "
             "constants fitted on public engine measurements (--format json: every batch, the roofline floor, the "
             "constants and their source)."]
    for p in plans:
        if p.decode and p.decode.constants["fallback"]:
            lines.append(f"[yellow]Speed:[/yellow] {p.decode.constants['fallback']}.")
        if p.prefill:
            lines.append(f"Time to first token, {p.prefill.input_len:,}-token prompt at batch 1 (tp {p.tp}): "
                         f"{p.prefill.ttft_ms:,.0f} ms ({p.prefill.chunks} chunk"
                         f"{'s' if p.prefill.chunks > 1 else ''} of at most {p.prefill.chunk_tokens:,} tokens).")
    return lines


def renderable(result):
    from rich.console import Group
    from rich.text import Text

    spec = result.spec
    title = (f"{spec.name}: {spec.num_hidden_layers} layers, {spec.num_attention_heads} heads, "
             f"{size(spec.weights.bytes)} weights")
    notes = [Text.from_markup(line) for line in footnotes(spec, result.plans, result.spell)]
    engine = [Text.from_markup(line) for line in engine_lines(result.plans)]
    return Group(plans_table(result.plans, title), *engine, *notes)
