"""The warpgroup-MMA launch of a paged GQA/MQA decode plan (paged_decode_wg.cu, sm_90a): which plans take it, its
splits, its tensor maps and its launch. ``PagedDecodePlan`` holds one of these when it runs this path."""

from __future__ import annotations

import ctypes
import math

from . import _runtime as rt
from . import configs, limits
from .decode_launch import Launch, choose_splits
from .options import KernelOptions

# kvp_decode_wg's parameters, in order: q, bt, seqlens, out, opart, lse; G, Hq, chunk, bt_stride, log2bs; cbase,
# vscale; the K and V tensor maps
_ARGS = ("u64",) * 6 + ("i32",) * 5 + ("f32", "f32", "tmap", "tmap")
_MERGE_ARGS = ("u64", "u64", "u64", "i32", "i32")
_TOK = limits.DECODE_WG_TOKENS


def wg_blocker(group: int, head_dim: int, q_dtype: str, kv_dtype: str, window, arch: str, opts: KernelOptions):
    """Why a plan cannot take the warpgroup-MMA path, in words, or None when it can."""
    if arch not in configs.WGMMA_ARCHS:
        return "it needs an sm_90 GPU (warpgroup MMAs)"
    if opts.launcher != "driver":
        return "it needs the driver launcher (its tensor maps are 128-byte kernel parameters)"
    if kv_dtype != q_dtype:
        return "it takes 16-bit caches of q's dtype"
    if head_dim not in limits.DECODE_WG_HEAD_DIMS:
        return f"it takes head_dim {limits.DECODE_WG_HEAD_DIMS}"
    if not configs.decode_wg_heads(group):
        return f"it needs query heads per KV head in multiples of {min(limits.DECODE_WG_HEAD_GROUPS)}"
    if window:
        return "it has no sliding window"
    if opts.trace or opts.fuse_merge or opts.sort_steps:
        return "it has no trace, fused merge or step sort"
    return None


def other_path_options(opts: KernelOptions) -> list[str]:
    """The options given that only the mma.sync kernel (paged_decode.cu) takes."""
    defaults = KernelOptions()
    return [f for f in _MMA_SYNC_OPTIONS if getattr(opts, f) != getattr(defaults, f)]


_MMA_SYNC_OPTIONS = ("bulk", "slices", "stages", "kv_per_cta", "heads_per_warp", "l2_prefetch", "k_coalesced",
                     "early_page", "lazy_rescale", "heads_in_m", "page_runs", "max_registers")


def takes_wg(group, head_dim, q_dtype, kv_dtype, window, arch, opts: KernelOptions) -> bool:
    """Whether a plan runs the warpgroup-MMA path: ``opts.wgmma`` True (an error where it cannot, or with options
    of the other kernel), or None where configs.decode_wg_default says so and no option of the other kernel is
    given."""
    why = wg_blocker(group, head_dim, q_dtype, kv_dtype, window, arch, opts)
    others = other_path_options(opts)
    if opts.wgmma:
        if why:
            raise ValueError(f"KernelOptions.wgmma: {why}")
        if others:
            raise ValueError(f"KernelOptions.wgmma has its own launch; drop {', '.join(others)}")
        return True
    if opts.wg_heads is not None or opts.wg_stages is not None or opts.wg_warpgroups is not None:
        raise ValueError("KernelOptions.wg_heads, wg_stages and wg_warpgroups are options of the warpgroup-MMA path "
                         "(wgmma=True)")
    return opts.wgmma is None and why is None and not others and configs.decode_wg_default(group, head_dim)


class WgDecode:
    """One plan's warpgroup-MMA launch: the compiled kernel, its splits per batch and its prepared arguments."""

    def __init__(self, dev: rt.Device, group: int, kv_heads: int, head_dim: int, block_size: int, dtype: str,
                 opts: KernelOptions):
        heads = opts.wg_heads or configs.decode_wg_heads(group)
        if group % heads:
            raise ValueError(f"KernelOptions.wg_heads {heads} does not divide the {group} query heads per KV head")
        wgs = opts.wg_warpgroups or configs.decode_wg_warpgroups(group, head_dim)
        stages = opts.wg_stages or configs.decode_wg_stages(head_dim, heads, wgs)
        self.config = configs.DecodeWgConfig(dtype, head_dim, heads, stages, wgs)
        self.smem = self.config.smem
        if self.smem > dev.smem_optin:
            raise ValueError(f"wg_stages={stages} x {wgs} warpgroups needs {self.smem} bytes of shared memory, the "
                             f"device has {dev.smem_optin}")
        self._ld = rt.load(self.config, dev)
        self.group, self.kv_heads, self.head_dim, self.block_size = group, kv_heads, head_dim, block_size
        self.heads, self.stages, self.threads = heads, stages, self.config.threads
        self._slots = dev.sm_count * max(1, rt.occupancy(self._ld, "kvp_decode_wg", dev, self.threads, self.smem))
        self._opts = opts
        self._entries: dict[tuple, tuple] = {}
        self._tmaps: dict = {}

    def splits(self, batch: int, span: int) -> tuple[int, int]:
        """(splits, chunk): a wave of CTAs over (sequence, head group) pairs, chunks of whole 64-token steps."""
        pairs = batch * self.kv_heads * (self.group // self.heads)
        n = self._opts.num_splits or choose_splits(pairs, span, self._slots, max(self._opts.min_split_tokens, _TOK))
        chunk = -(-max(span, 1) // n)
        chunk = -(-chunk // _TOK) * _TOK
        return max(1, -(-max(span, 1) // chunk)), chunk

    def splits_for(self, batch: int, span: int) -> int:
        """The splits ``launch`` takes for ``batch`` (from its prepared launch: no planning on the hot path)."""
        return self._entry(batch, span)[0]

    def launch_for(self, batch: int, span: int) -> Launch:
        splits, chunk = self.splits(batch, span)
        return Launch(self.config, self.group // self.heads, 1, 1, self.stages, splits, chunk, self.smem)

    def _entry(self, batch: int, span: int):
        key = (batch, span)
        e = self._entries.get(key)
        if e is None:
            splits, chunk = self.splits(batch, span)
            pdl, launcher = bool(self._opts.pdl), self._opts.launcher
            main = rt.PreparedLaunch(self._ld, "kvp_decode_wg", _ARGS, self.threads, self.smem, pdl, launcher)
            merge = rt.PreparedLaunch(self._ld, "kvp_decode_wg_merge", _MERGE_ARGS, 256, 0, pdl, launcher)
            a = main.args
            a[6].value, a[7].value = self.group, self.group * self.kv_heads
            a[8].value, a[10].value = chunk, int(math.log2(self.block_size))
            grid = (splits, self.kv_heads * (self.group // self.heads), batch)
            e = (splits, main, merge, grid)
            if len(self._entries) > 512:
                self._entries.clear()
            self._entries[key] = e
        return e

    def launch(self, stream, q, k_cache, v_cache, block_table, seq_lens, out, cbase, vscale, span, workspace):
        """Launch on ``stream``; ``workspace``: float32 of at least batch x q heads x splits x (head_dim + 1)."""
        B = q.shape[0]
        splits, main, merge, grid = self._entry(B, span)
        a = main.args
        a[0].value, a[1].value, a[2].value = q.data_ptr(), block_table.data_ptr(), seq_lens.data_ptr()
        a[3].value, a[9].value = out.data_ptr(), block_table.shape[1]
        a[11].value, a[12].value = cbase, vscale
        self._set_tensor_maps(main, k_cache, v_cache)
        if splits > 1:
            n = B * self.group * self.kv_heads * splits
            op = workspace.data_ptr()
            a[4].value, a[5].value = op, op + 4 * n * self.head_dim
        else:
            a[4].value = a[5].value = 0
        main.launch(grid, stream)
        if splits > 1:
            rows = B * self.group * self.kv_heads
            m = merge.args
            m[0].value, m[1].value, m[2].value = a[4].value, a[5].value, out.data_ptr()
            m[3].value, m[4].value = rows, splits
            merge.launch((rows, 1, 1), stream)

    def _set_tensor_maps(self, main, k_cache, v_cache) -> None:
        """K and V as [KV heads][head_dim / 64 blocks][tokens][64 dims], boxes of a page run of min(block size, 64)
        rows of one block, 128-byte swizzle: a box lands as the kernel's [block][row][128 bytes]."""
        key = (k_cache.data_ptr(), v_cache.data_ptr(), k_cache.shape[0])
        if getattr(main, "tmap_key", None) == key:
            return
        maps = self._tmaps.get(key)
        if maps is None:
            rows, D, H = key[2] * self.block_size, self.head_dim, self.kv_heads
            dims, strides = (64, rows, D // 64, H), (H * D * 2, 128, D * 2)
            box = (64, min(self.block_size, _TOK), 1, 1)
            maps = tuple(rt.encode_tensor_map(p, dims, strides, box) for p in key[:2])
            if len(self._tmaps) > 16:
                self._tmaps.clear()
            self._tmaps[key] = maps
        for slot, tm in zip((13, 14), maps):
            ctypes.memmove(ctypes.addressof(main.args[slot]), tm, len(tm))
        main.tmap_key = key
