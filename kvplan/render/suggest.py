"""`kvplan check --suggest` for people: every valid TP degree of a model, laid out as kvplan's other tables."""

from __future__ import annotations

from .text import Column, fitted_table

COLUMNS = (Column("TP"), Column("query heads/GPU"), Column("KV heads/GPU"), Column("KV replicated"))


def renderable(result, width=None):
    from rich.console import Group
    from rich.text import Text

    report = result.report
    kv = "MLA latent" if report["mla"] else f"{report['num_key_value_heads']} KV heads"
    title = Text(f"{report['model']}: {report['num_attention_heads']} query heads, {kv}; valid TP degrees up to "
                 f"{report['max_tp']}:")
    rows = []
    for d in report["valid_tp"]:
        heads = "latent" if report["mla"] else "-" if d["kv_heads_per_gpu"] is None else str(d["kv_heads_per_gpu"])
        replicated = "all ranks (MLA)" if report["mla"] and d["tp"] > 1 else \
            f"yes, x{d['tp'] // report['num_key_value_heads']}" if d["kv_heads_replicated"] else "no"
        rows.append([str(d["tp"]), str(d["attention_heads_per_gpu"]), heads, replicated])
    table, _ = fitted_table(list(COLUMNS), rows, width)
    return Group(title, table)
