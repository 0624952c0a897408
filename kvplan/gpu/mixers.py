"""The attention mixers of a decoder layer: softmax attention (MHA/GQA/MQA, full or windowed) and DeepSeek's
multi-head latent attention. Decode writes the new token into the paged cache and attends through the paged
kernels (kvplan/gpu/paged.py); prefill attends the new tokens with torch SDPA and stores them in the cache.
Each ends in its row-parallel output projection and that projection's all-reduce."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import fp8
from .ops import Rope, rms_norm, stacked_rows, whole_qk_norm
from .step import write_cache


# Interleaved rotary pairs: torch glue around the bundled attention kernel (rope_cache.cu rotates halves only)
INTERLEAVED_LABEL = ("torch RoPE on interleaved pairs (GPT-J style, vLLM's is_neox_style=False) and index_put cache "
                     "writes; NOT a CUDA kernel (the fused RoPE + paged K/V write kernel, rope_cache.cu, rotates "
                     "halves): some 16 launches a layer where vLLM runs one")
WINDOW_BLOCK_MIN = 128  # query block of the windowed prefill: the window itself, at least this many tokens


def sdpa_prefill(q, k, v, step, window, scale, sinks=None):
    """q [R*L, H, D], k/v [R*L, Hk, D*] of R sequences of L tokens -> [R*L, H, Dv], causal (and windowed); `sinks`
    [H]: a logit per query head in each softmax's denominator (with_sink_key)."""
    r, n = step.seqs, step.seq_len

    def heads_first(t):
        return t.view(r, n, t.shape[1], t.shape[2]).transpose(1, 2)

    qh, kh, vh = heads_first(q), heads_first(k), heads_first(v)
    groups = qh.shape[1] // kh.shape[1]
    if groups > 1 and kh.shape[-1] != vh.shape[-1]:
        # keys wider than values (MiMo-V2): no flash kernel, and torch's GQA runs only in flash or the math kernel,
        # which holds every L x L score; K and V copied per query head (a few MB) keep the memory-efficient kernel
        kh, vh = kh.repeat_interleave(groups, dim=1), vh.repeat_interleave(groups, dim=1)
    if window and window < n:
        out = windowed_sdpa(qh, kh, vh, window, scale, sinks)
    elif sinks is not None:
        i = torch.arange(n, device=q.device)
        out = sink_sdpa(qh, kh, vh, i[None, :] <= i[:, None], scale, sinks)
    else:
        out = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, scale=scale,
                                             enable_gqa=kh.shape[1] != qh.shape[1])
    return out.transpose(1, 2).reshape(r * n, q.shape[1], v.shape[-1])


SINK_ALIGN = 8  # the widened q/k rows padded to a multiple of 8 values (what SDPA's fused kernels take)


def sink_sdpa(q, k, v, mask, scale: float, sinks):
    """SDPA of q [R, H, Lq, D] over k/v [R, Hk, Lk, D*] under the boolean `mask` [.., Lq, Lk], each softmax with the
    query head's sink s_h in its denominator: softmax over [scale q.k_j ..., s_h], the sink's value 0 (vLLM's
    sinks: v1/attention/ops/triton_attention_helpers.py:114-139). Done as SDPA over one more key: q gains the value
    s_h / scale in an extra dim, every key a 0 there, and an appended key is 1 there and 0 elsewhere (value 0), so
    its score is exactly s_h for every query, allowed by the mask. The engine's kernels keep the sink in float32;
    here it passes through q's dtype (bf16 on a GPU: s_h / scale to 8 significant bits), a sink of -inf (none) as
    the dtype's most negative finite value (its weight still 0; -inf x 0 would be NaN in the real keys' scores)."""
    heads, kv_heads, width = q.shape[1], k.shape[1], q.shape[-1]
    pad = -(width + 1) % SINK_ALIGN + 1  # the sink dim and the zero padding after it
    limit = torch.finfo(q.dtype)
    column = (sinks.double() / scale).clamp(limit.min, limit.max).to(q.dtype)
    column = column.view(1, heads, 1, 1).expand(*q.shape[:-1], 1)
    q = torch.cat([q, column, q.new_zeros(*q.shape[:-1], pad - 1)], dim=-1)
    sink_key = k.new_zeros(k.shape[0], kv_heads, 1, width + pad)
    sink_key[..., width] = 1
    k = torch.cat([F.pad(k, (0, pad)), sink_key], dim=2)
    v = torch.cat([v, v.new_zeros(v.shape[0], kv_heads, 1, v.shape[-1])], dim=2)
    mask = torch.cat([mask, mask.new_ones(*mask.shape[:-1], 1)], dim=-1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=kv_heads != heads)


def windowed_sdpa(q, k, v, window: int, scale, sinks=None):
    """Causal attention of q [R, H, L, D] over the last `window` keys of k/v [R, Hk, L, D*] (with sink_sdpa's sinks,
    where given). A mask over the whole L x L costs L^2 however small the window, so where it pays, queries go in
    blocks of Bq tokens, each over its own Bq + window keys (the window before it, zero-padded at the start and
    masked off)."""
    r, heads, n, _ = q.shape
    gqa = k.shape[1] != heads

    def attend(qq, kk, vv, mask):
        if sinks is not None:
            return sink_sdpa(qq, kk, vv, mask, scale, sinks)
        return F.scaled_dot_product_attention(qq, kk, vv, attn_mask=mask, scale=scale, enable_gqa=gqa)

    bq = max(window, WINDOW_BLOCK_MIN)
    nb = -(-n // bq)
    span = bq + window
    if nb * bq * span >= n * n:
        i = torch.arange(n, device=q.device)
        return attend(q, k, v, (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - window))

    def key_blocks(t):  # [R, Hk, L, D] -> [R * nb, Hk, span, D]: block j holds tokens j*bq - window .. (j+1)*bq - 1
        padded = F.pad(t, (0, 0, window, nb * bq - n))
        blocks = padded.unfold(2, span, bq)  # [R, Hk, nb, D, span]
        return blocks.permute(0, 2, 1, 4, 3).reshape(r * nb, t.shape[1], span, t.shape[3])

    qb = F.pad(q, (0, 0, 0, nb * bq - n)).view(r, heads, nb, bq, -1).transpose(1, 2).reshape(r * nb, heads, bq, -1)
    a = torch.arange(bq, device=q.device)[:, None]
    b = torch.arange(span, device=q.device)[None, :]
    starts = torch.arange(nb, device=q.device)[:, None, None] * bq - window  # global index of each block's key 0
    mask = (b > a) & (b <= a + window) & (starts + b >= 0)  # [nb, bq, span]
    mask = mask[None, :, None].expand(r, nb, 1, bq, span).reshape(r * nb, 1, bq, span)
    out = attend(qb, key_blocks(k), key_blocks(v), mask)
    return out.view(r, nb, heads, bq, -1).transpose(1, 2).reshape(r, heads, nb * bq, -1)[:, :, :n]


def rotate_and_store(fused, rotate, q, k, v, cos, sin, step, cache):
    """q and k rotated, k and v written to `cache` at the step's slots (decode: always; prefill: where the step
    stores this cache, slots of -1 skipped) -> (q, k): by `fused` (the RoPE + cache-write kernel, returning None
    where it does not apply), else by `rotate` and torch index_put writes. A decode step's k through the kernel
    comes back as None: it is in the cache, and decode reads it from there."""
    stored = step.decode or (cache is not None and cache.group in step.slots)  # decode always writes its token
    k_cache, v_cache = cache.tensors if stored else (None, None)
    slots = step.slots[cache.group] if stored else None
    scales = (cache.k_scale, cache.v_scale) if stored else (1.0, 1.0)
    rotated = fused(q, k, v, cos, sin, k_cache, v_cache, slots, *scales, keys_out=not step.decode)
    if rotated is None:
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        if stored:
            write_cache(k_cache, k, slots, scales[0], masked=not step.decode)
            write_cache(v_cache, v, slots, scales[1], masked=not step.decode)
        return q, k
    return (rotated, None) if step.decode else rotated


class Attention:
    """Softmax attention: fused QKV (+ Qwen3-Next's output gate), optional q/k norms (per head, or MiniMax-M2's over
    the whole projection), RoPE (of rope_dim leading dims), cache, kernel, output projection. The layer's heads are
    Arch.attention(layer): MiMo-V2's keys are wider than its values, its v is scaled first and its sliding layers'
    softmax has a sink a query head (their decode runs torch, labelled, kvplan/gpu/paged.py)."""

    def __init__(self, arch, layer, w: dict, rt):
        self.arch, self.layer, self.w, self.rt = arch, layer, w, rt
        shape = arch.attention(layer)
        self.heads, self.kv_heads = shape.heads_rank(arch.tp), shape.kv_heads_rank(arch.tp)
        self.dim, self.v_dim, self.scale = shape.head_dim, shape.v_head_dim, shape.scale
        q = self.heads * self.dim
        self.sizes = [q] * (2 if arch.attn_output_gate else 1) + [self.kv_heads * self.dim, self.kv_heads * self.v_dim]
        self.sinks = w.get("sinks")
        self.fused = self.v_dim == self.dim  # the RoPE + cache-write kernel writes K and V rows of one width

    def __call__(self, x, step, cache):
        a, w, rt, t = self.arch, self.w, self.rt, x.shape[0]
        parts = rt.mm(x, w["qkv"], w.get("qkv_bias")).split(self.sizes, dim=-1)
        q, k = parts[0], parts[-2]
        if a.whole_qk_norm:  # MiniMax-M2: over each token's whole q and k, across the TP group
            q, k = whole_qk_norm(q, k, w["q_norm"], w["k_norm"], a.norm_eps, rt.comm)
        q = q.view(t, self.heads, self.dim)
        k = k.view(t, self.kv_heads, self.dim)
        v = parts[-1].view(t, self.kv_heads, self.v_dim)
        if a.value_scale != 1.0:  # MiMo-V2 (mimo_v2.py:350-352): before the cache, so the cache holds it scaled
            v = v * a.value_scale
        if a.qk_norm:
            q = rms_norm(q, w["q_norm"], a.norm_eps, a.norm_plus_one)
            k = rms_norm(k, w["k_norm"], a.norm_eps, a.norm_plus_one)
        cos, sin = step.rope[self.layer.rope_theta]
        window = self.layer.window
        q, k = rotate_and_store(self._rope_cache, self._rotate, q, k, v, cos, sin, step, cache)
        if step.decode:
            k_cache, v_cache = cache.tensors
            o = rt.paged.gqa(q, k_cache, v_cache, step.tables[cache.group], step.seq_lens, window, self.scale,
                             cache.k_scale, cache.v_scale, self.sinks)
        else:
            o = sdpa_prefill(q, k, v, step, window, self.scale, self.sinks)
        o = o.reshape(t, self.heads * self.v_dim)
        if a.attn_output_gate:
            o = o * torch.sigmoid(parts[1])
        return rt.comm.all_reduce(rt.mm(o, w["o"]))

    def _rope_cache(self, *args, **kwargs):
        """The fused RoPE + cache-write kernel's result, or None: the caller rotates (if the model rotates) and
        writes in torch. Nemotron-H's attention has no rotary embedding: nothing to fuse; the kernel turns halves,
        so an interleaved (GPT-J) rotary runs in torch too; MiMo-V2's values are narrower than its keys: the kernel
        writes rows of one width."""
        if not self.arch.rope_dim:
            self.rt.paged.label("rope_cache", "no rotary embedding (NoPE); torch index_put cache writes")
            return None
        if self.arch.rope_style == "gptj":
            self.rt.paged.label("rope_cache", INTERLEAVED_LABEL)
            return None
        if not self.fused:
            self.rt.paged.label("rope_cache", (f"torch RoPE and index_put cache writes (keys {self.dim} wide, "
                                                  f"values {self.v_dim}: the fused kernel writes one width)"))
            return None
        return self.rt.paged.rope_cache(*args, **kwargs)

    def _rotate(self, x, cos, sin):
        if not self.arch.rope_dim:
            return x.contiguous()  # the kernels take whole rows
        return (Rope.apply_interleaved if self.arch.rope_style == "gptj" else Rope.apply)(x, cos, sin)


class MLAttention:
    """Multi-head latent attention. The cache holds one latent row per token (normed kv_lora_rank + roped key
    part), replicated on every rank. Decode absorbs the key up-projection into the query and the value
    up-projection into the output (MQA over the latent); prefill expands the latents into per-head K and V."""

    def __init__(self, arch, layer, w: dict, rt):
        self.arch, self.layer, self.w, self.rt = arch, layer, w, rt
        self.heads = arch.heads_rank
        self.nope, self.rope, self.rank, self.v_dim = arch.qk_nope_dim, arch.qk_rope_dim, arch.kv_lora_rank, \
            arch.v_head_dim
        self.first = "q_a" if arch.q_lora_rank else "q"  # the projection of x beside kv_a
        self.joint = stacked_rows(w.get(self.first), w.get("kv_a"))  # both in one matmul where stacked
        # the absorbed decode multiplies by kv_b's halves in the activations' dtype: a block-scaled fp8 kv_b is
        # dequantised once, as vLLM keeps bf16 copies of them (attention/backends/mla/common.py W_UK_T, W_UV)
        kv_b = w["kv_b"]
        self.kv_b = kv_b if kv_b.dtype != fp8.E4M3 else fp8.dequantize_blocks(kv_b, w["kv_b_scale"],
                                                                              w["kv_a_norm"].dtype)

    def project(self, x):
        """(q [T, heads, nope + rope], kv [T, rank + rope], the normed q latent or None without q_lora_rank)."""
        a, w, rt = self.arch, self.w, self.rt
        q, kv = rt.mm.pair(x, w[self.first], w["kv_a"], self.joint)
        q_c = None
        if a.q_lora_rank:
            q_c = rt.norms.add_norm(q, None, w["q_a_norm"], a.norm_eps)[1]
            q = rt.mm(q_c, w["q_b"])
        return q.view(x.shape[0], self.heads, self.nope + self.rope), kv, q_c

    def store(self, q, kv, step, cache) -> tuple:
        """The latent normed, both rotary parts rotated, the latent row stored where the step has slots: decode
        (q_pe,), prefill (q_whole, latent, k_pe)."""
        a, w, rt = self.arch, self.w, self.rt
        cos, sin = step.rope[self.layer.rope_theta]
        stored = cache is not None and cache.group in step.slots
        fused = rt.paged.mla_rope_cache(q, kv, w["kv_a_norm"], a.norm_eps, cos, sin,
                                        cache.tensors[0] if stored else None,
                                        step.slots[cache.group] if stored else None, prefill=not step.decode)
        if fused is not None:
            return (fused,) if step.decode else fused
        latent = rms_norm(kv[:, :self.rank], w["kv_a_norm"], a.norm_eps)
        q_pe = Rope.apply(q[..., self.nope:], cos, sin)
        k_pe = Rope.apply(kv[:, None, self.rank:], cos, sin)[:, 0]
        if stored:
            write_cache(cache.tensors[0], torch.cat([latent, k_pe], dim=-1), step.slots[cache.group],
                        masked=not step.decode)
        return (q_pe,) if step.decode else (torch.cat([q[..., :self.nope], q_pe], dim=-1), latent, k_pe)

    def absorb(self, q):
        """The query's nope part times kv_b's key half: [T, heads, kv_lora_rank]."""
        kv_b = self.kv_b.view(self.heads, self.nope + self.v_dim, self.rank)
        return torch.bmm(q[..., :self.nope].transpose(0, 1), kv_b[:, :self.nope, :]).transpose(0, 1)

    def unabsorb(self, o_latent):
        """[T, heads, kv_lora_rank] attention output times kv_b's value half: [T, heads, v_head_dim]."""
        kv_b = self.kv_b.view(self.heads, self.nope + self.v_dim, self.rank)
        return torch.bmm(o_latent.transpose(0, 1), kv_b[:, self.nope:, :].transpose(1, 2)).transpose(0, 1)

    def expand(self, latent, k_pe):
        """Prefill's per-head keys [T, heads, nope + rope] and values [T, heads, v_head_dim] of the latents."""
        t, h = latent.shape[0], self.heads
        k_nope, v = self.rt.mm(latent, self.w["kv_b"]).view(t, h, self.nope + self.v_dim).split([self.nope,
                                                                                                  self.v_dim], -1)
        return torch.cat([k_nope, k_pe[:, None, :].expand(t, h, self.rope)], dim=-1), v

    def out(self, o):
        t = o.shape[0]
        return self.rt.comm.all_reduce(self.rt.mm(o.reshape(t, self.heads * self.v_dim), self.w["o"]))

    def __call__(self, x, step, cache):
        a, rt = self.arch, self.rt
        q, kv, _ = self.project(x)
        if step.decode:
            (q_pe,) = self.store(q, kv, step, cache)
            o_latent = rt.paged.mla(self.absorb(q).contiguous(), q_pe.contiguous(), cache.tensors[0],
                                    step.tables[cache.group], step.seq_lens, a.attn_scale)
            return self.out(self.unabsorb(o_latent))
        q_whole, latent, k_pe = self.store(q, kv, step, cache)
        k, v = self.expand(latent, k_pe)
        return self.out(sdpa_prefill(q_whole, k, v, step, None, a.attn_scale))
