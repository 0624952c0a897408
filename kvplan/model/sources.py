"""MODEL -> ModelSpec: a bundled spec, a local config.json or model folder, or the Hugging Face Hub. Only this
module touches files and the Hub; it hands raw configs to the one parser.

Which source a MODEL names (in this order):
1. A Hub id that is bundled (its id or an alias; no --revision) is the bundled spec, even when a folder of the
   same name exists in the working directory: a Hub id means the same model wherever kvplan runs. Such a
   folder is mentioned in the plan's notes; write it as a path (./owner/name) to read it instead.
2. An existing path (config.json or model folder).
3. The Hub, within a total deadline (--hub-timeout / KVPLAN_HUB_TIMEOUT, 10 s by default).

Every read is bounded: only regular files are opened (a FIFO or a device named config.json or *.safetensors
is refused, never waited on), JSON is read up to MAX_JSON_BYTES with at most MAX_JSON_DEPTH levels of nesting
and MAX_INT_DIGITS digits per integer, and a safetensors header is read only when its declared size is under
MAX_HEADER_BYTES and within the file."""

from __future__ import annotations

import json
import os
import re
import stat
import struct
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Optional

from ..errors import FieldError, KvplanError, quote
from .config import OversizedInteger
from .parse import parse_config
from .spec import ModelSpec, Weights

PACKAGE = Path(__file__).resolve().parent.parent
# Wheels carry the specs inside the package; a source checkout keeps them at the repository root.
SPEC_DIRS = (PACKAGE / "_model_specs", PACKAGE.parent / "model_specs")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?$", re.ASCII)
# A branch or tag (one path component), a 40-hex commit, or a pull-request ref (refs/pr/N) of the Hub.
REVISION = re.compile(r"^(?:[0-9a-f]{40}|refs/pr/[0-9]{1,9}|[A-Za-z0-9][A-Za-z0-9._-]{0,127})$", re.ASCII)
SAFETENSORS_BYTES = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2,
                     "U16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "I8": 1, "U8": 1, "BOOL": 1}

MAX_JSON_BYTES = 16 * 2**20  # a config.json is a few KB, an index a few hundred
MAX_JSON_DEPTH = 32  # real configs nest 4 deep (quantization_config groups)
MAX_INT_DIGITS = 64  # no count a config holds has more digits
MAX_HEADER_BYTES = 16 * 2**20  # real safetensors headers are under 1 MiB (the format's own cap is 100 MB)
MAX_SHARDS = 4096  # DeepSeek-V3 has 163
MAX_ELEMENTS = 2**50  # per tensor: far above any checkpoint
DEFAULT_HUB_TIMEOUT = 10.0  # seconds, for everything one MODEL asks of the Hub
MAX_HUB_TIMEOUT = 3600.0
RETRY_STATUS = (429, 500, 502, 503, 504)  # retried once, within the deadline
MAX_RETRY_WAIT = 3.0  # a Retry-After longer than this is not waited for: the error says what the Hub asked


# ---- bounded reading --------------------------------------------------------------------------------------

def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. A FIFO, socket or device is refused before any
    read (opened non-blocking, checked with fstat), so nothing can make kvplan wait on it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise KvplanError(f"cannot read {quote(str(path))}: {exc.strerror or exc}.") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KvplanError(f"{quote(str(path))} is not a regular file (a pipe, socket or device); give a file.")
        if info.st_size > limit:
            raise KvplanError(f"{quote(str(path))} is {info.st_size:,} bytes, more than the {limit:,} a file of "
                              f"its kind can sensibly hold.")
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 2**20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise KvplanError(f"{quote(str(path))} grew past {limit:,} bytes while being read.")
        return data
    except OSError as exc:
        raise KvplanError(f"cannot read {quote(str(path))}: {exc.strerror or exc}.") from None
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


# ---- local files -------------------------------------------------------------------------------------------

class _Unreadable(Exception):
    """A checkpoint whose safetensors headers do not describe tensors; the size is then estimated."""


def _safetensors_counts(path: Path, counts: dict) -> None:
    """Add the elements per dtype that one shard's header declares to `counts`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _Unreadable(f"{path.name} cannot be opened ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Unreadable(f"{path.name} is not a regular file")
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
        if not isinstance(dtype, str) or dtype not in SAFETENSORS_BYTES or not isinstance(shape, list) or len(shape) > 8 or not all(
                isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_ELEMENTS for d in shape):
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


def weights_from_counts(counts: dict, source: str) -> Weights:
    stored = sum(n * SAFETENSORS_BYTES.get(dtype, 2) for dtype, n in counts.items())
    main = max(counts, key=counts.get) if counts else ""
    return Weights(sum(counts.values()), stored, main.lower(), source)


def from_path(path: Path, raw_out: Optional[list] = None) -> ModelSpec:
    folder = path if path.is_dir() else path.parent
    config = path / "config.json" if path.is_dir() else path
    if path.is_dir() and not config.exists():
        raise KvplanError(f"MODEL folder {quote(str(path))} has no config.json.")
    raw = load_json(config)
    if raw_out is not None:
        raw_out.append(raw)
    weights, problem = local_weights(folder) if path.is_dir() or config.name == "config.json" else (None, None)
    spec = parse_config(raw, str(path))
    if problem:
        note = f"checkpoint size estimated from the config: {problem}"
        return replace(spec, notes=spec.notes + (note,))
    if weights is None:
        return spec
    if weights.parameters == 0:  # index.json gives bytes only: the count is the config's estimate
        weights = Weights(spec.weights.parameters, weights.bytes, spec.weights.dtype, weights.source)
    return replace(spec, weights=weights)


# ---- bundled specs -----------------------------------------------------------------------------------------

def spec_dir() -> Path:
    for folder in SPEC_DIRS:
        if folder.is_dir():
            return folder
    return SPEC_DIRS[-1]


def bundled_files() -> list:
    return sorted(spec_dir().glob("*.yaml"))


def _bundled_weights(info: object, estimate: Weights, name: str) -> Weights:
    """The spec's exact figures where it has them; a missing byte count is the config's quantisation-aware
    estimate scaled to the exact parameter count."""
    if not isinstance(info, dict) or not (info.get("bytes") or info.get("parameters")):
        return estimate
    parameters = int(info.get("parameters") or estimate.parameters)
    stored = info.get("bytes") or estimate.bytes * parameters // max(1, estimate.parameters)
    how = "bundled spec" if info.get("bytes") else "bundled parameter count, size estimated from config"
    return Weights(parameters, int(stored), str(info.get("dtype") or estimate.dtype), f"{how} ({name})")


def load_bundled(path: Path) -> tuple[dict, ModelSpec]:
    entry = _load_yaml(path)
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise KvplanError(f"bundled spec {path.name} has no 'config' mapping.")
    name = str(entry.get("id", path.stem))
    estimated = parse_config(entry["config"], name)
    weights = _bundled_weights(entry.get("weights"), estimated.weights, path.name)
    return entry, replace(estimated, weights=weights)


def find_bundled(model_id: str) -> Optional[Path]:
    wanted = model_id.lower()
    files = bundled_files()
    direct = {p.stem.lower(): p for p in files}
    hit = direct.get(wanted.replace("/", "--"))
    if hit:
        return hit
    for path in files:  # aliases (instruct/chat variants) only when the file name misses
        if wanted not in path.read_text(encoding="utf-8").lower():
            continue  # a plain text scan skips parsing YAML files that cannot hold the id
        entry = _load_yaml(path)
        aliases = entry.get("aliases") or [] if isinstance(entry, dict) else []
        if wanted in {str(a).lower() for a in aliases}:
            return path
    return None


@lru_cache(maxsize=1)
def bundled_names() -> tuple:
    """Every bundled id and alias, as written in the specs."""
    names = []
    for path in bundled_files():
        entry = _load_yaml(path)
        if isinstance(entry, dict):
            names += [str(entry.get("id", path.stem))] + [str(a) for a in entry.get("aliases") or []]
    return tuple(names)


def did_you_mean(model_id: str) -> str:
    """' Did you mean X (bundled)?' for an id a typo away from a bundled id or alias (case, a transposition,
    a wrong or missing owner), else ''."""
    import difflib

    def ratio(a: str, b: str) -> float:
        return difflib.SequenceMatcher(None, a, b).ratio()

    wanted = model_id.lower()
    if len(wanted) > 200:  # no bundled id is that long, and comparing costs its length squared
        return ""
    scored = []
    for name in bundled_names():
        low = name.lower()
        score = max(ratio(wanted, low), ratio(wanted.rsplit("/", 1)[-1], low.rsplit("/", 1)[-1]) - 0.01)
        scored.append((score, name))
    best = max(scored, default=(0.0, ""))[0]
    if best < 0.85:
        return ""
    close = list(dict.fromkeys(name for score, name in sorted(scored, reverse=True) if score >= best - 0.01))
    return " Did you mean " + " or ".join(close[:3]) + " (bundled)?"


# ---- the Hub -----------------------------------------------------------------------------------------------

def check_revision(revision) -> Optional[str]:
    """A Hub revision: a branch or tag, a 40-hex commit, or refs/pr/N. No other '/' and no '..': the Hub
    client names cache files after the revision."""
    if revision is None:
        return None
    if not isinstance(revision, str) or ".." in revision or not REVISION.match(revision):
        raise FieldError("revision", f"must be a branch or tag name (letters, digits, '.', '_', '-'), a 40-hex "
                                     f"commit or refs/pr/N, with no other '/' and no '..'; got {quote(revision)}.")
    return revision


_HUB_TIMEOUT: ContextVar = ContextVar("kvplan_hub_timeout", default=None)


@contextmanager
def hub_deadline(value):
    """Within this block, Hub access for each MODEL takes at most `value` seconds (None: KVPLAN_HUB_TIMEOUT or
    the default). The value is checked on entry (FieldError 'hub_timeout')."""
    token = _HUB_TIMEOUT.set(None if value is None else hub_timeout_seconds(value))
    try:
        yield
    finally:
        _HUB_TIMEOUT.reset(token)


def hub_timeout_seconds(value=None) -> float:
    """Seconds the Hub may take for one MODEL: `value` (the caller's option) when given, else the enclosing
    hub_deadline(), else KVPLAN_HUB_TIMEOUT, else DEFAULT_HUB_TIMEOUT."""
    value = _HUB_TIMEOUT.get() if value is None else value
    from_env = value is None
    if from_env:
        value = os.environ.get("KVPLAN_HUB_TIMEOUT", "").strip() or DEFAULT_HUB_TIMEOUT
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*([0-9]{1,6}(\.[0-9]{0,6})?|\.[0-9]{1,6})\s*", value, re.ASCII):
        seconds = float(value)
    else:
        seconds = -1.0
    if not 0 < seconds <= MAX_HUB_TIMEOUT:  # NaN fails too
        problem = f"must be a number of seconds in (0, {MAX_HUB_TIMEOUT:g}], got {quote(value)}."
        if from_env:
            raise KvplanError(f"KVPLAN_HUB_TIMEOUT {problem}")
        raise FieldError("hub_timeout", problem)
    return seconds


class _Deadline(Exception):
    """The Hub did not answer within the deadline."""


def _within(seconds: float, work):
    """work() in a daemon thread, waited on for at most `seconds`: a Hub that trickles bytes, sleeps or
    retries cannot hold kvplan past its deadline (the thread is abandoned; the process exits without it)."""
    outcome: dict = {}
    done = threading.Event()

    def run():
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="kvplan-hub", daemon=True).start()
    if not done.wait(max(seconds, 0.0)):
        raise _Deadline()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _offline() -> bool:
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    return env or bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _status(exc: Exception) -> Optional[int]:
    return getattr(getattr(exc, "response", None), "status_code", None)


def _retry_after(exc: Exception) -> float:
    """Seconds the Hub asks us to wait (Retry-After in seconds; 1 when it does not say or says a date)."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    text = str(headers.get("Retry-After", "1")).strip()
    return float(text) if re.fullmatch(r"[0-9]{1,6}(\.[0-9]{1,3})?", text) else 1.0


def _cached_config(model_id: str, revision: Optional[str]) -> Optional[str]:
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(model_id, "config.json", revision=revision, local_files_only=True)
    except Exception:  # not in the cache (or the cache is unreadable): the Hub's own error is the one to give
        return None


def _fetch_config(model_id: str, revision: Optional[str], deadline: float) -> str:
    """Path of config.json in the Hub cache. One HEAD first, without the client's retries, so that 404/401
    come back at once and 429/5xx are retried exactly once (after Retry-After, when it fits the deadline); a
    network failure falls back to a cached copy, as huggingface_hub does; then the client downloads."""
    import inspect

    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError

    if _offline():
        return hf_hub_download(model_id, "config.json", revision=revision, local_files_only=True)
    url = hf_hub_url(model_id, "config.json", revision=revision)
    no_retry = {"retry_on_errors": False} if "retry_on_errors" in inspect.signature(get_hf_file_metadata).parameters \
        else {}
    for attempt in (1, 2):
        # the client's own per-request timeout, or a little past the deadline (which then speaks first)
        left = min(deadline - time.monotonic() + 0.5, float(constants.HF_HUB_ETAG_TIMEOUT or 10))
        try:
            get_hf_file_metadata(url, timeout=max(left, 0.1), **no_retry)
            break
        except HfHubHTTPError as exc:
            if _status(exc) not in RETRY_STATUS:
                raise
            wait = _retry_after(exc)
            if attempt == 2 or wait > MAX_RETRY_WAIT or wait + 0.5 > deadline - time.monotonic():
                return _cached_config(model_id, revision) or _raise(exc)
            time.sleep(wait)
        except Exception as exc:  # network down, DNS, timeout: a cached copy still answers
            return _cached_config(model_id, revision) or _raise(exc)
    return hf_hub_download(model_id, "config.json", revision=revision,
                           etag_timeout=max(deadline - time.monotonic() + 0.5, 0.1))


def _raise(exc: Exception):
    raise exc


def _hub_error(model_id: str, exc: Exception, seconds: float) -> KvplanError:
    from huggingface_hub import errors

    bundled = "it is not bundled (see `kvplan models`)"
    if isinstance(exc, _Deadline):
        return FieldError("hub_timeout", f"({seconds:g} s) ran out before the Hugging Face Hub answered for "
                                         f"{model_id}; raise it, check the network, or pass a local config.json; "
                                         f"{bundled}.{did_you_mean(model_id)}")
    if isinstance(exc, errors.GatedRepoError):
        return KvplanError(f"model {model_id} is gated on the Hugging Face Hub: accept its license there and "
                           f"set HF_TOKEN to a token with access.")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return KvplanError(f"model {model_id} was not found on the Hugging Face Hub and {bundled}; check the id "
                           f"(private repos need HF_TOKEN).{did_you_mean(model_id)}")
    if isinstance(exc, errors.RevisionNotFoundError):
        return FieldError("revision", f"was not found in {model_id} on the Hugging Face Hub.")
    if isinstance(exc, errors.LocalEntryNotFoundError):
        if _offline():
            return KvplanError(f"model {model_id} is not bundled and not in the Hugging Face cache, and "
                               f"HF_HUB_OFFLINE is set; unset it or pass a local config.json.{did_you_mean(model_id)}")
        return KvplanError(f"could not reach the Hugging Face Hub for {model_id} ({bundled}); check the network "
                           f"or pass a local config.json.{did_you_mean(model_id)}")
    if isinstance(exc, errors.EntryNotFoundError):  # remote: the repo exists, the file does not
        return KvplanError(f"model {model_id} has no config.json on the Hugging Face Hub.")
    if isinstance(exc, errors.HfHubHTTPError):
        status = _status(exc) or "an error"
        wait = _retry_after(exc)
        again = (f"it asks to retry in {wait:g} s" if wait > MAX_RETRY_WAIT else "also when asked again")
        what = " (rate limited)" if status == 429 else ""
        return KvplanError(f"the Hugging Face Hub answered {status}{what} for {model_id}, {again}; {bundled}.")
    if "timeout" in type(exc).__name__.lower():
        return KvplanError(f"could not reach the Hugging Face Hub for {model_id}: the request timed out; "
                           f"{bundled}.")
    return KvplanError(f"could not reach the Hugging Face Hub for {model_id} ({type(exc).__name__}); check the "
                       f"network or pass a local config.json; {bundled}.{did_you_mean(model_id)}")


def _hub_weights(model_id: str, revision: Optional[str], seconds: float) -> tuple[Optional[Weights], str]:
    """Exact size from the repo's safetensors metadata within `seconds`; (None, why not) otherwise."""
    from huggingface_hub import get_safetensors_metadata

    if _offline():
        return None, ""
    if seconds < 0.2:
        return None, "checkpoint size estimated from the config: no time left for its safetensors metadata"
    try:
        meta = _within(seconds, lambda: get_safetensors_metadata(model_id, revision=revision,
                                                                  timeout=max(seconds, 0.1)))
        counts = {str(k): int(v) for k, v in dict(meta.parameter_count).items()}
    except _Deadline:
        return None, (f"checkpoint size estimated from the config: its safetensors metadata did not arrive "
                      f"within the Hub deadline (raise it with KVPLAN_HUB_TIMEOUT)")
    except Exception:  # no safetensors, or the Hub failed after config.json came: estimate instead
        return None, ""
    return weights_from_counts(counts, "safetensors metadata"), ""


def from_hub(model_id: str, revision: Optional[str], raw_out: Optional[list] = None,
             timeout: Optional[float] = None) -> ModelSpec:
    from huggingface_hub.utils import disable_progress_bars, logging

    # Our one-line errors replace the client's retry warnings and progress bars on stderr.
    logging.set_verbosity_error()
    disable_progress_bars()

    seconds = hub_timeout_seconds(timeout)
    deadline = time.monotonic() + seconds
    try:
        config = _within(seconds, lambda: _fetch_config(model_id, revision, deadline))
    except Exception as exc:  # every failure becomes one sentence; see _hub_error
        raise _hub_error(model_id, exc, seconds) from None
    raw = load_json(Path(config))
    if raw_out is not None:
        raw_out.append(raw)
    weights, note = _hub_weights(model_id, revision, deadline - time.monotonic())
    spec = parse_config(raw, model_id, weights)
    return replace(spec, notes=spec.notes + (note,)) if note else spec


# ---- entry point -------------------------------------------------------------------------------------------

def looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or model.endswith((".json", ".yaml")) or os.sep + os.sep in model


def existing_path(model: str) -> Optional[Path]:
    """`model` as an existing path, None when nothing is there; a path that cannot even be looked at (an
    unknown ~user, a name too long, a folder we may not enter) is a one-line error."""
    try:
        path = Path(model).expanduser()
    except RuntimeError:
        raise KvplanError(f"MODEL {quote(model)} starts with ~ but names no known user's home folder.") from None
    try:
        return path if path.exists() else None
    except OSError as exc:
        raise KvplanError(f"MODEL {quote(model)} cannot be looked up: {exc.strerror or exc}.") from None
    except ValueError as exc:  # an embedded NUL byte
        raise KvplanError(f"MODEL {quote(model)} is not a usable path ({exc}).") from None


def bundled_for(model: str, revision: Optional[str] = None) -> Optional[Path]:
    """The bundled spec a Hub-id-shaped MODEL names (rule 1 in the module docstring), else None."""
    if revision is not None or looks_like_path(model) or ".." in model or not HUB_ID.match(model):
        return None
    return find_bundled(model)


def resolve(model: str, revision: Optional[str] = None, raw_out: Optional[list] = None,
            hub_timeout: Optional[float] = None) -> ModelSpec:
    """The spec of MODEL (sources in the order of the module docstring); `raw_out`, when given, receives the
    raw config.json it was parsed from (verify builds its forward pass from the fields the spec does not keep)."""
    if not isinstance(model, str) or not model.strip() or len(model) > 4096:
        raise FieldError("model", f"must be a Hugging Face id, a config.json or a model folder, got {quote(model)}.")
    revision = check_revision(revision)
    bundled = bundled_for(model, revision)
    if bundled is not None:
        entry, spec = load_bundled(bundled)
        if raw_out is not None:
            raw_out.append(entry["config"])
        spec = replace(spec, name=model)  # aliases keep the id the user typed
        shadow = existing_path(model)
        if shadow is not None:
            note = (f"the bundled spec of {model} was used although ./{model} exists here; write ./{model} to "
                    f"read that instead")
            spec = replace(spec, notes=spec.notes + (note,))
        return spec
    path = existing_path(model)
    if path is not None:
        return from_path(path, raw_out)
    if looks_like_path(model):
        raise KvplanError(f"MODEL {quote(model)} does not exist; give a config.json, a model folder or a Hub id.")
    if ".." in model or not HUB_ID.match(model):
        raise KvplanError(f"MODEL {quote(model)} is not a Hugging Face id (owner/name) nor an existing path."
                          f"{did_you_mean(model)}")
    return from_hub(model, revision, raw_out, hub_timeout)
