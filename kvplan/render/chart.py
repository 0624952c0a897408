"""Charts in the terminal (rich): requests the KV cache holds against max length for each (KV dtype, TP) of an
estimate, and one GPU's memory as a stacked bar (weights, activations, CUDA runtime, NCCL, KV cache, the part
--gpu-memory-utilization leaves free). Bars use distinct characters as well as colours, so they read the same
piped, and ASCII ones where stdout's encoding has no block characters (glyph)."""

from __future__ import annotations

import math
from typing import Optional

from rich.markup import escape

from .text import draws_boxes, size

BAR = "█"
MAX_SERIES = 4
# budget term -> (label, character, colour), in the order the bar draws them
SEGMENTS = {
    "weights": ("weights", "█", "blue"),
    "lora": ("LoRA adapter slots", "█", "cyan"),
    "profile_peak": ("activations (profile peak)", "▓", "magenta"),
    "activation": ("activations", "▓", "magenta"),
    "non_torch": ("non-torch (CUDA context, buffers)", "▒", "yellow"),
    "cuda_context": ("CUDA context", "▒", "yellow"),
    "cuda_graphs": ("CUDA graphs", "▒", "yellow"),
    "nccl": ("NCCL", "░", "cyan"),
    "margin": ("kept free for transients", "·", "magenta"),
    "runner_state": ("model runner's persistent buffers", "▒", "yellow"),
    "mamba_cache": ("V0's Mamba state cache", "▓", "green"),
    "kv": ("KV cache", "■", "green"),
    "free": ("left free by utilization", "·", "bright_black"),
}
# each bar character in ASCII, for a stdout whose encoding has no block characters (text.draws_boxes): still one
# character a segment, told apart by shape as the block shades are
ASCII_BARS = {"█": "#", "▓": "%", "▒": "+", "░": ":", "·": ".", "■": "="}


def glyph(char: str) -> str:
    """A bar character as stdout can hold it: itself, or its ASCII_BARS form."""
    return char if draws_boxes() else ASCII_BARS[char]


def _bar(value: int, top: int, cells: int) -> str:
    """A log-scale bar: 1 request gets one cell, `top` requests all `cells`."""
    if value <= 0:
        return ""
    bar = glyph(BAR)
    if top <= 1:
        return bar * cells
    return bar * max(1, round(cells * (1 + math.log(value)) / (1 + math.log(top))))


def concurrency_chart(result, width: Optional[int]):
    from rich.table import Table
    from rich.text import Text

    curves = list(result.curves)[:MAX_SERIES]
    if not curves:
        return []
    spell = result.spell
    width = width or 100
    contexts = [p.context for p in curves[0].points]
    top = max(p.max_concurrency for c in curves for p in c.points)
    def label(point) -> str:
        if getattr(point, "refused", ""):
            return " refused"
        if not point.max_concurrency:
            return " 0"
        itl = f" {point.itl_ms_at_max:.0f} ms" if point.itl_ms_at_max else ""
        return f" {point.max_concurrency:,}" + (f",{itl}" if itl else "")

    number = max(len(label(p)) for c in curves for p in c.points)
    width_label = max(len(f"{c:,}") for c in contexts) + 1
    headers = max(len(f"{c.kv_dtype}, tp {c.tp}") for c in curves)
    per_series = (width - width_label) // len(curves) - 1  # one space between columns
    cells = max(3, min(per_series, 40) - number)
    if cells + number < headers:
        cells = max(cells, headers - number)
    gpu = result.plans[0].budget.gpu_name or "the given KV budget"
    table = Table(title=f"Requests held at once against {spell('context')}, and the predicted ITL with all of them "
                        f"decoding ({escape(result.spec.name)} on {gpu}; bars on a log scale)", title_justify="left",
                  box=None, pad_edge=False, show_edge=False)
    table.add_column("max len", justify="right", no_wrap=True)
    for c in curves:
        table.add_column(f"{c.kv_dtype}, tp {c.tp}", no_wrap=True)
    for i, context in enumerate(contexts):
        row = [f"{context:,}"]
        for c in curves:
            n = c.points[i].max_concurrency
            row.append(Text.assemble((_bar(n, top, cells), "green"), label(c.points[i])))
        table.add_row(*row)
    refused = any(getattr(p, "refused", "") for c in curves for p in c.points)
    notes = [table, Text("(0: one request of that length does not fit" + (
        "; refused: vLLM refuses that configuration whatever the memory: the notes above say why" if refused else "")
        + ")", style="dim")]
    if len(result.curves) > MAX_SERIES:
        notes.append(Text(f"({len(result.curves) - MAX_SERIES} more series in --format json or html)"))
    return notes


def budget_segments(budget) -> list:
    """(label, bytes, character, colour) of one GPU's memory, in the order the bar draws them: the budget's own
    terms (the engine's accounting), the KV cache, and what gpu_memory_utilization leaves free."""
    values = [(t.name, t.bytes) for t in budget.terms if t.name in SEGMENTS and t.bytes > 0]
    values.append(("kv", max(budget.kv_budget_bytes_per_gpu, 0)))
    values.append(("free", budget.gpu_memory_bytes - budget.usable_bytes))
    return [(SEGMENTS[name][0], value, *SEGMENTS[name][1:]) for name, value in values if value > 0]


def budget_bar(plan, width: Optional[int]):
    from rich.text import Text

    b = plan.budget
    cells = max(20, (width or 100) - 2)
    segments = budget_segments(b)
    scale = max(b.gpu_memory_bytes, sum(v for _, v, _, _ in segments))
    widths = [max(1, round(cells * value / scale)) for _, value, _, _ in segments]
    widths[widths.index(max(widths))] -= sum(widths) - cells  # rounding never spills past the line
    bar, legend = Text("["), Text("  ")
    for (label, value, char, colour), cells_of in zip(segments, widths):
        char = glyph(char)
        bar.append(char * cells_of, style=colour)
        legend.append(f"{char} {label} {size(value)}  ", style=colour)
    bar.append("]")
    head = Text(f"One GPU's memory at tp {plan.tp} ({b.gpu_name}, {size(b.gpu_memory_bytes)}, utilization "
                f"{b.gpu_util:.2f}):")
    if b.weights_bytes_per_gpu >= b.usable_bytes:
        head.append(" the weights alone overflow it", style="red")
    return [head, bar, legend]


def charts(result, width: Optional[int]) -> list:
    from rich.text import Text

    parts = [Text("")]
    parts += concurrency_chart(result, width)
    seen = set()
    for p in result.plans:
        if p.budget.source == "gpu" and p.tp not in seen:
            seen.add(p.tp)
            parts += [Text("")] + budget_bar(p, width)
    return parts
