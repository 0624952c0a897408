"""Argument validation shared by the CUDA kernel and the torch reference.

Every problem raises ``ValueError`` naming the argument, before anything is launched.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

from . import limits

SUPPORTED_HEAD_DIMS = limits.HEAD_DIMS
SUPPORTED_BLOCK_SIZES = limits.BLOCK_SIZES
MAX_GROUP = limits.MAX_GROUP
_MAX_GRID_YZ = limits.MAX_GRID_YZ
_HOST_CHECK_MAX_IDS = 1 << 16  # block tables up to this many entries are checked on the host


@dataclass(frozen=True)
class DecodeArgs:
    batch: int
    q_heads: int
    kv_heads: int
    group: int
    head_dim: int
    num_blocks: int
    block_size: int
    max_blocks: int
    scale: float
    k_scale: float
    v_scale: float
    window: int | None
    q_dtype: str
    kv_dtype: str


def dtype_name(dt) -> str:
    return str(dt).replace("torch.", "")


def positive_float(name: str, value) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(f) or f <= 0.0:
        raise ValueError(f"{name} must be finite and > 0, got {f}")
    return f


def validate(q, k_cache, v_cache, block_table, seq_lens, scale, k_scale, v_scale, sliding_window,
             *, require_cuda: bool) -> DecodeArgs:
    import torch

    named = (("q", q), ("k_cache", k_cache), ("v_cache", v_cache), ("block_table", block_table), ("seq_lens", seq_lens))
    for name, t in named:
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    for name, t, nd in (("q", q, 3), ("k_cache", k_cache, 4), ("v_cache", v_cache, 4),
                        ("block_table", block_table, 2), ("seq_lens", seq_lens, 1)):
        if t.dim() != nd:
            raise ValueError(f"{name} must be {nd}-D, got shape {tuple(t.shape)}")

    if q.dtype not in (torch.float16, torch.bfloat16):
        raise ValueError(f"q must be float16 or bfloat16, got {dtype_name(q.dtype)}")
    kv_ok = (torch.float16, torch.bfloat16, torch.float8_e4m3fn)
    if k_cache.dtype not in kv_ok:
        raise ValueError(f"k_cache must be float16, bfloat16 or float8_e4m3fn, got {dtype_name(k_cache.dtype)}")
    if v_cache.dtype != k_cache.dtype:
        raise ValueError(f"v_cache dtype {dtype_name(v_cache.dtype)} "
                         f"differs from k_cache dtype {dtype_name(k_cache.dtype)}")
    if k_cache.dtype != torch.float8_e4m3fn and k_cache.dtype != q.dtype:
        raise ValueError(
            f"k_cache dtype {dtype_name(k_cache.dtype)} must match q dtype {dtype_name(q.dtype)} "
            "(only float8_e4m3fn caches may differ from q)"
        )
    if block_table.dtype != torch.int32:
        raise ValueError(f"block_table must be int32, got {dtype_name(block_table.dtype)}")
    if seq_lens.dtype != torch.int32:
        raise ValueError(f"seq_lens must be int32, got {dtype_name(seq_lens.dtype)}")

    dev = q.device
    if require_cuda and dev.type != "cuda":
        raise ValueError(f"q must be on a CUDA device, got {dev}")
    for name, t in named[1:]:
        if t.device != dev:
            raise ValueError(f"{name} is on {t.device} but q is on {dev}")
    for name, t in named:
        if not t.is_contiguous():
            raise ValueError(f"{name} must be contiguous (got strides {tuple(t.stride())} for shape {tuple(t.shape)})")

    B, Hq, D = q.shape
    NB, BS, Hkv, Dk = k_cache.shape
    if tuple(v_cache.shape) != tuple(k_cache.shape):
        raise ValueError(f"v_cache shape {tuple(v_cache.shape)} differs from k_cache shape {tuple(k_cache.shape)}")
    if Dk != D:
        raise ValueError(f"k_cache head_dim {Dk} differs from q head_dim {D}")
    if D not in SUPPORTED_HEAD_DIMS:
        raise ValueError(f"head_dim {D} of q is not supported (supported: {', '.join(map(str, SUPPORTED_HEAD_DIMS))})")
    if BS not in SUPPORTED_BLOCK_SIZES:
        raise ValueError(
            f"k_cache block_size {BS} is not supported (supported: {', '.join(map(str, SUPPORTED_BLOCK_SIZES))})"
        )
    if Hq < 1 or Hkv < 1:
        raise ValueError(f"q has {Hq} heads and k_cache {Hkv} heads; both must be >= 1")
    if Hq % Hkv != 0:
        raise ValueError(f"q has {Hq} heads, not a multiple of k_cache's {Hkv} KV heads")
    G = Hq // Hkv
    if G > MAX_GROUP:
        raise ValueError(f"q has {G} query heads per KV head; at most {MAX_GROUP} are supported")
    if block_table.shape[0] != B:
        raise ValueError(f"block_table has {block_table.shape[0]} rows but q has batch {B}")
    if seq_lens.shape[0] != B:
        raise ValueError(f"seq_lens has {seq_lens.shape[0]} entries but q has batch {B}")
    MB = block_table.shape[1]
    if NB * BS >= 2**31 or MB * BS >= 2**31 - 2**20:
        raise ValueError("k_cache or block_table addresses more than 2^31 token slots")
    if require_cuda:
        if B > _MAX_GRID_YZ:
            raise ValueError(f"q batch {B} exceeds {_MAX_GRID_YZ}")
        if Hkv > _MAX_GRID_YZ:
            raise ValueError(f"k_cache has {Hkv} KV heads, more than {_MAX_GRID_YZ}")
        for name, t in named[:3]:
            if t.numel() and t.data_ptr() % 16:
                raise ValueError(f"{name} data pointer is not 16-byte aligned")

    sc = 1.0 / math.sqrt(D) if scale is None else positive_float("scale", scale)
    ks = positive_float("k_scale", k_scale)
    vs = positive_float("v_scale", v_scale)
    window = None
    if sliding_window is not None:
        if isinstance(sliding_window, bool) or not hasattr(sliding_window, "__index__"):
            raise ValueError(f"sliding_window must be a positive int or None, got {sliding_window!r}")
        window = operator.index(sliding_window)
        if window < 1:
            raise ValueError(f"sliding_window must be >= 1, got {window}")
        if window >= 2**31:
            window = None  # longer than any sequence
    return DecodeArgs(B, Hq, Hkv, G, D, NB, BS, MB, sc, ks, vs, window,
                      dtype_name(q.dtype), dtype_name(k_cache.dtype))


def check_table(a: DecodeArgs, block_table, seq_lens) -> int:
    """Check seq_lens and the block ids a call will read, with one reduction on the tensors' device.

    Returns the longest attended span (tokens after the sliding window). One host sync.
    """
    import torch

    if a.batch == 0:
        return 0
    if block_table.is_cuda and block_table.numel() <= _HOST_CHECK_MAX_IDS:
        # small tables: one copy to the host and CPU arithmetic (measured on H100: ~0.5 ms as a dozen
        # tiny GPU ops and a sync, far less this way; large tables stay on the GPU)
        both = torch.cat((seq_lens, block_table.reshape(-1))).cpu()
        seq_lens, block_table = both[:a.batch], both[a.batch:].view(a.batch, a.max_blocks)
    lens = seq_lens.to(torch.int64)
    cap = a.max_blocks * a.block_size
    lo = (lens - a.window).clamp(min=0) if a.window is not None else torch.zeros_like(lens)
    lens_c = lens.clamp(min=0, max=cap)
    first = lo // a.block_size
    end = (lens_c + a.block_size - 1) // a.block_size
    if a.max_blocks:
        cols = torch.arange(a.max_blocks, device=block_table.device)
        used = (cols[None, :] >= first[:, None]) & (cols[None, :] < end[:, None])
        bad_ids = used & ((block_table < 0) | (block_table >= a.num_blocks))
        bad_any = bad_ids.any()
    else:
        bad_ids = None
        bad_any = torch.zeros((), dtype=torch.bool, device=lens.device)
    stats = torch.stack([
        (lens < 0).any().to(torch.int64),
        (lens > cap).any().to(torch.int64),
        bad_any.to(torch.int64),
        (lens_c - lo.clamp(max=cap)).clamp(min=0).max(),
    ]).tolist()
    neg, over, bad, span = stats
    if neg:
        i = int((lens < 0).nonzero()[0, 0])
        raise ValueError(f"seq_lens[{i}] = {int(lens[i])} is negative")
    if over:
        i = int((lens > cap).nonzero()[0, 0])
        raise ValueError(
            f"seq_lens[{i}] = {int(lens[i])} exceeds block_table capacity "
            f"({a.max_blocks} blocks x block_size {a.block_size} = {cap} tokens)"
        )
    if bad:
        b, c = (int(x) for x in bad_ids.nonzero()[0])
        raise ValueError(
            f"block_table[{b}, {c}] = {int(block_table[b, c])} is out of range for k_cache with "
            f"{a.num_blocks} blocks (sequence {b} reads blocks {int(first[b])}..{int(end[b]) - 1})"
        )
    return int(span)


def validate_mla(q_nope, q_rope, latent_cache, block_table, seq_lens, scale, kv_scale) -> tuple[float, float]:
    """Shapes and dtypes of an absorbed-MLA decode call (any device); returns (scale, kv_scale)."""
    import torch

    named = (("q_nope", q_nope), ("q_rope", q_rope), ("latent_cache", latent_cache), ("block_table", block_table),
             ("seq_lens", seq_lens))
    for (name, t), nd in zip(named, (3, 3, 3, 2, 1)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != nd:
            raise ValueError(f"{name} must be {nd}-D, got shape {tuple(t.shape)}")
    R, P = limits.MLA_KV_LORA_RANK, limits.MLA_ROPE_DIM
    B, H, dn = q_nope.shape
    if dn != R:
        raise ValueError(f"q_nope last dim must be kv_lora_rank {R}, got {dn}")
    if not 1 <= H <= limits.MLA_MAX_HEADS:
        raise ValueError(f"q_nope has {H} heads; 1..{limits.MLA_MAX_HEADS} are supported")
    if tuple(q_rope.shape) != (B, H, P):
        raise ValueError(f"q_rope must be [{B}, {H}, {P}], got {tuple(q_rope.shape)}")
    if q_nope.dtype != torch.bfloat16 or q_rope.dtype != torch.bfloat16:
        raise ValueError("q_nope and q_rope must be bfloat16, "
                         f"got {dtype_name(q_nope.dtype)}, {dtype_name(q_rope.dtype)}")
    if latent_cache.shape[2] != R + P:
        raise ValueError(f"latent_cache last dim must be {R + P}, got {latent_cache.shape[2]}")
    if latent_cache.shape[1] not in limits.MLA_BLOCK_SIZES:
        raise ValueError(f"latent_cache block_size {latent_cache.shape[1]} is not supported "
                         f"(supported: {limits.MLA_BLOCK_SIZES})")
    if latent_cache.dtype not in (torch.bfloat16, torch.float8_e4m3fn):
        raise ValueError(f"latent_cache must be bfloat16 or float8_e4m3fn, got {dtype_name(latent_cache.dtype)}")
    if block_table.dtype != torch.int32 or block_table.shape[0] != B:
        raise ValueError(f"block_table must be [{B}, max_blocks] int32, got {tuple(block_table.shape)} "
                         f"{dtype_name(block_table.dtype)}")
    if seq_lens.dtype != torch.int32 or seq_lens.shape[0] != B:
        raise ValueError(f"seq_lens must be [{B}] int32, got {tuple(seq_lens.shape)} {dtype_name(seq_lens.dtype)}")
    dev = q_nope.device
    for name, t in named[1:]:
        if t.device != dev:
            raise ValueError(f"{name} is on {t.device} but q_nope is on {dev}")
    sc = 1.0 / math.sqrt(R + P) if scale is None else positive_float("scale", scale)
    return sc, positive_float("kv_scale", kv_scale)


def check_mla_table(block_table, seq_lens, num_blocks: int, block_size: int) -> None:
    """seq_lens within the table, and every block id a sequence reads in range (ValueError naming it)."""
    import torch

    lens = seq_lens.to(torch.int64).cpu()
    bt = block_table.cpu()
    cap = bt.shape[1] * block_size
    for b, n in enumerate(lens.tolist()):
        if n < 0:
            raise ValueError(f"seq_lens[{b}] = {n} is negative")
        if n > cap:
            raise ValueError(f"seq_lens[{b}] = {n} exceeds block_table capacity ({bt.shape[1]} blocks x "
                             f"block_size {block_size} = {cap} tokens)")
        used = bt[b, :(n + block_size - 1) // block_size]
        bad = ((used < 0) | (used >= num_blocks)).nonzero()
        if len(bad):
            c = int(bad[0, 0])
            raise ValueError(f"block_table[{b}, {c}] = {int(used[c])} is out of range for latent_cache with "
                             f"{num_blocks} blocks")


def positive_int(name: str, v) -> int:
    if isinstance(v, bool) or not hasattr(v, "__index__"):
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    v = int(v)
    if v < 1:
        raise ValueError(f"{name} must be >= 1, got {v}")
    return v


def window_arg(w):
    if w is None:
        return None
    if isinstance(w, bool) or not hasattr(w, "__index__"):
        raise ValueError(f"sliding_window must be a positive int or None, got {w!r}")
    w = int(w)
    if w < 1:
        raise ValueError(f"sliding_window must be >= 1, got {w}")
    return None if w >= 2**31 else w


def torch_dtype_arg(torch, name: str, value, allowed):
    if isinstance(value, str):
        value = getattr(torch, value.replace("torch.", ""), None)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(dtype_name(d) for d in allowed)}, got {value!r}")
    return value


def check_state_pools(pool, state_pool, split: bool, row_elements: int, state_offset: int, conv_dtype,
                      state_dtype) -> tuple:
    """A recurrent step's slots (mamba_step, deltanet_step): one pool [slots, row_elements] in the state dtype, or,
    for a plan built with a window dtype (`split`), the window pool [slots, state_offset] in it beside the state pool
    [slots, row_elements - state_offset]. Returns ((tensor, width, dtype, name), ...), the state pool last."""
    if (state_pool is not None) != split:
        raise ValueError("a plan built with conv_dtype takes the state in state_pool, one without it one pool")
    pools = ((pool, state_offset, conv_dtype, "window pool"),
             (state_pool, row_elements - state_offset, state_dtype, "state pool")) if split \
        else ((pool, row_elements, state_dtype, "state pool"),)
    for t, width, dtype, name in pools:
        if t.dim() != 2 or t.shape[1] != width or not t.is_contiguous() or t.dtype != dtype:
            raise ValueError(f"the {name} must be contiguous [slots, {width}] {dtype}, got {list(t.shape)} {t.dtype}")
    if split and pool.shape[0] != state_pool.shape[0]:
        raise ValueError(f"the window pool has {pool.shape[0]} slots and the state pool {state_pool.shape[0]}")
    return pools
