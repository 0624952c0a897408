"""The forward pass verify runs, as shapes (pure: no torch). `architecture(raw_config, spec, tp)` says which
mixer and which feed-forward every decoder layer has, with every dimension the forward needs, on one rank of
`tp`; kvplan/verify/shards.py lists the tensors that rank holds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from ..errors import KvplanError
from ..model.config import Config
from ..model.kinds import LinearState, MLALatent
from ..model.layers import ffn_kinds
from ..model.spec import ModelSpec
from ..model.tensors import FOUR_NORMS, NON_GATED_MLP, QK_NORM, QKV_BIAS, TIED_BY_DEFAULT

VOCAB_PADDING = 64  # vLLM's DEFAULT_VOCAB_PADDING_SIZE
MXFP4_BLOCK = 32  # elements per E8M0 scale


@dataclass(frozen=True)
class LayerArch:
    index: int
    mixer: str  # attention | mla | linear
    window: Optional[int]  # sliding / chunked window in tokens (attention only)
    ffn: str  # dense | moe
    rope_theta: float


@dataclass(frozen=True)
class Arch:
    """One TP rank's view of a decoder-only model. Head counts are the whole model's; `*_rank` are this rank's."""

    name: str
    family: str
    tp: int
    dtype: str  # compute dtype of the checkpoint (bf16 | fp16)
    hidden: int
    vocab: int
    layers: tuple
    norm_eps: float
    norm_plus_one: bool  # Gemma: x * (1 + w)
    embed_scale: float  # Gemma multiplies embeddings by sqrt(hidden)
    sandwich_norms: bool  # Gemma 2/3: norms after attention and around the MLP too
    tied_embeddings: bool
    activation: str  # silu | gelu_tanh
    gated_mlp: bool
    # softmax attention
    heads: int = 0
    kv_heads: int = 0
    head_dim: int = 0
    rope_dim: int = 0
    qk_norm: bool = False
    qkv_bias: bool = False
    attn_output_gate: bool = False  # Qwen3-Next: sigmoid gate on the attention output
    attn_scale: float = 0.0
    # MLA
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_nope_dim: int = 0
    qk_rope_dim: int = 0
    v_head_dim: int = 0
    # gated DeltaNet
    lin_key_heads: int = 0
    lin_value_heads: int = 0
    lin_key_dim: int = 0
    lin_value_dim: int = 0
    conv_kernel: int = 0
    # feed-forward
    intermediate: int = 0
    experts: int = 0
    top_k: int = 0
    expert_intermediate: int = 0
    shared_intermediate: int = 0
    shared_gate: bool = False
    renormalize: bool = True
    routed_scale: float = 1.0
    experts_format: str = "bf16"  # bf16 | mxfp4
    notes: tuple = field(default_factory=tuple)

    # ---- per-rank sizes ---------------------------------------------------------------------------------------
    def split(self, units: int) -> int:
        """Units (heads, rows) of `units` on one rank: an even share, or one replica when there are fewer."""
        return units // self.tp if units >= self.tp else 1

    @property
    def heads_rank(self) -> int:
        return self.heads // self.tp

    @property
    def kv_heads_rank(self) -> int:
        return self.split(self.kv_heads)

    @property
    def padded_vocab(self) -> int:
        return -(-self.vocab // VOCAB_PADDING) * VOCAB_PADDING

    @property
    def vocab_rank(self) -> int:
        return self.padded_vocab // self.tp

    @property
    def conv_dim(self) -> int:
        return 2 * self.lin_key_heads * self.lin_key_dim + self.lin_value_heads * self.lin_value_dim

    @property
    def conv_dim_rank(self) -> int:
        return self.conv_dim // self.tp

    @property
    def mixers(self) -> set:
        return {layer.mixer for layer in self.layers}


def _layer_kinds(spec: ModelSpec) -> list:
    if len(spec.layers) != spec.num_hidden_layers:
        raise KvplanError(f"{spec.name} has decoder layers without attention or state (MLP-only blocks); "
                          f"verify's forward pass covers models whose every layer has a mixer.")
    kinds = []
    for layer in spec.layers:
        if isinstance(layer, MLALatent):
            kinds.append(("mla", None))
        elif isinstance(layer, LinearState):
            if layer.flavor != "gated-deltanet":
                raise KvplanError(f"{spec.name} has {layer.flavor} layers; verify's forward pass has a recurrent "
                                  f"step for gated DeltaNet (Qwen3-Next) only.")
            kinds.append(("linear", None))
        else:
            kinds.append(("attention", layer.window))
    return kinds


def architecture(raw: dict, spec: ModelSpec, tp: int) -> Arch:
    """The forward pass of `spec` on one rank of `tp`, from the config fields the spec does not keep."""
    cfg = Config(raw, spec.name)
    family = cfg.model_type
    gemma = family.startswith("gemma")
    n, hidden = spec.num_hidden_layers, spec.hidden_size
    kinds = _layer_kinds(spec)
    experts = spec.experts if spec.experts_per_token else 0
    ffns, _ = ffn_kinds(cfg, n)  # the model's own rule for which layers route to experts
    if "none" in ffns:
        raise KvplanError(f"{spec.name} has decoder layers without a feed-forward block; verify's forward pass "
                          f"covers models whose every layer has one.")
    theta = float(cfg.get("rope_theta", 10000.0))
    local_theta = float(cfg.get("rope_local_base_freq", theta))
    layers = tuple(LayerArch(i, mixer, window, ffns[i] if experts else "dense",
                             local_theta if window is not None else theta)
                   for i, (mixer, window) in enumerate(kinds))
    notes = []
    heads = spec.num_attention_heads
    head_dim = spec.head_dim or 0
    common = dict(name=spec.name, family=family, tp=tp, dtype=spec.dtype if spec.dtype in ("bf16", "fp16") else "bf16",
                  hidden=hidden, vocab=spec.vocab_size, layers=layers,
                  norm_eps=float(cfg.get("rms_norm_eps", cfg.get("layer_norm_epsilon", 1e-6))),
                  norm_plus_one=gemma, embed_scale=math.sqrt(hidden) if gemma else 1.0,
                  sandwich_norms=family in FOUR_NORMS,
                  tied_embeddings=cfg.flag("tie_word_embeddings", family in TIED_BY_DEFAULT),
                  activation="gelu_tanh" if gemma else "silu", gated_mlp=family not in NON_GATED_MLP, heads=heads)
    if "attention" in {k for k, _ in kinds}:
        partial = float(cfg.get("partial_rotary_factor", 0.25 if family == "qwen3_next" else 1.0))
        scalar = cfg.get("query_pre_attn_scalar")
        common.update(kv_heads=spec.kv_heads, head_dim=head_dim, rope_dim=int(head_dim * partial) // 2 * 2,
                      qk_norm=family in QK_NORM,
                      qkv_bias=bool(cfg.get("attention_bias", family in QKV_BIAS)),
                      attn_output_gate=family == "qwen3_next",
                      attn_scale=float(scalar) ** -0.5 if scalar else head_dim ** -0.5)
    if spec.is_mla:
        nope, rope = cfg.int("qk_nope_head_dim"), cfg.int("qk_rope_head_dim")
        common.update(q_lora_rank=cfg.optional_int("q_lora_rank"), kv_lora_rank=cfg.int("kv_lora_rank"),
                      qk_nope_dim=nope, qk_rope_dim=rope, v_head_dim=cfg.int("v_head_dim", default=nope),
                      attn_scale=(nope + rope) ** -0.5)
        notes.append("MLA RoPE without YaRN scaling (the shapes and bytes are the same)")
    if spec.linear_layers:
        common.update(lin_key_heads=cfg.int("linear_num_key_heads"), lin_value_heads=cfg.int("linear_num_value_heads"),
                      lin_key_dim=cfg.int("linear_key_head_dim"), lin_value_dim=cfg.int("linear_value_head_dim"),
                      conv_kernel=cfg.int("linear_conv_kernel_dim"))
    expert_inter = cfg.optional_int("moe_intermediate_size") or spec.intermediate_size
    shared = cfg.optional_int("n_shared_experts") * expert_inter + cfg.optional_int("shared_expert_intermediate_size")
    stored = {g.name: g.stored for g in spec.params}
    common.update(intermediate=spec.intermediate_size, experts=experts, top_k=spec.experts_per_token if experts else 0,
                  expert_intermediate=expert_inter if experts else 0, shared_intermediate=shared if experts else 0,
                  shared_gate=bool(cfg.optional_int("shared_expert_intermediate_size")),
                  renormalize=bool(cfg.get("norm_topk_prob", not family.startswith("deepseek"))),
                  routed_scale=float(cfg.get("routed_scaling_factor", 1.0)),
                  experts_format="mxfp4" if stored.get("experts") == "mxfp4" else "bf16")
    quantized = sorted({g.stored for g in spec.params if g.parameters and g.stored not in (spec.dtype, "mxfp4")})
    if quantized:
        raise KvplanError(f"{spec.name} stores weights as {quantized[0]}; verify's forward pass runs bf16/fp16 "
                          f"weights and mxfp4 experts only.")
    if family == "gpt_oss":
        notes.append("gpt-oss attention sinks and the clamped SwiGLU are not modelled (one scalar per head; "
                     "elementwise)")
    if any(layer.window for layer in layers) and cfg.has("attention_chunk_size"):
        notes.append("chunked layers attend their last chunk-size tokens (window form)")
    arch = Arch(**common, notes=tuple(notes))
    _check_divisible(arch)
    return arch


def _check_divisible(arch: Arch) -> None:
    tp = arch.tp
    checks = [("intermediate_size", arch.intermediate), ("moe_intermediate_size", arch.expert_intermediate),
              ("shared expert intermediate size", arch.shared_intermediate),
              ("linear_num_value_heads", arch.lin_value_heads), ("linear_num_key_heads", arch.lin_key_heads)]
    for name, value in checks:
        if value and value % tp:
            raise KvplanError(f"{arch.name}: {name} ({value}) is not divisible by tp {tp}, so vLLM cannot shard it.")
    if arch.padded_vocab % tp:
        raise KvplanError(f"{arch.name}: the padded vocabulary ({arch.padded_vocab}) is not divisible by tp {tp}.")
    if arch.experts_format == "mxfp4" and (arch.expert_intermediate // tp) % MXFP4_BLOCK:
        raise KvplanError(f"{arch.name}: mxfp4 experts need intermediate/tp divisible by {MXFP4_BLOCK}.")
