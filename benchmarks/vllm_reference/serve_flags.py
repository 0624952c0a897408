"""Make tests/data/vllm_serve_flags.json: every flag `vllm serve` declares in a release, read from the release's own
source (the unzipped wheel), so tests/test_serve_flags_s78.py can check kvplan's classification of vLLM's flags
(kvplan/cli/vllm_serve_flags.py) without vLLM installed.

    pip download --no-deps vllm==0.34.0 -d /tmp/whl && unzip -q /tmp/whl/vllm-0.34.0-*.whl 'vllm/*' -d /tmp/src_0.34.0
    python benchmarks/vllm_reference/serve_flags.py /tmp/src_0.32.0 /tmp/src_0.34.0 > tests/data/vllm_serve_flags.json

Read statically (ast, no import: importing vLLM needs torch): `vllm serve` is make_arg_parser (entrypoints/
openai/cli_args.py to 0.31, launchers/ or common/cli_args.py later), which adds its own flags, FrontendArgs's fields
(BaseFrontendArgs's too) through get_kwargs, and AsyncEngineArgs.add_cli_args (EngineArgs.add_cli_args plus
--enable-log-requests), whose add_argument calls each name their flags as literals and take `**x_kwargs["field"]`
from `x_kwargs = get_kwargs(SomeConfig)`. get_kwargs (engine/arg_utils.py 0.34.0:323-439) makes a field typed with
bool a BooleanOptionalAction (a --no- form), `bool | str | None` an optional value, anything else a value; explicit
action=store_true / BooleanOptionalAction in the call win. Each flag: "value" (true, false, or "optional") and
"negative" (its --no- spelling where argparse makes one)."""

import ast
import json
import sys
from pathlib import Path

FRONTEND_FILES = ("entrypoints/common/cli_args.py", "entrypoints/launchers/cli_args.py",
                  "entrypoints/openai/cli_args.py")


def classes(root: Path) -> dict:
    """{class name: ClassDef} of every class under vllm/ (the config dataclasses get_kwargs reads)."""
    found = {}
    for path in sorted((root / "vllm").rglob("*.py")):
        try:
            tree = ast.parse(path.read_text())
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, node)
    return found


def field_types(name: str, known: dict) -> dict:
    """{field: annotation text} of dataclass `name`, its bases' fields first (as dataclasses.fields orders them)."""
    node = known.get(name)
    if node is None:
        return {}
    out = {}
    for base in node.bases:
        if isinstance(base, ast.Name):
            out.update(field_types(base.id, known))
    for stmt in node.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            out[stmt.target.id] = ast.unparse(stmt.annotation)
    return out


def value_of(annotation: str) -> str:
    """get_kwargs's reading of a field's type: "switch" (BooleanOptionalAction), "optional" (bool | str | None:
    nargs="?"), else "value"."""
    parts = {p.strip() for p in annotation.replace("Optional[", "").replace("]", "").split("|")}
    if "bool" in parts and "str" in parts:
        return "optional"
    return "switch" if "bool" in parts else "value"


def entry(kind: str, names: list) -> dict:
    long = next(n for n in names if n.startswith("--"))
    return {"names": names, "value": {"value": True, "switch": False, "store": False, "optional": "optional"}[kind],
            "negative": "--no-" + long[2:] if kind == "switch" else None}


def call_flags(tree: ast.AST, known: dict) -> dict:
    """{long flag: entry} of every add_argument call in `tree` with literal flag names."""
    sources = {}  # x_kwargs -> config class, from `x_kwargs = get_kwargs(Cls)` (or get_kwargs(Cls)["field"])
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = node.value
            field = None
            if isinstance(value, ast.Subscript) and isinstance(value.slice, ast.Constant):
                field, value = value.slice.value, value.value
            if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "get_kwargs"
                    and value.args and isinstance(value.args[0], ast.Name)):
                sources[node.targets[0].id] = (value.args[0].id, field)
    out = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument"):
            continue
        names = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if not names or not names[0].startswith("-"):
            continue  # model_tag, the positional
        kind = "value"
        for kw in node.keywords:
            if kw.arg is None and isinstance(kw.value, ast.Subscript) and isinstance(kw.value.value, ast.Name):
                cls, field = sources.get(kw.value.value.id, (None, None))
                key = kw.value.slice.value if isinstance(kw.value.slice, ast.Constant) else None
                if cls is not None:
                    annotation = field_types(cls, known).get(field or key)
                    if annotation is None:
                        raise SystemExit(f"no field {field or key} in {cls}")
                    kind = value_of(annotation)
            elif kw.arg is None and isinstance(kw.value, ast.Name):
                cls, field = sources.get(kw.value.id, (None, None))  # **logging_config_kwargs
                if cls is not None:
                    kind = value_of(field_types(cls, known)[field])
        for kw in node.keywords:
            text = ast.unparse(kw.value)
            if kw.arg == "action":
                kind = ("switch" if "BooleanOptionalAction" in text else "store" if text.strip("'\"") in
                        ("store_true", "store_false") else kind)
            if kw.arg == "nargs" and text.strip("'\"") == "?" and kind == "value":
                kind = "optional"
        out[next(n for n in names if n.startswith("--"))] = entry(kind, names)
    return out


def frontend_flags(tree: ast.AST, known: dict) -> dict:
    """FrontendArgs's fields as get_kwargs makes flags of them (--field-name)."""
    out = {}
    for name, annotation in field_types("FrontendArgs", known).items():
        flag = "--" + name.replace("_", "-")
        out[flag] = entry(value_of(annotation), [flag])
    return out


def serve_flags(root: Path) -> dict:
    known = classes(root)
    vllm = root / "vllm"
    flags = call_flags(ast.parse((vllm / "engine/arg_utils.py").read_text()), known)
    path = next(vllm / f for f in FRONTEND_FILES if (vllm / f).exists() and "make_arg_parser" in (vllm / f).read_text())
    tree = ast.parse(path.read_text())
    flags.update(frontend_flags(tree, known))
    flags.update(call_flags(tree, known))  # make_arg_parser's own (--headless, --api-server-count, ...)
    version = {}
    exec((vllm / "_version.py").read_text(), version)
    return {"version": version["__version__"], "frontend": str(path.relative_to(root)),
            "flags": dict(sorted(flags.items()))}


def main(roots: list) -> None:
    releases = [serve_flags(Path(root)) for root in roots]
    json.dump({"made_by": "benchmarks/vllm_reference/serve_flags.py", "releases": releases}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
