"""The bundled specs (model_specs/*.yaml, one per Hub id, each value's source cited): finding one by id or alias,
loading it, and the "did you mean" that points a near-miss id at one. A process reads and parses each spec file once
while it is unchanged (the caches key on its mtime, size and inode)."""

from __future__ import annotations

import copy
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Optional

from ..errors import KvplanError
from .parse import parse_config
from .spec import ModelSpec, Weights

PACKAGE = Path(__file__).resolve().parent.parent
# Wheels carry the specs inside the package; a source checkout keeps them at the repository root.
SPEC_DIRS = (PACKAGE / "_model_specs", PACKAGE.parent / "model_specs")


def _load_yaml(path: Path):
    import yaml  # only bundled specs (our own files) need it

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.load(handle, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise KvplanError(f"{path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}.") from None


def spec_dir() -> Path:
    for folder in SPEC_DIRS:
        if folder.is_dir():
            return folder
    return SPEC_DIRS[-1]


def _stamp(path: Path) -> tuple:
    """(mtime in ns, size, inode) of a file or folder, None where there is none: the caches below key on it, so that
    a spec written since (or a folder whose files came or went) is read again; a process reads each unchanged file
    once."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


@lru_cache(maxsize=8)
def _spec_files(folder: Path, stamp) -> tuple:
    return tuple(sorted(folder.glob("*.yaml")))


def bundled_files() -> list:
    folder = spec_dir()
    return list(_spec_files(folder, _stamp(folder)))


@lru_cache(maxsize=None)  # bounded by the bundled files (and their rewrites)
def _lowered_text(path: Path, stamp) -> str:
    return path.read_text(encoding="utf-8").lower()


def _bundled_weights(info: object, estimate: Weights, name: str, mtp: tuple = (0, 0)) -> Weights:
    """The spec's exact figures where it has them; a missing byte count is the config's quantisation-aware
    estimate, with the multi-token-prediction blocks the cited count holds, scaled to the exact parameter count."""
    if not isinstance(info, dict) or not (info.get("bytes") or info.get("parameters")):
        return estimate
    parameters = int(info.get("parameters") or estimate.parameters)
    whole = estimate.parameters + mtp[0], estimate.bytes + mtp[1]
    stored = info.get("bytes") or whole[1] * parameters // max(1, whole[0])
    how = "bundled spec" if info.get("bytes") else "bundled parameter count, size estimated from config"
    return Weights(parameters, int(stored), str(info.get("dtype") or estimate.dtype), f"{how} ({name})")


def load_bundled(path: Path, transformers: Optional[str] = None) -> tuple[dict, ModelSpec]:
    """The spec file's entry (a copy the caller may change) and its ModelSpec (frozen, shared), its config's omitted
    fields filled as `transformers` fills them (parse_config)."""
    entry, spec = _parsed_bundled(path, _stamp(path), transformers)
    return copy.deepcopy(entry), spec


@lru_cache(maxsize=None)  # bounded by the bundled files (and their rewrites)
def _entry(path: Path, stamp):
    """The spec file parsed, shared: read it, never change it (load_bundled hands out copies)."""
    return _load_yaml(path)


@lru_cache(maxsize=None)
def _parsed_bundled(path: Path, stamp, transformers: Optional[str]) -> tuple[dict, ModelSpec]:
    entry = _entry(path, stamp)
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise KvplanError(f"bundled spec {path.name} has no 'config' mapping.")
    name = str(entry.get("id", path.stem))
    estimated = parse_config(entry["config"], name, transformers=transformers)
    weights = _bundled_weights(entry.get("weights"), estimated.weights, path.name, estimated.mtp)
    return entry, replace(estimated, weights=weights)


def find_bundled(model_id: str) -> Optional[Path]:
    wanted = model_id.lower()
    files = bundled_files()
    direct = {p.stem.lower(): p for p in files}
    hit = direct.get(wanted.replace("/", "--"))
    if hit:
        return hit
    for path in files:  # aliases (instruct/chat variants) only when the file name misses
        if wanted not in _lowered_text(path, _stamp(path)):
            continue  # a plain text scan skips parsing YAML files that cannot hold the id
        entry = _entry(path, _stamp(path))
        aliases = entry.get("aliases") or [] if isinstance(entry, dict) else []
        if wanted in {str(a).lower() for a in aliases}:
            return path
    return None


@lru_cache(maxsize=1)
def bundled_names() -> tuple:
    """Every bundled id and alias, as written in the specs."""
    names = []
    for path in bundled_files():
        entry = _entry(path, _stamp(path))
        if isinstance(entry, dict):
            names += [str(entry.get("id", path.stem))] + [str(a) for a in entry.get("aliases") or []]
    return tuple(names)


def did_you_mean(model_id: str) -> str:
    """' Did you mean X (bundled)?' for an id a typo away from a bundled id or alias (case, a transposition,
    a wrong or missing owner), else ''. Never the id itself: one that reaches the Hub although bundled was sent
    there on purpose (a revision), and pointing it back at itself says nothing."""
    import difflib

    def ratio(a: str, b: str) -> float:
        return difflib.SequenceMatcher(None, a, b).ratio()

    wanted = model_id.lower()
    if len(wanted) > 200:  # no bundled id is that long, and comparing costs its length squared
        return ""
    scored = []
    for name in bundled_names():
        low = name.lower()
        if low == wanted:
            continue
        score = max(ratio(wanted, low), ratio(wanted.rsplit("/", 1)[-1], low.rsplit("/", 1)[-1]) - 0.01)
        scored.append((score, name))
    best = max(scored, default=(0.0, ""))[0]
    if best < 0.85:
        return ""
    close = list(dict.fromkeys(name for score, name in sorted(scored, reverse=True) if score >= best - 0.01))
    return " Did you mean " + " or ".join(close[:3]) + " (bundled)?"
