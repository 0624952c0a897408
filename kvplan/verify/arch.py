"""The forward pass verify runs, as shapes (pure: no torch). `architecture(raw_config, spec, tp)` says which
mixer and which feed-forward every decoder layer has, with every dimension the forward needs, on one rank of
`tp`; kvplan/verify/shards.py lists the tensors that rank holds."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field, replace
from typing import Optional

from ..engines.vllm_registry import served_architecture
from ..errors import KvplanError, json_value, quote
from ..model.config import Config
from ..model.kda import kda_config, kda_shape
from ..model.kinds import IndexerKeys, LinearState, MLALatent, SharedKV
from ..model.layers import (ATTENTION_FREE, MAMBA1_ONLY, ffn_kinds, first_shared_layer, gemma4_mixers,
                            is_diffusion_gemma, is_mimo_v2, mamba1_inner, mamba2_shape, mimo_shape, mixer_kinds)
from ..model.params import fp8_ignored, quantized_format
from ..model.routing import Routing, routing
from ..model.spec import ModelSpec
from ..model.tensors import (FALCON, FLAGGED_ATTENTION, FOUR_NORMS, FP32_ROUTER, NON_GATED_MLP, QKV_BIAS,
                             TIED_BY_DEFAULT, WHOLE_QK_NORM, feed_forward_sizes, gated_attention, per_head_qk_norm)

# vLLM's DeepSeek MLA rotates interleaved pairs with YaRN (deepseek_v2.py:1122-1127 is_neox_style=False); verify's
# MLA kernels' fused RoPE turns halves, unscaled: the same shapes, bytes and launches
MLA_ROPE_NOTE = ("MLA RoPE on halves without YaRN scaling, where vLLM's DeepSeek MLA rotates interleaved pairs (the "
                 "shapes, bytes and launches are the same)")
VOCAB_PADDING = 64  # vLLM's DEFAULT_VOCAB_PADDING_SIZE
MXFP4_BLOCK = 32  # elements per E8M0 scale
FP8_BLOCK = 128  # rows and columns per float32 scale of a block-scaled fp8 checkpoint (kvplan/gpu/fp8.py BLOCK)
# Families whose attention rotates config.rotary_dim leading dims of each head: vLLM 0.32.0 minimax_m2.py:274 passes
# rotary_dim=config.rotary_dim (read with no default), and lines 194-198 make it partial_rotary_factor = rotary_dim /
# head_dim unless the rope parameters name a partial_rotary_factor of their own
ROTARY_DIM = ("minimax_m2",)
# Families whose rotary embedding turns interleaved pairs (2i, 2i + 1), GPT-J style, rather than halves (i, i + dim/2):
# vLLM 0.32.0 ernie45_moe.py:272-277 get_rope(..., is_neox_style=False); ernie45.py:49-51 sets
# rotary_emb.is_neox_style = False on the Llama layers Ernie4_5ForCausalLM builds
INTERLEAVED_ROPE = ("ernie4_5", "ernie4_5_moe")
# rope_theta where the config names none: vLLM 0.32.0 ernie45_moe.py:316 set_default_rope_theta(config, 500000)
# (transformers' Ernie4_5Config and Ernie4_5_MoeConfig: default_theta 500000.0)
DEFAULT_THETA = {"ernie4_5": 500000.0, "ernie4_5_moe": 500000.0}
# Families whose rotary settings vLLM reads from config.rope_parameters, as transformers 5 builds it: its own
# partial_rotary_factor and rope_theta (or the legacy rope_scaling mapping's) win over the top-level fields, which
# fill it where it names none; vLLM 0.32.0 glm4_moe.py:280-285 get_rope(rope_parameters=config.rope_parameters),
# after setdefault("partial_rotary_factor", 0.5)
ROPE_PARAMETERS = FLAGGED_ATTENTION


@dataclass(frozen=True)
class HeadShape:
    """The heads of one softmax-attention layer: query and KV heads (the whole model's), the key width (q and k)
    and the value width, the rotated dims of each head, the score scale, and whether each query head has a learned
    sink (a logit in the softmax denominator whose value is zero), and the rotation's form. Arch.attention(layer)
    gives every attention layer's; a layer carries its own only where layer types differ (MiMo-V2, Gemma 4)."""

    heads: int
    kv_heads: int
    head_dim: int
    v_head_dim: int
    rope_dim: int
    scale: float
    sinks: bool = False
    # default: rope_dim / 2 pairs of the first rope_dim dims at theta^(-2i / rope_dim) (Arch.rope_style pairs them);
    # proportional (Gemma 4's full layers, vLLM rotary_embedding/gemma4_rope.py): head_dim / 2 pairs (i, i +
    # head_dim / 2) of the whole head, the first rope_dim / 2 at theta^(-2i / head_dim), the others not turned (only
    # Gemma 4's attention, kvplan/gpu/gemma4.py, reads it)
    rope_type: str = "default"

    def heads_rank(self, tp: int) -> int:
        return self.heads // tp

    def kv_heads_rank(self, tp: int) -> int:
        return self.kv_heads // tp if self.kv_heads >= tp else 1


@dataclass(frozen=True)
class LayerArch:
    index: int
    # attention | mla | linear (gated DeltaNet) | kda (Kimi Delta Attention) | mamba (Mamba-2) | mamba1 | none
    # (Nemotron-H's MLPs)
    mixer: str
    window: Optional[int]  # sliding / chunked window in tokens (attention only)
    ffn: str  # dense | moe | none (Nemotron-H: a block holds a mixer or a feed-forward, never both)
    rope_theta: float
    cache: Optional[int] = None  # the layer's place in spec.layers (the cache layout's index); None: no cache
    shape: Optional[HeadShape] = None  # this attention layer's own heads (MiMo-V2, Gemma 4); None: the Arch's
    # a sparse MLA layer that runs its own lightning indexer: its key cache's place in spec.layers (None: the layer
    # is dense, or reuses the top-k of the last layer that ran one, GLM-5.2's shared indexers)
    keys: Optional[int] = None
    # Gemma 4 (the Gemma 4 section below): the cache index a KV-sharing layer reads (it computes no K/V and keeps no
    # cache), and the layer's MLP width
    reads: Optional[int] = None
    intermediate: int = 0
    # Gemma 3n: the layer's activation_sparsity_pattern entry (0: a dense tanh-GELU MLP; else the gate keeps what
    # lies above its mean + std x the standard normal's quantile at this value, the Gemma 3n section below)
    sparsity: float = 0.0


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
    activation: str  # silu | gelu_tanh | gelu | relu2
    gated_mlp: bool
    # softmax attention
    heads: int = 0
    kv_heads: int = 0
    head_dim: int = 0
    rope_dim: int = 0
    rope_style: str = "neox"  # neox: pairs (i, i + rope_dim/2); gptj: interleaved pairs (2i, 2i + 1), INTERLEAVED_ROPE
    qk_norm: bool = False  # per-head q/k RMS norms (Qwen3, Gemma 3): head_dim weights each
    # MiniMax-M2: q and k RMS-normed over the whole projection (heads x head_dim values a token, weights split with the
    # heads, k's by KV heads); at tp > 1 the mean square is over every rank's share (vLLM all-reduces it)
    whole_qk_norm: bool = False
    qkv_bias: bool = False
    attn_output_gate: bool = False  # Qwen3-Next: sigmoid gate on the attention output
    attn_scale: float = 0.0
    value_scale: float = 1.0  # MiMo-V2's attention_value_scale: v multiplied by it before the cache and attention
    # MLA
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_nope_dim: int = 0
    qk_rope_dim: int = 0
    v_head_dim: int = 0
    mla_rope: bool = True  # False: Kimi Linear's mla_use_nope, the qk_rope_head_dim parts pass unrotated
    # DeepSeek sparse attention (DSA): each query attends the index_topk latents a lightning indexer scores highest
    index_topk: int = 0  # 0: dense MLA
    index_heads: int = 0  # index_n_heads, every one on every rank
    index_dim: int = 0  # index_head_dim (its first qk_rope_dim values rotated)
    # gated DeltaNet; Kimi Delta Attention in the same fields (key and value heads alike: linear_attn_config.num_heads
    # of head_dim, conv_kernel its short_conv_kernel_size)
    lin_key_heads: int = 0
    lin_value_heads: int = 0
    lin_key_dim: int = 0
    lin_value_dim: int = 0
    conv_kernel: int = 0
    kda_gate_lower_bound: float = 0.0  # linear_attn_config.gate_lower_bound (< 0), or 0: the softplus gate
    # Mamba-2 (vLLM model_executor/layers/mamba/mamba_mixer2.py): heads of head_dim values, n_groups of B and C
    mamba_heads: int = 0
    mamba_head_dim: int = 0
    mamba_groups: int = 0
    ssm_state: int = 0
    conv_bias: bool = False
    # Mamba-1 (Jamba; vLLM model_executor/layers/mamba/mamba_mixer.py): one state row of ssm_state values a channel
    mamba1_inner: int = 0  # channels: mamba_expand x hidden (Jamba), intermediate_size (Mamba, Falcon-Mamba)
    mamba_dt_rank: int = 0  # dt's low-rank width before dt_proj
    # the RMSNorms on dt, B and C before the scan (MambaMixer use_rms_norm, rms_norm_has_weight): "weighted" (Jamba:
    # a weight each), "unweighted" (Falcon-Mamba: none), "none" (Mamba: no norms); at mamba1_norm_eps
    mamba1_norm: str = "weighted"
    mamba1_norm_eps: float = 0.0
    # feed-forward
    intermediate: int = 0
    experts: int = 0
    top_k: int = 0
    expert_intermediate: int = 0
    # columns of each expert's intermediate a rank holds at least, zero-filled beyond its share (Kimi Linear at
    # tp > 1: vLLM kimi_k3/nvidia/model.py KimiMoE padded_moe_intermediate_size); 0: no padding
    expert_min_share: int = 0
    shared_intermediate: int = 0
    shared_gate: bool = False
    routing: Routing = Routing()
    router_fp32: bool = False  # MiniMax-M2: the router's weight and logits float32 (vLLM GateLinear params, out)
    experts_format: str = "bf16"  # bf16 | mxfp4 | fp8_block
    # model | fp8 (the layers' attention and MLP matrices, one scale each: W8A8) | fp8_block (every layer matrix, a
    # scale per FP8_BLOCK x FP8_BLOCK tile: DeepSeek-V3's weight_block_size)
    linear_format: str = "model"
    # layer matrices an fp8 checkpoint keeps 16-bit in every layer (ignored_layers): "o" for MiMo-V2's o_proj
    unquantized: tuple = ()
    # Gemma 4: per-layer inputs of per_layer_input values a layer from a table of per_layer_vocab tokens; the final
    # logits soft-capped at logit_softcap (0: not)
    per_layer_input: int = 0
    per_layer_vocab: int = 0
    logit_softcap: float = 0.0
    # Gemma 3n: altup_num_inputs residual streams, the active one altup_active_idx; Laurel's rank-r pair
    altup_inputs: int = 0
    altup_active: int = 0
    laurel_rank: int = 0
    # False: the per-layer inputs are the normed projection alone, the table not read (vLLM's Gemma3nForCausalLM)
    per_layer_table: bool = True
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
    def is_gemma4(self) -> bool:
        return self.family.startswith("gemma4")

    @property
    def is_gemma3n(self) -> bool:
        return self.family.startswith("gemma3n")

    @property
    def padded_per_layer_vocab(self) -> int:
        return -(-self.per_layer_vocab // VOCAB_PADDING) * VOCAB_PADDING

    @property
    def conv_dim(self) -> int:
        if self.mamba_heads:  # x, B and C go through the convolution
            return self.mamba_heads * self.mamba_head_dim + 2 * self.mamba_groups * self.ssm_state
        if self.mamba1_inner:  # Mamba-1 convolves x only
            return self.mamba1_inner
        return 2 * self.lin_key_heads * self.lin_key_dim + self.lin_value_heads * self.lin_value_dim

    @property
    def conv_dim_rank(self) -> int:
        return self.conv_dim // self.tp

    @property
    def mixers(self) -> set:
        return {layer.mixer for layer in self.layers}

    def attention(self, layer: LayerArch) -> HeadShape:
        """The heads of softmax-attention `layer`: its own, or the model's (keys and values of head_dim, no sinks)."""
        if layer.shape is not None:
            return layer.shape
        return HeadShape(self.heads, self.kv_heads, self.head_dim, self.head_dim, self.rope_dim, self.attn_scale)


def _layer_kinds(cfg: Config, spec: ModelSpec) -> list:
    """(mixer, window, cache index) per decoder layer. spec.layers holds the layers with a cache, in order; a
    Nemotron-H MLP or MoE block has none (mixer "none")."""
    mixers, _ = mixer_kinds(cfg, spec.num_hidden_layers)
    if "parallel" in mixers:
        raise KvplanError(f"{spec.name} runs attention and Mamba-2 side by side in every layer (Falcon-H1); verify's "
                          f"layers hold one mixer each.")
    cached = iter(enumerate(spec.layers))
    kinds = []
    for mixer in mixers:
        if mixer == "none":
            kinds.append(("none", None, None, None))
            continue
        index, layer = next(cached, (None, None))
        if layer is None:
            raise KvplanError(f"{spec.name}: its config names more mixer layers than the model spec holds.")
        if isinstance(layer, MLALatent):
            kinds.append(("mla", None, index, _indexer_keys(spec, cached) if layer.leads_index_group else None))
        elif isinstance(layer, LinearState):
            if layer.flavor not in LINEAR_MIXERS:
                raise KvplanError(f"{spec.name} has {layer.flavor} layers; verify's forward pass has gated DeltaNet "
                                  f"(Qwen3-Next), Kimi Delta Attention (Kimi Linear), Mamba-2 (Nemotron-H) and "
                                  f"Mamba-1 (Jamba) layers.")
            kinds.append((LINEAR_MIXERS[layer.flavor], None, index, None))
        else:
            kinds.append(("attention", layer.window, index, None))
    return kinds


def _indexer_keys(spec: ModelSpec, cached) -> int:
    """The place in spec.layers of the key cache of a sparse MLA layer that runs its own indexer: the entry right
    after its latent (kvplan/model/layers.py cache_layers appends it there)."""
    index, layer = next(cached, (None, None))
    if not isinstance(layer, IndexerKeys):
        raise KvplanError(f"{spec.name}: a sparse MLA layer that runs its own indexer has no indexer key cache after "
                          f"its latent in the model spec.")
    return index


LINEAR_MIXERS = {"gated-deltanet": "linear", "kda": "kda", "mamba2": "mamba", "mamba": "mamba1"}


def architecture(raw: dict, spec: ModelSpec, tp: int) -> Arch:
    """The forward pass of `spec` on one rank of `tp`, from the config fields the spec does not keep; the fields
    `raw` leaves out filled as the spec's were (ModelSpec.transformers: the planned release's transformers)."""
    cfg = Config(raw, spec.name, spec.transformers)
    family = cfg.model_type
    if family in ATTENTION_FREE:
        _attention_free_refusals(cfg, spec)
    if is_diffusion_gemma(cfg):  # run on an H100 in session 73, it stopped at its K = V layers' cache write
        raise KvplanError(f"{spec.name} is DiffusionGemma, which denoises a {spec.canvas_length}-token canvas a "
                          f"step with a self-conditioning MLP beside Gemma 4's layers; verify's forward pass decodes "
                          f"one token a step and runs neither, so use estimate.")
    if spec.compressed_attention:
        raise KvplanError(f"{spec.name} uses DeepSeek-V4's compressed sparse attention (window, compressed and "
                          f"indexer caches, compressor states, hyper-connections); verify's forward pass does not run "
                          f"it, so use estimate.")
    if family.startswith("gemma3n"):
        return gemma3n_architecture(raw, spec, tp)
    if family.startswith("gemma4"):
        return gemma4_architecture(raw, spec, tp)
    if family == "ernie4_5_moe" and cfg.flag("use_bias", False):
        # ernie45_moe.py:326 qkv_bias=use_bias, :361 the dense MLPs' biases too; the estimate counts neither
        raise KvplanError(f"{spec.name} sets use_bias (biased QKV and dense-MLP projections, vLLM ernie45_moe.py); "
                          f"verify's ERNIE-4.5 layers have no biases, so it would not measure this model.")
    gemma = family.startswith("gemma")
    n, hidden = spec.num_hidden_layers, spec.hidden_size
    kinds = _layer_kinds(cfg, spec)
    experts = spec.experts if spec.experts_per_token else 0
    ffns, _ = ffn_kinds(cfg, n)  # the model's own rule for which layers route to experts
    if family.startswith("nemotron_h") and "moe" in ffns and cfg.has("moe_latent_size"):
        raise KvplanError(f"{spec.name} runs its experts in a latent space (moe_latent_size); verify's MoE runs them "
                          f"on the hidden state.")
    theta = _rope_field(cfg, "rope_theta", DEFAULT_THETA.get(family, 10000.0))
    local_theta = _config_float(cfg, "rope_local_base_freq", theta)
    # a sliding layer keeps its local RoPE theta under --disable-sliding-window (the spec's window gone): vLLM picks
    # the theta by the config's layer type (gemma3.py 0.32.0:152-162), so by the config's kind here too
    config_kinds, _ = mixer_kinds(cfg, n)
    local = [kind == "sliding" or window is not None for kind, (_, window, _, _) in zip(config_kinds, kinds)]
    layers = tuple(LayerArch(i, mixer, window, ffns[i] if experts or ffns[i] == "none" else "dense",
                             local_theta if local[i] else theta, cache, keys=keys)
                   for i, (mixer, window, cache, keys) in enumerate(kinds))
    notes = []
    heads = spec.num_attention_heads
    head_dim = spec.head_dim or 0
    dtype = spec.dtype if spec.dtype in ("bf16", "fp16") else "bf16"
    common = dict(name=spec.name, family=family, tp=tp, dtype=dtype, hidden=hidden, vocab=spec.vocab_size,
                  layers=layers,
                  norm_eps=_config_float(cfg, NORM_EPS[cfg.get("rms_norm_eps") is None], 1e-6),
                  norm_plus_one=gemma, embed_scale=embedding_scale(hidden, dtype) if gemma else 1.0,
                  sandwich_norms=family in FOUR_NORMS,
                  tied_embeddings=cfg.flag("tie_word_embeddings", family in TIED_BY_DEFAULT),
                  activation=_activation(cfg), gated_mlp=family not in NON_GATED_MLP, heads=heads)
    if "attention" in {kind[0] for kind in kinds}:
        # Nemotron-H's and Jamba's attention have no rotary embedding (vLLM models/nemotron_h.py NemotronHAttention,
        # jamba.py JambaAttentionDecoderLayer), nor Granite 4.0's with position_embedding_type "nope"
        # (granitemoehybrid.py GraniteMoeHybridAttention)
        nope = family.startswith("nemotron_h") or family == "jamba" or cfg.get("position_embedding_type") == "nope"
        partial = _rope_field(cfg, "partial_rotary_factor", 0.25 if family == "qwen3_next" else 0.0 if nope else 1.0)
        scalar = _optional_float(cfg, "query_pre_attn_scalar")
        common.update(kv_heads=spec.kv_heads, head_dim=head_dim, rope_dim=_rope_dim(cfg, head_dim, partial),
                      rope_style="gptj" if family in INTERLEAVED_ROPE else "neox",
                      qk_norm=per_head_qk_norm(cfg), whole_qk_norm=family in WHOLE_QK_NORM,
                      qkv_bias=bool(cfg.get("attention_bias", family in QKV_BIAS)),
                      attn_output_gate=gated_attention(cfg),
                      attn_scale=float(scalar) ** -0.5 if scalar else head_dim ** -0.5)
    if spec.is_mla:
        nope, rope = cfg.int("qk_nope_head_dim"), cfg.int("qk_rope_head_dim")
        # Kimi Linear's MLA (vLLM 0.32.0 models/kimi_k3/nvidia/model.py KimiDecoderLayer asserts mla_use_nope, builds
        # MultiHeadLatentAttention with use_rope left False, mla.py: rotary_emb None): no rotation, the scale still
        # (nope + rope)^-0.5
        if family == "kimi_linear" and not cfg.flag("mla_use_nope", False):  # the config class defaults it False
            raise KvplanError(f"config field 'mla_use_nope' must be true for {spec.name}: vLLM 0.32.0's Kimi Linear "
                              f"builds NoPE MLA only (kimi_k3/nvidia/model.py:918 asserts it), so it would not serve "
                              f"this model.")
        mla_rope = family != "kimi_linear"
        common.update(q_lora_rank=cfg.optional_int("q_lora_rank"), kv_lora_rank=cfg.int("kv_lora_rank"),
                      qk_nope_dim=nope, qk_rope_dim=rope, v_head_dim=cfg.int("v_head_dim", default=nope),
                      attn_scale=(nope + rope) ** -0.5, mla_rope=mla_rope)
        notes.append(MLA_ROPE_NOTE if mla_rope else
                     "MLA without RoPE (mla_use_nope): the qk_rope_head_dim parts of q and the latent pass unrotated")
    if any(getattr(layer, "sparse", False) for layer in spec.layers):
        common.update(_sparse_attention(cfg, spec, layers, notes))
    if any(layer.mixer == "mamba" for layer in layers):
        # Nemotron-H's and Granite 4.0's mamba_* fields, or a pure Mamba-2 config's own (layers.mamba2_shape)
        heads, head_dim, state, groups, kernel = mamba2_shape(cfg)
        common.update(mamba_heads=heads, mamba_head_dim=head_dim, mamba_groups=groups, ssm_state=state,
                      conv_kernel=kernel,
                      conv_bias=cfg.flag("use_conv_bias", True) and cfg.flag("mamba_conv_bias", True))
        if cfg.flag("mamba_proj_bias", False) or cfg.flag("use_bias", False):
            raise KvplanError(f"{spec.name} has biases on its Mamba projections; verify's Mamba-2 layer has none.")
    elif any(layer.mixer == "mamba1" for layer in layers):
        if family != "jamba" and family not in MAMBA1_ONLY:
            raise KvplanError(f"{spec.name} ({family}) has Mamba-1 layers; verify's Mamba-1 layer is Jamba's, "
                              f"Mamba's and Falcon-Mamba's.")
        common.update(_mamba1_fields(cfg, spec, hidden))
    elif any(layer.mixer == "kda" for layer in layers):
        common.update(_kda_fields(cfg))
        notes.append(_kda_note(common["lin_key_dim"]))
    elif spec.linear_layers:
        common.update(lin_key_heads=cfg.int("linear_num_key_heads"), lin_value_heads=cfg.int("linear_num_value_heads"),
                      lin_key_dim=cfg.int("linear_key_head_dim"), lin_value_dim=cfg.int("linear_value_head_dim"),
                      conv_kernel=cfg.int("linear_conv_kernel_dim"))
    sizes = feed_forward_sizes(cfg, hidden)
    stored = {g.name: g.stored for g in spec.params}
    common.update(intermediate=sizes.dense, experts=experts, top_k=spec.experts_per_token if experts else 0,
                  expert_intermediate=sizes.expert if experts else 0,
                  expert_min_share=spec.expert_min_partition if experts and tp > 1 else 0,
                  shared_intermediate=sizes.shared if experts else 0,
                  shared_gate=sizes.shared_gate, routing=routing(cfg), router_fp32=family in FP32_ROUTER,
                  experts_format="mxfp4" if stored.get("experts") == "mxfp4" else "bf16")
    if is_mimo_v2(cfg):
        common.update(_mimo_v2(cfg, spec, tp, layers))
        notes += _mimo_notes(cfg, common["layers"])
    linear_format = _linear_format(cfg, spec, layers)
    common.update(linear_format=linear_format, unquantized=_unquantized(cfg, spec, layers, linear_format))
    if common["unquantized"]:
        notes.append("o_proj kept 16-bit as the checkpoint stores it (quantization_config ignored_layers)")
    if linear_format == "fp8":
        notes.append("fp8 linears with one static scale each for weights and activations (W8A8, as vLLM's "
                     "Fp8LinearMethod runs them on fp8 tensor cores)")
    if linear_format == "fp8_block":
        if experts and stored.get("experts") == "fp8":
            common.update(experts_format="fp8_block")
        notes.append("block-scaled fp8 linears: W8A8 with activations quantised per token per 128 columns above 16 "
                     "tokens (as vLLM), W8A16 through the bundled skinny kernel at decode batches (the same weight "
                     "bytes)")
    runs = {spec.dtype, "mxfp4"} | ({"fp8"} if linear_format != "model" else set())
    quantized = sorted({g.stored for g in spec.params if g.parameters and g.stored not in runs})
    if quantized:
        raise KvplanError(f"{spec.name} stores weights as {quantized[0]}; verify's forward pass runs bf16/fp16 "
                          f"weights, fp8 linears (one scale a matrix, or one a 128x128 block) and mxfp4 experts only.")
    if family == "gpt_oss":
        notes.append("gpt-oss attention sinks and the clamped SwiGLU are not modelled (one scalar per head; "
                     "elementwise)")
    if family in ATTENTION_FREE:
        notes += _attention_free_notes(cfg)
    if family in FALCON:
        notes.append("Falcon's parallel attention + MLP block and its LayerNorms run as a sequential RMS-normed block "
                     "(the same matrices and bytes)")
    if family == "granitemoehybrid":
        notes.append("Granite's embedding, attention, residual and logits multipliers are not applied (scalars: the "
                     "same matrices and bytes)")
    if family.startswith("llama4"):
        notes.append("Llama 4's NoPE layers (no RoPE, attention temperature tuning) and the RoPE layers' L2 norm of q "
                     "and k are not modelled (the shapes and bytes are the same)")
    # (MiMo-V2's attention_chunk_size names no chunked layer: vLLM deletes it, model_arch_config_convertor.py)
    if any(layer.window for layer in layers) and cfg.has("attention_chunk_size") and not is_mimo_v2(cfg):
        notes.append("chunked layers attend their last chunk-size tokens (window form)")
    arch = Arch(**common, notes=tuple(notes))
    _check_divisible(arch)
    return arch


# Attention-free models as vLLM 0.32.0 builds them (model_executor/models/mamba.py MambaForCausalLM, which
# FalconMambaForCausalLM maps to (registry.py:104); mamba2.py Mamba2ForCausalLM): every layer an RMSNorm (eps
# layer_norm_epsilon) and a Mamba mixer, no MLP (mamba.py:48-97, mamba2.py:46-92); the residual carried in the model
# dtype (neither reads residual_in_fp32); norm_f; the LM head tied where tie_word_embeddings says (mamba.py:196).
# Falcon-Mamba's mixer norms dt, B and C without weights at mixer_rms_eps (mamba.py:60-73: use_rms_norm and
# rms_norm_has_weight=not is_falcon_mamba), Mamba's does not norm them.
MAMBA1_NORMS = {"jamba": "weighted", "falcon_mamba": "unweighted", "mamba": "none"}
MIXER_RMS_EPS = 1e-6  # transformers 5.19 FalconMambaConfig.mixer_rms_eps


def _attention_free_refusals(cfg: Config, spec: ModelSpec) -> None:
    """The attention-free forms verify's Mamba layers do not run, one line each: a convolution activation other than
    SiLU (vLLM passes hidden_act to causal_conv1d, mamba.py:74 / mamba2.py:70), projection biases (use_bias)."""
    act = str(cfg.get("hidden_act") or "silu").lower()
    if act not in ("silu", "swish"):
        raise KvplanError(f"{spec.name}: hidden_act is {quote(act)}; verify's Mamba layers run the convolution's SiLU "
                          f"only.")
    if cfg.flag("use_bias", False):
        raise KvplanError(f"{spec.name} has biases on its Mamba projections (use_bias); verify's Mamba layers have "
                          f"none.")


def _mamba1_fields(cfg: Config, spec: ModelSpec, hidden: int) -> dict:
    """A Mamba-1 layer's shape: Jamba's mamba_* fields (jamba.py:128-143, its norms at rms_norm_eps), or the
    attention-free configs' own (mamba.py:63-79: intermediate_size, state_size, conv_kernel, time_step_rank ("auto":
    ceil(hidden / 16), transformers' MambaConfig), use_conv_bias)."""
    if cfg.model_type == "jamba":
        if cfg.flag("mamba_proj_bias", False):
            raise KvplanError(f"{spec.name} has biases on its Mamba projections (mamba_proj_bias); verify's Mamba-1 "
                              f"layer has none.")
        return dict(mamba1_inner=mamba1_inner(cfg), ssm_state=cfg.int("mamba_d_state"),
                    mamba_dt_rank=cfg.int("mamba_dt_rank", default=math.ceil(hidden / 16)),
                    conv_kernel=cfg.int("mamba_d_conv", default=4), conv_bias=cfg.flag("mamba_conv_bias", True),
                    mamba1_norm="weighted", mamba1_norm_eps=_config_float(cfg, "rms_norm_eps", 1e-6))
    rank = cfg.get("time_step_rank", "auto")
    eps = _config_float(cfg, "mixer_rms_eps", MIXER_RMS_EPS) if cfg.model_type == "falcon_mamba" else 0.0
    return dict(mamba1_inner=mamba1_inner(cfg), ssm_state=cfg.int("state_size"),
                mamba_dt_rank=math.ceil(hidden / 16) if rank == "auto" else cfg.int("time_step_rank"),
                conv_kernel=cfg.int("conv_kernel", default=4), conv_bias=cfg.flag("use_conv_bias", True),
                mamba1_norm=MAMBA1_NORMS[cfg.model_type], mamba1_norm_eps=eps)


def _attention_free_notes(cfg: Config) -> list:
    notes = ["attention-free: every layer a Mamba block, no KV cache; one state slot a sequence in each layer "
             "(vLLM's block for a Mamba group is one request's state)"]
    if cfg.flag("residual_in_fp32", False):
        notes.append("residual_in_fp32 is not applied: vLLM 0.32.0's mamba.py / mamba2.py carry the residual in the "
                     "model dtype (neither reads it)")
    return notes


def _kda_note(head_dim: int) -> str:
    """What runs a KDA layer: decode in kvplan's step kernel where it is compiled for the head dim, prefill in torch."""
    from ..kernels.configs import KDA_HEAD_DIMS

    if head_dim in KDA_HEAD_DIMS:
        return ("Kimi Delta Attention: decode runs kvplan's KDA step kernel where it compiles (kda_step.cu, 16-bit "
                "activations; else float32 torch, as the forward label says), prefill float32 torch chunks (the TTFT "
                "times torch)")
    return (f"Kimi Delta Attention runs in float32 torch, decode and prefill (kvplan's KDA step kernel is compiled for "
            f"head dim {', '.join(map(str, KDA_HEAD_DIMS))}, not {head_dim}: the decode step is not judged)")


def _kda_fields(cfg: Config) -> dict:
    """The KDA layers' shape (vLLM 0.32.0 kimi_gdn_linear_attn.py: num_heads heads of head_dim for q, k and v alike,
    short_conv_kernel_size) and gate (gate_lower_bound, which vLLM asserts lies in [-5, 0))."""
    shape = kda_shape(cfg)
    bound = (kda_config(cfg) or {}).get("gate_lower_bound")
    if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float)) or not -5 <= bound < 0):
        raise KvplanError(f"config field 'linear_attn_config.gate_lower_bound' must be a number in [-5, 0), got "
                          f"{quote(bound)}.")
    return dict(lin_key_heads=shape.heads, lin_value_heads=shape.heads, lin_key_dim=shape.head_dim,
                lin_value_dim=shape.head_dim, conv_kernel=shape.kernel, kda_gate_lower_bound=float(bound or 0.0))


def _rope_field(cfg: Config, key: str, default: float) -> float:
    """rope_theta or partial_rotary_factor as the family's attention reads it: from rope_parameters (or rope_scaling)
    first where the family takes them (ROPE_PARAMETERS), else the top-level field, else `default`."""
    value = cfg.get(key)
    if cfg.model_type in ROPE_PARAMETERS:
        for name in ("rope_parameters", "rope_scaling"):
            mapping = cfg.get(name)
            if isinstance(mapping, dict) and mapping.get(key) is not None:
                key, value = f"{name}.{key}", mapping[key]
                break
    return float(default) if value is None else rope_number(key, value)


def rope_number(key: str, value) -> float:
    """A rotary setting named `key` checked: a partial_rotary_factor from 0 to 1, anything else (a theta, a base
    frequency) a positive number; one line naming the field otherwise."""
    partial = key.endswith("partial_rotary_factor")
    number = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not number or (value < 0 or value > 1 if partial else value <= 0):
        valid = "a number from 0 to 1" if partial else "a positive number"
        raise KvplanError(f"config field '{key}' must be {valid}, got {json_value(value)}.")
    return float(value)


INDEX_HEAD_DIM = 128  # the indexer key width verify takes: one fp8 scale a key and a query head, as vLLM's kernels


def _sparse_attention(cfg: Config, spec: ModelSpec, layers: tuple, notes: list) -> dict:
    """DeepSeek sparse attention's fields (vLLM 0.32.0 models/deepseek_v32/attention.py:50-127 DeepseekV32Indexer):
    the indexer's query comes from the q latent (q_lora_rank required), one fp8 scale covers a whole key or query
    head (quant_block_size 128 = index_head_dim: models/deepseek_v32/common/kernels.py:62-73 _fp8_ue8m0_quantize),
    and the first sparse layer runs its indexer (a later one may reuse its top-k: attention.py:165-177)."""
    dim, topk = cfg.int("index_head_dim"), cfg.int("index_topk")
    if dim != INDEX_HEAD_DIM:
        raise KvplanError(f"{spec.name}: index_head_dim is {dim}; verify's lightning indexer takes {INDEX_HEAD_DIM} "
                          f"(one fp8 scale a key, as vLLM's indexer kernels).")
    if not cfg.optional_int("q_lora_rank"):
        raise KvplanError(f"{spec.name} uses DeepSeek sparse attention without q_lora_rank; vLLM's indexer reads the "
                          f"query latent, so it needs one.")
    first = next(layer for layer in layers if layer.mixer == "mla")
    if first.keys is None:
        raise KvplanError(f"{spec.name}: its first sparse layer ({first.index}) reuses a top-k no earlier layer "
                          f"computed (index_topk_pattern / index_skip_topk_offset); verify's forward needs it to run "
                          f"its indexer.")
    if cfg.flag("indexer_rope_interleave", False):
        notes.append("the indexer's RoPE in the rotate-half form, not interleaved (the shapes and bytes are the same)")
    notes.append(f"DeepSeek sparse attention in torch: the lightning indexer (fp8 keys and queries, ue8m0 scales), "
                 f"the top-{topk} selection and MLA over the gathered latents")
    return dict(index_topk=topk, index_heads=cfg.int("index_n_heads"), index_dim=dim)


def _rope_dim(cfg: Config, head_dim: int, partial: float) -> int:
    """Rotated dims of each head: head_dim x partial_rotary_factor (_partial_rotary), or config.rotary_dim where the
    family takes it (ROTARY_DIM) and no partial_rotary_factor is given."""
    if cfg.model_type not in ROTARY_DIM or cfg.has("partial_rotary_factor"):
        return _partial_rotary(head_dim, partial)
    rotary = cfg.int("rotary_dim")
    if rotary % 2 or rotary > head_dim:
        raise KvplanError(f"config field 'rotary_dim' ({rotary}) must be even and at most head_dim ({head_dim}).")
    return rotary


def _partial_rotary(head_dim: int, partial: float, prefix: str = "") -> int:
    """int(head_dim x partial_rotary_factor), as vLLM's get_rope takes it (no rounding), which must be even: a rotation
    turns pairs."""
    rotary = int(head_dim * partial)
    if rotary % 2:
        raise KvplanError(f"config field 'partial_rotary_factor' ({partial}) rotates {rotary} of {prefix}head_dim "
                          f"{head_dim}; a rotation turns pairs, so it must be an even number of dims.")
    return rotary


def embedding_scale(hidden: int, dtype: str) -> float:
    """Gemma's sqrt(hidden) embedding scale as vLLM holds it: a tensor in the model's dtype (gemma3.py's normalizer
    buffer built under the model dtype, gemma4.py:1090-1097 torch.tensor(..., dtype=dtype)), so rounded to bf16 / fp16
    (the 31B's 73.32 is 73.5 in bf16)."""
    value = math.sqrt(hidden)
    if dtype == "fp16":
        return struct.unpack("<e", struct.pack("<e", value))[0]
    bits = struct.unpack("<I", struct.pack("<f", value))[0]
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16  # round to nearest even on the top 16 bits
    return struct.unpack("<f", struct.pack("<I", bits))[0]


NORM_EPS = ("rms_norm_eps", "layer_norm_epsilon")  # the norms' epsilon: rms_norm_eps, else layer_norm_epsilon


def _optional_float(cfg: Config, key: str) -> float:
    """A positive number where the config gives one (0 or absent: 0.0, the feature off)."""
    return _config_float(cfg, key, None) if cfg.get(key) else 0.0


def _config_float(cfg: Config, key: str, default: Optional[float]) -> float:
    """A positive finite number the config may give (`default` where it does not; None: required)."""
    value = cfg.get(key, default)
    if value is None:
        raise KvplanError(f"config field '{key}' is missing; it must be a positive number.")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise KvplanError(f"config field '{key}' must be a positive number, got {json_value(value)}.")
    return float(value)


# MiMo-V2 (Flash, V2.5 text) as vLLM 0.32.0 model_executor/models/mimo_v2.py builds it: MiMoV2FlashDecoderLayer
# (lines 362-437) gives a sliding layer (hybrid_layer_pattern 1) the swa_* heads and widths, swa_rope_theta and, with
# add_swa_attention_sink_bias, a sink a query head; a full layer the plain fields and no sink (it never passes the
# sink flag); both rotate int(head_dim x partial_rotary_factor) dims (get_rope, default 1.0), score at
# head_dim^-0.5 (MiMoV2Attention line 258) and multiply v by attention_value_scale first (lines 350-352).

def _mimo_shape(cfg: Config, kind: str, tp: int) -> HeadShape:
    shape = mimo_shape(cfg, kind)
    heads, kv, width = shape["heads"], shape["kv_heads"], shape["head_dim"]
    prefix = "swa_" if kind == "sliding" else ""
    if heads % tp:
        raise KvplanError(f"config field '{prefix}num_attention_heads' ({heads}) is not divisible by tp {tp}, so "
                          f"vLLM cannot shard it.")
    if kv % tp and tp % kv:
        raise KvplanError(f"config field '{prefix}num_key_value_heads' ({kv}) and tp {tp} do not divide each other.")
    partial = _rope_field(cfg, "partial_rotary_factor", 1.0)
    rotary = _partial_rotary(width, partial, prefix)
    sinks = kind == "sliding" and cfg.flag("add_swa_attention_sink_bias", False)
    return HeadShape(heads, kv, width, shape["v_head_dim"], rotary, width ** -0.5, sinks)


def _mimo_v2(cfg: Config, spec: ModelSpec, tp: int, layers: tuple) -> dict:
    """The Arch fields of a MiMo-V2 model: each attention layer with its type's heads and rope base, the RMS norms'
    layernorm_epsilon (read with no default, mimo_v2.py:435), the router in moe_router_dtype (float32 unless the
    config says otherwise, lines 158-166), no shared expert (MiMoV2MoE builds none)."""
    theta = _config_float(cfg, "rope_theta", 1000000.0)  # getattr(config, "rope_theta", 1000000), line 371
    shapes = {kind: _mimo_shape(cfg, kind, tp) for kind in ("full", "sliding")
              if any((layer.window is not None) == (kind == "sliding") for layer in layers)}
    if len({s.rope_dim for s in shapes.values()}) > 1:
        raise KvplanError(f"{spec.name}: its full and sliding layers rotate {shapes['full'].rope_dim} and "
                          f"{shapes['sliding'].rope_dim} dims; verify's forward pass has one rotary width.")
    local = _config_float(cfg, "swa_rope_theta", theta)
    layers = tuple(replace(layer, shape=shapes["sliding" if layer.window else "full"],
                           rope_theta=local if layer.window else theta) for layer in layers)
    first = layers[0].shape
    value_scale = cfg.get("attention_value_scale")
    return dict(layers=layers, heads=first.heads, kv_heads=first.kv_heads, head_dim=first.head_dim,
                rope_dim=first.rope_dim, attn_scale=first.scale,
                value_scale=1.0 if value_scale is None else _config_float(cfg, "attention_value_scale", None),
                norm_eps=_config_float(cfg, "layernorm_epsilon", None), shared_intermediate=0, shared_gate=False,
                router_fp32=str(cfg.get("moe_router_dtype") or "float32") in ("float32", "fp32"))


def _mimo_notes(cfg: Config, layers: tuple) -> list:
    def words(kind):
        members = [layer for layer in layers if (layer.window is not None) == (kind == "sliding")]
        if not members:
            return None
        s = members[0].shape
        window = f" of {members[0].window} tokens" if kind == "sliding" else ""
        sinks = ", a learned sink a query head" if s.sinks else ""
        return (f"{len(members)} {kind} layers{window}: {s.heads} query / {s.kv_heads} KV heads, keys {s.head_dim} "
                f"and values {s.v_head_dim} wide{sinks}")

    notes = ["MiMo-V2: " + "; ".join(w for w in (words("full"), words("sliding")) if w) + " (decode attention in "
             "torch over gathered pages: no bundled kernel takes keys wider than values or sinks)",
             "MiMo-V2's MTP layers are not built or run: vLLM's main model skips every 'mtp' weight "
             "(mimo_v2.py:762), and serving without speculative decoding runs none"]
    if cfg.flag("add_full_attention_sink_bias", False):
        notes.append("add_full_attention_sink_bias is not read: vLLM 0.32.0 gives full layers no sink "
                     "(mimo_v2.py:402-418)")
    return notes


def _unquantized(cfg: Config, spec: ModelSpec, layers: tuple, linear_format: str) -> tuple:
    """("o",) where an fp8 checkpoint's ignored_layers names every attention layer's self_attn.o_proj (MiMo-V2:
    vLLM then builds those 16-bit, quantization/fp8.py Fp8Config.get_quant_method), () where it names none; some
    but not all are refused in one line."""
    if linear_format == "model":
        return ()
    qcfg = cfg.get("quantization_config")
    ignored = fp8_ignored(qcfg if isinstance(qcfg, dict) else {})
    attention = [layer.index for layer in layers if layer.mixer == "attention"]
    kept = [i for i in attention if f"model.layers.{i}.self_attn.o_proj" in ignored]
    if not kept:
        return ()
    if len(kept) < len(attention):
        raise KvplanError(f"{spec.name}: quantization_config ignored_layers keeps o_proj 16-bit in {len(kept)} of "
                          f"its {len(attention)} attention layers; verify keeps it 16-bit in every layer or none.")
    return ("o",)


FP8_LINEAR_GROUPS = {"attention", "dense"}  # kvplan/model/params.py groups
GROUP_NAMES = {"experts": "routed-expert", "shared_experts": "shared-expert", "linear": "linear-attention"}


def _linear_format(cfg: Config, spec: ModelSpec, layers: tuple) -> str:
    """"fp8" where the checkpoint stores its layers' linear weights in fp8 with one scale per matrix (vLLM's
    Fp8LinearMethod: the weight and the activation each quantised per tensor, the product on fp8 tensor cores),
    "fp8_block" where each 128 x 128 block has its scale (DeepSeek-V3: every layer matrix, the experts' too),
    "model" where they are 16-bit. Other block sizes, per-tensor fp8 experts and per-tensor fp8 MLA / DeltaNet /
    Mamba projections are refused in one line each, as are block-scaled DeltaNet / Mamba projections."""
    fp8 = {g.name for g in spec.params if g.parameters and g.stored == "fp8"}
    if not fp8:
        return "model"
    qcfg = cfg.get("quantization_config")  # none where --quantization fp8 re-priced a 16-bit checkpoint
    opts = quantized_format(qcfg)[1] if isinstance(qcfg, dict) else {}
    others = {layer.mixer for layer in layers} - {"attention", "none"}
    if opts.get("block"):
        rows, cols = opts["block"]
        if (rows, cols) != (FP8_BLOCK, FP8_BLOCK):
            raise KvplanError(f"{spec.name} stores fp8 weights in {rows}x{cols} blocks with a scale each; verify's "
                              f"block-scaled fp8 linears take {FP8_BLOCK}x{FP8_BLOCK} blocks.")
        if others - {"mla"}:
            raise KvplanError(f"{spec.name} stores fp8 weights in {sorted(others - {'mla'})[0]} layers; verify's "
                              f"block-scaled fp8 linears are attention, MLA, MLP and expert matrices only.")
        return "fp8_block"
    if fp8 - FP8_LINEAR_GROUPS:
        group = sorted(fp8 - FP8_LINEAR_GROUPS)[0]
        raise KvplanError(f"{spec.name} stores its {GROUP_NAMES.get(group, group)} weights in fp8; verify's fp8 "
                          f"linears are attention and dense-MLP matrices only.")
    if others:
        raise KvplanError(f"{spec.name} stores fp8 weights in {sorted(others)[0]} layers; verify's fp8 linears are "
                          f"softmax attention and dense-MLP matrices only.")
    return "fp8"


# vLLM 0.32.0 layers/activation.py:845-854 _ACTIVATION_AND_MUL_REGISTRY, those verify's MLP runs
GATED_ACTIVATIONS = {"gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "geglu": "gelu", "silu": "silu",
                     "swish": "silu"}


def _activation(cfg: Config) -> str:
    """The feed-forward's activation: Gemma's tanh GELU, Falcon's exact GELU (vLLM falcon.py get_act_fn("gelu")),
    Nemotron-H's squared ReLU, SiLU otherwise."""
    if cfg.model_type.startswith("gemma"):  # hidden_activation: gemma3.py:87 / gemma4.py:280 get_act_and_mul_fn
        act = str(cfg.get("hidden_activation") or "gelu_pytorch_tanh").lower()
        allowed = GATED_ACTIVATIONS if cfg.model_type[:6] in ("gemma3", "gemma4") else ("gelu_pytorch_tanh",)
        if act not in allowed:  # Gemma 1 / 2 (gemma2.py:81) take gelu_pytorch_tanh only
            raise KvplanError(f"config field 'hidden_activation' is {quote(act)}; vLLM's {cfg.model_type} MLP takes "
                              f"{', '.join(allowed)}.")
        return GATED_ACTIVATIONS[act]
    if cfg.model_type in FALCON:
        return "gelu"
    if cfg.model_type.startswith("nemotron_h"):
        act = cfg.get("mlp_hidden_act", "relu2")
        if act != "relu2":
            raise KvplanError(f"{cfg.name}: mlp_hidden_act {act!r}; verify's Nemotron-H MLP takes relu2.")
        return "relu2"
    return "silu"


def _check_divisible(arch: Arch) -> None:
    tp = arch.tp
    checks = [("intermediate_size", arch.intermediate), ("moe_intermediate_size", arch.expert_intermediate),
              ("shared expert intermediate size", arch.shared_intermediate),
              ("linear_num_value_heads", arch.lin_value_heads), ("linear_num_key_heads", arch.lin_key_heads),
              ("mamba_num_heads", arch.mamba_heads), ("mamba_expand x hidden_size", arch.mamba1_inner)]
    for name, value in checks:
        if value and value % tp:
            raise KvplanError(f"{arch.name}: {name} ({value}) is not divisible by tp {tp}, so vLLM cannot shard it.")
    if arch.mamba_groups % tp:  # vLLM replicates fewer groups than ranks; verify's layer splits them only
        raise KvplanError(f"{arch.name}: n_groups ({arch.mamba_groups}) is not divisible by tp {tp}; verify's Mamba-2 "
                          f"layer splits its B/C groups across ranks and does not replicate them.")
    if arch.padded_vocab % tp:
        raise KvplanError(f"{arch.name}: the padded vocabulary ({arch.padded_vocab}) is not divisible by tp {tp}.")
    if arch.experts_format == "mxfp4" and (arch.expert_intermediate // tp) % MXFP4_BLOCK:
        raise KvplanError(f"{arch.name}: mxfp4 experts need intermediate/tp divisible by {MXFP4_BLOCK}.")


# ---- Gemma 4 ------------------------------------------------------------------------------------------------
# Gemma 4's forward pass as vLLM 0.32.0 model_executor/models/gemma4.py builds it (the layers: kvplan/gpu/gemma4.py;
# the tensors of a rank: shards.py gemma4_layer_weights, gemma4_model_weights):
#
# - every layer attention, sliding or full (layers.gemma4_mixers), each of its own HeadShape (LayerArch.shape):
#   full layers global_head_dim wide and, under attention_k_eq_v, num_global_key_value_heads KV heads
#   (Gemma4DecoderLayer reads per_layer_config[i], gemma4.py:560-591; layers.gemma4_attention); q and k RMS-normed
#   per head with weights, v without one (gemma4.py:432-446); attention scaling 1.0 (gemma4.py:400);
# - RoPE per layer type from rope_parameters (gemma4.py:455-470): the sliding layers' "default" rotation, the full
#   layers' "proportional" one (HeadShape.rope_type; rotary_embedding/gemma4_rope.py: rotary_dim // 2 frequencies
#   over head_dim, the other pairs of the whole head left as they are);
# - the last num_kv_shared_layers layers compute no K/V and keep no cache: a q_proj alone (gemma4.py:409-418,
#   527-533), attending over the cache of the last earlier layer of its type (gemma4.py:473-492,
#   kv_sharing_target_layer_name); their MLP twice as wide under use_double_wide_mlp (gemma4.py:598-608);
# - per-layer inputs (PLE, the E2B / E4B models): a table of num_layers x hidden_size_per_layer_input values a token
#   and a projection of the embeddings (gemma4.py:866-915, 1023-1066), gated into each layer's output (759-772);
# - a dense MLP in every layer, the MoE block beside it where num_experts is set (26B-A4B; gemma4.py:630-664,
#   736-757; the router gemma4.py:289-362, its routing 221-246); layer_scalar times every layer's output
#   (gemma4.py:774); the final logits soft-capped (gemma4.py:1458, final_logit_softcapping).

# transformers 5.19 Gemma4TextConfig.__post_init__: the rope_parameters a config without them gets
DEFAULT_ROPE = {"sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
                "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25,
                                   "rope_theta": 1_000_000.0}}
ROPE_TYPES = ("default", "proportional")  # vLLM get_rope: RotaryEmbedding, Gemma4RotaryEmbedding
TYPE_NAMES = {"sliding": "sliding_attention", "full": "full_attention"}


def _gemma4_rope(cfg: Config, kind: str, head_dim: int) -> tuple:
    """(theta, rope type, rotary dims) of a layer of `kind` (sliding | full), as gemma4.py:455-470 picks its rope
    parameters and vLLM get_rope (rotary_embedding/__init__.py:66-72) its rotary_dim = int(head_dim x factor)."""
    name = TYPE_NAMES[kind]
    params = cfg.get("rope_parameters")
    if not isinstance(params, dict):
        params = DEFAULT_ROPE[name]
    elif isinstance(params.get(name), dict):
        params = params[name]
    elif kind == "sliding":  # the legacy flat form: the sliding layers take rope_local_base_freq
        params = {**params, "rope_theta": rope_number("rope_local_base_freq", cfg.get("rope_local_base_freq", 1e4))}
    rope_type = params.get("rope_type", "default")
    if rope_type not in ROPE_TYPES:
        raise KvplanError(f"{cfg.name}: the {name} layers' rope_type is {rope_type!r}; verify's Gemma 4 forward "
                          f"runs the {' and '.join(ROPE_TYPES)} rotations only.")
    field = f"rope_parameters.{name}."
    factor = rope_number(field + "partial_rotary_factor", params.get("partial_rotary_factor", 1.0))
    rotary = params.get("rope_dim") or int(head_dim * factor)
    if isinstance(rotary, bool) or not isinstance(rotary, int) or not 0 < rotary <= head_dim or rotary % 2:
        raise KvplanError(f"{cfg.name}: the {name} layers rotate {quote(rotary)} of {head_dim} dims a head; verify "
                          f"takes an even count from 2 to head_dim.")
    return rope_number(field + "rope_theta", params.get("rope_theta", 10000.0)), rope_type, rotary


def _gemma4_refusals(cfg: Config, spec: ModelSpec) -> None:
    """The Gemma 4 options verify's forward does not run, one line each."""
    if cfg.get("attn_logit_softcapping") is not None:  # gemma4.py:591: Attention(logits_soft_cap=...)
        raise KvplanError(f"{spec.name} soft-caps its attention logits (attn_logit_softcapping); verify's Gemma 4 "
                          f"attention does not.")
    if cfg.flag("attention_bias", False):
        raise KvplanError(f"{spec.name} has attention biases (attention_bias); verify's Gemma 4 attention has none.")
    if cfg.get("use_bidirectional_attention") == "all":
        raise KvplanError(f"{spec.name} attends bidirectionally over every token (use_bidirectional_attention "
                          f"'all'); verify's Gemma 4 forward is causal.")
    stored = sorted({g.stored for g in spec.params if g.parameters and g.name != "vision"} - {spec.dtype})
    if stored or spec.dtype not in ("bf16", "fp16"):
        raise KvplanError(f"{spec.name} stores weights as {(stored or [spec.dtype])[0]}; verify's Gemma 4 forward "
                          f"runs bf16/fp16 weights only.")


def gemma4_architecture(raw: dict, spec: ModelSpec, tp: int) -> Arch:
    """The forward pass of a Gemma 4 `spec` on one rank of `tp`."""
    cfg = Config(raw, spec.name, spec.transformers)
    _gemma4_refusals(cfg, spec)
    n, hidden = spec.num_hidden_layers, spec.hidden_size
    kinds, _ = gemma4_mixers(cfg, n)
    first = first_shared_layer(cfg, n)
    experts = cfg.optional_int("num_experts")  # gemma4.py:630: the MoE block wherever num_experts is set
    inter = cfg.int("intermediate_size")
    double = cfg.flag("use_double_wide_mlp", False)
    layers = []
    for i, (kind, cached) in enumerate(zip(kinds, spec.layers)):
        shared = isinstance(cached, SharedKV)
        kv = cached.target if shared else cached  # a KV-sharing layer attends with its target's heads
        theta, rope_type, rotary = _gemma4_rope(cfg, kind, kv.head_dim)
        shape = HeadShape(spec.num_attention_heads, kv.kv_heads, kv.head_dim, kv.value_dim, rotary, 1.0,
                          rope_type=rope_type)  # scaling 1.0: gemma4.py:400
        wide = 2 if double and i >= first > 0 else 1  # gemma4.py:598-608
        layers.append(LayerArch(i, "attention", kv.window, "moe" if experts else "dense", theta,
                                cache=None if shared else i, shape=shape, reads=cached.source if shared else None,
                                intermediate=wide * inter))
    ple = cfg.optional_int("hidden_size_per_layer_input")
    notes = []
    if cfg.flag("attention_k_eq_v", False):
        notes.append("attention_k_eq_v: vLLM loads k_proj into the full layers' V rows too; verify's dummy V rows "
                     "hold values of their own (the same bytes and work)")
    arch = Arch(name=spec.name, family=cfg.model_type, tp=tp, dtype=spec.dtype, hidden=hidden, vocab=spec.vocab_size,
                layers=tuple(layers), norm_eps=_config_float(cfg, "rms_norm_eps", 1e-6), norm_plus_one=False,
                embed_scale=embedding_scale(hidden, spec.dtype), sandwich_norms=True,
                tied_embeddings=cfg.flag("tie_word_embeddings", True), activation=_activation(cfg), gated_mlp=True,
                heads=spec.num_attention_heads, kv_heads=spec.kv_heads, head_dim=cfg.int("head_dim"),
                rope_dim=cfg.int("head_dim"), qk_norm=True, attn_scale=1.0, intermediate=inter, experts=experts,
                top_k=cfg.int("top_k_experts") if experts else 0,
                expert_intermediate=cfg.int(("moe_intermediate_size", "expert_intermediate_size")) if experts else 0,
                routing=Routing("softmax", True), per_layer_input=ple,
                per_layer_vocab=cfg.int("vocab_size_per_layer_input", default=spec.vocab_size) if ple else 0,
                logit_softcap=_optional_float(cfg, "final_logit_softcapping"), notes=tuple(notes))
    _gemma4_check_divisible(arch)
    return arch


def _gemma4_check_divisible(arch: Arch) -> None:
    tp = arch.tp
    checks = [("num_attention_heads", arch.heads), ("intermediate_size", arch.intermediate),
              ("moe_intermediate_size", arch.expert_intermediate), ("the padded vocabulary", arch.padded_vocab),
              ("the padded per-layer-input vocabulary", arch.padded_per_layer_vocab),
              ("num_hidden_layers x hidden_size_per_layer_input", len(arch.layers) * arch.per_layer_input)]
    for name, value in checks:
        if value and value % tp:
            raise KvplanError(f"{arch.name}: {name} ({value}) is not divisible by tp {tp}, so vLLM cannot shard it.")


# ---- Gemma 3n -----------------------------------------------------------------------------------------------
# Gemma 3n's language model as vLLM 0.32.0 model_executor/models/gemma3n.py runs it (gemma3n_mm.py wraps it with
# the towers; the layers: kvplan/gpu/gemma3n.py; the tensors of a rank: shards.py gemma3n_layer_weights,
# gemma3n_model_weights):
#
# - altup_num_inputs residual streams (AltUp, gemma3n.py:64-184): the first the scaled embedding, the others its
#   altup_projections rescaled to its RMS (altup_embed, 712-723); each layer predicts every stream from all of them
#   by coefficients a router reads off the active stream (predict), runs on the active prediction and corrects every
#   stream by the innovation (correct); at the end the other streams go through altup_unembed_projections, are
#   rescaled to the active stream's RMS and the streams averaged (altup_unembed, 1047-1067). altup_coef_clip is
#   stored (gemma3n.py:87) and read nowhere in the forward (transformers clamps the coefficients in training only);
# - a Laurel block beside attention (187-226): x + norm(right(left(x))), a rank-laurel_rank pair;
# - attention of one head shape, sliding or full by layer_types with their own RoPE theta (gemma3n.py:349-389,
#   transformers' Gemma3nTextConfig: rope_local_base_freq and rope_theta), scaling 1.0, q and k RMS-normed per head
#   with weights, v without (336-347); the last num_kv_shared_layers layers project q alone and read a fixed earlier
#   layer's cache (355-382; kvplan/model/layers.py gemma3n_cache_layers);
# - each layer's MLP width (intermediate_size[i], 474), activation-sparse where activation_sparsity_pattern[i] > 0
#   (GeluAndMulSparse: the gate less its mean + std x the standard normal's quantile, clipped at 0, statistics over
#   each rank's own share of the gate: vllm/ir/ops/activation.py gelu_and_mul_sparse);
# - per-layer inputs (602-707, gemma3n_mm.py:796-816): (norm(per_layer_model_projection(embedding)) + the token's
#   row of embed_tokens_per_layer x sqrt(width)) x rsqrt(2), the scales held in the model dtype; gated into the
#   streams after the correction (gemma3n.py:564-576);
# - the final logits soft-capped (LogitsProcessor(soft_cap=final_logit_softcapping)), through the embedding.

GEMMA3N_THETAS = {"full": ("rope_theta", 1_000_000.0), "sliding": ("rope_local_base_freq", 10_000.0)}
GEMMA3N_SPARSE_LAYERS = 10  # transformers Gemma3nTextConfig: the first 10 layers at 0.95 where the config names none


def _gemma3n_rope(cfg: Config, kind: str, head_dim: int) -> tuple:
    """(theta, rotary dims) of a layer of `kind` (sliding | full): config.rope_parameters[layer type] as transformers
    5.19 Gemma3nTextConfig.convert_rope_params_to_dict builds it (rope_scaling merged into the full layers', the
    theta from rope_theta / rope_local_base_freq where it names none), which gemma3n.py:353-389 hands to get_rope."""
    name = TYPE_NAMES[kind]
    given = cfg.get("rope_parameters")
    if isinstance(given, dict) and any(key in given for key in TYPE_NAMES.values()):
        params = dict(given.get(name) or {})
    else:
        params = dict(given) if isinstance(given, dict) and kind == "full" else {}
    scaling = cfg.get("rope_scaling")
    if kind == "full" and isinstance(scaling, dict):
        params.update(scaling)
    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type != "default":
        raise KvplanError(f"{cfg.name}: the {name} layers' rope_type is {rope_type!r}; verify's Gemma 3n forward runs "
                          f"the default rotation only.")
    field, default = GEMMA3N_THETAS[kind]
    if "rope_theta" in params:
        theta = rope_number(f"rope_parameters.{name}.rope_theta", params["rope_theta"])
    else:
        theta = rope_number(field, cfg.get(field, default))
    factor = rope_number(f"rope_parameters.{name}.partial_rotary_factor", params.get("partial_rotary_factor", 1.0))
    rotary = int(head_dim * factor)
    if not 0 < rotary <= head_dim or rotary % 2:
        raise KvplanError(f"{cfg.name}: the {name} layers rotate {rotary} of {head_dim} dims a head; verify takes an "
                          f"even count from 2 to head_dim.")
    return theta, rotary


def _gemma3n_sparsity(cfg: Config, n: int) -> list:
    """activation_sparsity_pattern, one target sparsity a layer in [0, 1) (gemma3n.py:477-479); transformers'
    default where the config names none."""
    pattern = cfg.get("activation_sparsity_pattern")
    if pattern is None:
        sparse = GEMMA3N_SPARSE_LAYERS if n > GEMMA3N_SPARSE_LAYERS else 0
        return [0.95] * sparse + [0.0] * (n - sparse)
    if not isinstance(pattern, list) or len(pattern) != n:
        raise KvplanError(f"config field 'activation_sparsity_pattern' must give one sparsity per layer ({n}), got "
                          f"{quote(pattern)}.")
    for value in pattern:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise KvplanError(f"config field 'activation_sparsity_pattern' must hold numbers from 0 up to (not "
                              f"including) 1, got {quote(value)}.")
    return [float(value) for value in pattern]


def _gemma3n_refusals(cfg: Config, spec: ModelSpec) -> None:
    """What vLLM's Gemma 3n refuses, or verify's forward does not run, one line each."""
    if cfg.flag("attention_bias", False):
        raise KvplanError(f"{spec.name} has attention biases (attention_bias); verify's Gemma 3n attention has none.")
    act = str(cfg.get("hidden_activation") or "gelu_pytorch_tanh").lower()
    if act != "gelu_pytorch_tanh":  # gemma3n.py:254-259 raises for any other
        raise KvplanError(f"config field 'hidden_activation' is {quote(act)}; vLLM's Gemma 3n MLP takes "
                          f"gelu_pytorch_tanh only.")
    if not cfg.flag("altup_correct_scale", True):  # gemma3n.py:449 asserts it
        raise KvplanError(f"config field 'altup_correct_scale' is false; vLLM's Gemma 3n layers require it.")
    stored = sorted({g.stored for g in spec.params if g.parameters and g.name != "vision"} - {spec.dtype})
    if stored or spec.dtype not in ("bf16", "fp16"):
        raise KvplanError(f"{spec.name} stores weights as {(stored or [spec.dtype])[0]}; verify's Gemma 3n forward "
                          f"runs bf16/fp16 weights only.")


GEMMA3N_TOWERS_NOTE = ("the vision tower (timm's MobileNet-V5), the audio encoder and their embedders are held as a "
                       "buffer of their bytes (whole on every rank but the embedders' split tables and projections), "
                       "not run")
# vLLM 0.32.0's model runner calls Gemma3nForCausalLM.forward without per_layer_inputs, so get_per_layer_inputs
# (gemma3n.py:701-706) keeps the normed projection alone; the multimodal wrapper computes the table's part from the
# tokens first (gemma3n_mm.py:796-816, 850)
GEMMA3N_CAUSAL_LM_NOTE = ("Gemma3nForCausalLM: the per-layer inputs are the normed projection alone, the "
                          "embed_tokens_per_layer table held but not read, as vLLM 0.32 runs that architecture")
GEMMA3N_CLIP_NOTE = ("altup_coef_clip is not applied: vLLM stores it (gemma3n.py:87) and no forward reads it "
                     "(transformers clamps the AltUp coefficients in training only)")


def gemma3n_architecture(raw: dict, spec: ModelSpec, tp: int) -> Arch:
    """The forward pass of a Gemma 3n `spec` on one rank of `tp`."""
    from ..model.gemma3n import widths

    cfg = Config(raw, spec.name, spec.transformers)
    _gemma3n_refusals(cfg, spec)
    n, hidden, head_dim = spec.num_hidden_layers, spec.hidden_size, cfg.int("head_dim")
    streams = cfg.int("altup_num_inputs")
    active = cfg.int("altup_active_idx", minimum=0, maximum=streams - 1, default=0)
    sparsity = _gemma3n_sparsity(cfg, n)
    layers = []
    for i, (cached, inter) in enumerate(zip(spec.layers, widths(cfg, n))):
        shared = isinstance(cached, SharedKV)
        kv = cached.target if shared else cached
        kind = "sliding" if kv.window else "full"
        theta, rotary = _gemma3n_rope(cfg, kind, head_dim)
        shape = HeadShape(spec.num_attention_heads, kv.kv_heads, head_dim, head_dim, rotary, 1.0)  # gemma3n.py:394
        layers.append(LayerArch(i, "attention", kv.window, "dense", theta, cache=None if shared else i, shape=shape,
                                reads=cached.source if shared else None, intermediate=inter, sparsity=sparsity[i]))
    notes = [GEMMA3N_CLIP_NOTE] + ([GEMMA3N_TOWERS_NOTE] if any(g.name == "vision" and g.parameters
                                                                  for g in spec.params) else [])
    # the class vLLM serves (the top-level name): gemma3n_mm.py's wrapper fills the per-layer inputs from the table
    # (0.32.0:636-642, :806-815) whatever class a nested text_config names
    text_only = served_architecture(spec) == "Gemma3nForCausalLM"
    if text_only:
        notes.append(GEMMA3N_CAUSAL_LM_NOTE)
    ple = cfg.int("hidden_size_per_layer_input")
    arch = Arch(name=spec.name, family=cfg.model_type, tp=tp, dtype=spec.dtype, hidden=hidden, vocab=spec.vocab_size,
                layers=tuple(layers), norm_eps=_config_float(cfg, "rms_norm_eps", 1e-6), norm_plus_one=False,
                embed_scale=embedding_scale(hidden, spec.dtype), sandwich_norms=True,
                # the logits through embed_tokens whatever tie_word_embeddings says (gemma3n.py:1159-1164)
                tied_embeddings=True, activation="gelu_tanh", gated_mlp=True, heads=spec.num_attention_heads,
                kv_heads=spec.kv_heads, head_dim=head_dim, rope_dim=head_dim, qk_norm=True, attn_scale=1.0,
                intermediate=layers[0].intermediate, per_layer_input=ple,
                per_layer_vocab=cfg.int("vocab_size_per_layer_input"),
                logit_softcap=_config_float(cfg, "final_logit_softcapping", 30.0), altup_inputs=streams,
                altup_active=active, laurel_rank=cfg.int("laurel_rank"),
                per_layer_table=not text_only, notes=tuple(notes))
    _gemma3n_check_divisible(arch)
    return arch


def _gemma3n_check_divisible(arch: Arch) -> None:
    tp = arch.tp
    checks = [("num_attention_heads", arch.heads), ("laurel_rank", arch.laurel_rank),
              ("hidden_size (AltUp's column-parallel projections)", arch.hidden),
              ("the padded vocabulary", arch.padded_vocab),
              ("the padded per-layer-input vocabulary", arch.padded_per_layer_vocab),
              ("num_hidden_layers x hidden_size_per_layer_input", len(arch.layers) * arch.per_layer_input)]
    checks += [(f"intermediate_size[{layer.index}]", layer.intermediate) for layer in arch.layers]
    for name, value in checks:
        if value % tp:
            raise KvplanError(f"{arch.name}: {name} ({value}) is not divisible by tp {tp}, so vLLM cannot shard it.")
