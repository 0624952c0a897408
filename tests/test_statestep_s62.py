"""Session 62 (statestep): gated DeltaNet's decode step kernel over two state pools (the window and the recurrent
state in two dtypes, as Qwen3.5 and Qwen3-Next with --mamba-ssm-cache-dtype float32 keep them), and the Kimi Delta
Attention decode step kernel (kvplan/kernels/kda_step.cu) that gpu/kda.py now decodes with.

CPU: which shapes each plan takes and the messages for the others; the arguments the plans pack (pointers, strides,
offsets, the module each launch comes from) read back from a stand-in runtime; kda_step.cu's indexing replayed in torch
from those packed arguments (an emulation of the kernel, CTA by CTA, over the tensors' flat memory, written from the
.cu) against a float64 reference written from the layer's equations (the recurrence through kda.py's kda_recurrent),
and through gpu/kda.py's forward against its torch path; what verify's decode verdict makes of the new labels; the
NVRTC compile of every KDA instantiation for sm_80, sm_89 and sm_90 without spills (skips without NVRTC unless
KVPLAN_REQUIRE_NVRTC=1).

GPU (skips without CUDA): the same comparisons with the real kernels: the KDA step against the float64 reference over
four steps at Kimi-Linear's heads on a rank at tp 1 (32) and tp 2 (16), in shuffled slots of a pool whose unused slots
hold NaN (untouched), the bounded gate and a float32 window; a CUDA graph's replay; DeltaNet's two pools against the
float64 reference of tests/test_deltanet_step.py; and tiny models (Kimi Linear with 128-channel KDA heads, Qwen3-Next
with 128-channel DeltaNet heads and two-tensor slots) whose kernel decode matches their torch decode."""

import math
import os
import re
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from kvplan.gpu import kda  # noqa: E402
from kvplan.kernels import configs  # noqa: E402
from kvplan.kernels.deltanet_step import DeltaNetStepPlan  # noqa: E402
from kvplan.kernels.kda_step import KDS, KdaStepPlan, all_kda_configs, kda_step_supported  # noqa: E402
from kvplan.verify.judge import stand_in_graphs_note, stand_ins  # noqa: E402

BF16, F32 = torch.bfloat16, torch.float32
EPS = kda.NORM_EPS


def _cuda_kernels():
    """Skips unless the NVRTC kernels can run here (a CUDA GPU, cuda.core, the headers)."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from kvplan.kernels._runtime import kernel_unavailable_reason

    if kernel_unavailable_reason():
        pytest.skip(kernel_unavailable_reason())


# ---- a stand-in runtime: plans load nothing, launches are recorded (and kvp_kda_step's emulated) ----------------

class _Memory:
    """The flat memory behind some tensors: a pointer -> (all of its storage's elements in a dtype, the index)."""

    def __init__(self, tensors):
        self.storages = [t.untyped_storage() for t in tensors]

    def at(self, ptr: int, dtype):
        size = torch.empty((), dtype=dtype).element_size()
        for s in self.storages:
            base = s.data_ptr()
            if base <= ptr < base + s.nbytes():
                assert (ptr - base) % size == 0, f"pointer {ptr:#x} is not aligned to {dtype}"
                return torch.empty(0, dtype=dtype).set_(s, 0, (s.nbytes() // size,)), (ptr - base) // size
        raise AssertionError(f"pointer {ptr:#x} is in none of the tensors handed to the kernel")


def _softplus(x):
    return torch.where(x > 20, x, torch.log1p(torch.exp(x)))


def _emulate_kda_step(memory, config, grid, block, values):
    """kvp_kda_step (kvplan/kernels/kda_step.cu) for every CTA of `grid`, indexing memory as the kernel does (its
    parameters in order; a CTA's threads as whole-vector torch ops, float32)."""
    (mixed, mixed_stride, beta_raw, beta_stride, g_raw, g_stride, gate, gate_stride, slot, conv_pool, conv_stride,
     state_pool, state_stride, conv_w, a_log, dt_bias, o_norm, heads, taps, lower_bound, eps, out) = values
    d = config.head_dim
    assert block == d * KDS and grid[0] == heads and grid[2] == 1, (grid, block)
    act, window = getattr(torch, config.act_dtype), getattr(torch, config.conv_dtype)
    (m, m0), (bt, bt0), (gr, gr0), (gt, gt0) = (memory.at(p, act) for p in (mixed, beta_raw, g_raw, gate))
    (sl, sl0), (win, win0), (st, st0) = memory.at(slot, torch.int32), memory.at(conv_pool, window), \
        memory.at(state_pool, F32)
    (cw, cw0), (al, al0), (dt, dt0) = (memory.at(p, F32) for p in (conv_w, a_log, dt_bias))
    (on, on0), (o, o0) = memory.at(o_norm, act), memory.at(out, act)
    width, lanes, taps_at = heads * d, torch.arange(d), torch.arange(taps)
    for b in range(grid[1]):
        s_b = int(sl[sl0 + b])
        for h in range(grid[0]):
            head0 = h * d
            i = torch.arange(3 * d)
            c = (i // d) * width + head0 + i % d  # the head's q, k and v channels of the layer
            at = win0 + s_b * conv_stride + c[:, None] * (taps - 1) + taps_at[None, :-1]  # [3 d, taps - 1]
            w = cw[cw0 + c[:, None] * taps + taps_at[None, :]]
            x = m[m0 + b * mixed_stride + c].float()
            old = win[at].float()
            acc = (old * w[:, :-1]).sum(1) + x * w[:, -1]
            if taps > 1:
                win[at] = torch.cat([old[:, 1:], x[:, None]], 1).to(window)
            y = acc * torch.sigmoid(acc)
            q, k, v = y[:d], y[d:2 * d], y[2 * d:]
            rate = math.exp(float(al[al0 + h]))
            xg = gr[gr0 + b * g_stride + head0 + lanes].float() + dt[dt0 + head0 + lanes]
            g = lower_bound * torch.sigmoid(rate * xg) if lower_bound != 0 else -rate * _softplus(xg)
            q = q * torch.rsqrt(q.square().sum() + 1e-6) * d ** -0.5
            k = k * torch.rsqrt(k.square().sum() + 1e-6)
            beta = torch.sigmoid(bt[bt0 + b * beta_stride + h].float())
            at_s = st0 + s_b * state_stride + head0 * d + torch.arange(d * d)
            s = st[at_s].view(d, d) * torch.exp(g)[:, None]  # [key, value]
            s = s + torch.outer(k, beta * (v - k @ s))
            st[at_s] = s.reshape(-1)
            y = q @ s
            normed = y * torch.rsqrt(y.square().mean() + eps) * on[on0 + lanes].float()
            o[o0 + b * width + head0 + lanes] = (normed * torch.sigmoid(gt[gt0 + b * gate_stride + head0 + lanes]
                                                                         .float())).to(act)


@pytest.fixture
def stand_in(monkeypatch):
    """kvplan.kernels' runtime replaced on the CPU: plans load no module, every launch is recorded (module config,
    kernel, grid, block, the argument values as the C types hold them), and kvp_kda_step's run in the emulation over
    the tensors its plan packed."""
    from kvplan.kernels import _runtime as rt
    from kvplan.kernels import kda_step

    launches, handed = [], []
    packed = kda_step.KdaStepPlan.arguments

    def arguments(self, *args):
        handed[:] = [t for t in (*args[:7], *args[7]) if isinstance(t, torch.Tensor)] + [args[-1]]
        return packed(self, *args)

    class Launch:
        def __init__(self, ld, name, arg_types, block, smem, pdl, launcher):
            self.config, self.name, self.block = ld.config, name, block
            self.args = [rt._C_TYPES[t]() for t in arg_types]

        def launch(self, grid, stream):
            values = [a.value for a in self.args]
            launches.append(SimpleNamespace(config=self.config, name=self.name, grid=grid, block=self.block,
                                            values=values))
            if self.name == "kvp_kda_step":
                _emulate_kda_step(_Memory(handed), self.config, grid, self.block, values)

    monkeypatch.setattr(kda_step.KdaStepPlan, "arguments", arguments)
    monkeypatch.setattr(rt, "device_info", lambda index: SimpleNamespace(index=index, sm_count=132))
    monkeypatch.setattr(rt, "load", lambda config, dev: SimpleNamespace(config=config))
    monkeypatch.setattr(rt, "PreparedLaunch", Launch)
    monkeypatch.setattr(rt, "current_stream_handle", lambda torch, index: 0)
    return launches


# ---- gated DeltaNet over two pools ------------------------------------------------------------------------------

def _deltanet_inputs(batch, nk=2, nv=4, dk=128, dv=128, taps=4, device="cpu", seed=0):
    gen = torch.Generator(device=device).manual_seed(seed)

    def rnd(*shape, scale=1.0, dtype=BF16):
        return (torch.randn(*shape, device=device, generator=gen) * scale).to(dtype)

    channels = 2 * nk * dk + nv * dv
    mixed, ba, z = rnd(batch, channels), rnd(batch, 2 * nv + 3), rnd(batch, nv * dv)
    weights = rnd(channels, taps, scale=0.5), rnd(nv, scale=0.5), rnd(nv), rnd(dv)
    return (mixed, ba, z), weights, channels


def test_deltanet_two_pools_pack_the_window_pool_for_the_convolution_and_the_state_pool_at_offset_0(stand_in):
    """The convolution launch comes from the module built for the window's dtype and reads the window pool; the
    delta launch from the state dtype's module, reading the state pool from its row's start (offset 0)."""
    plan = DeltaNetStepPlan(2, 4, 128, 128, 4, "bfloat16", "float32", device=0, conv_dtype="bfloat16")
    (mixed, ba, z), weights, channels = _deltanet_inputs(3)
    conv_pool = torch.zeros(7, channels * 3, dtype=BF16)
    state_pool = torch.zeros(7, 4 * 128 * 128, dtype=F32)
    slots = torch.tensor([5, 0, 3], dtype=torch.int32)
    plan.run(mixed, ba, z, conv_pool, slots, *weights, 1e-6, state_pool=state_pool)
    conv, delta = stand_in
    assert (conv.name, conv.config) == ("kvp_state_conv", configs.DeltaNetStepConfig("bfloat16", "bfloat16", 128))
    assert (delta.name, delta.config) == ("kvp_dn_delta", configs.DeltaNetStepConfig("bfloat16", "float32", 128))
    assert conv.values[2:5] == [slots.data_ptr(), conv_pool.data_ptr(), channels * 3] and conv.grid == (4, 3, 1)
    assert delta.values[6:10] == [slots.data_ptr(), state_pool.data_ptr(), 4 * 128 * 128, 0]
    assert delta.grid == (4, 3, 1) and delta.block == 128 * 4
    # the one-pool form as before: one module, the row's state after its window
    one = DeltaNetStepPlan(2, 4, 128, 128, 4, "bfloat16", "bfloat16", device=0)
    pool = torch.zeros(7, one.row_elements, dtype=BF16)
    one.run(mixed, ba, z, pool, slots, *weights, 1e-6)
    conv, delta = stand_in[2:]
    assert conv.config == delta.config == configs.DeltaNetStepConfig("bfloat16", "bfloat16", 128)
    assert conv.values[3:5] == [pool.data_ptr(), one.row_elements]
    assert delta.values[7:10] == [pool.data_ptr(), one.row_elements, channels * 3]


def test_deltanet_two_pool_checks_name_the_pool(stand_in):
    plan = DeltaNetStepPlan(2, 4, 128, 128, 4, "bfloat16", "float32", device=0, conv_dtype="bfloat16")
    (mixed, ba, z), weights, channels = _deltanet_inputs(2)
    conv_pool, state_pool = torch.zeros(5, channels * 3, dtype=BF16), torch.zeros(5, 4 * 128 * 128, dtype=F32)
    slots = torch.tensor([1, 2], dtype=torch.int32)
    cases = [((conv_pool, None), "takes the state in state_pool"),
             ((conv_pool.float(), state_pool), r"the window pool must be contiguous \[slots, 3072\] torch.bfloat16"),
             ((conv_pool, state_pool.bfloat16()), r"the state pool must be contiguous \[slots, 65536\] torch.float32"),
             ((conv_pool, state_pool[:, :100]), r"the state pool must be contiguous \[slots, 65536\]"),
             ((conv_pool, state_pool[:4]), "the window pool has 5 slots and the state pool 4")]
    for (window, state), message in cases:
        with pytest.raises(ValueError, match=message):
            plan.run(mixed, ba, z, window, slots, *weights, 1e-6, state_pool=state)
    one = DeltaNetStepPlan(2, 4, 128, 128, 4, "bfloat16", "bfloat16", device=0)
    with pytest.raises(ValueError, match="one without it one pool"):
        one.run(mixed, ba, z, torch.zeros(5, one.row_elements, dtype=BF16), slots, *weights, 1e-6,
                state_pool=state_pool)
    with pytest.raises(ValueError, match="cannot run this layer: state slots in float8_e4m3fn"):
        DeltaNetStepPlan(2, 4, 128, 128, 4, "bfloat16", "float32", device=0, conv_dtype="float8_e4m3fn")
    assert stand_in == []  # nothing launched


# ---- KDA: shapes and checks --------------------------------------------------------------------------------------

def test_kda_supported_shapes_and_reasons():
    assert kda_step_supported(32, 128, 4, "bfloat16", "bfloat16") is None  # Kimi-Linear, tp 1
    assert kda_step_supported(16, 128, 4, "bfloat16", "float32", "float32") is None  # tp 2, a float32 window
    assert "head dim 64 is not compiled (only 128)" in kda_step_supported(4, 64, 4, "bfloat16", "bfloat16")
    assert "activations in float32" in kda_step_supported(4, 128, 4, "float32", "bfloat16")
    assert "convolution windows in float8_e4m3fn" in kda_step_supported(4, 128, 4, "bfloat16", "float8_e4m3fn")
    assert "recurrent state in bfloat16" in kda_step_supported(4, 128, 4, "bfloat16", "bfloat16", "bfloat16")
    assert "convolution width 0" in kda_step_supported(4, 128, 0, "bfloat16", "bfloat16")
    with pytest.raises(ValueError, match="KDA step kernel cannot run this layer: head dim 72"):
        KdaStepPlan(4, 72, 4, "bfloat16", "bfloat16", device=0)


def test_ci_compiles_every_kda_instantiation_a_model_needs():
    names = {c.name for c in all_kda_configs()}
    assert names == {"kda_float16_windowfloat16_d128", "kda_float16_windowfloat32_d128",
                     "kda_bfloat16_windowbfloat16_d128", "kda_bfloat16_windowfloat32_d128"}
    every = {c.name for make in configs.INSTANTIATION_SETS for c in make("sm_90")}
    assert names <= every
    assert dict(configs.KdaStepConfig("bfloat16", "float32").macros()) == {"KVP_DN_T": "1", "KVP_DN_S": "2",
                                                                           "KVP_KDA_D": "128"}


def _kda_case(heads, batch, act="bfloat16", window="bfloat16", slots_total=None, device="cpu", seed=0, d=128, taps=4):
    """Inputs of a KDA decode step as gpu/kda.py hands them over: views of one in_proj row (q | k | v | beta | f_a,
    each read through the row's stride), g_raw and gate of their own; NaN pools but in the batch's (shuffled)
    slots; the checkpoint's float32 conv / A_log / dt_bias."""
    gen = torch.Generator().manual_seed(seed)
    adt, wdt, width = getattr(torch, act), getattr(torch, window), heads * d
    proj = torch.randn(batch, 3 * width + heads + d, generator=gen).to(adt)
    mixed, beta = proj[:, :3 * width], proj[:, 3 * width:3 * width + heads]
    g_raw, gate = torch.randn(batch, width, generator=gen).to(adt), torch.randn(batch, width, generator=gen).to(adt)
    weights = (torch.randn(3 * width, taps, generator=gen) * 0.5, torch.rand(heads, generator=gen) * 2.7,
               torch.randn(width, generator=gen) * 0.1, (1 + 0.1 * torch.randn(d, generator=gen)).to(adt))
    total = slots_total or 2 * batch + 3
    conv_pool = torch.full((total, 3 * width * (taps - 1)), float("nan"), dtype=wdt)
    state_pool = torch.full((total, heads * d * d), float("nan"))
    slots = torch.randperm(total, generator=gen)[:batch].to(torch.int32)
    conv_pool[slots.long()] = torch.randn(batch, conv_pool.shape[1], generator=gen).to(wdt)
    state_pool[slots.long()] = torch.randn(batch, state_pool.shape[1], generator=gen) * 0.1
    to = dict(device=device)
    return SimpleNamespace(inputs=[t.to(**to) for t in (mixed, beta, g_raw, gate)],
                           pools=[conv_pool.to(**to), state_pool.to(**to)], slots=slots.to(**to),
                           weights=[t.to(**to) for t in weights], heads=heads, d=d, taps=taps, proj=proj.to(**to))


def _next_inputs(case, seed):
    """A fresh token's inputs for the same sequences (same layouts)."""
    gen = torch.Generator().manual_seed(seed)
    proj = torch.randn(case.proj.shape, generator=gen).to(case.proj.dtype).to(case.proj.device)
    width, heads = case.heads * case.d, case.heads
    case.proj = proj
    case.inputs = [proj[:, :3 * width], proj[:, 3 * width:3 * width + heads],
                   *(torch.randn(proj.shape[0], width, generator=gen).to(proj.dtype).to(proj.device)
                     for _ in range(2))]


def _kda_reference(case, windows, states, lower_bound=0.0, eps=EPS):
    """float64 on the CPU from the layer's equations (kvplan/gpu/kda.py's docstring; vLLM 0.32.0 kimi_gdn_linear_attn
    .py): the short convolutions over the window, SiLU, l2-normalised q (times D^-1/2) and k, the gate per key
    channel, the recurrence (kda.py kda_recurrent, one token), RMSNorm times sigmoid(gate).
    windows [B, 3 width, taps - 1], states [B, heads, d, d] float64 -> (out [B, width], windows, states)."""
    f = torch.float64
    mixed, beta, g_raw, gate = (t.cpu().to(f) for t in case.inputs)
    conv_w, a_log, dt_bias, o_norm = (t.cpu().to(f) for t in case.weights)
    h, d = case.heads, case.d
    window = torch.cat([windows, mixed[:, :, None]], -1)  # [B, 3 width, taps]
    act = (window * conv_w).sum(-1)
    act = act / (1 + torch.exp(-act))
    q, k, v = act.view(-1, 3, h, d).unbind(1)
    q = q / torch.sqrt(q.square().sum(-1, keepdim=True) + 1e-6) / math.sqrt(d)
    k = k / torch.sqrt(k.square().sum(-1, keepdim=True) + 1e-6)
    x = g_raw.view(-1, h, d) + dt_bias.view(h, d)
    rate = torch.exp(a_log)[:, None]
    g = lower_bound / (1 + torch.exp(-rate * x)) if lower_bound else -rate * _softplus(x)
    b = 1 / (1 + torch.exp(-beta))
    o, states = kda.kda_recurrent(q[:, None], k[:, None], v[:, None], g[:, None], b[:, None], states)
    o = o[:, 0]
    normed = o / torch.sqrt(o.square().mean(-1, keepdim=True) + eps) * o_norm
    return (normed / (1 + torch.exp(-gate.view(-1, h, d)))).reshape(len(o), -1), window[..., 1:], states


def _kda_steps(plan, case, steps, lower_bound=0.0):
    """`steps` decode steps of the plan against the float64 reference; -> worst relative errors (out, state) and the
    pools before the first step."""
    h, d, taps = case.heads, case.d, case.taps
    rows = case.slots.long()
    before = [p.clone() for p in case.pools]
    windows = case.pools[0][rows].cpu().double().view(len(rows), 3 * h * d, taps - 1)
    states = case.pools[1][rows].cpu().double().view(len(rows), h, d, d)
    worst_out = worst_state = 0.0
    for step in range(steps):
        if step:
            _next_inputs(case, 100 + step)
        want, windows, states = _kda_reference(case, windows, states, lower_bound)
        got = plan.run(*case.inputs, *case.pools, case.slots, *case.weights, EPS)
        assert got.dtype == case.inputs[0].dtype and got.shape == want.shape
        worst_out = max(worst_out, float((got.cpu().double() - want).abs().max() / want.abs().max()))
        got_state = case.pools[1][rows].cpu().double().view_as(states)
        worst_state = max(worst_state, float((got_state - states).abs().max() / states.abs().max()))
        # the window keeps the inputs themselves (16-bit values: exact in a 16-bit or float32 window)
        got_windows = case.pools[0][rows].cpu().double().view_as(windows)
        assert torch.equal(got_windows, windows), f"step {step}: the windows differ from the last {taps - 1} inputs"
    return worst_out, worst_state, before


def _untouched(pools, before, slots) -> bool:
    """Every slot outside `slots` holds what it held (NaN compares unequal: compared as bytes)."""
    others = torch.ones(pools[0].shape[0], dtype=torch.bool, device=pools[0].device)
    others[slots.long()] = False
    return all(torch.equal(p[others].view(torch.uint8), b[others].view(torch.uint8)) for p, b in zip(pools, before))


# bf16 output rounding (2^-9 of the largest value) bounds the output error; the float32 state ~1e-6 after 4 steps
OUT_TOL, STATE_TOL = 1e-2, 1e-5


@pytest.mark.parametrize("heads,batch,act,window,bound", [
    (4, 3, "bfloat16", "bfloat16", 0.0), (2, 2, "float16", "float32", -2.0)])
def test_the_emulated_kernel_is_the_float64_step(stand_in, heads, batch, act, window, bound):
    """kda_step.cu's indexing (emulated from the plan's packed arguments) over three steps in shuffled slots of a NaN
    pool: the output, the windows (exactly the last three inputs) and the float32 states match the float64 reference,
    and the other slots keep their bytes."""
    case = _kda_case(heads, batch, act, window)
    plan = KdaStepPlan(heads, 128, 4, act, window, bound, device=0)
    worst_out, worst_state, before = _kda_steps(plan, case, 3, bound)
    assert worst_out < OUT_TOL and worst_state < STATE_TOL, (worst_out, worst_state)
    assert _untouched(case.pools, before, case.slots)
    launch = stand_in[0]
    assert launch.name == "kvp_kda_step" and launch.config == configs.KdaStepConfig(act, window, 128)
    assert launch.grid == (heads, batch, 1) and launch.block == 512


def test_the_packed_arguments_are_the_tensors_layout(stand_in):
    """Pointers, row strides (in_proj's row for mixed and beta, beta 3 width elements into it), the pools' rows and the
    scalars, in kvp_kda_step's parameter order; a float16 window pool's row of 3 x 4,096 x 3."""
    case = _kda_case(32, 2, window="float16")
    plan = KdaStepPlan(32, 128, 4, "bfloat16", "float16", -1.5, device=0)
    out = plan.run(*case.inputs, *case.pools, case.slots, *case.weights, EPS)
    mixed, beta, g_raw, gate = case.inputs
    row = 3 * 4096 + 32 + 128
    assert stand_in[0].values == [
        case.proj.data_ptr(), row, case.proj.data_ptr() + 3 * 4096 * 2, row, g_raw.data_ptr(), 4096, gate.data_ptr(),
        4096, case.slots.data_ptr(), case.pools[0].data_ptr(), 3 * 4096 * 3, case.pools[1].data_ptr(),
        32 * 128 * 128, case.weights[0].data_ptr(), case.weights[1].data_ptr(), case.weights[2].data_ptr(),
        case.weights[3].data_ptr(), 32, 4, -1.5, pytest.approx(EPS, rel=1e-7), out.data_ptr()]


def test_batches_past_the_grid_limit_run_in_several_launches(stand_in, monkeypatch):
    """More sequences than a grid's y holds: launches of MAX_GRID_Y rows, each with its rows' pointers."""
    from kvplan.kernels import kda_step

    monkeypatch.setattr(kda_step, "MAX_GRID_Y", 2)
    case = _kda_case(2, 5)
    plan = KdaStepPlan(2, 128, 4, "bfloat16", "bfloat16", device=0)
    worst_out, worst_state, before = _kda_steps(plan, case, 1)
    assert worst_out < OUT_TOL and worst_state < STATE_TOL
    assert [launch.grid for launch in stand_in] == [(2, 2, 1), (2, 2, 1), (2, 1, 1)]
    row = case.proj.stride(0) * 2
    assert [launch.values[0] for launch in stand_in] == [case.proj.data_ptr() + i * row for i in (0, 2, 4)]
    assert [launch.values[8] for launch in stand_in] == [case.slots.data_ptr() + 4 * i for i in (0, 2, 4)]
    assert _untouched(case.pools, before, case.slots)


def test_kda_checks_name_the_argument(stand_in):
    case = _kda_case(2, 2)
    plan = KdaStepPlan(2, 128, 4, "bfloat16", "bfloat16", device=0)
    mixed, beta, g_raw, gate = case.inputs
    conv_pool, state_pool = case.pools
    good = dict(mixed=mixed, beta=beta, g_raw=g_raw, gate=gate, conv_pool=conv_pool, state_pool=state_pool,
                slots=case.slots)
    cases = [(dict(mixed=mixed.float()), r"mixed must be \[2, >= 768\] torch.bfloat16"),
             (dict(mixed=mixed[:, :700]), r"mixed must be \[2, >= 768\]"),
             (dict(beta=beta[:1]), r"beta must be \[2, >= 2\]"),
             (dict(g_raw=g_raw.t().contiguous().t()), "g_raw must be .* with unit last stride"),
             (dict(gate=gate[:, :255]), r"gate must be \[2, >= 256\]"),
             (dict(conv_pool=conv_pool.float()), r"the window pool must be contiguous \[slots, 2304\] torch.bfloat16"),
             (dict(state_pool=state_pool.bfloat16()), r"the state pool must be contiguous \[slots, 32768\] "
                                                      r"torch.float32"),
             (dict(state_pool=state_pool[:-1]), "the window pool has 7 slots and the state pool 6"),
             (dict(slots=case.slots.long()), r"slots must be \[2\] int32"),
             (dict(slots=case.slots[:1]), r"slots must be \[2\] int32")]
    for change, message in cases:
        with pytest.raises(ValueError, match=message):
            args = {**good, **change}
            plan.run(*args.values(), *case.weights, EPS)
    conv_w, a_log, dt_bias, o_norm = case.weights
    with pytest.raises(ValueError, match="dt_bias must hold 256 values"):
        plan.run(*good.values(), conv_w, a_log, dt_bias[:128], o_norm, EPS)
    with pytest.raises(ValueError, match=r"out must be contiguous \[2, 256\] torch.bfloat16"):
        plan.run(*good.values(), *case.weights, EPS, out=torch.empty(2, 256))
    with pytest.raises(ValueError, match="lower_bound must be 0"):
        KdaStepPlan(2, 128, 4, "bfloat16", "bfloat16", 1.0, device=0)
    assert stand_in == []


# ---- KDA through gpu/kda.py and verify's verdict ----------------------------------------------------------------

def _kimi128(bound=None):
    """Kimi Linear with the real KDA head (4 heads of 128, kernel 4): layer 0 KDA, layer 1 MLA, no experts."""
    from test_verify_kda import _kda128
    from kvplan.model import parse_config
    from kvplan.verify.arch import architecture

    raw = _kda128()
    if bound is not None:
        raw["linear_attn_config"] = {**raw["linear_attn_config"], "gate_lower_bound": bound}
    return architecture(raw, parse_config(raw, "kda128"), 1)


def _decode_logits(arch, device, kernel_plan=None, steps=3, seed=5):
    """A 2-sequence bf16 prompt and `steps` decode steps of the tiny model on `device` (state slots 3 and 1 of 4,
    NaN elsewhere) -> (logits of every step, the runtime's labels, the caches). `kernel_plan`: None keeps the
    model's own choice; else a function (layer, x, cache) -> plan or None put in place of _step_plan."""
    from kvplan.gpu.caches import small_caches
    from kvplan.gpu.generate import decode, prefill
    from kvplan.gpu.model import Runtime, Transformer
    from kvplan.gpu.weights import full_weights

    weights = {k: v.to(device) for k, v in full_weights(arch, seed, dtype=BF16).items()}
    model = Transformer(arch, weights, Runtime(device))
    model.caches = small_caches(arch, 16, 16, 4, BF16, device)
    paged = sorted({c.group for c in model.caches.values() if c.kind != "state"})
    tables = {g: torch.tensor([[0, 1, 2], [5, 4, 3]], dtype=torch.int32, device=device) for g in paged}
    slots = torch.tensor([3, 1], device=device)
    gen = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, arch.vocab, (2, 9), generator=gen).to(device)
    out = [prefill(model, prompt, {g: t.tolist() for g, t in tables.items()}, slots)]
    positions = torch.tensor([9, 9], device=device)
    for _ in range(steps):
        tokens = torch.randint(0, arch.vocab, (2,), generator=gen).to(device)
        out.append(decode(model, tokens, positions, tables, slots))
        positions = positions + 1
    return out, {**model.rt.paged.labels, **model.rt.labels}, model.caches


def _emulated_kda_plan(monkeypatch):
    """gpu/kda.py's _step_plan replaced: the KDA step plan on the stand-in runtime (so the CPU runs the emulated
    kernel) with the kernel's label."""
    from kvplan.kernels._checks import dtype_name

    def step_plan(self, x, cache):
        self.label = kda.KERNEL_LABEL
        return KdaStepPlan(self.heads, self.dim, self.kernel, dtype_name(x.dtype), dtype_name(cache.tensors[0].dtype),
                           self.arch.kda_gate_lower_bound, device=0)

    monkeypatch.setattr(kda.KimiDeltaAttention, "_step_plan", step_plan)


@pytest.mark.parametrize("bound", [None, -2.0])
def test_gpu_kda_decodes_through_the_kernels_arguments(stand_in, monkeypatch, bound):
    """gpu/kda.py's kernel path (its tensors packed by the plan, the kernel emulated on the CPU) against its torch
    path: the same logits over three decode steps (bf16 activations both; 0.4% of the largest logit was the worst
    seen), the same final states, and the labels say which ran."""
    arch = _kimi128(bound)
    want, torch_labels, torch_caches = _decode_logits(arch, "cpu")
    _emulated_kda_plan(monkeypatch)
    got, labels, caches = _decode_logits(arch, "cpu")
    assert len(stand_in) == 3 and all(launch.name == "kvp_kda_step" for launch in stand_in)
    for step, (g, w) in enumerate(zip(got, want)):
        err = float((g.double() - w.double()).abs().max() / w.double().abs().max())
        assert err < 2e-2, f"step {step}: {err:.2e} of the largest logit"
    kda_layer = next(layer.cache for layer in arch.layers if layer.mixer == "kda")
    for got_pool, want_pool in zip(caches[kda_layer].tensors, torch_caches[kda_layer].tensors):
        assert torch.allclose(got_pool[[3, 1]].double(), want_pool[[3, 1]].double(), rtol=1e-3, atol=1e-3)
        assert torch.isnan(got_pool[[0, 2]].float()).all()  # unused slots untouched
    assert "NOT a CUDA kernel" in torch_labels["kda"] and "kda" in stand_ins(torch_labels)
    assert labels["kda"] == kda.KERNEL_LABEL and "kda" not in stand_ins(labels)
    assert labels["kda prefill"] == kda.PREFILL_LABEL and "kda prefill" not in stand_ins(labels)


def test_verify_judges_a_kernel_decode_and_drops_the_graphs_note():
    """verify's decode verdict (judge.py) leaves a step unjudged where a label carries NOT a CUDA kernel: the torch
    KDA decode does, the kernel's and the prefill's do not; the graphs note about stand-ins goes with it."""
    responsible = {"term": "cuda_graphs", "difference_bytes": 2**30}
    torch_run = {"kda": kda.LABEL.format(why="not on a GPU"), "kda prefill": kda.PREFILL_LABEL}
    kernel_run = {"kda": kda.KERNEL_LABEL, "kda prefill": kda.PREFILL_LABEL}
    assert stand_ins(torch_run) == ["kda"] and stand_in_graphs_note(["kda"], responsible)
    assert stand_ins(kernel_run) == [] and stand_in_graphs_note(stand_ins(kernel_run), responsible) == []
    from kvplan.verify.judge import judge_decode

    point = {"batch": 1, "measured_ms": 10.0, "estimate_ms": 10.5, "roofline_ms": 8.0}
    assert judge_decode([point], tuple(stand_ins(torch_run)))[0] is None
    assert judge_decode([point], tuple(stand_ins(kernel_run)))[0] is True


def test_verify_notes_say_decode_runs_the_kernel():
    from test_verify_kda import kimi_arch, tiny_arch

    note, = [n for n in kimi_arch(2).notes if "Kimi Delta Attention" in n]
    assert "KDA step kernel where it compiles (kda_step.cu" in note and "not judged" not in note
    note, = [n for n in tiny_arch().notes if "Kimi Delta Attention" in n]  # head dim 8: torch, not judged
    assert "not 8" in note and "not judged" in note


# ---- the compile (NVRTC on the CPU) -----------------------------------------------------------------------------

def test_every_kda_instantiation_compiles_without_spills():
    """Each KDA instantiation for sm_80, sm_89 and sm_90: a cubin, no spills, registers within the 128 a thread that
    512-thread CTAs allow (seen: 64 on sm_80/89, 70 on sm_90, 4,224 bytes of shared memory)."""
    from kvplan.kernels import build

    try:
        build._import_cuda_core()
        build.nvrtc_version()
        build.cuda_include_dir()
    except build.NVRTCUnavailableError as exc:
        if os.environ.get("KVPLAN_REQUIRE_NVRTC") == "1":
            pytest.fail(f"KVPLAN_REQUIRE_NVRTC=1 but NVRTC is unavailable: {exc}")
        pytest.skip(f"NVRTC unavailable: {exc}")
    for cfg in all_kda_configs():
        for arch in ("sm_80", "sm_89", "sm_90"):
            cubin, report = build.compile_entry(cfg, arch)
            assert len(cubin) > 1000, (cfg.name, arch)
            if "Function properties for kvp_kda_step" not in report:  # a cached entry's lost log: ask once more
                cubin, report = build.compile_entry(cfg, arch, use_cache=False)
            assert "Function properties for kvp_kda_step" in report, \
                f"{cfg.name} {arch}: no ptxas report: {report[:400]}"
            body = report.split("Function properties for kvp_kda_step", 1)[1]
            found = re.search(r"(\d+) bytes spill stores", body), re.search(r"Used (\d+) registers", body)
            # a report ptxas words otherwise fails naming itself (one such failure on an H200, session 77, lost its
            # message to the device script's box)
            assert all(found), f"{cfg.name} {arch}: ptxas report not read: {body[:400]}"
            spills, registers = (int(m.group(1)) for m in found)
            assert spills == 0 and registers <= 128, f"{cfg.name} {arch}: {spills} B spilled, {registers} registers"


# ---- GPU ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("heads,batch,act,window,bound", [
    (32, 3, "bfloat16", "bfloat16", 0.0),  # Kimi-Linear on one rank at tp 1
    (16, 5, "bfloat16", "bfloat16", 0.0),  # at tp 2
    (16, 2, "float16", "float32", -2.0),  # a float32 window (--mamba-cache-dtype float32), the bounded gate
])
def test_kda_step_kernel_matches_float64_over_steps(heads, batch, act, window, bound):
    """The kernel over four decode steps in shuffled slots of a NaN pool against the float64 reference: outputs to
    bf16 rounding, windows exact, float32 states to 1e-5 of their largest value, other slots' bytes untouched."""
    _cuda_kernels()
    case = _kda_case(heads, batch, act, window, device="cuda", seed=heads + batch)
    plan = KdaStepPlan(heads, 128, 4, act, window, bound)
    worst_out, worst_state, before = _kda_steps(plan, case, 4, bound)
    torch.cuda.synchronize()
    assert worst_out < OUT_TOL, f"output {worst_out:.2e} of the largest value off the float64 reference"
    assert worst_state < STATE_TOL, f"state {worst_state:.2e} of the largest value off the float64 reference"
    assert _untouched(case.pools, before, case.slots), "a slot outside the batch changed"


def test_kda_step_kernel_replays_in_a_cuda_graph():
    """The step captured in a CUDA graph (as verify times decode) and replayed from the same pools: the eager run's
    output and pools, bit for bit."""
    _cuda_kernels()
    case = _kda_case(16, 4, device="cuda", seed=7)
    plan = KdaStepPlan(16, 128, 4, "bfloat16", "bfloat16")
    before = [p.clone() for p in case.pools]
    args = (*case.inputs, *case.pools, case.slots, *case.weights, EPS)
    eager = plan.run(*args)
    after = [p.clone() for p in case.pools]
    out = torch.empty_like(eager)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up off the capture
        plan.run(*args, out=out)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        plan.run(*args, out=out)
    for pool, start in zip(case.pools, before):
        pool.copy_(start)
    out.fill_(float("nan"))
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(out, eager)
    assert all(torch.equal(p.view(torch.uint8), a.view(torch.uint8)) for p, a in zip(case.pools, after))


@pytest.mark.parametrize("nk,nv,dv,batch,window,state", [(2, 4, 128, 3, "bfloat16", "float32"),
                                                         (1, 3, 64, 5, "float32", "bfloat16")])
def test_deltanet_two_pool_kernel_matches_float64(nk, nv, dv, batch, window, state):
    """DeltaNet's step over two pools (the window in one dtype, the state in another) against the float64 reference
    of tests/test_deltanet_step.py, given each slot as the one row it reads (window, then state); other slots
    untouched."""
    _cuda_kernels()
    from test_deltanet_step import _reference

    dk, taps, eps = 128, 4, 1e-6
    (mixed, ba, z), weights, channels = _deltanet_inputs(batch, nk, nv, dk, dv, taps, device="cuda", seed=batch)
    plan = DeltaNetStepPlan(nk, nv, dk, dv, taps, "bfloat16", state, conv_dtype=window)
    gen = torch.Generator(device="cuda").manual_seed(9)
    conv_pool = (torch.randn(2 * batch + 3, channels * (taps - 1), device="cuda", generator=gen)).to(
        getattr(torch, window))
    state_pool = (torch.randn(2 * batch + 3, nv * dk * dv, device="cuda", generator=gen) * 0.2).to(
        getattr(torch, state))
    slots = torch.randperm(conv_pool.shape[0], device="cuda", generator=gen)[:batch].to(torch.int32)
    before = [conv_pool.clone(), state_pool.clone()]
    rows = torch.cat([conv_pool[slots.long()].double(), state_pool[slots.long()].double()], 1)
    want, want_rows = _reference(torch, mixed, ba, z, rows, *weights, eps, nk, nv, dk, dv, taps)
    got = plan.run(mixed, ba, z, conv_pool, slots, *weights, eps, state_pool=state_pool)
    torch.cuda.synchronize()
    assert (got.double() - want).abs().max().item() < 0.05 * max(1.0, want.abs().max().item())
    got_rows = torch.cat([conv_pool[slots.long()].double(), state_pool[slots.long()].double()], 1)
    tol = 1e-2 if "bfloat16" in (window, state) else 1e-4
    err = (got_rows - want_rows).abs().max().item()
    assert err < tol * max(1.0, want_rows.abs().max().item()), f"slots {err:.2e} off"
    assert _untouched([conv_pool, state_pool], before, slots)


def test_tiny_kimi_linear_decodes_with_the_kernel_as_its_torch_path():
    """verify's forward on the GPU (bf16): the KDA layer decodes with the kernel (its label says so, and verify's
    decode verdict no longer counts it a stand-in), and the logits of three steps match the same model's torch
    decode (the kernel path put out of reach)."""
    _cuda_kernels()
    arch = _kimi128()
    got, labels, caches = _decode_logits(arch, "cuda")
    assert labels["kda"] == kda.KERNEL_LABEL and "kda" not in stand_ins(labels), labels["kda"]
    mp = pytest.MonkeyPatch()
    try:
        def torch_only(self, x, cache):
            self.label = kda.LABEL.format(why="put out of reach by the test")
            return None

        mp.setattr(kda.KimiDeltaAttention, "_step_plan", torch_only)
        want, torch_labels, torch_caches = _decode_logits(arch, "cuda")
    finally:
        mp.undo()
    assert "kda" in stand_ins(torch_labels)
    for step, (g, w) in enumerate(zip(got, want)):
        err = float((g.double() - w.double()).abs().max() / w.double().abs().max())
        assert err < 2e-2, f"step {step}: the kernel's logits {err:.2e} of the largest off the torch path's"
    kda_layer = next(layer.cache for layer in arch.layers if layer.mixer == "kda")
    for got_pool, want_pool in zip(caches[kda_layer].tensors, torch_caches[kda_layer].tensors):
        assert torch.allclose(got_pool[[3, 1]].double(), want_pool[[3, 1]].double(), rtol=1e-3, atol=1e-3)
        assert torch.isnan(got_pool[[0, 2]].float()).all()


def test_tiny_qwen3_next_decodes_two_pool_slots_with_the_kernel():
    """A Qwen3-Next of 128-channel DeltaNet heads whose slots are two tensors (a bf16 window, a float32 state, as
    Qwen3.5 keeps them): decode runs the step kernel (its label says two pools) and matches the torch path."""
    _cuda_kernels()
    from tiny_models import TINY

    from kvplan.gpu import deltanet
    from kvplan.gpu.step import LayerCache
    from kvplan.model import parse_config
    from kvplan.verify.arch import architecture

    raw = {k: v for k, v in TINY["qwen3_next"].items() if "expert" not in k}  # a dense MLP: the DeltaNet alone
    raw.update(hidden_size=256, head_dim=64, linear_key_head_dim=128, linear_value_head_dim=128)
    arch = architecture(raw, parse_config(raw, "qwen128"), 1)

    def two_pools(caches):
        for index, cache in list(caches.items()):
            if cache.kind == "state":
                slots, conv = cache.tensors[0].shape[0], arch.conv_dim_rank * (arch.conv_kernel - 1)
                state = arch.lin_value_heads * arch.lin_key_dim * arch.lin_value_dim
                caches[index] = LayerCache("state", cache.group, (
                    torch.full((slots, conv), float("nan"), dtype=BF16, device="cuda"),
                    torch.full((slots, state), float("nan"), dtype=F32, device="cuda")))
        return caches

    from kvplan.gpu import caches as caches_module

    small = caches_module.small_caches
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(caches_module, "small_caches", lambda *a, **k: two_pools(small(*a, **k)))
        got, labels, _ = _decode_logits(arch, "cuda")
        assert labels["linear"].startswith(deltanet.KERNEL_LABEL) and "two pools" in labels["linear"]
        mp.setattr(deltanet.GatedDeltaNet, "_step_plan", lambda self, x, cache: None)
        want, _, _ = _decode_logits(arch, "cuda")
    finally:
        mp.undo()
    for step, (g, w) in enumerate(zip(got, want)):
        err = float((g.double() - w.double()).abs().max() / w.double().abs().max())
        assert err < 2e-2, f"step {step}: the kernel's logits {err:.2e} of the largest off the torch path's"
