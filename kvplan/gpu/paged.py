"""Paged decode attention as the forward pass calls it: the bundled CUDA kernels on a GPU (kvplan.kernels:
the plan/run API where it exists, else the one-call form), and plain torch over gathered pages on the CPU
(and for MLA until the bundled MLA kernel lands). Every path is graph-safe: no host syncs."""

from __future__ import annotations

import torch

from ..errors import KvplanError
from ..verify.judge import STAND_IN


def _masked_softmax_attend(q, keys, values, lens, scale: float, window=None, sinks=None, positions=None):
    """q [B, H, D]; keys [B, N, Hk, D] and values [B, N, Hk, Dv] gathered pages (token n of sequence b at n, or at
    positions[b, n]); attends tokens [max(0, len - window), len). Products in the cache's dtype (fp32
    accumulation), softmax in float32; `sinks` [H]: a logit per query head in the softmax's denominator with no
    value (gpt-oss, MiMo-V2: vLLM v1/attention/ops/triton_attention_helpers.py:114-139 starts each row's running
    max at it with a sum of 1). `values` is a gathered copy: slots outside the attended range are zeroed in place
    (they may hold NaN, and NaN x 0 = NaN)."""
    batch, heads, _ = q.shape
    kv_heads = keys.shape[2]
    qg = q.to(keys.dtype).view(batch, kv_heads, heads // kv_heads, -1)
    scores = torch.matmul(qg, keys.permute(0, 2, 3, 1)).float() * scale  # [B, Hk, G, N]
    n = torch.arange(keys.shape[1], device=q.device)[None, :] if positions is None else positions
    keep = n < lens[:, None]
    if window:
        keep &= n >= (lens[:, None] - window)
    scores = scores.masked_fill(~keep[:, None, None, :], float("-inf"))
    values.masked_fill_(~keep[:, :, None, None], 0)
    if sinks is None:
        probs = torch.softmax(scores, dim=-1)
    else:
        sink = sinks.float().view(1, kv_heads, heads // kv_heads, 1).expand(batch, -1, -1, 1)
        probs = torch.softmax(torch.cat([scores, sink], dim=-1), dim=-1)[..., :-1]
    out = torch.matmul(probs.to(values.dtype), values.permute(0, 2, 1, 3))  # [B, Hk, G, Dv]
    return out.reshape(batch, heads, -1).to(q.dtype)


GATHER_LIMIT = 256 * 2**20  # bytes of gathered pages per chunk of sequences (bounds the transient copy)


def _chunks(batch: int, row_bytes: int):
    """Slices of the batch whose gathered pages stay under GATHER_LIMIT (static: a graph replays them)."""
    step = max(1, GATHER_LIMIT // max(1, row_bytes))
    return [slice(i, min(batch, i + step)) for i in range(0, batch, step)]


def window_columns(table, lens, window: int, block_size: int):
    """(block ids [B, S], token positions [B, S * block_size]) of the S = ceil((window - 1) / bs) + 1 block-table
    columns a window of `window` tokens can touch, from the one holding token len - window on (computed on the
    device: graph-safe). Columns past the table are clamped to its last; their positions lie past len, so the
    attention masks them."""
    span = min(table.shape[1], -(-(window - 1) // block_size) + 1)
    first = (lens.long() - window).clamp(min=0) // block_size
    cols = first[:, None] + torch.arange(span, device=table.device)[None, :]
    ids = table.gather(1, cols.clamp(max=table.shape[1] - 1))
    positions = (cols[:, :, None] * block_size + torch.arange(block_size, device=table.device)).flatten(1)
    return ids, positions


def torch_paged_attention(q, k_cache, v_cache, table, lens, window, scale, k_scale=1.0, v_scale=1.0, sinks=None):
    """GQA/MQA decode over a paged cache in torch: gathers each sequence's pages (a copy; a window's blocks only),
    then attends. K and V may differ in width (MiMo-V2); `sinks` as _masked_softmax_attend."""
    block_size = k_cache.shape[1]
    positions = None
    if window and window < table.shape[1] * block_size:
        table, positions = window_columns(table, lens, window, block_size)
    batch, width = table.shape
    outs = []
    for part in _chunks(batch, width * k_cache[0].numel() * 8):
        ids = table[part].long()
        k = k_cache[ids].flatten(1, 2)
        v = v_cache[ids].flatten(1, 2)
        if k_cache.element_size() == 1:
            k, v = k.float() * k_scale, v.float() * v_scale
        outs.append(_masked_softmax_attend(q[part], k, v, lens[part], scale, window, sinks,
                                           None if positions is None else positions[part]))
    return outs[0] if len(outs) == 1 else torch.cat(outs)


def torch_paged_mla(q_latent, q_rope, cache, table, lens, scale):
    """Absorbed MLA decode in torch: every head scores the shared latent row (kv_lora_rank + rope wide) and sums
    its first kv_lora_rank columns. Gathers the pages first (the latent is read, written and read again)."""
    batch, width = table.shape
    q = torch.cat([q_latent, q_rope], dim=-1)
    outs = []
    for part in _chunks(batch, width * cache[0].numel() * 6):
        latent = cache[table[part].long()].flatten(1, 2)[:, :, None, :]
        outs.append(_masked_softmax_attend(q[part], latent, latent[..., :q_latent.shape[-1]], lens[part], scale))
    return outs[0] if len(outs) == 1 else torch.cat(outs)


def as_kernel_pages(k_cache, v_cache, table, supported: tuple):
    """The same cache seen in pages the kernel takes. vLLM raises the attention block size of Mamba/linear
    hybrids until a page matches the state's (544 tokens for Qwen3-Next); such a block is n contiguous runs of a
    supported size s, so the pool is viewed as n times as many blocks of s tokens and block id p becomes
    p*n .. p*n+n-1 (two small kernels, graph-safe)."""
    bs = k_cache.shape[1]
    if bs in supported:
        return k_cache, v_cache, table
    s = next((s for s in sorted(supported, reverse=True) if bs % s == 0), None)
    if s is None:
        raise KvplanError(f"block size {bs} is not a multiple of any block size the bundled kernel takes "
                          f"({', '.join(map(str, supported))}).")
    n = bs // s
    blocks = k_cache.shape[0] * n
    sub = torch.arange(n, dtype=table.dtype, device=table.device)
    wide = (table[:, :, None] * n + sub).flatten(1)
    return (k_cache.view(blocks, s, *k_cache.shape[2:]), v_cache.view(blocks, s, *v_cache.shape[2:]), wide)


# MiMo-V2 on a GPU: the bundled decode kernel takes equal K and V widths of 64, 128 or 256 and no sinks
STAND_IN_LABEL = ("torch over gathered pages (keys {k} wide, values {v}; attention sinks where the layer has them); "
                  "NOT a CUDA kernel: the bundled decode kernel takes keys and values of one width and no sinks, so "
                  "this decode step times torch, not an engine's attention")


class PagedAttention:
    """The paged decode attention of one device. `labels` says, per layer kind, which code ran."""

    def __init__(self, device):
        self.cuda = torch.device(device).type == "cuda"
        self.labels: dict = {}
        self._plans: dict = {}
        self._kernels = None
        if self.cuda:
            from .. import kernels

            reason = kernels.kernel_unavailable_reason()
            if reason is not None:
                # a reason that names what to install (an NVRTC too old for this GPU) needs no extra remedy
                remedy = "" if "install" in reason else ("; pip install 'kvplan[gpu]' (cuda-core and the CUDA "
                                                          "runtime headers)")
                raise KvplanError(f"kvplan verify times decode with its bundled CUDA kernel, which cannot run here "
                                  f"({reason.rstrip('.')}){remedy}.")
            self._kernels = kernels

    def label(self, part: str, text: str) -> None:
        """Says which code ran `part`. A part that ran a torch stand-in in some layer keeps saying so (verify's decode
        verdict reads it: kvplan/verify/judge.py STAND_IN) when a later layer of another shape runs the kernel."""
        if STAND_IN in self.labels.get(part, "") and STAND_IN not in text:
            return
        self.labels[part] = text

    def gqa(self, q, k_cache, v_cache, table, lens, window, scale, k_scale=1.0, v_scale=1.0, sinks=None):
        if not self.cuda:
            self.label("attention", "torch over gathered pages (CPU)")
            return torch_paged_attention(q, k_cache, v_cache, table, lens, window, scale, k_scale, v_scale, sinks)
        if sinks is not None or k_cache.shape[-1] != v_cache.shape[-1]:
            self.label("attention", STAND_IN_LABEL.format(k=k_cache.shape[-1], v=v_cache.shape[-1]))
            return torch_paged_attention(q, k_cache, v_cache, table, lens, window, scale, k_scale, v_scale, sinks)
        if q.shape[-1] not in (64, 128, 256):
            raise KvplanError(f"head_dim {q.shape[-1]} is not one the bundled kernel covers (64, 128, 256).")
        from ..kernels.limits import BLOCK_SIZES

        k_cache, v_cache, table = as_kernel_pages(k_cache, v_cache, table, BLOCK_SIZES)
        make = getattr(self._kernels, "paged_decode_plan", None)
        if make is None:
            self.label("attention", "bundled CUDA kernel (NVRTC), one-call form")
            return self._kernels.paged_decode_attention(q, k_cache, v_cache, table, lens, scale, k_scale, v_scale,
                                                        window, check_block_ids=False)
        key = (q.shape[1], k_cache.shape[2], q.shape[2], k_cache.shape[1], k_cache.dtype, q.dtype, window,
               table.shape)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = make(q.shape[1], k_cache.shape[2], q.shape[2], k_cache.shape[1], k_cache.dtype,
                                           q.dtype, max_batch=table.shape[0], max_blocks_per_seq=table.shape[1],
                                           device=q.device.index, sliding_window=window)
        self.label("attention", f"bundled CUDA kernel (NVRTC), plan/run: {plan.path}")
        return plan.run(q, k_cache, v_cache, table, lens, scale=scale, k_scale=k_scale, v_scale=v_scale)

    def rope_cache(self, q, k, v, cos, sin, k_cache, v_cache, slots, k_scale=1.0, v_scale=1.0, keys_out=False):
        """q rotated (contiguous), k rotated and v stored at `slots` of the paged caches (None: no cache; a slot of
        -1: not stored) in one launch of kvplan/kernels/rope_cache.cu, with keys_out (prefill) (q, k) rotated;
        None where that kernel does not run (CPU, a cache dtype it does not take), and the caller rotates and
        stores in torch."""
        if not self.cuda:
            return None
        cache_dtype = q.dtype if k_cache is None else k_cache.dtype
        fp8 = cache_dtype == torch.float8_e4m3fn
        key = ("rope", q.shape[1], k.shape[1], q.shape[2], cos.shape[-1], q.dtype, cache_dtype)
        plan = self._plans.get(key)
        if plan is None:
            from ..kernels._checks import dtype_name
            from ..kernels.rope_cache import RopeCachePlan

            try:
                if not fp8 and cache_dtype != q.dtype:
                    raise ValueError(f"a {cache_dtype} cache for {q.dtype} activations")
                plan = RopeCachePlan(q.shape[1], k.shape[1], q.shape[2], cos.shape[-1], dtype_name(q.dtype),
                                     fp8, q.device.index)
            except ValueError as exc:
                plan = str(exc)
            self._plans[key] = plan
        if isinstance(plan, str):
            self.label("rope_cache", f"torch RoPE and index_put cache writes; NOT a CUDA kernel (the fused kernel "
                                     f"refused: {plan})")
            return None
        self.label("rope_cache", "bundled RoPE + paged K/V write kernel (rope_cache.cu), one launch per layer")
        return plan.run(q, k, v, cos, sin, k_cache, v_cache, slots, k_scale, v_scale, keys_out)

    def mla_rope_cache(self, q, kv, norm_w, eps, cos, sin, cache, slots, prefill=False):
        """MLA's glue in one launch of rope_cache.cu's MLA entry: the latent part of `kv` RMS-normed and stored
        with its rotated key part at `slots` (cache None: not stored); returns the query's rotary parts rotated
        (contiguous [T, heads, rot]), or with prefill (the whole query, the normed latent, the rotated key part).
        None where that kernel does not run (CPU, a dtype it does not take): the caller runs torch."""
        if not self.cuda:
            return None
        rot, cache_dtype = cos.shape[-1], (q.dtype if cache is None else cache.dtype)
        key = ("mla_rope", q.shape[1], kv.shape[1] - rot, rot, q.dtype, cache_dtype)
        plan = self._plans.get(key)
        if plan is None:
            from ..kernels._checks import dtype_name
            from ..kernels.rope_cache import MlaRopeCachePlan

            fp8 = cache_dtype == torch.float8_e4m3fn
            try:
                if not fp8 and cache_dtype != q.dtype:
                    raise ValueError(f"a {cache_dtype} latent cache for {q.dtype} activations")
                plan = MlaRopeCachePlan(q.shape[1], kv.shape[1] - rot, rot, dtype_name(q.dtype), fp8, q.device.index)
            except ValueError as exc:
                plan = str(exc)
            self._plans[key] = plan
        if isinstance(plan, str):
            self.label("mla_rope_cache", f"torch norm, RoPE and index_put latent write; NOT a CUDA kernel (the fused "
                                         f"kernel refused: {plan})")
            return None
        self.label("mla_rope_cache", "bundled latent norm + RoPE + latent write kernel (rope_cache.cu), one launch")
        return plan.run(q, kv, norm_w, eps, cos, sin, cache, slots, prefill=prefill)

    def mla(self, q_latent, q_rope, cache, table, lens, scale):
        make = getattr(self._kernels, "paged_mla_decode_plan", None) if self.cuda else None
        if make is None:
            where = "CPU" if not self.cuda else "GPU: the bundled MLA kernel has not landed"
            self.label("mla", f"torch over gathered pages ({where}); NOT a CUDA kernel")
            return torch_paged_mla(q_latent, q_rope, cache, table, lens, scale)
        from ..kernels.limits import MLA_BLOCK_SIZES

        if any(cache.shape[1] % s == 0 for s in MLA_BLOCK_SIZES):  # an MLA hybrid's large blocks (Kimi Linear: 1920)
            cache, _, table = as_kernel_pages(cache, cache, table, MLA_BLOCK_SIZES)
        key = ("mla", q_latent.shape[1], q_latent.shape[2], q_rope.shape[2], cache.shape[1], cache.dtype,
               table.shape)
        plan = self._plans.get(key)
        if plan is None:
            try:
                plan = make(q_latent.shape[1], q_latent.shape[2], q_rope.shape[2], cache.shape[1], cache.dtype,
                            max_batch=table.shape[0], max_blocks_per_seq=table.shape[1], device=q_latent.device.index)
            except ValueError as exc:  # a shape the kernel does not take (block size, latent width)
                plan = str(exc)
            self._plans[key] = plan
        if isinstance(plan, str):
            self.label("mla", f"torch over gathered pages; NOT a CUDA kernel (the MLA kernel refused: {plan})")
            return torch_paged_mla(q_latent, q_rope, cache, table, lens, scale)
        self.label("mla", f"bundled MLA CUDA kernel (NVRTC), plan/run: {plan.path}")
        return plan.run(q_latent, q_rope, cache, table, lens, scale=scale)
