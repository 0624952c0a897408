"""MODEL ids that are neither bundled nor local: config.json (and the safetensors metadata, for the exact size; for a
config with no quantization_config, the repo's hf_quant_config.json, as vLLM reads it; and, only for --quantization
awq / gptq of a config with still no quantization settings, the settings file vLLM reads then; and the repo's
Sentence Transformers modules.json, whose Pooling module makes vLLM's runner pooling, and that module's own
config.json) from the Hugging Face Hub
through huggingface_hub, within one total deadline for everything a MODEL asks
(--hub-timeout, else KVPLAN_HUB_TIMEOUT, else DEFAULT_HUB_TIMEOUT): a HEAD without the client's retries first,
so that 404 and 401 answer at once and 429/5xx are retried exactly once (after Retry-After when it fits), a
network failure falls back to the cache as the client does, and the work runs in a thread waited on for the
deadline, so that a silent or trickling server cannot hold kvplan. Every failure is one sentence; a near-miss
of a bundled id adds "did you mean"."""

from __future__ import annotations

import os
import re
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path
from typing import Optional

from ..errors import FieldError, KvplanError, quote
from .bundled import did_you_mean, find_bundled
from .files import (MAX_JSON_BYTES, json_names, load_json, parse_json, read_regular,
                    weights_from_counts)
from .parse import parse_config
from .quantization import (MODELOPT_FILE, QUANT_CONFIG_FILES, has_quantization_settings, reads_modelopt_file,
                           settings_file_method, settings_file_names, with_modelopt_file, with_settings_file)
from .spec import ModelSpec, Weights
from .st_modules import MODULES_FILE, pooling_modules, read_pooling_modes

# A branch or tag (one path component), a 40-hex commit, or a pull-request ref (refs/pr/N) of the Hub.
# \Z, not $, which also matches before a final newline ('main\n' is no revision the Hub has)
REVISION = re.compile(r"^(?:[0-9a-f]{40}|refs/pr/[0-9]{1,9}|[A-Za-z0-9][A-Za-z0-9._-]{0,127})\Z", re.ASCII)
DEFAULT_HUB_TIMEOUT = 10.0  # seconds, for everything one MODEL asks of the Hub
MAX_HUB_TIMEOUT = 3600.0
RETRY_STATUS = (429, 500, 502, 503, 504)  # retried once, within the deadline
MAX_RETRY_WAIT = 3.0  # a Retry-After longer than this is not waited for: the error says what the Hub asked


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


def _no_retry() -> dict:
    """get_hf_file_metadata's keyword that turns the client's retries off, where its release has one."""
    import inspect

    from huggingface_hub import get_hf_file_metadata

    return {"retry_on_errors": False} if "retry_on_errors" in inspect.signature(get_hf_file_metadata).parameters \
        else {}


def _head_timeout(deadline: float) -> float:
    """A HEAD's timeout: the client's own per-request one, or a little past the deadline (which then speaks first)."""
    from huggingface_hub import constants

    return max(min(deadline - time.monotonic() + 0.5, float(constants.HF_HUB_ETAG_TIMEOUT or 10)), 0.1)


def _head(url: str, deadline: float):
    """The file's metadata from one HEAD without the client's retries, so that 404 and 401 come back at once; a
    429/5xx is asked again exactly once, after Retry-After when that fits the deadline; else the error is raised."""
    from huggingface_hub import get_hf_file_metadata
    from huggingface_hub.errors import HfHubHTTPError

    for attempt in (1, 2):
        try:
            return get_hf_file_metadata(url, timeout=_head_timeout(deadline), **_no_retry())
        except HfHubHTTPError as exc:
            wait = _retry_after(exc)
            if _status(exc) not in RETRY_STATUS or attempt == 2 or wait > MAX_RETRY_WAIT \
                    or wait + 0.5 > deadline - time.monotonic():
                raise
            time.sleep(wait)


def _fetch_config(model_id: str, revision: Optional[str], deadline: float) -> str:
    """Path of config.json in the Hub cache: its HEAD first (_head); a network failure, or a 429/5xx that its retry
    did not clear, falls back to a cached copy, as huggingface_hub does; then the client downloads."""
    from huggingface_hub import hf_hub_download, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError

    if _offline():
        return hf_hub_download(model_id, "config.json", revision=revision, local_files_only=True)
    try:
        _head(hf_hub_url(model_id, "config.json", revision=revision), deadline)
    except HfHubHTTPError as exc:
        if _status(exc) not in RETRY_STATUS:
            raise
        return _cached_config(model_id, revision) or _raise(exc)
    except Exception as exc:  # network down, DNS, timeout: a cached copy still answers
        return _cached_config(model_id, revision) or _raise(exc)
    return hf_hub_download(model_id, "config.json", revision=revision,
                           etag_timeout=max(deadline - time.monotonic() + 0.5, 0.1))


def _settings_files(model_id: str, revision: Optional[str], method: str, deadline: float, snapshot: Path) -> dict:
    """{name: cached path} of the settings files vLLM's --quantization `method` reads from the repo: its top-level
    *.json whose name ends with one of QUANT_CONFIG_FILES[method] (quantization.settings_file_names). vLLM downloads
    the repo's "*.json" (snapshot_download, weight_utils.py 0.32.0:332-343) and globs the top level of the snapshot
    (:365-369); kvplan lists the repo as snapshot_download does (the model's siblings) and fetches the names that
    match. Offline, the cached snapshot's own files (`snapshot`), as vLLM's offline snapshot_download gives them
    (_cached_settings_files); when the listing cannot reach the Hub, those too, or the Hub's error where none
    matches."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    if _offline():
        return _cached_settings_files(model_id, method, snapshot)
    try:
        names = _repo_names(model_id, revision, deadline)
    except HfHubHTTPError:
        raise
    except Exception:  # network down, DNS, timeout: the cached snapshot still answers where it holds one
        cached = _snapshot_settings_files(method, snapshot)
        if cached:
            return cached
        raise
    found = {}
    for name in settings_file_names(method, names):
        try:
            found[name] = hf_hub_download(model_id, name, revision=revision,
                                          etag_timeout=max(deadline - time.monotonic() + 0.5, 0.1))
        except EntryNotFoundError:  # listed a moment ago, gone now: as if never there
            pass
    return found


def _repo_names(model_id: str, revision: Optional[str], deadline: float) -> list:
    """The names of the files at the top of the repo (at `revision`), from the Hub's model listing: what a glob of
    vLLM's snapshot folder sees (files in sub-folders are not globbed)."""
    from huggingface_hub import HfApi

    info = HfApi().model_info(model_id, revision=revision, timeout=max(deadline - time.monotonic() + 0.5, 0.1))
    return [s.rfilename for s in info.siblings or () if "/" not in s.rfilename]


def _snapshot_settings_files(method: str, snapshot: Path) -> dict:
    """{name: path} of the settings files `method` takes among the cached snapshot's *.json."""
    return {name: str(snapshot / name) for name in settings_file_names(method, json_names(snapshot))}


def _cached_settings_files(model_id: str, method: str, snapshot: Path) -> dict:
    """Offline: the settings files the cached snapshot holds. None there is an error: the snapshot may lack files of
    the repo (config.json was all kvplan, or the client, fetched), and no record of the cache proves the repo holds
    no file whose name merely ends with a settings name (huggingface_hub's .no_exist markers are for exact names)."""
    found = _snapshot_settings_files(method, snapshot)
    if not found:
        names = " or ".join(QUANT_CONFIG_FILES[method])
        raise KvplanError(f"model {model_id}'s config has no quantization_config, and the Hugging Face cache holds no "
                          f"{names} for it, nor a *.json whose name ends so (vLLM's --quantization {method} reads such "
                          f"a file instead), while HF_HUB_OFFLINE is set: the repo may hold one the cache lacks; unset "
                          f"it to let kvplan ask the Hub, or pass a local folder.")
    return found


def _with_hub_settings(raw, model_id: str, revision: Optional[str], quantization: Optional[str], deadline: float,
                       seconds: float, snapshot: Path) -> tuple:
    """(raw, note): config.json with the settings file vLLM's --quantization awq / gptq reads from the repo when the
    config has none (quantization.with_settings_file); nothing is asked of the Hub otherwise. `snapshot`: the cache
    folder config.json was read from."""
    method = settings_file_method(quantization)
    if method is None or has_quantization_settings(raw):
        return raw, None
    try:
        paths = _within(deadline - time.monotonic(),
                        lambda: _settings_files(model_id, revision, method, deadline, snapshot))
    except KvplanError:
        raise
    except Exception as exc:  # every failure becomes one sentence; see _hub_error
        raise _hub_error(model_id, exc, seconds) from None
    folder = str(Path(next(iter(paths.values()))).parent) if paths else ""  # the cache's snapshot of the repo
    return with_settings_file(raw, method, {name: load_json(Path(path)) for name, path in paths.items()}, folder)


UNCHECKED_LEAD = "the Hugging Face Hub could not be asked for the repo's "
_MODELOPT_UNCHECKED = (UNCHECKED_LEAD + MODELOPT_FILE + " ({why}), which vLLM reads as the quantization_config of a "
                       "config.json with none (ModelOpt 0.29 and older write it): the weights are priced as "
                       "config.json says; ask again, or pass a local folder")
_MODULES_UNCHECKED = (UNCHECKED_LEAD + MODULES_FILE + " ({why}), whose Sentence Transformers Pooling module, where it "
                      "lists one, makes vLLM serve the model on its pooling runner: the runner is taken from the "
                      "architecture alone; ask again, or pass a local folder")
_POOLING_UNCHECKED = (UNCHECKED_LEAD + "Sentence Transformers Pooling module's {name} ({why}), whose pooling "
                      "type vLLM takes over the class's (a MEAN or CLS one turns chunked prefill and prefix caching "
                      "off): the class's default is planned; ask again, or pass a local folder")


def unchecked_notes(notes) -> tuple:
    """Of a spec's notes, those saying the Hub could not be asked for a repo file vLLM reads beside config.json
    (_repo_file_path: MODELOPT_FILE, MODULES_FILE): the plan stands on config.json alone, which `check` makes a
    warning on the deployment's model."""
    return tuple(note for note in notes if note.startswith(UNCHECKED_LEAD))


def _repo_file_path(model_id: str, revision: Optional[str], deadline: float, snapshot: Path, name: str,
                    unchecked: str) -> tuple:
    """(path of the repo's file `name` in the Hub cache, or None; `unchecked` with why, when the Hub could not say),
    found as vLLM finds it: offline, in the cached snapshot (arg_utils.py 0.34.0:940-949 turns the id into that
    folder, 0.11.0:501); online, the cache first, a copy or the client's record that the repo has none at this
    commit, and the Hub only when the cache cannot say (transformers_utils/repo_utils.py 0.34.0:262-283
    file_or_path_exists, :497-519 get_hf_file_to_dict). The Hub's 404 (EntryNotFound) is a repo without the file;
    any other failure, the note (config.json came a moment ago, or from the cache: an outage now does not stop the
    plan of a repo that, as nearly all, holds no such file)."""
    from huggingface_hub import try_to_load_from_cache

    if _offline():
        path = snapshot / name
        return (path if path.is_file() else None), ""
    cached = try_to_load_from_cache(model_id, name, revision=revision)
    if isinstance(cached, str):
        return Path(cached), ""
    if cached is not None:  # the client's .no_exist record of this commit
        return None, ""
    left = deadline - time.monotonic()
    if left < 0.2:
        return None, unchecked.format(why="no time was left within hub_timeout")
    try:
        path = _within(left, lambda: _download_if_there(model_id, revision, deadline, name))
    except _Deadline:
        return None, unchecked.format(why="it did not answer within hub_timeout")
    except Exception as exc:  # 5xx, 429, a network failure
        status = _status(exc)
        return None, unchecked.format(why=f"it answered {status}" if status else "it could not be reached")
    return (Path(path) if path else None), ""


def _download_if_there(model_id: str, revision: Optional[str], deadline: float, name: str) -> Optional[str]:
    """The repo's file `name` downloaded into the Hub cache, None when the repo has none (404 EntryNotFound). Its
    HEAD first (_head: 429/5xx asked once more), so that the common answer (no such file) and a network failure come
    at once; on a 404 the client records the absence (_record_absence), so that the next run asks nothing."""
    from huggingface_hub import hf_hub_download, hf_hub_url
    from huggingface_hub.errors import EntryNotFoundError

    try:
        _head(hf_hub_url(model_id, name, revision=revision), deadline)
    except EntryNotFoundError:
        return _record_absence(model_id, revision, deadline, name)
    return hf_hub_download(model_id, name, revision=revision,
                           etag_timeout=max(deadline - time.monotonic() + 0.5, 0.1))


def _record_absence(model_id: str, revision: Optional[str], deadline: float, name: str) -> Optional[str]:
    """None, once huggingface_hub has recorded that the repo has no file `name` at this commit: hf_hub_download
    writes that record itself on the Hub's 404 (.no_exist/<commit>/<file> and the revision's ref, from the answer's
    X-Repo-Commit), which try_to_load_from_cache reads back (_repo_file_path): one more HEAD now, none on any
    later run. kvplan writes nothing into the client's cache. The file's path should it have appeared meanwhile."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return hf_hub_download(model_id, name, revision=revision, etag_timeout=_head_timeout(deadline))
    except EntryNotFoundError:
        return None
    except Exception:  # the record only saves a request: the Hub has just said the repo has no such file
        return None


def _hub_file_name(name: str, model_id: str, revision: Optional[str]) -> str:
    """A repo file as errors name it: by repo and revision, not by the cache's snapshot path."""
    at = f" at revision {revision}" if revision else ""
    return f"{name} of {model_id}{at} on the Hugging Face Hub"


def _with_hub_modelopt_file(raw, model_id: str, revision: Optional[str], deadline: float, snapshot: Path) -> tuple:
    """(raw, note): config.json with the repo's hf_quant_config.json as its quantization_config when it has none
    (quantization.MODELOPT_FILE), asked of the Hub only then: a config that has one costs no request."""
    if not reads_modelopt_file(raw):
        return raw, None
    path, unchecked = _repo_file_path(model_id, revision, deadline, snapshot, MODELOPT_FILE, _MODELOPT_UNCHECKED)
    if path is None:
        return raw, unchecked or None
    name = _hub_file_name(MODELOPT_FILE, model_id, revision)
    return with_modelopt_file(raw, parse_json(read_regular(path, MAX_JSON_BYTES, name), name), name)


def _hub_pooling_modules(model_id: str, revision: Optional[str], deadline: float, snapshot: Path) -> tuple:
    """(the Pooling module types the repo's modules.json lists, what vLLM reads of each one's config.json (both
    st_modules.read_pooling_modes; ((), ()) without modules.json), the notes where the Hub could not say): asked of
    every repo, as vLLM's get_pooling_config asks whatever the architecture (st_modules.py); a Pooling module's
    config.json only where modules.json lists one, the same way (vLLM: get_hf_file_to_dict, transformers_utils/
    repo_utils.py 0.34.0:497-522, the cache first, then the Hub). Where the Hub cannot say, the module reads as
    naming no type: the class's default, as vLLM takes it when the download fails (`or {}`, 0.14 on)."""
    path, unchecked = _repo_file_path(model_id, revision, deadline, snapshot, MODULES_FILE, _MODULES_UNCHECKED)
    if path is None:
        return (), (), (unchecked,) if unchecked else ()
    name = _hub_file_name(MODULES_FILE, model_id, revision)
    modules = pooling_modules(parse_json(read_regular(path, MAX_JSON_BYTES, name), name), name)
    notes = []

    def read(file_name: str) -> tuple:
        where = _hub_file_name(file_name, model_id, revision)
        found, missed = _repo_file_path(model_id, revision, deadline, snapshot, file_name,
                                        _POOLING_UNCHECKED.replace("{name}", _braced(file_name)))
        if missed:
            notes.append(missed)
            return {}, where
        return (parse_json(read_regular(found, MAX_JSON_BYTES, where), where) if found else None), where

    types, modes = read_pooling_modes(modules, read)
    return types, modes, tuple(notes)


def _braced(text: str) -> str:
    """`text` as a literal within a str.format template (a repo's own path may hold braces)."""
    return text.replace("{", "{{").replace("}", "}}")


def _raise(exc: Exception):
    raise exc


def _hub_error(model_id: str, exc: Exception, seconds: float, revision: Optional[str] = None) -> KvplanError:
    """One sentence for a Hub failure; `revision`: the one asked, which takes a bundled id past its spec."""
    from huggingface_hub import errors

    if revision is not None and find_bundled(model_id) is not None and \
            not isinstance(exc, (errors.GatedRepoError, errors.RevisionNotFoundError)):
        return _past_bundled(model_id, revision, exc, seconds)
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
    local = _local_setup_error(model_id, exc)
    if local is not None:
        return local
    return KvplanError(f"could not reach the Hugging Face Hub for {model_id} ({type(exc).__name__}); check the "
                       f"network or pass a local config.json; {bundled}.{did_you_mean(model_id)}")


TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")  # huggingface_hub constants.py, in the order it reads them


def _local_setup_error(model_id: str, exc: Exception) -> Optional[KvplanError]:
    """A Hub failure that is this machine's setup, not the network: a token HTTP cannot carry (a header is latin-1:
    the request raises UnicodeEncodeError before it leaves) or a Hugging Face cache folder that cannot be used
    (HF_HOME=/dev/null/x: the token file or the cache under it is not a folder, not writable...). None otherwise."""
    import os

    from huggingface_hub import constants

    if isinstance(exc, UnicodeEncodeError):
        name = next((n for n in TOKEN_VARIABLES if os.environ.get(n)), None)
        if name is not None and not os.environ[name].isascii():
            return KvplanError(f"{name} holds characters an HTTP header cannot carry, so the Hugging Face Hub "
                               f"cannot be asked for {model_id}; set it to a Hugging Face token (hf_..., ASCII) "
                               f"or unset it.")
    filename = exc.filename if isinstance(exc, OSError) and isinstance(exc.filename, str) else None
    for variable, folder in (("HF_HUB_CACHE", constants.HF_HUB_CACHE), ("HF_HOME", constants.HF_HOME)):
        folder = os.path.abspath(folder)
        if filename and (os.path.abspath(filename) + os.sep).startswith(folder + os.sep):
            return KvplanError(f"the Hugging Face cache folder {quote(folder)} cannot be used for {model_id} "
                               f"({exc.strerror or type(exc).__name__}: {quote(filename)}); set {variable} to a "
                               f"folder you can write, or pass a local config.json.")
    return None


def _past_bundled(model_id: str, revision: str, exc: Exception, seconds: float) -> FieldError:
    """A bundled id asked at a revision: the bundled spec has none, so only the Hub answers (sources.py bundled_for),
    and its failure is said as that, with the way back to the bundled spec (not "did you mean" the same id)."""
    from huggingface_hub import errors

    if isinstance(exc, _Deadline):
        why = f"the Hub did not answer within hub_timeout ({seconds:g} s)"
    elif isinstance(exc, errors.LocalEntryNotFoundError):  # an EntryNotFoundError too: before that clause
        why = "HF_HUB_OFFLINE is set and the Hugging Face cache holds no copy" if _offline() else \
            "the Hub could not be reached"
    elif isinstance(exc, errors.RepositoryNotFoundError):
        why = "the Hub has no such repo (private repos need HF_TOKEN)"
    elif isinstance(exc, errors.EntryNotFoundError):
        why = "the Hub has no config.json there"
    elif isinstance(exc, errors.HfHubHTTPError):
        why = f"the Hub answered {_status(exc) or 'an error'}"
    else:
        why = "the Hub could not be reached"
    return FieldError("revision", f"{quote(revision)} reads {model_id} from the Hugging Face Hub, past its bundled "
                                  f"spec (which has no revisions), and {why}; drop revision to use the bundled spec.",
                      names=("revision", "hub_timeout"))


def _hub_config(path: Path, model_id: str, revision: Optional[str]) -> object:
    """config.json as the Hub cache holds it; a malformed, oversized or unreadable one is named as the user knows it,
    by repo and revision (not by the cache's snapshot path)."""
    name = _hub_file_name("config.json", model_id, revision)
    return parse_json(read_regular(path, MAX_JSON_BYTES, name), name)


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
        return None, ("checkpoint size estimated from the config: its safetensors metadata did not arrive "
                      "within the Hub deadline (hub_timeout, or KVPLAN_HUB_TIMEOUT, raises it)")
    except Exception:  # no safetensors, or the Hub failed after config.json came: estimate instead
        return None, ""
    return weights_from_counts(counts, "safetensors metadata"), ""


def from_hub(model_id: str, revision: Optional[str], raw_out: Optional[list] = None,
             timeout: Optional[float] = None, quantization: Optional[str] = None,
             transformers: Optional[str] = None) -> ModelSpec:
    from huggingface_hub.utils import disable_progress_bars, logging

    # Our one-line errors replace the client's retry warnings and progress bars on stderr.
    logging.set_verbosity_error()
    disable_progress_bars()

    seconds = hub_timeout_seconds(timeout)
    deadline = time.monotonic() + seconds
    try:
        config = _within(seconds, lambda: _fetch_config(model_id, revision, deadline))
    except Exception as exc:  # every failure becomes one sentence; see _hub_error
        raise _hub_error(model_id, exc, seconds, revision) from None
    snapshot = Path(config).parent
    raw, modelopt = _with_hub_modelopt_file(_hub_config(Path(config), model_id, revision), model_id, revision,
                                            deadline, snapshot)
    raw, settings = _with_hub_settings(raw, model_id, revision, quantization, deadline, seconds, snapshot)
    pooling, modes, modules = _hub_pooling_modules(model_id, revision, deadline, snapshot)
    if raw_out is not None:
        raw_out.append(raw)
    weights, note = _hub_weights(model_id, revision, deadline - time.monotonic())
    spec = parse_config(raw, model_id, weights, transformers)
    if pooling:
        spec = replace(spec, st_pooling=pooling, st_pooling_modes=modes)
    notes = tuple(n for n in (modelopt, settings, *modules, note) if n)
    return replace(spec, notes=spec.notes + notes) if notes else spec
