"""vLLM's floor under its default max_num_batched_tokens for a multimodal prefix-LM model: such a model attends
bidirectionally over a media item, so the scheduler must prefill the whole item in one step, and from 0.22.0 vLLM
raises the batched tokens it picks to the largest item one modality can send (engine/arg_utils.py
_set_default_max_num_seqs_and_batched_tokens_args, 0.32.0:3147-3162, the item from _get_min_mm_batched_tokens
:3065-3095; the same code in every release from 0.22.0 to 0.34.0, absent from 0.21.0 and older).

- Only where vLLM picks the batched tokens (`orig_max_num_batched_tokens is None`): --max-num-batched-tokens is
  taken as given. The floor comes after the GPU's default and before max_num_seqs x max_model_len caps it.
- Which models: ModelConfig.is_multimodal_model (a registered multimodal architecture) and is_mm_prefix_lm
  (transformers_utils/model_arch_config_convertor.py). Gemma 4 (Gemma4ModelArchConfigConvertor, 0.32.0:767-774):
  text_config.use_bidirectional_attention == "vision"; the E-series checkpoints ship it null (vLLM 0.34.0
  tests/v1/attention/test_mm_prefix.py:424-425 for google/gemma-4-E2B-it), the 31B sets "vision". From 0.27.0
  a deployment that takes no media is no prefix LM (is_mm_prefix_lm(supports_multimodal): --language-model-only,
  or a limit of 0 for every modality the model takes; config/model.py :912-957 in 0.32.0); 0.22-0.26 raise anyway.
- The item (gemma4_mm.py Gemma4ProcessingInfo.get_mm_max_tokens_per_item, 0.32.0:250-275; gemma4_unified.py:161-181
  reads vision_config.num_soft_tokens instead): an image is vision_config.default_output_length tokens, an audio
  clip the processor's audio_seq_length (750, transformers' Gemma4Processor default) where the model has an audio
  tower, a video 32 frames (_VIDEO_MAX_FRAMES, or --limit-mm-per-prompt's video num_frames if fewer) of 70 soft
  tokens + 2 (boi, eoi) + 6 (timestamp) tokens; the largest wins (2,496 for a video). A config without the image
  field makes vLLM's lookup raise, which it catches and logs: no floor.
- Other prefix-LM models get none kvplan sizes: Gemma 3, PaliGemma and Molmo2 answer no per-item ceiling
  (multimodal/processing/context.py:662-686 returns None), Moondream3's 730-token image is below every GPU default
  (2,048 the least); Bagel and DeepSeek-V4's vision variant kvplan does not model.

Not modelled: --mm-processor-kwargs max_soft_tokens (an image of at most 1,120 tokens, below every default).
"""

from __future__ import annotations

from typing import Optional

from .vllm_versions import parse_version

FLOOR_SINCE = (0, 22)  # engine/arg_utils.py: the prefix-LM raise (0.22.0:2528, absent from 0.21.0)
TEXT_ONLY_SINCE = (0, 27)  # config/model.py _supports_multimodal_for_mm_prefix (0.27.0:813-847), absent in 0.26.0
# the multimodal Gemma 4 classes (model_executor/models/registry.py _MULTIMODAL_MODELS) and the vision_config field
# their processing info reads an image's tokens from
IMAGE_FIELD = {"Gemma4ForConditionalGeneration": "default_output_length",
               "Gemma4UnifiedForConditionalGeneration": "num_soft_tokens"}
VIDEO_FRAMES = 32  # gemma4_mm.py _VIDEO_MAX_FRAMES (0.32.0:104)
FRAME_TOKENS = 70 + 2 + 6  # _VIDEO_MAX_SOFT_TOKENS (:103) + boi / eoi + the timestamp tokens (:267-275)
AUDIO_TOKENS = 750  # transformers Gemma4Processor audio_seq_length default (processing_gemma4.py)


def media_floor(spec, version: str, flags) -> tuple:
    """(tokens, modality) of the largest media item vLLM raises its default max_num_batched_tokens to for `spec`
    under `flags` (engines.EngineFlags), or (0, "") where it raises nothing."""
    media = getattr(spec, "media_prefix", None)
    release = parse_version(version)
    if media is None or release < FLOOR_SINCE or spec.architecture not in IMAGE_FIELD:
        return 0, ""
    if release >= TEXT_ONLY_SINCE and _text_only(media, flags):
        return 0, ""
    image = dict(media.vision_tokens).get(IMAGE_FIELD[spec.architecture])
    if image is None:  # vLLM's AttributeError, caught in _get_min_mm_batched_tokens: no floor
        return 0, ""
    limits = flags.mm_limits
    frames = min(VIDEO_FRAMES, limits.video_frames or VIDEO_FRAMES) if limits is not None else VIDEO_FRAMES
    items = {"image": image, **({"audio": AUDIO_TOKENS} if media.audio else {}), "video": frames * FRAME_TOKENS}
    modality = max(items, key=items.__getitem__)  # the first of the largest, in vLLM's order
    return items[modality], modality


def _text_only(media, flags) -> bool:
    """Whether the deployment takes no media at all (ModelConfig._supports_multimodal_inputs is False)."""
    modalities = ("image", "video") + (("audio",) if media.audio else ())
    limits = flags.mm_limits
    return flags.language_model_only or (limits is not None and limits.shut(modalities))


def raised_note(default: int, floor: tuple) -> Optional[str]:
    """Words on the raise for the budget line, or None where the default stands."""
    tokens, modality = floor
    if tokens <= default:
        return None
    return f"vLLM raises it from {default} to accommodate '{modality}' input for a prefix-LM model"
