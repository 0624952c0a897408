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
  reads vision_config.num_soft_tokens instead): an image is vision_config.default_output_length tokens, or from
  0.21.0 --mm-processor-kwargs max_soft_tokens (70, 140, 280, 560 or 1120; others refused: soft_tokens), an audio
  clip the processor's audio_seq_length (750, transformers' Gemma4Processor default) where the model has an audio
  tower, a video 32 frames (_VIDEO_MAX_FRAMES, or --limit-mm-per-prompt's video num_frames if fewer) of 70 soft
  tokens + 2 (boi, eoi) + 6 (timestamp) tokens; the largest wins (2,496 for a video). A config without the image
  field makes vLLM's lookup raise, which it catches and logs: no floor.
- Other prefix-LM models get none kvplan sizes: Gemma 3, PaliGemma and Molmo2 answer no per-item ceiling
  (multimodal/processing/context.py:662-686 returns None), Moondream3's 730-token image is below every GPU default
  (2,048 the least); Bagel and DeepSeek-V4's vision variant kvplan does not model.

The refusal (item_refusal): a prefix-LM's media item is never split over scheduler steps, so an item bigger than
max_num_batched_tokens stops start-up. From 0.20.0, Gemma 4's first release as a prefix LM (0.20.0
transformers_utils/model_arch_config_convertor.py:478-483; 0.19.0's config/model.py:1195-1208 lists no Gemma 4), the
platform forces disable_chunked_mm_input for a multimodal prefix-LM model (platforms/cuda.py, 0.20.0:226-236,
0.32.0:333-343; platforms/rocm.py only from 0.30.0:949-959, 0.32.0:1124-1134), and the front end's MultiModalBudget
(v1/engine/input_processor.py 0.20.0:57-61, 0.32.0:68-72, built before the engine core starts) raises
v1/core/encoder_cache_manager.py compute_mm_encoder_budget's ValueError (0.20.0:288-307, 0.32.0:335-354): "Chunked MM
input disabled but max_tokens_per_mm_item (2496) is larger than max_num_batched_tokens (2048)...". Its item is the
largest of the modalities the deployment takes, a limit above 0 (multimodal/encoder_budget.py 0.20.0:73-91,
0.32.0:73-91); a deployment that takes none builds no budget (supports_multimodal_inputs, config/model.py
0.32.0:912-957; multimodal/registry.py in 0.20-0.30), so --language-model-only or every limit 0 starts in every
release. The same check is in every release from 0.20.0 to 0.34.0 (encoder_cache_manager.py 0.34.0:348-367).

Not modelled: --enable-mm-embeds, whose embedding-only modalities count in the refusal's item at a limit of 0.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Optional

from ..errors import FieldError, quote
from . import MediaLimits
from .figures import Refusal
from .vllm_registry import served_architecture
from .vllm_sparse import is_rocm_platform
from .vllm_versions import parse_version

PREFIX_LM_SINCE = (0, 20)  # Gemma4ModelArchConfigConvertor.is_mm_prefix_lm (0.20.0 :478-483; not in 0.19.0)
FLOOR_SINCE = (0, 22)  # engine/arg_utils.py: the prefix-LM raise (0.22.0:2528, absent from 0.21.0)
TEXT_ONLY_SINCE = (0, 27)  # config/model.py _supports_multimodal_for_mm_prefix (0.27.0:813-847), absent in 0.26.0
# gemma4_mm.py get_mm_max_tokens_per_item reads --limit-mm-per-prompt's video num_frames from 0.21.0 (:249-256; 0.20.0
# counts 32 frames whatever it says); gemma4_unified.py, first in 0.23.0, reads it from the start (:175-183)
FRAMES_OPTION_SINCE = (0, 21)
ROCM_FORCED_SINCE = (0, 30)  # platforms/rocm.py forces disable_chunked_mm_input from 0.30.0 (:949-959), CUDA's 0.13 on
# the multimodal Gemma 4 classes (model_executor/models/registry.py _MULTIMODAL_MODELS) and the vision_config field
# their processing info reads an image's tokens from
IMAGE_FIELD = {"Gemma4ForConditionalGeneration": "default_output_length",
               "Gemma4UnifiedForConditionalGeneration": "num_soft_tokens",
               # Gemma4MultiModalProcessor with DiffusionGemmaProcessingInfo, a Gemma4ProcessingInfo without audio
               # (diffusion_gemma.py 0.24.0:100-120, 0.34.0:116-137)
               "DiffusionGemmaForBlockDiffusion": "default_output_length"}
# a class whose config vLLM reads as a prefix LM only from a later release than Gemma 4's: DiffusionGemma, whose
# top-level model_type (diffusion_gemma) MODEL_ARCH_CONFIG_CONVERTORS maps to Gemma4ModelArchConfigConvertor from
# 0.31.0 (transformers_utils/model_arch_config_convertor.py 0.31.0:816, 0.34.0:843); 0.24-0.30 map only
# diffusion_gemma_text (0.24.0:629, 0.30.0:816), which the lookup by hf_config.model_type (config/model.py
# 0.24.0:731-732) never meets, so the base convertor answers no (its MM_PREFIX_LM_MODELS, 0.24.0:298-307)
PREFIX_LM_FROM = {"DiffusionGemmaForBlockDiffusion": (0, 31)}
SUPPORTED_SOFT_TOKENS = (70, 140, 280, 560, 1120)  # gemma4_mm.py _SUPPORTED_SOFT_TOKENS (0.32.0:102)
SOFT_TOKENS_SINCE = (0, 21)  # get_mm_max_tokens_per_item reads max_soft_tokens (0.21.0:238-242; 0.20.0 :225 does not)
SCOPED_WINS_SINCE = (0, 32)  # context.py _resolve_mm_processor_kwargs, absent from 0.31.0
VIDEO_FRAMES = 32  # gemma4_mm.py _VIDEO_MAX_FRAMES (0.32.0:104)
FRAME_TOKENS = 70 + 2 + 6  # _VIDEO_MAX_SOFT_TOKENS (:103) + boi / eoi + the timestamp tokens (:267-275)
AUDIO_TOKENS = 750  # transformers Gemma4Processor audio_seq_length default (processing_gemma4.py)
# the refusal's remedy names these fields as vLLM's flags (Refusal.remedy_flags: a deployments file writes its keys)
REMEDY_FLAGS = (("max_num_batched_tokens", "--max-num-batched-tokens"), ("max_num_seqs", "--max-num-seqs"),
                ("context", "--max-model-len"), ("limit_mm_per_prompt", "--limit-mm-per-prompt"),
                ("language_model_only", "--language-model-only"), ("engine", "--engine"))


def item_tokens(spec, version: str, flags) -> dict:
    """{modality: tokens} of one item at most, as Gemma4ProcessingInfo.get_mm_max_tokens_per_item answers for `spec`
    under `flags` (engines.EngineFlags), in its order (image, audio, video); {} for a model it does not answer for
    (no media prefix, not a multimodal Gemma 4 class, a release before its PREFIX_LM_FROM, or a config without the
    image field, where vLLM's lookup raises). The one source of the floor's item and the refusal's."""
    media = getattr(spec, "media_prefix", None)
    served = processor_class(spec, version)
    if media is None or served not in IMAGE_FIELD or parse_version(version) < PREFIX_LM_FROM.get(served, (0, 0)):
        return {}
    image = dict(media.vision_tokens).get(IMAGE_FIELD[served])
    if image is None:
        return {}
    asked = soft_tokens(flags.mm_processor_kwargs, version)
    if parse_version(version) >= SOFT_TOKENS_SINCE and isinstance(asked, int) and not isinstance(asked, bool) \
            and asked in SUPPORTED_SOFT_TOKENS:
        image = asked
    frames, limits = VIDEO_FRAMES, flags.mm_limits
    if limits is not None and limits.video_frames and parse_version(version) >= FRAMES_OPTION_SINCE:
        frames = min(frames, limits.video_frames)
    return {"image": image, **({"audio": AUDIO_TOKENS} if spec.audio_tower else {}), "video": frames * FRAME_TOKENS}


def processor_class(spec, version: str) -> str:
    """The class whose multimodal processor vLLM runs: the one it resolved from the top-level `architectures`
    (multimodal/registry.py 0.32.0:115-125 _get_model_cls, get_model_architecture of the whole model's config), not
    a nested text_config's."""
    return served_architecture(spec, version)


def soft_tokens(kwargs, version: str):
    """Gemma 4's max_soft_tokens as vLLM reads it from --mm-processor-kwargs (`kwargs`: engines.ProcessorKwargs),
    None where not given. gemma4_mm.py _get_max_soft_tokens (0.32.0:107-119; inline in 0.20.0:491-494): the flat
    key unless None, else images_kwargs'. From 0.32.0 get_merged_mm_kwargs drops a flat key that any scope holds
    (context.py _resolve_mm_processor_kwargs 0.32.0:97-114). Whether vLLM accepts it: check_soft_tokens."""
    given = dict(kwargs.soft_tokens) if kwargs is not None else {}
    if parse_version(version) >= SCOPED_WINS_SINCE and len(given) > 1:
        given.pop("", None)
    return given.get("") if given.get("") is not None else given.get("images_kwargs")


def check_soft_tokens(spec, version: str, flags) -> None:
    """FieldError for a max_soft_tokens (soft_tokens) outside _SUPPORTED_SOFT_TOKENS where vLLM meets it at start-up:
    Gemma4MultiModalProcessor._call_hf_processor refuses it for every item it processes (0.32.0:598-604, 0.20.0
    :488-499 raise; 0.19.0:474-488 logs and exits), the profile run's dummy item first. The processor is every
    multimodal Gemma 4 class's, prefix LM or not (the E-series: gemma4_mm.py 0.32.0 registers it on
    Gemma4ForConditionalGeneration whatever use_bidirectional_attention says; gemma4_unified.py 0.32.0:213-217
    reuses it), and meets the value only in a release whose registry lists the class (0.19.0 registry.py:385; an
    older one refuses the architecture first, so vllm_engine.capacity asks item_refusal only of a registered one, and
    a remedy's trials see this check as a refusal of the release: vllm_engine._soft_tokens_refusal). A
    deployment that takes no media (_text_only) processes no dummy item (0.19.0 gpu_model_runner.py profile_run: no
    budget, or all limits 0), so it starts whatever the value. --skip-mm-profiling, which skips the dummy item too,
    still refuses here: where else start-up meets the processor was not read."""
    if processor_class(spec, version) not in IMAGE_FIELD or _text_only(spec.audio_tower, flags):
        return
    value = soft_tokens(flags.mm_processor_kwargs, version)
    if value is not None and value not in SUPPORTED_SOFT_TOKENS:
        listed = ", ".join(map(str, SUPPORTED_SOFT_TOKENS))
        raise FieldError("mm_processor_kwargs", f"max_soft_tokens must be one of {listed} for Gemma 4: vLLM's "
                                                f"processor raises \"Unsupported max_soft_tokens value: {value}\" "
                                                f"on every media item, got {quote(value)}.")


def largest(items: dict) -> tuple:
    """(tokens, modality) of the largest item, the first of equals in vLLM's order; (0, "") for none."""
    if not items:
        return 0, ""
    modality = max(items, key=items.__getitem__)
    return items[modality], modality


def media_floor(spec, version: str, flags) -> tuple:
    """(tokens, modality) of the largest media item vLLM raises its default max_num_batched_tokens to for `spec`
    under `flags` (engines.EngineFlags), or (0, "") where it raises nothing. _get_min_mm_batched_tokens asks for
    every modality the model supports, whatever its limit (arg_utils.py 0.32.0:3081)."""
    release = parse_version(version)
    if release < FLOOR_SINCE or getattr(spec, "media_prefix", None) is None:
        return 0, ""
    if release >= TEXT_ONLY_SINCE and _text_only(spec.audio_tower, flags):
        return 0, ""
    return largest(item_tokens(spec, version, flags))


def taken_items(spec, version: str, flags) -> dict:
    """item_tokens of the modalities the deployment takes (a --limit-mm-per-prompt count above 0, 999 where it names
    none): the ones MultiModalBudget sizes; {} for a deployment that takes no media."""
    media = getattr(spec, "media_prefix", None)
    if media is None or flags.language_model_only:
        return {}
    limits = flags.mm_limits
    return {modality: tokens for modality, tokens in item_tokens(spec, version, flags).items()
            if limits is None or getattr(limits, modality) != 0}


def item_refusal(spec, version: str, flags, settings, capability=()) -> Optional[Refusal]:
    """vLLM's refusal of a media item bigger than the max_num_batched_tokens of `settings` (vllm_settings.Settings)
    for a multimodal prefix-LM model, whose items are never chunked (the module's docstring), or None; `capability`:
    the GPU's (vllm_sparse.ROCM for an AMD one)."""
    check_soft_tokens(spec, version, flags)
    release = parse_version(version)
    if release < PREFIX_LM_SINCE or (is_rocm_platform(capability) and release < ROCM_FORCED_SINCE):
        return None
    tokens, modality = largest(taken_items(spec, version, flags))
    batched = settings.max_num_batched_tokens
    if tokens <= batched:
        return None
    reason = (f"Chunked MM input disabled but max_tokens_per_mm_item ({tokens}) is larger than max_num_batched_tokens "
              f"({batched}). Please increase max_num_batched_tokens.")
    return Refusal(reason, None, configuration=True, field="max_num_batched_tokens", remedy_flags=REMEDY_FLAGS,
                   remedy=_item_remedy(spec, version, flags, settings, (tokens, modality)))


def _item_remedy(spec, version: str, flags, settings, item: tuple) -> str:
    """kvplan's words on what starts: the batched tokens raised to the item, the modalities past them shut (or
    fewer video frames); where vLLM picks the batched tokens (Settings.picked), the cap on them lifted, or a release
    that raises them to the item."""
    tokens, modality = item
    batched = settings.max_num_batched_tokens
    ways = [f"--max-num-batched-tokens {tokens} or more (one {modality} item is {tokens} tokens, which a prefix-LM "
            f"model prefills in one step)"]
    items = taken_items(spec, version, flags)
    over = [m for m, size in items.items() if size > batched]
    left = [size for m, size in items.items() if m not in over]
    limits = flags.mm_limits or MediaLimits()  # the user's own limits, each kept in the ones said
    if left:
        shut = limits.with_counts(**{m: 0 for m in over})
        ways.append(f"--limit-mm-per-prompt {_quoted(shut.said())} (its largest item then {max(left)} tokens)")
    else:
        ways.append("--language-model-only (no media at all)")
    if over == ["video"] and parse_version(version) >= FRAMES_OPTION_SINCE and batched >= FRAME_TOKENS:
        frames = batched // FRAME_TOKENS
        fewer = replace(limits, video_frames=frames)
        ways.append(f"--limit-mm-per-prompt {_quoted(fewer.said())} ({frames} frames of {FRAME_TOKENS} tokens)")
    if settings.picked is not None:
        ways += _picked_remedy(settings, tokens, version)
    return "vLLM accepts " + ", or ".join(ways)


def _quoted(limits: str) -> str:
    """A --limit-mm-per-prompt value (JSON) as a shell takes it: in single quotes."""
    return f"'{limits}'"


def _picked_remedy(settings, tokens: int, version: str) -> list:
    """Where vLLM picked the batched tokens: more sequences where max_num_seqs x max_model_len capped its pick below
    the item (arg_utils.py 0.32.0:3165-3168), or 0.22 on, whose pick is the item (FLOOR_SINCE)."""
    target, seqs, length = max(settings.picked), settings.max_num_seqs, settings.max_model_len
    capped = settings.max_num_batched_tokens < target
    if capped and target >= tokens:
        return [f"--max-num-seqs {math.ceil(tokens / length)} or more (vLLM caps its default at --max-num-seqs x "
                f"--max-model-len, {seqs} x {length} = {seqs * length} here)"]
    if not capped and parse_version(version) < FLOOR_SINCE and seqs * length >= tokens:
        return ["--engine vllm==0.22.0 or later (whose default is raised to the item)"]
    return []


def _text_only(audio: bool, flags) -> bool:
    """Whether the deployment takes no media at all (ModelConfig._supports_multimodal_inputs is False) from a Gemma 4
    that takes images, videos and, with an `audio` tower (ModelSpec.audio_tower), audio (gemma4_mm.py
    get_supported_mm_limits, 0.32.0:243-248, has_audio :225-226)."""
    modalities = ("image", "video") + (("audio",) if audio else ())
    limits = flags.mm_limits
    return flags.language_model_only or (limits is not None and limits.shut(modalities))


def raised_note(default: int, floor: tuple, tokens: int) -> Optional[str]:
    """Words on the raise for the budget line (`tokens`: the batched tokens vLLM starts with, the floor's item or
    less where max_num_seqs x max_model_len caps it), or None where the default stands."""
    item, modality = floor
    if item <= default or tokens <= default:
        return None
    if tokens >= item:
        return f"vLLM raises it from {default} to accommodate '{modality}' input for a prefix-LM model"
    return (f"vLLM raises it from {default} to {item} to accommodate '{modality}' input for a prefix-LM model, then "
            f"caps it at max_num_seqs x max_model_len")
