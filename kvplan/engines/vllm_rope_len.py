"""vLLM's RoPE scaling of the model's derived length, by release: config/model.py _get_and_verify_max_len multiplies
the length the config names (max_position_embeddings, or the window --disable-sliding-window caps it to) by the
RoPE scaling factor, so a linear factor 2 over 32,768 positions serves 65,536 tokens by default and refuses only a
longer --max-model-len. Read in the sources of every release where the rule changed (0.2.0 to 0.34.0):

- which types leave the length alone (SKIPPED_BY_RELEASE): none in 0.2.0-0.4.1 (config.py 0.2.0:390-395); "su" from
  0.4.2 (0.4.2:1134); + "longrope" 0.5.1 (0.5.1:1417-1418); "su", "longrope", "extended" in 0.5.3 (0.5.3:1497-1499);
  "su", "longrope", "llama3" from the fix 0.5.3.post1 to 0.29.x (0.5.3.post1:1497, 0.5.4:1526, 0.11.0:1847,
  0.29.0:2452: a fix's boundary, vllm_versions.release_order); from 0.30 the YaRN variants too,
  "yarn", "deepseek_yarn", "deepseek_llama_scaling" (config/model.py 0.30.0:2471-2478, 0.32.0:2595-2602,
  0.34.0:2657-2664: "YaRN variants leave max_position_embeddings already scaled").
- YaRN before 0.30 (from 0.2.2: config.py 0.2.2:442-444, 0.11.0:1860-1862, 0.12.0:2220-2221, 0.29.0:2457-2458) sets
  the length to the entry's original_max_position_embeddings, then multiplies it by the factor: Qwen's documented
  recipe (factor 4 over 32,768, max_position_embeddings 32,768) serves 131,072 tokens there, 32,768 from 0.30. The
  original is, from 0.12, the config's top-level one where it has one (0.12.0 transformers_utils/config.py:316-318
  patch_rope_parameters; transformers 5 standardize_rope_params prefers it too), else the entry's (before 0.12 the
  entry's alone: config/model.py 0.11.2:2103), else
  max_position_embeddings (transformers 5's setdefault; transformers 4 raised KeyError there, not modelled).
- Gemma 3 ("gemma3" in model_type) skips the scaling from 0.8.0 (0.8.0:2672-2674), the release that added it.
- a factor-less entry (mrope, default) scales by 1 (0.6.4:1950-1952 rope_scaling.get("factor", 1.0)); where several
  entries scale (one per layer type, 0.12 on) the last one's factor wins (0.12.0:2209-2223, 0.34.0:2655-2676); a
  null factor falls back to 1.0 with a warning from 0.18 (0.18.0:2024-2032; before, `derived *= None` raised
  TypeError: kvplan reads it as 1.0 there too, and says so).
- LongRoPE's default is the config's top-level original_max_position_embeddings, not the derived length, from
  0.11.1 (config/model.py 0.11.1:2111-2119, 0.34.0:2684-2694); a --max-model-len up to the derived length passes.
- --disable-sliding-window's cap comes first (0.34.0:2606-2612), so the window is what gets multiplied; 0.4.3-0.11.x
  refuse the pair outright, any scaled type, capped or not (NotImplementedError, 0.4.3:1217-1223,
  0.11.0:1847-1855); 0.12-0.29's YaRN replaces the capped length by original x factor.
The multiplied length is a float: the default is its int (0.34.0:2696), a longer --max-model-len is refused when
past the float (:2700), so 4,097 x 1.5 serves 6,145 and refuses 6,146 (tests/data/vllm_rope_max_len.json).
Not modelled: the tokenizer's model_max_length (vLLM 0.34 reads tokenizer_config.json only for a pooling model
with absolute positions: 0.34.0:2191-2203; kvplan reads no tokenizer files), a rope_scaling that names only
'rope_type' before 0.5.3.post1 (KeyError on 'type'; read from 0.5.3.post1:1487-1493), and factor-less non-mrope
entries before 0.6.3.post1 (an assert; .get("factor", 1.0) from 0.6.3.post1:1754)."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Optional

from .vllm_versions import in_span, parse_version, release_rule

YARN_LIKE = ("yarn", "deepseek_yarn", "deepseek_llama_scaling")
# (first release, the rope types whose factor leaves the derived length alone), newest first (docstring)
SKIPPED_BY_RELEASE = (((0, 30), ("su", "longrope", "llama3") + YARN_LIKE),
                      ((0, 5, 3, 1), ("su", "longrope", "llama3")),  # from 0.5.3.post1
                      ((0, 5, 3), ("su", "longrope", "extended")),
                      ((0, 5, 1), ("su", "longrope")),
                      ((0, 4, 2), ("su",)),
                      ((0, 2), ()))
YARN_FROM_ORIGINAL = ((0, 2, 2), (0, 30))  # [from, before): YaRN's length is original x factor
TOP_ORIGINAL_SINCE = (0, 12)  # the top-level original_max_position_embeddings over the entry's (_yarn_original)
GEMMA3_SKIPPED_SINCE = (0, 8)
NULL_FACTOR_WARNED_SINCE = (0, 18)
LONGROPE_DEFAULT_SINCE = (0, 11, 1)
WINDOW_PAIR_REFUSED = ((0, 4, 3), (0, 12))  # [from, before): --disable-sliding-window with a scaled type


def scaled_entries(spec, version: str) -> tuple:
    """The config's RoPE entries (model/spec.py RopeEntry) whose factor vLLM `version` applies to the derived length;
    () where the model's type skips the scaling (Gemma 3)."""
    if "gemma3" in (spec.model_type or "") and parse_version(version) >= GEMMA3_SKIPPED_SINCE:
        return ()
    skipped = release_rule(SKIPPED_BY_RELEASE, version, ())
    return tuple(entry for entry in getattr(spec, "rope_factors", ()) if entry.kind not in skipped)


def _factor(entries: tuple) -> Optional[float]:
    """The factor of the last entry naming one (rp.get("factor", scaling_factor)): None for a null one, 1.0 where
    none names one."""
    named = [entry.factor for entry in entries if entry.named_factor]
    return named[-1] if named else 1.0


def _yarn_original(entries: tuple, spec, version: str) -> Optional[int]:
    """The length a pre-0.30 YaRN entry starts from: from 0.12 the top-level original_max_position_embeddings, which
    patch_rope_parameters copies over the entry's (transformers_utils/config.py 0.12.0:316-318), before 0.12 the
    entry's own (rope_scaling["original_max_position_embeddings"], config/model.py 0.11.2:2103); else the config's
    own length. None where the release does not do this (or no entry is YaRN)."""
    if not in_span(version, YARN_FROM_ORIGINAL):
        return None
    top = getattr(spec, "rope_original", None) if parse_version(version) >= TOP_ORIGINAL_SINCE else None
    for entry in entries:
        if entry.kind == "yarn":
            return top or entry.original or _config_length(spec)
    return None


def _config_length(spec) -> Optional[int]:
    return spec.rope_base_length if spec.rope_base_length is not None else spec.max_position_embeddings


def derived_length(spec, version: str) -> tuple:
    """(vLLM `version`'s derived max model length before int(), in tokens, as a float where multiplied; the words
    of how, '' where the config's length stands)."""
    base = _config_length(spec)
    entries = scaled_entries(spec, version)
    if base is None or not entries:
        return base, ""
    factor = _factor(entries)
    null = factor is None
    factor = 1.0 if null else factor
    start = _yarn_original(entries, spec, version)
    kinds = "/".join(dict.fromkeys(entry.kind or "default" for entry in entries))
    if start is not None:
        words = f"YaRN's original_max_position_embeddings {start:,} x factor {factor:g}"
        base = start
    elif factor == 1.0 and not null:  # a null one is said (below), though the length stands
        return base, ""
    else:
        words = f"{_length_name(spec)} {base:,} x {kinds} RoPE factor {factor:g}"
    if null:
        words += " (a null factor read as 1.0)"
    return base * factor, words


def _length_name(spec) -> str:
    return "the sliding window" if spec.length_key == "sliding_window" else spec.length_key


def rope_view(spec, version: str):
    """`spec` with max_position_embeddings the length vLLM `version` derives (the config's own kept in
    rope_base_length, so a view for another release starts from it again), rope_default_length LongRoPE's shorter
    default, and a note saying how; unchanged where the RoPE scaling changes nothing."""
    base = _config_length(spec)
    derived, words = derived_length(spec, version)
    default = _longrope_default(spec, version)
    notes = tuple(note for note in spec.notes if not note.startswith(NOTE_START))
    if not words and default is None:
        if spec.rope_base_length is None and notes == spec.notes:
            return spec
        return replace(spec, max_position_embeddings=base, rope_base_length=None, rope_default_length=None,
                       notes=notes)
    # a factor near the float limit makes the product inf, which int() refuses: the largest float stands in, past
    # any bound, so plan/max_len.py refuses it by name and a --max-model-len under it is served (vLLM compares floats)
    length = int(min(derived, sys.float_info.max))
    shown = f"{length:,}" if length < 10**18 else f"{length:.3g}"  # a factor of 1e300: not 300 digits
    said = f"{NOTE_START} {shown} = {words}" if words else f"{NOTE_START} {shown}"
    if default is not None:
        said += (f"; LongRoPE serves original_max_position_embeddings {default:,} by default (config/model.py "
                 f"0.34.0:2684-2694), and a --max-model-len up to {length:,}")
    said += f" (vLLM {version}, config/model.py _get_and_verify_max_len)"
    return replace(spec, max_position_embeddings=length, rope_base_length=base, rope_default_length=default,
                   notes=notes + (said,))


NOTE_START = "RoPE scaling: vLLM derives a max model length of"


def rope_note(spec) -> str:
    """rope_view's note on `spec` (how the release scaled the model's length), '' where it scaled nothing."""
    return next((note for note in spec.notes if note.startswith(NOTE_START)), "")


def _longrope_default(spec, version: str) -> Optional[int]:
    if parse_version(version) < LONGROPE_DEFAULT_SINCE:
        return None
    if not any(entry.kind in ("longrope", "su") for entry in getattr(spec, "rope_factors", ())):
        return None
    return getattr(spec, "rope_original", None)


def window_pair_refused(spec, version: str, disabled: bool) -> str:
    """vLLM 0.4.3-0.11.x's refusal of --disable-sliding-window beside a RoPE type it scales by (NotImplementedError,
    config.py 0.4.3:1217-1223, config/model.py 0.11.0:1847-1855), in its words; '' where it starts."""
    if not disabled or not in_span(version, WINDOW_PAIR_REFUSED):
        return ""
    if "gemma3" in (spec.model_type or "") and parse_version(version) >= GEMMA3_SKIPPED_SINCE:
        return ""
    if not scaled_entries(spec, version):
        return ""
    return ("Disabling sliding window is not supported for models with rope_scaling. Please raise an issue so we "
            "can investigate.")
