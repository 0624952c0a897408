"""The tensors a decoder layer of each kind holds, by shape, as each family's modeling code declares them (read in
transformers' and vLLM's model files): what params.py counts and prices. A tensor is rows x cols elements, `copies`
times (one per routed expert); `linear` marks a linear layer's weight matrix, the part quantised checkpoints store
in their own format; `fp32` marks what vLLM keeps in float32 whatever the checkpoint."""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

from ..errors import KvplanError, quote
from .class_defaults import WIDTH_FROM_HIDDEN
from .config import LAYER_KEYS, Config
from .kda import kda_shape
from .layers import (ATTENTION_FREE, EXPERT_KEYS, ffn_kinds, is_diffusion_gemma, is_gemma3n, is_gemma4, is_mimo_v2,
                     is_v4, linear_state, mamba1_inner, mamba2_shape, mimo_shape)
from .routing import routing

GROUPS = ("embed", "lm_head", "attention", "linear", "dense", "shared_experts", "experts", "router", "norms",
          "vision")
# MLP of up and down projections only (no gate).
NON_GATED_MLP = ("gpt2", "falcon", "refinedweb", "refinedwebmodel", "gpt_bigcode", "gpt_neox", "phi", "nemotron_h")
# Biases on every attention and MLP projection, LayerNorms with a bias, learned positions (GPT-2 family).
ALWAYS_BIASED = ("gpt2", "gpt_bigcode", "gpt_neox", "phi")
FALCON = ("falcon", "refinedweb", "refinedwebmodel")
LAYER_NORM_WITH_BIAS = ALWAYS_BIASED + FALCON
# Families whose config class ties the LM head to the embedding unless the file says otherwise (ERNIE-4.5:
# transformers 5.19 Ernie4_5Config / Ernie4_5_MoeConfig tie_word_embeddings = True, the class vLLM 0.32 reads; Mamba
# and Falcon-Mamba: MambaConfig / FalconMambaConfig tie_word_embeddings = True, vLLM mamba.py:196 ties on it).
TIED_BY_DEFAULT = ("gemma", "gemma2", "gemma3", "gemma3_text", "gemma3n", "gemma3n_text", "gemma4", "gemma4_text",
                   "gpt2", "lfm2", "lfm2_moe", "ernie4_5", "ernie4_5_moe", "mamba", "falcon_mamba") + FALCON
QKV_BIAS = ("qwen2", "qwen2_moe", "qwen2_vl", "qwen2_5_vl")  # q/k/v biases, none on o_proj
# Qwen3-Next's attention (vLLM qwen3_next.py Qwen3NextAttention), which Qwen3.5's text decoders build too
# (qwen3_5.py): per-head q/k norms and, unless attn_output_gate is false, an output gate out of q_proj
QWEN3_NEXT_ATTENTION = ("qwen3_next", "qwen3_5_text", "qwen3_5_moe_text")
QK_NORM = ("qwen3", "qwen3_moe", "qwen3_vl_text", "qwen3_vl_moe_text", "gemma3", "gemma3_text", "lfm2",
           "lfm2_moe") + QWEN3_NEXT_ATTENTION  # per-head q/k norms (Qwen3-VL's text models: Qwen3 decoders)
# GLM-4.5 / 4.6 / 4.7 (vLLM 0.32.0 glm4_moe.py:262-278 Glm4MoeAttention): q / k / v biased when attention_bias,
# o_proj never (RowParallelLinear(bias=False)); per-head q / k norms of head_dim weights when use_qk_norm (:296-298)
FLAGGED_ATTENTION = ("glm4_moe",)
FOUR_NORMS = ("gemma2", "gemma3", "gemma3_text")  # pre/post attention and pre/post feed-forward norms
# q / k norms over the whole projections, heads x head_dim, split with the heads (vLLM 0.32.0 minimax_m2.py:215-232
# MiniMaxM2Attention: MiniMaxText01RMSNormTP weights of 1/tp of q, and of k by KV heads, one whole head a rank where
# tp exceeds them), built whatever qk_norm_type says (MiniMax-M2's configs say per_layer)
WHOLE_QK_NORM = ("minimax_m2",)
# Families whose MoE router vLLM keeps in float32 (GateLinear(params_dtype=torch.float32): minimax_m2.py:110-117,
# glm4_moe.py:141-146 Glm4MoE, which glm4_moe_lite.py's Glm4MoeLite subclasses, ernie45_moe.py:156-162
# Ernie4_5_MoeMoE), whatever dtype the checkpoint has
FP32_ROUTER = ("minimax_m2", "glm4_moe", "glm4_moe_lite", "ernie4_5_moe")
# vLLM 0.32.0 builds float32 routers for families kvplan does not read (not listed: their model_types are sized, if at
# all, as generic decoders): afmoe.py:86-92, bailing_moe_v3.py:1146-1152, step3p5.py:317-323, hy_v3.py:154-161,
# param2moe.py:292-298, longcat_flash.py:158-168 (router_params_dtype = float32, :190), ernie45_vl_moe.py:255-262 and
# :292-299; by the config's router_dtype: bailing_moe.py:241-254 ("fp32"), bailing_moe_linear.py:261-273 (unset or
# "fp32"). Only the logits float32, the weight in the model dtype: deepseek_v2.py:321-326, nemotron_h.py:160-166,
# gemma4.py:325-331, vllm/models/kimi_k3/nvidia/model.py:613-619 (Kimi Linear).


MAX_LAYERS_MTP = 16


class Tensor(NamedTuple):
    group: str
    rows: int
    cols: int = 1
    copies: int = 1
    linear: bool = False
    fp32: bool = False
    # every TP rank holds it whole (vLLM: norms, MoE routers as ReplicatedLinear, MLA's q_a / kv_a projections
    # with disable_tp in models/deepseek_v2.py), rather than a 1/tp share
    replicated: bool = False
    # the KV heads it is split by (the K and V projections; 0: not split that way): where tp exceeds them a rank
    # holds one whole head (vLLM QKVParallelLinear's num_kv_head_replicas), more than a 1/tp share. Per tensor, as
    # layer types may differ (Gemma 4's full layers 4 KV heads beside the sliding layers' 16; MiMo-V2's)
    kv_split: int = 0
    # the module's name inside its decoder layer, where a quantization_config may name it to leave it unquantized
    # (fp8 ignored_layers: params._stored_bytes)
    module: str = ""
    # the module's name inside its decoder layer as vLLM builds it (fused: self_attn.qkv_proj, mlp.gate_up_proj,
    # mlp.experts), which a GPTQ `dynamic` rule matches (gptq_dynamic.py); "" where kvplan does not name it
    vllm_module: str = ""
    # a router's matrix: a GateLinear / ReplicatedLinear weight, so a LinearBase an online method may quantise where
    # the family builds it with the quant config (engines/vllm_mxfp4_online.py), though no checkpoint format
    # quantises it (hence not `linear`)
    gate: bool = False
    # a RowParallelLinear's matrix: TP splits its input columns (o_proj, down_proj, a mixer's out_proj, Mamba-1's
    # x_proj), not its output rows as a column-parallel one's; a rank's partition is what an MXFP4 linear kernel pads
    # (params.LinearShape, engines/vllm_mxfp4_online.py)
    row_parallel: bool = False

    @property
    def elements(self) -> int:
        return self.copies * self.rows * self.cols


def _matrix(group: str, rows: int, cols: int, bias: bool = False, copies: int = 1, row_parallel: bool = False) -> list:
    out = [Tensor(group, rows, cols, copies, linear=True, row_parallel=row_parallel)]
    return out + [Tensor(group, rows, copies=copies)] if bias else out


class VllmNames(NamedTuple):
    """Where vLLM builds a family's modules (0.32.0 model files): the decoder layers' prefix and, inside a layer,
    each block and the projections kvplan names. A projection "" is not named (a GPTQ `dynamic` rule then meets its
    block: gptq_dynamic.py); a block "" is the layer itself."""
    layers: str = "model.layers"
    attention: str = "self_attn"
    qkv: str = "qkv_proj"  # QKVParallelLinear: q, k and v fused
    out: str = "o_proj"
    ffn: str = "mlp"  # a dense MLP's block, and an MoE layer's unless `moe` says
    moe: str = ""
    up: str = "gate_up_proj"  # a gated MLP's fused gate and up projections; a non-gated one's up projection
    down: str = "down_proj"
    mixer: str = "mixer"  # a linear-attention or SSM layer's block
    shared: str = ""  # the shared experts' block where it is not the MoE block's (shared_expert_name)


# Families whose vLLM modules are not named as Llama's (models/*.py in 0.32.0, file:lines)
_FALCON = VllmNames(layers="transformer.h", attention="self_attention", qkv="query_key_value", out="dense",
                    up="dense_h_to_4h", down="dense_4h_to_h")  # falcon.py:140-157, :241-254, :279-281, :391, :493
_LFM2 = VllmNames(out="out_proj", ffn="feed_forward", up="w13", down="w2", mixer="short_conv")  # lfm2.py:70-82,
# :131-145, :201-220, :254-271; lfm2_moe.py:73-85, :141-151, :212-226, :283-306, :343-364
_QWEN3_NEXT = VllmNames(mixer="linear_attn")  # qwen3_next.py:504, qwen3_5.py:153 (gated DeltaNet)
# mamba.py:131 (layers under the backbone, :187-188), :78 (the mixer); mamba2.py:126, :74, :231-232
_MAMBA = VllmNames(layers="backbone.layers")
# bailing_moe.py:343-344 (attention), :108 (query_key_value), :129 (dense); BailingMoeV2 is the same file
# (registry.py:77-78)
_BAILING = VllmNames(attention="attention", qkv="query_key_value", out="dense")
# served by vLLM's Transformers backend in 0.32.0 (registry.py:709-725), whose modules keep transformers' names
# (q_proj, ..., fc1): projections unnamed
_TRANSFORMERS_BACKEND = VllmNames(qkv="", out="", up="", down="")
FAMILY_NAMES = {
    "gpt_oss": VllmNames(attention="attn"),  # gpt_oss.py:145-153, :444
    # mixtral.py:128 and :252, phimoe.py:284 and :409, granitemoe.py:115 and :272
    **{family: VllmNames(ffn="block_sparse_moe") for family in ("mixtral", "phimoe", "granitemoe")},
    # llama4.py:113, :142, :347-356
    **{family: VllmNames(ffn="feed_forward") for family in ("llama4_text", "llama4")},
    "jamba": VllmNames(attention="", ffn="feed_forward"),  # jamba.py:142-158, :215-229, :243-254
    # falcon_h1.py:336-340 (attention under the layer's own prefix), :362-363; its Mamba-2 mixer's prefix drops
    # "layers" (:344-354: model.N.mixer), which the fallback block does not follow
    "falcon_h1": VllmNames(attention="", ffn="feed_forward"),
    "deepseek_v4": VllmNames(attention="attn", ffn="ffn"),  # vllm/models/deepseek_v4/nvidia/model.py:1076-1087
    "nemotron_h": VllmNames(attention="mixer", ffn="mixer", up="up_proj"),  # nemotron_h.py:110-125, :186-193,
    # :242, :308-314, :353-357, :406, :461-475, :521-527: every layer one mixer, the MLP non-gated
    "kimi_linear": VllmNames(moe="block_sparse_moe", mixer="self_attn"),  # vllm/models/kimi_k3/nvidia/model.py
    # :889-958 (KDA and MLA layers self_attn, MoE block_sparse_moe: its experts and shared_experts :641, :710)
    "lfm2": _LFM2, "lfm2_moe": _LFM2,
    "qwen3_next": _QWEN3_NEXT, "qwen3_5_text": _QWEN3_NEXT, "qwen3_5_moe_text": _QWEN3_NEXT,
    "falcon": _FALCON, "refinedweb": _FALCON, "refinedwebmodel": _FALCON,
    **{family: _MAMBA for family in ("mamba", "falcon_mamba", "mamba2")},
    "bailing_moe": _BAILING, "bailing_moe_v2": _BAILING,
    # granitemoehybrid.py:88 (the Mamba layer's mixer), :99 / :175 (block_sparse_moe), :106 / :182 (shared_mlp, the
    # only MLP of a model without experts), granitemoeshared.py:58, :65 (input_linear, output_linear)
    "granitemoehybrid": VllmNames(ffn="shared_mlp", moe="block_sparse_moe", shared="shared_mlp", up="input_linear",
                                  down="output_linear"),
    "gpt2": VllmNames(layers="transformer.h", attention="attn", qkv="c_attn", out="c_proj", up="c_fc",
                      down="c_proj"),  # gpt2.py:86-93, :130-137, :162-165, :214, :277
    **{family: _TRANSFORMERS_BACKEND for family in ("gpt_neox", "gpt_bigcode", "phi", "olmo", "olmo2", "olmo3")},
}


def vllm_names(cfg: Optional[Config]) -> VllmNames:
    return FAMILY_NAMES.get(cfg.model_type, VllmNames()) if cfg is not None else VllmNames()


def shared_expert_name(cfg: Optional[Config]) -> str:
    """vLLM's name of an MoE layer's shared-expert module: shared_expert where a single one has its own intermediate
    size, as Qwen's MoE names it (qwen2_moe.py, qwen3_moe.py, qwen3_next.py), and Llama 4's (llama4.py); else
    shared_experts (deepseek_v2.py, nemotron_h.py:193, kimi_k3 model.py:641)."""
    if cfg is None:
        return "shared_experts"
    single = cfg.has("shared_expert_intermediate_size") or cfg.model_type.startswith("llama4")
    return "shared_expert" if single else "shared_experts"


def _path(*parts: str) -> str:
    """A dotted module name of the non-empty `parts`."""
    return ".".join(part for part in parts if part)


def ffn_block(cfg: Optional[Config], group: str) -> str:
    """vLLM's name of a feed-forward group's module in a decoder layer: a dense MLP's block, an MoE layer's routed
    experts (one FusedMoE: mlp.experts) or its shared ones (shared_expert_name)."""
    names = vllm_names(cfg)
    if group == "experts":
        return _path(names.moe or names.ffn, "experts")
    if group == "shared_experts":
        return names.shared or _path(names.moe or names.ffn, shared_expert_name(cfg))
    return names.ffn


def vllm_blocks(cfg: Optional[Config]) -> dict:
    """The decoder layers' prefix ("layers") and each parameter group's block in a layer, as vLLM names them: where
    a GPTQ `dynamic` rule meets a tensor kvplan does not name (gptq_dynamic.module_name)."""
    names = vllm_names(cfg)
    return {"layers": names.layers, "attention": names.attention, "dense": names.ffn, "linear": names.mixer,
            "experts": ffn_block(cfg, "experts"), "shared_experts": ffn_block(cfg, "shared_experts")}


def _projection(block: str, name: str) -> str:
    """vLLM's name of projection `name` in `block` ("" where the projection is not named)."""
    return _path(block, name) if name else ""


def _named(tensors: list, name: str) -> list:
    """`tensors` under vLLM's module name `name` (Tensor.vllm_module)."""
    return [t._replace(vllm_module=name) for t in tensors]


def _whole(tensors: list) -> list:
    """`tensors`, each held whole by every TP rank (Tensor.replicated)."""
    return [t._replace(replicated=True) for t in tensors]


def per_head_qk_norm(cfg: Config) -> bool:
    """q and k RMS-normed head by head (a head_dim weight each): QK_NORM families always, GLM-4.x MoE with
    use_qk_norm (transformers' Glm4MoeConfig: false unless the config says)."""
    family = cfg.model_type
    return family in QK_NORM or (family in FLAGGED_ATTENTION and cfg.flag("use_qk_norm", False))


def gated_attention(cfg: Config) -> bool:
    """Qwen3NextAttention's output gate (qwen3_next.py: getattr(config, "attn_output_gate", True))."""
    return cfg.model_type in QWEN3_NEXT_ATTENTION and cfg.flag("attn_output_gate", True)


def mla_up_projection(cfg: Config, heads: int) -> int:
    """Elements of one MLA layer's kv_b_proj at tp 1, heads x (qk_nope + v_head) x kv_lora_rank: the up-projection
    whose key and value halves vLLM keeps as W_UK_T / W_UV for the absorbed decode (0 without MLA)."""
    if not cfg.has("kv_lora_rank"):
        return 0
    nope = cfg.optional_int("qk_nope_head_dim")
    v_dim = cfg.int("v_head_dim", required=False, minimum=0) or nope
    return heads * (nope + v_dim) * cfg.int("kv_lora_rank")


def mla_query_projection(cfg: Config, heads: int, hidden: int) -> int:
    """Elements of one MLA layer's query up-projection at tp 1, heads x (qk_nope + qk_rope) x (q_lora_rank, or the
    hidden size without one): q_b_proj / q_proj, which --dcp-q-replicate holds D times over (engines/vllm_dcp.py;
    0 without MLA)."""
    if not cfg.has("kv_lora_rank"):
        return 0
    rows = heads * (cfg.optional_int("qk_nope_head_dim") + cfg.optional_int("qk_rope_head_dim"))
    return rows * (cfg.optional_int("q_lora_rank") or hidden)


def _attention(cfg: Config, d: dict, indexer: bool = True) -> list:
    h, heads, kv, hd = d["hidden"], d["heads"], d["kv_heads"], d["head_dim"]
    if cfg.has("kv_lora_rank"):  # MLA: low-rank q (when q_lora_rank) and a joint kv latent, each with its norm
        rope, nope = cfg.optional_int("qk_rope_head_dim"), cfg.optional_int("qk_nope_head_dim")
        v_dim = cfg.int("v_head_dim", required=False, minimum=0) or nope
        kv_rank, q_rank = cfg.int("kv_lora_rank"), cfg.optional_int("q_lora_rank")
        # the latent projections (q_a, kv_a) and their norms are replicated; the per-head ones split
        q = ([*_whole([*_matrix("attention", q_rank, h), Tensor("attention", q_rank)]),
              *_matrix("attention", heads * (nope + rope), q_rank)] if q_rank
             else _matrix("attention", heads * (nope + rope), h))
        return q + [*_whole([*_matrix("attention", kv_rank + rope, h), Tensor("attention", kv_rank)]),
                    *_matrix("attention", heads * (nope + v_dim), kv_rank),
                    *_matrix("attention", h, heads * v_dim, row_parallel=True),
                    *(_indexer(cfg, h, q_rank) if indexer else [])]
    family = cfg.model_type
    flagged = family in FLAGGED_ATTENTION and cfg.flag("attention_bias", False)  # q / k / v only
    all_biased = family not in FLAGGED_ATTENTION and (
        family in ALWAYS_BIASED or cfg.flag("bias" if family in FALCON else "attention_bias", family == "gpt_oss"))
    qkv = all_biased or flagged or family in QKV_BIAS
    gate = 1 + gated_attention(cfg)  # q_proj also yields the output gate
    kv_proj = [t._replace(kv_split=kv) for t in _matrix("attention", kv * hd, h, qkv, copies=2)]
    names = vllm_names(cfg)
    out = [*_named([*_matrix("attention", heads * hd * gate, h, qkv), *kv_proj], _projection(names.attention,
                                                                                              names.qkv)),
           *_named(_matrix("attention", h, heads * hd, all_biased, row_parallel=True),
                  _projection(names.attention, names.out))]
    if per_head_qk_norm(cfg):
        out += [Tensor("attention", hd, copies=2, replicated=True)]
    if family in WHOLE_QK_NORM:
        out += [Tensor("attention", heads * hd), Tensor("attention", kv * hd, kv_split=kv)]
    if family == "gpt_oss":
        out.append(Tensor("attention", heads))  # attention sinks, one per head
    return out


def _indexer(cfg: Config, hidden: int, q_rank: int) -> list:
    """DeepSeek sparse attention's lightning indexer, every rank holding it whole (vLLM models/deepseek_v32/
    attention.py DeepseekV32Indexer): wq_b a quantised ReplicatedLinear over the q latent; wk and weights_proj one
    MergedColumnParallelLinear with disable_tp and no quant_config (an fp8 wk upcast to the model dtype when
    loaded); k_norm a float32 LayerNorm, weight and bias."""
    if not cfg.has("index_topk"):
        return []
    heads, dim = cfg.int("index_n_heads"), cfg.int("index_head_dim")
    return _whole([*_matrix("attention", heads * dim, q_rank), Tensor("attention", dim + heads, hidden),
                   Tensor("attention", dim, copies=2, fp32=True)])


def v4_attention(cfg: Config, d: dict, ratio: int) -> list:
    """A DeepSeek-V4 attention layer as vLLM 0.32 builds it (models/deepseek_v4/attention.py DeepseekV4Attention):
    fused_wqa_wkv (hidden -> q_lora_rank + head_dim, quantised, whole on every rank) and its two norms; wq_b to every
    head (split); the grouped output projection wo_a (o_groups blocks of heads x head_dim / o_groups -> o_lora_rank,
    split by groups) and wo_b (o_groups x o_lora_rank -> hidden, split); a float32 attention sink a head. A
    compressed layer adds its compressor (compressor.py: float32 ape [ratio, coff x head_dim], fused_wkv_wgate
    hidden -> 2 x coff x head_dim unquantised and whole, a norm); a ratio-4 layer its indexer (wq_b quantised and
    whole, weights_proj hidden -> index_n_heads unquantised and whole, and a compressor of its own)."""
    h, heads = d["hidden"], d["heads"]
    dim, q_rank, groups = cfg.int("head_dim"), cfg.int("q_lora_rank"), cfg.int("o_groups")
    out_rank = cfg.int("o_lora_rank")
    out = [*_whole([*_matrix("attention", q_rank + dim, h), Tensor("attention", q_rank), Tensor("attention", dim)]),
           *_matrix("attention", heads * dim, q_rank), *_matrix("attention", groups * out_rank, heads * dim // groups),
           *_matrix("attention", h, groups * out_rank, row_parallel=True), Tensor("attention", heads, fp32=True)]
    if ratio:
        out += _v4_compressor(h, dim, ratio)
    if ratio == 4:
        index_heads, index_dim = cfg.int("index_n_heads"), cfg.int("index_head_dim")
        out += [*_whole(_matrix("attention", index_heads * index_dim, q_rank)),
                Tensor("attention", index_heads, h, replicated=True), *_v4_compressor(h, index_dim, ratio)]
    return out


def _v4_compressor(hidden: int, dim: int, ratio: int) -> list:
    coff = 2 if ratio == 4 else 1
    return _whole([Tensor("attention", ratio, coff * dim, fp32=True), Tensor("attention", 2 * coff * dim, hidden),
                   Tensor("attention", dim)])


def v4_hyper_connections(hidden: int, streams: int, copies: int = 2) -> list:
    """Manifold-constrained hyper-connections (models/deepseek_v4/nvidia/model.py DeepseekV4DecoderLayer): per
    mixer (attention, feed-forward) a float32 mixing function [(2 + hc) x hc, hc x hidden], a base and 3 scales,
    whole on every rank."""
    mix = (2 + streams) * streams
    return _whole([Tensor("norms", mix, streams * hidden, copies, fp32=True),
                   Tensor("norms", mix + 3, copies=copies, fp32=True)])


def _v4_layer(cfg: Config, d: dict, ratio: int, hashed: bool) -> list:
    """A DeepSeek-V4 decoder layer: two norms, hyper-connections, attention, MoE (its router the model dtype,
    float32 score correction on learned-routing layers; a hash layer's int32 token -> experts table instead,
    [vocab, experts per token], whole on every rank: DeepseekV4MoE)."""
    h = d["hidden"]
    experts, k = cfg.int(EXPERT_KEYS), cfg.int("num_experts_per_tok")
    vocab = cfg.vocab_size()
    router = Tensor("router", vocab, k, fp32=True, replicated=True) if hashed else \
        Tensor("router", experts, fp32=True, replicated=True)
    inter = cfg.int("moe_intermediate_size")
    return [Tensor("norms", h, copies=2, replicated=True), *v4_hyper_connections(h, cfg.int("hc_mult")),
            *v4_attention(cfg, d, ratio), *_mlp(cfg, "experts", h, inter, experts),
            Tensor("router", experts, h, replicated=True), router,
            *_mlp(cfg, "shared_experts", h, inter * cfg.optional_int("n_shared_experts"))]


def _kda_mixer(cfg: Config, h: int) -> list:
    """A Kimi Linear KDA layer as vLLM 0.32.0 builds it (kimi_gdn_linear_attn.py KimiGatedDeltaNetAttention): one
    merged input projection to q, k, v, beta (a head each) and the gate's low-rank f_a, whose head_dim rows every
    TP rank holds whole; f_b (head_dim -> q width), dt_bias (float32), the packed q / k / v short convolution
    (float32 weights), A_log (float32, a head each); the output gate's g_a (replicated) and g_b; the gated norm's
    head_dim weight; o_proj."""
    shape = kda_shape(cfg)
    width, heads, dim = shape.width, shape.heads, shape.head_dim
    return [*_matrix("linear", 3 * width + heads, h), *_whole(_matrix("linear", dim, h)),
            *_matrix("linear", width, dim), Tensor("linear", width, fp32=True),
            Tensor("linear", 3 * width, shape.kernel, fp32=True), Tensor("linear", heads, fp32=True),
            *_whole(_matrix("linear", dim, h)), *_matrix("linear", width, dim),
            Tensor("linear", dim, replicated=True), *_matrix("linear", h, width, row_parallel=True)]


def _linear_mixer(cfg: Config, d: dict) -> list:
    h, flavor = d["hidden"], linear_state(cfg).flavor
    if flavor == "kda":
        return _kda_mixer(cfg, h)
    if flavor == "gated-deltanet":  # Qwen3-Next
        nk, nv = cfg.int("linear_num_key_heads"), cfg.int("linear_num_value_heads")
        dk, dv = cfg.int("linear_key_head_dim"), cfg.int("linear_value_head_dim")
        key, value = nk * dk, nv * dv
        return [*_matrix("linear", 2 * key + 2 * value, h), *_matrix("linear", 2 * nv, h),
                Tensor("linear", 2 * key + value, cfg.int("linear_conv_kernel_dim")), Tensor("linear", nv),
                Tensor("linear", nv, fp32=True), Tensor("linear", dv), *_matrix("linear", h, value, row_parallel=True)]
    if flavor == "shortconv":  # LFM2 (vLLM short_conv.py): in_proj -> B, C, x; depthwise conv; out_proj
        width, bias = cfg.int(("conv_dim", "hidden_size")), cfg.flag("conv_bias", False)
        return [*_matrix("linear", 3 * width, h, bias), Tensor("linear", width, cfg.int("conv_L_cache")),
                *([Tensor("linear", width)] if bias else []), *_matrix("linear", h, width, bias, row_parallel=True)]
    proj_bias = cfg.flag("mamba_proj_bias", False) or cfg.flag("use_bias", False)
    conv_bias = cfg.flag("mamba_conv_bias", True) and cfg.flag("use_conv_bias", True)
    kernel = cfg.int(("conv_kernel", "mamba_d_conv"), default=4)
    if flavor == "mamba2":  # Nemotron-H: in_proj yields x, z, B, C and dt; A, D, dt_bias per head; gated norm
        heads, head_dim, state, groups, _ = mamba2_shape(cfg)
        inner = heads * head_dim
        # the gated norm's weight: Falcon-H1 has one only with mamba_rms_norm (falcon_h1.py: use_rms_norm)
        norm = cfg.model_type != "falcon_h1" or cfg.flag("mamba_rms_norm", False)
        # B and C's rows of in_proj and their conv channels: with one group every rank holds them whole (vLLM
        # mamba_mixer2.py extra_groups_for_head_shards), more groups split with the heads
        bc = [*_matrix("linear", 2 * groups * state, h, proj_bias), Tensor("linear", 2 * groups * state, kernel),
              *([Tensor("linear", 2 * groups * state)] if conv_bias else [])]
        return [*_matrix("linear", 2 * inner + heads, h, proj_bias), *(_whole(bc) if groups == 1 else bc),
                Tensor("linear", inner, kernel), *([Tensor("linear", inner)] if conv_bias else []),
                Tensor("linear", heads, copies=2), Tensor("linear", heads, fp32=True),
                *([Tensor("linear", inner)] if norm else []),
                *_matrix("linear", h, inner, proj_bias, row_parallel=True)]
    inner = mamba1_inner(cfg)  # Mamba-1 (Jamba, Mamba, Falcon-Mamba)
    state = cfg.int(("mamba_d_state", "state_size"))
    # transformers' MambaConfig: time_step_rank "auto" is ceil(hidden / 16), as Jamba's default
    rank_key = "mamba_dt_rank" if cfg.has("mamba_dt_rank") else "time_step_rank"
    rank = math.ceil(h / 16) if cfg.get(rank_key, "auto") == "auto" else cfg.int(rank_key)
    out = [*_matrix("linear", 2 * inner, h, proj_bias), Tensor("linear", inner, kernel),
           *([Tensor("linear", inner)] if conv_bias else []),
           *_matrix("linear", rank + 2 * state, inner, row_parallel=True),
           *_matrix("linear", inner, rank, True), Tensor("linear", inner, state, fp32=True), Tensor("linear", inner),
           *_matrix("linear", h, inner, proj_bias, row_parallel=True)]
    if cfg.model_type == "jamba":  # Jamba norms dt, B and C before the scan
        out += [Tensor("linear", rank), Tensor("linear", state, copies=2)]
    return out


def _mlp(cfg: Config, group: str, h: int, inter: int, copies: int = 1) -> list:
    family = cfg.model_type
    bias = family in ALWAYS_BIASED or cfg.flag("bias" if family in FALCON else "mlp_bias", False)
    block, names = ffn_block(cfg, group), vllm_names(cfg)
    if family == "gpt_oss":  # fused gate_up and down, each with a bias, per expert
        return _named([*_matrix(group, 2 * inter, h, True, copies),
                       *_matrix(group, h, inter, True, copies, row_parallel=True)], block)
    up = _matrix(group, inter, h, bias, copies) * (1 if family in NON_GATED_MLP else 2)
    down = _matrix(group, h, inter, bias, copies, row_parallel=True)
    if group == "experts":  # one FusedMoE module holds them all
        return _named(up + down, block)
    return _named(up, _projection(block, names.up)) + _named(down, _projection(block, names.down))


class FeedForwardSizes(NamedTuple):
    dense: int  # a dense layer's MLP intermediate size
    expert: int  # a routed expert's
    shared: int  # an MoE layer's shared expert(s), 0 for none
    shared_gate: bool  # Qwen: a sigmoid gate [1, hidden] scales the shared expert


EXPERT_WIDTH_KEYS = ("moe_intermediate_size", "intermediate_size")


def expert_width(cfg: Config) -> int:
    """A routed expert's intermediate size as vLLM's MoE blocks read it: moe_intermediate_size (vLLM 0.34.0
    qwen3_moe.py:209), else intermediate_size (mixtral.py:250, gpt_oss.py:394), with no default. Required, and
    positive, for a model with routed experts: without it the experts would be priced at no width (gpt-oss's MXFP4
    padding divides by it); a dense model's is its MLP width, 0 when it names none."""
    if not cfg.optional_int(EXPERT_KEYS):
        return cfg.optional_int(EXPERT_WIDTH_KEYS)
    return cfg.int(EXPERT_WIDTH_KEYS)


MLP_WIDTH_KEYS = ("intermediate_size", "n_inner", "ffn_hidden_size")


def mlp_width(cfg: Config, hidden: int) -> int:
    """The dense MLP's width: the config's intermediate_size (n_inner, ffn_hidden_size), its family's class default
    filled in where the file leaves it out (config.Config), else 4 x hidden_size where the family's code derives
    that (class_defaults.WIDTH_FROM_HIDDEN). A model with a dense MLP layer and none of those is refused: vLLM
    would build the layer from a class default kvplan does not know (or none). Without a dense layer the width is
    only the activation estimate's (ModelSpec.intermediate_size), 4 x hidden_size."""
    width = cfg.optional_int(MLP_WIDTH_KEYS)
    if width or cfg.model_type in WIDTH_FROM_HIDDEN:
        return width or 4 * hidden
    if "dense" in ffn_kinds(cfg, cfg.int(LAYER_KEYS))[0]:
        family = f"model_type {quote(cfg.model_type)}" if cfg.model_type else "a config without a model_type"
        raise KvplanError(f"config field 'intermediate_size' is missing and kvplan knows no default for it in "
                          f"{family} (no transformers config class of that type fills one); add intermediate_size, "
                          f"the width of the model's dense MLP layers.")
    return 4 * hidden


def feed_forward_sizes(cfg: Config, hidden: int) -> FeedForwardSizes:
    """The intermediate sizes of `cfg`'s feed-forward blocks (vLLM's model code names the same)."""
    inter = mlp_width(cfg, hidden)
    if cfg.model_type == "nemotron_h":  # nemotron_h.py NemotronHMoE: moe_shared_expert_intermediate_size x n
        count = cfg.int("n_shared_experts", minimum=0, default=1)
        shared = cfg.optional_int("moe_shared_expert_intermediate_size") * count
    elif cfg.model_type.startswith("llama4"):
        shared = inter  # llama4.py Llama4MoE: one shared expert of intermediate_size in every MoE layer
    elif cfg.model_type == "lfm2":  # lfm2.py Lfm2MLP: block_ff_dim (intermediate_size) adjusted, then rounded up
        inter = cfg.optional_int(("block_ff_dim", "intermediate_size")) or inter
        if cfg.flag("block_auto_adjust_ff_dim", True):
            inter = int(2 * inter / 3)
            multiplier = cfg.get("block_ffn_dim_multiplier")
            if multiplier is not None:
                inter = int(multiplier * inter)
            step = cfg.int("block_multiple_of", default=256)
            inter = step * ((inter + step - 1) // step)
        return FeedForwardSizes(inter, inter, 0, False)
    elif cfg.model_type == "cohere2_moe":  # 0.34.0 cohere2_moe.py (0.32.0 lines in brackets): routed experts of
        # intermediate_size (:355 [:309]), shared ones of it x num_shared_experts (:334 [:291]), a dense layer of
        # prefix_dense_intermediate_size when set (:450-452 [:354-356])
        dense = cfg.optional_int("prefix_dense_intermediate_size") or inter
        return FeedForwardSizes(dense, inter, inter * cfg.optional_int("num_shared_experts"), False)
    elif cfg.model_type == "granitemoehybrid":  # granitemoehybrid.py: experts of intermediate_size, shared_mlp
        shared = cfg.optional_int("shared_intermediate_size")  # of shared_intermediate_size in every layer
        if not cfg.optional_int(EXPERT_KEYS):  # no experts: shared_mlp is the layer's only MLP
            return FeedForwardSizes(shared or inter, inter, 0, False)
    else:
        shared = (cfg.optional_int("shared_expert_intermediate_size")  # Kimi Linear: num_shared_experts
                  # ERNIE-4.5: moe_num_shared_experts (ernie45_moe.py:168-172, one MLP of their summed width)
                  or cfg.optional_int(("n_shared_experts", "num_shared_experts", "moe_num_shared_experts"))
                  * cfg.optional_int("moe_intermediate_size"))
    # Llama 4's dense layers are intermediate_size_mlp wide; Muse Spark's are intermediate_size (its
    # intermediate_size_mlp is the drafter's: models/muse_spark/nvidia/model.py:1492-1498, 0.34.0)
    dense = inter if cfg.model_type.startswith("muse_spark") else cfg.optional_int("intermediate_size_mlp") or inter
    return FeedForwardSizes(dense, cfg.optional_int("moe_intermediate_size") or inter, shared,
                            cfg.has("shared_expert_intermediate_size"))


def _feed_forward(cfg: Config, d: dict, ffn: str) -> list:
    h = d["hidden"]
    sizes = feed_forward_sizes(cfg, h)
    if ffn == "dense":
        return _mlp(cfg, "dense", h, sizes.dense)
    if ffn != "moe":
        return []
    experts = cfg.int(EXPERT_KEYS)
    out = _mlp(cfg, "experts", h, sizes.expert, experts)
    out += [Tensor("router", experts, h, fp32=cfg.model_type in FP32_ROUTER, replicated=True, gate=True)]
    router = routing(cfg)
    if router.logit_bias:
        out.append(Tensor("router", experts, replicated=True))
    if router.correction_bias:
        out.append(Tensor("router", experts, fp32=True, replicated=True))
    if sizes.shared:
        out += _mlp(cfg, "shared_experts", h, sizes.shared)
    if sizes.shared_gate:
        out.append(Tensor("shared_experts", 1, h, replicated=True))
    return out


def mimo_layer_tensors(cfg: Config, d: dict, mixer: str, ffn: str) -> list:
    """A MiMo-V2 decoder layer as vLLM 0.32.0 mimo_v2.py builds it, with its layer type's own shape (layers.mimo_shape):
    two norms; one QKVParallelLinear (q heads x key width, K and V of the KV heads at their own widths, biased with
    attention_bias); o_proj from heads x value width, unbiased, named so that ignored_layers can keep it 16-bit; a
    sliding layer's attention sink, one per query head (add_swa_attention_sink_bias; full layers never get one);
    then a dense MLP or an MoE block (MiMoV2MoE: experts, a router in moe_router_dtype, float32 unless it says
    otherwise, and a float32 correction bias, both whole on every rank)."""
    h, shape = d["hidden"], mimo_shape(cfg, mixer)
    heads, kv, width, value = shape["heads"], shape["kv_heads"], shape["head_dim"], shape["v_head_dim"]
    bias = cfg.flag("attention_bias", False)
    out = [Tensor("norms", h, copies=2, replicated=True), *_matrix("attention", heads * width, h, bias),
           *[t._replace(kv_split=kv) for t in _matrix("attention", kv * width, h, bias)],
           *[t._replace(kv_split=kv) for t in _matrix("attention", kv * value, h, bias)],
           Tensor("attention", h, heads * value, linear=True, module="self_attn.o_proj", row_parallel=True)]
    if mixer == "sliding" and cfg.flag("add_swa_attention_sink_bias", False):
        out.append(Tensor("attention", heads))
    if ffn == "dense":
        return out + _mlp(cfg, "dense", h, cfg.int("intermediate_size"))
    experts = cfg.int(EXPERT_KEYS)
    router_fp32 = str(cfg.get("moe_router_dtype") or "float32") in ("float32", "fp32")
    return out + [*_mlp(cfg, "experts", h, cfg.int("moe_intermediate_size"), experts),
                  Tensor("router", experts, h, fp32=router_fp32, replicated=True),
                  Tensor("router", experts, fp32=True, replicated=True)]


def _layer_norms(cfg: Config) -> int:
    family = cfg.model_type
    if family == "nemotron_h" or family in ATTENTION_FREE:
        return 1  # one norm per block: each block is a mixer or a feed-forward, never both
    if family in FOUR_NORMS:
        return 4
    if family in FALCON and cfg.flag("parallel_attn", True):
        new = cfg.flag("new_decoder_architecture", family == "refinedweb")
        return 2 if new and cfg.int("num_ln_in_parallel_attn", default=2) == 2 else 1
    return 2


def layer_tensors(cfg: Config, d: dict, mixer: str, ffn: str, indexer: bool = True) -> list:
    """Tensors of one decoder layer with this mixer and feed-forward block (DeepSeek-V4: mixer 'v4:<ratio>', ffn
    'moe' or 'hash_moe', from params.decoder_layers); `indexer` False for a sparse-attention layer that reuses
    another layer's top-k and so builds no lightning indexer (layers.indexer_layers)."""
    if mixer.startswith("v4:"):
        return _v4_layer(cfg, d, int(mixer[3:]), ffn == "hash_moe")
    if is_mimo_v2(cfg):
        return mimo_layer_tensors(cfg, d, mixer, ffn)
    width = 2 if cfg.model_type in LAYER_NORM_WITH_BIAS else 1
    out = [Tensor("norms", d["hidden"], copies=width * _layer_norms(cfg), replicated=True)]
    if mixer in ("full", "sliding", "chunked", "parallel"):
        out += _attention(cfg, d, indexer)
    if mixer in ("linear", "parallel"):
        out += _linear_mixer(cfg, d)
    return out + _feed_forward(cfg, d, ffn)


def model_tensors(cfg: Config, d: dict) -> list:
    """Tensors outside the decoder layers: embeddings, LM head, final norm."""
    h = d["hidden"]
    vocab = cfg.vocab_size()
    out = [Tensor("embed", vocab, h),
           Tensor("norms", h, copies=2 if cfg.model_type in LAYER_NORM_WITH_BIAS else 1, replicated=True)]
    if cfg.model_type in ("gpt2", "gpt_bigcode"):  # learned positions
        out.append(Tensor("embed", cfg.int(("n_positions", "max_position_embeddings")), h))
    if not cfg.flag("tie_word_embeddings", cfg.flag("tie_embedding", cfg.model_type in TIED_BY_DEFAULT)):
        out.append(Tensor("lm_head", vocab, h))
    if is_v4(cfg):  # the head's hyper-connection collapse (DeepseekV4Model hc_head_fn, _base, _scale)
        out += v4_hyper_connections(h, cfg.int("hc_mult"), copies=1)
    return out


def per_layer_input(cfg: Config) -> int:
    """Gemma 4's and Gemma 3n's per-layer input width (hidden_size_per_layer_input; 0 or absent: none)."""
    return cfg.optional_int("hidden_size_per_layer_input") if is_gemma4(cfg) or is_gemma3n(cfg) else 0


def per_layer_table(cfg: Config, n: int) -> int:
    """Parameters of Gemma 4's embed_tokens_per_layer table (0 without per-layer inputs)."""
    width = per_layer_input(cfg)
    return cfg.int("vocab_size_per_layer_input") * n * width if width else 0


def _gemma4_kv(d: dict, shared: bool) -> list:
    """A Gemma 4 layer's K and V projections (one QKVParallelLinear with q) and k_norm, as vLLM builds them: none on
    a KV-sharing layer; a K = V layer gets its V rows too (loaded from k_proj)."""
    if shared:
        return []
    rows = d["kv_heads"] * d["head_dim"]
    return [Tensor("attention", rows, d["hidden"], copies=2, linear=True, kv_split=d["kv_heads"]),
            Tensor("attention", d["head_dim"], replicated=True)]


def gemma4_layer_tensors(cfg: Config, d: dict, shared: bool) -> list:
    """One Gemma 4 decoder layer as vLLM 0.32.0 gemma4.py Gemma4DecoderLayer builds it, `d` holding this layer's
    head shape: q / o projections and q_norm (v_norm has no weight); four norms, a post-norm for the per-layer input
    and three more with the MoE block; the layer_scalar buffer the checkpoint fills; the gated MLP, twice as wide on
    KV-sharing layers with use_double_wide_mlp; the MoE block beside it (experts, a router with its scale and
    per-expert scale); the per-layer input gate and projection (ReplicatedLinear: whole on every rank)."""
    h, heads, hd, ple = d["hidden"], d["heads"], d["head_dim"], per_layer_input(cfg)
    experts = cfg.optional_int("num_experts")
    norms = 4 + (1 if ple else 0) + (3 if experts else 0)
    out = [Tensor("norms", h, copies=norms, replicated=True), Tensor("norms", 1, replicated=True),
           Tensor("attention", heads * hd, h, linear=True), *_gemma4_kv(d, shared),
           Tensor("attention", h, heads * hd, linear=True, row_parallel=True), Tensor("attention", hd, replicated=True)]
    wide = 2 if shared and cfg.flag("use_double_wide_mlp", False) else 1
    out += _mlp(cfg, "dense", h, wide * cfg.int("intermediate_size"))
    if experts:
        inter = cfg.int(("moe_intermediate_size", "expert_intermediate_size"))
        out += _mlp(cfg, "experts", h, inter, experts)
        out += [Tensor("router", experts, h, replicated=True), Tensor("router", h, replicated=True),
                Tensor("router", experts, replicated=True)]
    if ple:
        out += _whole([Tensor("dense", ple, h, linear=True), Tensor("dense", h, ple, linear=True)])
    return out


def gemma4_model_tensors(cfg: Config, d: dict) -> list:
    """Gemma 4 outside its layers: the embedding (tied LM head) and final norm, and with per-layer inputs the
    embed_tokens_per_layer table (vocab_size_per_layer_input x layers x width, a VocabParallelEmbedding), the
    per_layer_model_projection (ColumnParallelLinear) and its norm."""
    h, ple = d["hidden"], per_layer_input(cfg)
    out = model_tensors(cfg, d)
    if ple:
        n = cfg.int("num_hidden_layers")
        out += [Tensor("embed", per_layer_table(cfg, n)), Tensor("dense", n * ple, h, linear=True),
                Tensor("norms", ple, replicated=True)]
    if is_diffusion_gemma(cfg):
        out += self_conditioning_tensors(cfg, h)
    return out


def self_conditioning_tensors(cfg: Config, h: int) -> list:
    """DiffusionGemma's self-conditioning MLP beside the Gemma 4 layers (diffusion_gemma.py
    DiffusionGemmaSelfConditioning, 0.24.0:66-81, 0.34.0:82-97): pre_norm (a weight of h; post_norm has none) and
    gate / up / down projections between h and the outer config's self_conditioning_size, else the text config's
    intermediate_size (0.24.0:254-256, 0.34.0:264-266). Plain nn.Linear: no quantization method, the model dtype,
    whole on every TP rank."""
    width = cfg.int("self_conditioning_size", required=False) or cfg.int("intermediate_size")
    return [Tensor("norms", h, replicated=True), Tensor("dense", width, h, copies=2, replicated=True),
            Tensor("dense", h, width, replicated=True)]


def gemma4_load_delta(cfg: Config, d: dict, shared: bool, k_eq_v: bool) -> tuple:
    """(tensors vLLM allocates that the checkpoint lacks, tensors the checkpoint ships that vLLM drops) of one Gemma 4
    layer (gemma4.py _gemma4_layer_weights_mapper): a K = V layer's V rows, loaded from k_proj; a KV-sharing
    layer's k_proj, v_proj and k_norm, which original checkpoints still ship."""
    rows = d["kv_heads"] * d["head_dim"]
    if shared:
        return [], [Tensor("attention", rows, d["hidden"], copies=2, linear=True), Tensor("attention", d["head_dim"])]
    if k_eq_v:
        return [Tensor("attention", rows, d["hidden"], linear=True, kv_split=d["kv_heads"])], []
    return [], []


def mtp_blocks(cfg: Config) -> int:
    """Multi-token-prediction blocks a checkpoint ships beside the model's own layers: DeepSeek V3/R1 and GLM
    `num_nextn_predict_layers`, Qwen3.5 `mtp_num_hidden_layers`; Qwen3-Next checkpoints ship one (the cited
    parameter count holds it) though the config names none. No engine loads them to serve the model: vLLM's
    deepseek_v2.py load_weights skips get_spec_layer_idx_from_weight_name layers, qwen3_next.py and qwen3_5.py map
    "mtp." to None (0.32.0)."""
    n = cfg.optional_int(("num_nextn_predict_layers", "mtp_num_hidden_layers"), maximum=MAX_LAYERS_MTP)
    return n or (1 if cfg.model_type == "qwen3_next" else 0)


def mtp_module_tensors(cfg: Config, d: dict, kind: tuple) -> list:
    """One MTP module as vLLM 0.32 builds it to draft: a decoder layer of the model's last layer's kind, three norms
    and the 2h -> h projection in the model dtype. DeepSeek-style modules (num_nextn_predict_layers; deepseek_mtp.py,
    glm4_moe_mtp.py DeepSeekMultiTokenPredictorLayer) hold enorm, hnorm, shared_head.norm and eh_proj, an nn.Linear
    every TP rank holds whole; Qwen3-Next's (qwen3_next_mtp.py) pre_fc_norm_hidden / _embedding, norm and fc, a
    ColumnParallelLinear split over the ranks. Embedding and LM head are the target's (mtp_tensors adds the copies
    a checkpoint ships)."""
    h, deepseek = d["hidden"], cfg.has("num_nextn_predict_layers")
    if is_v4(cfg):
        return layer_tensors(cfg, d, *kind) + _v4_mtp_extras(cfg, h)
    return layer_tensors(cfg, d, *kind) + [Tensor("norms", h, copies=3, replicated=True),
                                           Tensor("norms", 2 * h, h, replicated=deepseek)]


def _v4_mtp_extras(cfg: Config, h: int) -> list:
    """DeepSeek-V4's MTP block around its decoder layer, as the checkpoint ships it (mtp.0.*, V4-Pro's tensor
    listing): enorm, hnorm and norm; e_proj and h_proj, hidden -> hidden each, quantised as the layers' linears
    are (V3's one 16-bit eh_proj 2h -> h); the head's hyper-connection collapse, float32 hc_head_fn [hc, hc x
    hidden], hc_head_base [hc] and hc_head_scale [1]."""
    streams = cfg.int("hc_mult")
    projections = Tensor("dense", h, h, copies=2, linear=True, replicated=True)
    return [Tensor("norms", h, copies=3, replicated=True), projections,
            *_whole([Tensor("norms", streams, streams * h, fp32=True), Tensor("norms", streams + 1, fp32=True)])]


def eagle_head_tensors(cfg: Config, d: dict, eagle3: bool, target_vocab: int) -> list:
    """An EAGLE head (a Llama config) as vLLM 0.32 builds it, less the target's embedding the proposer shares
    (v1/spec_decode/llm_base_proposer.py _maybe_share_embeddings: a head without its own, or with an identical one,
    takes the target's). EAGLE (llama_eagle.py EagleLlamaForCausalLM): Llama decoder layers, the first without its
    input_layernorm, fc 2h -> h (ReplicatedLinear: whole on every rank); no final norm, and the target's LM head.
    EAGLE-3 (llama_eagle3.py Eagle3LlamaForCausalLM): the first layer's q / k / v read 2h (embeddings and hidden
    states), a hidden_norm, a final norm, fc from the target's aux hidden states (3 layers unless
    eagle_config.eagle_aux_hidden_state_layer_ids says) to h, whole on every rank, optional input / fc norms, its
    own LM head of draft_vocab_size rows and, where that differs from the target's, the draft -> target id map
    (int64, whole)."""
    h, heads, kv, hd = d["hidden"], d["heads"], d["kv_heads"], d["head_dim"]
    n = cfg.int(("num_hidden_layers", "n_layer", "num_layers", "n_layers"))
    layer = layer_tensors(cfg, d, "full", "dense")
    if not eagle3:
        first = [layer[0]._replace(copies=layer[0].copies - 1)] + layer[1:]
        return first + layer * (n - 1) + [Tensor("dense", h, 2 * h, linear=True, replicated=True)]
    aux = cfg.get("eagle_config")
    aux = len(aux.get("eagle_aux_hidden_state_layer_ids") or [0] * 3) if isinstance(aux, dict) else 3
    target_hidden = cfg.int("target_hidden_size", default=h)
    width = aux * target_hidden
    out = layer * n + [Tensor("attention", heads * hd, h, linear=True),  # the first layer's 2h q / k / v
                       Tensor("attention", kv * hd, h, copies=2, linear=True, kv_split=kv),
                       Tensor("norms", h, copies=2, replicated=True),  # hidden_norm, final norm
                       Tensor("dense", h, width, linear=True, replicated=True)]
    if cfg.flag("norm_before_fc", False):
        out.append(Tensor("norms", width, replicated=True))
    if cfg.flag("fc_norm", False):
        out.append(Tensor("norms", target_hidden, copies=aux, replicated=True))
    draft_vocab = cfg.int("draft_vocab_size", default=target_vocab)
    out.append(Tensor("lm_head", draft_vocab, h))
    if draft_vocab != target_vocab:  # int64: two float32-wide words a token
        out.append(Tensor("router", draft_vocab, copies=2, fp32=True, replicated=True))
    return out


def mtp_tensors(cfg: Config, d: dict, kind: tuple) -> list:
    """Tensors of one MTP block as a checkpoint ships it: mtp_module_tensors; DeepSeek-style blocks
    (num_nextn_predict_layers) also hold their own embed_tokens and shared_head.head copies; DeepSeek-V4's do not."""
    h = d["hidden"]
    out = mtp_module_tensors(cfg, d, kind)
    if cfg.has("num_nextn_predict_layers") and not is_v4(cfg):
        vocab = cfg.vocab_size()
        out.append(Tensor("embed", vocab, h, copies=2))
    return out
