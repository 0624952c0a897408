"""Errors kvplan's callers turn into one line (exit code 2 on the command line).

The core never names a command-line flag: a problem with an input carries the field it is about
(`FieldError("tp", "must be a positive integer, got 0.")`), and whoever asked spells the field its own way:
the CLI as `--tp`, a deployments file as `deploy.yaml:4: deployment 'chat' field 'tp'`, the Python API as `tp`.
A message that names other fields besides its own (a remedy: "set max_num_batched_tokens to 2400") lists them, and
`respelled` writes them the caller's way too, the one path every message takes (engines/figures.py Refusal as well,
and RefusedInput: a refusal of the input worded with vLLM's flags, which it lists).
"""

from __future__ import annotations

import base64
import contextvars
import json
import re
import reprlib
from contextlib import contextmanager
from typing import Callable, Iterable

MAX_QUOTED = 80  # characters of a user's value an error message repeats


class KvplanError(Exception):
    """Bad input (config, option, model id, missing GPU...). The message is one sentence that says what is
    at fault and what would be valid; the CLI prints it and exits 2, never a traceback."""


class FieldError(KvplanError):
    """A bad value of one named input field. `problem` reads after the field's name."""

    def __init__(self, field: str, problem: str, names: tuple = ()):
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem
        self.names = names  # the other fields `problem` names, by their keys, or as (key, as written) pairs

    def spelled(self, name: str, spell: Callable[[str], str] = str) -> str:
        """The message with the field written as the caller knows it (a flag, a file key), and the other fields
        it names as `spell` writes them."""
        return f"{name} {self.problem_as(spell)}"

    def problem_as(self, spell: Callable[[str], str]) -> str:
        """`problem` with the other fields it names written as `spell` writes them."""
        return respelled(self.problem, ((key, key) if isinstance(key, str) else key for key in self.names), spell)


class RefusedInput(KvplanError):
    """Input that vLLM refuses (or kvplan does not plan), said in a sentence of kvplan's that names the inputs by the
    flags vLLM spells them ("vLLM 0.32.0 refuses --pooler-config pooling_type 5: ..."): `flags`, ((field, flag as
    written), ...), are written the caller's way by `spelled`, as Refusal.advice writes a remedy's (the command line
    prints the sentence as it is); `field`: the input at fault, whose line a deployments file's error names."""

    def __init__(self, text: str, flags: tuple = (), field: str = ""):
        super().__init__(text)
        self.text, self.flags, self.field = text, tuple(flags), field

    def spelled(self, spell: Callable[[str], str] = str) -> str:
        return respelled(self.text, self.flags, spell)


def respelled(text: str, written: Iterable, spell: Callable[[str], str]) -> str:
    """`text` with each (field, as written) of `written` written as `spell` names the field: kvplan's words only,
    so a double-quoted span (an engine's own message, quoted) keeps its names as the engine wrote them. A name counts
    only as a word of its own (WORD_BEFORE, WORD_AFTER): not inside a path ('/data/max_num_seqs/cfg.json') or a
    code span (`max_num_batched_tokens`, the engine's setting named as the engine names it)."""
    pairs = tuple(written)
    parts = text.split('"')
    for index in range(0, len(parts), 2):  # the even parts lie outside the quotes
        for field, as_written in pairs:
            parts[index] = re.sub(rf"{WORD_BEFORE}{re.escape(as_written)}{WORD_AFTER}", lambda _: spell(field),
                                  parts[index])
    return '"'.join(parts)


# what may stand either side of a name respelled says it is a word of its own: the start, a space or an opening
# parenthesis before; the end, a space, a closing parenthesis, a colon or semicolon after, or a full stop or comma
# that ends the word (not a file's suffix: 'max_num_seqs.json')
WORD_BEFORE, WORD_AFTER = r"(?<![^\s(])", r"(?=$|[\s);:]|[.,](?:\s|$))"


def json_kind(value) -> str:
    """What a value read from JSON is, in JSON's words (null, a boolean, a number, a string, an array, an object), for
    errors about a file the user wrote: Python's type names (NoneType, list) are not theirs."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, (list, tuple)) else "an object" if isinstance(value, dict) else \
        f"a {type(value).__name__}"


def json_value(value, limit: int = MAX_QUOTED) -> str:
    """A value read from a JSON file (config.json, a quantization_config), written as JSON writes it (true, null,
    "text", ["a", null], {"a": 1}), for errors about a file the user wrote: Python's repr (True, None, 'text') is not
    theirs. Bounded as quote() is: a few levels and items deep, cut to `limit` characters."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return quote(value, limit)
    return _bounded(_JsonRepr(), value, limit, f"<{json_kind(value)}>", "##\\u005b")


def _bounded(walker, value, limit: int, fallback: str, escaped: str) -> str:
    """`walker`'s repr of `value` a few levels and items deep, `##[` (a GitHub Actions workflow command anywhere in a
    log line) written `escaped`, cut to `limit` characters; `fallback` where the walk fails."""
    walker.maxlevel, walker.maxstring, walker.maxother, walker.maxlong = 3, limit, limit, limit
    walker.maxdict = walker.maxlist = walker.maxtuple = walker.maxset = 6
    try:
        text = walker.repr(value)
    except (RecursionError, ValueError):
        text = fallback
    text = text.replace("##[", escaped)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class _JsonRepr(reprlib.Repr):
    """reprlib's bounded walk, each leaf and container spelled as JSON spells it (objects in their own order)."""

    def repr_str(self, x, level):
        return json.dumps(x[:self.maxstring], ensure_ascii=False)

    def repr_bool(self, x, level):
        return "true" if x else "false"

    def repr_NoneType(self, x, level):  # reprlib dispatches on the type's name
        return "null"

    def repr_float(self, x, level):
        return json.dumps(x)

    def repr_tuple(self, x, level):
        return self.repr_list(list(x), level)

    def repr_dict(self, x, level):
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        pieces = [f"{self.repr1(key, level - 1)}: {self.repr1(x[key], level - 1)}" for key in list(x)[:self.maxdict]]
        return "{" + ", ".join(pieces + (["..."] if len(x) > self.maxdict else [])) + "}"


def quote(value, limit: int = MAX_QUOTED) -> str:
    """repr() of a user's value, cut to `limit` characters: an error must stay one short line, and cost little
    to write, whatever the input (a billion-laughs YAML value, a 4,000-digit integer, a megabyte string).
    Containers are shown a few levels and items deep only; `##[`, which GitHub Actions reads as a workflow
    command anywhere in a log line, is written with repr's escape for '['."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"<an integer of {len(str(abs(value))) if value.bit_length() < 10000 else 'thousands of'} digits>"
    if isinstance(value, str):
        value = value[:limit]
    walker = _YamlRepr() if _YAML_VALUES.get() else reprlib.Repr()
    return _bounded(walker, value, limit, f"<a {type(value).__name__}>", "##\\x5b")


_YAML_VALUES = contextvars.ContextVar("kvplan_yaml_values", default=False)


@contextmanager
def values_as_yaml():
    """Within it, quote() writes a value read from a YAML file (a deployments file) as YAML writes it: true, null,
    2024-01-01, !!binary aGk=, [null], not Python's True, None, datetime.date(2024, 1, 1), b'hi', [None]. Strings
    keep repr's quotes, which YAML reads alike."""
    token = _YAML_VALUES.set(True)
    try:
        yield
    finally:
        _YAML_VALUES.reset(token)


class _YamlRepr(reprlib.Repr):
    """reprlib's bounded walk with YAML's spelling of the scalars Python spells otherwise (reprlib dispatches on
    the type's name)."""

    def repr_NoneType(self, x, level):
        return "null"

    def repr_bool(self, x, level):
        return "true" if x else "false"

    def repr_date(self, x, level):
        return x.isoformat()

    def repr_datetime(self, x, level):
        return x.isoformat(sep=" ")

    def repr_bytes(self, x, level):
        return "!!binary " + base64.b64encode(x[:self.maxstring]).decode("ascii")

    def repr_tuple(self, x, level):
        return self.repr_list(list(x), level)
