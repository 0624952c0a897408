"""Gemma 3n's weights as vLLM 0.32.0 builds them (model_executor/models/gemma3n.py, gemma3n_mm.py): decoder layers
with AltUp, Laurel and per-layer inputs, KV-sharing layers without K / V, per-layer MLP widths; the language model's
per-layer input table and projections, AltUp's embed / unembed projections; the MobileNet-V5 vision tower and the
audio encoder with their embedders. Activation sparsity (activation_sparsity_pattern) holds no weights."""

from __future__ import annotations

from ..errors import json_value, KvplanError
from .config import Config, as_int
from .layers import first_shared_layer
from .tensors import Tensor, _mlp, _whole, model_tensors, per_layer_table

# timm's vision encoders by vision_config.architecture: parameters of timm.create_model(name) (timm 1.0.31 on the
# meta device; benchmarks/vllm_reference/gemma3n_figures.py counts vLLM's vision_tower, transformers'
# TimmWrapperModel over it, at the same figure). config.json names the encoder only, not its shape.
TIMM_ENCODERS = {"mobilenetv5_300m_enc": 294_126_912}


def widths(cfg: Config, n: int) -> list:
    """Each layer's MLP width (config.intermediate_size[i], vLLM gemma3n.py:468)."""
    listed = cfg.get("intermediate_sizes")
    if listed is None:
        return [cfg.int("intermediate_size")] * n
    if len(listed) != n:
        raise KvplanError(f"config field 'intermediate_size' must give one width per layer ({n}), got {len(listed)}.")
    return list(listed)


def layer_tensors(cfg: Config, d: dict, inter: int, shared: bool) -> list:
    """One Gemma3nDecoderLayer (gemma3n.py:437-540): AltUp's coefficients, router, router norm and float32
    correct_output_scale (ReplicatedLinear: whole on every rank); q / o and q_norm, and on a layer that keeps its
    cache K / V and k_norm (v_norm has no weight); the gated MLP of this layer's width; Laurel's rank-r pair
    (Column / RowParallel) and its norm; the per-layer input gate and projection (ReplicatedLinear); five norms."""
    h, heads, kv, hd = d["hidden"], d["heads"], d["kv_heads"], d["head_dim"]
    streams, rank, ple = cfg.int("altup_num_inputs"), cfg.int("laurel_rank"), cfg.int("hidden_size_per_layer_input")
    out = _whole([Tensor("dense", streams, streams, linear=True), Tensor("dense", streams * streams, streams,
                                                                        linear=True),
                  Tensor("dense", streams, h, linear=True), Tensor("norms", h), Tensor("norms", h, fp32=True)])
    out += [Tensor("attention", heads * hd, h, linear=True),
            Tensor("attention", h, heads * hd, linear=True, row_parallel=True),
            Tensor("attention", hd, replicated=True)]
    if not shared:
        out += [Tensor("attention", kv * hd, h, copies=2, linear=True, kv_split=kv),
                Tensor("attention", hd, replicated=True)]
    out += _mlp(cfg, "dense", h, inter)
    out += [Tensor("dense", rank, h, linear=True), Tensor("dense", h, rank, linear=True, row_parallel=True)]
    out += _whole([Tensor("dense", ple, h, linear=True), Tensor("dense", h, ple, linear=True)])
    return out + [Tensor("norms", h, copies=6, replicated=True)]  # five layer norms and Laurel's


def model_level_tensors(cfg: Config, d: dict, n: int) -> list:
    """Gemma3nTextModel outside its layers (gemma3n.py:573-660, 780-800): the embedding (tied LM head) and final
    norm, the per-layer input table (VocabParallelEmbedding), per_layer_model_projection (ColumnParallelLinear) and
    its norm, altup_num_inputs - 1 AltUp embed and as many unembed projections (ColumnParallelLinear)."""
    h, ple, streams = d["hidden"], cfg.int("hidden_size_per_layer_input"), cfg.int("altup_num_inputs")
    return model_tensors(cfg, d) + [Tensor("embed", per_layer_table(cfg, n)), Tensor("dense", n * ple, h, linear=True),
                                    Tensor("norms", ple, replicated=True),
                                    Tensor("dense", h, h, copies=2 * (streams - 1), linear=True)]


def _embedder(mm: Config, key: str, text_hidden: int) -> list:
    """Gemma3nMultimodalEmbedder (gemma3n_mm.py:494-539): a hard-token table (VocabParallelEmbedding), two norms,
    the projection to the text width (RowParallelLinear); the post-projection norm has no weight."""
    width = mm.int(f"{key}.hidden_size")
    return [Tensor("vision", mm.int(f"{key}.vocab_size", default=128), width),
            Tensor("vision", width, copies=2, replicated=True), Tensor("vision", text_hidden, width)]


def _positive(value) -> bool:
    return as_int(value) is not None and as_int(value) > 0


def _pair(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(_positive(v) for v in value)


def _two_convs(mm: Config, key: str, default: tuple, pairs: bool = True) -> tuple:
    """The audio subsampler's two convolutions' settings (transformers 5.22.2 modeling_gemma3n.py:731-775
    Gemma3nAudioSubSampleConvProjection reads entries 0 and 1, and the last channel count for its projection): two
    [height, width] pairs of positive integers, or (pairs False) two positive channel counts; absent, the
    Gemma3nAudioConfig default."""
    value = mm.get(key)
    if value is None:
        return default
    if not (isinstance(value, list) and len(value) == 2 and all(map(_pair if pairs else _positive, value))):
        what, example = ("[height, width] pairs of positive integers", [list(p) for p in default]) if pairs else \
            ("positive channel counts", list(default))
        raise KvplanError(f"config field '{key}' must be two {what}, one a convolution (such as {example}), got "
                          f"{json_value(value)}.")
    return tuple(tuple(map(as_int, v)) for v in value) if pairs else tuple(map(as_int, value))


def _audio_encoder(mm: Config) -> list:
    """transformers' Gemma3nAudioEncoder (vLLM builds it with AutoModel.from_config, gemma3n_mm.py:622-626): two
    bias-free 2-D convolutions with cumulative group norms, the input projection from channels x frequencies left
    (padding 1 each side, modeling_gemma3n.py Gemma3nAudioSubSampleConvProjection), then conformer blocks of two
    4x feed-forwards, local attention (q / k / v, relative-position and output projections, a per-dimension
    scale), a light convolution (2x start, depthwise kernel, end) and their norms."""
    a = "audio_config"
    h, layers = mm.int(f"{a}.hidden_size", default=1536), mm.int(f"{a}.conf_num_hidden_layers", default=12)
    heads, kernel = mm.int(f"{a}.conf_num_attention_heads", default=8), mm.int(f"{a}.conf_conv_kernel_size", default=5)
    channels = _two_convs(mm, f"{a}.sscp_conv_channel_size", (128, 32), pairs=False)
    kernels = _two_convs(mm, f"{a}.sscp_conv_kernel_size", ((3, 3), (3, 3)))
    strides = _two_convs(mm, f"{a}.sscp_conv_stride_size", ((2, 2), (2, 2)))
    freq, inputs, out = mm.int(f"{a}.input_feat_size", default=128), 1, []
    for (kh, kw), (_, sw), width in zip(kernels, strides, channels):
        out += [Tensor("vision", width, inputs * kh * kw), Tensor("vision", width)]
        freq, inputs = (freq + 2 - kw) // sw + 1, width
        if freq < 1:
            raise KvplanError(f"config field '{a}.sscp_conv_kernel_size' has a width ({kw}) that leaves no frequency "
                              f"bins of {a}.input_feat_size; each convolution must keep at least one.")
    out.append(Tensor("vision", h, inputs * freq))
    per_block = [Tensor("vision", 4 * h, h, copies=4), Tensor("vision", h, copies=4),  # two feed-forwards
                 Tensor("vision", h, h, copies=5), Tensor("vision", h, copies=2), Tensor("vision", h // heads),
                 Tensor("vision", 2 * h, h), Tensor("vision", h, kernel), Tensor("vision", h, copies=2),
                 Tensor("vision", h, h), Tensor("vision", h)]
    return out + [t._replace(copies=t.copies * layers) for t in per_block]


def tower_tensors(cfg: Config, text_hidden: int) -> list:
    """The vision tower (timm's encoder, TIMM_ENCODERS) and audio encoder with their embedders, whole on every rank
    but the embedders; [] for a text-only config (Gemma3nForCausalLM drops the towers' weights)."""
    vision, audio = cfg.get("vision_config"), cfg.get("audio_config")
    if not isinstance(vision, dict) or not isinstance(audio, dict):
        return []
    mm = Config({**{f"vision_config.{k}": v for k, v in vision.items()},
                 **{f"audio_config.{k}": v for k, v in audio.items()}}, cfg.name)
    name = vision.get("architecture", "mobilenetv5_300m_enc")
    if not isinstance(name, str) or name not in TIMM_ENCODERS:
        raise KvplanError(f"config field 'vision_config.architecture' names {json_value(name)}, a timm encoder "
                          f"kvplan does not size; it knows {', '.join(TIMM_ENCODERS)}.")
    return ([Tensor("vision", TIMM_ENCODERS[name], replicated=True)] + _embedder(mm, "vision_config", text_hidden)
            + _whole(_audio_encoder(mm)) + _embedder(mm, "audio_config", text_hidden))


def parts(cfg: Config, dims: dict, n: int, side: int) -> list:
    """[(tensors, times)] of the layers as vLLM allocates them (side 0), what vLLM allocates beyond the checkpoint
    (side 1: nothing) or what the checkpoint ships that vLLM drops (side 2: a KV-sharing layer's k_proj, v_proj and
    k_norm, which original checkpoints still ship; gemma3n.py:708-729 _kv_sharing_weights_mapper)."""
    first = first_shared_layer(cfg, n)
    shapes: dict = {}
    for i, inter in enumerate(widths(cfg, n)):
        shapes[(inter, i >= first)] = shapes.get((inter, i >= first), 0) + 1
    out = []
    for (inter, shared), times in shapes.items():
        if side == 0:
            out.append((layer_tensors(cfg, dims, inter, shared), times))
        elif side == 2 and shared:
            rows = dims["kv_heads"] * dims["head_dim"]
            out.append(([Tensor("attention", rows, dims["hidden"], copies=2, linear=True),
                         Tensor("attention", dims["head_dim"])], times))
    return out
