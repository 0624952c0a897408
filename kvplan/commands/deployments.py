"""What `kvplan check` checks: deployments, from a YAML file (one entry per deployment under `deployments:`,
with the line of every key for annotations) or from a MODEL and its options. Every field goes through the
same validators as the rest of kvplan; a bad one is reported with its file, line and deployment."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import FieldError, KvplanError, quote
from ..model.precision import check_kv_dtype
from ..plan.catalog import find_gpu
from ..units import parse_size, parse_tokens, require_fraction, require_positive

DEFAULT_CONTEXT = None  # vLLM's default: the model's max length (plan/max_len.py)
DEFAULT_GPU_UTIL = None  # the engine's own default (vLLM 0.32: 0.92)
REQUIRED_KEYS = ("name", "model", "tp")
OPTIONAL_KEYS = ("pp", "gpu", "gpu_util", "kv_budget", "context", "kv_dtype", "min_concurrency", "revision")
VALID_KEYS = REQUIRED_KEYS + OPTIONAL_KEYS
TOP_KEYS = ("deployments",)


@dataclass(frozen=True)
class Deployment:
    """One thing to check: a model at one TP (and optional PP) degree, with the capacity target it must meet."""

    name: str
    model: str
    tp: int
    pp: Optional[int] = None
    gpu: Optional[str] = None
    gpu_util: Optional[float] = DEFAULT_GPU_UTIL
    kv_budget: Optional[int] = None  # bytes per GPU; replaces the GPU budget
    context: Optional[int] = DEFAULT_CONTEXT
    kv_dtype: str = "auto"
    min_concurrency: Optional[int] = None
    revision: Optional[str] = None
    file: Optional[str] = None  # the deployments file, as given on the command line
    line: Optional[int] = None  # 1-based line of the entry's first key
    key_lines: dict = field(default_factory=dict)  # key -> 1-based line

    def line_of(self, key: Optional[str]) -> Optional[int]:
        return self.key_lines.get(key, self.line) if key else self.line


def one_line(message: str) -> str:
    return " ".join(str(message).split())


def _bad(message: str) -> KvplanError:
    return KvplanError(one_line(message))


# ---- field values (shared by the options and the file) -----------------------------------------------------

def _text(field_name: str, value) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
        raise FieldError(field_name, f"must be a non-empty string (branch, tag or commit), got {quote(value)}.")
    return str(value)


def _gpu(value) -> str:
    return find_gpu(str(value)).name


# field -> validator of its value; each raises FieldError naming the field
VALIDATORS = {
    "tp": lambda v: require_positive("tp", v),
    "pp": lambda v: require_positive("pp", v),
    "gpu": _gpu,
    "gpu_util": lambda v: require_fraction("gpu_util", v),
    "kv_budget": lambda v: parse_size(v, "kv_budget"),
    "context": lambda v: parse_tokens(v, "context"),
    "kv_dtype": check_kv_dtype,
    "min_concurrency": lambda v: require_positive("min_concurrency", v),
    "revision": lambda v: _text("revision", v),
}
DEFAULTS = {"gpu_util": DEFAULT_GPU_UTIL, "context": DEFAULT_CONTEXT, "kv_dtype": "auto"}


def deployment_fields(values: dict) -> dict:
    """Validated values of the optional fields given (None: not given, the default applies)."""
    return {key: DEFAULTS.get(key) if values.get(key) is None else VALIDATORS[key](values[key])
            for key in OPTIONAL_KEYS}


def model_deployments(model: str, tps: list, **options) -> list:
    """`kvplan check MODEL` at each TP degree: one deployment per degree, named after it."""
    if not tps:
        raise FieldError("tp", "is required with MODEL (a TP degree such as 8, or several: 2,4,8).")
    for tp in tps:
        require_positive("tp", tp)
    common = deployment_fields(options)
    pp = common["pp"]
    return [Deployment(name=f"tp{tp}" + (f"-pp{pp}" if pp else ""), model=model, tp=tp, **common)
            for tp in dict.fromkeys(tps)]


# ---- the deployments file ----------------------------------------------------------------------------------

def _line(node) -> int:
    return node.start_mark.line + 1


def _read_yaml(path: str):
    """(data, node) of a YAML file, or one-sentence KvplanError naming the file."""
    import yaml  # only deployment files need it

    target = Path(path)
    if not target.exists():
        raise FieldError("file", f"{path} does not exist; give a YAML file with a list of entries under "
                                 f"'deployments:'.")
    if target.is_dir():
        raise FieldError("file", f"{path} is a folder; give a YAML file with a list of entries under "
                                 f"'deployments:'.")
    try:
        text = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
        raise FieldError("file", f"{path} cannot be read ({reason}); give a readable UTF-8 YAML file.") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        node = yaml.compose(text, Loader=loader)
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "it does not parse"
        raise FieldError("file", f"{path} is not valid YAML{where}: {problem}.") from None
    return data, node


def _mapping_keys(node) -> list:
    """(key, line) of a mapping node's own keys, merge keys left out."""
    return [(k.value, _line(k)) for k, _ in node.value if k.value != "<<"]


def _unknown_key(where: str, key, valid: tuple) -> KvplanError:
    import difflib

    close = difflib.get_close_matches(str(key), valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return _bad(f"{where} has unknown key {quote(key)}{hint}; valid keys are {', '.join(valid)}.")


def load_deployments(path: str) -> list:
    """Every entry under `deployments:`, validated, with the line of each key for annotations."""
    data, root = _read_yaml(path)
    if data is None:
        raise FieldError("file", f"{path} is empty; it needs a list of entries under 'deployments:'.")
    if not isinstance(data, dict):
        raise FieldError("file", f"{path} must be a mapping with a 'deployments:' list at the top, got a "
                                 f"{type(data).__name__}.")
    top_lines = dict(_mapping_keys(root))
    for key in data:
        if key not in TOP_KEYS:
            raise _unknown_key(f"{path}:{top_lines.get(key, 1)}: the file", key, TOP_KEYS)
    if "deployments" not in data:
        raise FieldError("file", f"{path} has no 'deployments:' key; list the deployments to check under it.")
    entries = data["deployments"]
    where = f"{path}:{top_lines.get('deployments', 1)}: 'deployments'"
    if not isinstance(entries, list):
        kind = "nothing" if entries is None else f"a {type(entries).__name__}"
        raise _bad(f"{where} must be a list of entries (each '- name: ...' with model and tp), got {kind}.")
    if not entries:
        raise _bad(f"{where} is an empty list; add at least one entry with name, model and tp.")
    seq = next(v for k, v in root.value if k.value == "deployments")
    deployments, seen = [], {}
    for index, (entry, node) in enumerate(zip(entries, seq.value), start=1):
        dep = _deployment(path, index, entry, node)
        if dep.name in seen:
            raise _bad(f"{path}:{dep.line}: deployment name {dep.name!r} is already used at line "
                       f"{seen[dep.name]}; give each entry a unique name.")
        seen[dep.name] = dep.line
        deployments.append(dep)
    return deployments


def _deployment(path: str, index: int, entry, node) -> Deployment:
    line = _line(node)
    if not isinstance(entry, dict):
        raise _bad(f"{path}:{line}: deployments entry {index} must be a mapping with name, model and tp, got "
                   f"{'nothing' if entry is None else f'a {type(entry).__name__}'}.")
    own = _mapping_keys(node)
    line = own[0][1] if own else line
    lines: dict = {}
    for key, key_line in own:
        if key in lines:
            raise _bad(f"{path}:{key_line}: deployments entry {index} repeats key {key!r} (first at line "
                       f"{lines[key]}); give each key once.")
        lines[key] = key_line
    label = f"{path}:{line}: deployments entry {index}"
    for key in entry:
        if key not in VALID_KEYS:
            raise _unknown_key(f"{path}:{lines.get(key, line)}: deployments entry {index}", key, VALID_KEYS)
    for key in REQUIRED_KEYS:
        if key not in entry:
            what = {"name": "a unique label", "model": "a Hugging Face id, config.json or model folder",
                    "tp": "a positive integer"}[key]
            raise _bad(f"{label} is missing '{key}' ({what}); every entry needs name, model and tp.")
    name = entry["name"]
    if not isinstance(name, (str, int)) or isinstance(name, bool) or not str(name).strip():
        raise _bad(f"{path}:{lines.get('name', line)}: deployments entry {index} field 'name' must be a "
                   f"non-empty string, got {quote(name)}.")
    name = str(name)

    def label_of(key: str) -> str:
        return f"{path}:{lines.get(key, line)}: deployment {name!r} field '{key}'"

    model = entry["model"]
    if not isinstance(model, str) or not model.strip():
        raise _bad(f"{label_of('model')} must be a Hugging Face id, a config.json or a model folder, got "
                   f"{quote(model)}.")
    local = Path(path).parent / model  # relative paths are read from the deployments file's folder first
    if not Path(model).is_absolute() and local.exists():
        model = str(local)
    try:
        tp = VALIDATORS["tp"](entry["tp"])
        fields = deployment_fields({key: entry.get(key) for key in OPTIONAL_KEYS})
    except FieldError as exc:
        raise _bad(exc.spelled(label_of(exc.field))) from None
    return Deployment(name=name, model=model, tp=tp, **fields, file=path, line=line, key_lines=lines)
