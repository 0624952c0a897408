"""The formats for scripts: json, yaml and csv, stable across releases; and the guards every output passes.

- Numbers: every number is finite, and a field that counts something (bytes, tokens, blocks, layers, heads,
  parameters, a context length, a TP degree) holds an integer. A violation is a bug in kvplan, raised as
  OutputInvariantError (exit 3) rather than printed: NaN or Infinity would not even be valid JSON.
- GitHub Actions reads a log line as a workflow command when it starts with `::` (after spaces) or contains
  `##[` anywhere. No output line does either: JSON and YAML escape such text (`\\u005b`, `\\x5B`: the value
  reads back unchanged); CSV cells and table lines have line breaks written as %0D/%0A, a cell that would
  start a line with `::` quoted, and `##[` written `##%5B`; a table line starting with `::` gets its first
  colon written %3A (GitHub's own escapes).
"""

from __future__ import annotations

import io
import json
import math
import re
from typing import Iterable

# Keys whose values count something: integers (or null), never floats.
INTEGER_KEY = re.compile(r"(bytes|_tokens|_blocks|blocks_per|parameters)$|"
                         r"^(context|tp|pp|block_size|batch|input_len|"
                         r"num_hidden_layers|num_attention_heads|num_key_value_heads|head_dim|hidden_size|"
                         r"kv_heads_per_gpu|kv_blocks|num_gpu_blocks|max_model_len|max_position_embeddings|"
                         r"batch_at_max|"
                         r"min_concurrency|contiguous_max_concurrency|line)$|_bytes_|bytes_per_")
NOT_INTEGER_KEY = re.compile(r"(_per_s|_ms|_s|_fraction|_util|ratio)$")
LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
ODD_BREAKS = re.compile(r"\r(?!\n)|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")  # all but the table's own \n


class OutputInvariantError(ValueError):
    """kvplan was about to print a number that is not finite or not of its declared type."""


def check_numbers(data, path: str = "") -> None:
    """Raise OutputInvariantError naming the first non-finite float, or float/bool in an integer field."""
    stack = [(path, None, data)]
    while stack:
        where, key, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{where}.{k}", str(k), v) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{where}[{i}]", key, v) for i, v in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            raise OutputInvariantError(f"{where.lstrip('.')} is {value}")
        elif key is not None and value is not None and INTEGER_KEY.search(key) and not NOT_INTEGER_KEY.search(key) \
                and (isinstance(value, bool) or not isinstance(value, int)) and isinstance(value, (int, float)):
            raise OutputInvariantError(f"{where.lstrip('.')} counts something but is {value!r}")


def to_json(data) -> str:
    check_numbers(data)
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    return text.replace("##[", "##\\u005b")  # only inside strings: the same value for a JSON reader


def to_yaml(data) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper, value: str):
        risky = "##[" in value or LINE_BREAKS.search(value)
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"' if risky else None)

    Dumper.add_representer(str, text)
    check_numbers(data)
    out = yaml.dump(data, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=float("inf"))
    return out.replace("##[", "##\\x5B")  # only inside double-quoted scalars (see text()): the same value


def flatten(row: dict, prefix: str = "") -> dict:
    """Nested dicts become prefix_key columns; lists of plain values become ';'-joined cells, lists of records
    (decode points, budget terms) one cell of JSON, which a script can read back."""
    flat = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}_"))
        elif isinstance(value, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) for v in value):
            flat[name] = json.dumps(value, separators=(",", ":"))
        elif isinstance(value, (list, tuple)):
            flat[name] = "; ".join(str(v) for v in value)
        else:
            flat[name] = value
    return flat


def safe_text(text: str) -> str:
    """Text on one line that GitHub Actions cannot read as a workflow command anywhere in it."""
    text = LINE_BREAKS.sub(lambda m: "%0D" if m.group() == "\r" else "%0A", text)
    return text.replace("##[", "##%5B")


def safe_lines(text: str) -> str:
    """A rendered table with no line GitHub Actions reads as a workflow command."""
    lines = []
    text = ODD_BREAKS.sub(lambda m: "%0D" if m.group() == "\r" else "%0A", text)
    for line in text.split("\n"):
        line = line.replace("##[", "##%5B")
        if line.lstrip().startswith("::"):
            cut = len(line) - len(line.lstrip())
            line = line[:cut] + "%3A" + line[cut + 1:]
        lines.append(line)
    return "\n".join(lines)


def _cell(value) -> str:
    text = "" if value is None else safe_text(str(value))
    if any(c in text for c in ',"') or text.lstrip().startswith("::"):
        return '"' + text.replace('"', '""') + '"'
    return text


def _schema(rows: list) -> dict:
    """Every key of the rows in order of first appearance, a record's (a dict in any row) as the record of its own
    keys: flattened, the columns in the same order whichever row carries a record first."""
    keys = list(dict.fromkeys(key for row in rows for key in row))
    records = {key: [row[key] for row in rows if isinstance(row.get(key), dict)] for key in keys}
    return {key: _schema(records[key]) if records[key] else None for key in keys}


def _without_absent_records(rows: list) -> list:
    """A record one row lacks (None where another row has a dict: no engine figures at an unshardable TP degree, no
    refusal) left out of that row, so that it is empty cells in the record's own columns, not a column beside them."""
    records = {key for row in rows for key, value in row.items() if isinstance(value, dict)}
    if not records:
        return rows
    inner = {key: iter(_without_absent_records([row[key] for row in rows if isinstance(row.get(key), dict)]))
             for key in records}
    return [{key: next(inner[key]) if key in records and isinstance(value, dict) else value
             for key, value in row.items() if not (key in records and value is None)} for row in rows]


def to_csv(rows: Iterable[dict]) -> str:
    rows = list(rows)
    check_numbers(rows)
    columns = list(flatten(_schema(rows)))
    rows = [flatten(r) for r in _without_absent_records(rows)]
    out = io.StringIO()
    for values in [columns] + [[row.get(c) for c in columns] for row in rows]:
        out.write(",".join(_cell(v) for v in values) + "\n")
    return out.getvalue()
