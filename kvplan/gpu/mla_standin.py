"""Absorbed-MLA decode in torch: verify's stand-in until the bundled MLA kernel times it."""

from __future__ import annotations

import math

from ..errors import KvplanError
from .timing import DEVICE

MLA_BACKENDS = ("EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH")


class MLAStandIn:
    """Absorbed-MLA decode over a paged latent cache, in torch: NOT a CUDA kernel (the bundled kernel covers
    head dims 64/128/256, not DeepSeek's 576-wide latent). Each query head scores the whole latent
    (kv_lora_rank + rope: the absorbed q_nope.W_UK and q_rope, concatenated) and sums the first kv_lora_rank
    columns of it; every head of the rank shares the one latent. Two ways, both plain torch:

    - "sdpa": the rank's H heads are the H query rows of a single head, so SDPA reads the latent once per
      sequence (as K, and its first kv_lora_rank columns as V); one CTA per sequence, slow at batch 1.
    - "bmm": scores = q @ latent^T, softmax, @ latent[:, :kv_lora_rank]: cuBLAS spreads it over the GPU, but
      the latent is read twice.

    When each sequence's pages are one ascending run of block ids and the runs start at a constant stride (a
    fresh pool hands them out so), pages are read through one strided view of the cache; otherwise they are
    gathered first (a copy: more bytes than a paged kernel moves)."""

    def __init__(self, torch, cache, block_table, seq_lens, v_dim: int, scale: float, method: str = "bmm",
                 backend: str = "MATH"):
        if method not in ("sdpa", "bmm"):
            raise ValueError(f"method must be 'sdpa' or 'bmm', got {method!r}")
        self.torch, self.v_dim, self.scale, self.method, self.backend = torch, v_dim, scale, method, backend
        blocks, bs, dim = cache.shape
        lens = [int(n) for n in seq_lens.tolist()]
        self.batch, self.tokens = len(lens), max(lens) if lens else 0
        self.width, self.bs = -(-self.tokens // bs), bs
        rows = block_table[:, :self.width].tolist()
        starts = [row[0] for row in rows] if self.width else [0] * self.batch
        stride = starts[1] - starts[0] if len(starts) > 1 else self.width
        evenly = all(row == list(range(row[0], row[0] + self.width)) and row[0] == starts[0] + i * stride
                     for i, row in enumerate(rows))
        self.cache, self.index, self.how, self.kv = cache, None, "views", None
        if evenly and stride >= 0 and starts and starts[-1] + self.width <= blocks:
            # sequence i's pages are blocks starts[0] + i*stride ...: one strided view, no copy
            self.kv = cache.as_strided((self.batch, self.tokens, dim), (stride * bs * dim, dim, 1),
                                       cache.storage_offset() + starts[0] * bs * dim)
        else:
            self.how = "gather"
            self.index = block_table[:, :self.width].long()
        self.mask = None
        if any(n != self.tokens for n in lens):
            positions = torch.arange(self.tokens, device=cache.device)
            self.mask = positions[None, :] < seq_lens.to(positions.dtype)[:, None]  # [B, T]

    @property
    def label(self) -> str:
        how = f"SDPA {self.backend}, heads as query rows" if self.method == "sdpa" else "two cuBLAS bmm + softmax"
        return f"{how}, pages read through {self.how}"

    def __call__(self, q):
        torch = self.torch
        kv = self.kv
        if kv is None:
            kv = self.cache[self.index].reshape(self.batch, self.width * self.bs, -1)[:, :self.tokens]
        batch, heads, dim = q.shape
        if self.method == "bmm":
            scores = torch.baddbmm(torch.empty(batch, heads, self.tokens, dtype=q.dtype, device=q.device), q,
                                   kv.transpose(1, 2), beta=0.0, alpha=self.scale)
            if self.mask is not None:
                scores = scores.masked_fill(~self.mask[:, None, :], float("-inf"))
            return torch.bmm(torch.softmax(scores, dim=-1), kv[..., :self.v_dim])
        from torch.nn.attention import SDPBackend, sdpa_kernel

        mask = None if self.mask is None else self.mask[:, None, None, :]
        with sdpa_kernel(getattr(SDPBackend, self.backend)):
            out = torch.nn.functional.scaled_dot_product_attention(
                q.view(batch, 1, heads, dim), kv.unsqueeze(1), kv[..., :self.v_dim].unsqueeze(1), attn_mask=mask,
                scale=self.scale)
        return out.view(batch, heads, self.v_dim)


def mla_reference(torch, q, cache, block_table, seq_lens, v_dim: int, scale: float):
    """float64 absorbed-MLA decode, one sequence at a time, for checks."""
    out = torch.zeros(q.shape[0], q.shape[1], v_dim, dtype=torch.float64, device=q.device)
    bs = cache.shape[1]
    for b, n in enumerate(seq_lens.tolist()):
        if n == 0:
            continue
        pages = block_table[b, :-(-n // bs)].long()
        kv = cache[pages].reshape(-1, cache.shape[-1])[:n].double()
        p = torch.softmax(q[b].double() @ kv.T * scale, dim=-1)
        out[b] = p @ kv[:, :v_dim]
    return out


def pick_sdpa_backend(torch, dim: int, v_dim: int, dtype) -> str:
    """The first SDPA backend that takes a (dim, v_dim) latent here."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q = torch.randn(2, 1, 8, dim, device=DEVICE, dtype=dtype)
    kv = torch.randn(2, 1, 64, dim, device=DEVICE, dtype=dtype)
    for name in MLA_BACKENDS:
        try:
            with sdpa_kernel(getattr(SDPBackend, name)):
                torch.nn.functional.scaled_dot_product_attention(q, kv, kv[..., :v_dim], scale=dim ** -0.5)
            torch.cuda.synchronize()
            return name
        except RuntimeError:
            continue
    return "MATH"


def faster_mla(torch, make, q) -> tuple:
    """(stand-in, ms) of the faster method for one layer at this batch: a few event-timed calls of each."""
    best = None
    for method in ("sdpa", "bmm"):
        stand_in = make(method)
        try:
            stand_in(q)
        except RuntimeError:
            continue
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(3):
            stand_in(q)
        end.record()
        end.synchronize()
        ms = start.elapsed_time(end) / 3
        if best is None or ms < best[1]:
            best = (stand_in, ms)
    if best is None:
        raise KvplanError("neither torch MLA stand-in (SDPA, bmm) ran on this GPU.")
    return best


def relative_l2(torch, out, ref) -> float:
    out, ref = out.double(), ref.double()
    if not torch.isfinite(out).all():
        return math.inf
    return float((out - ref).norm() / ref.norm().clamp_min(1e-30))
