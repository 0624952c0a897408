"""Kimi Delta Attention (KDA), Kimi Linear's recurrent layers, as vLLM 0.32.0 builds them: which layers are KDA
and the shape of one layer, read from the config's `linear_attn_config` (vllm/transformers_utils/configs/
kimi_linear.py KimiLinearConfig; the layer: model_executor/layers/mamba/gdn/kimi_gdn_linear_attn.py
KimiGatedDeltaNetAttention). Every other layer is MLA.

A KDA layer keeps, per sequence (mamba_utils.py MambaStateShapeCalculator.kda_state_shape and
MambaStateDtypeCalculator.kda_state_dtype): a short-convolution window of kernel - 1 inputs over q, k and v
(3 x heads x head_dim channels, in the model dtype) and a recurrent state of heads x head_dim x head_dim in float32
whatever the model dtype; both split over TP by heads."""

from __future__ import annotations

from typing import NamedTuple, Optional

from ..errors import json_value, KvplanError
from .config import MAX_COUNT, MAX_LAYERS, Config, as_int
from .kinds import LinearState

KEY = "linear_attn_config"
KDA_STATE_BYTES = 4  # float32 recurrent state (kda_state_dtype with mamba_ssm_cache_dtype 'auto')


class KdaShape(NamedTuple):
    heads: int  # num_heads: q, k, v and gate heads, split over TP
    head_dim: int  # head_dim: of q, k and v alike
    kernel: int  # short_conv_kernel_size

    @property
    def width(self) -> int:
        """Channels of one of q, k, v (vLLM projection_size)."""
        return self.heads * self.head_dim


def kda_config(cfg: Config) -> Optional[dict]:
    """The config's linear_attn_config, or None without one."""
    value = cfg.get(KEY)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise KvplanError(f"config field '{KEY}' must be a mapping of fields, got {json_value(value)}.")
    return value


def _field(cfg: Config, name: str) -> int:
    value = (kda_config(cfg) or {}).get(name)
    number = as_int(value)
    if number is None or not 1 <= number <= MAX_COUNT:
        raise KvplanError(f"config field '{KEY}.{name}' must be a positive integer, got {json_value(value)}.")
    return number


def kda_shape(cfg: Config) -> KdaShape:
    return KdaShape(_field(cfg, "num_heads"), _field(cfg, "head_dim"), _field(cfg, "short_conv_kernel_size"))


def kda_layer_indices(cfg: Config, n: int) -> set:
    """0-based indices of the KDA layers: linear_attn_config.kda_layers counts from 1 (KimiLinearConfig.is_kda_layer
    tests layer_idx + 1); full_attn_layers is not read to place layers, so a layer in neither list is MLA."""
    value = (kda_config(cfg) or {}).get("kda_layers")
    items = [as_int(v) for v in value] if isinstance(value, list) and len(value) <= MAX_LAYERS else None
    if items is None or any(v is None or not 1 <= v <= n for v in items):
        raise KvplanError(f"config field '{KEY}.kda_layers' must list layer numbers from 1 to num_hidden_layers "
                          f"({n}), got {json_value(value)}.")
    return {v - 1 for v in items}


def kda_mixers(cfg: Config, n: int) -> list:
    kda = kda_layer_indices(cfg, n)
    return ["linear" if i in kda else "full" for i in range(n)]


def kda_state(cfg: Config) -> LinearState:
    """One KDA layer's per-sequence state (conv window of kernel - 1 over q, k, v; float32 recurrent state)."""
    shape = kda_shape(cfg)
    window = shape.kernel - 1
    return LinearState(shape.heads, window * 3 * shape.width, shape.heads * shape.head_dim ** 2, "kda",
                       conv_window=window, ssm_bytes=KDA_STATE_BYTES)
