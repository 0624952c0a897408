"""Vision towers whose weights a multimodal checkpoint carries beside its language model, by shape, for the two
families whose public parameter counts include them: Gemma 3 (SigLIP encoder + projector) and Llama 4 (its own
encoder, pixel-shuffle adapter + projector). vLLM loads them, so they count towards the resident weights; they
stay in the model dtype. Other multimodal configs (InternVL, Qwen2-VL, ...) are counted as their language model
alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .config import Config
from .tensors import Tensor

# Fields a config copy may leave out, at the values the published checkpoints carry (google/gemma-3-*-it and
# meta-llama/Llama-4-* vision_config). transformers' own defaults differ where it matters: SigLIP builds a
# pooling head unless vision_use_head is false, and Llama 4's class default vision_output_dim is 7680.
SIGLIP_DEFAULTS = {"num_channels": 3, "vision_use_head": False}
LLAMA4_DEFAULTS = {"num_channels": 3, "projector_input_dim": 4096, "projector_output_dim": 4096,
                   "vision_output_dim": 4096, "multi_modal_projector_bias": False}


SHAPE_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "patch_size", "image_size")


def _vision_config(cfg: Config, defaults: dict) -> Config:
    raw = {**defaults, **cfg.get("vision_config")}
    return Config({f"vision_config.{k}": v for k, v in raw.items()}, cfg.name)


def _sized(cfg: Config) -> bool:
    """A vision_config that names the tower's shape; a copy trimmed to the language model's needs is not sized
    and its tower is left out rather than guessed."""
    return all(cfg.get("vision_config").get(key) is not None for key in SHAPE_KEYS)


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


def vision_tensors(cfg: Config, text_hidden: int) -> list:
    """Tensors of the vision tower and projector, [] when the family's tower is not modelled or absent."""
    if not has_vision_tower(cfg):
        return []
    if cfg.model_type in ("gemma3", "gemma3_text"):
        return _siglip(cfg, text_hidden)
    if cfg.model_type.startswith("llama4"):
        return _llama4(cfg, text_hidden)
    return []


# transformers' Gemma3Config default: the soft tokens one image becomes in the language model (the projector pools
# the 64 x 64 SigLIP patches of an 896-pixel image 4 x 4 into 256)
GEMMA3_TOKENS_PER_IMAGE = 256


@dataclass(frozen=True)
class VisionEncoder:
    """What a serving engine's profile run feeds the vision tower: images of the most features, each as a grid of
    patches through a pre-norm encoder of `layers` layers (hidden, intermediate), then `tokens_per_item`
    language-model embeddings. Gemma 3 (SigLIP) only: its processor makes one 896-pixel crop an image unless
    pan-and-scan is asked for (off by default in vLLM's Gemma3 processor), so every image is the same size."""

    tokens_per_item: int
    patches_per_item: int
    pixels_per_item: int  # channels x image_size^2 pixel values
    hidden: int
    intermediate: int
    layers: int


def vision_encoder(cfg: Config) -> Optional[VisionEncoder]:
    """The vision tower's profile shape where kvplan models it (Gemma 3), else None; `has_vision_tower` says
    whether a config has a tower at all."""
    if not has_vision_tower(cfg) or cfg.model_type not in ("gemma3", "gemma3_text"):
        return None
    v = _vision_config(cfg, SIGLIP_DEFAULTS)
    patch, image = v.int("vision_config.patch_size"), v.int("vision_config.image_size")
    return VisionEncoder(tokens_per_item=cfg.int("mm_tokens_per_image", default=GEMMA3_TOKENS_PER_IMAGE),
                         patches_per_item=(image // patch) ** 2,
                         pixels_per_item=v.int("vision_config.num_channels") * image * image,
                         hidden=v.int("vision_config.hidden_size"),
                         intermediate=v.int("vision_config.intermediate_size"),
                         layers=v.int("vision_config.num_hidden_layers"))


def has_vision_tower(cfg: Config) -> bool:
    """A config with a sized vision_config: vLLM loads and profiles its encoder."""
    return isinstance(cfg.get("vision_config"), dict) and _sized(cfg)
