"""How vLLM reads the text of --compilation-config / -O before it is a CompilationConfig, by release, and which of
several given it keeps (vllm_compilation.py reads the fields).

The text (config_value):
- 0.6.5-0.8.5: CompilationConfig.from_cli: exactly "0", "1", "2" or "3" is the level, anything else
  ast.literal_eval'd and model_validate'd (config.py 0.6.5:2703-2709, 0.7.3:2973-2979, 0.8.0:3137-3143,
  0.8.5:3529-3535), so a Python dict literal ({'level': 3}, True, None, a trailing comma) is taken and JSON's true /
  false / null are not (literal_eval's "malformed node"); a bare number other than the four, " 3" or a list is
  not a dict: pydantic refuses it.
- 0.9.0: "0".."3" the level, else `cls(**json.loads(value))` (config.py 0.9.0:3910-3914): a JSON object.
- 0.9.1: "0".."3" the level, else TypeAdapter(CompilationConfig).validate_json (config.py 0.9.1:4047-4051).
- 0.9.2 on: validate_json alone (config.py 0.9.2:4165-4169; engine/arg_utils.py 0.10.1:187-189, 0.11.0:198-200,
  0.12.0:276-278 parse_dataclass): a JSON object; a bare level is vllm_compilation._object's to refuse.
A YAML mapping or an API dict is kvplan's own structure, no text: any release takes it.

Which is kept (last_given), before 0.12, where --compilation-config and -O are one argparse argument
(engine/arg_utils.py 0.6.5:914-916, 0.9.2:915-916, 0.10.1:850-851, 0.11.0:934-935, 0.11.1:1148-1149), whose
`type` parses every value given and whose dest keeps the last (argparse's store):
- up to 0.9.1 in the order typed; 0.9.0-0.9.1 fold `--compilation-config.k v` into one object after the others
  (vllm_dotted_flags.py).
- 0.9.2-0.11.x: FlexibleArgumentParser.parse_args first rewrites -O3, -O=3 and `-O 3` (0-3 alone) to
  `-O.level=3` (utils/__init__.py 0.9.2:1504-1514, 0.11.0:1891-1901), so the level joins the -O.k keys in one
  `-O {...}` placed after every plain argument, in the order of each flag's first dotted key (0.9.2:1548-1577):
  `-O 3 --compilation-config '{...}'` and `--compilation-config '{...}' -O 3` both keep {"level": 3} alone.
- 0.12 on: -O is --optimization-level, a separate dest (vllm_compilation.resolve reads the two together).
A value that is not kept is still parsed, so it is still refused where the release refuses it.
"""

from __future__ import annotations

import ast
import json
from typing import Optional

from ..errors import FieldError, quote
from .vllm_dotted_flags import fold, release_text

LEVELS = ("0", "1", "2", "3")
LITERAL_UNTIL = (0, 9)  # the first release whose from_cli reads JSON, not a Python literal
BARE_LEVEL_UNTIL = (0, 9, 2)  # the first release whose --compilation-config takes no bare level
LEVEL_REWRITE_SINCE = (0, 9, 2)  # -O3 / -O 3 read as -O.level=3
ONE_FLAG_UNTIL = (0, 12)  # from 0.12 -O is --optimization-level
FLAG_NAMES = ("--compilation-config", "-O")
EXAMPLE = '{"cudagraph_mode": "PIECEWISE"}'


def config_value(value, release: Optional[tuple] = None) -> Optional[str]:
    """--compilation-config / compilation_config as vLLM `release` (None: the newest) reads it: a level 0-3 as the
    number's text (for resolve, which refuses it where the release does), else canonical JSON of the object; a dict
    (a YAML mapping, an API value) as it is. FieldError for text the release's parser refuses."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3:
        return str(value)
    if isinstance(value, str):
        value = _read(value, release)
        if isinstance(value, int):
            return str(value)
    if not isinstance(value, dict):
        raise FieldError("compilation_config", f"takes a JSON object of CompilationConfig fields (e.g. "
                                               f"'{EXAMPLE}'), got {quote(value)}.")
    try:
        return json.dumps(value, sort_keys=True, default=_plain)
    except (TypeError, ValueError):  # keys of mixed types, a value JSON has no form for
        raise FieldError("compilation_config", f"{quote(value)} holds keys or values no CompilationConfig field "
                                               f"takes; give field names and JSON values.") from None


def engine_config_value(value, engine) -> Optional[str]:
    """config_value for the release vLLM `engine` names (vllm, vllm==X, none), its engine read only where a value is
    given (a bad engine is its own field's error, in its own turn)."""
    return None if value is None else config_value(value, release_of(engine))


def _plain(value):
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(type(value).__name__)


def _read(text: str, release: Optional[tuple]):
    """The object (or a level, an int) `text` is to vLLM `release`'s reader (module docstring)."""
    newest = release is None or release >= BARE_LEVEL_UNTIL
    if text.strip() in LEVELS and (newest or text in LEVELS):  # " 3": no level to from_cli, nor JSON's object
        return int(text)
    if release is not None and release < LITERAL_UNTIL:
        try:
            value = ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            value = None
        if isinstance(value, dict):
            return value
        raise FieldError("compilation_config", f"takes a level 0, 1, 2 or 3 or a Python dict literal in vLLM "
                                               f"{release_text(release)} (its from_cli reads the text with "
                                               f"ast.literal_eval: \"{{'cudagraph_mode': 'PIECEWISE'}}\", True / "
                                               f"False / None, not JSON's true / false / null), got {quote(text)}.")
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict):
        return value
    levels = " or a level 0, 1, 2 or 3" if release is not None and release < BARE_LEVEL_UNTIL else ""
    where = f" in vLLM {release_text(release)}" if release is not None else ""
    raise FieldError("compilation_config", f"takes a JSON object of CompilationConfig fields{levels}{where} (e.g. "
                                           f"'{EXAMPLE}'), got {quote(text)}.")


def compilation_args(args: list) -> list:
    """The compilation config's arguments among `args` (a command line, up to `--`), with their values, in order:
    --compilation-config (as typed with underscores too, =, dotted keys) and -O in each of its forms."""
    cut = args.index("--") if "--" in args else len(args)
    picked, index = [], 0
    while index < cut:
        arg = args[index]
        name = arg.partition("=")[0]
        if name.startswith("--"):
            head = name.split(".")[0].replace("_", "-")
            arg = head + arg[len(name.split(".")[0]):]
        else:
            head = name.split(".")[0][:2]
        index += 1
        if head not in FLAG_NAMES:
            continue
        picked.append(arg)
        takes_next = "=" not in arg and (arg in FLAG_NAMES or "." in arg)  # -O3 carries its value
        if takes_next and index < cut:
            picked.append(args[index])
            index += 1
    return picked


def last_given(args: list, release: tuple) -> Optional[list]:
    """The values vLLM `release` (before 0.12) parses for its one --compilation-config / -O argument, in the order
    it parses them (the last is kept), from the command line `args`; None from 0.12 or where none is given."""
    given = given_by_flag(args, release)
    return None if given is None else [value for _, value in given]


def given_by_flag(args: list, release: tuple) -> Optional[list]:
    """last_given's values as (the flag that gave it, --compilation-config or -O; the value)."""
    picked = compilation_args(args)
    if release >= ONE_FLAG_UNTIL or not picked:
        return None
    rewritten, index = [], 0
    while index < len(picked):
        arg = picked[index]
        level_form = arg.startswith("-O") and not arg.startswith("-O.")
        if release >= LEVEL_REWRITE_SINCE and arg == "-O" and index + 1 < len(picked) \
                and picked[index + 1] in LEVELS:
            arg = "-O.level"
        elif release >= LEVEL_REWRITE_SINCE and level_form and arg != "-O":
            arg = "-O.level=" + arg[3:] if arg[2:3] == "=" else "-O.level=" + arg[2:]
        rewritten.append(arg)
        index += 1
    heads = {name: name for name in FLAG_NAMES} if release >= LEVEL_REWRITE_SINCE else {FLAG_NAMES[0]: FLAG_NAMES[0]}
    folded = fold(rewritten, heads)
    values, index = [], 0
    while index < len(folded):
        arg = folded[index]
        index += 1
        if arg in FLAG_NAMES:
            if index < len(folded):
                values.append((arg, folded[index]))
                index += 1
        elif arg.startswith("--compilation-config="):
            values.append((FLAG_NAMES[0], arg.partition("=")[2]))
        elif arg.startswith("-O"):  # -O3, -O=3: argparse's attached value (up to 0.9.1)
            values.append(("-O", arg[3:] if arg[2:3] == "=" else arg[2:]))
    return values or None


def release_of(engine) -> Optional[tuple]:
    """The release `engine` names (vllm, vllm==X; None: the newest) as a tuple; None for engine none."""
    from .vllm_engine import _release
    from .vllm_versions import parse_version

    version = _release(engine)
    return None if version is None else parse_version(version)
