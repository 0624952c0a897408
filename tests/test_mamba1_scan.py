"""Jamba's Mamba-1 layer: the torch recurrence verify falls back to, and the bundled kernels (mamba1_scan.cu).

CPU: the torch recurrence against the definition written out element by element in Python floats; what the kernels
take and the reasons they give; that CI compiles them. GPU (skips without CUDA): the scan against the float64
recurrence over prompts of 1-301 tokens from strided rows, bf16 and float32 state slots; a prompt's scan then decode
steps from the slots equal to one scan of the whole; the decode convolution against its taps; Jamba's real shapes
(8,192 channels, 16 states) over 1,000 tokens."""

import math

import pytest

from kvplan.kernels.configs import INSTANTIATION_SETS, Mamba1ScanConfig
from kvplan.kernels.mamba1_scan import mamba1_supported

torch = pytest.importorskip("torch")

from kvplan.gpu.mamba1 import selective_scan  # noqa: E402

GPU = torch.cuda.is_available()


def test_ci_compiles_it_for_every_arch():
    for arch in ("sm_80", "sm_89", "sm_90"):
        names = {c.name for make in INSTANTIATION_SETS for c in make(arch)}
        assert {Mamba1ScanConfig(a, s).name for a in ("float16", "bfloat16") for s in (a, "float32")} <= names


def test_what_the_kernels_refuse_and_why():
    assert mamba1_supported(8192, 16, 4, "bfloat16", "bfloat16") is None
    assert mamba1_supported(64, 64, 4, "float16", "float32") is None
    assert mamba1_supported(64, 8, 4, "bfloat16", "bfloat16") is None
    assert mamba1_supported(64, 12, 4, "bfloat16", "bfloat16") == "state size 12 is not 8, 16, 32 or 64"
    assert mamba1_supported(64, 128, 4, "bfloat16", "bfloat16") == "state size 128 is not 8, 16, 32 or 64"
    assert mamba1_supported(100, 16, 4, "bfloat16", "bfloat16") == \
        "100 channels are not a positive multiple of 8, or the convolution width 4 is not positive"
    assert mamba1_supported(64, 16, 4, "float32", "bfloat16") == \
        "activations in float32 (the kernel takes float16 or bfloat16)"
    assert mamba1_supported(64, 16, 4, "bfloat16", "int8").startswith("state slots in int8")


def test_long_prompts_split_into_segments_only_when_the_channels_leave_the_gpu_short():
    from kvplan.kernels.mamba1_scan import segments

    assert segments(8192, 64, 132) == 25  # one Jamba prompt: 64 CTAs of 128 channels, 1,584 wanted on an H200
    assert segments(8192, 1600, 132) == 1  # enough CTAs already
    assert segments(1, 256, 132) == 1  # a decode step
    assert segments(301, 6, 132) == 2  # the GPU tests' 3 x 2 CTAs: as many 128-token segments as fit
    assert segments(127, 2, 132) == 1


def test_the_torch_recurrence_is_the_definition():
    """h[c, n] <- exp(dt[c] a[c, n]) h[c, n] + dt[c] x[c] b[n]; y[c] = sum_n h[c, n] c[n], in Python floats."""
    gen = torch.Generator().manual_seed(0)
    r, n, ch, s = 2, 5, 3, 4
    x, dt = torch.randn(r, n, ch, generator=gen), torch.rand(r, n, ch, generator=gen)
    a = -torch.rand(ch, s, generator=gen) * 3
    b, c = torch.randn(r, n, s, generator=gen), torch.randn(r, n, s, generator=gen)
    start = torch.randn(r, ch, s, generator=gen)
    y, last = selective_scan(x, dt, a, b, c, start)
    for seq in range(r):
        h = [[float(start[seq, k, j]) for j in range(s)] for k in range(ch)]
        for t in range(n):
            for k in range(ch):
                step = float(dt[seq, t, k])
                for j in range(s):
                    h[k][j] = math.exp(step * float(a[k, j])) * h[k][j] + step * float(x[seq, t, k] * b[seq, t, j])
                want = sum(h[k][j] * float(c[seq, t, j]) for j in range(s))
                assert abs(float(y[seq, t, k]) - want) < 1e-5 * max(1.0, abs(want))
        assert torch.allclose(last[seq], torch.tensor(h), atol=1e-5)


# ---- GPU ---------------------------------------------------------------------------------------------------------

def _cuda():
    if not GPU:
        pytest.skip("no CUDA device")
    from kvplan.kernels._runtime import kernel_unavailable_reason

    why = kernel_unavailable_reason()
    if why:
        pytest.skip(why)


def _inputs(rows, ch, s, dtype, seed=0, extra=8):
    """x, dt (before its bias), z as views of one [rows, 3 C + extra] block (row stride not their width), bc
    [rows, 2 N], dt_bias, a_log [C, N] float32, d — values in Jamba's ranges (softplus(dt) ~ 0.1-1)."""
    gen = torch.Generator(device="cuda").manual_seed(seed)
    block = torch.randn(rows, 3 * ch + extra, generator=gen, device="cuda").to(dtype)
    x, dt, z = block[:, :ch], block[:, ch:2 * ch], block[:, 2 * ch:3 * ch]
    bc = torch.randn(rows, 2 * s, generator=gen, device="cuda").to(dtype)
    dt_bias = (torch.randn(ch, generator=gen, device="cuda") * 0.5 - 1).to(dtype)
    a_log = torch.rand(ch, s, generator=gen, device="cuda") * 2.7
    d = torch.randn(ch, generator=gen, device="cuda").to(dtype)
    return x, dt, z, bc, dt_bias, a_log, d


def _want(x, dt, z, bc, dt_bias, a_log, d, seqs, state=None):
    """(y with D and the gate, final states) by the float64 recurrence."""
    ch, s = a_log.shape
    steps = torch.nn.functional.softplus(dt.double() + dt_bias.double()).view(seqs, -1, ch)
    b, c = bc.double().view(seqs, -1, 2 * s).split(s, dim=-1)
    xx = x.double().view(seqs, -1, ch)
    y, h = selective_scan(xx, steps, -torch.exp(a_log.double()), b, c, state)
    y = y.double()
    return ((y + d.double() * xx).view(-1, ch) * torch.nn.functional.silu(z.double())), h


def _pool(plan, slots, dtype):
    return torch.full((slots, plan.row_elements), float("nan"), device="cuda", dtype=dtype)


@pytest.mark.parametrize("state_dtype", ["bfloat16", "float32"])
@pytest.mark.parametrize("n", [1, 2, 31, 128, 301])
def test_the_scan_is_the_recurrence(n, state_dtype):
    _cuda()
    from kvplan.kernels.mamba1_scan import Mamba1Plan

    seqs, ch, s = 3, 200, 16  # 200 channels: the second CTA of 128 channels has dead lanes
    plan = Mamba1Plan(ch, s, 4, "bfloat16", state_dtype)
    args = _inputs(seqs * n, ch, s, torch.bfloat16)
    pool = _pool(plan, 5, getattr(torch, state_dtype))
    slots = torch.tensor([4, 0, 2], dtype=torch.int32, device="cuda")
    y = plan.scan(*args, pool, slots, tokens=n)
    want, h = _want(*args, seqs)
    scale = want.abs().max()
    assert float((y.double() - want).abs().max() / scale) < 2e-2  # bf16 output rounding
    states = pool[slots.long(), plan.state_offset:].view(seqs, ch, s).double()
    tol = 1e-5 if state_dtype == "float32" else 1e-2
    assert float((states - h).abs().max() / h.abs().max()) < tol
    assert torch.isnan(pool[1]).all() and torch.isnan(pool[3]).all()  # slots not named are not touched
    assert torch.isnan(pool[slots.long(), :plan.state_offset]).all()  # the scan leaves the windows alone


def test_eight_states_run_four_a_thread():
    """N = 8 takes the four-states form for prompts too (sixteen a thread need N >= 16)."""
    _cuda()
    from kvplan.kernels.mamba1_scan import Mamba1Plan

    seqs, ch, s, n = 2, 64, 8, 37
    plan = Mamba1Plan(ch, s, 4, "bfloat16", "float32")
    args = _inputs(seqs * n, ch, s, torch.bfloat16, seed=5)
    pool = _pool(plan, 2, torch.float32)
    slots = torch.tensor([1, 0], dtype=torch.int32, device="cuda")
    y = plan.scan(*args, pool, slots, tokens=n)
    want, h = _want(*args, seqs)
    assert float((y.double() - want).abs().max() / want.abs().max()) < 2e-2
    states = pool[slots.long(), plan.state_offset:].view(seqs, ch, s).double()
    assert float((states - h).abs().max() / h.abs().max()) < 1e-5


def test_segments_start_from_the_slots_state():
    """A prompt after earlier tokens (load_state) split into segments: the first starts from the slot's state, the
    others from what the segments before hand on."""
    _cuda()
    from kvplan.kernels.mamba1_scan import Mamba1Plan, segments

    ch, s, n = 64, 16, 600
    assert segments(n, 1, 132) == 4
    plan = Mamba1Plan(ch, s, 4, "bfloat16", "float32")
    args = _inputs(n, ch, s, torch.bfloat16, seed=4)
    pool = _pool(plan, 2, torch.float32)
    start = torch.randn(ch, s, device="cuda")
    pool[1, plan.state_offset:] = start.flatten()
    slots = torch.tensor([1], dtype=torch.int32, device="cuda")
    y = plan.scan(*args, pool, slots, tokens=n, load_state=True)
    want, h = _want(*args, 1, start.double()[None])
    assert float((y.double() - want).abs().max() / want.abs().max()) < 2e-2
    assert float((pool[1, plan.state_offset:].view(ch, s).double() - h[0]).abs().max() / h.abs().max()) < 1e-5


def test_decode_steps_continue_a_prompts_scan():
    _cuda()
    from kvplan.kernels.mamba1_scan import Mamba1Plan

    seqs, ch, s, n, more = 2, 256, 16, 40, 5
    plan = Mamba1Plan(ch, s, 4, "bfloat16", "float32")
    x, dt, z, bc, dt_bias, a_log, d = _inputs(seqs * (n + more), ch, s, torch.bfloat16, seed=1)
    pool = _pool(plan, 2, torch.float32)
    slots = torch.tensor([1, 0], dtype=torch.int32, device="cuda")

    def rows(t, first, count):  # the sequences' tokens first .. first + count of tensor t, sequence-major
        return t.view(seqs, n + more, -1)[:, first:first + count].reshape(seqs * count, -1)

    plan.scan(rows(x, 0, n), rows(dt, 0, n), rows(z, 0, n), rows(bc, 0, n), dt_bias, a_log, d, pool, slots, tokens=n)
    got = [plan.scan(rows(x, n + k, 1), rows(dt, n + k, 1), rows(z, n + k, 1), rows(bc, n + k, 1), dt_bias, a_log,
                     d, pool, slots, tokens=1, load_state=True) for k in range(more)]
    want, _ = _want(x, dt, z, bc, dt_bias, a_log, d, seqs)
    want = want.view(seqs, n + more, ch)[:, n:]
    got = torch.stack(got, dim=1).double()
    assert float((got - want).abs().max() / want.abs().max()) < 2e-2


def test_the_decode_convolution_moves_the_window():
    _cuda()
    from kvplan.kernels.mamba1_scan import Mamba1Plan

    b, ch, taps = 3, 96, 4
    plan = Mamba1Plan(ch, 16, taps, "bfloat16", "bfloat16")
    gen = torch.Generator(device="cuda").manual_seed(2)
    pool = torch.randn(4, plan.row_elements, generator=gen, device="cuda").to(torch.bfloat16)
    before = pool.clone()
    xs = torch.randn(b, 2 * ch, generator=gen, device="cuda").to(torch.bfloat16)[:, :ch]  # in_proj's x half
    w = torch.randn(ch, taps, generator=gen, device="cuda").to(torch.bfloat16)
    bias = torch.randn(ch, generator=gen, device="cuda").to(torch.bfloat16)
    slots = torch.tensor([3, 0, 1], dtype=torch.int32, device="cuda")
    out = plan.conv_step(xs, pool, slots, w, bias)
    for i, slot in enumerate(slots.tolist()):
        window = before[slot, :plan.state_offset].view(ch, taps - 1).double()
        taps_in = torch.cat([window, xs[i].double()[:, None]], dim=1)
        want = torch.nn.functional.silu((taps_in * w.double()).sum(-1) + bias.double())
        assert torch.allclose(out[i].double(), want, atol=2e-2, rtol=1e-2)
        assert torch.equal(pool[slot, :plan.state_offset].view(ch, taps - 1), taps_in[:, 1:].to(torch.bfloat16))
        assert torch.equal(pool[slot, plan.state_offset:], before[slot, plan.state_offset:])  # states untouched
    assert torch.equal(pool[2], before[2])


def test_jambas_shapes_over_a_thousand_tokens():
    _cuda()
    from kvplan.kernels.mamba1_scan import Mamba1Plan

    ch, s, n = 8192, 16, 1000  # Jamba-v0.1 / 1.5-Mini at tp 1: mamba_expand 2 x hidden 4096, mamba_d_state 16
    plan = Mamba1Plan(ch, s, 4, "bfloat16", "bfloat16")
    args = _inputs(n, ch, s, torch.bfloat16, seed=3)
    pool = _pool(plan, 1, torch.bfloat16)
    y = plan.scan(*args, pool, torch.zeros(1, dtype=torch.int32, device="cuda"), tokens=n)
    want, h = _want(*args, 1)
    assert float((y.double() - want).abs().max() / want.abs().max()) < 2e-2
    states = pool[0, plan.state_offset:].view(ch, s).double()
    assert float((states - h[0]).abs().max() / h.abs().max()) < 1e-2
