"""The formats for scripts: json, yaml and csv, stable across releases."""

from __future__ import annotations

import csv
import io
import json
from typing import Iterable


def to_json(data) -> str:
    return json.dumps(data, indent=2) + "\n"


def to_yaml(data) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def flatten(row: dict, prefix: str = "") -> dict:
    """Nested dicts become prefix_key columns; lists become ';'-joined cells."""
    flat = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}_"))
        elif isinstance(value, (list, tuple)):
            flat[name] = "; ".join(str(v) for v in value)
        else:
            flat[name] = value
    return flat


def to_csv(rows: Iterable[dict]) -> str:
    rows = [flatten(r) for r in rows]
    columns: list = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
