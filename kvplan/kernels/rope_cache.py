"""Decode's rotary embedding and paged cache write in one launch (rope_cache.cu), for GQA and for MLA; prefill
takes the same launches with the rotated keys (and MLA's normed latents) also written out for attention.

    plan = RopeCachePlan(q_heads=32, kv_heads=8, head_dim=128, rot=128, act_dtype="bfloat16", fp8_cache=False)
    q_rot = plan.run(q, k, v, cos, sin, k_cache, v_cache, slots, k_scale=1.0, v_scale=1.0)
    q_rot, k_rot = plan.run(q, k, v, cos, sin, k_cache, v_cache, slots, keys_out=True)   # prefill

q, k, v: [T, heads, head_dim] views (heads adjacent in a row, any row stride: the fused QKV output's slices);
cos, sin: [T, 1, rot] or [T, rot] rows in the activations' dtype; caches [blocks, block_size, kv_heads, head_dim]
contiguous, or both None (nothing stored); slots [T] int64 flat slots, -1 for a token not stored. Returns q rotated,
contiguous (and k rotated, contiguous, with keys_out); writes k rotated and v into the caches.

    plan = MlaRopeCachePlan(q_heads=16, rank=512, rot=64, act_dtype="bfloat16", fp8_cache=False)
    q_pe = plan.run(q, kv, norm_w, eps, cos, sin, cache, slots, scale=1.0)
    q_whole, latent, k_pe = plan.run(q, kv, norm_w, eps, cos, sin, cache, slots, prefill=True)

q: [T, heads, nope + rot] (the q projection's output, any row stride); kv: [T, rank + rot] rows (kv_a's output);
norm_w [rank]; cache [blocks, block_size, rank + rot] contiguous or None. Stores RMSNorm(kv[:, :rank]) * norm_w and
the rotated kv[:, rank:] at the slots; returns the rotated q[..., nope:] as a contiguous [T, heads, rot], or with
prefill the whole query (nope dims, then the rotated ones) [T, heads, nope + rot], the normed latent [T, rank] and
the rotated key part [T, rot]."""

from __future__ import annotations

from .configs import Q_DTYPES, RopeCacheConfig

THREADS = 256  # the kernel's launch bound


def _check(act_dtype: str, rot: int, width: int, width_name: str, **sizes) -> None:
    if act_dtype not in Q_DTYPES:
        raise ValueError(f"activations must be one of {', '.join(Q_DTYPES)}, got {act_dtype}")
    for name, v in dict(sizes, rot=rot).items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if rot % 2 or rot > width:
        raise ValueError(f"rotary dims {rot} must be even and at most {width_name} {width}")


def _load(act_dtype: str, fp8_cache: bool, device, what: str):
    import torch

    from . import _runtime as rt

    rt.require_kernel(what)
    index = torch.cuda.current_device() if device is None else rt.device_index(device)
    return rt, torch, index, rt.load(RopeCacheConfig(act_dtype, fp8_cache), rt.device_info(index))


class RopeCachePlan:
    def __init__(self, q_heads: int, kv_heads: int, head_dim: int, rot: int, act_dtype: str, fp8_cache: bool,
                 device=None):
        _check(act_dtype, rot, head_dim, "head_dim", q_heads=q_heads, kv_heads=kv_heads, head_dim=head_dim)
        rt, torch, self.index, ld = _load(act_dtype, fp8_cache, device, "the RoPE + cache-write kernel")
        self.hq, self.hk, self.d, self.rot = q_heads, kv_heads, head_dim, rot
        args = ("u64", "u64") * 3 + ("u64", "u64", "u64") + ("u64",) * 5 + ("i32",) * 4 + ("f32", "f32")
        self._launches = [rt.PreparedLaunch(ld, name, args, THREADS, 0, None, "driver")
                          for name in ("kvp_rope_cache", "kvp_rope_cache_v8")]
        self._rt, self._torch = rt, torch
        # CTAs per token: one element a thread, or eight (rotated pairs of 8-value groups, copies of 8, v's groups)
        per_head = rot // 16 + (head_dim - rot) // 8
        self._chunks = [-(-(q_heads + kv_heads) * head_dim // THREADS),
                        -(-((q_heads + kv_heads) * per_head + kv_heads * head_dim // 8) // THREADS)]
        self._v8_shape = rot % 16 == 0 and head_dim % 8 == 0
        self._act = getattr(torch, act_dtype)
        self._cache = torch.float8_e4m3fn if fp8_cache else self._act

    def _rows(self, name, t, heads, tokens):
        ok = (t.dim() == 3 and tuple(t.shape) == (tokens, heads, self.d) and t.stride(2) == 1
              and t.stride(1) == self.d and t.dtype == self._act and t.is_cuda)
        if not ok:
            raise ValueError(f"{name} must be a CUDA {self._act} view [{tokens}, {heads}, {self.d}] with heads "
                             f"adjacent in a row")
        return t.stride(0)

    def run(self, q, k, v, cos, sin, k_cache, v_cache, slots, k_scale: float = 1.0, v_scale: float = 1.0,
            keys_out: bool = False):
        torch = self._torch
        t = q.shape[0]
        rows = [self._rows("q", q, self.hq, t), self._rows("k", k, self.hk, t), self._rows("v", v, self.hk, t)]
        cs = _tables(torch, cos, sin, t, self.rot, self._act)
        if (k_cache is None) != (v_cache is None):
            raise ValueError("k_cache and v_cache must both be given or both be None")
        for name, c in (("k_cache", k_cache), ("v_cache", v_cache)):
            if c is not None and (c.dtype != self._cache or not c.is_contiguous() or c.dim() != 4
                                  or tuple(c.shape[2:]) != (self.hk, self.d)):
                raise ValueError(f"{name} must be a contiguous {self._cache} [blocks, block_size, {self.hk}, "
                                 f"{self.d}]")
        if k_cache is not None:
            _check_slots(torch, slots, t)
        q_out = torch.empty(t, self.hq, self.d, dtype=self._act, device=q.device)
        k_out = torch.empty(t, self.hk, self.d, dtype=self._act, device=q.device) if keys_out else None
        if t:
            values = (q.data_ptr(), rows[0], k.data_ptr(), rows[1], v.data_ptr(), rows[2], cs[0].data_ptr(),
                      cs[1].data_ptr(), cs[0].stride(0), q_out.data_ptr(), _ptr(k_out), _ptr(k_cache),
                      _ptr(v_cache), _ptr(slots) if k_cache is not None else 0, self.hq, self.hk, self.d, self.rot,
                      1.0 / float(k_scale), 1.0 / float(v_scale))
            v8 = int(self._v8_shape and _aligned([*rows, cs[0].stride(0)], (q, k, v, *cs, k_out, k_cache, v_cache)))
            self.vectorized = bool(v8)  # which entry the last run took (tests)
            _launch(self, self._launches[v8], values, (t, self._chunks[v8], 1))
        return (q_out, k_out) if keys_out else q_out


class MlaRopeCachePlan:
    def __init__(self, q_heads: int, rank: int, rot: int, act_dtype: str, fp8_cache: bool, device=None):
        _check(act_dtype, rot, rot, "rot", q_heads=q_heads, rank=rank)
        rt, torch, self.index, ld = _load(act_dtype, fp8_cache, device, "the MLA RoPE + latent-write kernel")
        self.hq, self.rank, self.rot = q_heads, rank, rot
        args = ("u64", "u64", "i32", "i32", "i32") + ("u64",) * 11 + ("i32",) * 3 + ("f32", "f32")
        self._launches = [rt.PreparedLaunch(ld, name, args, THREADS, 0, None, "driver")
                          for name in ("kvp_mla_rope_cache", "kvp_mla_rope_cache_v8")]
        self._rt, self._torch = rt, torch
        self._act = getattr(torch, act_dtype)
        self._cache = torch.float8_e4m3fn if fp8_cache else self._act

    def run(self, q, kv, norm_w, eps: float, cos, sin, cache, slots, scale: float = 1.0, prefill: bool = False):
        torch = self._torch
        t, width = q.shape[0], self.rank + self.rot
        if not (q.dim() == 3 and q.shape[:2] == (t, self.hq) and q.shape[2] >= self.rot and q.stride(2) == 1
                and q.dtype == self._act and q.is_cuda):
            raise ValueError(f"q must be a CUDA {self._act} view [{t}, {self.hq}, nope + {self.rot}]")
        if not (kv.dim() == 2 and kv.shape == (t, width) and kv.stride(1) == 1 and kv.dtype == self._act):
            raise ValueError(f"kv must be [{t}, {width}] rows in {self._act}")
        if norm_w.shape != (self.rank,) or not norm_w.is_contiguous() or norm_w.dtype != self._act:
            raise ValueError(f"norm_w must be a contiguous [{self.rank}] {self._act} vector")
        cs = _tables(torch, cos, sin, t, self.rot, self._act)
        if cache is not None:
            if cache.dtype != self._cache or not cache.is_contiguous() or cache.dim() != 3 or cache.shape[2] != width:
                raise ValueError(f"cache must be a contiguous {self._cache} [blocks, block_size, {width}]")
            _check_slots(torch, slots, t)
        nope = q.shape[2] - self.rot
        keep = nope if prefill else 0  # the query's leading dims copied in front of its rotated ones
        q_out = torch.empty(t, self.hq, keep + self.rot, dtype=self._act, device=q.device)
        latent = torch.empty(t, self.rank, dtype=self._act, device=q.device) if prefill else None
        k_pe = torch.empty(t, self.rot, dtype=self._act, device=q.device) if prefill else None
        if t:
            values = (q.data_ptr(), q.stride(0), q.stride(1), nope, keep, kv.data_ptr(), kv.stride(0),
                      norm_w.data_ptr(), cs[0].data_ptr(), cs[1].data_ptr(), cs[0].stride(0), q_out.data_ptr(),
                      _ptr(latent), _ptr(k_pe), _ptr(cache), _ptr(slots) if cache is not None else 0, self.hq,
                      self.rank, self.rot, float(eps), 1.0 / float(scale))
            v8 = int(self.rot % 16 == 0 and nope % 8 == 0
                     and _aligned([q.stride(0), q.stride(1), cs[0].stride(0)], (q, *cs)))
            self.vectorized = bool(v8)
            # CTA 0: the latent row; then a q value a thread, or 8 (groups copied, rotated pairs of groups)
            units = self.hq * (keep // 8 + self.rot // 16) if v8 else self.hq * (keep + self.rot)
            _launch(self, self._launches[v8], values, (t, 1 + -(-units // THREADS), 1))
        return (q_out, latent, k_pe) if prefill else q_out


def _launch(plan, launch, values, grid) -> None:
    for arg, v in zip(launch.args, values):
        arg.value = v
    launch.launch(grid, plan._rt.current_stream_handle(plan._torch, plan.index))


def _aligned(strides, tensors) -> bool:
    """Whether the eight-values-a-thread entries may take these: strides (elements) multiples of 8 and every
    tensor (None: absent) starting 16 bytes aligned."""
    return all(r % 8 == 0 for r in strides) and all(t is None or t.data_ptr() % 16 == 0 for t in tensors)


def _ptr(t) -> int:
    return 0 if t is None else t.data_ptr()


def _tables(torch, cos, sin, t: int, rot: int, act):
    cs = cos.reshape(t, -1), sin.reshape(t, -1)
    if any(c.shape != (t, rot) or c.stride(1) != 1 or c.dtype != act for c in cs):
        raise ValueError(f"cos and sin must be [{t}, {rot}] rows in {act}")
    return cs


def _check_slots(torch, slots, t: int) -> None:
    if slots is None or slots.shape != (t,) or slots.dtype != torch.int64:
        raise ValueError(f"slots must be [{t}] int64")
