"""kvplan's bundled paged-decode attention kernel.

    from kvplan.kernels import paged_decode_attention
    out = paged_decode_attention(q, k_cache, v_cache, block_table, seq_lens,
                                 scale=None, k_scale=1.0, v_scale=1.0, sliding_window=None)

    q            [B, Hq, D]                        float16 | bfloat16, CUDA, contiguous
    k_cache      [num_blocks, block_size, Hkv, D]  q's dtype or torch.float8_e4m3fn (v_cache the same)
    block_table  [B, max_blocks_per_seq] int32     physical block ids; entries past a sequence's end
                                                   (and before its sliding window) are never read
    seq_lens     [B] int32                         tokens per sequence; 0 gives a zero output row
    scale        softmax scale, default 1/sqrt(D)
    k_scale, v_scale  the cache holds x / scale: the kernel reads x = stored * scale (fp8 dequant;
                 applied to 16-bit caches too, where it defaults to 1.0)
    sliding_window    attend only the last W tokens of each sequence
    returns      [B, Hq, D] in q's dtype. Query head h reads KV head h // (Hq // Hkv).

Supported: head_dim 64/128/256, block_size 8..128 (powers of two), 1..128 query heads per KV head
(GQA and MQA). Bad arguments raise ``ValueError`` naming the argument before anything is launched
(shapes, dtypes, devices, non-contiguous tensors, block ids out of range, Hq not a multiple of Hkv,
unsupported head_dim/block_size); the block-id check is one reduction on the GPU.

Backend. The CUDA C++ source ``paged_decode.cu`` ships in this package and is compiled at run time
with NVRTC through ``cuda.core`` (see :mod:`kvplan.kernels.build`; cubins are cached under
``$KVPLAN_CACHE_DIR``, default ``~/.cache/kvplan/kernels``). ``kernel_backend()`` returns
``"nvrtc"`` when the kernel can run, otherwise the reason it cannot (no CUDA device, cuda.core or
NVRTC missing, CUDA headers missing). In that case ``paged_decode_attention`` raises
:class:`KernelUnavailableError` (a ``RuntimeError``) and does *not* fall back silently: the caller
decides whether to use :func:`reference_paged_decode_attention` (pure torch, CPU or GPU, float32 or
float64) and must label results produced that way as the reference, not the kernel.

Plan/run (the launch chosen once, arguments packed once; what verify and benchmarks use):

    plan = paged_decode_plan(q_heads=32, kv_heads=8, head_dim=128, block_size=16, kv_dtype=torch.bfloat16,
                             max_batch=64, max_blocks_per_seq=2048, device=0)
    out = plan.run(q, k_cache, v_cache, block_table, seq_lens, out=out)
    mla = paged_mla_decode_plan(q_heads=16, block_size=64, kv_dtype=torch.bfloat16, max_batch=64,
                                max_blocks_per_seq=512, device=0)
    out = mla.run(q_nope, q_rope, latent_cache, block_table, seq_lens, scale=...)   # [B, Hq, 512]
    sorted_bt = plan.sorted_block_table(block_table, seq_lens)   # once a decode step, for every layer's run:
                                                                 # full pages in address order (page_order.py)

Skinny GEMM and MoE experts at decode batches (<= 16 tokens; skinny.py, skinny_gemm.cu):

    gemm = skinny_gemm_plan(n=4096, k=14336, dtype=torch.bfloat16, max_batch=8, device=0)
    y = gemm.run(x, w)                                   # x [B, k] @ w[n, k]^T -> [B, n]
    moe = moe_pairs_plan(experts=64, hidden=2048, intermediate=1408, top_k=6, dtype=torch.bfloat16)
    out = moe.run(x, weights, ids, w13, w2)              # routed experts only; mxfp4: w13=(blocks, scales)

Tuning knobs: one :class:`KernelOptions` (defaults per device). Limits: :mod:`kvplan.kernels.limits`.
Bandwidth floors: :mod:`kvplan.kernels.probes` (``read_bandwidth``, ``copy_bandwidth``).

Importing this package imports neither torch nor cuda.core; they load on first use.
"""

from __future__ import annotations

__all__ = [
    "paged_decode_attention",
    "paged_decode_plan",
    "paged_mla_decode_plan",
    "skinny_gemm_plan",
    "moe_pairs_plan",
    "reference_paged_decode_attention",
    "reference_paged_mla_decode",
    "sort_full_pages",
    "KernelOptions",
    "kernel_backend",
    "kernel_unavailable_reason",
    "KernelUnavailableError",
]

from .options import KernelOptions  # noqa: E402  (pure Python: no torch, no cuda.core)


def paged_decode_attention(q, k_cache, v_cache, block_table, seq_lens, scale=None, k_scale=1.0, v_scale=1.0,
                           sliding_window=None, **kwargs):
    """Paged decode attention on the GPU with the NVRTC kernel (contract in the module docstring).

    Raises ValueError on bad arguments and KernelUnavailableError when the kernel cannot run here.
    Extra keyword-only options (``out``, ``check_block_ids``, ``num_splits``, ``options``) are documented
    in :func:`kvplan.kernels.decode_call.paged_decode_attention`.
    """
    from .decode_call import paged_decode_attention as impl

    return impl(q, k_cache, v_cache, block_table, seq_lens, scale, k_scale, v_scale, sliding_window, **kwargs)


def paged_decode_plan(q_heads, kv_heads, head_dim, block_size, kv_dtype, q_dtype=None, max_batch=1,
                      max_blocks_per_seq=1, device=None, sliding_window=None, options=None):
    """Validate a layer shape and plan its launch once; ``plan.run(q, k_cache, v_cache, block_table, seq_lens,
    out=None, scale=None, k_scale=1.0, v_scale=1.0)`` only launches. See :class:`PagedDecodePlan`."""
    from .paged_decode import paged_decode_plan as impl

    return impl(q_heads, kv_heads, head_dim, block_size, kv_dtype, q_dtype, max_batch, max_blocks_per_seq, device,
                sliding_window, options)


def paged_mla_decode_plan(q_heads, kv_lora_rank=512, rope_dim=64, block_size=64, kv_dtype=None, max_batch=1,
                          max_blocks_per_seq=1, device=None, **tuning):
    """Absorbed-MLA decode plan; ``plan.run(q_nope, q_rope, latent_cache, block_table, seq_lens, scale=None,
    out=None, kv_scale=1.0) -> [B, Hq, 512]``. See :mod:`kvplan.kernels.paged_mla`."""
    from .paged_mla import paged_mla_decode_plan as impl

    return impl(q_heads, kv_lora_rank, rope_dim, block_size, kv_dtype, max_batch, max_blocks_per_seq, device, **tuning)


def skinny_gemm_plan(n, k, dtype, max_batch=8, device=None, **tuning):
    """``x @ w^T`` for a weight [n, k] at 1..max_batch (<= 16) tokens; see :mod:`kvplan.kernels.skinny`."""
    from .skinny import skinny_gemm_plan as impl

    return impl(n, k, dtype, max_batch, device, **tuning)


def moe_pairs_plan(experts, hidden, intermediate, top_k, max_tokens=16, dtype=None, weight_format="bf16",
                   activation="silu", device=None, **tuning):
    """The routed experts of one MoE layer at 1..max_tokens (<= 16) tokens; see :mod:`kvplan.kernels.skinny`."""
    from .skinny import moe_pairs_plan as impl

    return impl(experts, hidden, intermediate, top_k, max_tokens, dtype, weight_format, activation, device, **tuning)


def reference_paged_decode_attention(q, k_cache, v_cache, block_table, seq_lens, scale=None, k_scale=1.0,
                                     v_scale=1.0, sliding_window=None, *, compute_dtype=None, out_dtype=None):
    """Pure-torch reference with the same contract; ``compute_dtype`` torch.float32 (default) or float64."""
    from .reference import reference_paged_decode_attention as impl

    return impl(q, k_cache, v_cache, block_table, seq_lens, scale, k_scale, v_scale, sliding_window,
                compute_dtype=compute_dtype, out_dtype=out_dtype)


def reference_paged_mla_decode(q_nope, q_rope, latent_cache, block_table, seq_lens, scale=None, kv_scale=1.0, *,
                               compute_dtype=None, out_dtype=None):
    """Pure-torch absorbed-MLA decode (CPU or GPU, float32 or float64): the MLA kernel's yardstick."""
    from .reference import reference_paged_mla_decode as impl

    return impl(q_nope, q_rope, latent_cache, block_table, seq_lens, scale, kv_scale, compute_dtype=compute_dtype,
                out_dtype=out_dtype)


def sort_full_pages(block_table, seq_lens, block_size, group_pages=None, out=None):
    """``block_table`` with each sequence's full pages sorted by address (torch, CPU or GPU); see
    :mod:`kvplan.kernels.page_order`. The plans' ``sorted_block_table`` picks the groups their launch reads."""
    from .page_order import sort_full_pages as impl

    return impl(block_table, seq_lens, block_size, group_pages, out)


def kernel_backend() -> str:
    """``"nvrtc"`` when the CUDA kernel can run in this process, otherwise the reason it cannot."""
    from ._runtime import kernel_backend as impl

    return impl()


def kernel_unavailable_reason() -> str | None:
    """None when the CUDA kernel can run, otherwise a one-sentence reason."""
    from ._runtime import kernel_unavailable_reason as impl

    return impl()


def __getattr__(name):
    if name == "KernelUnavailableError":
        from ._runtime import KernelUnavailableError

        return KernelUnavailableError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
