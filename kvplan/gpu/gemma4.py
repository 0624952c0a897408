"""Gemma 4's decoder layer, per-layer inputs and rotary tables, as vLLM 0.32.0 model_executor/models/gemma4.py runs
them (the shapes and the lines cited: kvplan/verify/arch.py, its Gemma 4 section). kvplan/gpu/model.py builds these
blocks for a Gemma 4 Arch:

    x -> input norm -> attention -> post-attention norm -> + x
      -> pre-feed-forward norm -> MLP [-> its norm + the MoE block's normed output] -> post-feed-forward norm -> + x
      [-> + norm(per_layer_projection(gelu(per_layer_input_gate(x)) * this layer's per-layer input))]
      -> x layer_scalar

Attention: q and k RMS-normed per head with weights, v without one, scaling 1.0; a KV-sharing layer projects q
alone and attends over the cache (decode) or the K/V (prefill) of the layer it shares. Head widths the bundled decode
kernel takes (64, 128, 256: the sliding layers) run it and the fused RoPE + cache-write kernel; wider heads (the
full layers' 512) run torch over gathered pages, on the GPU too, labelled as such (not a kernel's time)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..kernels.limits import HEAD_DIMS
from .ffn import MLP, MoE
from .mixers import rotate_and_store, sdpa_prefill
from .ops import Rope, activation, rms_norm, vocab_parallel_embedding
from .paged import torch_paged_attention

SQRT_HALF = 2 ** -0.5  # gemma4.py Gemma4Model: per_layer_input_scale = rsqrt(2)
WIDE_LABEL = ("torch over gathered pages, on the GPU too (head_dim {dim}: the bundled decode kernel takes "
              "{dims}); NOT a CUDA kernel")
WIDE_ROPE_LABEL = ("torch RoPE and index_put cache writes (the layers whose decode attention runs in torch); NOT a "
                   "CUDA kernel")
WIDE_PREFILL_LABEL = ("torch SDPA, the prompt's queries {block:,} at a time (head_dim {dim}: wider than flash "
                      "attention takes, so whichever backend runs holds one block's scores)")
WIDE_QUERY_BLOCK = 1024
SHARED_LABEL = ("a q projection, its norm and torch RoPE (NOT a CUDA kernel: some 7 launches where vLLM runs one); "
                "attention over the cache of the layer it shares (no K/V computed, no cache write)")


def rope_key(arch, layer) -> tuple:
    """(rotation form, theta, head_dim, rotary dims) of an attention layer: its HeadShape's and its base."""
    shape = arch.attention(layer)
    return shape.rope_type, layer.rope_theta, shape.head_dim, shape.rope_dim


def inverse_frequencies(rope_type: str, theta: float, head_dim: int, rotary: int) -> list:
    """The rotation's frequencies, one per rotated pair. "default" (vLLM RotaryEmbedding): rotary / 2 pairs (i,
    i + rotary / 2) of the first rotary dims at theta^(-2i / rotary). "proportional" (rotary_embedding/
    gemma4_rope.py _compute_inv_freq): head_dim / 2 pairs (i, i + head_dim / 2) of the whole head, the first
    rotary / 2 at theta^(-2i / head_dim), the rest 0 (cos 1, sin 0: left as they are)."""
    if rope_type == "proportional":
        return [theta ** (-2 * i / head_dim) if i < rotary // 2 else 0.0 for i in range(head_dim // 2)]
    return [theta ** (-2 * i / rotary) for i in range(rotary // 2)]


def wide_prefill(q, k, v, step, window, scale):
    """sdpa_prefill for heads wider than flash attention takes (512): without a window, a prompt longer than
    WIDE_QUERY_BLOCK runs its queries a block at a time, each over the keys up to its last token (causal), so that
    the memory-efficient or math backend holds one block's scores, not the whole prompt's."""
    n = step.seq_len
    if window or n <= WIDE_QUERY_BLOCK:
        return sdpa_prefill(q, k, v, step, window, scale)
    r, heads = step.seqs, q.shape[1]
    qh, kh, vh = (t.view(r, n, t.shape[1], t.shape[2]).transpose(1, 2) for t in (q, k, v))
    out = torch.empty(r, heads, n, v.shape[-1], dtype=q.dtype, device=q.device)
    for start in range(0, n, WIDE_QUERY_BLOCK):
        end = min(n, start + WIDE_QUERY_BLOCK)
        keys = torch.arange(end, device=q.device)
        mask = keys[None, :] <= torch.arange(start, end, device=q.device)[:, None]
        out[:, :, start:end] = F.scaled_dot_product_attention(qh[:, :, start:end], kh[:, :, :end], vh[:, :, :end],
                                                              attn_mask=mask, scale=scale,
                                                              enable_gqa=kh.shape[1] != heads)
    return out.transpose(1, 2).reshape(r * n, heads, v.shape[-1])


class Gemma4Rope:
    """cos and sin [T, 1, width] in the activations' dtype per distinct (type, theta, head_dim, rotary dims) of the
    layers, once per forward (Rope.apply rotates the first `width` dims of a head by them)."""

    def __init__(self, arch, device, dtype):
        self.dtype = dtype
        self.inv = {key: torch.tensor(inverse_frequencies(*key), dtype=torch.float64, device=device).float()
                    for key in sorted({rope_key(arch, layer) for layer in arch.layers})}

    def tables(self, positions) -> dict:
        out = {}
        for key, inv in self.inv.items():
            angles = positions.float()[:, None] * inv[None, :]
            angles = torch.cat([angles, angles], dim=-1)[:, None, :]
            out[key] = torch.cos(angles).to(self.dtype), torch.sin(angles).to(self.dtype)
        return out


class PerLayerInputs:
    """Every layer's per-layer input [T, layers, width] from the tokens and their scaled embeddings x:
    (norm(per_layer_model_projection(x) / sqrt(hidden)) + embed_tokens_per_layer(token) x sqrt(width)) / sqrt(2),
    tokens outside the per-layer vocabulary read row 0 (gemma4.py Gemma4SelfDecoderLayers.get_per_layer_inputs,
    project_per_layer_inputs). The table is vocabulary-parallel, the projection column-parallel with its output
    gathered (one rank simulated alone, its share stands in for the others': the same work and bytes)."""

    def __init__(self, arch, w: dict, rt):
        self.arch, self.w, self.rt = arch, w, rt
        # the table's scale, the projection's before its norm (1.0: none) and the sum's (Gemma 3n's differ)
        self.table_scale, self.projection_scale, self.sum_scale = math.sqrt(arch.per_layer_input), \
            arch.hidden ** -0.5, SQRT_HALF

    def __call__(self, tokens, x):
        a, w, comm = self.arch, self.w, self.rt.comm
        t, layers, width = tokens.shape[0], len(a.layers), a.per_layer_input
        ids = torch.where(tokens < a.per_layer_vocab, tokens, torch.zeros_like(tokens))
        table = vocab_parallel_embedding(ids, w["ple_embed"], a.padded_per_layer_vocab // a.tp, a.tp, comm)
        table = table * self.table_scale
        projected = comm.all_gather_last(self.rt.mm(x, w["ple_model_proj"]))
        if projected.shape[-1] < layers * width:  # one simulated rank of a larger group (LocalComm): its share again
            projected = projected.repeat(1, layers * width // projected.shape[-1])
        if self.projection_scale != 1.0:
            projected = projected * self.projection_scale
        projected = rms_norm(projected.view(t, layers, width), w["ple_proj_norm"], a.norm_eps)
        return (projected + table.view(t, layers, width)) * self.sum_scale


class Gemma4Attention:
    """One Gemma 4 attention layer of its own head shape, Arch.attention(layer) (gemma4.py Gemma4Attention)."""

    def __init__(self, arch, layer, w: dict, rt):
        self.arch, self.layer, self.w, self.rt = arch, layer, w, rt
        shape = arch.attention(layer)
        self.heads, self.kv_heads = shape.heads_rank(arch.tp), shape.kv_heads_rank(arch.tp)
        self.dim, self.scale = shape.head_dim, shape.scale
        self.sizes = [self.heads * self.dim, self.kv_heads * self.dim, self.kv_heads * self.dim]
        self.shared = layer.reads is not None
        self.kernel = self.dim in HEAD_DIMS
        self.key = rope_key(arch, layer)
        # a later KV-sharing layer attends over this layer's K/V: prefill hands them over (the cache may not exist)
        self.hands_over = not self.shared and any(other.reads == layer.cache for other in arch.layers)
        if not self.kernel:
            dims = ", ".join(map(str, HEAD_DIMS))
            rt.paged.label(f"attention, head_dim {self.dim}", WIDE_LABEL.format(dim=self.dim, dims=dims))
            rt.paged.label(f"rope_cache, head_dim {self.dim}", WIDE_ROPE_LABEL)
            rt.labels[f"prefill attention, head_dim {self.dim}"] = WIDE_PREFILL_LABEL.format(block=WIDE_QUERY_BLOCK,
                                                                                            dim=self.dim)
        if self.shared:
            rt.labels["KV-sharing layers"] = SHARED_LABEL

    def project(self, x):
        """This rank's q [T, heads, dim] and, but on a KV-sharing layer, k and v [T, kv_heads, dim], normed."""
        a, w, t = self.arch, self.w, x.shape[0]
        if self.shared:
            q = self.rt.mm(x, w["q"]).view(t, self.heads, self.dim)
            return rms_norm(q, w["q_norm"], a.norm_eps), None, None
        q, k, v = self.rt.mm(x, w["qkv"]).split(self.sizes, dim=-1)
        q = rms_norm(q.view(t, self.heads, self.dim), w["q_norm"], a.norm_eps)
        k = rms_norm(k.view(t, self.kv_heads, self.dim), w["k_norm"], a.norm_eps)
        v = F.rms_norm(v.view(t, self.kv_heads, self.dim), (self.dim,), None, a.norm_eps)
        return q, k, v

    def __call__(self, x, step, cache):
        t = x.shape[0]
        q, k, v = self.project(x)
        cos, sin = step.rope[self.key]
        o = self.decode(q, k, v, cos, sin, step, cache) if step.decode else self.prefill(q, k, v, cos, sin, step,
                                                                                         cache)
        return self.rt.comm.all_reduce(self.rt.mm(o.reshape(t, self.heads * self.dim), self.w["o"]))

    def _rope_cache(self, *args, **kwargs):
        """The fused RoPE + cache-write kernel's result where the head width is the decode kernel's, else None."""
        return self.rt.paged.rope_cache(*args, **kwargs) if self.kernel else None

    def decode(self, q, k, v, cos, sin, step, cache):
        if self.shared:
            q = Rope.apply(q, cos, sin)
        else:
            q, _ = rotate_and_store(self._rope_cache, Rope.apply, q, k, v, cos, sin, step, cache)
        k_cache, v_cache = cache.tensors
        args = (k_cache, v_cache, step.tables[cache.group], step.seq_lens, self.layer.window, self.scale,
                cache.k_scale, cache.v_scale)
        return self.rt.paged.gqa(q, *args) if self.kernel else torch_paged_attention(q, *args)

    def prefill(self, q, k, v, cos, sin, step, cache):
        if self.shared:
            q = Rope.apply(q, cos, sin)
            k, v = step.kv_out[self.layer.reads]
        else:
            q, k = rotate_and_store(self._rope_cache, Rope.apply, q, k, v, cos, sin, step, cache)
            if self.hands_over:
                step.kv_out[self.layer.cache] = (k, v)
        attend = sdpa_prefill if self.kernel else wide_prefill
        return attend(q, k, v, step, self.layer.window, self.scale)


class Gemma4MoE:
    """The MoE block beside the MLP (gemma4.py Gemma4Router, FusedMoE with its custom routing): the router reads the
    layer's residual stream RMS-normed without a weight, times hidden^-0.5 and a per-dimension scale; softmax over
    every expert, the top k renormalised, each times its expert's per_expert_scale; the experts read the residual
    through their own pre-norm, their sum post-normed. The router's product in the activations' dtype, its logits
    float32 (vLLM's GateLinear returns float32 from the 16-bit product)."""

    def __init__(self, arch, w: dict, rt):
        self.arch, self.w, self.rt = arch, w, rt
        self.moe = MoE(arch, w, rt)  # routing (arch.routing: softmax, renormalised) and the experts

    def __call__(self, x, norm):
        a, w, rt = self.arch, self.w, self.rt
        routed = F.rms_norm(x, (a.hidden,), None, a.norm_eps) * (a.hidden ** -0.5) * w["router_norm"]
        logits = rt.mm(routed, w["router"]).float()
        weights, ids = self.moe.route(logits)
        weights = weights * w["router_per_expert"].float()[ids.long()]
        out = rt.comm.all_reduce(self.moe.experts(norm(x, "moe_pre_norm"), weights, ids))
        return norm(out, "moe_post_norm")


class Gemma4Block:
    """One Gemma 4 decoder layer (gemma4.py Gemma4DecoderLayer.forward). Its output is the whole residual stream:
    (x, None), the next layer's input norm adding nothing."""

    def __init__(self, arch, layer, w: dict, rt):
        self.arch, self.index, self.w, self.rt = arch, layer.index, w, rt
        self.cache = layer.cache if layer.reads is None else layer.reads  # the cache it writes, or reads
        self.keys = None  # no indexer key cache (Block.keys: sparse MLA's)
        self.mixer = Gemma4Attention(arch, layer, w, rt)
        self.ffn = MLP(arch, w, rt)
        self.moe = Gemma4MoE(arch, w, rt) if layer.ffn == "moe" else None

    def add_norm(self, x, h, name: str):
        return self.rt.norms.add_norm(x, h, self.w[name], self.arch.norm_eps)

    def norm(self, x, name: str):
        return self.add_norm(x, None, name)[1]

    def __call__(self, x, h, step, cache, keys=None):
        x, n = self.add_norm(x, h, "attn_norm")
        h = self.norm(self.mixer(n, step, cache), "post_attn_norm")
        x, n = self.add_norm(x, h, "ffn_norm")
        h = self.ffn(n)
        if self.moe is not None:
            h = self.norm(h, "mlp_post_norm") + self.moe(x, self.norm)
        x = x + self.norm(h, "post_ffn_norm")
        if step.per_layer is not None:
            gate = activation("gelu_tanh", self.rt.mm(x, self.w["ple_gate"])) * step.per_layer[:, self.index]
            x = x + self.norm(self.rt.mm(gate, self.w["ple_proj"]), "ple_norm")
        return x * self.w["layer_scalar"], None
