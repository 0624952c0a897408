"""Text for people: rich renderables to a string, tables that fit the terminal by dropping their least important
columns (never cutting a number or an id), and sizes in human units.

Width: the terminal's columns (COLUMNS when set); piped output without COLUMNS is laid out at its natural width,
so nothing is dropped or cut, and carries no colour codes."""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass
from typing import Optional

PIPED_PROSE_WIDTH = 100  # prose (footnotes) wraps here when there is no terminal
MIN_WIDTH = 60


@dataclass(frozen=True)
class Column:
    header: str
    justify: str = "right"
    priority: int = 0  # 0: always shown; otherwise dropped highest first when the table does not fit
    wrap: bool = False  # long text (an id) may wrap onto a second line rather than be dropped
    legend: str = ""  # what the column holds, for the legend under the table


def output_width() -> Optional[int]:
    """Columns to lay out in: the terminal's (or COLUMNS), None when piped with no COLUMNS (natural width)."""
    if os.environ.get("COLUMNS", "").isdigit():
        return max(int(os.environ["COLUMNS"]), MIN_WIDTH)
    if sys.stdout.isatty():
        import shutil

        return max(shutil.get_terminal_size((100, 24)).columns, MIN_WIDTH)
    return None


# the box characters kvplan's tables draw (rich's SIMPLE_HEAD rule; HEAVY_HEAD's, rich's default, for any table built
# without table_box), and the bar characters of estimate --chart (chart.SEGMENTS)
BOX_CHARACTERS = "─━┃│┏┓┳┡┩╇└┘┴" + "█▓▒░·■"
# SIMPLE_HEAD's eight rows (top, head, head row, mid, row, foot row, foot, bottom) with '-' for its rule
ASCII_SIMPLE_HEAD = "    \n    \n -- \n    \n    \n    \n    \n    \n"


def draws_boxes() -> bool:
    """Whether stdout's encoding holds the box characters: where it does not (PYTHONIOENCODING=ascii, a C locale),
    tables are drawn in ASCII (ascii_box) rather than the write failing; a stream with no encoding (a StringIO, a
    closed stdout) is taken as UTF-8."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        BOX_CHARACTERS.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def encodable(text: str) -> str:
    """`text` with each character stdout's encoding cannot hold written '?' (str.encode's errors="replace"): where
    draws_boxes() is false the tables and charts are ASCII already, and what is left (rich's '\u2026' cutting a long
    option name in --help, a model's name) degrades rather than failing the write."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        return text.encode(encoding, errors="replace").decode(encoding)
    except LookupError:  # an encoding Python does not know: ASCII holds less than any it does
        return text.encode("ascii", errors="replace").decode("ascii")


def table_box():
    """SIMPLE_HEAD (a rule under the header), or its ASCII form where stdout cannot hold the rule's character."""
    from rich import box

    return box.SIMPLE_HEAD if draws_boxes() else box.Box(ASCII_SIMPLE_HEAD, ascii=True)


class _Capture(io.StringIO):
    """The text rich renders, with the encoding rich picks its boxes by: an ASCII one where stdout's cannot hold the
    box characters (rich then draws any other table in ASCII too)."""

    @property
    def encoding(self) -> str:
        return "utf-8" if draws_boxes() else "ascii"


def _console(width: int, file=None):
    from rich.console import Console

    return Console(file=file or _Capture(), width=width, force_terminal=sys.stdout.isatty(), highlight=False,
                   soft_wrap=False)


def natural_width(renderable) -> int:
    """The width `renderable` takes with nothing wrapped."""
    from rich.measure import Measurement

    console = _console(10_000)
    return Measurement.get(console, console.options, renderable).maximum


def _longest_word(cell) -> str:
    text = cell.plain if hasattr(cell, "plain") else str(cell)
    return max(text.split() or [""], key=len)


def fitted_table(columns: list, rows: list, width: Optional[int], **table_options):
    """A rich Table of `rows` (one cell per column) with as many columns as fit in `width`: the highest
    `priority` numbers go first; cells never wrap or truncate except in `wrap` columns. Returns (table, the
    columns kept)."""
    from rich.table import Table

    kept = list(range(len(columns)))

    def build(indices, probe=False):
        """The table of these columns; a `probe` holds only the longest word of each wrapping cell, so its
        natural width is the least width at which no cell is cut."""
        table = Table(box=table_box(), pad_edge=False, show_edge=False, title_justify="left",
                      **({} if probe else table_options))
        for i in indices:
            c = columns[i]
            table.add_column(c.header, justify=c.justify, no_wrap=not c.wrap, overflow="fold")
        for row in rows:
            table.add_row(*(_longest_word(row[i]) if probe and columns[i].wrap else row[i] for i in indices))
        return table

    if width is not None:
        droppable = sorted((i for i, c in enumerate(columns) if c.priority), key=lambda i: -columns[i].priority)
        for index in droppable:
            if natural_width(build(kept, probe=True)) <= width:
                break
            kept.remove(index)
    return build(kept), [columns[i] for i in kept]


def left_out(columns: list, shown: list) -> str:
    """The sentence naming the columns fitted_table left out at this width ("" where none was)."""
    dropped = [c.header for c in columns if c not in shown]
    return f"not shown at this width: {', '.join(dropped)}; a wider terminal or --format json has them" \
        if dropped else ""


def legend_lines(columns: list) -> list:
    """'header: what it holds' for each shown column that has a legend."""
    return [f"{c.header}: {c.legend}" for c in columns if c.legend]


def render(renderable, width: Optional[int]) -> str:
    """Render rich output to text at `width` (None: the natural width of the renderable, prose wrapped at
    PIPED_PROSE_WIDTH); colours only on a terminal."""
    if width is None:
        width = PIPED_PROSE_WIDTH
        tables = getattr(renderable, "renderables", [renderable])
        from rich.table import Table

        width = max([width] + [natural_width(t) for t in tables if isinstance(t, Table)])
    console = _console(width)
    console.print(renderable)
    text = console.file.getvalue()
    return "\n".join(line.rstrip() for line in text.split("\n"))


def table_text(renderable, width: int = 100) -> str:
    """Render rich output to text at `width` (kept for callers that pass a width)."""
    return render(renderable, max(width, MIN_WIDTH))


def terminal_width() -> int:
    return output_width() or PIPED_PROSE_WIDTH


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


def prompt_words(input_len: int, note: Optional[str] = None) -> str:
    """The prompt a time to first token is of, as estimate and verify print it: "8,191-token prompt (vLLM 0.34.0
    keeps room for one output token)", the note saying why a default prompt is shorter than the max model length."""
    return f"{input_len:,}-token prompt" + (f" ({note})" if note else "")
