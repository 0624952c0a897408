"""`kvplan gpus` for people: the catalog, the names --gpu takes, and the detected GPU."""

from __future__ import annotations

import re
from typing import Optional

from ..plan.catalog import DEFAULT_GPU
from .text import Column, fitted_table, left_out, size

COLUMNS = (
    Column("name", justify="left"),
    Column("memory"),
    Column("bandwidth"),
    Column("device name (nvidia-smi, ROCm)", justify="left", priority=2),
    Column("also", justify="left", wrap=True, priority=1),
)


def _short(gpu) -> list:
    """The other names --gpu takes, spelled once each (spaces and hyphens are the same to --gpu)."""
    names = [re.sub(r"[\s_]+", "-", a.lower()) for a in gpu.aliases if a not in gpu.device_names]
    return [n for n in dict.fromkeys(names) if n != gpu.name.lower()]


def renderable(result, width: Optional[int] = None):
    from rich.console import Group
    from rich.text import Text

    rows = [[g.name, size(g.memory_bytes), f"{g.bandwidth / 1e12:.2f} TB/s", "\n".join(g.device_names) or "-",
             ", ".join(_short(g))] for g in result.gpus]
    table, shown = fitted_table(list(COLUMNS), rows, width, title="GPU catalog")
    found = result.detected
    line = f"Detected: {found.name}" if found else f"Detected: none (no NVIDIA driver); default {DEFAULT_GPU}"
    note = Text("Memory as the CUDA runtime reports it (less than the label: the driver keeps some). --gpu takes "
                "a name, nvidia-smi's device name or any alias, case-insensitively; `--format json` has each "
                "figure's source.", style="dim")
    dropped = [Text(left_out(COLUMNS, shown) + ".", style="dim")] if left_out(COLUMNS, shown) else []
    return Group(table, *dropped, note, Text(line))
