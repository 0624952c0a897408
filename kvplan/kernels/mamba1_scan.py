"""The Mamba-1 selective scan on the GPU (mamba1_scan.cu): a prompt's scan from empty states and the decode step
from the states in the slots are one kernel; the decode step's convolution is the recurrent steps' shared launch.

    plan = Mamba1Plan(channels=8192, state=16, taps=4, act_dtype="bfloat16", state_dtype="bfloat16")
    x = plan.conv_step(xz, pool, slots, conv_w, conv_b).to(torch.bfloat16)   # decode: windows moved in the slots
    y = plan.scan(x, dt, z, bc, dt_bias, a_log, d, pool, slots, tokens=1, load_state=True)   # [B, C] bf16

`mamba1_supported(...)` says why a shape cannot run here (the caller then takes the torch path)."""

from __future__ import annotations

from typing import Optional

from .configs import DELTANET_ACT_DTYPES as ACT_DTYPES
from .configs import DELTANET_STATE_DTYPES as STATE_DTYPES
from .configs import Mamba1ScanConfig
from .deltanet_step import CONV_ARGS

THREADS = 128  # kvp_m1_scan's CTA
PROMPT_STATES, STEP_STATES = 16, 4  # states a thread: kvp_m1_scan16 for prompts, kvp_m1_scan4 for decode steps
TILE = 16  # KVP_M1_TILE: tokens a shared-memory tile
SCAN_ARGS = ("u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64",
             "i32", "i32", "i32", "i32", "u64", "u64", "i32", "i32", "u64", "u64")
MAX_GRID_Y = 65535  # sequences a launch (the grid's y)
# CTAs a prompt's scan wants per SM before it splits its tokens into segments. H200, one 8,192-token prompt of
# Jamba's 8,192 channels, sixteen states a thread (64 CTAs; session 39 call 5): unsplit 3.23 ms, 2 a SM (5
# segments) 1.35, 4 (9) 1.37, 8 (17) 1.05, 12 (25) 1.03
CTAS_PER_SM = 12
SEGMENT_TILES = 8  # a segment's fewest tiles (128 tokens)


def segments(tokens: int, ctas: int, sm_count: int) -> int:
    """Segments a scan of `tokens` tokens over `ctas` CTAs (channel blocks x sequences) splits into: 1 when the
    CTAs already fill the GPU CTAS_PER_SM deep, else enough to, each at least SEGMENT_TILES tiles long."""
    if ctas >= CTAS_PER_SM * sm_count:
        return 1
    return max(1, min(-(-CTAS_PER_SM * sm_count // ctas), tokens // (SEGMENT_TILES * TILE)))


def mamba1_supported(channels: int, state: int, taps: int, act_dtype: str, state_dtype: str) -> Optional[str]:
    """None when the kernels run this shape, else why not (one sentence)."""
    if state not in (8, 16, 32, 64):
        return f"state size {state} is not 8, 16, 32 or 64"
    if channels < 8 or channels % 8 or taps < 1:
        return f"{channels} channels are not a positive multiple of 8, or the convolution width {taps} is not positive"
    if act_dtype not in ACT_DTYPES:
        return f"activations in {act_dtype} (the kernel takes {' or '.join(ACT_DTYPES)})"
    if state_dtype not in STATE_DTYPES:
        return f"state slots in {state_dtype} (the kernel takes {', '.join(STATE_DTYPES)})"
    return None


class Mamba1Plan:
    """Shapes checked and kernels loaded once; the launches pack pointers and run on torch's current stream."""

    def __init__(self, channels: int, state: int, taps: int, act_dtype: str, state_dtype: str, device=None):
        why = mamba1_supported(channels, state, taps, act_dtype, state_dtype)
        if why:
            raise ValueError(f"the Mamba-1 kernels cannot run this layer: {why}")
        import torch

        from . import _runtime as rt

        self.channels, self.n, self.taps = channels, state, taps
        self.state_offset = channels * (taps - 1)
        self.row_elements = self.state_offset + channels * state
        self.index = torch.cuda.current_device() if device is None else rt.device_index(device)
        ld = rt.load(Mamba1ScanConfig(act_dtype, state_dtype), rt.device_info(self.index))
        self._rt, self._torch = rt, torch
        self._conv = rt.PreparedLaunch(ld, "kvp_state_conv", CONV_ARGS, 256, 0, None, "driver")
        self.sm_count = rt.device_info(self.index).sm_count
        self._forms = {}  # states a thread -> (launch, channels a CTA)
        for spt in {PROMPT_STATES if state >= PROMPT_STATES else STEP_STATES, STEP_STATES}:
            per_cta = THREADS // (state // spt)
            # two tiles of x, dt, z and B, C (2-byte activations), the tile's B and C in float32
            smem = 2 * (3 * TILE * per_cta + TILE * 2 * state) * 2 + TILE * 2 * state * 4
            self._forms[spt] = (rt.PreparedLaunch(ld, f"kvp_m1_scan{spt}", SCAN_ARGS, THREADS, smem, None, "driver"),
                                per_cta)
        self._act = getattr(torch, act_dtype)
        self._state = getattr(torch, state_dtype)

    def _check_pool(self, pool, slots, count: int) -> None:
        if pool.dim() != 2 or pool.shape[1] != self.row_elements or not pool.is_contiguous() \
                or pool.dtype != self._state:
            raise ValueError(f"the state pool must be contiguous [slots, {self.row_elements}] {self._state}")
        if slots.shape != (count,) or slots.dtype != self._torch.int32 or not slots.is_contiguous():
            raise ValueError(f"slots must be contiguous [{count}] int32")

    def _check_rows(self, rows: int, **tensors) -> None:
        for name, (t, width) in tensors.items():
            if t.dim() != 2 or t.shape[0] != rows or t.shape[1] < width or t.stride(-1) != 1 or t.dtype != self._act:
                raise ValueError(f"{name} must be [{rows}, >= {width}] {self._act} with unit last stride")
            if t.stride(0) % 8 or t.data_ptr() % 16:
                raise ValueError(f"{name}'s rows must start on 16-byte boundaries (row stride a multiple of 8)")

    def conv_step(self, xs, pool, slots, conv_w, conv_b):
        """Decode's convolution: xs [B, >= C] activations (the new token's x, any row stride), each sequence's
        window in its slot shifted in place -> SiLU(conv + bias) [B, C] float32."""
        torch = self._torch
        b = xs.shape[0]
        self._check_rows(b, xs=(xs, self.channels))
        self._check_pool(pool, slots, b)
        w = conv_w.contiguous().to(self._act)
        bias = None if conv_b is None else conv_b.contiguous().to(self._act)
        out = torch.empty(b, self.channels, dtype=torch.float32, device=xs.device)
        a = self._conv.args
        for i, v in enumerate((xs.data_ptr(), xs.stride(0), slots.data_ptr(), pool.data_ptr(), pool.stride(0),
                               w.data_ptr(), 0 if bias is None else bias.data_ptr(), self.channels, self.taps,
                               out.data_ptr())):
            a[i].value = v
        self._conv.launch((-(-self.channels // 256), b, 1), self._rt.current_stream_handle(torch, self.index))
        return out

    def scan(self, x, dt, z, bc, dt_bias, a_log, d, pool=None, slots=None, tokens: int = 1, load_state: bool = False,
             out=None):
        """R = rows / tokens sequences of `tokens` tokens: x, dt (before its bias), z [R L, >= C] and bc [R L, >= 2 N]
        (B then C) activations, unit last stride, any row stride; dt_bias, d [C] (activations), a_log [C, N]
        (float32). With pool and slots [R] int32: the scan starts from the slots' states when load_state, and the
        final states are stored there. -> y [R L, C] activations: (sum_n h C + D x) SiLU(z)."""
        torch = self._torch
        rows = x.shape[0]
        if tokens < 1 or rows % tokens:
            raise ValueError(f"{rows} rows are not whole sequences of {tokens} tokens")
        seqs = rows // tokens
        self._check_rows(rows, x=(x, self.channels), dt=(dt, self.channels), z=(z, self.channels),
                         bc=(bc, 2 * self.n))
        if (pool is None) != (slots is None) or (load_state and pool is None):
            raise ValueError("pool and slots come together, and load_state needs them")
        if pool is not None:
            self._check_pool(pool, slots, seqs)
        if a_log.shape != (self.channels, self.n) or a_log.dtype != torch.float32:
            raise ValueError(f"a_log must be [{self.channels}, {self.n}] float32")
        a_log = a_log.contiguous()
        bias, dd = (t.contiguous().to(self._act) for t in (dt_bias, d))
        if out is None:
            out = torch.empty(rows, self.channels, dtype=self._act, device=x.device)
        stream = self._rt.current_stream_handle(torch, self.index)
        spt = PROMPT_STATES if tokens > 1 and PROMPT_STATES in self._forms else STEP_STATES
        launch, per_cta = self._forms[spt]
        grid_x = -(-self.channels // per_cta)
        s = launch.args
        for first in range(0, seqs, MAX_GRID_Y):
            count, row = min(MAX_GRID_Y, seqs - first), first * tokens
            segs = segments(tokens, grid_x * count, self.sm_count)
            seg = -(-tokens // segs // TILE) * TILE
            segs = -(-tokens // seg)
            ws_h = ws_sum = None
            if segs > 1:
                ws_h = torch.empty(count * segs * self.channels * self.n, dtype=torch.float32, device=x.device)
                ws_sum = torch.empty(count * segs * self.channels, dtype=torch.float32, device=x.device)
            for i, v in enumerate((x[row:].data_ptr(), x.stride(0), dt[row:].data_ptr(), dt.stride(0),
                                   z[row:].data_ptr(), z.stride(0), bc[row:].data_ptr(), bc.stride(0),
                                   bias.data_ptr(), a_log.data_ptr(), dd.data_ptr(),
                                   0 if slots is None else slots[first:].data_ptr(),
                                   0 if pool is None else pool.data_ptr(), self.row_elements, self.state_offset,
                                   int(load_state), self.channels, self.n, tokens, out[row:].data_ptr(),
                                   out.stride(0), 0, seg, 0 if ws_h is None else ws_h.data_ptr(),
                                   0 if ws_sum is None else ws_sum.data_ptr())):
                s[i].value = v
            if segs == 1:
                launch.launch((grid_x, count, 1), stream)
                continue
            s[21].value = 1  # phase 1: every segment but the last, end states and step sums
            launch.launch((grid_x, count, segs - 1), stream)
            s[21].value = 2  # phase 2: each segment from the state handed on, y and the final state
            launch.launch((grid_x, count, segs), stream)
        return out
