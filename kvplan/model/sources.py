"""MODEL -> ModelSpec: a bundled spec, a local config.json or model folder, or the Hugging Face Hub. This module
and the three it leans on (bundled.py, files.py, hub.py) are the only ones touching files and the Hub; they hand
raw configs to the one parser.

Which source a MODEL names (in this order):
0. A config.json given as the object it holds (the Python API's model=<dict>, as a ConfigObject): read by the one
   parser as that file would be, and nothing else: no file beside it (hf_quant_config.json, a quantize_config.json,
   modules.json, checkpoint shards) can exist for it, and neither the Hub nor its cache is asked.
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

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Union

from ..errors import FieldError, KvplanError, quote
from .bundled import bundled_files, bundled_names, did_you_mean, find_bundled, load_bundled, spec_dir
from .files import (MAX_JSON_BYTES, MAX_JSON_DEPTH, json_names, load_json, local_weights, parse_json, read_regular,
                    weights_from_counts)
from .hub import check_revision, from_hub, hub_deadline, hub_timeout_seconds
from .parse import parse_config
from .quantization import (MODELOPT_FILE, has_quantization_settings, reads_modelopt_file, settings_file_method,
                           settings_file_names, with_modelopt_file, with_settings_file)
from .spec import ModelSpec, Weights
from .st_modules import MODULES_FILE, pooling_modules, read_pooling_modes

__all__ = ["bundled_files", "bundled_names", "did_you_mean", "find_bundled", "load_bundled", "spec_dir", "load_json",
           "local_weights", "parse_json", "read_regular", "weights_from_counts", "check_revision", "from_hub",
           "hub_deadline", "hub_timeout_seconds", "resolve", "existing_path", "bundled_for", "looks_like_path",
           "from_path", "ConfigObject", "config_object", "from_object", "model_argument"]
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


UNNAMED_CONFIG = "config"  # a ConfigObject's name where its object has no _name_or_path to give


@dataclass(frozen=True)
class ConfigObject:
    """A config.json given as the object it holds (kvplan.api's model=<dict>; source 0 in the module docstring):
    `text`, the object written as JSON (what a config.json holding it would read), which resolve() reads as that
    file's, and `name`, the model's name where a path's would be (its id in the JSON, `str()` of it). Frozen and
    hashable, as a MODEL string, so that check reads it once per call (check/served.py read_model)."""

    name: str
    text: str = field(repr=False)

    def __str__(self) -> str:
        return self.name


def config_object(value: Mapping, what: str = "model") -> ConfigObject:
    """`value`, a config.json's object as Python holds it (json.load's, transformers' PretrainedConfig.to_dict()),
    as a ConfigObject: written as json.dump would write it to a file (a nested Mapping as an object, a tuple as a
    list, NaN as a file may hold it), named by its `_name_or_path` where that is non-empty text, else UNNAMED_CONFIG
    ("config"). A value no JSON file can hold (a set, a torch.dtype, an integer past Python's 4,300-digit str()
    limit, an object that holds itself) is a FieldError(`what`) naming where it sits; the fields themselves are the
    parser's to check, as a file's are."""
    if not isinstance(value, Mapping):
        raise FieldError(what, f"must be a config.json's object (a dict of its fields), got {quote(value)}.")
    name = value.get("_name_or_path")
    name = name if isinstance(name, str) and name.strip() else UNNAMED_CONFIG
    try:
        text = json.dumps(value, default=_json_object, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        raise FieldError(what, _unwritable(value)) from None
    return ConfigObject(name, text)


def _json_object(value):
    """json.dumps' hook: a Mapping that is not a dict (MappingProxyType, a transformers sub-config's dict view) is
    written as the object it is; anything else is unwritable."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(type(value).__name__)


def _unwritable(value: Mapping) -> str:
    """Why json.dumps refused `value`, after a field name: where the first item no JSON file can hold sits (its
    fields' path, 'rope_scaling.factor', 'layer_types[3]') and what it is. Walks at most MAX_JSON_DEPTH levels, which
    a readable config stays within (parse_json's limit)."""
    stack = [(value, "", 1, ())]
    while stack:
        item, path, level, inside = stack.pop()
        at = f" at {quote(path)}" if path else ""
        if isinstance(item, (Mapping, list, tuple)):
            if any(item is outer for outer in inside):
                return f"holds itself{at}, which no JSON file can; give a config.json's object."
            if level > MAX_JSON_DEPTH:
                return f"nests deeper than {MAX_JSON_DEPTH} levels{at}; a config.json has a few."
            if isinstance(item, Mapping):
                for key in item:
                    if key is not None and not isinstance(key, (str, int, float)):
                        return (f"has the key {quote(key)}{at}, which no JSON object can (its keys are text); give "
                                f"a config.json's object.")
                entries = [(item[key], f"{path}.{key}" if path else str(key)) for key in item]
            else:
                entries = [(child, f"{path}[{index}]") for index, child in enumerate(item)]
            stack.extend((child, spot, level + 1, inside + (item,)) for child, spot in reversed(entries))
            continue
        try:
            json.dumps(item, allow_nan=True)
        except ValueError:  # an int past sys.get_int_max_str_digits()
            return f"holds an integer of thousands of digits{at}, which no config field takes."
        except TypeError:
            kind = type(item)
            named = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
            return (f"holds a value of type {named}{at}, which no JSON file can (it holds text, numbers, true / "
                    f"false, null, lists and objects); give its JSON value.")
    return "cannot be written as JSON; give a config.json's object."


def from_object(config: ConfigObject, raw_out: Optional[list] = None,
                transformers: Optional[str] = None) -> ModelSpec:
    """The spec of a config.json given as its object: its JSON text read as a config.json file's (parse_json's
    bounds, then the one parser), named as `config.name`; nothing beside it is read (source 0)."""
    raw = parse_json(config.text.encode("utf-8"), f"the config {quote(config.name)}")
    if raw_out is not None:
        raw_out.append(raw)
    return parse_config(raw, config.name, transformers=transformers)


MODEL_KINDS = "a Hugging Face id, a config.json, a model folder or a config.json's object (a dict)"


def model_argument(value, what: str = "model") -> Union[str, ConfigObject]:
    """MODEL as the Python API takes it, as resolve() reads it: a Mapping (a config.json's object) as a
    ConfigObject; an os.PathLike (pathlib.Path) as its text, which is read as a path, never a Hub id nor a bundled
    spec: a relative one that could be read as an id gets ./ before it (Path('owner/name') is the folder here,
    as `./owner/name` is on the command line; its plans name it as that path, `owner/name`); text as given. Anything
    else, a bytes path included, is a FieldError(`what`)."""
    if isinstance(value, Mapping):
        return config_object(value, what)
    if isinstance(value, os.PathLike):
        text = os.fspath(value)
        if isinstance(text, str):
            return text if looks_like_path(text) else os.path.join(os.curdir, text)
    if not isinstance(value, str):
        raise FieldError(what, f"must be {MODEL_KINDS}, got {quote(value)}.")
    return value


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


def resolve(model: Union[str, ConfigObject], revision: Optional[str] = None, raw_out: Optional[list] = None,
            hub_timeout: Optional[float] = None, quantization: Optional[str] = None,
            transformers: Optional[str] = None) -> ModelSpec:
    """The spec of MODEL (sources in the order of the module docstring); `raw_out`, when given, receives the
    raw config.json it was parsed from (verify builds its forward pass from the fields the spec does not keep).
    A config.json with no quantization_config takes the hf_quant_config.json beside it (a local folder's, or the
    Hub repo's, asked for only then); `quantization` (the -q flag, unchecked here): awq / gptq also read the settings
    file vLLM reads beside a config.json with still none; a bundled spec is read from its bundled config alone (its
    Hub repo is never asked). `transformers`: whose config classes fill the fields a config leaves out
    (class_defaults.transformers_for the planned release; None: the newest). A ConfigObject (source 0) is read
    from its object alone; `revision` is checked and, as for a local path, names nothing to read."""
    if isinstance(model, ConfigObject):
        check_revision(revision)
        return from_object(model, raw_out, transformers)
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
