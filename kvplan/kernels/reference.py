"""Pure-torch paged decode attention: the yardstick the CUDA kernel is tested against, and the
labelled fallback when the kernel cannot run. Works on CPU and GPU tensors alike.

It gathers exactly the tokens each sequence attends (never a slot past ``seq_len`` nor a block-table
entry past the sequence's last block), so garbage in unused slots cannot reach the result.
"""

from __future__ import annotations

from ._checks import check_table, validate


def reference_paged_decode_attention(q, k_cache, v_cache, block_table, seq_lens, scale=None, k_scale=1.0,
                                     v_scale=1.0, sliding_window=None, *, compute_dtype=None, out_dtype=None):
    """Same contract as :func:`kvplan.kernels.paged_decode_attention`, computed in ``compute_dtype``.

    compute_dtype: ``torch.float32`` (default) or ``torch.float64``.
    out_dtype: dtype of the result; default ``q.dtype`` (pass ``compute_dtype`` to keep full precision).
    """
    import torch

    compute_dtype = torch.float32 if compute_dtype is None else compute_dtype
    if compute_dtype not in (torch.float32, torch.float64):
        raise ValueError(f"compute_dtype must be torch.float32 or torch.float64, got {compute_dtype}")
    a = validate(q, k_cache, v_cache, block_table, seq_lens, scale, k_scale, v_scale, sliding_window,
                 require_cuda=False)
    check_table(a, block_table, seq_lens)
    out_dtype = q.dtype if out_dtype is None else out_dtype

    B, Hq, D = q.shape
    Hkv, G, BS = a.kv_heads, a.group, a.block_size
    out = torch.zeros(B, Hq, D, dtype=compute_dtype, device=q.device)
    lens = seq_lens.tolist()
    for b in range(B):
        n = lens[b]
        if n == 0:
            continue
        lo = max(0, n - a.window) if a.window is not None else 0
        p0, p1 = lo // BS, (n + BS - 1) // BS
        pages = block_table[b, p0:p1].long()
        t0, t1 = lo - p0 * BS, n - p0 * BS
        k = k_cache[pages].reshape(-1, Hkv, D)[t0:t1].to(compute_dtype) * a.k_scale  # [T, Hkv, D]
        v = v_cache[pages].reshape(-1, Hkv, D)[t0:t1].to(compute_dtype) * a.v_scale
        qb = q[b].to(compute_dtype).reshape(Hkv, G, D)
        s = torch.einsum("hgd,thd->hgt", qb, k) * a.scale
        p = torch.softmax(s, dim=-1)
        out[b] = torch.einsum("hgt,thd->hgd", p, v).reshape(Hq, D)
    return out.to(out_dtype)


def reference_paged_mla_decode(q_nope, q_rope, latent_cache, block_table, seq_lens, scale=None, kv_scale=1.0, *,
                               compute_dtype=None, out_dtype=None):
    """Absorbed-MLA decode in torch: the yardstick of the MLA kernel (same arguments as ``plan.run``).

    out[b, h] = softmax_t(scale * (q_nope[b, h] . c_t[:512] + q_rope[b, h] . c_t[512:])) . c_t[:512] with
    c_t = latent_cache row of token t x kv_scale. compute_dtype float32 (default) or float64; out_dtype
    defaults to bfloat16. Reads only the rows each sequence holds.
    """
    import torch

    from ._checks import check_mla_table, validate_mla

    compute_dtype = torch.float32 if compute_dtype is None else compute_dtype
    if compute_dtype not in (torch.float32, torch.float64):
        raise ValueError(f"compute_dtype must be torch.float32 or torch.float64, got {compute_dtype}")
    sc, ks = validate_mla(q_nope, q_rope, latent_cache, block_table, seq_lens, scale, kv_scale)
    NB, BS, W = latent_cache.shape
    check_mla_table(block_table, seq_lens, NB, BS)
    R = q_nope.shape[2]
    B, H, _ = q_nope.shape
    out = torch.zeros(B, H, R, dtype=compute_dtype, device=q_nope.device)
    q = torch.cat([q_nope, q_rope], dim=2).to(compute_dtype)  # [B, H, 576]
    for b, n in enumerate(seq_lens.tolist()):
        if n == 0:
            continue
        pages = block_table[b, :(n + BS - 1) // BS].long()
        c = latent_cache[pages].reshape(-1, W)[:n].to(compute_dtype) * ks  # [T, 576]
        p = torch.softmax((q[b] @ c.T) * sc, dim=-1)
        out[b] = p @ c[:, :R]
    return out.to(torch.bfloat16 if out_dtype is None else out_dtype)
