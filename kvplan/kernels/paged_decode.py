"""Paged GQA/MQA decode: ``paged_decode_plan(...)`` validates and plans once, ``plan.run(...)`` launches.

The one-call form ``paged_decode_attention(...)`` is in decode_call.py; the launch shape in decode_launch.py. Plans
that take Hopper's warpgroup MMAs (groups of 64+ with 16-bit caches on sm_90, or ``KernelOptions(wgmma=True)``) run
paged_decode_wg.cu through decode_wg.py; the rest paged_decode.cu.
"""

from __future__ import annotations

import math
import threading

from . import _runtime as rt
from . import limits
from .decode_wg import WgDecode, takes_wg
from ._checks import dtype_name, positive_float, positive_int, torch_dtype_arg, window_arg
from .decode_launch import Launch, choose_splits, lone_leaves_heads_in_m, pair_tier, plan_cta, resolve_options
from .options import KernelOptions

LOG2E = 1.4426950408889634
# kvp_decode's parameters, in order (paged_decode.cu)
_MAIN_ARGS = ("u64",) * 9 + ("i32",) * 10 + ("f32", "f32", "u64")
_MERGE_ARGS = ("u64", "u64", "u64", "i32", "i32")


class PagedDecodePlan:
    """A validated, planned paged decode for one model layer shape on one device.

    Build with :func:`paged_decode_plan`. ``run`` launches only: it checks shapes and dtypes against the
    plan (cheap identity checks), never the block ids or ``seq_lens`` (each sequence must fit
    ``max_blocks_per_seq * block_size`` tokens and its block ids must be valid: the caller's promise,
    as with FlashInfer's plan/run). Owns its workspace (split partials), so one plan serves one stream at
    a time; ``run`` is capturable in a CUDA graph.
    """

    def __init__(self, q_heads, kv_heads, head_dim, block_size, kv_dtype, q_dtype, max_batch, max_blocks_per_seq,
                 device, sliding_window=None, options=None):
        import torch

        rt.require_kernel()
        self.q_heads = positive_int("q_heads", q_heads)
        self.kv_heads = positive_int("kv_heads", kv_heads)
        self.head_dim = positive_int("head_dim", head_dim)
        self.block_size = positive_int("block_size", block_size)
        self.max_batch = positive_int("max_batch", max_batch)
        self.max_blocks_per_seq = positive_int("max_blocks_per_seq", max_blocks_per_seq)
        if self.q_heads % self.kv_heads:
            raise ValueError(f"q_heads {self.q_heads} is not a multiple of kv_heads {self.kv_heads}")
        self.group = self.q_heads // self.kv_heads
        if self.group > limits.MAX_GROUP:
            raise ValueError(f"{self.group} query heads per KV head; at most {limits.MAX_GROUP} are supported")
        if self.head_dim not in limits.HEAD_DIMS:
            raise ValueError(f"head_dim {self.head_dim} is not supported (supported: {limits.HEAD_DIMS})")
        if self.block_size not in limits.BLOCK_SIZES:
            raise ValueError(f"block_size {self.block_size} is not supported (supported: {limits.BLOCK_SIZES})")
        if self.max_batch > limits.MAX_GRID_YZ or self.kv_heads > limits.MAX_GRID_YZ:
            raise ValueError(f"max_batch and kv_heads must be <= {limits.MAX_GRID_YZ}")
        if self.max_blocks_per_seq * self.block_size >= 2**31 - 2**20:
            raise ValueError("max_blocks_per_seq x block_size addresses more than 2^31 token slots")
        self.kv_dtype = torch_dtype_arg(torch, "kv_dtype", kv_dtype,
                                        (torch.float16, torch.bfloat16, torch.float8_e4m3fn))
        self.q_dtype = torch_dtype_arg(torch, "q_dtype", q_dtype, (torch.float16, torch.bfloat16))
        if self.kv_dtype != torch.float8_e4m3fn and self.kv_dtype != self.q_dtype:
            raise ValueError(f"kv_dtype {dtype_name(self.kv_dtype)} must match q_dtype {dtype_name(self.q_dtype)} "
                             "(only float8_e4m3fn caches may differ from q)")
        self.window = window_arg(sliding_window)
        if options is not None and not isinstance(options, KernelOptions):
            raise ValueError(f"options must be a KernelOptions, got {type(options).__name__}")
        self.device_index = rt.device_index(device)
        self.device = torch.device("cuda", self.device_index)
        self._dev = rt.device_info(self.device_index)
        self.options = resolve_options(options or KernelOptions(), self._dev)
        heads = (self.group, self.kv_heads, self.head_dim, dtype_name(self.q_dtype), dtype_name(self.kv_dtype))
        self._wg = None  # the warpgroup-MMA launch (decode_wg.py), where the plan takes it
        if takes_wg(self.group, self.head_dim, heads[3], heads[4], self.window, self._dev.arch, self.options):
            self._wg = WgDecode(self._dev, self.group, self.kv_heads, self.head_dim, self.block_size, heads[3],
                                self.options)
        else:
            self._shapes = {tier: plan_cta(heads, self._dev, self.options, tier != "many") for tier in ("few", "many")}
            # lone pairs: their own launch where it differs (planned now: nothing compiles inside a graph capture)
            lone = lone_leaves_heads_in_m(self.group, self.head_dim, heads[4]) and self.options.heads_in_m is None
            self._shapes["lone"] = plan_cta(heads, self._dev, self.options, True, True) if lone else self._shapes["few"]
        self.span = self.max_blocks_per_seq * self.block_size
        if self.window is not None:
            self.span = min(self.span, self.window)
        self._launches: dict[tuple, tuple] = {}
        self._few_merge = True  # kvp_merge_few up to limits.MERGE_FEW_SPLITS splits (False: benchmarks' A/B)
        self._lock = threading.Lock()
        self._workspace = None
        self._counters = None
        self._scales = (None, 1.0, 1.0)
        self._cbase = (1.0 / math.sqrt(self.head_dim)) * LOG2E
        self._vscale = 1.0
        need = max(self._work_elems(b, self.span) for b in _batch_probe(self.max_batch))
        with torch.cuda.device(self.device_index):
            self._workspace = torch.empty(max(need, 1), dtype=torch.float32, device=self.device)

    @property
    def path(self) -> str:
        """Which kernel the plan runs, in words (verify's report names it)."""
        if self._wg:
            c = self._wg.config
            return (f"warpgroup MMAs, {c.heads} heads a CTA, {c.warpgroups} warpgroup"
                    f"{'s' if c.warpgroups > 1 else ''} (paged_decode_wg.cu)")
        return "mma.sync (paged_decode.cu)"

    # -- planning -----------------------------------------------------------------------------------------
    def launch_for(self, batch: int, span: int | None = None) -> Launch:
        """The launch ``run`` uses for ``batch`` sequences (span: longest attended range; default the plan's)."""
        span = self.span if span is None else span
        return self._wg.launch_for(batch, span) if self._wg else self._entry(batch, span)[0]

    def sorted_block_table(self, block_table, seq_lens, out=None):
        """``block_table`` with each sequence's full pages sorted by address inside each CTA's share of it
        (page_order.py): the same attention, read faster from scattered pages. Every layer of a decode step reads
        the same table, so sort once a step and pass the result to every layer's ``run``."""
        if self.window is not None:
            raise ValueError("sliding_window plans attend by position: their block tables cannot be sorted")
        from .page_order import sort_full_pages

        batch = getattr(block_table, "shape", (0,))[0]
        chunk = self.launch_for(batch).chunk if batch else self.block_size  # (an empty batch: nothing to sort)
        return sort_full_pages(block_table, seq_lens, self.block_size, max(1, chunk // self.block_size), out)

    def _work_elems(self, batch: int, span: int) -> int:
        splits = self._wg.splits(batch, span)[0] if self._wg else self._splits(batch, span)[1]
        return batch * self.q_heads * splits * (self.head_dim + 1) if splits > 1 else 0

    def _splits(self, batch: int, span: int) -> tuple[str, int, int]:
        """(pair tier, splits, chunk) for ``batch`` sequences whose longest attended range is ``span``."""
        tier = pair_tier(batch * self.kv_heads, self._dev.sm_count)
        shape = self._shapes[tier][0]
        if self.options.num_splits is None:
            splits = choose_splits(batch * (self.kv_heads // shape.kv_per_cta), span, shape.slots,
                                   self.options.min_split_tokens)
        else:
            splits = self.options.num_splits
        chunk = max(16, -(-max(span, 1) // splits))
        chunk = -(-chunk // 16) * 16
        return tier, max(1, -(-max(span, 1) // chunk)), chunk

    def _entry(self, batch: int, span: int):
        key = (batch, span)
        e = self._launches.get(key)
        if e is not None:
            return e
        tier, splits, chunk = self._splits(batch, span)
        shape, ld = self._shapes[tier]
        launch = Launch(shape.config, shape.head_tiles, shape.slices, shape.kv_per_cta, shape.stages, splits,
                        chunk, shape.smem)
        pdl = bool(self.options.pdl)
        main = rt.PreparedLaunch(ld, "kvp_decode", _MAIN_ARGS, launch.warps * 32, launch.smem, pdl,
                                 self.options.launcher)
        few_merge = self._few_merge and splits <= limits.MERGE_FEW_SPLITS
        merge = rt.PreparedLaunch(ld, "kvp_merge_few" if few_merge else "kvp_merge", _MERGE_ARGS, 256, 0, pdl,
                                  self.options.launcher)
        rows = batch * self.q_heads
        merge_grid = (-(-rows // (256 // (self.head_dim // 4))) if few_merge else rows, 1, 1)
        a = main.args
        a[9].value, a[10].value, a[11].value, a[12].value = (self.group, self.kv_heads,
                                                              launch.kv_per_cta, launch.head_tiles)
        a[13].value, a[14].value, a[15].value = launch.slices, launch.stages, launch.chunk
        a[17].value = int(math.log2(self.block_size))
        a[18].value = self.window or 0
        grid = (splits, self.kv_heads // launch.kv_per_cta, batch)
        e = (launch, main, merge, grid, merge_grid)
        if len(self._launches) > 512:
            self._launches.clear()
        self._launches[key] = e
        return e

    # -- running ------------------------------------------------------------------------------------------
    def run(self, q, k_cache, v_cache, block_table, seq_lens, out=None, scale=None, k_scale=1.0, v_scale=1.0,
            *, trace=None):
        """Launch on torch's current stream; returns ``out`` ([B, Hq, D], q's dtype; allocated when None).

        ``scale`` defaults to 1/sqrt(head_dim); ``k_scale``/``v_scale`` dequantize fp8 (x = stored * scale).
        ``trace``: int64 CUDA tensor of at least 4 x CTAs (``KernelOptions(trace=True)`` plans only; such a plan
        run without one writes no timeline).
        """
        B = self._check_run(q, k_cache, v_cache, block_table, seq_lens)
        if out is None:
            out = q.new_empty(q.shape)
        elif out.shape != q.shape or out.dtype != q.dtype or out.device != q.device or not out.is_contiguous():
            raise ValueError("out must be a contiguous tensor with q's shape, dtype and device")
        if B == 0:
            return out
        self._launch(q, k_cache, v_cache, block_table, seq_lens, out, scale, k_scale, v_scale, self.span, trace)
        return out

    def _check_run(self, q, k_cache, v_cache, block_table, seq_lens) -> int:
        try:
            B, Hq, D = q.shape
            ok_q = Hq == self.q_heads and D == self.head_dim and q.dtype == self.q_dtype
            kshape = k_cache.shape
        except (AttributeError, ValueError):
            raise ValueError("q must be a [B, q_heads, head_dim] tensor and k_cache a 4-D tensor") from None
        if not ok_q or B > self.max_batch:
            raise ValueError(f"q must be [B <= {self.max_batch}, {self.q_heads}, {self.head_dim}] "
                             f"{dtype_name(self.q_dtype)}, got {tuple(q.shape)} {dtype_name(q.dtype)}")
        if len(kshape) != 4 or kshape[1:] != (self.block_size, self.kv_heads, self.head_dim) \
                or k_cache.dtype != self.kv_dtype:
            raise ValueError(f"k_cache must be [num_blocks, {self.block_size}, {self.kv_heads}, {self.head_dim}] "
                             f"{dtype_name(self.kv_dtype)}, got {tuple(kshape)} {dtype_name(k_cache.dtype)}")
        if v_cache.shape != kshape or v_cache.dtype != self.kv_dtype:
            raise ValueError(f"v_cache must match k_cache ({tuple(kshape)} {dtype_name(self.kv_dtype)})")
        if block_table.dim() != 2 or block_table.shape[0] != B or block_table.dtype != _int32():
            raise ValueError(f"block_table must be [{B}, max_blocks] int32, got {tuple(block_table.shape)} "
                             f"{dtype_name(block_table.dtype)}")
        if seq_lens.shape != (B,) or seq_lens.dtype != _int32():
            raise ValueError(f"seq_lens must be [{B}] int32, got {tuple(seq_lens.shape)} {dtype_name(seq_lens.dtype)}")
        idx = self.device_index
        for name, t in (("q", q), ("k_cache", k_cache), ("v_cache", v_cache), ("block_table", block_table),
                        ("seq_lens", seq_lens)):
            if t.get_device() != idx:
                raise ValueError(f"{name} is on {t.device}, the plan on {self.device}")
            if not t.is_contiguous():
                raise ValueError(f"{name} must be contiguous (got strides {tuple(t.stride())})")
        return B

    def _set_scales(self, scale, k_scale, v_scale) -> None:
        if (scale, k_scale, v_scale) == self._scales:
            return
        sc = 1.0 / math.sqrt(self.head_dim) if scale is None else positive_float("scale", scale)
        ks, vs = positive_float("k_scale", k_scale), positive_float("v_scale", v_scale)
        self._cbase, self._vscale = sc * ks * LOG2E, vs
        self._scales = (scale, k_scale, v_scale)

    def _launch(self, q, k_cache, v_cache, block_table, seq_lens, out, scale, k_scale, v_scale, span, trace):
        import torch

        B = q.shape[0]
        ptrs = (q.data_ptr(), k_cache.data_ptr(), v_cache.data_ptr())
        if (ptrs[0] | ptrs[1] | ptrs[2]) & 15:
            raise ValueError("q, k_cache and v_cache data pointers must be 16-byte aligned")
        with self._lock:
            self._set_scales(scale, k_scale, v_scale)
            if self._wg:
                self._launch_wg(torch, q, k_cache, v_cache, block_table, seq_lens, out, span)
                return
            launch, main, merge, grid, merge_grid = self._entry(B, span)
            S = launch.splits
            a = main.args
            a[0].value, a[1].value, a[2].value = ptrs
            a[3].value, a[4].value, a[5].value = block_table.data_ptr(), seq_lens.data_ptr(), out.data_ptr()
            a[16].value = block_table.shape[1]
            a[19].value, a[20].value = self._cbase, self._vscale
            a[21].value = self._trace_ptr(trace, grid)
            a[8].value = 0
            if S > 1:
                n = B * self.q_heads * S
                if n * (self.head_dim + 1) > self._workspace.numel():  # a span beyond the plan's (one-call path)
                    self._workspace = torch.empty(n * (self.head_dim + 1), dtype=torch.float32, device=self.device)
                op = self._workspace.data_ptr()
                a[6].value, a[7].value = op, op + 4 * n * self.head_dim
                if self.options.fuse_merge:
                    a[8].value = self._counter_buffer(B * grid[1]).data_ptr()
            else:
                a[6].value = a[7].value = 0
            same = torch.cuda.current_device() == self.device_index
            if not same:
                with torch.cuda.device(self.device_index):
                    self._go(torch, main, merge, grid, merge_grid, S, B, out)
            else:
                self._go(torch, main, merge, grid, merge_grid, S, B, out)

    def _launch_wg(self, torch, q, k_cache, v_cache, block_table, seq_lens, out, span) -> None:
        splits = self._wg.splits_for(q.shape[0], span)
        n = q.shape[0] * self.q_heads * splits * (self.head_dim + 1)
        if splits > 1 and n > self._workspace.numel():  # a span beyond the plan's (one-call path)
            self._workspace = torch.empty(n, dtype=torch.float32, device=self.device)
        args = (q, k_cache, v_cache, block_table, seq_lens, out, self._cbase, self._vscale, span, self._workspace)
        if torch.cuda.current_device() != self.device_index:
            with torch.cuda.device(self.device_index):
                self._wg.launch(rt.current_stream_handle(torch, self.device_index), *args)
        else:
            self._wg.launch(rt.current_stream_handle(torch, self.device_index), *args)

    def _go(self, torch, main, merge, grid, merge_grid, S, B, out) -> None:
        stream = rt.current_stream_handle(torch, self.device_index)
        main.launch(grid, stream)
        if S > 1 and not self.options.fuse_merge:
            rows = B * self.q_heads
            m = merge.args
            m[0].value, m[1].value = main.args[6].value, main.args[7].value
            m[2].value, m[3].value, m[4].value = out.data_ptr(), rows, S
            merge.launch(merge_grid, stream)

    def _counter_buffer(self, n: int):
        """int32 zeros for the fused merge: each launch's last CTA per (sequence, kv-head group) re-arms its
        counter to 0, so launches on one stream may share it."""
        import torch

        if self._counters is None or self._counters.numel() < n:
            self._counters = torch.zeros(max(n, 256), dtype=torch.int32, device=self.device)
        return self._counters

    def _trace_ptr(self, trace, grid) -> int:
        """Timeline buffer (benchmarks): int64 [CTAs, 4] = start, first data, end (ns), SM id."""
        if trace is None:
            return 0
        import torch

        if not self.options.trace:
            raise ValueError("trace needs a plan built with KernelOptions(trace=True)")
        n = grid[0] * grid[1] * grid[2]
        if trace.dtype != torch.int64 or trace.numel() < 4 * n or not trace.is_contiguous() or not trace.is_cuda:
            raise ValueError(f"trace must be a contiguous int64 CUDA tensor of at least {4 * n} elements")
        return trace.data_ptr()


def paged_decode_plan(q_heads, kv_heads, head_dim, block_size, kv_dtype, q_dtype=None, max_batch=1,
                      max_blocks_per_seq=1, device=None, sliding_window=None, options=None) -> PagedDecodePlan:
    """Validate a layer shape and pick its launch once; ``plan.run(q, k_cache, v_cache, block_table, seq_lens)``.

    q_dtype defaults to kv_dtype for 16-bit caches and to bfloat16 for fp8 caches. ``options``: a
    :class:`KernelOptions` (default: per-device choices). Raises ValueError naming a bad argument and
    KernelUnavailableError when the kernel cannot run here.
    """
    import torch

    if q_dtype is None:
        q_dtype = torch.bfloat16 if kv_dtype in (torch.float8_e4m3fn, "float8_e4m3fn") else kv_dtype
    return PagedDecodePlan(q_heads, kv_heads, head_dim, block_size, kv_dtype, q_dtype, max_batch, max_blocks_per_seq,
                           device, sliding_window, options)


def _batch_probe(max_batch: int) -> list[int]:
    """Batch sizes whose split workspace bounds every batch up to max_batch (checked in tests)."""
    small = list(range(1, min(max_batch, 512) + 1))
    return small + [b for b in (max_batch,) if b > 512]


_I32 = []


def _int32():
    if not _I32:
        import torch

        _I32.append(torch.int32)
    return _I32[0]
