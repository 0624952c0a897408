"""Text for people: rich renderables to a string at the terminal's width, and sizes in human units."""

from __future__ import annotations

import io


def table_text(renderable, width: int = 100) -> str:
    """Render rich output to text (colours only on a terminal)."""
    import sys

    from rich.console import Console

    console = Console(file=io.StringIO(), width=max(width, 60), force_terminal=sys.stdout.isatty(),
                      highlight=False)
    console.print(renderable)
    return console.file.getvalue()


def terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns


def size(value) -> str:
    """Bytes for people, three significant digits: 512 B, 4.25 KiB, 128 MiB, 53.3 GiB."""
    if value is None:
        return "-"
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= scale:
            scaled = value / scale
            digits = 0 if abs(scaled) >= 100 else 1 if abs(scaled) >= 10 else 2
            return f"{scaled:,.{digits}f} {unit}"
    return f"{value:,} B"
