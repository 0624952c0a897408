"""Gemma 2's sliding window before vLLM 0.6.5, and a list of per-layer windows in 0.6.3.post1-0.6.4: ModelConfig
turns it off and caps the model's length to it; 0.6.5-0.10.0 serve such a list with every layer full where the
model reads none.

vLLM 0.5.1 (the release that registers Gemma2ForCausalLM) to 0.6.3, on a "gemma2" model type whose config names a
sliding_window, warns "Gemma 2 uses sliding window attention for every odd layer, which is currently not supported
by vLLM. Disabling sliding window and capping the max length to the sliding window size (4096)." and sets
disable_sliding_window (config.py 0.5.1:156-164, 0.5.5:204-212, 0.6.3:176-184); from the fix 0.6.3.post1 it says
"gemma2 has interleaved attention, ..." of any model with interleaved attention, a "gemma2" type or a list of
windows (0.6.3.post1:176-190, 0.6.4:226-240; a fix's boundary, vllm_versions.release_order).
_get_and_verify_max_len then caps the derived length to the window (max_len_key "sliding_window":
0.5.1:1394-1397, 0.6.3:1715-1718, 0.6.4:1907-1910), so the default is 4,096 tokens for google/gemma-2-9b
(max_position_embeddings 8,192) and a longer --max-model-len is refused as any length past the derived one; every
layer attends in full (get_sliding_window is None once disabled, and gemma2.py 0.6.3:146-148 drops its per-layer
window unused). 0.6.5 keeps the window in the attention layers and schedules them as full attention (config.py
0.6.5:296-319) except on the XFORMERS backend, which still turns it off (not modelled: kvplan plans the default
backend). A list-valued sliding_window (vllm_window_list.py) is turned off alike in 0.6.3.post1-0.6.4, the length
capped to its smallest window (get_min_sliding_window, 0.6.4:1997-2002); 0.6.5-0.10.0 keep its windows only in
llama.py's layers (vllm_window_list.windows_unread: the others attend in full, with no cap)."""

from __future__ import annotations

from dataclasses import replace

from .vllm_versions import in_span, release_rule

# [from, before): the releases whose ModelConfig turns a "gemma2" model's window off (docstring)
WINDOW_OFF = ((0, 5, 1), (0, 6, 5))
# the warning each release logs as it turns the window off, newest first (docstring: 0.6.3.post1:185-189, 0.6.4:235-238,
# 0.5.1:160-163)
WARNINGS = (((0, 6, 3, 1), "{model_type} has interleaved attention, which is currently not supported by vLLM"),
            ((0, 5, 1), "Gemma 2 uses sliding window attention for every odd layer, which is currently not supported "
                        "by vLLM"))
NOTE_START = "Gemma 2's sliding window: vLLM"
LIST_NOTE_START = "The sliding_window list: vLLM"


def _list_off(spec, version: str) -> bool:
    """0.6.3.post1-0.6.4 turn any list of windows off (vllm_window_list.TURNED_OFF); a list of nulls they refuse
    instead."""
    from .vllm_window_list import TURNED_OFF, listed

    return any(listed(spec)) and in_span(version, TURNED_OFF)


def window_off(spec, version: str) -> bool:
    """Whether vLLM `version` turns `spec`'s sliding window off as it reads the config (WINDOW_OFF)."""
    from .vllm_cache_flags import config_window

    gemma2 = spec.model_type == "gemma2" and in_span(version, WINDOW_OFF)
    return (gemma2 or _list_off(spec, version)) and config_window(spec) is not None


def window_view(spec, version: str):
    """`spec` as vLLM `version` reads it: Gemma 2's layers all full and its length capped to the window where the
    release turns the window off (vllm_cache_flags.without_sliding_window, marked for its RoPE refusal as the flag
    is), with a note saying so, and a list of windows alike in 0.6.3.post1-0.6.4; a list no layer reads (0.6.5-0.10.0,
    vllm_window_list.windows_unread) leaves every layer full at the config's length. What it changed is kept in
    ModelSpec.release_window for `unwindowed`."""
    from .vllm_cache_flags import config_window, without_sliding_window
    from .vllm_window_list import windows_unread

    spec = unwindowed(spec)
    unread = windows_unread(spec, version) and config_window(spec) is not None
    if not unread and not window_off(spec, version):
        return spec
    window = config_window(spec)
    off = without_sliding_window(spec)
    if unread:  # the layers full, the length the config's
        off = replace(off, max_position_embeddings=spec.max_position_embeddings, length_key=spec.length_key,
                      config_length=spec.config_length)
    changed = tuple((index, layer) for index, (layer, now) in enumerate(zip(spec.layers, off.layers)) if layer != now)
    kept = (changed, spec.max_position_embeddings, spec.length_key, spec.config_length, spec.sliding_window_disabled)
    capped = off.length_key == "sliding_window" and spec.length_key != "sliding_window"
    said = _unread_note(spec, version) if unread else _off_note(spec, version, window if capped else None)
    marked = spec.sliding_window_disabled or (bool(spec.rope_factors) and not unread)  # as the flag would be
    return replace(off, release_window=kept, sliding_window_disabled=marked, notes=spec.notes + (said,))


def _off_note(spec, version: str, cap) -> str:
    """What window_view says where `version` turns the window off, and the length it caps to (`cap`; None: none)."""
    listed = bool(spec.window_list)
    warned = release_rule(WARNINGS, version).format(model_type=spec.model_type)
    capped = f" and caps max_model_len to {'its smallest window' if listed else 'it'}, {cap:,} tokens" if cap else ""
    return (f"{LIST_NOTE_START if listed else NOTE_START} {version} turns it off for every layer (\"{warned}\")"
            f"{capped} (config.py ModelConfig; 0.6.5 keeps the {'windows' if listed else 'window'})")


def _unread_note(spec, version: str) -> str:
    from .vllm_registry import served_architecture

    return (f"{LIST_NOTE_START} {version} moves it to interleaved_sliding_window, which only llama.py's layers read, "
            f"not {served_architecture(spec, version)}'s: every layer attends and is cached in full (config.py "
            f"0.6.5:296-319, 0.10.0:618-647)")


def unwindowed(spec):
    """`spec` before window_view: its layers, length and note as the config gives them."""
    kept = getattr(spec, "release_window", ())
    if not kept:
        return spec
    changed, length, key, config_length, disabled = kept
    layers = list(spec.layers)
    for index, layer in changed:
        layers[index] = layer
    return replace(spec, layers=tuple(layers), max_position_embeddings=length, length_key=key,
                   config_length=config_length, sliding_window_disabled=disabled, release_window=(),
                   notes=tuple(note for note in spec.notes if not note.startswith((NOTE_START, LIST_NOTE_START))))


def capped_by_release(spec) -> bool:
    """Whether the length `spec` carries is the window a release capped it to (window_view), not the flag's cap."""
    return bool(getattr(spec, "release_window", ())) and spec.length_key == "sliding_window" and \
        spec.release_window[2] != "sliding_window"


def window_capper(spec, spell=str) -> str:
    """Who capped `spec`'s length to its window, in words: the release (window_view) or --disable-sliding-window."""
    if not capped_by_release(spec):
        return spell("disable_sliding_window")
    return "vLLM itself (a list of windows off in 0.6.3.post1-0.6.4)" if getattr(spec, "window_list", ()) else \
        "vLLM itself (Gemma 2's window off before 0.6.5)"
