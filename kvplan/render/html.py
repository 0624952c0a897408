"""`--format html`: one standalone page (inline CSS and SVG, no script, nothing fetched) with the same figures
as the table: for an estimate, requests held against max length as a line chart, each GPU budget as a stacked
bar, vLLM's startup lines, the plans table and the text output's footnotes (render/estimate.py's, so a refusal's
remedy, the rules and the budget lines read as the table's do); for other commands, the rows of their csv as a
table."""

from __future__ import annotations

import math
from html import escape

from .chart import budget_segments
from .formats import flatten
from .text import size

COLOURS = {"blue": "#3b6fb6", "magenta": "#a4508b", "yellow": "#c9a227", "cyan": "#2a9d8f", "green": "#4c9a2a",
           "bright_black": "#cfcfcf"}
SERIES = ("#3b6fb6", "#d1495b", "#4c9a2a", "#c9a227", "#7b4fb3", "#2a9d8f", "#e07a1f", "#555555")
STYLE = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}"
         "table{border-collapse:collapse;font-size:14px}th,td{padding:4px 10px;text-align:right;"
         "border-bottom:1px solid #ddd}th{background:#f4f4f4}td.l,th.l{text-align:left}"
         "svg text{font-size:12px;fill:#333}.note{color:#555;font-size:13px}pre{white-space:pre-wrap}")


def _line_chart(result, width: int = 720, height: int = 300) -> str:
    """Requests held (log scale) against max length (log2 scale), one polyline per (KV dtype, TP)."""
    curves = list(result.curves)
    points = [p for c in curves for p in c.points]
    if not points:
        return ""
    left, right, top, bottom = 60, 170, 20, 40
    contexts = sorted({p.context for p in points})
    lo, hi = math.log2(contexts[0]), math.log2(contexts[-1])
    ymax = max(1, max(p.max_concurrency for p in points))
    ytop = math.log10(ymax) if ymax > 1 else 1

    def x(context):
        return left + (math.log2(context) - lo) / max(hi - lo, 1e-9) * (width - left - right)

    def y(n):
        return height - bottom - (math.log10(n) / ytop) * (height - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="requests held against max length">']
    parts.append(f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
                 f'stroke="#888"/><line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#888"/>')
    for context in contexts:
        label = f"{context // 1024}K" if context >= 1024 and context % 1024 == 0 else f"{context:,}"
        parts.append(f'<text x="{x(context):.1f}" y="{height - bottom + 16}" text-anchor="middle">{label}</text>')
    for power in range(0, int(ytop) + 1):
        parts.append(f'<text x="{left - 6}" y="{y(10 ** power) + 4:.1f}" text-anchor="end">{10 ** power:,}</text>')
    for i, c in enumerate(curves):
        colour = SERIES[i % len(SERIES)]
        held = [p for p in c.points if p.max_concurrency > 0]
        if held:
            path = " ".join(f"{x(p.context):.1f},{y(p.max_concurrency):.1f}" for p in held)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
            parts += [f'<circle cx="{x(p.context):.1f}" cy="{y(p.max_concurrency):.1f}" r="3" fill="{colour}">'
                      f'<title>{p.context:,} tokens: {p.max_concurrency:,} requests'
                      + (f', ITL {p.itl_ms_at_max:.1f} ms with all decoding' if p.itl_ms_at_max else '')
                      + '</title></circle>' for p in held]
        parts.append(f'<text x="{width - right + 10}" y="{top + 16 * i + 10}" fill="{colour}">'
                     f'{escape(c.kv_dtype)}, tp {c.tp}</text>')
    parts.append(f'<text x="{left + (width - left - right) / 2:.0f}" y="{height - 4}" text-anchor="middle">'
                 f'max model length (tokens per request)</text></svg>')
    return "".join(parts)


def _budget_bar(plan, width: int = 720) -> str:
    b = plan.budget
    segments = budget_segments(b)
    scale = max(b.gpu_memory_bytes, sum(v for _, v, _, _ in segments))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="64">']
    offset = 0.0
    for label, value, _, colour in segments:
        w = width * value / scale
        parts.append(f'<rect x="{offset:.1f}" y="0" width="{w:.1f}" height="28" fill="{COLOURS[colour]}">'
                     f'<title>{escape(label)}: {size(value)}</title></rect>')
        offset += w
    legend = "  ".join(f"{label} {size(value)}" for label, value, _, _ in segments)
    parts.append(f'<text x="0" y="48">{escape(legend)}</text></svg>')
    return (f"<h3>One GPU at tp {plan.tp}: {escape(b.gpu_name or '')} {size(b.gpu_memory_bytes)}, utilization "
            f"{b.gpu_util:.2f}</h3>" + "".join(parts))


def _table(rows: list, columns: list = None) -> str:
    rows = [flatten(r) for r in rows]
    columns = columns or [c for r in rows for c in r]
    columns = list(dict.fromkeys(columns))
    head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(_cell(r.get(c)))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3g}"
    return str(value)


def _estimate_body(result) -> str:
    """The text output's facts, each said as the table says it (render/estimate.py: the same functions): vLLM's
    startup lines and refusal per plan, a refusal of the GPU once, the plans table, and every footnote (the rules,
    the budget, what would start instead of a refused plan, what the figures are one of)."""
    from .estimate import (footnotes, gpu_refusal, gpu_refusal_line, log_block, plan_rows, refused_gpu_name,
                           served_spec, weights_heading)

    spec, spell = result.spec, result.spell
    parts = [f"<h1>{escape(spec.name)}</h1>",
             f"<p class='note'>{spec.num_hidden_layers} layers, {weights_heading(spec, served_spec(result))} "
             f"({escape(spec.weights.source)}).</p>", "<h2>Requests held at once against max model length</h2>",
             _line_chart(result)]
    seen = set()
    for p in result.plans:
        if p.budget.source == "gpu" and p.tp not in seen:
            seen.add(p.tp)
            parts.append(_budget_bar(p))
    shown = set()  # lines said above the footnotes: not said twice
    for p in result.plans:
        engine = getattr(p, "engine", None)
        if gpu_refusal(p) is not None:  # the GPU's, not the plan's: once, with what would start
            line = _strip_markup(gpu_refusal_line(p, spell, result.gpu))
            if line not in shown:
                shown.add(line)
                parts.append(f"<h3>{escape(engine.name)} {escape(engine.version)} on "
                             f"{escape(refused_gpu_name(p, result.gpu))} "
                             f"(every plan)</h3><p class='note'>{escape(line)}</p>")
            continue
        block = [_strip_markup(line) for line in log_block(p, spell)]
        if block:  # its heading, then vLLM's lines and what kvplan says of them, as the text prints them
            parts.append(f"<h3>{escape(block[0])}</h3><pre>{escape(chr(10).join(block[1:]))}</pre>")
    columns, rows = plan_rows(result.plans)
    header = "".join(f"<th title='{escape(c.legend)}'>{escape(c.header)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(_strip_markup(cell))}</td>" for cell in row) + "</tr>"
                   for row in rows)
    parts.append(f"<h2>Plans</h2><table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>")
    notes = [line for line in map(_strip_markup, footnotes(result, result.plans, spell)) if line not in shown]
    if notes:
        parts.append("<ul class='note'>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    parts.append("<ul class='note'>" + "".join(f"<li><b>{escape(c.header)}</b>: {escape(c.legend)}</li>"
                                               for c in columns if c.legend) + "</ul>")
    return "".join(parts)


def _strip_markup(text: str) -> str:
    from rich.text import Text

    return Text.from_markup(text).plain


def page(result) -> str:
    if getattr(result, "view", None) == "estimate":
        title, body = f"kvplan estimate {result.spec.name}", _estimate_body(result)
    else:
        title, body = f"kvplan {result.view}", _table(result.rows())
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}<p class='note'>Made by kvplan.</p></body></html>\n")
