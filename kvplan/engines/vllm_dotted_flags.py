"""vLLM's dotted JSON arguments: `--speculative-config.method ngram` is `--speculative-config '{"method": "ngram"}'`.

FlexibleArgumentParser.parse_args folds every argument whose name holds a `.` into its flag's JSON object: the name
before the first `.` is the flag, the rest the keys (nested: `--x.a.b 1` is {"a": {"b": 1}}), the value after `=`
or the next argument; the arguments of one name as typed merge into one object (a list given twice joined, from
0.9.2), appended after all the others as `--x '{...}'` in the order of their first key, so the last replaces the
same flag given whole or under its other name (-cc; argparse keeps the last). By release:

- DOTTED_SINCE 0.9.0: names starting `--` only, the value kept as text (utils.py 0.9.0:1452-1466, 0.9.1:1508-1522;
  0.8.5 has no fold, argparse stops on the name: "unrecognized arguments"). What the text becomes is the target's:
  0.9.0's configs are stdlib dataclasses (config.py 0.9.0:14; CompilationConfig.from_cli cls(**json.loads(value)),
  0.9.0:3910-3914), so "3" stays a str; 0.9.1's are pydantic dataclasses (config.py 0.9.1:27) validated in lax
  mode, so "3" is 3 and "false" False where the field is a number or bool (CompilationConfig.from_cli's
  TypeAdapter.validate_json, 0.9.1:4047-4051; SpeculativeConfig.from_dict; MultiModalConfig.limit_per_prompt
  dict[str, int], 0.9.1:2997), but not num_speculative_tokens (SkipValidation[int], 0.9.1:2352) nor
  mm_processor_kwargs (dict[str, object], 0.9.1:3007), and a list, object or null given as text is refused
  ("Input should be a valid array"). kvplan refuses the text where the release keeps it text.
- 0.9.2: any name starting `-` (so `-O.level=3`), the value read as JSON where it parses (else text), and a name
  ending `+` takes a comma list (utils/__init__.py 0.9.2:1556-1580, 0.11.0:1943-1967, utils/argparse_utils.py
  0.34.0:452-485).
- `-O.x` is the compilation config up to 0.11 (-O is --compilation-config); 0.12 rewrites it to `-cc.x` with a
  deprecation warning (utils/argparse_utils.py 0.12.0:260-270); from 0.13 `-O<anything>` is --optimization-level
  (0.13.0:247-251), so `-O.x` stops ("invalid choice"). `-cc`, the compilation config's short flag, from 0.12.
- 0.20 reads a value that is no JSON as vLLM's human-readable integer first (1k; utils/argparse_utils.py 0.24.0:
  404-412; absent from 0.19.0's), and the whole JSON's bare 1k too (engine/arg_utils.py
  _expand_json_human_readable_numbers); kvplan's JSON flags take no such number, so kvplan refuses it.
"""

from __future__ import annotations

import json
from typing import Optional

DOTTED_SINCE = (0, 9)
DASH_SINCE = (0, 9, 2)  # single-dash names (-O.x), JSON values, `+` lists
CC_SINCE = (0, 12)
COERCED_SINCE = (0, 9, 1)  # pydantic dataclasses, lax: a number's / bool's text read as one (module docstring)
# the dotted keys whose text 0.9.1 validates as no number (flag -> its keys; None: every key)
UNVALIDATED = {"--mm-processor-kwargs": None, "--speculative-config": ("num_speculative_tokens",)}
O_DOTTED_UNTIL = (0, 13)


def release_text(version: tuple) -> str:
    """A release as a tuple, written as vLLM's: (0, 9, 2) -> "0.9.2"."""
    return ".".join(map(str, version))


_dotted = release_text


def split(arg: str) -> Optional[tuple]:
    """(flag, keys, value or None) of a dotted argument (`--x.a.b=1`: ('--x', ['a', 'b'], '1')), else None."""
    if not arg.startswith("-"):
        return None
    name, equals, value = arg.partition("=")
    if "." not in name:
        return None
    head, *keys = name.split(".")
    return head, keys, (value if equals else None)


def fold(args: list, heads: dict) -> list:
    """`args` with the dotted arguments of the flags `heads` ({spelling: flag}) folded into one `flag JSON` each,
    after the others, as vLLM's parser does (module docstring); a dotted argument of another flag is left as typed."""
    kept, objects, index = [], {}, 0
    while index < len(args):
        arg, parts = args[index], split(args[index])
        index += 1
        if parts is None or parts[0] not in heads or not parts[1] or not all(parts[1]):
            kept.append(arg)
            continue
        head, keys, value = parts
        if value is None:
            if index >= len(args):
                kept.append(arg)  # no value after it: click says so
                continue
            value, index = args[index], index + 1
        if keys[-1].endswith("+"):
            keys[-1], parsed = keys[-1][:-1], value.split(",")
        else:
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = value
        # one object per name as typed (0.12 reads -O.x as -cc.x), each after the others in the order of its first
        # key: -cc.x and --compilation-config.y are two, of which the flag keeps the last, as argparse does
        target = objects.setdefault("-cc" if head == "-O" else head, (heads[head], {}))[1]
        for key in keys[:-1]:
            if not isinstance(target.get(key), dict):
                target[key] = {}
            target = target[key]
        if isinstance(parsed, list) and isinstance(target.get(keys[-1]), list):
            parsed = target[keys[-1]] + parsed  # a list given twice is joined (recursive_dict_update)
        target[keys[-1]] = parsed
    for flag, value in objects.values():
        kept += [flag, json.dumps(value)]
    return kept


def refusal(arg: str, value: Optional[str], version: str) -> Optional[str]:
    """The sentence refusing the dotted argument `arg` (its name as typed; `value` its value) where vLLM `version`
    does not fold it so; None where it does."""
    from .vllm_versions import parse_version

    release = parse_version(version)
    name = arg.partition("=")[0]
    head = name.split(".")[0]
    flag = "--compilation-config" if head in ("-O", "-cc") else head
    whole = f"write {flag} with the JSON object"
    if release < DOTTED_SINCE:
        return (f"{name} needs vLLM {_dotted(DOTTED_SINCE)} or later, whose parser folds dotted keys into the JSON "
                f"(vllm=={version} stops on it: \"unrecognized arguments\"); {whole}.")
    if head == "-O" and release >= O_DOTTED_UNTIL:
        return (f"{name}: from vLLM 0.12 -O is --optimization-level and from 0.13 -O.<key> is read as one "
                f"(vllm=={version} stops on it); write -cc.{name.split('.', 1)[1]} or --compilation-config.")
    if head == "-cc" and release < CC_SINCE:
        return f"{name} needs vLLM 0.12 or later (-cc came with it); write -O.{name.split('.', 1)[1]} or {flag}."
    if release < DASH_SINCE and not name.startswith("--"):
        return (f"{name} needs vLLM {_dotted(DASH_SINCE)} or later (vllm=={version} folds only names starting "
                f"--); {whole}.")
    if release < DASH_SINCE and (name.endswith("+") or (_not_text(value) and not _coerced(name, value, release))):
        return (f"{name}: vllm=={version} keeps a dotted key's value as text (it reads JSON from "
                f"{_dotted(DASH_SINCE)}), so {value} would not be a number or list there; {whole}.")
    return None


def _coerced(name: str, value: str, release: tuple) -> bool:
    """Whether vLLM `release` (0.9.0-0.9.1) reads the text `value` of the dotted key `name` as the number or bool
    JSON reads it as (module docstring): from 0.9.1, where the field validates it."""
    from .vllm_underscore_flags import dashed

    head, *keys = dashed(name).split(".")
    try:
        parsed = json.loads(value)
    except ValueError:
        return False
    unvalidated = UNVALIDATED.get(head, ())
    one_level = head != "--limit-mm-per-prompt" or len(keys) == 1  # dict[str, int]: a nested key is an object
    return (release >= COERCED_SINCE and isinstance(parsed, (int, float)) and one_level
            and unvalidated is not None and keys[0] not in unvalidated)


def _not_text(value: Optional[str]) -> bool:
    try:
        return not isinstance(json.loads(value), str) if value is not None else False
    except ValueError:
        return False
