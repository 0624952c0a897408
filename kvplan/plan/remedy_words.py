"""Remedies in words, each a tuple of (field, value) changes said with the fields as the caller spells them: check's
list (options_in_words), estimate's (options_said_whole: Plan.suggestion, plan.fits_at), one option's changes
(changes_in_words) and the clause on a remedy's length (length_note)."""

from __future__ import annotations

from typing import Callable


def options_in_words(options: list, spell: Callable[[str], str], note=lambda _: "") -> str:
    """check's remedies as one list that reads one way: the changes every option shares said once ("tp 2, kv_dtype
    fp8 or context 288, each with max_num_seqs 1500"); otherwise options of several changes apart by "; or" ("tp 2;
    or kv_dtype fp8 and max_num_seqs 1500"), single ones by commas. `note`: a clause in parentheses after an option
    (length_note)."""
    shared = tuple(c for c in options[0] if all(c in o for o in options)) if len(options) > 1 else ()
    own = [tuple(c for c in o if c not in shared) for o in options]
    if not all(own):  # an option that is only the shared changes: each said whole
        shared, own = (), options
    words = [changes_in_words(changes, spell) + _parenthesised(note(whole)) for changes, whole in zip(own, options)]
    if any(len(changes) > 1 for changes in own):
        listed = "; or ".join(words)
    else:
        listed = ", ".join(words[:-1]) + (" or " if len(words) > 1 else "") + words[-1]
    return listed + (f", each with {changes_in_words(shared, spell)}" if shared else "")


# Unlike check's options_in_words, estimate's suggestion says every option whole (no shared changes said once) and
# lists single changes by " or ", not commas: its words as estimate has always printed them.
def options_said_whole(options, spell: Callable[[str], str] = str, note: Callable[[tuple], str] = lambda _: "") \
        -> str:
    """estimate's remedies as one list: "tp 2 or kv_dtype fp8"; options of several changes apart by "; or" ("tp 8 and
    kv_dtype fp8; or context 4096"). `note`: a clause in parentheses after an option (length_note)."""
    words = [changes_in_words(option, spell) + _parenthesised(note(option)) for option in options]
    return ("; or " if any(len(option) > 1 for option in options) else " or ").join(words)


def changes_in_words(changes: tuple, spell: Callable[[str], str]) -> str:
    """((tp, 2), (max_num_seqs, 1500)) as "tp 2 and max_num_seqs 1500", each field as `spell` writes it."""
    return " and ".join(_change_in_words(field, value, spell) for field, value in changes)


def _change_in_words(field: str, value, spell: Callable[[str], str]) -> str:
    if field == "language_model_only":  # a switch: its name alone
        return f"{spell(field)} (text only: no vision tower)"
    return f"{spell(field)} {value}"


def _parenthesised(clause: str) -> str:
    return f" ({clause})" if clause else ""


def length_note(figures, asked: int) -> Callable[[tuple], str]:
    """For a list of remedies: the clause on a remedy's length where the engine refused `asked` tokens for memory
    quoting an estimate of its own that differs (engines/vllm_estimate_gap.py), "" on every other option."""
    from ..engines.vllm_estimate_gap import estimate_gap_words

    def note(option: tuple) -> str:
        length = dict(option).get("context")
        return estimate_gap_words(figures, asked, length) if length is not None else ""
    return note
