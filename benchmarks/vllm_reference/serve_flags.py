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
# the `serve` subcommand's own flags, added before make_arg_parser's (serve_parser.add_argument): scripts.py 0.5-0.6
# (--config from 0.6.2: 0.6.6:161-169), entrypoints/cli/serve.py 0.7-0.9 (--headless, -dpr, -asc: 0.9.2:73-100);
# from 0.10 make_arg_parser adds them itself
SERVE_FILES = ("scripts.py", "entrypoints/cli/serve.py")
VERSION_FILES = ("_version.py", "version.py")  # setuptools_scm's from 0.6.3; version.py's literal before


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
    """get_kwargs's reading of a field's type: "optional" (exactly bool | str | None: nargs="?", engine/arg_utils.py
    0.32.0:373-377), "switch" where bool is one of the union's types (BooleanOptionalAction: 0.8.5:150-152,
    0.9.2:221-223, 0.32.0:378-380), else "value". Only the union's own types count (dict[str, bool] is a value), and
    Optional / Union / Annotated / SkipValidation are looked through, as get_kwargs's get_args is."""
    types = set(_union_types(ast.parse(annotation, mode="eval").body))
    if types == {"bool", "str", "None"}:
        return "optional"
    return "switch" if "bool" in types else "value"


def _union_types(node: ast.AST):
    """The names of the types a field's annotation unites (`Optional[Union[bool, str]]`: bool, str, None)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        yield from _union_types(node.left)
        yield from _union_types(node.right)
    elif isinstance(node, ast.Subscript):
        base = ast.unparse(node.value).rpartition(".")[2]
        inner = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if base in ("Optional", "Union"):
            for part in inner:
                yield from _union_types(part)
            if base == "Optional":
                yield "None"
        elif base in ("Annotated", "SkipValidation"):
            yield from _union_types(inner[0])
        else:
            yield base
    elif isinstance(node, ast.Constant) and node.value is None:
        yield "None"
    else:
        yield ast.unparse(node).rpartition(".")[2]


def entry(kind: str, names: list) -> dict:
    long = next(n for n in names if n.startswith("--"))
    return {"names": names, "value": {"value": True, "switch": False, "store": False, "optional": "optional"}[kind],
            "negative": "--no-" + long[2:] if kind == "switch" else None}


def call_flags(tree: ast.AST, known: dict, receiver: str = None) -> dict:
    """{long flag: entry} of every add_argument call in `tree` with literal flag names (`receiver`: only those called
    on the parser of that name)."""
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
        if receiver and not (isinstance(node.func.value, ast.Name) and node.func.value.id == receiver):
            continue  # scripts.py's chat and complete subcommands
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
    for name in SERVE_FILES:
        if (vllm / name).exists():
            flags.update(call_flags(ast.parse((vllm / name).read_text()), known, receiver="serve_parser"))
    return {"version": release(vllm), "frontend": str(path.relative_to(root)), "flags": dict(sorted(flags.items()))}


def release(vllm: Path) -> str:
    """The release's `__version__ = "X"` literal."""
    for name in VERSION_FILES:
        if (vllm / name).exists():
            for node in ast.walk(ast.parse((vllm / name).read_text())):
                if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
                    return ast.literal_eval(node.value)
    raise SystemExit(f"no __version__ under {vllm}")


def main(roots: list) -> None:
    releases = [serve_flags(Path(root)) for root in roots]
    json.dump({"made_by": "benchmarks/vllm_reference/serve_flags.py", "releases": releases}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
