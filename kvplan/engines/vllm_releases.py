"""The names --engine vllm==<release> takes: a vLLM release published on PyPI that kvplan models (0.2.0 to
vllm_versions.NEWEST), or a minor series of them (0.10: its .0 release's rules, as before).

PUBLISHED is data, not a rule: `pip index versions vllm` of 2026-12-05 (PyPI's index), 0.2.0 to 0.34.0; 0.2.1 was
published only as 0.2.1.post1. A four-part release (0.9.0.1, 0.10.1.1) or a post-release (0.8.5.post1) is a fix of
its three-part base and takes the base's rules (vllm_versions.parse_version drops the fourth part), but for a rule
written with a four-part boundary (vllm_versions.in_span / release_rule order a fix after its base: release_order).
Diffing every published fix against its base (all of vllm/*.py from the wheels), the rules kvplan models that differ:
- 0.5.3.post1: the RoPE types that leave the length alone are 0.5.4's, "llama3" in place of "extended", and a
  "rope_type" key is read (config.py 0.5.3:1497-1499 against 0.5.3.post1:1486-1497): vllm_rope_len.SKIPPED_BY_RELEASE.
- 0.6.1.post1 (so post2 too): V0 keeps chunked prefill off for a multimodal model (engine/arg_utils.py
  0.6.1.post1:887; 0.6.1 has no such test): vllm_v0_chunked.KEEPS_OFF.
- 0.6.3.post1: a list of windows is interleaved attention, turned off with the length capped to its smallest, and
  Gemma 2's warning says "has interleaved attention" (config.py 0.6.3.post1:176-190, :1708-1715, :1796-1799):
  vllm_window_list.CRASHES_BEFORE, vllm_gemma2_window.WARNINGS; a factor-less RoPE entry scales
  by 1 (:1754; vllm_rope_len.py says 0.6.4, which kvplan's output does not tell apart: before, not modelled).
No other: 0.4.0.post1, 0.5.0.post1, 0.6.1.post2 (against post1), 0.6.4.post1, 0.6.6.post1, 0.8.5.post1, 0.9.0.1 and
0.10.1.1 change runtime code, help texts and flags kvplan does not take (--lora-dtype float32 in 0.6.4.post1, the
VLLM_USE_FLASHINFER_SAMPLER default of 0.6.6.post1's V1, which kvplan does not plan before 0.8).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Optional

PUBLISHED = (
    "0.2.0", "0.2.1.post1", "0.2.2", "0.2.3", "0.2.4", "0.2.5", "0.2.6", "0.2.7",
    "0.3.0", "0.3.1", "0.3.2", "0.3.3",
    "0.4.0", "0.4.0.post1", "0.4.1", "0.4.2", "0.4.3",
    "0.5.0", "0.5.0.post1", "0.5.1", "0.5.2", "0.5.3", "0.5.3.post1", "0.5.4", "0.5.5",
    "0.6.0", "0.6.1", "0.6.1.post1", "0.6.1.post2", "0.6.2", "0.6.3", "0.6.3.post1", "0.6.4", "0.6.4.post1", "0.6.5",
    "0.6.6", "0.6.6.post1",
    "0.7.0", "0.7.1", "0.7.2", "0.7.3",
    "0.8.0", "0.8.1", "0.8.2", "0.8.3", "0.8.4", "0.8.5", "0.8.5.post1",
    "0.9.0", "0.9.0.1", "0.9.1", "0.9.2",
    "0.10.0", "0.10.1", "0.10.1.1", "0.10.2",
    "0.11.0", "0.11.1", "0.11.2", "0.12.0", "0.13.0", "0.14.0", "0.14.1", "0.15.0", "0.15.1", "0.16.0", "0.17.0",
    "0.17.1", "0.18.0", "0.18.1", "0.19.0", "0.19.1", "0.20.0", "0.20.1", "0.20.2", "0.21.0", "0.22.0", "0.22.1",
    "0.23.0", "0.24.0", "0.25.0", "0.25.1", "0.26.0", "0.27.0", "0.27.1", "0.28.0", "0.29.0", "0.30.0", "0.31.0",
    "0.32.0", "0.33.0", "0.34.0",
)
SERIES = frozenset(name.rsplit(".", 1)[0] for name in PUBLISHED if name.count(".") == 2 and name.endswith(".0"))
# X.Y, X.Y.Z, X.Y.Z.N or X.Y.Z.postN, as PyPI names vLLM's releases
RELEASE_FORM = re.compile(r"([0-9]{1,4})\.([0-9]{1,4})(?:\.([0-9]{1,4})(?:\.([0-9]{1,4})|\.post([0-9]{1,4}))?)?",
                          re.ASCII)
# the rule in words: whole (a refusal of the release) and short (the engine lists)
ACCEPTED = (f"a release published on PyPI from {PUBLISHED[0]} to {PUBLISHED[-1]} (0.32.0, 0.10.1.1, 0.8.5.post1) "
            f"or a minor series of them (0.10)")
SPAN = f"published from {PUBLISHED[0]} to {PUBLISHED[-1]}"


def release_parts(text) -> Optional[tuple]:
    """(major, minor) or (major, minor, patch) of a release name, None when it is not written as one; a four-part or
    post-release is its base's (0.10.1.1 -> (0, 10, 1), 0.8.5.post1 -> (0, 8, 5))."""
    return _release_parts(str(text).strip())


@lru_cache(maxsize=1024)  # one plan's rules ask for the same few names hundreds of times
def _release_parts(name: str) -> Optional[tuple]:
    match = RELEASE_FORM.fullmatch(name)
    if match is None:
        return None
    return tuple(int(part) for part in match.groups()[:3] if part is not None)


def release_order_parts(text) -> Optional[tuple]:
    """release_parts with a four-part or post-release's number after its base's (0.10.1.1 -> (0, 10, 1, 1),
    0.6.1.post2 -> (0, 6, 1, 2)): the key that orders a fix after its base and before the next release."""
    return _release_order_parts(str(text).strip())


@lru_cache(maxsize=1024)
def _release_order_parts(name: str) -> Optional[tuple]:
    match = RELEASE_FORM.fullmatch(name)
    if match is None:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def published(text) -> bool:
    """Whether `text` names a release in PUBLISHED (0.10.01 is 0.10.1, as pip reads it) or a minor series of them."""
    match = RELEASE_FORM.fullmatch(str(text).strip())
    if match is None:
        return False
    major, minor, patch, fourth, post = (None if part is None else int(part) for part in match.groups())
    if patch is None:
        return f"{major}.{minor}" in SERIES
    tail = f".{fourth}" if fourth is not None else f".post{post}" if post is not None else ""
    return f"{major}.{minor}.{patch}{tail}" in PUBLISHED


def canonical(text) -> str:
    """The published spelling of a name `published` takes (' 0.32.0' -> '0.32.0', '0.10.01' -> '0.10.1', '0.10'
    stays a series), so the engine's version is written as PyPI writes it; `text` stripped where it names none."""
    match = RELEASE_FORM.fullmatch(str(text).strip())
    if match is None:
        return str(text).strip()
    major, minor, patch, fourth, post = (None if part is None else int(part) for part in match.groups())
    if patch is None:
        return f"{major}.{minor}"
    tail = f".{fourth}" if fourth is not None else f".post{post}" if post is not None else ""
    return f"{major}.{minor}.{patch}{tail}"


def nearest_published(text) -> tuple:
    """The published releases nearest an unpublished name inside PUBLISHED's span: those of its own base where there
    are any (0.2.1 -> ('0.2.1.post1',)), else the last before and the first after it (0.34.99 -> ('0.34.0',));
    () where `text` is no release name or lies outside the span (before 0.2.0, past the newest minor series)."""
    parts = release_parts(text)
    if parts is None or len(parts) < 3 or parts[:2] > release_parts(PUBLISHED[-1])[:2]:
        return ()  # a later minor series than the newest (0.35.0) is outside, not unpublished
    same = tuple(name for name in PUBLISHED if release_parts(name) == parts)
    if same:
        return same
    before = [name for name in PUBLISHED if release_parts(name) < parts]
    after = [name for name in PUBLISHED if release_parts(name) > parts]
    if not before:
        return ()
    return (before[-1],) + ((after[0],) if after else ())
