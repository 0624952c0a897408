"""Skinny GEMM and MoE pairs for decode (skinny_gemm.cu): plan once, then ``run`` only launches.

    plan = skinny_gemm_plan(n=4096, k=14336, dtype=torch.bfloat16, max_batch=8, device=0)
    y = plan.run(x, w)                       # x [B <= max_batch, k], w [n, k] -> y [B, n] = x @ w^T
    fp8 = skinny_gemm_plan(n=2112, k=7168, dtype=torch.bfloat16, max_batch=8, device=0, weight_format="fp8")
    y = fp8.run(x, (q, scales))              # q [n, k] float8_e4m3fn, scales [ceil(n/128), k/128] fp32: x @ W^T,
    #   W[r, c] = q[r, c] * scales[r // 128, c // 128] (DeepSeek-V3/R1's weight_block_size [128, 128]); bf16 x only

    moe = moe_pairs_plan(experts=64, hidden=2048, intermediate=1408, top_k=6, max_tokens=16,
                         dtype=torch.bfloat16, weight_format="bf16", activation="silu", device=0)
    out = moe.run(x, weights, ids, w13, w2)  # x [T, hidden], weights [T, top_k] fp32, ids [T, top_k] int
    #   T <= max_tokens: one CTA row per (token, expert) pair slot, the first slot of an expert runs all of its
    #   pairs; T > max_tokens: the pairs sorted by expert, each expert's CTAs walk its pairs 64 at a time
    #   (expert_rows, the default: each warp a row tile over the whole k, 32 pairs a pass, mxfp4 64)
    #   w13 [E, 2 * intermediate, hidden] (gate rows, then up rows), w2 [E, hidden, intermediate]; or, with
    #   weight_format="mxfp4", w13 = (blocks [E, 2I, hidden/2] u8, scales [E, 2I, hidden/32] u8), w2 likewise;
    #   or, with weight_format="fp8" (bf16 x; hidden and intermediate multiples of 128), w13 = (q [E, 2I, hidden]
    #   float8_e4m3fn, scales [E, 2I/128, hidden/128] fp32: one per 128 x 128 block, the up rows' blocks after the
    #   gate rows'), w2 = (q [E, hidden, I], scales [E, hidden/128, I/128])
    #   out[t] = sum_j weights[t, j] * w2[e] @ (act(gate_e @ x[t]) * (up_e @ x[t])),  e = ids[t, j]
    #   (gated=False, activation="relu2": w13 [E, intermediate, hidden], act(w13[e] @ x[t]); Nemotron-H)
    out = moe.run(x, weights, ids, w13, w2, shared=s, shared_gate=g)
    #   plus s[t] (a shared expert's output [T, hidden]) times sigmoid(g[t]) (g [T, 1] or [T]; None: times 1)

Tuning options of both plans (benchmarks and tests; None, the default, is what verify runs): ``unroll`` (weight
chunks per lane per step: 1, 2, 4, 8), ``min_blocks`` (the launch bound's CTAs per SM), ``prefetch`` (L2 prefetch
distance in steps), each a separate cubin (skinny_config.variant), and ``ksplit_rule`` ("wave" or "fill", see
skinny_config.choose_ksplit).

The fp8 kernels apply a block's scale in bf16 (rounded to 8 significant bits, as is each dequantised weight): about
2^-9 relative per weight, exact for power-of-two scales; activations, MMA products and sums stay bf16 x bf16 in fp32.

Both read each weight byte once (MoE: only the routed experts', each distinct expert once however many tokens
chose it) and launch on torch's current stream with arguments packed once, so they capture in CUDA graphs.
A plan owns its scratch (split-k workspace, MoE intermediates): one stream at a time. Bad arguments raise
``ValueError`` naming the argument; no CUDA/NVRTC raises ``KernelUnavailableError``.
"""

from __future__ import annotations

import dataclasses
import threading

from . import _runtime as rt
from . import skinny_config as sc
from ._checks import dtype_name

_GEMM_ARGS = ("u64",) * 10 + ("i32",) * 8 + ("u64",) * 2 + ("i32",)
_COMBINE_ARGS = ("u64", "u64", "i32", "i32", "i32", "u64", "u64", "u64")
_MODE_PLAIN = 0


def _forced(ksplit) -> int | None:
    """A fixed k split (tests, benchmarks) or None for the plan's own choice."""
    if ksplit is None:
        return None
    if isinstance(ksplit, bool) or not isinstance(ksplit, int) or not 1 <= ksplit <= sc.MAX_KSPLIT:
        raise ValueError(f"ksplit must be an int in 1..{sc.MAX_KSPLIT} or None, got {ksplit!r}")
    return ksplit


def _slots(ld, name: str, dev, threads: int = sc.THREADS) -> int:
    return dev.sm_count * rt.occupancy(ld, name, dev, threads, 0)


class _Gemm:
    """One launch shape of the kernel: rows, k, gated or plain, weight format; args packed per column tile."""

    def __init__(self, ld, dev, dtype: str, weight_format: str, rows: int, k: int, gated: bool, launcher: str,
                 config: sc.SkinnyConfig, rule: str):
        self.ld, self.dtype, self.fmt, self.rows, self.k, self.gated = ld, dtype, weight_format, rows, k, gated
        self.tiles, self.rule, self.warps = sc.row_tiles(rows, gated), rule, config.warps
        self.launches = {}
        threads = config.threads  # pair slots; the by-expert launches below run from eight-warp cubins only
        for columns in (8, 16):
            name = sc.kernel_name(dtype, weight_format, columns)
            self.launches[columns] = (rt.PreparedLaunch(ld, name, _GEMM_ARGS, threads, 0, None, launcher),
                                      _slots(ld, name, dev, threads),
                                      sc.k_steps(k, weight_format, columns, config.unroll_for(weight_format)))
        self.by_expert = rt.PreparedLaunch(ld, sc.kernel_name(dtype, weight_format, 16, True), _GEMM_ARGS,
                                           sc.THREADS, 0, None, launcher)
        self.by_expert_rows = rt.PreparedLaunch(ld, sc.kernel_name(dtype, weight_format, 16, True, rows=True),
                                                _GEMM_ARGS, sc.THREADS, sc.row_ring_bytes(config.row_stages), None,
                                                launcher)

    def ksplit(self, columns: int, slots_y: int) -> int:
        _, slots, steps = self.launches[8 if columns <= 8 else 16]
        return sc.choose_ksplit(self.tiles * slots_y, steps, slots, self.rule, self.warps)

    def launch(self, stream: int, columns: int, grid_y: int, ksplit: int, w, s, x, y, ids, wts, ws, counters,
               w_stride: int, s_stride: int, n: int, ncols: int, div: int, mode: int, out_f32: int, experts: int,
               order: int = 0, offs: int = 0, rows: bool = False, hot: int = 0):
        """The row-tile kernel (offs and rows) takes ``ksplit`` as CTA rows per hot expert: its grid is one CTA row
        per expert plus ksplit - 1 more for each of the ``hot`` last ones (grid_y = experts)."""
        grid = (self.tiles, grid_y, ksplit)
        if offs and rows:  # a row tile per warp
            launch = self.by_expert_rows
            grid = (-(-self.tiles // sc.WARPS), grid_y + hot * (ksplit - 1), 1)
        else:
            launch, hot = self.by_expert if offs else self.launches[8 if columns <= 8 else 16][0], 0
        a = launch.args
        for i, v in enumerate((w, s, x, y, ids, wts, ws, counters, w_stride, s_stride)):
            a[i].value = v
        for i, v in enumerate((n, self.k, ncols, div, mode, out_f32, ksplit, experts, order, offs, hot)):
            a[10 + i].value = v
        launch.launch(grid, stream)


def _device_setup(device, config):
    import torch

    idx = rt.device_index(device)
    dev = rt.device_info(idx)
    return torch, idx, dev, rt.load(config, dev)


def _check_tensor(torch, name, t, shape, dtype, device_index):
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(t.shape)}")
    if t.dtype != dtype:
        raise ValueError(f"{name} must be {dtype_name(dtype)}, got {dtype_name(t.dtype)}")
    if not t.is_cuda or t.get_device() != device_index:
        raise ValueError(f"{name} must be on cuda:{device_index}, got {t.device}")
    if not t.is_contiguous() or t.data_ptr() % 16:
        raise ValueError(f"{name} must be contiguous and 16-byte aligned")


def dense_call(torch, plan, x, w, out):
    """(batch, out) for ``plan.run(x, w, out)`` of a dense plan (n, k, max_batch, dtype, device_index): x [B, k] with
    1 <= B <= max_batch, w [n, k] (None: checked by the caller), out [B, n] or None (allocated); ValueError naming
    the argument otherwise."""
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise ValueError(f"x must be a 2-D torch.Tensor [batch, {plan.k}]")
    b = x.shape[0]
    if not 1 <= b <= plan.max_batch:
        raise ValueError(f"x has {b} rows; this plan takes 1..{plan.max_batch}")
    _check_tensor(torch, "x", x, (b, plan.k), plan.dtype, plan.device_index)
    if w is not None:
        _check_tensor(torch, "w", w, (plan.n, plan.k), plan.dtype, plan.device_index)
    out_dtype = getattr(plan, "out_dtype", plan.dtype)  # e4m3 GEMV plans write bf16
    if out is None:
        return b, x.new_empty(b, plan.n, dtype=out_dtype)
    _check_tensor(torch, "out", out, (b, plan.n), out_dtype, plan.device_index)
    return b, out


def _fp8_weights(torch, name, pair, lead, rows, cols, device_index):
    """(q, scales) of fp8 weights after checking them: q [*lead, rows, cols] float8_e4m3fn, scales [*lead,
    ceil(rows / 128), cols / 128] float32, contiguous, on cuda:device_index; ValueError naming the argument (shapes
    and dtypes of both parts first, then where they are)."""
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
        raise ValueError(f"{name} must be (values, scales) for fp8 weights: float8_e4m3fn values and float32 scales "
                         f"per {sc.FP8_BLOCK} x {sc.FP8_BLOCK} block")
    q, s = pair
    shapes = (*lead, rows, cols), (*lead, -(-rows // sc.FP8_BLOCK), cols // sc.FP8_BLOCK)
    for part, t, shape, dt in (("values", q, shapes[0], torch.float8_e4m3fn), ("scales", s, shapes[1], torch.float32)):
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape or t.dtype != dt:
            got = f"{dtype_name(t.dtype)} {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} {part} must be a {dtype_name(dt)} tensor of shape {shape}, got {got}")
    _check_tensor(torch, f"{name} values", q, shapes[0], torch.float8_e4m3fn, device_index)
    if not s.is_contiguous() or not s.is_cuda or s.get_device() != device_index:
        raise ValueError(f"{name} scales must be contiguous and on cuda:{device_index}, got {s.device}")
    return q, s


class SkinnyGemmPlan:
    """y [B, n] = x [B, k] @ w [n, k]^T for 1 <= B <= max_batch (at most 16), fp32 accumulation; w of the plan's
    dtype, or (``weight_format="fp8"``) block-scaled e4m3 weights (values, scales)."""

    def __init__(self, n, k, dtype, max_batch=8, device=None, launcher="driver", ksplit=None, unroll=None,
                 min_blocks=None, prefetch=None, ksplit_rule=None, weight_format=None):
        import torch

        name = dtype_name(dtype) if isinstance(dtype, torch.dtype) else str(dtype)
        sc.check_dense(n, k, name, max_batch, weight_format)
        _forced(ksplit)
        fmt = "fp8" if weight_format == "fp8" else ("bf16" if name == "bfloat16" else "fp16")
        self.weight_format = fmt
        self.config = sc.variant(fmt, unroll, min_blocks, prefetch)
        rule = sc.check_ksplit_rule(ksplit_rule)
        rt.require_kernel("the skinny GEMM kernel")
        torch, self.device_index, dev, ld = _device_setup(device, self.config)
        self.n, self.k, self.max_batch, self.dtype = n, k, max_batch, getattr(torch, name)
        self._gemm = _Gemm(ld, dev, name, fmt, n, k, False, launcher, self.config, rule)
        self.ksplits = {b: _forced(ksplit) or self._gemm.ksplit(b, 1) for b in range(1, max_batch + 1)}
        device_ = torch.device("cuda", self.device_index)
        cells = self._gemm.tiles if max(self.ksplits.values()) > 1 else 1
        self._ws = torch.zeros(cells * sc.WS_CELL, dtype=torch.float32, device=device_)
        self._counters = torch.zeros(cells, dtype=torch.int32, device=device_)
        self._lock = threading.Lock()

    def run(self, x, w, out=None):
        """y = x @ w^T into ``out`` (None: a new tensor); fp8 plans take w = (values [n, k] float8_e4m3fn, scales
        [ceil(n / 128), k / 128] float32)."""
        import torch

        fp8 = self.weight_format == "fp8"
        if fp8:
            w, scales = _fp8_weights(torch, "w", w, (), self.n, self.k, self.device_index)
        b, out = dense_call(torch, self, x, None if fp8 else w, out)
        with self._lock:
            self._gemm.launch(rt.current_stream_handle(torch, self.device_index), b, 1, self.ksplits[b],
                              w.data_ptr(), scales.data_ptr() if fp8 else 0, x.data_ptr(), out.data_ptr(), 0, 0,
                              self._ws.data_ptr(), self._counters.data_ptr(), 0, 0, self.n, b, 1, _MODE_PLAIN, 0, 1)
        return out


class MoEPairsPlan:
    """The routed experts of one MoE layer: pair slots up to ``max_tokens`` tokens, by expert above (see the module
    docstring)."""

    def __init__(self, experts, hidden, intermediate, top_k, max_tokens=16, dtype=None, weight_format="bf16",
                 activation="silu", device=None, launcher="driver", ksplit=None, unroll=None, min_blocks=None,
                 prefetch=None, ksplit_rule=None, expert_tiles=None, expert_rows=None, joined=0, row_stages=None,
                 gated=True):
        import torch

        dtype = torch.bfloat16 if dtype is None else dtype
        name = dtype_name(dtype) if isinstance(dtype, torch.dtype) else str(dtype)
        sc.check_moe(experts, hidden, intermediate, top_k, max_tokens, name, weight_format, activation, gated)
        self.gated = bool(gated)
        _forced(ksplit)
        if isinstance(joined, bool) or not isinstance(joined, int) or not 0 <= joined <= min(top_k, experts - 1):
            raise ValueError(f"joined must be an int in 0..{min(top_k, experts - 1)} (the last experts every token "
                             f"routes to), got {joined!r}")
        self.joined = joined
        # above max_tokens, experts take a row tile per warp by default (no k split: skinny_by_expert_rows; H200,
        # benchmarks/RESULTS.md: 16-bit session 10, ahead of grouped GEMMs up to ~10 pairs per expert; fp8 session 42,
        # DeepSeek-V3's experts at tp 8 2.3-2.6x faster than the k-split kernel at 32-256 tokens, which stays for
        # expert_rows=False; mxfp4 session 64, gpt-oss-20b's experts on an H100: benchmarks/RESULTS.md)
        self.expert_rows = True if expert_rows is None else bool(expert_rows)
        self.passes_per_cta = sc.ROW_PASSES_PER_CTA  # a joined expert's passes a CTA row (benchmarks may set it)
        self.config = sc.variant(weight_format, unroll, min_blocks, prefetch, expert_tiles, row_stages)
        rule = sc.check_ksplit_rule(ksplit_rule)
        rt.require_kernel("the MoE pairs kernel")
        torch, self.device_index, dev, ld = _device_setup(device, self.config)
        self.experts, self.hidden, self.intermediate, self.top_k = experts, hidden, intermediate, top_k
        self.max_tokens, self.dtype, self.weight_format = max_tokens, getattr(torch, name), weight_format
        self.mode = (sc.ACTIVATIONS if gated else sc.PLAIN_ACTIVATIONS)[activation]
        fmt = weight_format if weight_format in sc.QUANTISED else ("bf16" if name == "bfloat16" else "fp16")
        self._up = _Gemm(ld, dev, name, fmt, intermediate, hidden, self.gated, launcher, self.config, rule)
        self._down = _Gemm(ld, dev, name, fmt, hidden, intermediate, False, launcher, self.config, rule)
        # the pair-slot down launch: fewer warps a CTA where its k is short (skinny_config.pair_warps)
        few = dataclasses.replace(self.config, warps=sc.pair_warps(intermediate, fmt, self.config.unroll_for(fmt)))
        self._down_pairs = self._down if few == self.config else _Gemm(rt.load(few, dev), dev, name, fmt, hidden,
                                                                        intermediate, False, launcher, few, rule)
        self._combine = rt.PreparedLaunch(ld, sc.combine_name(name), _COMBINE_ARGS, 256, 0, None, launcher)
        # split k only to fill the GPU, assuming every pair has its own expert (the most CTAs routing can give)
        self.ksplits = {}
        for t in range(1, max_tokens + 1):
            distinct = min(t * top_k, experts)
            self.ksplits[t] = (_forced(ksplit) or self._up.ksplit(t, distinct),
                               _forced(ksplit) or self._down_pairs.ksplit(t, distinct))
        pairs = max_tokens * top_k
        dev_ = torch.device("cuda", self.device_index)
        split = max(max(v) for v in self.ksplits.values()) > 1
        cells = pairs * max(self._up.tiles, self._down.tiles) if split else 1
        self._ws = torch.zeros(cells * sc.WS_CELL, dtype=torch.float32, device=dev_)
        self._counters = torch.zeros(cells, dtype=torch.int32, device=dev_)
        self._h = torch.empty(pairs, intermediate, dtype=self.dtype, device=dev_)
        self._y = torch.empty(pairs, hidden, dtype=torch.float32, device=dev_)
        self._lock = threading.Lock()

    def _weights(self, torch, w13, w2):
        """(w13 ptr, w13 scales ptr, w2 ptr, w2 scales ptr, strides) after checking shapes and dtypes."""
        e, h, i = self.experts, self.hidden, self.intermediate
        if self.weight_format == "fp8":
            rows = 2 * i if self.gated else i
            q13, s13 = _fp8_weights(torch, "w13", w13, (e,), rows, h, self.device_index)
            q2, s2 = _fp8_weights(torch, "w2", w2, (e,), h, i, self.device_index)
            return (q13.data_ptr(), s13.data_ptr(), q2.data_ptr(), s2.data_ptr(), rows * h, s13[0].numel() * 4,
                    h * i, s2[0].numel() * 4)
        if self.weight_format != "mxfp4":
            rows = 2 * i if self.gated else i
            _check_tensor(torch, "w13", w13, (e, rows, h), self.dtype, self.device_index)
            _check_tensor(torch, "w2", w2, (e, h, i), self.dtype, self.device_index)
            el = w13.element_size()
            return (w13.data_ptr(), 0, w2.data_ptr(), 0, rows * h * el, 0, h * i * el, 0)
        for name, pair in (("w13", w13), ("w2", w2)):
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise ValueError(f"{name} must be (blocks, scales) for mxfp4 experts")
        (b13, s13), (b2, s2) = w13, w2
        u8 = torch.uint8
        _check_tensor(torch, "w13 blocks", b13, (e, 2 * i, h // 2), u8, self.device_index)
        _check_tensor(torch, "w2 blocks", b2, (e, h, i // 2), u8, self.device_index)
        for name, t, shape in (("w13 scales", s13, (e, 2 * i, h // 32)), ("w2 scales", s2, (e, h, i // 32))):
            if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape or t.dtype != u8 or not t.is_contiguous() \
                    or not t.is_cuda or t.get_device() != self.device_index:
                raise ValueError(f"{name} must be a contiguous uint8 tensor of shape {shape} on cuda:"
                                 f"{self.device_index}")
        return (b13.data_ptr(), s13.data_ptr(), b2.data_ptr(), s2.data_ptr(), 2 * i * h // 2, 2 * i * h // 32,
                h * i // 2, h * i // 32)

    def run(self, x, weights, ids, w13, w2, out=None, shared=None, shared_gate=None):
        import torch

        if not isinstance(x, torch.Tensor) or x.dim() != 2:
            raise ValueError(f"x must be a 2-D torch.Tensor [tokens, {self.hidden}]")
        t = x.shape[0]
        if t < 1:
            raise ValueError("x has no tokens")
        _check_tensor(torch, "x", x, (t, self.hidden), self.dtype, self.device_index)
        if not isinstance(ids, torch.Tensor) or tuple(ids.shape) != (t, self.top_k) or \
                ids.dtype not in (torch.int32, torch.int64) or not ids.is_cuda:
            raise ValueError(f"ids must be an int32 or int64 CUDA tensor of shape ({t}, {self.top_k})")
        if not isinstance(weights, torch.Tensor) or tuple(weights.shape) != (t, self.top_k) or not weights.is_cuda:
            raise ValueError(f"weights must be a CUDA tensor of shape ({t}, {self.top_k})")
        ptrs = self._weights(torch, w13, w2)
        if out is None:
            out = x.new_empty(t, self.hidden)
        else:
            _check_tensor(torch, "out", out, (t, self.hidden), self.dtype, self.device_index)
        extra = self._shared(torch, t, shared, shared_gate)
        if t > self.max_tokens:
            for c0 in range(0, t, sc.EXPERT_CHUNK_TOKENS):
                c1 = min(t, c0 + sc.EXPERT_CHUNK_TOKENS)
                part = [p[c0:c1] if p is not None else None for p in extra[:2]] + [extra[2]]
                self._by_expert(torch, x[c0:c1], weights[c0:c1], ids[c0:c1], ptrs, out[c0:c1], part)
            return out
        ids32 = ids.to(torch.int32).contiguous()
        wts = weights.to(torch.float32).contiguous()
        pairs = t * self.top_k
        ks_up, ks_down = self.ksplits[t]
        w13p, s13p, w2p, s2p, w13s, s13s, w2s, s2s = ptrs
        with self._lock:
            stream = rt.current_stream_handle(torch, self.device_index)
            ws, cnt = self._ws.data_ptr(), self._counters.data_ptr()
            self._up.launch(stream, t, pairs, ks_up, w13p, s13p, x.data_ptr(), self._h.data_ptr(), ids32.data_ptr(),
                            0, ws, cnt, w13s, s13s, self.intermediate, pairs, self.top_k, self.mode, 0, self.experts)
            self._down_pairs.launch(stream, t, pairs, ks_down, w2p, s2p, self._h.data_ptr(), self._y.data_ptr(),
                              ids32.data_ptr(), wts.data_ptr(), ws, cnt, w2s, s2s, self.hidden, pairs, 1,
                              _MODE_PLAIN, 1, self.experts)
            self._combine_into(stream, self._y, out, t, extra)
        return out

    def _shared(self, torch, t: int, shared, gate) -> tuple:
        """(shared, gate, gate row stride) after checking them; Nones for none."""
        if shared is None:
            if gate is not None:
                raise ValueError("shared_gate needs shared")
            return None, None, 0
        _check_tensor(torch, "shared", shared, (t, self.hidden), self.dtype, self.device_index)
        if gate is None:
            return shared, None, 0
        if not (isinstance(gate, torch.Tensor) and gate.dtype == self.dtype and gate.is_cuda and gate.shape[0] == t
                and gate.numel() == t and gate.get_device() == self.device_index):
            raise ValueError(f"shared_gate must be a CUDA {self.dtype} tensor of {t} values ([{t}] or [{t}, 1])")
        return shared, gate, gate.stride(0)

    def _combine_into(self, stream, y, out, t: int, extra=(None, None, 0)) -> None:
        a = self._combine.args
        a[0].value, a[1].value = y.data_ptr(), out.data_ptr()
        a[2].value, a[3].value, a[4].value = t, self.top_k, self.hidden
        shared, gate, gate_row = extra
        a[5].value = 0 if shared is None else shared.data_ptr()
        a[6].value = 0 if gate is None else gate.data_ptr()
        a[7].value = gate_row
        self._combine.launch((min(-(-t * self.hidden // (4 * 256)), 1024), 1, 1), stream)  # 4 columns a thread

    def _by_expert(self, torch, x, weights, ids, ptrs, out, extra) -> None:
        """More tokens than max_tokens: the pairs sorted by expert (torch, no host sync: graph-safe), one CTA row
        per expert walking its pairs a pass at a time (row tiles: row_pass pairs; k split: 64), each weight chunk
        unpacked once per pass, so each expert's weights stream from HBM once per pass. Ids outside 0..experts-1
        sort last and are never run (their outputs are undefined)."""
        t, e = x.shape[0], self.experts
        pairs = t * self.top_k
        order, offs = pairs_by_expert(torch, ids, e)
        wts = weights.to(torch.float32).contiguous()
        h = torch.empty(pairs, self.intermediate, dtype=self.dtype, device=x.device)
        y = torch.empty(pairs, self.hidden, dtype=torch.float32, device=x.device)
        w13p, s13p, w2p, s2p, w13s, s13s, w2s, s2s = ptrs
        # row tiles: a joined expert's passes of row_pass pairs (it sees all t tokens) dealt over CTA rows, at most
        # passes_per_cta each; every other expert is one CTA row
        z = -(-t // (sc.row_pass(self.weight_format) * self.passes_per_cta)) if self.expert_rows and self.joined \
            else 1
        with self._lock:
            stream = rt.current_stream_handle(torch, self.device_index)
            ws, cnt = self._ws.data_ptr(), self._counters.data_ptr()
            self._up.launch(stream, 16, e, z, w13p, s13p, x.data_ptr(), h.data_ptr(), 0, 0, ws, cnt, w13s, s13s,
                            self.intermediate, pairs, self.top_k, self.mode, 0, e, order.data_ptr(), offs.data_ptr(),
                            self.expert_rows, self.joined)
            self._down.launch(stream, 16, e, z, w2p, s2p, h.data_ptr(), y.data_ptr(), 0, wts.data_ptr(), ws, cnt,
                              w2s, s2s, self.hidden, pairs, 1, _MODE_PLAIN, 1, e, order.data_ptr(), offs.data_ptr(),
                              self.expert_rows, self.joined)
            self._combine_into(stream, y, out, t, extra)


def pairs_by_expert(torch, ids, experts: int):
    """(order, offs) of the (token, slot) pairs p = token * top_k + slot of ``ids`` [T, top_k]: order [T * top_k]
    int32, the pairs sorted by expert (stable: a token's pairs keep their order), and offs [experts + 2] int32,
    expert e's pairs at order[offs[e]:offs[e + 1]]; ids outside 0..experts-1 come last, past offs[experts]. Torch
    only, no host sync (captures in a CUDA graph)."""
    flat = ids.reshape(-1).to(torch.int64)
    flat = torch.where((flat >= 0) & (flat < experts), flat, experts)
    # 16-bit keys: the radix sort makes 2 passes instead of int64's 8 (H200, Qwen3-Next at 437 tokens x 11 pairs:
    # 2.1 ms of a 54.8 ms step in the sort's launches, benchmarks/RESULTS.md session 14)
    order = torch.argsort(flat.to(torch.int16) if experts < 2**15 else flat, stable=True).to(torch.int32)
    offs = torch.zeros(experts + 2, dtype=torch.int32, device=ids.device)
    offs[1:].scatter_add_(0, flat, torch.ones_like(flat, dtype=torch.int32))
    return order, torch.cumsum(offs, 0, dtype=torch.int32)


def skinny_gemm_plan(n, k, dtype, max_batch=8, device=None, launcher="driver", ksplit=None, unroll=None,
                     min_blocks=None, prefetch=None, ksplit_rule=None, weight_format=None) -> SkinnyGemmPlan:
    """Plan ``x @ w^T`` for weight [n, k] and 1..max_batch (<= 16) tokens; ``ksplit`` forces CTAs along k;
    ``weight_format``: None (weights of ``dtype``) or "fp8" (bf16 x, k a multiple of 128; run takes w = (values,
    scales), see the module docstring); the other tuning options are in the module docstring."""
    return SkinnyGemmPlan(n, k, dtype, max_batch, device, launcher, ksplit, unroll, min_blocks, prefetch,
                          ksplit_rule, weight_format)


def moe_pairs_plan(experts, hidden, intermediate, top_k, max_tokens=16, dtype=None, weight_format="bf16",
                   activation="silu", device=None, launcher="driver", ksplit=None, unroll=None, min_blocks=None,
                   prefetch=None, ksplit_rule=None, expert_tiles=None, expert_rows=None, joined=0,
                   row_stages=None, gated=True) -> MoEPairsPlan:
    """Plan the routed experts of one MoE layer: pair slots for 1..max_tokens (<= 16) tokens, by expert above
    (``expert_tiles``: 8-column tiles per pass of the k-split by-expert kernels; ``expert_rows``: experts by a row
    tile per warp, the default; ``joined``: the last ``joined`` experts take every token (shared
    experts joined to the routed ones), their passes spread over CTA rows that start first; ``row_stages``: the
    row-tile kernel's weight ring, in steps; ``gated``: False for experts of one up projection and a plain activation,
    Nemotron-H's relu2; see the module docstring)."""
    return MoEPairsPlan(experts, hidden, intermediate, top_k, max_tokens, dtype, weight_format, activation, device,
                        launcher, ksplit, unroll, min_blocks, prefetch, ksplit_rule, expert_tiles, expert_rows, joined,
                        row_stages, gated)


# ---------------------------------------------------------------------------------------------
# references (float64 by default; CPU or GPU): what the GPU tests hold the kernel to


def reference_skinny_gemm(x, w, compute_dtype=None):
    import torch

    cd = compute_dtype or torch.float64
    return x.to(cd) @ w.to(cd).t()


def dequantize_block_fp8(q, s, block=128, dtype=None):
    """Block-scaled fp8 weights as ``dtype`` (float64 by default): q [..., rows, cols] (e4m3) times s [...,
    ceil(rows / block), ceil(cols / block)] expanded over block x block tiles, the last partial tile cropped."""
    import torch

    cd = dtype or torch.float64
    rows, cols = q.shape[-2:]
    full = s.to(cd).repeat_interleave(block, dim=-2).repeat_interleave(block, dim=-1)[..., :rows, :cols]
    return q.to(cd) * full


def _act(torch, name, g):
    if name == "silu":
        return g * torch.sigmoid(g)
    if name == "relu2":
        return torch.relu(g) ** 2
    return 0.5 * g * (1 + torch.tanh(0.7978845608028654 * (g + 0.044715 * g ** 3)))


def reference_moe_pairs(x, weights, ids, w13, w2, activation="silu", compute_dtype=None):
    """Dense float64 loop over (token, slot): what ``MoEPairsPlan.run`` computes; w13/w2 already dequantised."""
    import torch

    cd = compute_dtype or torch.float64
    t, k = ids.shape
    inter = w2.shape[-1]
    out = torch.zeros(t, w2.shape[1], dtype=cd, device=x.device)
    for i in range(t):
        for j in range(k):
            e = int(ids[i, j])
            hx = w13[e].to(cd) @ x[i].to(cd)
            h = _act(torch, activation, hx[:inter]) * hx[inter:] if len(hx) == 2 * inter else \
                _act(torch, activation, hx)
            out[i] += float(weights[i, j]) * (w2[e].to(cd) @ h)
    return out
