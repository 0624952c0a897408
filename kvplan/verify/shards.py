"""The tensors one TP rank holds for an Arch, with vLLM's sharding (vllm/model_executor/layers/linear.py,
vocab_parallel_embedding.py, fused_moe/layer.py):

- column-parallel fused projections (QKV, gate/up, DeltaNet's qkvz, Mamba-2's in_proj) split part by part along
  their output rows,
  KV heads replicated one per rank when there are fewer of them than ranks;
- row-parallel output and down projections split along their input columns (an all-reduce follows each);
- routed experts split along their intermediate dimension (every rank holds every expert, a slice of each);
- the vocabulary padded to a multiple of 64 and split across ranks (embedding and LM head);
- MLA's latent projection (kv_a) and its norms replicated, its per-head projections split by heads;
- a sparse MLA layer's lightning indexer replicated whole;
- Gemma 4's per-layer-input table split by vocabulary, its projection by rows, each layer's per-layer-input gate
  and projection (ReplicatedLinear) and its MoE router replicated;
- Gemma 3n's the same, its AltUp coefficients and router replicated, its AltUp embed / unembed projections split
  by rows (their outputs gathered), Laurel's pair as a column- then row-parallel MLP.

kvplan/gpu/model.py builds tensors of exactly these shapes; the tests shard one set of full weights with
`shard_slices` and check the ranks' forward against a single-process reference. Pure: no torch."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

from ..errors import KvplanError
from .arch import FP8_BLOCK, MXFP4_BLOCK, Arch, LayerArch


@dataclass(frozen=True)
class WeightSpec:
    """One tensor of a rank. `axis` is the dimension TP splits (None: replicated); `segments` are the parts of
    the full (tp 1) tensor along it as (length, units): each part is split unit-wise (heads, rows or 32-value
    groups), a rank taking an even share of the units, or one unit when there are fewer units than ranks."""

    name: str
    full_shape: tuple
    dtype: str  # model | u8 | fp8 (e4m3, Arch.linear_format) | fp32 (block scales among others)
    axis: Optional[int] = None
    segments: tuple = ()
    # block scales of a fused QKV whose parts cut blocks on a rank: `segments` are the weight's, and the rank holds
    # one scale row per started FP8_BLOCK of its summed rows (cut_qkv_blocks)
    per_rank_blocks: bool = False
    # a rank's part of each segment is at least this long at tp > 1, zero-filled past its share (Arch.expert_min_share)
    min_share: int = 0

    def shape(self, tp: int) -> tuple:
        if self.axis is None or tp == 1:
            return self.full_shape
        shape = list(self.full_shape)
        shape[self.axis] = sum(self.segment_share(length, units, tp) for length, units in self.segments)
        if self.per_rank_blocks:
            shape[self.axis] = -(-shape[self.axis] // FP8_BLOCK)
        return tuple(shape)

    def segment_share(self, length: int, units: int, tp: int) -> int:
        """Rows (or columns) of a segment one rank of tp > 1 holds, padding included."""
        return max(length // units * (units // tp if units >= tp else 1), self.min_share)

    def elements(self, tp: int) -> int:
        return math.prod(self.shape(tp))


def shard_slices(spec: WeightSpec, rank: int, tp: int) -> list:
    """(start, stop) ranges along spec.axis of the full tensor that rank `rank` of `tp` holds, in order."""
    if spec.axis is None or tp == 1:
        return [(0, spec.full_shape[spec.axis or 0])]
    if spec.per_rank_blocks:  # a rank's blocks mix parts whose whole-model blocks differ: no slice of them
        raise KvplanError(f"{spec.name}: a rank's block scales of a QKV whose parts cut blocks are not a slice of the "
                          f"whole model's scales.")
    ranges, offset = [], 0
    for length, units in spec.segments:
        size = length // units
        if units >= tp:
            share = units // tp
            first = rank * share
        else:  # fewer units than ranks: each unit replicated on tp // units ranks
            share, first = 1, rank // (tp // units)
        ranges.append((offset + first * size, offset + (first + share) * size))
        offset += length
    return ranges


# ---- the weights of a rank ------------------------------------------------------------------------------------

def _heads(count: int, dim: int) -> tuple:
    return (count * dim, count)


def _rows(count: int) -> tuple:
    return (count, count)


def _matrix(name: str, shape: tuple, fmt: str, axis: Optional[int] = None, segments: tuple = ()) -> list:
    """A linear weight as the checkpoint stores it (`fmt`: Arch.linear_format, or "model"): 16-bit, e4m3 with one
    scale ("fp8"), or e4m3 with a float32 scale per FP8_BLOCK x FP8_BLOCK tile ("fp8_block": `{name}_scale` over
    its last two dimensions, split with the weight)."""
    weight = WeightSpec(name, shape, "fp8" if fmt in ("fp8", "fp8_block") else "model", axis, segments)
    return [weight, block_scales(weight)] if fmt == "fp8_block" else [weight]


def block_scales(weight: WeightSpec) -> WeightSpec:
    """The float32 block scales of a block-scaled weight: one per started FP8_BLOCK rows x FP8_BLOCK columns. Split
    along the weight's axis part by part: by the part's units where a unit spans whole blocks (MLA's 256-row kv_b
    heads), else by blocks (q_b's 192-row heads: 16 heads a rank are 24 blocks); check_block_shards says when a
    rank's share would cut a block."""
    shape = (*weight.full_shape[:-2], -(-weight.full_shape[-2] // FP8_BLOCK), -(-weight.full_shape[-1] // FP8_BLOCK))
    segments = tuple((length // FP8_BLOCK, units if not (length // units) % FP8_BLOCK else length // FP8_BLOCK)
                     for length, units in weight.segments)
    return WeightSpec(weight.name + "_scale", shape, "fp32", weight.axis, segments)


def _cuts_blocks(spec: WeightSpec, tp: int) -> bool:
    return any((length // units * (units // tp if units >= tp else 1)) % FP8_BLOCK for length, units in spec.segments)


def cut_qkv_blocks(arch: Arch, specs: list) -> list:
    """`specs` with the block scales of each fused QKV whose parts cut blocks on a rank (MiMo-V2-Flash at tp 4: 16
    query heads x 192 = 3,072 rows, one key head of 192, one value head of 128) sized as vLLM sizes them: a fused
    layer whose parts are not whole blocks is let through (vllm/model_executor/layers/linear.py:549-572,
    allow_fp8_block_shape_mismatch) and holds one scale row per started 128 of the rank's summed rows
    (quantization/utils/fp8_utils.py:1412-1425): ceil(3,392 / 128) = 27, not the parts' 24 + 2 + 1."""
    weights = {s.name: s for s in specs}
    out = []
    for spec in specs:
        weight = weights.get(spec.name[:-len("_scale")]) if spec.name.endswith("qkv_scale") else None
        if weight is not None and arch.tp > 1 and weight.axis == 0 and _cuts_blocks(weight, arch.tp):
            spec = WeightSpec(spec.name, spec.full_shape, spec.dtype, 0, weight.segments, per_rank_blocks=True)
        out.append(spec)
    return out


def check_block_shards(arch: Arch, specs: list) -> None:
    """Every block-scaled weight's share on a rank must be whole blocks, as vLLM's Fp8LinearMethod requires
    (model_executor/layers/quantization/utils/fp8_utils.py validate_fp8_block_shape), but a fused QKV's
    (cut_qkv_blocks)."""
    scaled = {s.name[:-len("_scale")] for s in specs
              if s.name.endswith("_scale") and s.dtype == "fp32" and not s.per_rank_blocks}
    for spec in specs:
        if spec.name not in scaled or spec.axis is None or arch.tp == 1:
            continue
        for length, units in spec.segments:
            share = length // units * (units // arch.tp if units >= arch.tp else 1)
            if share % FP8_BLOCK:
                raise KvplanError(f"{arch.name}: {spec.name} holds {share} rows or columns per rank at tp {arch.tp}, "
                                  f"not a multiple of {FP8_BLOCK}, so vLLM cannot load its fp8 blocks.")


def layer_weights(arch: Arch, layer: LayerArch) -> list:
    """WeightSpecs of one decoder layer (names relative to the layer)."""
    h = arch.hidden
    w = [WeightSpec("attn_norm", (h,), "model")] if layer.mixer != "none" else []
    if layer.mixer == "none":
        pass
    elif layer.mixer == "mamba":
        w += _mamba2(arch)
    elif layer.mixer == "mamba1":
        w += _mamba1(arch)
    elif layer.mixer == "attention":
        w += _attention(arch, arch.attention(layer))
    elif layer.mixer == "mla":
        qk = arch.qk_nope_dim + arch.qk_rope_dim
        fmt = arch.linear_format  # "model" or "fp8_block" (arch.py refuses per-tensor fp8 MLA)
        if arch.q_lora_rank:
            w += _matrix("q_a", (arch.q_lora_rank, h), fmt) + [WeightSpec("q_a_norm", (arch.q_lora_rank,), "model")]
            w += _matrix("q_b", (arch.heads * qk, arch.q_lora_rank), fmt, 0, (_heads(arch.heads, qk),))
        else:
            w += _matrix("q", (arch.heads * qk, h), fmt, 0, (_heads(arch.heads, qk),))
        kv_b = arch.qk_nope_dim + arch.v_head_dim
        w += _matrix("kv_a", (arch.kv_lora_rank + arch.qk_rope_dim, h), fmt)
        w.append(WeightSpec("kv_a_norm", (arch.kv_lora_rank,), "model"))
        w += _matrix("kv_b", (arch.heads * kv_b, arch.kv_lora_rank), fmt, 0, (_heads(arch.heads, kv_b),))
        w += _matrix("o", (h, arch.heads * arch.v_head_dim), fmt, 1, (_heads(arch.heads, arch.v_head_dim),))
        if layer.keys is not None:
            w += _indexer(arch, fmt)
    elif layer.mixer == "kda":
        w += _kda(arch)
    else:
        nk, nv, dk, dv = arch.lin_key_heads, arch.lin_value_heads, arch.lin_key_dim, arch.lin_value_dim
        qkvz = (_heads(nk, dk), _heads(nk, dk), _heads(nv, dv), _heads(nv, dv))
        w += [WeightSpec("qkvz", (sum(p[0] for p in qkvz), h), "model", 0, qkvz),
              WeightSpec("ba", (2 * nv, h), "model", 0, (_rows(nv), _rows(nv))),
              WeightSpec("conv", (arch.conv_dim, arch.conv_kernel), "model", 0, qkvz[:3]),
              WeightSpec("A_log", (nv,), "model", 0, (_rows(nv),)),
              WeightSpec("dt_bias", (nv,), "model", 0, (_rows(nv),)),
              WeightSpec("o_norm", (dv,), "model"),
              WeightSpec("o", (h, nv * dv), "model", 1, (_heads(nv, dv),))]
    if arch.sandwich_norms:
        w += [WeightSpec("post_attn_norm", (h,), "model"), WeightSpec("post_ffn_norm", (h,), "model")]
    if layer.ffn == "none":
        return w
    w.append(WeightSpec("ffn_norm", (h,), "model"))
    if layer.ffn == "dense":
        w += _mlp("mlp", arch, arch.intermediate)
    else:
        w += _experts(arch)
        if arch.shared_intermediate:
            w += _mlp("shared", arch, arch.shared_intermediate)
            if arch.shared_gate:
                w.append(WeightSpec("shared_gate", (1, h), "model"))
    return w


def _attention(arch: Arch, s) -> list:
    """Softmax attention of HeadShape `s`: the fused QKV (+ Qwen3-Next's gate) as vLLM's QKVParallelLinear splits it
    (keys head_dim wide, values v_head_dim: MiMo-V2's v_head_size), its bias, q/k norms, the row-parallel output
    projection (16-bit where the checkpoint keeps it so, Arch.unquantized) and MiMo-V2's sinks, one a query head,
    split with them (mimo_v2.py load_weights narrows attention_sink_bias by rank)."""
    h, hd, vd = arch.hidden, s.head_dim, s.v_head_dim
    parts = [_heads(s.heads, hd)] + [_heads(s.heads, hd)] * arch.attn_output_gate
    parts += [_heads(s.kv_heads, hd), _heads(s.kv_heads, vd)]
    rows = sum(p[0] for p in parts)
    w = _matrix("qkv", (rows, h), arch.linear_format, 0, tuple(parts))
    if arch.qkv_bias:
        w.append(WeightSpec("qkv_bias", (rows,), "model", 0, tuple(parts)))
    if arch.qk_norm:
        w += [WeightSpec("q_norm", (hd,), "model"), WeightSpec("k_norm", (hd,), "model")]
    if arch.whole_qk_norm:  # over the whole projections: split as q's heads and k's KV heads (vLLM rms_norm_tp.py)
        w += [WeightSpec("q_norm", (s.heads * hd,), "model", 0, (_heads(s.heads, hd),)),
              WeightSpec("k_norm", (s.kv_heads * hd,), "model", 0, (_heads(s.kv_heads, hd),))]
    o_format = "model" if "o" in arch.unquantized else arch.linear_format
    w += _matrix("o", (h, s.heads * vd), o_format, 1, (_heads(s.heads, vd),))
    if s.sinks:
        w.append(WeightSpec("sinks", (s.heads,), "model", 0, (_rows(s.heads),)))
    return w


def _kda(arch: Arch) -> list:
    """Kimi Delta Attention as vLLM 0.32.0 builds it (model_executor/layers/mamba/gdn/kimi_gdn_linear_attn.py
    KimiGatedDeltaNetAttention, use_full_rank_gate off): in_proj_qkvgfab yields q, k, v (heads x head_dim each) and
    beta (a head each), split by heads, then the gate's low-rank f_a (head_dim), which every rank holds whole
    (_KimiGDNMergedColumnParallelLinear replicated_shard_id=4); f_b (head_dim -> q width) split by heads; dt_bias
    float32 a key channel; the packed q / k / v short convolution float32 [3 x width, kernel], no bias; A_log
    float32 a head; the output gate's g_a replicated (ReplicatedLinear) and g_b split; the gated norm's head_dim
    weight (FusedRMSNormGated); o_proj row-parallel."""
    heads, dim = arch.lin_key_heads, arch.lin_key_dim
    width = _heads(heads, dim)
    parts = (width, width, width, _rows(heads), (dim, 1))
    return [WeightSpec("in_proj", (3 * heads * dim + heads + dim, arch.hidden), "model", 0, parts),
            WeightSpec("f_b", (heads * dim, dim), "model", 0, (width,)),
            WeightSpec("dt_bias", (heads * dim,), "fp32", 0, (width,)),
            WeightSpec("conv", (3 * heads * dim, arch.conv_kernel), "fp32", 0, (width,) * 3),
            WeightSpec("A_log", (heads,), "fp32", 0, (_rows(heads),)),
            WeightSpec("g_a", (dim, arch.hidden), "model"),
            WeightSpec("g_b", (heads * dim, dim), "model", 0, (width,)),
            WeightSpec("o_norm", (dim,), "model"),
            WeightSpec("o", (arch.hidden, heads * dim), "model", 1, (width,))]


def _indexer(arch: Arch, fmt: str) -> list:
    """A sparse MLA layer's lightning indexer, whole on every rank (vLLM 0.32.0 models/deepseek_v32/attention.py:71-87
    DeepseekV32Indexer): wq_b a ReplicatedLinear over the q latent, quantised as the layer's other linears; wk and
    weights_proj one MergedColumnParallelLinear with disable_tp and no quant_config (an fp8 wk upcast to the model
    dtype as it loads: model_executor/models/deepseek_v2.py:857 _try_load_fp8_indexer_wk); k_norm a float32
    LayerNorm, weight and bias."""
    heads, dim = arch.index_heads, arch.index_dim
    return _matrix("idx_wq_b", (heads * dim, arch.q_lora_rank), fmt) + [
        WeightSpec("idx_wk_w", (dim + heads, arch.hidden), "model"),
        WeightSpec("idx_k_norm", (dim,), "fp32"), WeightSpec("idx_k_norm_bias", (dim,), "fp32")]


def _mamba2(arch: Arch) -> list:
    """vLLM's MambaMixer2 (model_executor/layers/mamba/mamba_mixer2.py): in_proj yields z, x, B, C and dt, each
    split by heads (B and C by groups); the depthwise convolution over x, B and C; A, D and dt_bias per head; the
    gated RMSNorm over z's width; out_proj row-parallel."""
    heads, p, groups, n = arch.mamba_heads, arch.mamba_head_dim, arch.mamba_groups, arch.ssm_state
    xbc = (_heads(heads, p), _heads(groups, n), _heads(groups, n))
    parts = (_heads(heads, p),) + xbc + (_rows(heads),)
    w = [WeightSpec("in_proj", (sum(q[0] for q in parts), arch.hidden), "model", 0, parts),
         WeightSpec("conv", (arch.conv_dim, arch.conv_kernel), "model", 0, xbc)]
    if arch.conv_bias:
        w.append(WeightSpec("conv_bias", (arch.conv_dim,), "model", 0, xbc))
    w += [WeightSpec(name, (heads,), "model", 0, (_rows(heads),)) for name in ("A_log", "D", "dt_bias")]
    return w + [WeightSpec("o_norm", (heads * p,), "model", 0, (_heads(heads, p),)),
                WeightSpec("o", (arch.hidden, heads * p), "model", 1, (_heads(heads, p),))]


def _mamba1(arch: Arch) -> list:
    """vLLM's MambaMixer (model_executor/layers/mamba/mamba_mixer.py) as Jamba, Mamba and Falcon-Mamba build it:
    in_proj yields x and the gate z, split by channels; the depthwise convolution over x; x_proj row-parallel (an
    all-reduce of its dt_rank + 2 N outputs follows); dt_proj, its bias, A (float32, vLLM keeps -exp(A_log)) and D by
    channels; Jamba's RMSNorms over dt, B and C replicated (Falcon-Mamba's have no weight: RMSNorm has_weight=False
    keeps a plain ones tensor, no parameter, mamba_mixer.py:161-189, layernorm.py:62-65; Mamba's none); out_proj
    row-parallel."""
    inner, n, rank = arch.mamba1_inner, arch.ssm_state, arch.mamba_dt_rank
    ch = _rows(inner)
    w = [WeightSpec("in_proj", (2 * inner, arch.hidden), "model", 0, (ch, ch)),
         WeightSpec("conv", (inner, arch.conv_kernel), "model", 0, (ch,))]
    if arch.conv_bias:
        w.append(WeightSpec("conv_bias", (inner,), "model", 0, (ch,)))
    w.append(WeightSpec("x_proj", (rank + 2 * n, inner), "model", 1, (ch,)))
    if arch.mamba1_norm == "weighted":
        w += [WeightSpec("dt_norm", (rank,), "model"), WeightSpec("b_norm", (n,), "model"),
              WeightSpec("c_norm", (n,), "model")]
    return w + [WeightSpec("dt_proj", (inner, rank), "model", 0, (ch,)),
                WeightSpec("dt_bias", (inner,), "model", 0, (ch,)),
                WeightSpec("A_log", (inner, n), "fp32", 0, (ch,)),
                WeightSpec("D", (inner,), "model", 0, (ch,)),
                WeightSpec("o", (arch.hidden, inner), "model", 1, (ch,))]


def _mlp(prefix: str, arch: Arch, inter: int) -> list:
    parts = (_rows(inter), _rows(inter)) if arch.gated_mlp else (_rows(inter),)
    # per-tensor fp8 checkpoints keep their shared experts 16-bit (arch.py refuses others); block-scaled ones do not
    stored = arch.linear_format if prefix == "mlp" or arch.linear_format == "fp8_block" else "model"
    return _matrix(f"{prefix}.gate_up", (len(parts) * inter, arch.hidden), stored, 0, parts) + \
        _matrix(f"{prefix}.down", (arch.hidden, inter), stored, 1, (_rows(inter),))


def _experts(arch: Arch) -> list:
    e, h, i = arch.experts, arch.hidden, arch.expert_intermediate
    parts = 2 if arch.gated_mlp else 1
    w = [WeightSpec("router", (e, h), "fp32" if arch.router_fp32 else "model")]
    if arch.routing.logit_bias:  # gpt-oss: the router linear's bias
        w.append(WeightSpec("router_bias", (e,), "model"))
    if arch.routing.correction_bias:  # e_score_correction_bias, float32 in vLLM (kvplan/model/routing.py)
        w.append(WeightSpec("router_correction", (e,), "fp32"))
    if arch.experts_format == "mxfp4":  # 4-bit values packed two per byte, one E8M0 scale per 32 values
        groups_h, groups_i = h // MXFP4_BLOCK, i // MXFP4_BLOCK
        w += [WeightSpec("w13_blocks", (e, parts * i, h // 2), "u8", 1, ((i, i),) * parts),
              WeightSpec("w13_scales", (e, parts * i, groups_h), "u8", 1, ((i, i),) * parts),
              WeightSpec("w2_blocks", (e, h, i // 2), "u8", 2, ((i // 2, groups_i),)),
              WeightSpec("w2_scales", (e, h, groups_i), "u8", 2, ((groups_i, groups_i),))]
    else:
        fmt = "fp8_block" if arch.experts_format == "fp8_block" else "model"
        w += _matrix("w13", (e, parts * i, h), fmt, 1, ((i, i),) * parts) + _matrix("w2", (e, h, i), fmt, 2, ((i, i),))
    if arch.expert_min_share:  # Kimi Linear (bf16 experts): each rank's slice of an expert padded with zeros
        w = [replace(s, min_share=arch.expert_min_share) if s.name in ("w13", "w2") else s for s in w]
    return w


def gemma4_layer_weights(arch: Arch, layer: LayerArch) -> list:
    """WeightSpecs of one Gemma 4 decoder layer (names relative to the layer), as vLLM 0.32.0 gemma4.py
    Gemma4DecoderLayer builds it (arch.py's Gemma 4 section has the lines): four norms around attention and
    feed-forward, the layer_scalar buffer; attention of the layer's HeadShape (_attention: fused QKV, q and k norms,
    o_proj), but a KV-sharing layer's q_proj alone, q_norm and o_proj; the gated MLP; the MoE block (router with its
    per-dimension scale and per-expert scale, replicated; experts split along their intermediate dimension; three
    more norms); the per-layer input gate, projection (ReplicatedLinear) and norm."""
    h, s = arch.hidden, arch.attention(layer)
    w = [WeightSpec(name, (h,), "model") for name in ("attn_norm", "post_attn_norm", "ffn_norm", "post_ffn_norm")]
    w.append(WeightSpec("layer_scalar", (1,), "model"))
    w += _attention(arch, s) if layer.reads is None else _q_only_attention(arch, s)
    w += _mlp("mlp", arch, layer.intermediate)
    if layer.ffn == "moe":
        router, *experts = _experts(arch)  # the router [E, h] in the model dtype (GateLinear's params), then w13, w2
        scales = [WeightSpec("router_norm", (h,), "model"), WeightSpec("router_per_expert", (arch.experts,), "model")]
        w += [router, *scales, *experts]
        w += [WeightSpec(name, (h,), "model") for name in ("mlp_post_norm", "moe_pre_norm", "moe_post_norm")]
    if arch.per_layer_input:
        p = arch.per_layer_input
        w += [WeightSpec("ple_gate", (p, h), "model"), WeightSpec("ple_proj", (h, p), "model"),
              WeightSpec("ple_norm", (h,), "model")]
    return w


def _q_only_attention(arch: Arch, s) -> list:
    """A KV-sharing layer's attention (Gemma 4, Gemma 3n): q_proj alone (ColumnParallelLinear), q_norm, o_proj."""
    q = _heads(s.heads, s.head_dim)
    return [WeightSpec("q", (q[0], arch.hidden), "model", 0, (q,)), WeightSpec("q_norm", (s.head_dim,), "model"),
            WeightSpec("o", (arch.hidden, q[0]), "model", 1, (q,))]


def gemma3n_layer_weights(arch: Arch, layer: LayerArch) -> list:
    """WeightSpecs of one Gemma 3n decoder layer (names relative to the layer), as vLLM 0.32.0 gemma3n.py
    Gemma3nDecoderLayer builds it (arch.py's Gemma 3n section has the lines): AltUp's correction and prediction
    coefficients, modality router (ReplicatedLinear) and its norm, the float32 correct_output_scale, all whole; the
    attention of _attention (fused QKV, q and k norms, o_proj) or a KV-sharing layer's q_proj alone; the gated MLP of
    the layer's width; Laurel's linear_left (column-parallel) and linear_right (row-parallel) and its norm; the
    per-layer input gate and projection (ReplicatedLinear); the four norms around attention and MLP and the
    per-layer input's."""
    h, n, s = arch.hidden, arch.altup_inputs, arch.attention(layer)
    rank = _rows(arch.laurel_rank)
    w = [WeightSpec("altup_correction", (n, n), "model"), WeightSpec("altup_prediction", (n * n, n), "model"),
         WeightSpec("altup_router", (n, h), "model"), WeightSpec("altup_router_norm", (h,), "model"),
         WeightSpec("altup_output_scale", (h,), "fp32")]
    w += [WeightSpec(name, (h,), "model") for name in ("attn_norm", "post_attn_norm", "ffn_norm", "post_ffn_norm")]
    w += _attention(arch, s) if layer.reads is None else _q_only_attention(arch, s)
    w += _mlp("mlp", arch, layer.intermediate)
    w += [WeightSpec("laurel_left", (arch.laurel_rank, h), "model", 0, (rank,)),
          WeightSpec("laurel_right", (h, arch.laurel_rank), "model", 1, (rank,)),
          WeightSpec("laurel_norm", (h,), "model")]
    p = arch.per_layer_input
    return w + [WeightSpec("ple_gate", (p, h), "model"), WeightSpec("ple_proj", (h, p), "model"),
                WeightSpec("ple_norm", (h,), "model")]


def gemma3n_model_weights(arch: Arch) -> list:
    """Gemma 3n's tensors outside its layers beside the embedding and final norm: the per-layer-input table,
    projection and norm (gemma4_model_weights: the same shapes and sharding, gemma3n.py:619-645), and
    altup_num_inputs - 1 AltUp embed and as many unembed projections, each a ColumnParallelLinear with
    gather_output (its rows split; gemma3n.py:659-672, 858-871)."""
    h, rows = arch.hidden, ((arch.hidden, arch.hidden),)
    streams = range(arch.altup_inputs - 1)
    return (gemma4_model_weights(arch) + [WeightSpec(f"altup_proj.{i}", (h, h), "model", 0, rows) for i in streams]
            + [WeightSpec(f"altup_unembed.{i}", (h, h), "model", 0, rows) for i in streams])


def gemma4_model_weights(arch: Arch) -> list:
    """Gemma 4's tensors outside its layers beside the embedding, final norm and LM head: with per-layer inputs the
    embed_tokens_per_layer table (a VocabParallelEmbedding: its vocabulary padded to 64 and split), the
    per_layer_model_projection (ColumnParallelLinear, gather_output: its rows split) and its norm."""
    if not arch.per_layer_input:
        return []
    width, vocab = len(arch.layers) * arch.per_layer_input, arch.padded_per_layer_vocab
    return [WeightSpec("ple_embed", (vocab, width), "model", 0, ((vocab, vocab),)),
            WeightSpec("ple_model_proj", (width, arch.hidden), "model", 0, ((width, width),)),
            WeightSpec("ple_proj_norm", (arch.per_layer_input,), "model")]


def rank_weights(arch: Arch) -> list:
    """Every WeightSpec of the model, layer weights named `layers.{i}.{name}`."""
    v = arch.padded_vocab
    w = [WeightSpec("embed", (v, arch.hidden), "model", 0, ((v, v),))]
    if arch.is_gemma4:
        per_layer = gemma4_layer_weights
        w += gemma4_model_weights(arch)
    elif arch.is_gemma3n:
        per_layer = gemma3n_layer_weights
        w += gemma3n_model_weights(arch)
    else:
        per_layer = layer_weights
    for layer in arch.layers:
        w += [replace(s, name=f"layers.{layer.index}.{s.name}") for s in per_layer(arch, layer)]
    w.append(WeightSpec("norm", (arch.hidden,), "model"))
    if not arch.tied_embeddings:
        w.append(WeightSpec("lm_head", (v, arch.hidden), "model", 0, ((v, v),)))
    w = cut_qkv_blocks(arch, w)
    check_block_shards(arch, w)
    return w


STORED_BYTES = {"u8": 1, "fp8": 1, "fp32": 4}


def tower_bytes(spec, tp: int) -> int:
    """Bytes of a multimodal model's towers (its "vision" parameter group: vision and audio encoders, projectors)
    that one rank of `tp` holds, which verify keeps as a buffer of that size beside the language model: what every
    rank holds whole (ParamGroup.replicated: Gemma 3n's timm encoder and audio encoder) plus a 1/tp share of the
    rest (the projections vLLM splits)."""
    groups = [g for g in spec.params if g.name == "vision"]
    return sum(g.replicated + (g.bytes - g.replicated) // tp for g in groups)


def weight_bytes(arch: Arch, element_bytes: int = 2) -> int:
    """Bytes of this rank's weights (model-dtype tensors at `element_bytes`, packed and fp8 tensors at 1, float32
    ones at 4)."""
    return sum(s.elements(arch.tp) * STORED_BYTES.get(s.dtype, element_bytes) for s in rank_weights(arch))
