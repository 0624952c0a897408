"""Vision towers whose weights a multimodal checkpoint carries beside its language model, by shape: Gemma 3 (SigLIP
encoder + projector), Llama 4 (its own encoder, pixel-shuffle adapter + projector), Mistral 3 (Pixtral encoder,
patch merger + projector; Devstral-Small-2), Qwen3-VL / Qwen3.5 (vLLM's Qwen3_VisionTransformer: encoder, merger
and the deepstack mergers), Qwen2.5-VL (Qwen2_5_VisionTransformer) and Qwen2-VL (Qwen2VisionTransformer). vLLM
loads them, so they count towards the resident weights; they stay in the model dtype. Their profile pass is
modelled too (VisionEncoder; the Qwen towers' dummy item from the processor's published limits, which config.json
does not carry). Other multimodal configs (InternVL, ...) are counted as their language model alone, and say so."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

from ..errors import FieldError, json_value, KvplanError
from .config import Config
from .layers import is_gemma4
from .tensors import Tensor

# Fields a config copy may leave out, at the values the published checkpoints carry (google/gemma-3-*-it and
# meta-llama/Llama-4-* vision_config). transformers' own defaults differ where it matters: SigLIP builds a
# pooling head unless vision_use_head is false, and Llama 4's class default vision_output_dim is 7680.
SIGLIP_DEFAULTS = {"num_channels": 3, "vision_use_head": False}
LLAMA4_DEFAULTS = {"num_channels": 3, "projector_input_dim": 4096, "projector_output_dim": 4096,
                   "vision_output_dim": 4096, "multi_modal_projector_bias": False}
# transformers' PixtralVisionConfig and Mistral3Config defaults (16 heads of 64, a 2 x 2 patch merger, no projector
# bias), as Mistral Small 3.x and Devstral-Small-2 keep them
PIXTRAL_DEFAULTS = {"num_channels": 3, "num_attention_heads": 16}
MISTRAL3_SPATIAL_MERGE = 2
# said of a multimodal model sized from its config without a tower (ModelSpec.tower_uncounted)
UNCOUNTED_TOWER = "no vision tower counted (the config names none kvplan sizes; vLLM loads one)"


SHAPE_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "patch_size", "image_size")
# Qwen3-VL's vision_config (transformers Qwen3VLVisionConfig) names its shape otherwise: depth for the layers, a
# learned position table instead of an image size, and the width it hands the language model
QWEN3_VL_KEYS = ("hidden_size", "intermediate_size", "depth", "patch_size", "num_position_embeddings",
                 "out_hidden_size", "spatial_merge_size", "temporal_patch_size")
QWEN3_VL_DEFAULTS = {"in_channels": 3, "deepstack_visual_indexes": []}
QWEN2_VL_DEFAULTS = {"in_chans": 3}  # Qwen2-VL's and Qwen2.5-VL's name for it
# Qwen2-VL's (transformers Qwen2VLVisionConfig): embed_dim is the tower's width, hidden_size the language model's
QWEN2_VL_KEYS = ("embed_dim", "depth", "hidden_size", "mlp_ratio", "patch_size", "spatial_merge_size",
                 "temporal_patch_size")
# Qwen2.5-VL's (transformers Qwen2_5_VLVisionConfig): windowed attention, RMSNorms, a gated MLP
QWEN2_5_VL_KEYS = ("hidden_size", "intermediate_size", "depth", "patch_size", "out_hidden_size", "spatial_merge_size",
                   "temporal_patch_size", "window_size")


# Gemma 4's vision_config (transformers Gemma4VisionConfig): a patch table rather than an image size
GEMMA4_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "patch_size", "position_embedding_size")


def _vision_config(cfg: Config, defaults: dict) -> Config:
    raw = {**defaults, **cfg.get("vision_config")}
    return Config({f"vision_config.{k}": v for k, v in raw.items()}, cfg.name)


def _names(cfg: Config, keys: tuple) -> bool:
    """Whether the vision_config gives every one of `keys`."""
    return all(cfg.get("vision_config").get(key) is not None for key in keys)


def _sized(cfg: Config) -> bool:
    """A vision_config that names the tower's shape; a copy trimmed to the language model's needs is not sized
    and its tower is left out rather than guessed."""
    return any(_names(cfg, keys) for keys in (SHAPE_KEYS, QWEN3_VL_KEYS, QWEN2_5_VL_KEYS, QWEN2_VL_KEYS, GEMMA4_KEYS))


def _is_qwen2_vl(cfg: Config) -> bool:
    return _names(cfg, QWEN2_VL_KEYS)


def _qwen2_vl(cfg: Config) -> list:
    """vLLM 0.32 qwen2_vl.py Qwen2VisionTransformer: a Conv3d patch embedding without bias, depth layers of two
    LayerNorms, biased qkv and proj, a biased MLP of embed_dim x mlp_ratio, then the merger (a LayerNorm, merge^2 x
    embed_dim squared and hidden_size x merge^2 x embed_dim, both biased)."""
    v = _vision_config(cfg, QWEN2_VL_DEFAULTS)
    width, patch, layers = (v.int("vision_config.embed_dim"), v.int("vision_config.patch_size"),
                            v.int("vision_config.depth"))
    inter, out = _qwen2_vl_intermediate(v), v.int("vision_config.hidden_size")
    merged = v.int("vision_config.spatial_merge_size") ** 2 * width
    pixels = v.int("vision_config.in_chans") * v.int("vision_config.temporal_patch_size") * patch * patch
    return [Tensor("vision", width, pixels), Tensor("vision", width, copies=4 * layers),
            Tensor("vision", 3 * width, width + 1, copies=layers), Tensor("vision", width, width + 1, copies=layers),
            Tensor("vision", inter, width + 1, copies=layers), Tensor("vision", width, inter + 1, copies=layers),
            Tensor("vision", width, copies=2), Tensor("vision", merged, merged + 1), Tensor("vision", out, merged + 1)]


def _qwen2_vl_intermediate(v: Config) -> int:
    """Qwen2-VL's MLP width: embed_dim x mlp_ratio (qwen2_vl.py Qwen2VisionBlock)."""
    ratio = v.get("vision_config.mlp_ratio")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0:
        raise KvplanError(f"config field 'vision_config.mlp_ratio' must be a positive number, got {json_value(ratio)}.")
    return int(v.int("vision_config.embed_dim") * ratio)


def _is_qwen2_5_vl(cfg: Config) -> bool:
    return _names(cfg, QWEN2_5_VL_KEYS)


def _qwen2_5_vl(cfg: Config) -> list:
    """vLLM 0.32 qwen2_5_vl.py Qwen2_5_VisionTransformer: a Conv3d patch embedding without bias, depth layers of two
    RMSNorms, biased qkv and proj, a biased gated MLP, then the merger (an RMSNorm, merge^2 x hidden squared and
    out_hidden_size x merge^2 x hidden, both biased); no position table (rotary)."""
    v = _vision_config(cfg, QWEN2_VL_DEFAULTS)
    hidden, inter = v.int("vision_config.hidden_size"), v.int("vision_config.intermediate_size")
    patch, layers = v.int("vision_config.patch_size"), v.int("vision_config.depth")
    out, merged = v.int("vision_config.out_hidden_size"), v.int("vision_config.spatial_merge_size") ** 2 * hidden
    pixels = v.int("vision_config.in_chans") * v.int("vision_config.temporal_patch_size") * patch * patch
    return [Tensor("vision", hidden, pixels), Tensor("vision", hidden, copies=2 * layers),
            Tensor("vision", 3 * hidden, hidden + 1, copies=layers),
            Tensor("vision", hidden, hidden + 1, copies=layers), Tensor("vision", 2 * inter, hidden + 1, copies=layers),
            Tensor("vision", hidden, inter + 1, copies=layers), Tensor("vision", hidden),
            Tensor("vision", merged, merged + 1), Tensor("vision", out, merged + 1)]


def _is_qwen3_vl(cfg: Config) -> bool:
    return _names(cfg, QWEN3_VL_KEYS)


def _qwen3_vl(cfg: Config) -> list:
    """vLLM 0.32 qwen3_vl.py Qwen3_VisionTransformer (Qwen3-VL, Qwen3-VL-MoE and Qwen3.5 build it): a biased Conv3d
    patch embedding over (temporal x patch x patch) pixels, the learned position table, depth pre-norm layers
    (two LayerNorms with biases, biased qkv and proj, a biased two-matrix MLP), then the merger (a LayerNorm over
    the hidden width, two biased linears from merge^2 x hidden to out_hidden_size) and one more merger a
    deepstack layer (its LayerNorm over the merged width)."""
    v = _vision_config(cfg, QWEN3_VL_DEFAULTS)
    hidden, inter = v.int("vision_config.hidden_size"), v.int("vision_config.intermediate_size")
    patch, layers = v.int("vision_config.patch_size"), v.int("vision_config.depth")
    out, merged = v.int("vision_config.out_hidden_size"), v.int("vision_config.spatial_merge_size") ** 2 * hidden
    pixels = v.int("vision_config.in_channels") * v.int("vision_config.temporal_patch_size") * patch * patch
    deepstack = _deepstack(v)

    def merger(norm_width: int, copies: int = 1) -> list:
        return [Tensor("vision", norm_width, copies=2 * copies), Tensor("vision", merged, merged + 1, copies=copies),
                Tensor("vision", out, merged + 1, copies=copies)]

    return [Tensor("vision", hidden, pixels + 1), Tensor("vision", v.int("vision_config.num_position_embeddings"),
                                                          hidden),
            Tensor("vision", hidden, copies=4 * layers), Tensor("vision", 3 * hidden, hidden + 1, copies=layers),
            Tensor("vision", hidden, hidden + 1, copies=layers), Tensor("vision", inter, hidden + 1, copies=layers),
            Tensor("vision", hidden, inter + 1, copies=layers),
            *merger(hidden), *(merger(merged, len(deepstack)) if deepstack else [])]


def _deepstack(v: Config) -> list:
    """Qwen3-VL's deepstack layers: each one's features go through a merger of their own to the language model."""
    deepstack = v.get("vision_config.deepstack_visual_indexes")
    if not isinstance(deepstack, list):
        raise KvplanError(f"config field 'vision_config.deepstack_visual_indexes' must be a list of layer indices, "
                          f"got {json_value(deepstack)}.")
    return deepstack


def _encoder_layers(v: Config, hidden: int, inter: int) -> list:
    """Pre-norm transformer layers with biased q/k/v/o, two LayerNorms and a biased two-matrix MLP."""
    layers = v.int("vision_config.num_hidden_layers")
    return [Tensor("vision", hidden, hidden, copies=4 * layers), Tensor("vision", hidden, copies=4 * layers),
            Tensor("vision", hidden, copies=4 * layers), Tensor("vision", inter, hidden, copies=2 * layers),
            Tensor("vision", inter, copies=layers), Tensor("vision", hidden, copies=layers)]


def _siglip(cfg: Config, text_hidden: int) -> list:
    v = _vision_config(cfg, SIGLIP_DEFAULTS)
    hidden, inter = v.int("vision_config.hidden_size"), v.int("vision_config.intermediate_size")
    patch, image = v.int("vision_config.patch_size"), v.int("vision_config.image_size")
    out = [Tensor("vision", hidden, v.int("vision_config.num_channels") * patch * patch), Tensor("vision", hidden),
           Tensor("vision", (image // patch) ** 2, hidden), *_encoder_layers(v, hidden, inter),
           Tensor("vision", hidden, copies=2)]  # post_layernorm
    if v.flag("vision_config.vision_use_head", False):  # attention-pooling head: probe, attention, norm, MLP
        out += [Tensor("vision", hidden), Tensor("vision", 3 * hidden, hidden + 1),
                Tensor("vision", hidden, hidden + 1),
                Tensor("vision", hidden, copies=2), Tensor("vision", inter, hidden + 1),
                Tensor("vision", hidden, inter + 1)]
    return out + [Tensor("vision", hidden, text_hidden), Tensor("vision", hidden)]  # projector and its soft norm


def _llama4(cfg: Config, text_hidden: int) -> list:
    v = _vision_config(cfg, LLAMA4_DEFAULTS)
    hidden, inter = v.int("vision_config.hidden_size"), v.int("vision_config.intermediate_size")
    patch, image = v.int("vision_config.patch_size"), v.int("vision_config.image_size")
    adapter_in, adapter_out = v.int("vision_config.projector_input_dim"), v.int("vision_config.projector_output_dim")
    projector_bias = v.flag("vision_config.multi_modal_projector_bias", False)
    return [Tensor("vision", hidden), Tensor("vision", (image // patch) ** 2 + 1, hidden),  # class, positions
            Tensor("vision", hidden, v.int("vision_config.num_channels") * patch * patch),  # patch embedding
            Tensor("vision", hidden, copies=4), *_encoder_layers(v, hidden, inter),  # pre/post LayerNorms
            Tensor("vision", adapter_in, inter), Tensor("vision", adapter_out, adapter_out),  # pixel-shuffle MLP
            Tensor("vision", text_hidden, v.int("vision_config.vision_output_dim") + projector_bias)]


def _mistral3(cfg: Config, text_hidden: int) -> list:
    """vLLM 0.32 pixtral.py PixtralHFVisionModel (a patch convolution without bias, RMSNorms, q/k/v/o and a gated MLP
    without biases, 2-D rotary positions: no position table) and mistral3.py Mistral3MultiModalProjector (an
    RMSNorm, the patch merger's merge^2 x hidden -> hidden linear, two linears to the text width)."""
    v = _vision_config(cfg, PIXTRAL_DEFAULTS)
    hidden, inter = v.int("vision_config.hidden_size"), v.int("vision_config.intermediate_size")
    patch, layers = v.int("vision_config.patch_size"), v.int("vision_config.num_hidden_layers")
    merge = cfg.int("spatial_merge_size", default=MISTRAL3_SPATIAL_MERGE)
    bias = int(cfg.flag("multimodal_projector_bias", False))
    return [Tensor("vision", hidden, v.int("vision_config.num_channels") * patch * patch), Tensor("vision", hidden),
            Tensor("vision", hidden, hidden, copies=4 * layers), Tensor("vision", inter, hidden, copies=2 * layers),
            Tensor("vision", hidden, inter, copies=layers), Tensor("vision", hidden, copies=2 * layers),
            Tensor("vision", hidden), Tensor("vision", hidden, merge * merge * hidden),
            Tensor("vision", text_hidden, hidden + bias), Tensor("vision", text_hidden, text_hidden + bias)]


def _gemma4(cfg: Config, text_hidden: int) -> list:
    """transformers' Gemma4VisionModel as vLLM 0.32 gemma4_mm.py builds it (AutoModel.from_config, model dtype): a
    bias-free patch projection from 3 x patch^2 pixels, a two-axis position table, pre/post-normed layers of q/k/v/o
    with q/k norms and a gated MLP, the optional standardisation bias and scale; then Gemma4MultimodalEmbedder's
    projection to the text width (its pre-projection norm has no weight)."""
    v = _vision_config(cfg, {})
    hidden, inter = v.int("vision_config.hidden_size"), v.int("vision_config.intermediate_size")
    patch, layers = v.int("vision_config.patch_size"), v.int("vision_config.num_hidden_layers")
    heads = v.int("vision_config.num_attention_heads", default=12)
    head_dim = v.int("vision_config.head_dim", default=hidden // heads)
    kv = v.int("vision_config.num_key_value_heads", default=heads)
    width = heads * head_dim
    out = [Tensor("vision", hidden, 3 * patch * patch),
           Tensor("vision", 2 * v.int("vision_config.position_embedding_size"), hidden),
           Tensor("vision", width, hidden, copies=2 * layers),
           Tensor("vision", kv * head_dim, hidden, copies=2 * layers),
           Tensor("vision", head_dim, copies=2 * layers), Tensor("vision", hidden, copies=4 * layers),
           Tensor("vision", inter, hidden, copies=3 * layers)]
    if v.flag("vision_config.standardize", False):
        out.append(Tensor("vision", hidden, copies=2))
    return out + [Tensor("vision", text_hidden, hidden)]


def vision_tensors(cfg: Config, text_hidden: int) -> list:
    """Tensors of the vision tower and projector, [] when the family's tower is not modelled or absent."""
    if not has_vision_tower(cfg):
        return []
    if cfg.model_type in ("gemma3", "gemma3_text"):
        return _siglip(cfg, text_hidden)
    if cfg.model_type.startswith("llama4"):
        return _llama4(cfg, text_hidden)
    if is_gemma4(cfg):  # DiffusionGemma's tower too (diffusion_gemma.py 0.34.0:204-233, Gemma 4's classes)
        return _gemma4(cfg, text_hidden)
    if _is_mistral3(cfg):
        return _mistral3(cfg, text_hidden)
    if _is_qwen3_vl(cfg):
        return _qwen3_vl(cfg)
    if _is_qwen2_5_vl(cfg):
        return _qwen2_5_vl(cfg)
    if _is_qwen2_vl(cfg):
        return _qwen2_vl(cfg)
    return []


def _is_mistral3(cfg: Config) -> bool:
    """Mistral 3's multimodal checkpoints (a Pixtral encoder): by architecture or tower type, since the config read
    here carries the text model's model_type (ministral3, mistral)."""
    archs = cfg.get("architectures")
    return ("Mistral3ForConditionalGeneration" in archs if isinstance(archs, list) else False) or \
        cfg.get("vision_config").get("model_type") == "pixtral"


# transformers' Gemma3Config default: the soft tokens one image becomes in the language model (the projector pools
# the 64 x 64 SigLIP patches of an 896-pixel image 4 x 4 into 256)
GEMMA3_TOKENS_PER_IMAGE = 256
# Llama 4's image processor (transformers Llama4ImageProcessorFast max_patches, as the published preprocessor
# configs keep it): up to 16 tiles an image, and a global tile beside them when there is more than one
LLAMA4_MAX_TILES = 16
LLAMA4_PIXEL_SHUFFLE = 0.5  # Llama4VisionConfig pixel_shuffle_ratio


# The Qwen-VL processors' size limits, (shortest_edge, longest_edge) in pixels, as the public checkpoints publish
# them (preprocessor_config.json, video_preprocessor_config.json; kvplan reads neither, --mm-processor-kwargs overrides
# them). Qwen2-VL-*-Instruct and Qwen2.5-VL-*-Instruct: min_pixels 3,136, max_pixels 12,845,056 (16,384 x 28^2;
# transformers' class default is 28 x 28 x 1280), which vLLM applies to videos too (qwen2_vl.py _get_vision_info
# sizes both by the image processor's size); Qwen3-VL and Qwen3.5: images 65,536 to 16,777,216 (16,384 x 32^2),
# videos 4,096 to 25,165,824 over their 2 frames (qwen3_vl.py reads the video processor's own size).
QWEN2_VL_MAX_PIXELS = 12_845_056
QWEN2_VL_PIXELS = (3_136, QWEN2_VL_MAX_PIXELS)
QWEN3_VL_MAX_PIXELS = 16_777_216
QWEN3_VL_PIXELS = (65_536, QWEN3_VL_MAX_PIXELS)
QWEN3_VL_VIDEO_PIXELS = (4_096, 25_165_824)
# qwen2_vl.py _MAX_FRAMES_PER_VIDEO (vLLM 0.11.0 on; 16 before): the dummy video's frames at most
QWEN2_VL_MAX_FRAMES = 14
QWEN3_VL_VIDEO_FRAMES = 2  # qwen3_vl.py Qwen3VLDummyInputsBuilder.get_dummy_mm_data: "treat videos as special images"
QWEN_HEADS = 16  # transformers' Qwen2VLVisionConfig, Qwen2_5_VLVisionConfig and Qwen3VLVisionConfig num_heads


def _smart_resize(height: int, width: int, unit: int, size: tuple, frames: int = 1, temporal: int = 1) -> tuple:
    """transformers' Qwen2-VL smart_resize (image_processing_qwen2_vl.py; Qwen3-VL's video form,
    video_processing_qwen3_vl.py, counts the frames, rounded to the temporal patch, in the pixels): each side a
    multiple of `unit`, the pixels within size's (shortest_edge, longest_edge). (height, width) in pixels."""
    low, high = size
    frames_bar = max(round(frames / temporal), 1) * temporal if temporal > 1 else 1
    h_bar, w_bar = round(height / unit) * unit, round(width / unit) * unit
    if frames_bar * h_bar * w_bar > high:
        beta = math.sqrt(frames * height * width / high) if temporal > 1 else math.sqrt(height * width / high)
        h_bar, w_bar = (max(unit, math.floor(height / beta / unit) * unit),
                        max(unit, math.floor(width / beta / unit) * unit))
    elif frames_bar * h_bar * w_bar < low:
        beta = math.sqrt(low / (frames * height * width)) if temporal > 1 else math.sqrt(low / (height * width))
        h_bar, w_bar = math.ceil(height * beta / unit) * unit, math.ceil(width * beta / unit) * unit
    return h_bar, w_bar


@dataclass(frozen=True)
class QwenProcessor:
    """What vLLM sizes a Qwen-VL tower's dummy items by (qwen2_vl.py / qwen3_vl.py Qwen2VLProcessingInfo,
    Qwen3VLProcessingInfo and their DummyInputsBuilders): the tower's patch geometry from config.json and the
    processor's size limits for images and videos, (shortest_edge, longest_edge) pixels."""

    qwen3: bool
    patch: int
    merge: int
    temporal: int
    channels: int
    image: tuple
    video: tuple
    said: str = ""  # --mm-processor-kwargs as given, where they set the limits (else the published ones)

    def source(self, modality: str) -> str:
        """Where `modality`'s limits come from, for the budget line."""
        if self.said:
            return self.said
        if not self.qwen3:
            return f"the processor's max_pixels {self.image[1]} assumed"
        if modality == "video":
            return f"the video processor's size.longest_edge {self.video[1]} assumed"
        return f"the processor's size.longest_edge {self.image[1]} assumed"

    def _item(self, grid_h: int, grid_w: int, steps: int = 1) -> tuple:
        """(tokens, patches, pixel values) of an item of `steps` temporal patches of grid_h x grid_w patches."""
        patches = steps * grid_h * grid_w
        return patches // self.merge ** 2, patches, patches * self.channels * self.temporal * self.patch ** 2

    def largest_image(self, longest: int) -> tuple:
        """qwen2_vl.py get_image_size_with_most_features: (width, height) in pixels."""
        _, width, height = _qwen_largest_image(self.patch, self.merge, longest)
        return width, height

    def image_item(self, cap: tuple = (None, None)) -> tuple:
        """The dummy image, resized as the processor does (get_num_image_tokens): (tokens, patches, pixel values,
        width, height). `cap`: --limit-mm-per-prompt's image (width, height), each the smaller of it and the
        largest image's (dummy_inputs.py _get_dummy_images), before the processor resizes it."""
        width, height = self.largest_image(self.image[1])
        width, height = min(width, cap[0] or width), min(height, cap[1] or height)
        h, w = _smart_resize(height, width, self.patch * self.merge, self.image)
        return (*self._item(h // self.patch, w // self.patch), w, h)

    def video_item(self, max_model_len: int, cap: tuple = (None, None, None)) -> tuple:
        """The dummy video: (tokens, patches, pixel values, frames, width, height). Qwen2-VL's (qwen2_vl.py
        get_num_frames_with_most_features, _get_max_video_frames): frames of the largest image, each resized by
        the videos' size limits, as many as max_model_len holds up to 14 (one at least), padded to whole temporal
        patches. Qwen3-VL's (qwen3_vl.py get_dummy_mm_data): 2 frames of the largest image under half the videos'
        longest_edge (a temporal patch), resized over both frames. `cap`: --limit-mm-per-prompt's video (width,
        height, num_frames), each the smaller of it and the model's (Qwen3-VL: frames stay 2, its sides capped
        after its own resize), the processor resizing the capped frames again."""
        unit, (cap_w, cap_h, cap_frames) = self.patch * self.merge, cap
        if self.qwen3:
            width, height = self.largest_image(self.video[1] // self.temporal)
            frames = QWEN3_VL_VIDEO_FRAMES
            h, w = _smart_resize(height, width, unit, self.video, frames, self.temporal)
            if cap_w or cap_h:
                h, w = _smart_resize(min(h, cap_h or h), min(w, cap_w or w), unit, self.video, frames, self.temporal)
        else:
            width, height = self.largest_image(self.image[1])
            step = self._item(*(side // self.patch for side in _smart_resize(height, width, unit, self.video)))[0]
            frames = min(QWEN2_VL_MAX_FRAMES, self.temporal * (max_model_len // step)) or 1
            frames = min(frames, cap_frames or frames)
            h, w = _smart_resize(min(height, cap_h or height), min(width, cap_w or width), unit, self.video)
        steps = -(-frames // self.temporal)
        return (*self._item(h // self.patch, w // self.patch, steps), frames, w, h)


@dataclass(frozen=True)
class VisionEncoder:
    """What a serving engine's profile run feeds the vision tower: items of the most features, each a set of
    tiles of patches through a pre-norm encoder of hidden / intermediate width, then `tokens_per_item`
    language-model embeddings. Gemma 3 (SigLIP): one 896-pixel crop an image (pan-and-scan is off by default in
    vLLM's Gemma3 processor). Llama 4: the tallest image, 16 tiles and the global tile, of 577 patches (the class
    token among them) each. Qwen: the processor's largest image (QWEN*_PIXELS), or its dummy video where that holds
    more tokens an item (`processor`, `profiled`; Qwen2-VL's and Qwen2.5-VL's at the processor's own limits)."""

    family: str  # "siglip" | "llama4" | "pixtral" | "qwen2_vl" | "qwen2_5_vl" | "qwen3_vl": the peak's layer
    tokens_per_item: int
    patches_per_item: int
    pixels_per_item: int  # channels x tile size^2 x tiles (x temporal patch for Qwen)
    hidden: int
    intermediate: int
    head_dim: int = 0  # pixtral, qwen: the 2-D rotary table's width
    tiles_per_item: int = 1  # llama4: an image's tiles, the unit vLLM shares out over TP ranks in data mode
    merge: int = 1  # qwen: the merger's spatial merge (merge^2 patches a token)
    deepstack_width: int = 0  # qwen3_vl: the deepstack mergers' outputs a token, held to the end of the pass
    embed_copies: int = 1  # qwen3_vl: a token's embeddings (the merger's and each deepstack merger's)
    item: str = "images"
    assumed: str = ""  # the processor limit kvplan assumes, for the budget line
    processor: Optional[QwenProcessor] = None  # qwen: what sizes the dummy image and video
    budget_tokens: int = 0  # the modality's largest item, which sizes the batch, where the dummy is smaller (0: same)

    @property
    def modalities(self) -> tuple:
        """The media the tower serves: vLLM builds it unless --limit-mm-per-prompt gives 0 for every one
        (interfaces.py _mark_tower_model: the Qwen-VL classes mark theirs for image and video)."""
        return ("image", "video") if self.family.startswith("qwen") else ("image",)

    def with_processor_kwargs(self, kwargs) -> "VisionEncoder":
        """The tower under vLLM's --mm-processor-kwargs (engines.ProcessorKwargs: the size limits its images' and
        videos' kwargs resolve to); only the Qwen-VL dummy items read them."""
        if self.processor is None or kwargs is None or not kwargs.sizes:
            return self
        image, video = kwargs.size("image", self.processor.image), kwargs.size("video", self.processor.video)
        if (image, video) == (self.processor.image, self.processor.video):
            return self
        processor = replace(self.processor, image=image, video=video, said=f"--mm-processor-kwargs {kwargs.text}")
        unit = (processor.patch * processor.merge) ** 2
        if min(image[1], video[1] // processor.temporal if processor.qwen3 else video[1]) < unit:
            raise FieldError("mm_processor_kwargs", f"leaves no image: the longest edge (max_pixels) must be at "
                                                    f"least {unit} pixels (one {processor.patch * processor.merge}-"
                                                    f"pixel square), got {kwargs.text}.")
        tokens, patches, pixels, width, height = processor.image_item()
        return replace(self, tokens_per_item=tokens, patches_per_item=patches, pixels_per_item=pixels,
                       processor=processor, assumed=f"{width} x {height} pixels: {processor.source('image')}")

    def profiled(self, max_model_len: int, image: bool = True, video: bool = True, limits=None) -> "VisionEncoder":
        """The item the profile run builds: of the modality of the most tokens an item among those not limited
        to 0, the video on a tie (encoder_budget.py get_modality_with_max_tokens); Qwen-VL's dummy video
        (QwenProcessor.video_item) beside its image. Qwen2-VL's video holds at least the image's tokens.
        `limits` (engines.MediaLimits): --limit-mm-per-prompt's dummy options shrink the Qwen item itself, while
        vLLM sizes the batch by the modality's largest item (`budget_tokens`)."""
        if self.processor is None:
            return self
        tokens, patches, pixels, frames, width, height = self.processor.video_item(max_model_len)
        if not video or image and tokens < self.tokens_per_item:
            if limits is None or not (limits.image_width or limits.image_height):
                return self
            tokens, patches, pixels, width, height = self.processor.image_item((limits.image_width,
                                                                                 limits.image_height))
            return replace(self, tokens_per_item=tokens, patches_per_item=patches, pixels_per_item=pixels,
                           budget_tokens=self.tokens_per_item, assumed=f"{width} x {height} pixels: "
                           f"--limit-mm-per-prompt's image size, under {self.processor.source('image')}")
        budget, said = tokens, self.processor.source("video")
        if limits is not None and (limits.video_width or limits.video_height or limits.video_frames):
            tokens, patches, pixels, frames, width, height = self.processor.video_item(
                max_model_len, (limits.video_width, limits.video_height, limits.video_frames))
            said = f"--limit-mm-per-prompt's video size, under {said}"
        return replace(self, tokens_per_item=tokens, patches_per_item=patches, pixels_per_item=pixels,
                       item="videos", budget_tokens=budget,
                       assumed=f"{frames} frames of {width} x {height} pixels: {said}")

    def peak_bytes_per_patch(self, width: int, tp: int) -> int:
        """The bytes a patch holds at the tower's peak, in the model dtype (`width` bytes a value) and TP degree
        (vLLM shards the towers' q/k/v and MLP columns: mm_encoder_tp_mode "weights"). vLLM 0.32
        model_executor/models/siglip.py, mllama4.py, pixtral.py, qwen2_vl.py, qwen2_5_vl.py and qwen3_vl.py, held to
        the towers themselves run on the CPU (tests/data/vllm_vision_profile_peak.json). SigLIP and Llama 4 keep
        the encoder's input and the layer's input (the callers' variables) beside the layer's own tensors. In the
        MLP: the attention output plus residual, the second LayerNorm's output, fc1's and the activation's outputs:
        4 hidden + 2 intermediate / tp values. In Llama 4's attention: the first LayerNorm's output, q/k/v, and the
        rotary step's float32 q and k and their complex64 products (16 hidden / tp bytes) before its q and k come
        back in the model dtype."""
        h, inter = self.hidden, self.intermediate
        if self.family == "pixtral":  # pixtral.py: six hidden-wide tensors in the MLP (the callers' four, the
            # residual sum, ffn_norm's output) beside gate_up and its one activation output (SiluAndMul as a GPU runs
            # it); in the attention's rotary step four beside qkv and four q / k-sized terms; and through both the
            # rotary cos and sin (head_dim each, model dtype) and the int64 (row, column) of every patch
            return width * (max(6 * h + 3 * inter // tp, 4 * h + 7 * h // tp) + 2 * self.head_dim) + 16
        if self.family.startswith("qwen"):
            return self._qwen_peak_bytes_per_patch(width, tp)
        mlp = width * (4 * h + 2 * inter // tp)
        if self.family != "llama4":
            return mlp  # SigLIP's attention holds 4 h + 4 h / tp values: below its MLP (intermediate > 2 hidden)
        return max(mlp, width * (3 * h + 5 * h // tp) + 16 * h // tp)

    def _qwen_peak_bytes_per_patch(self, width: int, tp: int) -> int:
        """The Qwen towers' blocks (the caller's hidden states beside each). Attention (Qwen2_5_VisionAttention,
        which Qwen3-VL reuses, and Qwen2VisionAttention) at its output projection: the block's input, the first
        norm's output and proj's, with qkv, the q / k copy and its rotated form, and the attention's output: 3 h +
        8 h / tp; Qwen2-VL at tp > 1 also all-gathers qkv (split_qkv, 3 h). On the CPU vLLM's ViT attention is
        torch SDPA inside one custom op (vit_attn_wrappers.py torch_sdpa_wrapper), so its scores are an operator's
        scratch, not counted; a GPU's flash attention keeps none either. The CPU's eager rotary (ApplyRotaryEmb
        forward_native) holds four q / k halves where a GPU's flash-attention kernel makes its one output: both peak
        at the same 11 h at tp 1. MLP: Qwen2-VL's QuickGELU runs eagerly on a GPU too (vLLM's custom ops are off by
        default), x * sigmoid(1.702 x): three intermediate-wide tensors beside fc1's input (the block's input, the
        residual sum, norm2's output); Qwen2.5-VL's down projection beside gate_up, SiluAndMul's one output (compiled
        on a GPU) and five hidden-wide tensors (the block's input, the attention output, the fused add-RMSNorm's
        two new outputs, down's own); Qwen3-VL's GELU beside fc1 and three hidden. Held through the pass: the
        rotary cos and sin (head_dim a patch together), Qwen2.5-VL's window index and its inverse (int64 a merged
        token each), Qwen3-VL's interpolated position embeddings (hidden) and the deepstack mergers' outputs."""
        h, inter = self.hidden, self.intermediate
        attention = 3 * h + 8 * h // tp + (3 * h if self.family == "qwen2_vl" and tp > 1 else 0)
        if self.family == "qwen2_vl":
            layer, held = max(3 * h + 3 * inter // tp, 4 * h + inter // tp, attention), 0
        elif self.family == "qwen2_5_vl":
            layer, held = max(5 * h + 3 * inter // tp, attention), 0
        else:
            layer, held = max(3 * h + 2 * inter // tp, 4 * h + inter // tp, attention), h
        index = 16 // self.merge ** 2 if self.family == "qwen2_5_vl" else 0
        return width * (layer + held + self.head_dim + self.deepstack_width // self.merge ** 2) + index

    def once_bytes(self, width: int) -> int:
        """Bytes the pass holds once, whatever its items: Qwen2.5-VL caches an item shape's rotary cos and sin
        (qwen2_5_vl.py get_rope_by_thw, on the GPU), and every dummy item has the same shape."""
        return width * self.head_dim * self.patches_per_item if self.family == "qwen2_5_vl" else 0


def _qwen_largest_image(patch: int, merge: int, max_pixels: int) -> tuple:
    """qwen2_vl.py Qwen2VLProcessingInfo.get_image_size_with_most_features: max_pixels // (patch x merge)^2 merged
    tokens as the closest factor pair (an aspect ratio of 200 at most, else fewer tokens); (tokens, width,
    height) in tokens and pixels."""
    unit = patch * merge
    for tokens in range(max_pixels // (unit * unit), 0, -1):
        rows = next(d for d in range(math.isqrt(tokens), 0, -1) if tokens % d == 0)
        if tokens // rows <= 200 * rows:
            return tokens, unit * (tokens // rows), unit * rows
    raise KvplanError(f"config field 'vision_config.patch_size' leaves no image under {max_pixels} pixels.")


def _qwen_encoder(cfg: Config) -> Optional[VisionEncoder]:
    """The Qwen towers' profile item: the largest image of the processor's published limits (QWEN*_PIXELS),
    patches of temporal x patch x patch pixels (an image is its frame repeated), merge x merge patches a token;
    the dummy video beside it (QwenProcessor)."""
    if _is_qwen3_vl(cfg):
        family, v, sizes = "qwen3_vl", _vision_config(cfg, QWEN3_VL_DEFAULTS), (QWEN3_VL_PIXELS, QWEN3_VL_VIDEO_PIXELS)
        hidden, inter = v.int("vision_config.hidden_size"), v.int("vision_config.intermediate_size")
        channels = v.int("vision_config.in_channels")
    elif _is_qwen2_5_vl(cfg) or _is_qwen2_vl(cfg):
        family = "qwen2_5_vl" if _is_qwen2_5_vl(cfg) else "qwen2_vl"
        v, sizes = _vision_config(cfg, QWEN2_VL_DEFAULTS), (QWEN2_VL_PIXELS, QWEN2_VL_PIXELS)
        if family == "qwen2_vl":
            hidden, inter = v.int("vision_config.embed_dim"), _qwen2_vl_intermediate(v)
        else:
            hidden, inter = v.int("vision_config.hidden_size"), v.int("vision_config.intermediate_size")
        channels = v.int("vision_config.in_chans")
    else:
        return None
    merge = v.int("vision_config.spatial_merge_size")
    processor = QwenProcessor(family == "qwen3_vl", v.int("vision_config.patch_size"), merge,
                              v.int("vision_config.temporal_patch_size"), channels, *sizes)
    tokens, patches, pixels, width, height = processor.image_item()
    deepstack = len(_deepstack(v)) if family == "qwen3_vl" else 0
    out = v.int("vision_config.out_hidden_size") if deepstack else 0
    return VisionEncoder(family, tokens_per_item=tokens, patches_per_item=patches, pixels_per_item=pixels,
                         hidden=hidden, intermediate=inter,
                         head_dim=hidden // v.int("vision_config.num_heads", default=QWEN_HEADS), merge=merge,
                         deepstack_width=deepstack * out, embed_copies=1 + deepstack, processor=processor,
                         assumed=f"{width} x {height} pixels: {processor.source('image')}")


def vision_encoder(cfg: Config) -> Optional[VisionEncoder]:
    """The vision tower's profile shape where kvplan models it (Gemma 3, Llama 4, Mistral 3, the Qwen-VL
    families), else None; `has_vision_tower` says whether a config has a tower at all."""
    if not has_vision_tower(cfg):
        return None
    qwen = _qwen_encoder(cfg)
    if qwen is not None:
        return qwen
    if _is_mistral3(cfg):  # mistral3.py Mistral3ProcessingInfo: the largest image is the processor's longest edge
        # (vision_config.image_size, 1540 in the published checkpoints), whole patches a side; an image becomes one
        # embedding a merge x merge block of patches
        v = _vision_config(cfg, PIXTRAL_DEFAULTS)
        patch, image = v.int("vision_config.patch_size"), v.int("vision_config.image_size")
        hidden, heads = v.int("vision_config.hidden_size"), v.int("vision_config.num_attention_heads")
        merge = cfg.int("spatial_merge_size", default=MISTRAL3_SPATIAL_MERGE)
        side = -(-image // patch)
        return VisionEncoder("pixtral", tokens_per_item=(-(-image // (patch * merge))) ** 2,
                             patches_per_item=side ** 2,
                             pixels_per_item=v.int("vision_config.num_channels") * (side * patch) ** 2, hidden=hidden,
                             intermediate=v.int("vision_config.intermediate_size"),
                             head_dim=v.int("vision_config.head_dim", default=hidden // heads))
    if cfg.model_type in ("gemma3", "gemma3_text"):
        v = _vision_config(cfg, SIGLIP_DEFAULTS)
        patch, image = v.int("vision_config.patch_size"), v.int("vision_config.image_size")
        return VisionEncoder("siglip", tokens_per_item=cfg.int("mm_tokens_per_image", default=GEMMA3_TOKENS_PER_IMAGE),
                             patches_per_item=(image // patch) ** 2,
                             pixels_per_item=v.int("vision_config.num_channels") * image * image,
                             hidden=v.int("vision_config.hidden_size"),
                             intermediate=v.int("vision_config.intermediate_size"))
    if cfg.model_type.startswith("llama4"):
        v = _vision_config(cfg, LLAMA4_DEFAULTS)
        patch, image = v.int("vision_config.patch_size"), v.int("vision_config.image_size")
        tiles = LLAMA4_MAX_TILES + 1
        grid = (image // patch) ** 2
        shuffle = v.get("vision_config.pixel_shuffle_ratio", LLAMA4_PIXEL_SHUFFLE)
        if isinstance(shuffle, bool) or not isinstance(shuffle, (int, float)) or not 0 < shuffle <= 1:
            raise KvplanError(f"config field 'vision_config.pixel_shuffle_ratio' must be a number in (0, 1] (0.5 in "
                              f"Llama 4), got {json_value(shuffle)}.")
        return VisionEncoder("llama4", tokens_per_item=tiles * max(1, round(grid * shuffle * shuffle)),
                             patches_per_item=tiles * (grid + 1),
                             pixels_per_item=tiles * v.int("vision_config.num_channels") * image * image,
                             hidden=v.int("vision_config.hidden_size"),
                             intermediate=v.int("vision_config.intermediate_size"), tiles_per_item=tiles)
    return None


def has_vision_tower(cfg: Config) -> bool:
    """A config with a sized vision_config: vLLM loads and profiles its encoder."""
    return isinstance(cfg.get("vision_config"), dict) and _sized(cfg)


# vision_config's per-image token counts a Gemma 4 config may name: the tower's pooled output (Gemma4Config) or its
# soft tokens (Gemma4UnifiedConfig); no transformers default, so read only where the file sets them
IMAGE_TOKEN_FIELDS = ("default_output_length", "num_soft_tokens")


@dataclass(frozen=True)
class MediaPrefix:
    """A multimodal model whose language model attends bidirectionally over each media item (a prefix LM): Gemma 4
    with text_config.use_bidirectional_attention "vision". What its config says one item costs, which the engine
    model reads (engines/vllm_media_floor.py)."""

    vision_tokens: tuple = ()  # (field, tokens) of the IMAGE_TOKEN_FIELDS its vision_config sets


def media_prefix(cfg: Config) -> Optional[MediaPrefix]:
    """The model's MediaPrefix, or None for a causal language model. The field's type differs between families
    (a bool in EmbeddingGemma's Gemma 3 config), so only Gemma 4's string "vision" counts; a Gemma 4 Unified config
    without the key gets transformers' "vision" from the family defaults (class_defaults.FAMILY_FIELDS)."""
    if not is_gemma4(cfg) or cfg.fields.get("use_bidirectional_attention") != "vision":
        return None
    tokens = ()
    if isinstance(cfg.get("vision_config"), dict):
        v = _vision_config(cfg, {})
        tokens = tuple((field, v.int(f"vision_config.{field}")) for field in IMAGE_TOKEN_FIELDS
                       if v.has(f"vision_config.{field}"))
    return MediaPrefix(tokens)


