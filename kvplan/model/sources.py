"""MODEL -> ModelSpec: a local config.json or model folder, else a bundled spec, else the Hugging Face Hub.
Only this module touches files and the Hub; it hands raw configs to the one parser."""

from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import replace
from pathlib import Path
from typing import Optional

from ..errors import KvplanError
from .parse import parse_config
from .spec import ModelSpec, Weights

PACKAGE = Path(__file__).resolve().parent.parent
# Wheels carry the specs inside the package; a source checkout keeps them at the repository root.
SPEC_DIRS = (PACKAGE / "_model_specs", PACKAGE.parent / "model_specs")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
SAFETENSORS_BYTES = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2,
                     "U16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "I8": 1, "U8": 1, "BOOL": 1}


def _load_yaml(path: Path):
    import yaml  # only bundled specs and deployment files need it

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.load(handle, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise KvplanError(f"{path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}.") from None


def load_json(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KvplanError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise KvplanError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.") \
            from None


# ---- local files -------------------------------------------------------------------------------------------

def _safetensors_header(path: Path) -> dict:
    with open(path, "rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        return json.loads(handle.read(size))


def local_weights(folder: Path) -> Optional[Weights]:
    """Exact size from the checkpoint's safetensors headers (a few KB read per shard), or the sharded index's
    total_size when the shards are not there."""
    shards = sorted(folder.glob("*.safetensors"))
    try:
        if shards:
            counts: dict = {}
            for shard in shards:
                for name, info in _safetensors_header(shard).items():
                    if name != "__metadata__":
                        elements = 1
                        for dim in info["shape"]:
                            elements *= dim
                        counts[info["dtype"]] = counts.get(info["dtype"], 0) + elements
            return weights_from_counts(counts, "safetensors headers")
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            total = int(load_json(index)["metadata"]["total_size"])
            return Weights(0, total, "", "model.safetensors.index.json total_size")
    except (OSError, KeyError, ValueError, TypeError, struct.error):
        return None  # unreadable checkpoint: fall back to the config estimate
    return None


def weights_from_counts(counts: dict, source: str) -> Weights:
    stored = sum(n * SAFETENSORS_BYTES.get(dtype, 2) for dtype, n in counts.items())
    main = max(counts, key=counts.get) if counts else ""
    return Weights(sum(counts.values()), stored, main.lower(), source)


def from_path(path: Path, raw_out: Optional[list] = None) -> ModelSpec:
    folder = path if path.is_dir() else path.parent
    config = path / "config.json" if path.is_dir() else path
    if not config.is_file():
        raise KvplanError(f"MODEL folder {path} has no config.json.")
    weights = local_weights(folder) if path.is_dir() or config.name == "config.json" else None
    raw = load_json(config)
    if raw_out is not None:
        raw_out.append(raw)
    spec = parse_config(raw, str(path))
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


# ---- the Hub -----------------------------------------------------------------------------------------------

def _hub_error(model_id: str, exc: Exception) -> KvplanError:
    from huggingface_hub import errors

    bundled = "it is not bundled (see `kvplan models`)"
    if isinstance(exc, errors.GatedRepoError):
        return KvplanError(f"model {model_id} is gated on the Hugging Face Hub: accept its license there and "
                           f"set HF_TOKEN to a token with access.")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return KvplanError(f"model {model_id} was not found on the Hugging Face Hub and {bundled}; check the id "
                           f"(private repos need HF_TOKEN).")
    if isinstance(exc, errors.RevisionNotFoundError):
        return KvplanError(f"--revision was not found in {model_id} on the Hugging Face Hub.")
    if isinstance(exc, errors.LocalEntryNotFoundError):
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            return KvplanError(f"model {model_id} is not bundled and not in the Hugging Face cache, and "
                               f"HF_HUB_OFFLINE is set; unset it or pass a local config.json.")
        return KvplanError(f"could not reach the Hugging Face Hub for {model_id} ({bundled}); check the network "
                           f"or pass a local config.json.")
    if isinstance(exc, errors.EntryNotFoundError):  # remote: the repo exists, the file does not
        return KvplanError(f"model {model_id} has no config.json on the Hugging Face Hub.")
    if isinstance(exc, errors.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", "an error")
        return KvplanError(f"the Hugging Face Hub answered {status} for {model_id}; {bundled}.")
    if "timeout" in type(exc).__name__.lower():
        return KvplanError(f"could not reach the Hugging Face Hub for {model_id}: the request timed out "
                           f"(HF_HUB_DOWNLOAD_TIMEOUT); {bundled}.")
    return KvplanError(f"could not fetch {model_id} from the Hugging Face Hub ({type(exc).__name__}); "
                       f"{bundled}.")


def _hub_weights(model_id: str, revision: Optional[str]) -> Optional[Weights]:
    from huggingface_hub import get_safetensors_metadata

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return None
    try:
        meta = get_safetensors_metadata(model_id, revision=revision)
    except Exception:  # no safetensors, or the Hub failed after config.json came: estimate instead
        return None
    return weights_from_counts(dict(meta.parameter_count), "safetensors metadata")


def from_hub(model_id: str, revision: Optional[str], raw_out: Optional[list] = None) -> ModelSpec:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import disable_progress_bars, logging

    # Our one-line errors replace the client's retry warnings and progress bars on stderr.
    logging.set_verbosity_error()
    disable_progress_bars()

    try:
        config = hf_hub_download(model_id, "config.json", revision=revision)
    except Exception as exc:  # every failure becomes one sentence; see _hub_error
        raise _hub_error(model_id, exc) from None
    raw = load_json(Path(config))
    if raw_out is not None:
        raw_out.append(raw)
    return parse_config(raw, model_id, _hub_weights(model_id, revision))


# ---- entry point -------------------------------------------------------------------------------------------

def looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or model.endswith((".json", ".yaml")) or os.sep + os.sep in model


def resolve(model: str, revision: Optional[str] = None, raw_out: Optional[list] = None) -> ModelSpec:
    """The spec of MODEL; `raw_out`, when given, receives the raw config.json it was parsed from (verify builds
    its forward pass from the fields the spec does not keep)."""
    path = Path(model).expanduser()
    if path.exists():
        return from_path(path, raw_out)
    if looks_like_path(model):
        raise KvplanError(f"MODEL {model} does not exist; give a config.json, a model folder or a Hub id.")
    if ".." in model or not HUB_ID.match(model):
        raise KvplanError(f"MODEL {model!r} is not a Hugging Face id (owner/name) nor an existing path.")
    bundled = find_bundled(model) if revision is None else None
    if bundled is not None:
        entry, spec = load_bundled(bundled)
        if raw_out is not None:
            raw_out.append(entry["config"])
        return replace(spec, name=model)  # aliases keep the id the user typed
    return from_hub(model, revision, raw_out)
