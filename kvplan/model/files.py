"""Files a MODEL folder holds, read with bounds: only regular files are opened (a FIFO, socket or device named
config.json or *.safetensors is refused, never waited on); JSON is read up to MAX_JSON_BYTES with at most
MAX_JSON_DEPTH levels of nesting and units.MAX_INT_DIGITS digits per integer literal; a safetensors header is read only
when its declared size is under MAX_HEADER_BYTES and within the file, and its tensors are checked (known dtype,
a shape of at most 8 non-negative integer dims) before they are counted."""

from __future__ import annotations

import json
import os
import re
import stat
import struct
from pathlib import Path
from typing import Callable, Optional

from ..errors import KvplanError, quote
from ..units import integer_literal
from .spec import Weights

SAFETENSORS_BYTES = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2,
                     "U16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "I8": 1, "U8": 1, "BOOL": 1}
MAX_JSON_BYTES = 16 * 2**20  # a config.json is a few KB, an index a few hundred
MAX_JSON_DEPTH = 32  # real configs nest 4 deep (quantization_config groups)
MAX_HEADER_BYTES = 16 * 2**20  # real safetensors headers are under 1 MiB (the format's own cap is 100 MB)
MAX_SHARDS = 4096  # DeepSeek-V3 has 163
MAX_ELEMENTS = 2**50  # per tensor: far above any checkpoint
UTF8_BOM = b"\xef\xbb\xbf"


def open_regular(path: Path, not_regular: Callable[[str], Exception], name: Optional[str] = None) -> tuple:
    """(fd, fstat) of `path`, opened non-blocking and checked before any read, so a FIFO, socket or device can
    never make kvplan wait: `not_regular(what it is instead)` is raised for those and for a directory. `name`: the
    file as an error says it (read_regular)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise KvplanError(f"cannot read {name or quote(str(path))}: {exc.strerror or exc}.") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise not_regular("a directory" if stat.S_ISDIR(info.st_mode) else "a pipe, socket or device")
    return fd, info


def read_regular(path: Path, limit: int, name: Optional[str] = None) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. A FIFO, socket or device is refused before any
    read (opened non-blocking, checked with fstat), so nothing can make kvplan wait on it. `name`: the file as its
    errors say it where the path means nothing to the user (a Hub cache's snapshot: hub._hub_config)."""
    shown = name or quote(str(path))
    fd, info = open_regular(path, lambda what: KvplanError(f"{shown} is not a regular file but {what}; give a file."),
                            shown)
    try:
        if info.st_size > limit:
            raise KvplanError(f"{shown} is {info.st_size:,} bytes, more than the {limit:,} a file of its kind can "
                              f"sensibly hold.")
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 2**20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise KvplanError(f"{shown} grew past {limit:,} bytes while being read.")
        return data
    except OSError as exc:
        raise KvplanError(f"cannot read {shown}: {exc.strerror or exc}.") from None
    finally:
        os.close(fd)


def _depth(value) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if level > MAX_JSON_DEPTH:
                break
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_json(data: bytes, where: str):
    """JSON with limits: integers of more than units.MAX_INT_DIGITS digits become OversizedInteger (no field accepts
    one), nesting deeper than MAX_JSON_DEPTH is refused. NaN and Infinity parse as floats, which no integer
    field accepts either."""
    if data.startswith(UTF8_BOM):  # transformers (PretrainedConfig._dict_from_json_file) and vLLM read utf-8 text
        # into json.loads, which refuses the mark: said in words, not as Python's "decode using utf-8-sig"
        raise KvplanError(f"{where} starts with a UTF-8 byte-order mark, which the JSON readers of transformers and "
                          f"vLLM refuse; save it as UTF-8 without the mark.")
    try:
        value = json.loads(data.decode("utf-8"), parse_int=integer_literal)
    except UnicodeDecodeError:
        raise KvplanError(f"{where} is not valid JSON: it is not UTF-8 text.") from None
    except json.JSONDecodeError as exc:
        raise KvplanError(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.") \
            from None
    except RecursionError:
        raise KvplanError(f"{where} nests deeper than {MAX_JSON_DEPTH} levels; a config.json has a few.") from None
    except ValueError as exc:  # e.g. a float literal Python will not convert
        raise KvplanError(f"{where} is not valid JSON: {quote(str(exc))}.") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise KvplanError(f"{where} nests deeper than {MAX_JSON_DEPTH} levels; a config.json has a few.")
    return value


def load_json(path: Path) -> object:
    return parse_json(read_regular(path, MAX_JSON_BYTES), quote(str(path)))


class _Unreadable(Exception):
    """A checkpoint whose safetensors headers do not describe tensors; the size is then estimated."""


def _safetensors_counts(path: Path, counts: dict) -> None:
    """Add the elements per dtype that one shard's header declares to `counts`."""
    try:
        fd, info = open_regular(path, lambda what: _Unreadable(f"{path.name} is not a regular file but {what}"))
    except KvplanError as exc:
        raise _Unreadable(str(exc).rstrip(".")) from None
    try:
        prefix = os.read(fd, 8)
        if len(prefix) < 8:
            raise _Unreadable(f"{path.name} is shorter than a safetensors header")
        (size,) = struct.unpack("<Q", prefix)
        if size > min(MAX_HEADER_BYTES, info.st_size - 8):
            raise _Unreadable(f"{path.name} declares a {size:,}-byte header")
        raw = b""
        while len(raw) < size:
            chunk = os.read(fd, size - len(raw))
            if not chunk:
                raise _Unreadable(f"{path.name} ends inside its header")
            raw += chunk
    except OSError as exc:
        raise _Unreadable(f"{path.name} cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
    try:
        header = parse_json(raw, path.name)
    except KvplanError as exc:
        raise _Unreadable(str(exc).rstrip(".")) from None
    if not isinstance(header, dict):
        raise _Unreadable(f"{path.name}'s header is not a JSON object")
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        shape = tensor.get("shape") if isinstance(tensor, dict) else None
        dtype = tensor.get("dtype") if isinstance(tensor, dict) else None
        dims_ok = isinstance(shape, list) and len(shape) <= 8 and all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_ELEMENTS for d in shape)
        if not isinstance(dtype, str) or dtype not in SAFETENSORS_BYTES or not dims_ok:
            raise _Unreadable(f"{path.name} has a malformed entry for tensor {quote(name)}")
        elements = 1
        for dim in shape:
            elements *= dim
        if elements > MAX_ELEMENTS:
            raise _Unreadable(f"{path.name} declares {quote(name)} with {elements:,} elements")
        counts[dtype] = counts.get(dtype, 0) + elements


def _regular_files(folder: Path, pattern: str) -> list:
    files = []
    for index, path in enumerate(folder.glob(pattern)):
        if index >= MAX_SHARDS:
            raise _Unreadable(f"more than {MAX_SHARDS:,} files match {pattern}")
        files.append(path)
    return sorted(files)


INDEX = "model.safetensors.index.json"
SHARD_NAME = re.compile(r"(.*)-([0-9]+)-of-([0-9]+)\.safetensors", re.ASCII)  # transformers' model-00001-of-00004
# vLLM refuses to load a folder with shards missing: those the index lists (model_loader/weight_utils.py 0.34.0:636-643
# filter_duplicate_safetensors_files, "Weight files referenced in index but missing", from 0.26.0), or, without an
# index, the tensors they hold (default_loader.py 0.34.0:608-613, 0.11.0:274-277 "Following weights were not
# initialized from checkpoint")
INCOMPLETE = "which vLLM refuses to load; finish the download before serving it"


def local_weights(folder: Path) -> tuple[Optional[Weights], Optional[str]]:
    """(size, note) of the folder's checkpoint, as vLLM would load it:
    - every shard there: the exact size from their safetensors headers (only the shards the index lists where
      there is one, as vLLM filters them: Mistral's folders also hold consolidated.safetensors), no note;
    - no shard but an index: its metadata.total_size (a download of the JSON files only), no note;
    - shards missing (the index lists one that is absent, or model-00001-of-00002 has no 00002): incomplete, which
      vLLM refuses to load (INCOMPLETE), said in the note; the size is the index's total_size, or the config's
      estimate (None) without an index;
    - headers that describe no tensors, or none at all: (None, why), the config's estimate;
    - no checkpoint: (None, None)."""
    try:
        shards = _regular_files(folder, "*.safetensors")
        index = _index(folder) if (folder / INDEX).is_file() else None
        if not shards:
            return (None, None) if index is None else (_index_size(index, INDEX), None)
        listed = _listed_shards(index) if index is not None else None
        counts: dict = {}
        for shard in shards:
            if listed is None or shard.name in listed:
                _safetensors_counts(shard, counts)
        missing = _missing_shards(listed, {shard.name for shard in shards})
        if missing:
            return _incomplete(index, missing)
        if listed is not None and not listed & {shard.name for shard in shards}:
            raise _Unreadable(f"{INDEX} lists none of the folder's .safetensors files")
        if not counts:
            raise _Unreadable(f"{', '.join(shard.name for shard in shards[:3])} hold{'s' * (len(shards) == 1)} no "
                              f"tensors, only metadata")
        return weights_from_counts(counts, "safetensors headers"), None
    except _Unreadable as exc:
        return None, f"checkpoint size estimated from the config: {exc}"
    except OSError as exc:
        return None, f"checkpoint size estimated from the config: the folder cannot be listed ({exc.strerror})"


def unloadable_notes(notes) -> tuple:
    """Of a spec's notes, those saying its folder's checkpoint is incomplete (local_weights), which vLLM refuses to
    load: `check` makes each a warning on the deployment's model."""
    return tuple(note for note in notes if note.endswith(INCOMPLETE))


def _index(folder: Path) -> object:
    try:
        return load_json(folder / INDEX)
    except KvplanError as exc:
        raise _Unreadable(str(exc).rstrip(".")) from None


def _index_size(index, name: str) -> Weights:
    meta = index.get("metadata") if isinstance(index, dict) else None
    total = meta.get("total_size") if isinstance(meta, dict) else None
    if not isinstance(total, int) or isinstance(total, bool) or not 0 < total <= MAX_ELEMENTS * 8:
        raise _Unreadable(f"{name} has no valid metadata.total_size ({quote(total)})")
    return Weights(0, total, "", f"{name} total_size")


def _listed_shards(index) -> set:
    """The file names the index's weight_map gives its tensors (vLLM loads those only)."""
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(name, str) for name in weight_map.values()):
        raise _Unreadable(f"{INDEX} has no weight_map of tensor names to shard files")
    return set(weight_map.values())


def _missing_shards(listed: Optional[set], present: set) -> list:
    """The shards the index lists, or the model-N-of-M names imply, that are not in the folder (sorted)."""
    if listed is not None:
        return sorted(listed - present)
    series: dict = {}
    for name in present:
        match = SHARD_NAME.fullmatch(name)
        if match and len(match.group(3)) <= 6:  # a real series has a few thousand shards at most (MAX_SHARDS)
            prefix, number, total = match.groups()
            series.setdefault((prefix, total), set()).add(int(number))
    missing = []
    for (prefix, total), numbers in series.items():
        width = len(total)
        missing += [f"{prefix}-{n:0{width}d}-of-{total}.safetensors" for n in range(1, min(int(total), MAX_SHARDS) + 1)
                    if n not in numbers]
    return sorted(missing)


def _incomplete(index, missing: list) -> tuple:
    """(size, note) of a folder with shards missing: the index's total_size where it has one, else the config's."""
    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3:,} more" if len(missing) > 3 else "")
    why = f"the folder's checkpoint is incomplete ({shown} missing), {INCOMPLETE}"
    try:
        size = _index_size(index, INDEX) if index is not None else None
    except _Unreadable:
        size = None
    if size is None:
        return None, f"checkpoint size estimated from the config: {why}"
    return size, f"checkpoint size from {INDEX}'s total_size: {why}"


def json_names(folder: Path) -> list:
    """Names of the *.json files in `folder`, at most MAX_SHARDS of them (a model folder holds a handful)."""
    names = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(".json"):
                    names.append(entry.name)
                if len(names) > MAX_SHARDS:
                    raise KvplanError(f"{quote(str(folder))} holds more than {MAX_SHARDS:,} JSON files.")
    except OSError as exc:
        raise KvplanError(f"cannot list {quote(str(folder))}: {exc.strerror or exc}.") from None
    return names


def weights_from_counts(counts: dict, source: str) -> Weights:
    stored = sum(n * SAFETENSORS_BYTES.get(dtype, 2) for dtype, n in counts.items())
    main = max(counts, key=counts.get) if counts else ""
    return Weights(sum(counts.values()), stored, main.lower(), source)
