"""MODEL -> ModelSpec: a bundled spec, a local config.json or model folder, or the Hugging Face Hub. This module
and the three it leans on (bundled.py, files.py, hub.py) are the only ones touching files and the Hub; they hand
raw configs to the one parser.

Which source a MODEL names (in this order):
1. A Hub id that is bundled (its id or an alias; no --revision) is the bundled spec, even when a folder of the
   same name exists in the working directory: a Hub id means the same model wherever kvplan runs. Such a
   folder is mentioned in the plan's notes; write it as a path (./owner/name) to read it instead.
2. An existing path (config.json or model folder).
3. The Hub, within a total deadline (--hub-timeout / KVPLAN_HUB_TIMEOUT, 10 s by default).

A config.json holding no quantization_config takes the hf_quant_config.json beside it (ModelOpt 0.29 and older
write their settings there) as it, from the folder or the Hub repo, as vLLM does (quantization.py MODELOPT_FILE); a
bundled spec never asks its Hub repo. With --quantization awq / gptq and still no quantization_config, the settings
file vLLM reads then (a top-level *.json whose name ends quantize_config.json, or quant_config.json for AWQ) is read
from the folder or the Hub repo too (quantization.py QUANT_CONFIG_FILES, settings_file_names); nothing else asks
for it.

A Sentence Transformers modules.json beside config.json (a folder's, or the Hub repo's: asked for every Hub model,
as vLLM asks for it) is read for the Pooling module it may list (st_modules.py), which makes vLLM serve the model on
its pooling runner (ModelSpec.st_pooling; engines/vllm_pooling.py), and so is that module's own config.json, whose
pooling type vLLM takes over the class's (ModelSpec.st_pooling_modes); a bundled spec never asks its Hub repo.

Every read is bounded (files.py): only regular files are opened, JSON with limits on size, nesting and digits,
safetensors headers under a size cap before anything is allocated."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Optional

from ..errors import FieldError, KvplanError, quote
from .bundled import bundled_files, bundled_names, did_you_mean, find_bundled, load_bundled, spec_dir
from .files import MAX_JSON_BYTES, json_names, load_json, local_weights, parse_json, read_regular, weights_from_counts
from .hub import check_revision, from_hub, hub_deadline, hub_timeout_seconds
from .parse import parse_config
from .quantization import (MODELOPT_FILE, has_quantization_settings, reads_modelopt_file, settings_file_method,
                           settings_file_names, with_modelopt_file, with_settings_file)
from .spec import ModelSpec, Weights
from .st_modules import MODULES_FILE, pooling_modules, read_pooling_modes

__all__ = ["bundled_files", "bundled_names", "did_you_mean", "find_bundled", "load_bundled", "spec_dir", "load_json",
           "local_weights", "parse_json", "read_regular", "weights_from_counts", "check_revision", "from_hub",
           "hub_deadline", "hub_timeout_seconds", "resolve", "existing_path", "bundled_for", "looks_like_path",
           "from_path"]
# \Z, not $: $ also matches before a final newline, and 'owner/name\n' (a YAML block scalar's) is no Hub id
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?\Z", re.ASCII)
# a model's Hub address pasted for its id: https://huggingface.co/owner/name[/tree/main...], hf.co, hf://
HUB_ADDRESS = re.compile(r"(?:https?://(?:www\.)?(?:huggingface\.co|hf\.co)/|hf://(?:models/)?)"
                         r"(?!(?:datasets|spaces)/)(?P<id>[^/?#\s]+/[^/?#\s]+)(?:[/?#].*)?", re.IGNORECASE | re.DOTALL)


def _local_modelopt_file(raw, folder: Path) -> tuple:
    """(raw, note) with the folder's hf_quant_config.json as the quantization_config when config.json has none
    (quantization.MODELOPT_FILE); vLLM takes it when it is a file (transformers_utils/repo_utils.py 0.34.0:262-266
    file_or_path_exists; transformers_utils/config.py 0.11.0:342-346). (raw, None) otherwise."""
    path = folder / MODELOPT_FILE
    if not reads_modelopt_file(raw) or not path.is_file():
        return raw, None
    name = f"{MODELOPT_FILE} in {quote(str(folder))}"  # the name first: a long folder is cut short by quote()
    return with_modelopt_file(raw, parse_json(read_regular(path, MAX_JSON_BYTES, name), name), name)


def _local_pooling_modules(folder: Path) -> tuple:
    """(types, modes): the Pooling module types the folder's modules.json lists and what vLLM reads of each one's
    config.json (st_modules.pooling_modules, read_pooling_modes); ((), ()) without one. vLLM reads each file when it
    is a file (transformers_utils/repo_utils.py 0.34.0:262-266 file_or_path_exists, :481-483 try_get_local_file:
    `Path(model) / file_name`)."""
    path = folder / MODULES_FILE
    if not path.is_file():
        return (), ()
    name = f"{MODULES_FILE} in {quote(str(folder))}"  # the name first: a long folder is cut short by quote()
    modules = pooling_modules(parse_json(read_regular(path, MAX_JSON_BYTES, name), name), name)

    def read(file_name: str) -> tuple:
        where = f"{file_name} in {quote(str(folder))}"
        found = folder / file_name
        return (parse_json(read_regular(found, MAX_JSON_BYTES, where), where) if found.is_file() else None), where

    return read_pooling_modes(modules, read)


def _local_settings_file(raw, folder: Path, quantization: Optional[str]) -> tuple:
    """(raw, note) with the settings file vLLM's --quantization awq / gptq reads from the model folder when config.json
    has none (quantization.with_settings_file); (raw, None) when not asked or not there."""
    method = settings_file_method(quantization)
    if method is None or has_quantization_settings(raw):
        return raw, None
    names = settings_file_names(method, json_names(folder))
    return with_settings_file(raw, method, {name: load_json(folder / name) for name in names}, str(folder))


def from_path(path: Path, raw_out: Optional[list] = None, quantization: Optional[str] = None,
              transformers: Optional[str] = None) -> ModelSpec:
    """The spec of a model folder or config file. With no quantization_config in config.json, a folder's (or a file
    named config.json's neighbour) hf_quant_config.json is read as it, as vLLM does; then `quantization` (the -q
    flag): awq / gptq read their settings file from there when there is still none. The modules.json there gives
    the Pooling modules it lists (ModelSpec.st_pooling) and their config.json's pooling types (st_pooling_modes)."""
    folder = path if path.is_dir() else path.parent
    config = path / "config.json" if path.is_dir() else path
    if path.is_dir() and not config.exists():
        raise KvplanError(f"MODEL folder {quote(str(path))} has no config.json.")
    raw, read, (pooling, modes) = load_json(config), (), ((), ())
    in_folder = path.is_dir() or config.name == "config.json"
    if in_folder:
        raw, modelopt = _local_modelopt_file(raw, folder)
        raw, settings = _local_settings_file(raw, folder, quantization)
        read = tuple(note for note in (modelopt, settings) if note)
        pooling, modes = _local_pooling_modules(folder)
    if raw_out is not None:
        raw_out.append(raw)
    weights, note = local_weights(folder) if in_folder else (None, None)
    spec = parse_config(raw, str(path), transformers=transformers)
    if pooling:
        spec = replace(spec, st_pooling=pooling, st_pooling_modes=modes)
    if read:
        spec = replace(spec, notes=spec.notes + read)
    if note:  # a checkpoint vLLM cannot load as it is: the size's source and why (files.local_weights)
        spec = replace(spec, notes=spec.notes + (note,))
    if weights is None:
        return spec
    if weights.parameters == 0:  # index.json gives bytes only: the count is the config's estimate
        weights = Weights(spec.weights.parameters, weights.bytes, spec.weights.dtype, weights.source)
    return replace(spec, weights=weights)


def looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or model.endswith((".json", ".yaml")) or os.sep + os.sep in model


def existing_path(model: str, what: str = "MODEL ") -> Optional[Path]:
    """`model` as an existing path, None when nothing is there; a path that cannot even be looked at (an
    unknown ~user, a name too long, a folder we may not enter) is a one-line error naming the path as `what` says
    ("MODEL ", or "" where the caller names it)."""
    try:
        path = Path(model).expanduser()
    except RuntimeError:
        raise KvplanError(f"{what}{quote(model)} starts with ~ but names no known user's home folder.") from None
    try:
        return path if path.exists() else None
    except OSError as exc:
        raise KvplanError(f"{what}{quote(model)} cannot be looked up: {exc.strerror or exc}.") from None
    except ValueError as exc:  # an embedded NUL byte
        raise KvplanError(f"{what}{quote(model)} is not a usable path ({exc}).") from None


def bundled_for(model: str, revision: Optional[str] = None) -> Optional[Path]:
    """The bundled spec a Hub-id-shaped MODEL names (rule 1 in the module docstring), else None."""
    if revision is not None or looks_like_path(model) or ".." in model or not HUB_ID.match(model):
        return None
    return find_bundled(model)


def resolve(model: str, revision: Optional[str] = None, raw_out: Optional[list] = None,
            hub_timeout: Optional[float] = None, quantization: Optional[str] = None,
            transformers: Optional[str] = None) -> ModelSpec:
    """The spec of MODEL (sources in the order of the module docstring); `raw_out`, when given, receives the
    raw config.json it was parsed from (verify builds its forward pass from the fields the spec does not keep).
    A config.json with no quantization_config takes the hf_quant_config.json beside it (a local folder's, or the
    Hub repo's, asked for only then); `quantization` (the -q flag, unchecked here): awq / gptq also read the settings
    file vLLM reads beside a config.json with still none; a bundled spec is read from its bundled config alone (its
    Hub repo is never asked). `transformers`: whose config classes fill the fields a config leaves out
    (class_defaults.transformers_for the planned release; None: the newest)."""
    if not isinstance(model, str) or not model.strip() or len(model) > 4096:
        raise FieldError("model", f"must be a Hugging Face id, a config.json or a model folder, got {quote(model)}.")
    revision = check_revision(revision)
    bundled = bundled_for(model, revision)
    if bundled is not None:
        entry, spec = load_bundled(bundled, transformers)
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
        return from_path(path, raw_out, quantization, transformers)
    address = HUB_ADDRESS.fullmatch(model.strip())
    if address and HUB_ID.match(address["id"]):
        raise KvplanError(f"MODEL {quote(model)} is a Hub address; give the model's id, {address['id']} (owner/name).")
    if looks_like_path(model):
        raise KvplanError(f"MODEL {quote(model)} does not exist; give a config.json, a model folder or a Hub id.")
    if ".." in model or not HUB_ID.match(model):
        raise KvplanError(f"MODEL {quote(model)} is not a Hugging Face id (owner/name) nor an existing path."
                          f"{did_you_mean(model)}")
    return from_hub(model, revision, raw_out, hub_timeout, quantization, transformers)
