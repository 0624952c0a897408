"""vLLM's default max model length: with no --max-model-len, vLLM serves the length the model's config derives
(vllm/config/model.py `_get_and_verify_max_len`: max_position_embeddings or its legacy spellings), and 2048 when
the config names none; a RoPE scaling factor multiplies it, and LongRoPE serves its original length by default
(engines/vllm_rope_len.py, which sets rope_default_length on the release's view of the spec)."""

from __future__ import annotations

from ..model.spec import ModelSpec

VLLM_FALLBACK_MAX_LEN = 2048  # vLLM's default when the config has no length key


def default_max_model_len(spec: ModelSpec) -> int:
    return getattr(spec, "rope_default_length", None) or spec.max_position_embeddings or VLLM_FALLBACK_MAX_LEN
