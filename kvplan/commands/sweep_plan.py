"""Which plan of a sweep a refusal is about: an input refused while one plan is planned (vLLM's rules refusing only
the plans that run V0, or only those that run V1) names that plan's swept values, in the caller's spellings, inside
the one sentence; a run of one plan keeps the sentence as it was."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

from ..errors import FieldError, KvplanError, RefusedInput


@contextmanager
def naming_plan(values: tuple, spell: Callable[[str], str]):
    """Within it, a FieldError, RefusedInput or plain KvplanError gains "(the plan at FLAG VALUE ...)" before its
    full stop; `values`: ((field, value), ...) of the fields the sweep gives more than one value (none: unchanged)."""
    if not values:
        yield
        return
    written = tuple((field, spell(field)) for field, _ in values)
    words = " ".join(f"{flag} {value}" for (_, flag), (_, value) in zip(written, values))
    try:
        yield
    except FieldError as exc:  # the caller respells the flags as it writes the field (FieldError.names)
        raise FieldError(exc.field, at_plan(exc.problem, words), tuple(exc.names) + written) from None
    except RefusedInput as exc:
        raise RefusedInput(at_plan(exc.text, words), exc.flags + written, exc.field) from None
    except KvplanError as exc:
        if type(exc) is not KvplanError:  # a subclass carries more than its sentence: left as raised
            raise
        raise KvplanError(at_plan(str(exc), words)) from None


def at_plan(sentence: str, words: str) -> str:
    """`sentence` with "(the plan at `words`)" before its closing full stop: still one sentence."""
    body, stop = (sentence[:-1], ".") if sentence.endswith(".") else (sentence, "")
    return f"{body} (the plan at {words}){stop}"
