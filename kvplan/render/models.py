"""`kvplan models` for people: every bundled id whole (ids are never cut; other columns go first when the
terminal is narrow)."""

from __future__ import annotations

from typing import Optional

from rich.markup import escape

from .text import Column, fitted_table, left_out, size

COLUMNS = (
    Column("id", justify="left", wrap=False),
    Column("layers", priority=3),
    Column("q heads", priority=5),
    Column("KV a layer", justify="left", priority=2, wrap=True),
    Column("kinds", justify="left", priority=4),
    Column("max len", priority=1),
    Column("params", priority=6),
    Column("weights", priority=7),
)


def renderable(result, width: Optional[int] = None):
    from rich.console import Group
    from rich.text import Text

    rows = []
    for r in result.models:
        rows.append([escape(r["id"]), str(r["layers"]), str(r["attention_heads"] or "-"), ", ".join(r["kv_shapes"]),
                     ",".join(r["layer_kinds"]), f"{r['default_max_model_len']:,}", f"{r['parameters'] / 1e9:,.1f}B",
                     size(r["weights_bytes"])])
    table, shown = fitted_table(list(COLUMNS), rows, width, title=f"{len(rows)} bundled model specs")
    aliases = sum(len(r["aliases"]) for r in result.models)
    dropped = [Text(left_out(COLUMNS, shown) + ".", style="dim")] if left_out(COLUMNS, shown) else []
    length = Text("max len: the max model length vLLM serves by default (the config's, RoPE-scaled; 2,048 where it "
                  "names none).", style="dim")
    return Group(table, *dropped, length,
                 Text(f"{aliases} more ids resolve as aliases of these (instruct/chat variants with the same "
                             f"config): `kvplan models --format json` lists them.", style="dim"))
