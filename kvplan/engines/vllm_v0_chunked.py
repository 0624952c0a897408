"""Whether vLLM's V0 engine turns chunked prefill on by default: one rule for every release up to 0.7.3
(EngineArgs.create_engine_config) and for 0.8-0.10.2 where they fall back to V0 (_set_default_args_v0), which
vllm_settings.resolve_settings reads for V0's max_num_batched_tokens (the whole length without it, the release's chunk
with it) and for SchedulerConfig's refusal of fewer batched tokens than max_model_len without it (check_batch).

With --enable-chunked-prefill unset (kvplan does not take it) V0 turns it on only where max_model_len > 32,768, from
0.5.3 (arg_utils.py 0.5.3:747-769; up to 0.5.2 it stays off: enable_chunked_prefill False, 0.5.2:85), and none of
these holds (KEEPS_OFF; engine/arg_utils.py lines of the releases read, 0.5.3-0.7.3 and 0.8.0 / 0.9.2 / 0.10.1.1 /
0.10.2, the last with V0: 0.10.2:1566-1597):
- a multimodal model, from 0.6.1.post1 (0.6.1.post1:887, 0.6.1.post2:887; plain 0.6.1 has no such test: a fix's
  boundary, vllm_versions.release_order), 0.6.3:944, 0.6.5:1072-1073, 0.7.3:1172-1173, then "is_multimodal_model
  or use_mla" (0.9.2:1514, 0.10.1.1:1529);
- MLA, from 0.8 (the same line). 0.7.1-0.7.3 turn it off for MLA only in VllmConfig.__post_init__ ("MLA is enabled;
  forcing chunked prefill and prefix caching to be disabled", config.py 0.7.1:3255-3262, 0.7.3:3327-3335), after
  SchedulerConfig has picked the chunk and run its checks with it on (config.py 0.7.3:1522-1589), so the batch stays
  the chunk and nothing is refused: for the batch, MLA there counts as on; but the scheduler then takes no prompt
  longer than the batch (mla_prompt_limit);
- not a CUDA GPU: device_type "cuda" (0.5.3:753, 0.7.3:1176), which ROCm is too, until `not
  current_platform.is_rocm()` from 0.6.5 (0.6.5:1084, 0.7.3:1185); current_platform.is_cuda() from 0.8 (0.9.2:1521);
- a sliding window, ModelConfig.get_sliding_window() not None (0.5.3:754, 0.6.3:946, 0.7.3:1177, 0.9.2:1522):
  the config's sliding_window (None where use_sliding_window is false, config.py 0.6.3:425-434) unless
  --disable-sliding-window (:436-442; it also caps max_model_len to the window, config.py 0.6.3:1715-1718, so past
  32K only where the window is longer) or the release turns the window off itself (Gemma 2 up to 0.6.4:
  vllm_gemma2_window.py); an interleaved model's window is moved out of sliding_window on the default backend
  (INTERLEAVED; "the scheduler and the model treat it as full attention"), so it does not count;
- a speculative model / config (0.5.3:756, 0.7.3:1179, 0.9.2:1524), LoRA (0.5.3:758, 0.7.3:1182, 0.10.1.1:1541),
  a prompt adapter (0.5.3:759, 0.9.2:1528; gone in 0.10.1; kvplan takes no such flag);
- --enable-prefix-caching, 0.5.3-0.6.0 (0.5.3:760, 0.6.0:859; gone in 0.6.1:885-888);
- Mamba (seqlen-agnostic) layers, 0.5.4-0.6.2: ModelConfig.contains_seqlen_agnostic_layers, a layers_block_type
  naming a non-attention layer (0.5.4:757-764, 0.6.2:922-928; config.py 0.5.4:402-426, 0.6.2:538-562), which among
  the classes these releases serve only Jamba's config carries (Mamba's has none, so it counts as attention);
  gone in 0.6.3 (0.6.3:946-951);
- the pooling runner, 0.6.5-0.10.1 (runner_type != "pooling", 0.6.5:1083, 0.7.3:1184, 0.9.2:1529, 0.10.1.1:1542;
  gone in 0.10.2:1584-1585); before, an embedding model's chunked prefill follows the rest.
"""

from __future__ import annotations

from typing import Optional

from ..errors import FieldError
from .vllm_v1_oracle import ORACLE
from .vllm_versions import in_span, release_rule

V0_LONG_CONTEXT = 32768  # use_long_context: max_model_len past it (arg_utils.py 0.5.3:747, 0.9.2:1511)
V0_BEFORE = ORACLE[1]  # the first release without V0: 0.10.2 still falls back to it (vllm_v1_oracle.v0_fallback)
LONG_CHUNKED = ((0, 5, 3), V0_BEFORE)  # [from, before): the releases whose V0 turns it on past 32K (docstring)
# (what keeps it off, [from, before)), in the docstring's order
KEEPS_OFF = (
    ("a multimodal model", ((0, 6, 1, 1), V0_BEFORE)),  # from 0.6.1.post1
    ("MLA", ((0, 8), V0_BEFORE)),
    ("ROCm", ((0, 6, 5), V0_BEFORE)),
    ("a sliding window", ((0, 5, 3), V0_BEFORE)),
    ("--speculative-config", ((0, 5, 3), V0_BEFORE)),
    ("--enable-lora", ((0, 5, 3), V0_BEFORE)),
    ("--enable-prefix-caching", ((0, 5, 3), (0, 6, 1))),
    ("Mamba layers", ((0, 5, 4), (0, 6, 3))),
    ("the pooling runner", ((0, 6, 5), (0, 10, 2))),
)
# The model types whose sliding_window ModelConfig moves to interleaved_sliding_window on the default backend (config.py
# 0.6.5:296-319, 0.6.6:302-325: gemma2; 0.7.0:308-331, 0.7.3:329-354: + cohere2; 0.8.0:359-385, 0.8.5:479-505:
# + gemma3_text; 0.9.0:540-570, 0.10.0:617-647: a sliding_window_pattern, which transformers' configs of these three
# carry and 0.9 sets for gemma2); 0.10.1 leaves sliding_window in place (get_sliding_window reads it: config/
# __init__.py 0.10.1.1:1324-1326; is_interleaved only turns it off on XFORMERS / FLASHINFER, :723-737). A list of
# windows (interleaved in all of these) is not modelled: kvplan reads one window a layer. Newest first.
INTERLEAVED = (((0, 10, 1), ()), ((0, 8), ("gemma2", "gemma3_text", "cohere2")), ((0, 7), ("gemma2", "cohere2")),
               ((0, 6, 5), ("gemma2",)))


# VllmConfig.__post_init__ of 0.7.1-0.7.3 turns chunked prefill off for MLA (ModelConfig.use_mla: a DeepSeek-V2/V3
# config with kv_lora_rank, config.py 0.7.3:763-767, :998-999) and leaves max_num_batched_tokens as SchedulerConfig
# picked it (config.py 0.7.1:3255-3263, 0.7.2:3273-3281, 0.7.3:3327-3335: only the two flags and prefix caching). V0's
# scheduler then limits a prompt to min(max_model_len, max_num_batched_tokens) (core/scheduler.py _get_prompt_limit,
# 0.7.1:801-807, 0.7.2:803-809, 0.7.3:924-932) and finishes a longer one unserved ("Input prompt (%d tokens) is too
# long and exceeds limit of %d", 0.7.3:1089-1101). So past 32K, where the chunk was picked (2,048 tokens), a prompt of
# more than 2,048 tokens is never served. 0.7.0 has no MLA (no use_mla in config.py); from 0.8 V0 keeps chunked prefill
# off for MLA from the start (KEEPS_OFF), so SchedulerConfig picks the whole length, and the branch that turns it off
# late there is for platforms other than CUDA and ROCm and resets the batch to max(max_model_len, 2,048) (config.py
# 0.8.0:3513-3522, 0.8.5:3933-3942).
MLA_OFF_LATE = ((0, 7, 1), (0, 8))  # [from, before)
LATE_WORDS = "MLA is enabled; forcing chunked prefill and prefix caching to be disabled."


def mla_prompt_limit(spec, version: str, max_model_len: int, batched_tokens: int) -> Optional[int]:
    """The longest prompt V0 in vLLM `version` serves for `spec` where it turns chunked prefill off for MLA after the
    batch was picked (MLA_OFF_LATE): `batched_tokens` where below `max_model_len`; None where a prompt of the whole
    length is served."""
    if not in_span(version, MLA_OFF_LATE) or not _has_mla(spec) or batched_tokens >= max_model_len:
        return None
    return batched_tokens


def prompt_limit_words(version: str, limit: int, max_model_len: int, spell=str) -> str:
    """The plan's warning where vLLM `version` serves no prompt past `limit` tokens at `max_model_len`
    (MLA_OFF_LATE), with the settings that serve the whole length, named as `spell` writes them."""
    return (f"vLLM {version} {_late_off(limit, max_model_len)}: a request reaches max len {max_model_len:,} only "
            f"through its output; {_whole_prompts(max_model_len, spell)}")


def prompt_limit_refusal(version: str, limit: int, input_len: int, max_model_len: int) -> FieldError:
    """An asked prompt longer than the `limit` vLLM `version` serves at `max_model_len` (MLA_OFF_LATE)."""
    return FieldError("input_len", f"({input_len:,}) is longer than vLLM {version} serves here: it "
                                   f"{_late_off(limit, input_len)}; give at most {limit:,}, or "
                                   f"{_whole_prompts(max_model_len)}.", names=("max_num_batched_tokens", "context"))


def _late_off(limit: int, prompt: int) -> str:
    """What the release does (MLA_OFF_LATE), in its words for a prompt of `prompt` tokens."""
    return (f"turns chunked prefill off for MLA (\"{LATE_WORDS}\") after picking `max_num_batched_tokens` "
            f"{limit:,}, so its scheduler serves prompts of at most {limit:,} tokens and drops a longer one "
            f"(\"Input prompt ({prompt} tokens) is too long and exceeds limit of {limit}\")")


def _whole_prompts(max_model_len: int, spell=str) -> str:
    """The settings under which the scheduler serves a prompt of the whole length."""
    shorter = f", or {spell('context')} to {V0_LONG_CONTEXT} or less" if max_model_len > V0_LONG_CONTEXT else ""
    return f"set {spell('max_num_batched_tokens')} to {max_model_len} or more to serve whole prompts{shorter}"


def v0_chunked_prefill(max_model_len: int, version: str, spec=None, *, multimodal: bool = False, rocm: bool = False,
                       flags=None, pooling: bool = False) -> bool:
    """Whether V0 in vLLM `version` runs `spec` (None: a text model with nothing of the below) with chunked prefill
    by default (module docstring): past 32K from 0.5.3, unless something keeps it off (keeps_off)."""
    if max_model_len <= V0_LONG_CONTEXT or not in_span(version, LONG_CHUNKED):
        return False
    return keeps_off(version, spec, multimodal=multimodal, rocm=rocm, flags=flags, pooling=pooling) is None


def keeps_off(version: str, spec=None, *, multimodal: bool = False, rocm: bool = False, flags=None,
              pooling: bool = False) -> Optional[str]:
    """The first condition of KEEPS_OFF that holds for `spec` under `flags` in vLLM `version`, in words; None where
    none does."""
    held = {
        "a multimodal model": multimodal or bool(spec is not None and spec.multimodal),
        "MLA": spec is not None and _has_mla(spec),
        "ROCm": rocm,
        "a sliding window": spec is not None and sliding_window_read(spec, version),
        "--speculative-config": getattr(flags, "speculative", None) is not None,
        "--enable-lora": bool(getattr(flags, "enable_lora", None)),
        "--enable-prefix-caching": bool(getattr(flags, "enable_prefix_caching", None)),
        "Mamba layers": spec is not None and _jamba_block_types(spec),
        "the pooling runner": pooling,
    }
    return next((what for what, span in KEEPS_OFF if held[what] and in_span(version, span)), None)


def sliding_window_read(spec, version: str) -> bool:
    """Whether ModelConfig.get_sliding_window() is not None for `spec` as vLLM `version` reads it (module docstring):
    a plain sliding layer left on (--disable-sliding-window and Gemma 2's release cap already made its layers full:
    vllm_cache_flags.config_window), not an interleaved model's (INTERLEAVED)."""
    from .vllm_cache_flags import config_window

    if config_window(spec) is None:
        return False
    return _text_model_type(spec) not in release_rule(INTERLEAVED, version, ())


def _text_model_type(spec) -> str:
    """hf_text_config.model_type, which INTERLEAVED keys on: a Gemma 3 with vision reads its text config's."""
    return "gemma3_text" if spec.model_type == "gemma3" else spec.model_type


def _has_mla(spec) -> bool:
    from ..model.kinds import MLALatent

    return any(isinstance(layer, MLALatent) for layer in spec.layers)


def _jamba_block_types(spec) -> bool:
    """contains_seqlen_agnostic_layers (module docstring): a layers_block_type naming a Mamba layer, Jamba's."""
    return spec.model_type == "jamba" and bool(spec.linear_layers)

