"""One rendering path for every command: `emit(result, fmt)` turns a command's result object into the text of
one format. json/yaml come from `result.to_dict()`, csv from `result.rows()`, html from render/html.py, and the
table for people from the view module the result names (kvplan/render/<view>.py, its
`renderable(result, width, **options)`). Everything is rendered to a string first, so a failure never leaves
half an output behind."""

from __future__ import annotations

import importlib

from ..errors import FieldError, quote

FORMATS = ("table", "json", "yaml", "csv", "html")
VERIFY_FORMATS = FORMATS[:-1]  # a measured run has no standalone page


def check_format(fmt: str, formats: tuple = FORMATS) -> str:
    """`fmt` as one of `formats` names it, in any case (-f JSON, as --kv-cache-dtype FP8 is taken)."""
    name = fmt.strip().lower() if isinstance(fmt, str) else fmt
    if name not in formats:
        raise FieldError("format", f"{quote(fmt)} is not one of {', '.join(formats)}.")
    return name


def format_help(formats: tuple = FORMATS) -> str:
    """--format's help, naming what check_format takes."""
    named = {"table": "table (for people)", "html": "html (a standalone page)"}
    listed = [named.get(name, name) for name in formats]
    scripts = [name for name in formats if name in ("json", "yaml", "csv")]
    return (f"Output format: {', '.join(listed[:-1])} or {listed[-1]}, in any case; "
            f"{', '.join(scripts[:-1])} and {scripts[-1]} are stable for scripts.")


def emit(result, fmt: str, **options) -> str:
    """`options` reach the table view (estimate's `chart`)."""
    from . import formats, text

    fmt = check_format(fmt, getattr(result, "formats", FORMATS))
    if fmt == "json":
        return formats.to_json(result.to_dict())
    if fmt == "yaml":
        return formats.to_yaml(result.to_dict())
    if fmt == "csv":
        return formats.to_csv(getattr(result, "csv_rows", result.rows)())  # a fixed schema where it has one
    if fmt == "html":
        from .html import page

        return formats.safe_lines(page(result))
    view = importlib.import_module(f"{__name__}.{result.view}")
    width = text.output_width()
    limit = getattr(view, "MAX_WIDTH", None)
    if limit is not None:
        width = min(width or limit, limit)
    return formats.safe_lines(text.render(view.renderable(result, width, **options), width))
