"""`kvplan gpus` for people."""

from __future__ import annotations

from ..plan.catalog import DEFAULT_GPU
from .text import size


def renderable(result):
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title="GPU catalog (memory as the CUDA runtime reports it)", title_justify="left")
    for column in ("name", "memory", "bandwidth", "aliases"):
        table.add_column(column)
    for g in result.gpus:
        table.add_row(g.name, size(g.memory_bytes), f"{g.bandwidth / 1e12:.2f} TB/s", ", ".join(g.aliases))
    found = result.detected
    line = f"Detected: {found.name}" if found else f"Detected: none (no NVIDIA driver); default {DEFAULT_GPU}"
    return Group(table, Text(line))
