"""`kvplan gpus` for people: the catalog, the names --gpu takes, and the detected GPU."""

from __future__ import annotations

from typing import Optional

from ..plan.catalog import DEFAULT_GPU
from .text import Column, fitted_table, size

COLUMNS = (
    Column("name", justify="left"),
    Column("memory"),
    Column("bandwidth"),
    Column("also accepted by --gpu", justify="left", wrap=True, priority=1),
)


def renderable(result, width: Optional[int] = None):
    from rich.console import Group
    from rich.text import Text

    rows = [[g.name, size(g.memory_bytes), f"{g.bandwidth / 1e12:.2f} TB/s", ", ".join(g.aliases)]
            for g in result.gpus]
    table, _ = fitted_table(list(COLUMNS), rows, width, title="GPU catalog (memory as the CUDA runtime reports "
                                                               "it; names are case-insensitive)")
    found = result.detected
    line = f"Detected: {found.name}" if found else f"Detected: none (no NVIDIA driver); default {DEFAULT_GPU}"
    return Group(table, Text(line))
