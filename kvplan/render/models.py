"""`kvplan models` for people."""

from __future__ import annotations

from .text import size


def renderable(result):
    from rich.table import Table

    rows = result.models
    table = Table(title=f"{len(rows)} bundled model specs", title_justify="left")
    for column in ("id", "layers", "heads q/kv", "head_dim", "kinds", "params", "weights"):
        table.add_column(column, no_wrap=column != "id")
    for r in rows:
        kv = r["kv_heads"] if r["kv_heads"] is not None else "MLA"
        table.add_row(r["id"], str(r["layers"]), f"{r['attention_heads']}/{kv}", str(r["head_dim"] or "-"),
                      ",".join(r["layer_kinds"]), f"{r['parameters'] / 1e9:,.1f}B", size(r["weights_bytes"]))
    return table
