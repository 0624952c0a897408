"""The weight-streaming GEMV (gemv_stream.cu): dense decode matmuls of 1-8 tokens that overlap the kernel before.

    plan = gemv_stream_plan(n=4096, k=14336, dtype=torch.bfloat16, device=0)
    y = plan.run(x, w)            # x [B <= 8, k], w [n, k] -> y [B, n] = x @ w^T, fp32 accumulation
    plan = gemv_stream_plan(n, k, dtype=torch.float8_e4m3fn)   # W8A8: e4m3 x and w, k a multiple of 128
    y = plan.run(x_e4m3, w_e4m3, scale=s_x * s_w)              # y in bf16
    plan = gemv_stream_plan(n, k, torch.float8_e4m3fn, block_scaled=True)   # DeepSeek-V3's 128 x 128 blocks
    qx, sx = fp8_group_quant(x)                                # kvplan/kernels/fp8_quant.py: per token per 128
    y = plan.run(qx, w_e4m3, w_scales=sw, x_scales=sx)         # sw [ceil(n / 128), k / 128] float32

A persistent grid of one CTA per SM (under half of its shared memory: the next launch's CTA fits beside it; two
with shorter rings for tall weights such as gate_up, as measured best: gemv_stream_config.launch_shape); each
CTA streams an equal share of the weights and starts copying its first ``depth`` steps into shared memory before the
kernel before it in the stream has finished (programmatic dependent launch, sm_90), so that consecutive matmuls of
a decode step keep the memory system busy across kernel boundaries (see the .cu file for why). ``k`` must be a
multiple of 64; other shapes take skinny_gemm_plan or F.linear. The plan owns a small workspace (tiles cut between
CTAs): one stream at a time.

Two other orders, opt-in, which verify times beside the default per weight shape (kvplan/gpu/gemm.py):
``rotate=True`` (a CTA runs its last tile first and finishes its first tile alone) and ``own=True`` (each CTA owns
whole 16-row slices along all of k, one 3-D TMA box a step, nothing cut between CTAs, a box reaching past k read as
zeros; two CTAs per SM with rings of 6 where there are more slices than SMs: gemv_stream_config.own_launch). Bad
arguments raise ``ValueError`` naming the argument; no CUDA/NVRTC or a GPU other than sm_90 raises
``KernelUnavailableError``.

``gather="rows"`` / ``gather="k"`` (one token, ``experts`` and ``pairs`` given; in order only): an MoE layer's
experts [experts, n, k] through a 3-D tensor map, the token's experts found through ``ids`` at run time: the gate/up
stage as the pairs' matrices stacked, the down stage as their k laid end to end, each pair's sums times its routing
weight (``wts``). kvplan/kernels/moe_one_token.py runs both for an MoE layer.

The pure parts (the shape check, each CTA's share, which CTAs meet in a tile) are gemv_stream_config.py.
"""

from __future__ import annotations

import ctypes
import os
import threading

from .gemv_stream_config import (BLOCK_KERNEL, E4M3, L2_PROMOTION, L2_PROMOTIONS, MAX_BATCH, STEP_K, THREADS, ARCHS,
                                 DEPTH, DEPTHS, CELL_ROWS, TILE_ROWS, TRACE_STAMPS, GemvStreamConfig, check_gather,
                                 check_shape, launch_shape, own_launch, own_share, smem_bytes, steps_per_cta)

_ARGS = ("u64",) * 4 + ("i32",) * 4 + ("f32",)  # after the tensor map(s)
_BLOCK_ARGS = ("u64", "u64", "i32")  # block-scaled e4m3: w's scales, x's scales and their column stride
_GATHER_ARGS = ("u64", "u64", "i32", "i32", "u64")  # ids, wts, tiles / k steps a pair, floats between experts' scales
BLOCK = 128  # the block scales' side (rows and k of W, k of x)
KERNELS = {"bfloat16": "kvp_gemv_stream_bf16", "float16": "kvp_gemv_stream_f16", E4M3: "kvp_gemv_stream_e4m3"}


def gemv_stream_plan(n, k, dtype, max_batch=MAX_BATCH, device=None, **options) -> "GemvStreamPlan":
    return GemvStreamPlan(n, k, dtype, max_batch, device, **options)


class GemvStreamPlan:
    """y [B, n] = x [B, k] @ w [n, k]^T for 1 <= B <= max_batch (at most 8)."""

    def __init__(self, n, k, dtype, max_batch=MAX_BATCH, device=None, ctas_per_sm=None, depth=None,
                 mma_tiles=1, l2_promotion=L2_PROMOTION, launcher="driver", evict_first=True,
                 trace=False, rotate=False, own=False, release_store=True, block_scaled=False, gather=None,
                 experts=0, pairs=0, split3=False):
        import torch

        from . import _runtime as rt
        from ._checks import dtype_name

        name = dtype_name(dtype) if isinstance(dtype, torch.dtype) else str(dtype)
        check_shape(n, k, name, max_batch)
        if ctas_per_sm is not None and (isinstance(ctas_per_sm, bool) or ctas_per_sm not in ((1, 2, 3) if own
                                                                                          else (1, 2))):
            raise ValueError(f"ctas_per_sm must be 1 or 2 (rows owned: 1, 2 or 3), got {ctas_per_sm!r}")
        if depth is not None and depth not in DEPTHS:
            raise ValueError(f"depth must be one of {DEPTHS}, got {depth!r}")
        if mma_tiles not in (1, 2):
            raise ValueError(f"mma_tiles must be 1 or 2, got {mma_tiles!r}")
        if l2_promotion not in L2_PROMOTIONS:
            raise ValueError(f"l2_promotion must be one of {tuple(L2_PROMOTIONS)}, got {l2_promotion!r}")
        if not isinstance(evict_first, bool):
            raise ValueError(f"evict_first must be True or False, got {evict_first!r}")
        for flag, value in (("trace", trace), ("rotate", rotate), ("own", own)):
            if not isinstance(value, bool):
                raise ValueError(f"{flag} must be True or False, got {value!r}")
        if not isinstance(block_scaled, bool):
            raise ValueError(f"block_scaled must be True or False, got {block_scaled!r}")
        if block_scaled and (name != E4M3 or own):
            raise ValueError("block_scaled=True takes float8_e4m3fn weights and not own=True (a scale per 128 x 128 "
                             "block, gemv_stream.cu kvp_gemv_stream_e4m3b)")
        if own and (rotate or mma_tiles != 1):
            raise ValueError("own=True takes neither rotate=True nor mma_tiles=2 (its CTAs share no tile)")
        check_gather(gather, experts, pairs, n, max_batch, rotate or own or trace or mma_tiles != 1)
        self.gather, self.experts, self.pairs = gather, experts, pairs
        self.expert_rows, self.expert_units = n, (k // 2 if name == E4M3 else k)
        if gather == "rows":  # the virtual matrix the kernel streams (gemv_stream.cu KVP_GV_GATHER)
            n *= pairs
        elif gather == "k":
            k *= pairs
        units = k // 2 if name == E4M3 else k  # a row in 16-bit units (e4m3: k / 2, gemv_stream.cu)
        rt.require_kernel("the streaming GEMV kernel")
        self.device_index = rt.device_index(device)
        dev = rt.device_info(self.device_index)
        if dev.arch not in ARCHS:
            raise rt.KernelUnavailableError(f"the streaming GEMV needs a Hopper GPU (sm_90: TMA copies), this one is "
                                            f"{dev.arch}")
        if ctas_per_sm is None:  # the launch measured best for the shape; one CTA per SM when only depth is given
            ctas_per_sm, depth = ((1, depth) if depth is not None else own_launch(n, dev.sm_count) if own
                                  else launch_shape(n, units))
        if split3 and not own:
            raise ValueError("split3=True is a form of own=True (three slices a group run as two then one)")
        self.config = GemvStreamConfig(DEPTH if depth is None else depth, mma_tiles, evict_first, trace, rotate, own,
                                       bool(release_store), gather is not None, bool(split3))
        self._l2 = L2_PROMOTIONS[l2_promotion]
        ld = rt.load(self.config, dev)
        self.n, self.k, self.max_batch, self.dtype = n, k, max_batch, getattr(torch, name)
        self.units = units
        self.out_dtype = torch.bfloat16 if name == E4M3 else self.dtype
        self.ctas = dev.sm_count * ctas_per_sm
        self.rows = self.config.tile_rows
        if own:  # per_cta: 16-row slices a CTA
            self.ctas, self.per_cta = own_share(n, self.ctas)
        else:
            self.per_cta = steps_per_cta(n, units, self.ctas, self.rows)
        kernel = BLOCK_KERNEL if block_scaled else KERNELS[name]
        self.block_scaled = block_scaled
        self.registers = ld.regs.get(kernel)
        self.smem = smem_bytes(self.config.depth, mma_tiles, own)
        if os.environ.get("KVPLAN_GV_SPREAD", "1") != "0":
            # No more CTAs an SM than the launch is shaped for (each CTA has a fixed share), however much shared
            # memory a kernel before it leaves free there: a grid launched early (PDL) onto SMs part-filled by the
            # one before filled the free room, some SMs taking more CTAs than intended. H200, session 45
            # (benchmarks/probes/chain_pairs_probe.py): Qwen3-14B's linears in decode order 58 -> 92% of read at
            # batch 1; session 46 (benchmarks/probes/moe_one_token_probe.py): DeepSeek-V3's block-scaled experts at
            # one token 40.5 -> 33.4 us a layer, 16-bit MoE gather launches level. KVPLAN_GV_SPREAD=0 the old launch,
            # A/B only.
            self.smem = max(self.smem, min(dev.smem_optin - 1024, dev.smem_per_sm // ctas_per_sm - 1024 - 16))
        maps = ("tmap4",) if own else ("tmap",)
        self._launch = rt.PreparedLaunch(ld, kernel, maps + _ARGS + (_BLOCK_ARGS if block_scaled else ())
                                         + (_GATHER_ARGS if gather else ()) + (("u64",) if trace else ()), THREADS,
                                         self.smem, None, launcher)
        dev_ = torch.device("cuda", self.device_index)
        # a shared tile's cells by its first CTA (gv_slot): small and independent of n, so that verify's start-up
        # (a plan per weight shape) does not carve MBs out of a freed cached segment and pin it (NVML's allocation
        # check read -2.5 to -3.1% when the workspace was one cell per tile)
        cells = self.ctas * self.rows // CELL_ROWS
        self._ws = torch.zeros(cells * CELL_ROWS * MAX_BATCH, dtype=torch.float32, device=dev_)
        self._counters = torch.zeros(cells, dtype=torch.int32, device=dev_)
        self._lock = threading.Lock()
        self._rt = rt
        self._maps: dict = {}  # weight pointer -> its encoded tensor map (one per layer's matrix)
        self._map_of = None

    def run(self, x, w, out=None, trace=None, scale=1.0, w_scales=None, x_scales=None, ids=None, wts=None):
        """``trace``: with ``trace=True`` plans only, an int64 CUDA tensor of TRACE_STAMPS x ``ctas`` entries, zeroed
        before the launch: per CTA the globaltimer (ns) at the points gemv_stream.cu's KVP_GV_TRACE lists.
        ``scale``: e4m3 plans multiply the sums by it (s_x s_w) into a bf16 ``out``.
        ``w_scales``, ``x_scales``: block-scaled plans only (and required there): float32 [ceil(n / 128), k / 128]
        contiguous (gather plans: [experts, ...]), and [B, k / 128] with unit stride along B (fp8_group_quant's
        layout; gather "k" plans: the pairs' activations laid end to end, k = pairs x the expert's k).
        Gather plans (one token): w [experts, n, k], ``ids`` int32 [pairs] the token's experts, ``wts`` float32
        [pairs] their routing weights ("k" plans); x [1, k] ("rows") or [1, pairs x k] ("k"); out [1, pairs x n]
        ("rows": the pairs' outputs in order) or [1, n] ("k": their weighted sum)."""
        import torch

        from .skinny import dense_call

        b, out = dense_call(torch, self, x, None if self.gather else w, out)
        gather = self._gather_args(torch, w, ids, wts) if self.gather else ()
        extra = self._block_args(torch, b, w_scales, x_scales) + gather + self._trace_arg(torch, trace)
        with self._lock:
            a = self._launch.args
            self._set_map(w.data_ptr())
            for i, v in enumerate((x.data_ptr(), out.data_ptr(), self._ws.data_ptr(), self._counters.data_ptr(),
                                   self.n, self.units, b, self.per_cta, float(scale)) + extra):
                a[1 + i].value = v
            self._launch.launch((self.ctas, 1, 1), self._rt.current_stream_handle(torch, self.device_index))
        return out

    def _block_args(self, torch, b, w_scales, x_scales) -> tuple:
        """(w_scales, x_scales, x_scales' column stride) of a block-scaled plan after checking them; () otherwise."""
        if not self.block_scaled:
            if w_scales is not None or x_scales is not None:
                raise ValueError("w_scales and x_scales need a plan made with block_scaled=True")
            return ()
        groups = self.k // BLOCK
        w_shape = (-(-self.n // BLOCK), groups)
        if self.gather:  # each expert's own blocks
            w_shape = (self.experts, -(-self.expert_rows // BLOCK), self.expert_units * 2 // BLOCK)
        for arg, t, shape in (("w_scales", w_scales, w_shape), ("x_scales", x_scales, (b, groups))):
            if (not isinstance(t, torch.Tensor) or t.dtype != torch.float32 or tuple(t.shape) != shape
                    or t.device != torch.device("cuda", self.device_index)):
                raise ValueError(f"{arg} must be a float32 tensor of shape {shape} on cuda:{self.device_index}")
        if not w_scales.is_contiguous():
            raise ValueError("w_scales must be contiguous")
        if x_scales.stride(0) != 1 and b > 1:
            raise ValueError("x_scales must have unit stride along its rows (fp8_group_quant's layout)")
        return w_scales.data_ptr(), x_scales.data_ptr(), x_scales.stride(1)

    def _gather_args(self, torch, w, ids, wts) -> tuple:
        """(ids, wts, tiles a pair, k steps a pair, floats between experts' block scales) after checking w, ids and
        wts; ValueError naming the argument otherwise."""
        from .skinny import _check_tensor

        dev = self.device_index
        cols = self.expert_units * (2 if self.dtype == torch.float8_e4m3fn else 1)
        _check_tensor(torch, "w", w, (self.experts, self.expert_rows, cols), self.dtype, dev)
        _check_tensor(torch, "ids", ids, (self.pairs,), torch.int32, dev)
        if self.gather == "k":
            _check_tensor(torch, "wts", wts, (self.pairs,), torch.float32, dev)
        elif wts is not None:
            raise ValueError("wts is for gather='k' plans (the down stage weighs the pairs' sums)")
        blocks = -(-self.expert_rows // BLOCK) * (cols // BLOCK) if self.block_scaled else 0
        return (ids.data_ptr(), 0 if wts is None else wts.data_ptr(),
                self.expert_rows // TILE_ROWS if self.gather == "rows" else 0,
                self.expert_units // STEP_K if self.gather == "k" else 0, blocks)

    def _trace_arg(self, torch, trace) -> tuple:
        if not self.config.trace:
            if trace is not None:
                raise ValueError("trace needs a plan made with trace=True")
            return ()
        if (not isinstance(trace, torch.Tensor) or trace.dtype != torch.int64 or not trace.is_cuda
                or not trace.is_contiguous() or trace.numel() < TRACE_STAMPS * self.ctas):
            raise ValueError(f"trace must be a contiguous int64 CUDA tensor of at least {TRACE_STAMPS * self.ctas} "
                             "entries")
        return (trace.data_ptr(),)

    def _set_map(self, ptr: int) -> None:
        """W as a 2-D tensor map [n rows, k] with boxes of 64 rows x 64 k (128-byte swizzle), encoded once per
        weight tensor (a model's layers each have their own) and copied into the launch's argument."""
        if self._map_of == ptr:
            return
        tm = self._maps.get(ptr)
        if tm is None:
            if len(self._maps) >= 4096:
                self._maps.clear()
            if self.config.own:
                tm = self._own_maps(ptr)
            elif self.gather:  # {k, row, expert}: a box is 64 rows x 64 k of one expert's matrix
                u, r = self.expert_units, self.expert_rows
                tm = self._rt.encode_tensor_map(ptr, (u, r, self.experts), (u * 2, r * u * 2), (STEP_K, self.rows, 1),
                                                l2_promotion=self._l2)
            else:
                tm = self._rt.encode_tensor_map(ptr, (self.units, self.n), (self.units * 2,), (STEP_K, self.rows),
                                                l2_promotion=self._l2)
            self._maps[ptr] = tm
        ctypes.memmove(ctypes.addressof(self._launch.args[0]), tm, len(tm))
        self._map_of = ptr

    def _own_maps(self, ptr: int) -> bytes:
        """The row-owned form's four views of W as {64 k, row, k step} (a 3-D view, so that one box holds a group's
        slices at several k steps), boxes of 16 h rows x q k steps for groups of h = 1..4 slices (gv_group)."""
        return b"".join(self._rt.encode_tensor_map(ptr, (STEP_K, self.n, self.units // STEP_K),
                                                   (self.units * 2, STEP_K * 2),
                                                   (STEP_K, CELL_ROWS * h, 4 // h if h <= 2 else 1),
                                                   l2_promotion=self._l2) for h in (1, 2, 3, 4))
