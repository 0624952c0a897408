"""vLLM's default max model length: with no --max-model-len, vLLM serves the length the model's config derives
(vllm/config/model.py `_get_and_verify_max_len`: max_position_embeddings or its legacy spellings), and 2048 when
the config names none; a RoPE scaling factor multiplies it, and LongRoPE serves its original length by default
(engines/vllm_rope_len.py, which sets rope_default_length on the release's view of the spec)."""

from __future__ import annotations

from ..errors import KvplanError
from ..model.spec import ModelSpec
from ..units import MAX_TOKENS

VLLM_FALLBACK_MAX_LEN = 2048  # vLLM's default when the config has no length key


def served_length_limit(spec: ModelSpec):
    """(the longest max model len vLLM serves without VLLM_ALLOW_LONG_MAX_MODEL_LEN, the config key it comes from),
    or (None, "") where vLLM sets none: the config's length (max_position_embeddings or its legacy spellings), else
    2048 (Falcon), except the Mamba model types, which vLLM leaves uncapped (vllm_config_read.length_refusal)."""
    from ..engines.vllm_config_read import NO_LENGTH_ATTRIBUTE

    if spec.max_position_embeddings:
        return spec.max_position_embeddings, "max_position_embeddings"
    if spec.model_type in NO_LENGTH_ATTRIBUTE:
        return None, ""
    return VLLM_FALLBACK_MAX_LEN, "length vLLM assumes without one in its config"


def default_max_model_len(spec: ModelSpec) -> int:
    length = getattr(spec, "rope_default_length", None) or spec.max_position_embeddings or VLLM_FALLBACK_MAX_LEN
    if length > MAX_TOKENS and getattr(spec, "rope_base_length", None) is not None:  # the config's factor did it
        key = next((entry.key for entry in reversed(spec.rope_factors) if entry.named_factor), "rope_scaling")
        shown = f"{length:,}" if length < 10**18 else f"{length:.3g}"  # a factor of 1e300: not 300 digits
        raise KvplanError(f"config field '{key}.factor' scales the model's length to {shown} tokens (vLLM's "
                          f"default max model length), past kvplan's bound of 2**40; check the config's RoPE "
                          f"scaling, or give a max model length (--max-model-len).")
    return length
