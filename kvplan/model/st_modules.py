"""A Sentence Transformers repo's modules.json: the list of modules ({"idx", "name", "path", "type"}) a
SentenceTransformer is built from, and its Pooling module's own config.json (`<path>/config.json`: which tokens it
pools). vLLM reads both beside config.json: where modules.json lists a Pooling module, it serves the model on its
pooling runner whatever its architecture, and takes the pooling type that config.json names over the class's
default (engines/vllm_pooling.py, vllm_pooling_budget.incremental_prefill). kvplan keeps which Pooling module types
modules.json lists (ModelSpec.st_pooling) and, beside each, what vLLM reads of that module's config.json
(ModelSpec.st_pooling_modes).

How vLLM reads modules.json (transformers_utils/config.py get_pooling_config, 0.11.0:711-762, 0.14.0:743-817,
0.30.0:890-971, 0.34.0:1057-1138): JSON null is no file (`if modules_dict is None: return None`); otherwise two
scans over the top level, `next(item for item in modules_dict if item["type"] ...)`: one up to the first Pooling
module, then one up to the first Normalize module (0.11.0:741-748, 0.34.0:1086-1100). So an empty array, object or
string iterates nothing (no Pooling module: the runner is the architecture's), and every item a scan reaches must be
an object with a "type" (else TypeError / KeyError at start-up). The type is compared with `==` up to 0.29 (one
Pooling and one Normalize name, 0.29.0:858, :867) and looked up with `in` a set from 0.30 (_ST_POOLING_MODULE_TYPES,
_ST_NORMALIZE_MODULE_TYPES, 0.30.0:56-64, 0.34.0:97-105), where an array or object "type" raises (unhashable);
any other type that names no module simply does not match. Only the Pooling item the scan returns needs a "path"
(`"{}/config.json".format(pooling["path"])`, 0.11.0:751, 0.34.0:1106). kvplan refuses, in one line naming the
file, what makes some release stop (SCANS: both ways of scanning), and nothing else.

The Pooling module's config.json (get_hf_file_to_dict, transformers_utils/repo_utils.py 0.34.0:497-522: None where
there is no such file): vLLM reads its keys set to JSON true (pooling_mode_lasttoken, pooling_mode_mean_tokens
...) and, from 0.30, the string "pooling_mode" (0.11.0:754, 0.14.0:806, 0.30.0:946-949, 0.34.0:1113-1116);
pooling_mode_fields keeps those, in the file's order, and engines/vllm_pooling.py reads them as each release does.
A file that is no object (and not one of the falsy values 0.14 and later read as none: `... or {}`, 0.14.0:800)
stops every release (`.items()`)."""

from __future__ import annotations

from typing import Callable, Optional

from ..errors import KvplanError, json_kind

MODULES_FILE = "modules.json"
# The Pooling module's type names vLLM looks for in any release: sentence-transformers' "models.Pooling" (0.11.0:742
# to 0.29.0:858, compared with ==), and from 0.30.0 the set _ST_POOLING_MODULE_TYPES, which adds the newer module
# path (0.30.0:56-59, 0.32.0:55-58, 0.34.0:97-100); engines/vllm_pooling.py ST_POOLING_TYPES says which release
# reads which
POOLING_TYPES = ("sentence_transformers.models.Pooling",
                 "sentence_transformers.sentence_transformer.modules.pooling.Pooling")
# The Normalize module's: "models.Normalize" alone up to 0.29 (0.29.0:867), the set _ST_NORMALIZE_MODULE_TYPES from
# 0.30 (0.30.0:60-64, 0.34.0:101-105)
NORMALIZE_TYPES = ("sentence_transformers.models.Normalize", "sentence_transformers.base.modules.normalize.Normalize",
                   "sentence_transformers.sentence_transformer.modules.normalize.Normalize")
# The two ways releases scan modules.json: (the releases, Pooling names, Normalize names, looked up in a set)
SCANS = (("0.11-0.29", POOLING_TYPES[:1], NORMALIZE_TYPES[:1], False),
         ("0.30 and later", POOLING_TYPES, NORMALIZE_TYPES, True))
_VALID = ('a JSON list of Sentence Transformers modules, each an object with a "type" (and the Pooling module a '
          '"path"), as vLLM reads it')


def pooling_modules(contents, where: str) -> tuple:
    """((type, path), ...): each Pooling module type (POOLING_TYPES) that `contents` (modules.json's JSON, read from
    `where`) lists, once, in the file's order, with the "path" of its first item where some release reads that item
    (None where none does: a newer-type item after a classic one); () for none. A file on which some release stops
    is a KvplanError naming it and what is valid."""
    if contents is None or (isinstance(contents, (list, dict, str)) and not contents):
        return ()  # vLLM's `if modules_dict is None`, or a top level that iterates nothing
    if not isinstance(contents, list):  # a number does not iterate; an object's keys and a string's characters
        raise KvplanError(f"{where} must be {_VALID}; got {json_kind(contents)}.")  # are items with no "type"
    stops = {releases: _scan_stop(contents, pooling, normalize, hashed) for releases, pooling, normalize, hashed
             in SCANS}
    stop = next((why for why in stops.values() if why), "")
    if stop:
        who = "vLLM" if len(set(stops.values())) == 1 else f"vLLM {next(r for r, why in stops.items() if why)}"
        raise KvplanError(f"{where} must be {_VALID}; {stop.format(who=who)}.")
    read = {_first_index(contents, pooling, hashed) for _, pooling, _, hashed in SCANS} - {None}
    found = {}
    for index, item in enumerate(contents):
        kind = item.get("type") if isinstance(item, dict) else None
        if isinstance(kind, str) and kind in POOLING_TYPES and kind not in found:
            found[kind] = item["path"] if index in read else None
    return tuple(found.items())


def _first_index(items: list, names: tuple, hashed: bool) -> Optional[int]:
    """The index of the first item a scan for `names` returns (None: none)."""
    return next((i for i, item in enumerate(items) if _matches(item, names, hashed)), None)


def _matches(item, names: tuple, hashed: bool) -> bool:
    """Whether vLLM's `item["type"] in names` (or `==`) holds, for an item it can read."""
    kind = item.get("type") if isinstance(item, dict) else None
    if hashed and isinstance(kind, (list, dict)):
        return False
    return kind in names


def _scan_stop(items: list, pooling: tuple, normalize: tuple, hashed: bool) -> str:
    """Why one way of scanning (SCANS: up to the first Pooling item, then up to the first Normalize item) stops on
    `items`, with "{who}" for the releases ('' where it reads them)."""
    first_pooling = _first_index(items, pooling, hashed)
    first_normalize = _first_index(items, normalize, hashed)
    last = len(items) - 1
    reached = max(last if first_pooling is None else first_pooling, last if first_normalize is None else
                  first_normalize)
    for index, item in enumerate(items[:reached + 1]):
        what = _unreadable(item, hashed)
        if what:
            return f"its item {index} {what} (start-up stops there on {{who}})"
    if first_pooling is not None and "path" not in items[first_pooling]:
        return (f"its Pooling module (item {first_pooling}) has no \"path\", from which {{who}} would read the "
                f"module's config.json")
    return ""


def _unreadable(item, hashed: bool) -> str:
    """Why vLLM cannot read `item`'s "type" ('' where it can)."""
    if not isinstance(item, dict):
        return f"is {json_kind(item)}"
    if "type" not in item:
        return "has no \"type\""
    if hashed and isinstance(item["type"], (list, dict)):
        return f"has a \"type\" that is {json_kind(item['type'])}, which a set lookup refuses"
    return ""


def pooling_config_name(path) -> str:
    """The Pooling module's config.json as vLLM names it within the repo (`"{}/config.json".format(...)`)."""
    return f"{path}/config.json"


def pooling_mode_fields(contents, where: str) -> Optional[tuple]:
    """What vLLM reads of a Pooling module's config.json `contents` (read from `where`): ((key, value), ...) of the
    keys set to true and a string "pooling_mode", in the file's order; None where the file reads as none (no file,
    JSON null or another falsy value). A file no release can read is a KvplanError naming it."""
    if not contents:
        return None if not isinstance(contents, dict) else ()
    if not isinstance(contents, dict):
        raise KvplanError(f"{where} must be a JSON object of the Sentence Transformers Pooling module's settings, as "
                          f"vLLM reads it; got {json_kind(contents)}.")
    return tuple((key, value) for key, value in contents.items()
                 if value is True or (key == "pooling_mode" and isinstance(value, str)))


def read_pooling_modes(modules: tuple, read: Callable) -> tuple:
    """(types, modes): the Pooling module types of `modules` (pooling_modules) and, beside each, its config.json's
    pooling_mode_fields, read with `read(name)` (the file's parsed JSON and the name errors give it, or (None, '')
    where there is none); () for a module no release reads."""
    modes = []
    for _, path in modules:
        if path is None:
            modes.append(())
            continue
        contents, where = read(pooling_config_name(path))
        modes.append(pooling_mode_fields(contents, where))
    return tuple(kind for kind, _ in modules), tuple(modes)
