"""A config whose sliding_window is a list of per-layer windows (model/config.py WINDOW_LIST: layer i takes entry
i % len, null a full-attention layer), as each vLLM release reads it (VLLM_ATTENTION_BACKEND unset):

- up to 0.6.3 (not its fix 0.6.3.post1): the list is CacheConfig's one window (engine/arg_utils.py 0.6.3:909-917
  get_sliding_window), the selector leaves FlashAttention for XFormers on any window (attention/selector.py
  0.6.3:246-249), and the profile run adds the block size to it: TypeError (worker/model_runner.py 0.6.3:457-459).
  Where the window is turned off first (--disable-sliding-window; Gemma 2's own rule 0.5.1-0.6.3, config.py
  0.6.3:176-184), the length check compares the list with the length instead: TypeError (config.py 0.6.3:1715-1717).
- 0.6.3.post1-0.6.4: any list is interleaved attention, turned off with the length capped to its smallest window
  (config.py 0.6.3.post1:176-190, 0.6.4:226-240, get_min_sliding_window :1997-2002, _get_and_verify_max_len
  :1907-1913; a fix's boundary, vllm_versions.release_order): the rule Gemma 2's window has there,
  vllm_gemma2_window.py, which applies it; a list of nulls only has no smallest: ValueError (:2000).
- 0.6.5-0.10.0: the list moves to interleaved_sliding_window and sliding_window is deleted (config.py 0.6.5:296-319,
  0.6.6:301-326, 0.7.3:329-355, 0.8.5:480-506, 0.10.0:618-647), so CacheConfig has no window and V0 caches every
  layer in full (vllm.groups_for). Only llama.py's attention reads the list, layer by layer (LISTED_READERS); V1
  (0.8-0.10.0) gives those windowed layers sliding-window caches (v1/worker/gpu_model_runner.py 0.10.0:2796-2802).
  Any other model's layers take no window (Attention falls back to CacheConfig's None), so every layer is full
  (vllm_gemma2_window.window_view).
- 0.10.1 on: the list reaches CacheConfig, a pydantic dataclass with sliding_window: Optional[int] (config/cache.py
  0.10.1.1:63, 0.34.0:264; engine/arg_utils.py 0.10.1.1:1103-1107, 0.34.0:2321-2327): ValidationError; with
  --disable-sliding-window the length check meets it first (config/__init__.py 0.10.1.1:2868-2869, config/model.py
  0.34.0:2606-2609): TypeError.

Not modelled: a list beside use_sliding_window false (kvplan reads no window, as releases up to 0.6.3 do; 0.6.3.post1 on
treat the list as interleaved all the same), and VLLM_ATTENTION_BACKEND=XFORMERS (0.6.5 on turn the window off).
"""

from __future__ import annotations

from typing import Optional

from .figures import Refusal
from .vllm_versions import in_span, release_order

# [from, before) of each release's reading (docstring)
CRASHES_BEFORE = (0, 6, 3, 1)  # 0.6.3.post1
TURNED_OFF = (CRASHES_BEFORE, (0, 6, 5))
READ_PER_LAYER = ((0, 6, 5), (0, 10, 1))
# the architectures whose decoder layers are llama.py's LlamaAttention, the one reader of a list (llama.py
# 0.6.6:171-182, 0.10.0:170-181): the registry's llama-module names (registry.py 0.6.6:33-123, 0.10.0:34-156) and
# the classes built on llama.py's layers (phi3.py 0.10.0:10, glm.py :10, ernie45.py :31, fairseq2_llama.py :34,
# telechat2.py :111-129, teleflm.py :35-67)
LISTED_READERS = frozenset((
    "AquilaModel", "AquilaForCausalLM", "InternLMForCausalLM", "InternLM3ForCausalLM", "LlamaForCausalLM",
    "LLaMAForCausalLM", "MistralForCausalLM", "XverseForCausalLM", "LlamaModel", "MistralModel", "YiForCausalLM",
    "Phi3ForCausalLM", "GlmForCausalLM", "Ernie4_5_ForCausalLM", "Fairseq2LlamaForCausalLM", "TeleChat2ForCausalLM",
    "TeleFLMForCausalLM"))
CONCATENATE = 'TypeError: can only concatenate list (not "int") to list'
COMPARE = "TypeError: '<' not supported between instances of 'list' and 'int'"
EMPTY_MIN = "ValueError: min() arg is an empty sequence"
PYDANTIC = ("1 validation error for CacheConfig sliding_window: Input should be a valid integer [type=int_type, "
            "input_value={value}, input_type=list]")
SERVED_NOTE = ("vLLM 0.6.5 to 0.10.0 serve config field 'sliding_window' as a list of per-layer windows; 0.6.3.post1 "
               "and 0.6.4 turn them off and cap the length to the smallest")


def boundaries() -> tuple:
    """The releases where the reading changes, for the remedy search (vllm_remedy.release_boundaries)."""
    return CRASHES_BEFORE, *TURNED_OFF, *READ_PER_LAYER


def listed(spec) -> tuple:
    return getattr(spec, "window_list", ())


def windows_read(spec, version: str) -> bool:
    """Whether `version` builds `spec`'s layers with the list's windows (0.6.5-0.10.0, LISTED_READERS); else every
    layer attends in full where the release serves the list at all."""
    from .vllm_registry import served_architecture

    return in_span(version, READ_PER_LAYER) and served_architecture(spec, version) in LISTED_READERS


def windows_unread(spec, version: str) -> bool:
    """A release that serves the list with no layer reading it (0.6.5-0.10.0 outside LISTED_READERS)."""
    return bool(listed(spec)) and in_span(version, READ_PER_LAYER) and not windows_read(spec, version)


def list_refusal(spec, version: str) -> Optional[Refusal]:
    """What stops `version` starting on a list of windows (docstring), in vLLM's words, with the releases that
    serve it; None where it starts. `spec` as with_cache_flags left it (sliding_window_disabled: the flag asked)."""
    windows = listed(spec)
    if not windows:
        return None
    release = release_order(version)
    disabled = getattr(spec, "sliding_window_disabled", False)
    if release < CRASHES_BEFORE:
        gemma2 = spec.model_type == "gemma2" and release >= (0, 5, 1)
        reason = COMPARE if disabled or gemma2 else CONCATENATE
        return _refused(reason, "vllm==0.6.5", "newer")
    if in_span(version, TURNED_OFF) and not any(windows):
        return _refused(EMPTY_MIN, "vllm==0.6.5", "newer")
    if release >= READ_PER_LAYER[1]:
        reason = COMPARE if disabled else PYDANTIC.format(value=repr(list(windows)))
        return _refused(reason, "vllm==0.10.0", "older")
    return None


def _refused(reason: str, release: str, onward: str) -> Refusal:
    return Refusal(reason, None, configuration=True, field="engine", options=(release,), onward=onward,
                   note=SERVED_NOTE,
                   headline=reason)
