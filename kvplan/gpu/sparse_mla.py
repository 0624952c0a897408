"""DeepSeek sparse attention (DSA: DeepSeek-V3.2, GLM-5.x) as vLLM 0.32.0 runs it on CUDA, in torch (files under
vllm/):

- the lightning indexer (models/deepseek_v32/attention.py:50-127 DeepseekV32Indexer): a query of index_n_heads
  heads from the normed q latent (wq_b, :428), one key a token from the hidden state (wk, :310, then a float32
  LayerNorm, :87) and a weight a head (weights_proj); RoPE on the first qk_rope_head_dim values of each, rotate-half
  unless indexer_rope_interleave (:283); key and query heads quantised to e4m3 with one power-of-two scale each
  (models/deepseek_v32/common/kernels.py:62-73 _fp8_ue8m0_quantize), the query's scale, 1/sqrt(index_head_dim) and
  1/sqrt(index_n_heads) folded into its head weights (kernels.py:930-946);
- the key cache (model_executor/models/deepseek_v2.py:638 DeepseekV32IndexerCache: uint8, index_head_dim + 4
  bytes a token): per block, block_size x index_head_dim e4m3 values, then block_size float32 scales
  (v1/attention/ops/rocm_aiter_mla_sparse.py:440-486 fp8_paged_mqa_logits_torch reads it so);
- a query's score of key j: sum over heads of weight x relu(q_h . k_j) x the key's scale, keys up to the query's
  own position (rocm_aiter_mla_sparse.py:825-872 fp8_mqa_logits_torch); the index_topk best are the latents it
  attends, all of them where there are no more (a short row's slots -1: model_executor/layers/
  sparse_attn_indexer.py:566);
- MLA over the selected latents only: decode absorbed (MQA over the gathered latent rows), prefill per head under a
  mask, or plain causal attention where a prompt is no longer than index_topk (vLLM's dense MHA prefill then:
  model_executor/layers/attention/sparse_mla_attention.py:130-138 _use_dense_mha_prefill).

A layer that reuses the top-k of the last layer that ran an indexer (GLM-5.2's shared indexers) runs none.
None of this is a CUDA kernel: the labels say so, and verify does not judge the decode step it times."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .mixers import MLAttention, sdpa_prefill
from .ops import Rope
from .paged import _chunks

E4M3 = torch.float8_e4m3fn
FP8_MAX = 448.0  # the largest e4m3 value
SCALE_FLOOR = 1e-4  # the smallest amax a scale is computed from (kernels.py _fp8_ue8m0_quantize)
SCALE_BYTES = 4  # one float32 scale a key
NORM_EPS = 1e-6  # the indexer's k_norm (LayerNorm(head_dim, eps=1e-6, dtype=float32))
LOGITS_LIMIT = 256 * 2**20  # bytes of prefill scores [queries, heads, keys] computed at once
FILL_CHUNK = 256 * 2**20  # bytes of bf16 draws at once when filling a key cache
QUERY_BLOCK = 1024  # prefill queries attended at once under a selection mask
LABEL = ("torch: lightning-indexer scores and top-{topk} over the gathered fp8 keys, then MLA over the gathered "
         "selected latents; NOT a CUDA kernel")


def key_bytes(arch) -> int:
    """Bytes one token's indexer key takes: index_head_dim e4m3 values and one float32 scale."""
    return arch.index_dim + SCALE_BYTES


def quantize_ue8m0(x):
    """x [..., D] -> (e4m3 values [..., D], float32 scales [...]): each row over 2^ceil(log2(max(amax, 1e-4) / 448)),
    as vLLM's indexer kernels quantise keys and query heads (models/deepseek_v32/common/kernels.py
    _fp8_ue8m0_quantize)."""
    x = x.float()
    amax = x.abs().amax(dim=-1).clamp(min=SCALE_FLOOR)
    scale = torch.exp2(torch.ceil(torch.log2(amax / FP8_MAX)))
    return (x / scale[..., None]).to(E4M3), scale


def _page_parts(pages):
    """A [blocks, block_size, D + 4] uint8 key cache as (values [blocks, block_size, D] uint8, scales [blocks,
    block_size] float32), views of the same memory: a block's D x block_size values, then its scales."""
    blocks, bs, width = pages.shape
    dim = width - SCALE_BYTES
    flat = pages.view(blocks, bs * width)
    return flat[:, :bs * dim].view(blocks, bs, dim), flat[:, bs * dim:].view(torch.float32)


def fill_keys(pages, scale: float = 2.0 ** -6) -> None:
    """Fresh random keys in a key cache, as the indexer would store them: e4m3 values of a unit normal, one scale a
    key (a power of two), drawn through bf16 in chunks of blocks (random bytes would hold NaN patterns)."""
    values, scales = _page_parts(pages)
    scales.fill_(scale)
    step = max(1, FILL_CHUNK // (values.shape[1] * values.shape[2] * 2))
    for first in range(0, pages.shape[0], step):
        part = values[first:first + step]
        part.copy_(torch.randn(part.shape, device=pages.device, dtype=torch.bfloat16).to(E4M3).view(torch.uint8))


def write_keys(pages, values, scales, slots, masked: bool = False) -> None:
    """Store e4m3 keys [T, D] and their scales [T] at flat slots of the key cache (`masked`: skip slots of -1)."""
    if masked:
        keep = slots >= 0
        slots, values, scales = slots[keep], values[keep], scales[keep]
    bs = pages.shape[1]
    stored, stored_scales = _page_parts(pages)
    block, offset = slots // bs, slots % bs
    stored[block, offset] = values.view(torch.uint8)
    stored_scales[block, offset] = scales


def read_keys(pages, table, dtype):
    """The keys of sequences whose pages `table` [B, W] lists: (values [B, W x block_size, D] in `dtype`, exact
    for e4m3, and scales [B, W x block_size] float32), token n of sequence b at n (a gathered copy)."""
    batch, width = table.shape
    bs = pages.shape[1]
    dim = pages.shape[2] - SCALE_BYTES
    gathered = pages.view(pages.shape[0], -1)[table.long()]  # [B, W, bs x (D + 4)]
    values = gathered[..., :bs * dim].reshape(batch, width * bs, dim).view(E4M3).to(dtype)
    scales = gathered[..., bs * dim:].contiguous().view(torch.float32).reshape(batch, width * bs)
    return values, scales


def index_scores(q, weights, keys, key_scales):
    """q [B, Hi, D] and keys [B, N, D] (e4m3 values as floats), weights [B, Hi] (the query scales folded in), key_scales
    [B, N] -> [B, N] float32: sum over heads of weight x relu(q_h . k_n) x the key's scale (vLLM's fp8 MQA logits,
    v1/attention/ops/rocm_aiter_mla_sparse.py fp8_paged_mqa_logits_torch)."""
    dots = torch.matmul(q.to(keys.dtype), keys.transpose(1, 2)).float()  # [B, Hi, N]
    return (dots.relu() * weights[..., None]).sum(dim=1) * key_scales


def select(scores, valid, topk: int):
    """Positions [rows, k] of the `topk` best scores among the `valid` ones (k = min(topk, keys)); -1 where a row
    has fewer valid keys than k. Scores of invalid keys may be NaN (unused slots): they are never picked first."""
    scores = torch.where(valid, scores, float("-inf"))
    top = scores.topk(min(topk, scores.shape[-1]), dim=-1).indices
    return torch.where(valid.gather(-1, top), top, -1)


def attend_selected(q, latents, table, indices, rank: int, scale: float):
    """Absorbed MLA decode over the selected latents only: q [B, H, rank + rope], the latent cache [blocks,
    block_size, rank + rope], `table` [B, W], `indices` [B, k] token positions (-1: none) -> [B, H, rank]. Scores in
    the cache's dtype (float32 accumulation), softmax in float32; the gathered rows of -1 are masked (they may be
    NaN, and NaN x 0 = NaN)."""
    bs = latents.shape[1]
    pos = indices.clamp(min=0).long()
    slots = table.long().gather(1, pos // bs) * bs + pos % bs
    rows = latents.view(-1, latents.shape[-1])[slots]  # [B, k, rank + rope]
    keep = indices >= 0
    scores = torch.matmul(q.to(rows.dtype), rows.transpose(1, 2)).float() * scale  # [B, H, k]
    scores = scores.masked_fill(~keep[:, None, :], float("-inf"))
    values = rows[..., :rank].masked_fill(~keep[..., None], 0)
    probs = torch.softmax(scores, dim=-1).to(values.dtype)
    return torch.matmul(probs, values).to(q.dtype)


def prefill_mask(q, weights, keys, key_scales, seqs: int, seq_len: int, topk: int):
    """Each prefill query's selection as a mask [R, 1, L, L]: query i of a sequence keeps the topk best-scored of
    its keys 0..i (all of them while there are no more). q [R L, Hi, D], weights [R L, Hi], keys [R L, D], scales
    [R L]; queries in chunks whose scores stay under LOGITS_LIMIT."""
    # one spare column that the -1 of a row short of keys lands in, dropped at the end
    mask = torch.zeros(seqs, 1, seq_len, seq_len + 1, dtype=torch.bool, device=q.device)
    rows = max(1, LOGITS_LIMIT // (q.shape[1] * seq_len * 4))
    j = torch.arange(seq_len, device=q.device)[None, :]
    for r in range(seqs):
        own = slice(r * seq_len, (r + 1) * seq_len)
        k, ks = keys[own][None], key_scales[own][None]
        for start in range(0, seq_len, rows):
            stop = min(seq_len, start + rows)
            rows_of = slice(r * seq_len + start, r * seq_len + stop)
            scores = index_scores(q[rows_of], weights[rows_of], k, ks)  # the queries share the sequence's keys
            i = torch.arange(start, stop, device=q.device)[:, None]
            picked = select(scores, j <= i, topk)
            mask[r, 0, start:stop].scatter_(1, torch.where(picked >= 0, picked, seq_len), True)
    return mask[..., :seq_len].contiguous()


def masked_prefill(q, k, v, step, mask, scale: float):
    """q/k [R L, H, D], v [R L, H, Dv] attended under `mask` [R, 1, L, L] (each query's selected keys), QUERY_BLOCK
    queries at a time (should SDPA fall back to its math form, its scores stay [R, H, QUERY_BLOCK, L])."""
    r, n = step.seqs, step.seq_len

    def heads_first(t):
        return t.view(r, n, t.shape[1], t.shape[2]).transpose(1, 2)

    qh, kh, vh = heads_first(q), heads_first(k), heads_first(v)
    out = torch.cat([F.scaled_dot_product_attention(qh[:, :, i:i + QUERY_BLOCK], kh, vh,
                                                    attn_mask=mask[:, :, i:i + QUERY_BLOCK], scale=scale)
                     for i in range(0, n, QUERY_BLOCK)], dim=2)
    return out.transpose(1, 2).reshape(r * n, q.shape[1], v.shape[-1])


class SparseMLAttention(MLAttention):
    """MLA whose queries attend the index_topk latents a lightning indexer picks. A layer with `keys` (its
    indexer's key cache) runs the indexer and leaves its selection on the step for the layers that reuse it."""

    def __init__(self, arch, layer, w: dict, rt):
        super().__init__(arch, layer, w, rt)
        self.topk, self.index_heads, self.index_dim = arch.index_topk, arch.index_heads, arch.index_dim
        self.runs_indexer = layer.keys is not None

    def indexer(self, x, q_c, step, keys):
        """The indexer's e4m3 query heads [T, Hi, D] (as float32: exact), their weights [T, Hi] float32 with the
        query scales, 1/sqrt(D) and 1/sqrt(Hi) folded in, and the e4m3 keys [T, D] with their scales [T], stored in
        the key cache where the step has slots. Scores are float32 products of e4m3 values, as vLLM's fp8 MQA
        logits accumulate them."""
        w, rt, t = self.w, self.rt, x.shape[0]
        cos, sin = step.rope[self.layer.rope_theta]
        kw = rt.mm(x, w["idx_wk_w"])
        k = F.layer_norm(kw[:, :self.index_dim].float(), (self.index_dim,), w["idx_k_norm"].float(),
                         w["idx_k_norm_bias"].float(), NORM_EPS)  # float32 weights (vLLM's): a no-op cast
        k_values, k_scales = quantize_ue8m0(Rope.apply(k[:, None, :], cos, sin)[:, 0])
        if keys is not None and keys.group in step.slots:
            write_keys(keys.tensors[0], k_values, k_scales, step.slots[keys.group], masked=not step.decode)
        q = Rope.apply(rt.mm(q_c, w["idx_wq_b"]).view(t, self.index_heads, self.index_dim), cos, sin)
        q_values, q_scales = quantize_ue8m0(q)
        weights = kw[:, self.index_dim:].float() * q_scales * (self.index_dim ** -0.5 * self.index_heads ** -0.5)
        return q_values.float(), weights, k_values, k_scales

    def __call__(self, x, step, cache, keys=None):
        a, rt = self.arch, self.rt
        q, kv, q_c = self.project(x)
        rt.paged.labels["sparse mla"] = LABEL.format(topk=self.topk)
        if step.decode:
            (q_pe,) = self.store(q, kv, step, cache)
            if self.runs_indexer:
                q_idx, weights, _, _ = self.indexer(x, q_c, step, keys)
                step.topk = self._decode_selection(q_idx, weights, keys, step)
            q_latent = torch.cat([self.absorb(q), q_pe], dim=-1)
            o = self._decode_attention(q_latent, cache, step)
            return self.out(self.unabsorb(o))
        q_whole, latent, k_pe = self.store(q, kv, step, cache)
        if self.runs_indexer:
            q_idx, weights, k_values, k_scales = self.indexer(x, q_c, step, keys)
            step.topk = None
            if step.seq_len > self.topk:  # shorter prompts: every query attends all its tokens (vLLM's dense MHA)
                step.topk = prefill_mask(q_idx, weights, k_values.float(), k_scales, step.seqs, step.seq_len,
                                         self.topk)
        k, v = self.expand(latent, k_pe)
        if step.topk is None:
            return self.out(sdpa_prefill(q_whole, k, v, step, None, a.attn_scale))
        return self.out(masked_prefill(q_whole, k, v, step, step.topk, a.attn_scale))

    def _decode_selection(self, q, weights, keys, step):
        """[B, k] positions each sequence's new token attends (its own among the candidates)."""
        pages, table = keys.tensors[0], step.tables[keys.group]
        batch, width = table.shape
        n = width * pages.shape[1]
        picked = []
        # a token's gathered bytes, their e4m3 copy and float32 values, its scores
        for part in _chunks(batch, n * (self.index_dim * 6 + self.index_heads * 4 + 8)):
            values, scales = read_keys(pages, table[part], torch.float32)
            scores = index_scores(q[part], weights[part], values, scales)
            valid = torch.arange(n, device=q.device)[None, :] < step.seq_lens[part, None]
            picked.append(select(scores, valid, self.topk))
        return picked[0] if len(picked) == 1 else torch.cat(picked)

    def _decode_attention(self, q_latent, cache, step):
        latents, table, indices = cache.tensors[0], step.tables[cache.group], step.topk
        outs = [attend_selected(q_latent[part], latents, table[part], indices[part], self.rank, self.arch.attn_scale)
                for part in _chunks(q_latent.shape[0], indices.shape[1] * latents.shape[-1] * 8)]
        return outs[0] if len(outs) == 1 else torch.cat(outs)
