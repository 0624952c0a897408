"""One rendering path for every command: `emit(result, fmt)` turns a command's result object into the text of
one format. json/yaml come from `result.to_dict()`, csv from `result.rows()`, html from render/html.py, and the
table for people from the view module the result names (kvplan/render/<view>.py, its
`renderable(result, width, **options)`). Everything is rendered to a string first, so a failure never leaves
half an output behind."""

from __future__ import annotations

import importlib

from ..errors import FieldError

FORMATS = ("table", "json", "yaml", "csv", "html")


def check_format(fmt: str, formats: tuple = FORMATS) -> str:
    if fmt not in formats:
        raise FieldError("format", f"{fmt!r} is not one of {', '.join(formats)}.")
    return fmt


def emit(result, fmt: str, **options) -> str:
    """`options` reach the table view (estimate's `chart`)."""
    from . import formats, text

    formats_of = getattr(result, "formats", FORMATS)
    check_format(fmt, formats_of)
    if fmt == "json":
        return formats.to_json(result.to_dict())
    if fmt == "yaml":
        return formats.to_yaml(result.to_dict())
    if fmt == "csv":
        return formats.to_csv(result.rows())
    if fmt == "html":
        from .html import page

        return formats.safe_lines(page(result))
    view = importlib.import_module(f"{__name__}.{result.view}")
    width = text.output_width()
    limit = getattr(view, "MAX_WIDTH", None)
    if limit is not None:
        width = min(width or limit, limit)
    return formats.safe_lines(text.render(view.renderable(result, width, **options), width))
