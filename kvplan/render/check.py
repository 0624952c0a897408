"""`kvplan check` for people, and for GitHub Actions: the deployments table with each finding under it, and
one `::error file=PATH,line=N::message` workflow command per finding (`::warning`, `::notice` by its level: what
GitHub turns into an annotation on the offending line of the deployments file)."""

from __future__ import annotations

import os
from pathlib import Path

from .text import Column, fitted_table, left_out


def _escape(text: str, prop: bool = False) -> str:
    """GitHub workflow-command escaping (data: % CR LF; properties also : and ,), and every other character
    some reader takes for a line break written as LF would be, so that one annotation stays one line."""
    import re

    text = str(text).replace("%", "%25").replace("\r", "%0D")
    text = re.sub(r"[\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]", "%0A", text)
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def _annotation_path(path: str) -> str:
    """Paths in annotations are relative to the checkout (GITHUB_WORKSPACE) so GitHub can place them."""
    workspace = os.environ.get("GITHUB_WORKSPACE")
    target = Path(path)
    if workspace and target.is_absolute():
        try:
            target = target.resolve().relative_to(Path(workspace).resolve())
        except ValueError:
            pass
    return target.as_posix()


def annotations(result) -> str:
    """One `::error`/`::warning` workflow command per finding; file= and line= when there is a file."""
    lines = []
    for r in result.results:
        for f in r["findings"]:
            props = ""
            if r["file"] is not None:
                props = f" file={_escape(_annotation_path(r['file']), True)}"
                if f["line"] is not None:
                    props += f",line={f['line']}"
            lines.append(f"::{f['level']}{props}::{_escape(r['name'] + ': ' + f['message'])}")
    return "".join(line + "\n" for line in lines)


def input_annotation(said: str, files) -> str:
    """A bad input's `::error file=PATH,line=N::message` workflow command, where `said` (the error line's sentence)
    starts with the place of one of the deployments `files` checked: "PATH:N: ..." (an entry's key, said without the
    place), "--file PATH:N: ..." or "--file PATH is not valid YAML at line N: ..." (said whole); else ''."""
    import re

    text = said.removeprefix("--file ")
    for path in sorted({str(f) for f in files}, key=len, reverse=True):  # the longest first: a.yaml before a.yam
        if not text.startswith(path):
            continue
        placed = re.match(r":(\d+): (.+)", text[len(path):], re.DOTALL)
        unparsed = re.match(r" is not valid YAML at line (\d+)\b", text[len(path):])
        if placed or unparsed:
            line, message = (placed.group(1), placed.group(2)) if placed else (unparsed.group(1), said)
            return f"::error file={_escape(_annotation_path(path), True)},line={line}::{_escape(message)}\n"
    return ""


def in_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


COLUMNS = (
    Column("name", justify="left", wrap=True),
    Column("model", justify="left", wrap=True, priority=3),
    Column("TP"),
    Column("PP", priority=4),
    Column("KV heads/GPU", priority=5),
    Column("max len", priority=2),
    Column("requests", priority=1),
    Column("min", priority=1),
    Column("result", justify="left"),
)
# shown only where some row needs it, so that a table of one file with no min_model_len is laid out as it always was:
# the file each row came from (the path as given) where the rows come from more than one file, first, as entries of
# one name in two files are told apart; min_model_len's target beside the length served where some entry sets it,
# dropped before "max len" (never shown without it)
FILE_COLUMN = Column("file", justify="left", wrap=True)
MIN_LEN_COLUMN = Column("min len", priority=3)


def columns_for(results) -> list:
    """COLUMNS with FILE_COLUMN first where the rows come from more than one file, and MIN_LEN_COLUMN after
    "max len" where some row sets min_model_len."""
    columns = list(COLUMNS)
    if any(r.get("min_model_len") is not None for r in results):
        columns.insert([c.header for c in columns].index("max len") + 1, MIN_LEN_COLUMN)
    if len({r["file"] for r in results}) > 1:
        columns.insert(0, FILE_COLUMN)
    return columns


def _cells(r, columns) -> list:
    """One row's cells for `columns` (columns_for's)."""
    from rich.text import Text

    heads = "MLA" if r["mla"] else "-" if r["kv_heads_per_gpu"] is None else str(r["kv_heads_per_gpu"])
    if r["kv_heads_replicated"]:
        heads += " (repl.)"
    verdict = Text("FAIL", style="bold red") if not r["passed"] else \
        Text("pass, warned", style="yellow") if r["warnings"] else Text("pass", style="green")
    length = f"{r['context']:,}" + (" (auto)" if r.get("auto_fit") else "")  # the length auto-fit picked
    cells = {"file": Text("-" if r["file"] is None else str(r["file"])), "name": Text(r["name"]),
             "model": Text(r["model_id"]), "TP": str(r["tp"]), "PP": str(r["pp"] or "-"), "KV heads/GPU": heads,
             "max len": length, "min len": "-" if r.get("min_model_len") is None else f"{r['min_model_len']:,}",
             "requests": "-" if r["max_concurrency"] is None else f"{r['max_concurrency']:,}",
             "min": "-" if r["min_concurrency"] is None else f"{r['min_concurrency']:,}", "result": verdict}
    return [cells[c.header] for c in columns]


MARKS = {"error": "red", "warning": "yellow", "notice": "cyan"}  # a finding's level, as its line is marked


def renderable(result, width=None):
    from rich.console import Group
    from rich.markup import escape
    from rich.text import Text

    results = result.results
    failed = sum(not r["passed"] for r in results)
    title = (f"kvplan check: {len(results)} deployment{'s' * (len(results) != 1)}, "
             + (f"{failed} failing" if failed else "all pass"))
    columns = columns_for(results)
    rows = [_cells(r, columns) for r in results]
    table, shown = fitted_table(columns, rows, width, title=escape(title))
    notes = [Text(left_out(columns, shown) + ".", style="dim")] if left_out(columns, shown) else []
    for r in results:
        for f in r["findings"]:
            where = f" ({r['file']}:{f['line']})" if r["file"] and f["line"] else ""
            style = MARKS.get(f["level"], "yellow")
            notes.append(Text.assemble((f"{f['level']}: ", style), f"{r['name']}{where}: {f['message']}"))
    return Group(table, *notes)
