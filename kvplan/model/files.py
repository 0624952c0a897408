"""Files a MODEL folder holds, read with bounds: only regular files are opened (a FIFO, socket or device named
config.json or *.safetensors is refused, never waited on); JSON is read up to MAX_JSON_BYTES with at most
MAX_JSON_DEPTH levels of nesting and MAX_INT_DIGITS digits per integer literal; a safetensors header is read only
when its declared size is under MAX_HEADER_BYTES and within the file, and its tensors are checked (known dtype,
a shape of at most 8 non-negative integer dims) before they are counted."""

from __future__ import annotations

import json
import os
import stat
import struct
from pathlib import Path
from typing import Callable, Optional

from ..errors import KvplanError, quote
from .config import OversizedInteger
from .spec import Weights

SAFETENSORS_BYTES = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2,
                     "U16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "I8": 1, "U8": 1, "BOOL": 1}
MAX_JSON_BYTES = 16 * 2**20  # a config.json is a few KB, an index a few hundred
MAX_JSON_DEPTH = 32  # real configs nest 4 deep (quantization_config groups)
MAX_INT_DIGITS = 64  # no count a config holds has more digits
MAX_HEADER_BYTES = 16 * 2**20  # real safetensors headers are under 1 MiB (the format's own cap is 100 MB)
MAX_SHARDS = 4096  # DeepSeek-V3 has 163
MAX_ELEMENTS = 2**50  # per tensor: far above any checkpoint


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


def _int_literal(text: str):
    digits = len(text.lstrip("-"))
    return OversizedInteger(digits) if digits > MAX_INT_DIGITS else int(text)


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
    """JSON with limits: integers of more than MAX_INT_DIGITS digits become OversizedInteger (no field accepts
    one), nesting deeper than MAX_JSON_DEPTH is refused. NaN and Infinity parse as floats, which no integer
    field accepts either."""
    try:
        value = json.loads(data.decode("utf-8"), parse_int=_int_literal)
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


def local_weights(folder: Path) -> tuple[Optional[Weights], Optional[str]]:
    """(exact size from the checkpoint's safetensors headers or the sharded index's total_size, None), or
    (None, why not) when the checkpoint is there but unreadable, or (None, None) when there is none."""
    try:
        shards = _regular_files(folder, "*.safetensors")
        if shards:
            counts: dict = {}
            for shard in shards:
                _safetensors_counts(shard, counts)
            return weights_from_counts(counts, "safetensors headers"), None
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            try:
                data = load_json(index)
            except KvplanError as exc:
                raise _Unreadable(str(exc).rstrip(".")) from None
            meta = data.get("metadata") if isinstance(data, dict) else None
            total = meta.get("total_size") if isinstance(meta, dict) else None
            if not isinstance(total, int) or isinstance(total, bool) or not 0 < total <= MAX_ELEMENTS * 8:
                raise _Unreadable(f"model.safetensors.index.json has no valid metadata.total_size "
                                  f"({quote(total)})")
            return Weights(0, total, "", "model.safetensors.index.json total_size"), None
    except _Unreadable as exc:
        return None, str(exc)
    except OSError as exc:
        return None, f"the folder cannot be listed ({exc.strerror})"
    return None, None


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
