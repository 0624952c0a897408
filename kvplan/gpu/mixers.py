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


WINDOW_BLOCK_MIN = 128  # query block of the windowed prefill: the window itself, at least this many tokens


def sdpa_prefill(q, k, v, step, window, scale):
    """q [R*L, H, D], k/v [R*L, Hk, D*] of R sequences of L tokens -> [R*L, H, Dv], causal (and windowed)."""
    r, n = step.seqs, step.seq_len

    def heads_first(t):
        return t.view(r, n, t.shape[1], t.shape[2]).transpose(1, 2)

    qh, kh, vh = heads_first(q), heads_first(k), heads_first(v)
    if window and window < n:
        out = windowed_sdpa(qh, kh, vh, window, scale)
    else:
        out = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, scale=scale,
                                             enable_gqa=kh.shape[1] != qh.shape[1])
    return out.transpose(1, 2).reshape(r * n, q.shape[1], v.shape[-1])


def windowed_sdpa(q, k, v, window: int, scale):
    """Causal attention of q [R, H, L, D] over the last `window` keys of k/v [R, Hk, L, D*]. A mask over the
    whole L x L costs L^2 however small the window, so where it pays, queries go in blocks of Bq tokens, each
    over its own Bq + window keys (the window before it, zero-padded at the start and masked off)."""
    r, heads, n, _ = q.shape
    gqa = k.shape[1] != heads
    bq = max(window, WINDOW_BLOCK_MIN)
    nb = -(-n // bq)
    span = bq + window
    if nb * bq * span >= n * n:
        i = torch.arange(n, device=q.device)
        mask = (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - window)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=gqa)

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
    out = F.scaled_dot_product_attention(qb, key_blocks(k), key_blocks(v), attn_mask=mask, scale=scale,
                                         enable_gqa=gqa)
    return out.view(r, nb, heads, bq, -1).transpose(1, 2).reshape(r, heads, nb * bq, -1)[:, :, :n]


class Attention:
    """Softmax attention: fused QKV (+ Qwen3-Next's output gate), optional q/k norms (per head, or MiniMax-M2's over
    the whole projection), RoPE (of rope_dim leading dims), cache, kernel, output projection."""

    def __init__(self, arch, layer, w: dict, rt):
        self.arch, self.layer, self.w, self.rt = arch, layer, w, rt
        self.heads, self.kv_heads, self.dim = arch.heads_rank, arch.kv_heads_rank, arch.head_dim
        q = self.heads * self.dim
        self.sizes = [q] * (2 if arch.attn_output_gate else 1) + [self.kv_heads * self.dim] * 2

    def __call__(self, x, step, cache):
        a, w, rt, t = self.arch, self.w, self.rt, x.shape[0]
        parts = rt.mm(x, w["qkv"], w.get("qkv_bias")).split(self.sizes, dim=-1)
        q, k = parts[0], parts[-2]
        if a.whole_qk_norm:  # MiniMax-M2: over each token's whole q and k, across the TP group
            q, k = whole_qk_norm(q, k, w["q_norm"], w["k_norm"], a.norm_eps, rt.comm)
        q = q.view(t, self.heads, self.dim)
        k = k.view(t, self.kv_heads, self.dim)
        v = parts[-1].view(t, self.kv_heads, self.dim)
        if a.qk_norm:
            q = rms_norm(q, w["q_norm"], a.norm_eps, a.norm_plus_one)
            k = rms_norm(k, w["k_norm"], a.norm_eps, a.norm_plus_one)
        cos, sin = step.rope[self.layer.rope_theta]
        window = self.layer.window
        if step.decode:
            k_cache, v_cache = cache.tensors
            slots = step.slots[cache.group]
            rotated = self._rope_cache(q, k, v, cos, sin, k_cache, v_cache, slots, cache.k_scale, cache.v_scale)
            if rotated is None:
                q, k = self._rotate(q, cos, sin), self._rotate(k, cos, sin)
                write_cache(k_cache, k, slots, cache.k_scale)
                write_cache(v_cache, v, slots, cache.v_scale)
            else:
                q = rotated
            o = rt.paged.gqa(q, k_cache, v_cache, step.tables[cache.group], step.seq_lens, window, a.attn_scale,
                             cache.k_scale, cache.v_scale)
        else:
            stored = cache is not None and cache.group in step.slots
            k_cache, v_cache = cache.tensors if stored else (None, None)
            slots = step.slots[cache.group] if stored else None
            scales = (cache.k_scale, cache.v_scale) if stored else (1.0, 1.0)
            rotated = self._rope_cache(q, k, v, cos, sin, k_cache, v_cache, slots, *scales, keys_out=True)
            if rotated is None:
                q, k = self._rotate(q, cos, sin), self._rotate(k, cos, sin)
                if stored:
                    write_cache(k_cache, k, slots, cache.k_scale, masked=True)
                    write_cache(v_cache, v, slots, cache.v_scale, masked=True)
            else:
                q, k = rotated
            o = sdpa_prefill(q, k, v, step, window, a.attn_scale)
        o = o.reshape(t, self.heads * self.dim)
        if a.attn_output_gate:
            o = o * torch.sigmoid(parts[1])
        return rt.comm.all_reduce(rt.mm(o, w["o"]))

    def _rope_cache(self, *args, **kwargs):
        """The fused RoPE + cache-write kernel's result, or None: the caller rotates (if the model rotates) and
        writes in torch. Nemotron-H's attention has no rotary embedding: nothing to fuse."""
        if self.arch.rope_dim:
            return self.rt.paged.rope_cache(*args, **kwargs)
        self.rt.paged.labels["rope_cache"] = "no rotary embedding (NoPE); torch index_put cache writes"
        return None

    def _rotate(self, x, cos, sin):
        return Rope.apply(x, cos, sin) if self.arch.rope_dim else x.contiguous()  # the kernels take whole rows


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
