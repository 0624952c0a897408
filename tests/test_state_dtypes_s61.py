"""verify's Mamba-2 state pools in the dtypes the engine keeps them in: vLLM's NemotronH config handler sets the SSM
(temporal) state to float32 while the convolution window stays in the model dtype (models/config.py 0.32.0:717-732,
mamba_utils.py 0.32.0:97-110), so a slot is two tensors, [slots, window] bfloat16 and [slots, state] float32, as
vLLM views one page as both. The estimate's per-sequence state bytes are then the engine's, and verify's pools
hold exactly them (the capacity check compares the two).

Nemotron-H-8B by hand (hub config): 24 Mamba-2 layers of 128 heads x 64, state 128, 8 groups, conv kernel 4: a
window of 3 x (8192 + 2 x 8 x 128) = 30,720 values and a state of 128 x 64 x 128 = 1,048,576 values a layer."""

import pytest

from hub_configs import NEMOTRON_H_8B
from kvplan import verify as V
from kvplan.verify.layout import served_spec
from kvplan.engines import get_engine
from kvplan.errors import FieldError
from kvplan.model import parse_config
from kvplan.model.kinds import LinearState
from kvplan.plan.budget import fixed_budget
from kvplan.plan.catalog import find_gpu
from kvplan.plan.plan import plan

GiB = 2**30
WINDOW, STATE, LAYERS = 3 * (8192 + 2 * 8 * 128), 128 * 64 * 128, 24


def served(config, name="nvidia/Nemotron-H-8B-Base-8K", version="0.32.0"):
    spec = parse_config(config, name)
    return served_spec(spec, get_engine(f"vllm=={version}"), find_gpu("H200"))


def test_nemotron_h_is_served_with_a_float32_ssm_state():
    assert served(NEMOTRON_H_8B).state_dtypes == ("bf16", "fp32")


def test_layout_holds_the_window_and_the_state_in_their_own_dtypes():
    spec = served(NEMOTRON_H_8B)
    p = plan(spec, context=8192, kv_dtype="auto", tp=1, budget_for=fixed_budget(40 * GiB), block_size=16)
    assert p.state_bytes_per_sequence_per_gpu == LAYERS * (WINDOW * 2 + STATE * 4) == 102_137_856
    layout = V.cache_layout(spec, p)
    (state,) = [g for g in layout.groups if g.kind == "linear"]
    slots = p.max_concurrency
    assert state.tensor_shapes == ((slots, WINDOW), (slots, STATE))
    assert state.dtypes == ("bf16", "fp32")
    assert state.layer_bytes == WINDOW * 2 * slots + STATE * 4 * slots
    assert len(state.layers) == LAYERS
    # what verify allocates is what the plan predicts: the capacity check's two sides
    assert layout.allocated_bytes == layout.predicted_bytes


def test_one_dtype_keeps_one_pool():
    """Before the handler (vLLM 0.10.x has no mamba_ssm_cache_dtype) both states are in the model dtype: one tensor
    a layer, [slots, window + state] bfloat16."""
    spec = served(NEMOTRON_H_8B, version="0.10.0")
    p = plan(spec, context=8192, kv_dtype="auto", tp=1, budget_for=fixed_budget(40 * GiB), block_size=16)
    assert p.state_bytes_per_sequence_per_gpu == LAYERS * (WINDOW + STATE) * 2
    (state,) = [g for g in V.cache_layout(spec, p).groups if g.kind == "linear"]
    assert state.tensor_shapes == ((p.max_concurrency, WINDOW + STATE),) and state.dtypes == ("bf16",)


def test_two_dtypes_on_a_mixer_verify_keeps_in_one_are_refused():
    """A Mamba-1 layer (Jamba) whose states the engine would keep in two dtypes: verify's Mamba-1 scan takes one pool,
    so the layout refuses it in one sentence naming the field (verify refuses the flags before that)."""
    from dataclasses import replace

    from hub_configs import JAMBA

    spec = replace(parse_config(JAMBA, "ai21labs/AI21-Jamba-1.5-Mini"), state_dtypes=("bf16", "fp32"))
    assert any(isinstance(layer, LinearState) and layer.flavor == "mamba" for layer in spec.layers)
    p = plan(spec, context=4096, kv_dtype="auto", tp=1, budget_for=fixed_budget(40 * GiB), block_size=16)
    with pytest.raises(FieldError, match="mamba layer's convolution and recurrent states in one dtype"):
        V.cache_layout(spec, p)


def split_state_caches(arch, window: int) -> dict:
    """verify's small CPU caches for `arch` with every state slot as two zeroed float32 tensors, [slots, window] and
    [slots, recurrent state], as the layout gives them where the engine keeps two dtypes."""
    import torch

    from kvplan.gpu.caches import small_caches
    from kvplan.gpu.step import LayerCache

    split = {}
    for index, cache in small_caches(arch, 64, 4, 2, torch.float32).items():
        if cache.kind == "state":
            rows, width = cache.tensors[0].shape
            tensors = (torch.zeros(rows, window), torch.zeros(rows, width - window))
            cache = LayerCache(cache.kind, cache.group, tensors, cache.window)
        split[index] = cache
    return split


def test_mamba2_forward_reads_two_pools_as_one():
    """The torch path of verify's Mamba-2 layer (CPU) over two tensors a slot (window, state) matches the float64
    reference as the one-pool form does."""
    pytest.importorskip("torch")
    from test_verify_model import TOL, run_against_reference, tiny

    arch = tiny("nemotron_h")
    split = split_state_caches(arch, arch.conv_dim_rank * (arch.conv_kernel - 1))
    assert sum(c.kind == "state" and len(c.tensors) == 2 for c in split.values()) == 2  # two Mamba-2 layers
    assert run_against_reference(arch, caches=split) < TOL


def test_gated_deltanet_forward_reads_two_pools_as_one():
    """verify's gated DeltaNet (torch step) over two tensors a slot, [slots, window] and [slots, recurrent state], as
    the layout gives it where the engine keeps two dtypes (Qwen3-Next / Qwen3.5 from vLLM 0.17): the float64
    reference matched as with one pool."""
    pytest.importorskip("torch")
    from test_verify_model import TOL, run_against_reference, tiny

    arch = tiny("qwen3_next")
    split = split_state_caches(arch, arch.conv_dim // arch.tp * (arch.conv_kernel - 1))
    assert any(c.kind == "state" and len(c.tensors) == 2 for c in split.values())
    assert run_against_reference(arch, caches=split) < TOL


# ---- GPU --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch", [1, 6])
def test_step_kernel_with_a_bf16_window_and_a_float32_state(batch):
    """The step kernel with the window pool in bfloat16 and the state pool in float32 (two modules: the
    convolution from the bfloat16 one) against the float64 reference of tests/test_mamba_step.py."""
    from test_mamba_step import _reference, _torch_cuda

    torch = _torch_cuda()
    from kvplan.kernels._runtime import kernel_unavailable_reason
    from kvplan.kernels.mamba_step import MambaStepPlan

    if kernel_unavailable_reason():
        pytest.skip(kernel_unavailable_reason())
    heads, groups, p, n, taps, eps, act = 16, 2, 64, 128, 4, 1e-5, torch.bfloat16
    plan = MambaStepPlan(heads, groups, p, n, taps, "bfloat16", "float32", conv_dtype="bfloat16")
    gen = torch.Generator(device="cuda").manual_seed(77 + batch)
    channels, inner = plan.channels, heads * p

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, device="cuda", generator=gen) * scale).to(act)

    proj = rnd(batch, inner + channels + heads)
    z, xbc, dt = proj[:, :inner], proj[:, inner:inner + channels], proj[:, inner + channels:]
    w = (rnd(channels, taps, scale=0.5), rnd(channels, scale=0.2), rnd(heads, scale=0.5), rnd(heads), rnd(heads),
         rnd(inner))
    count = batch * 2 + 3
    windows = (torch.randn(count, plan.state_offset, device="cuda", generator=gen) * 0.2).to(torch.bfloat16)
    states = torch.randn(count, plan.row_elements - plan.state_offset, device="cuda", generator=gen) * 0.2
    slots = torch.randperm(count, device="cuda", generator=gen)[:batch].to(torch.int32)
    rows = torch.cat([windows.double(), states.double()], dim=1)[slots.long()]
    want, want_rows = _reference(torch, xbc, dt, z, rows, w, heads, groups, p, n, taps, eps)
    before_w, before_s = windows.clone(), states.clone()
    got = plan.run(xbc, dt, z, windows, slots, *w, eps, state_pool=states)
    torch.cuda.synchronize()
    assert (got.double().cpu() - want.cpu()).abs().max().item() < 0.05 * max(1.0, want.abs().max().item())
    new_rows = torch.cat([windows.double(), states.double()], dim=1)[slots.long()].cpu()
    window_err = (new_rows[:, :plan.state_offset] - want_rows[:, :plan.state_offset]).abs().max().item()
    state_err = (new_rows[:, plan.state_offset:] - want_rows[:, plan.state_offset:]).abs().max().item()
    assert window_err < 1e-2 * max(1.0, want_rows.abs().max().item())  # bfloat16 window
    assert state_err < 1e-4 * max(1.0, want_rows.abs().max().item())  # float32 state
    others = torch.ones(count, dtype=torch.bool, device="cuda")
    others[slots.long()] = False
    assert torch.equal(windows[others], before_w[others]) and torch.equal(states[others], before_s[others])
    with pytest.raises(ValueError, match="state_pool"):
        plan.run(xbc, dt, z, windows, slots, *w, eps)


@pytest.mark.parametrize("model, flags, conv, ssm, tensors", [
    # Kimi-Linear: KDA's recurrent state float32 whatever the window's dtype; its forward takes two tensors always
    ("moonshotai/Kimi-Linear-48B-A3B-Instruct", {"mamba_cache_dtype": "float32"}, "fp32", "fp32", 2),
    # Qwen3-Next's gated DeltaNet reads the SSM flag from 0.17 (mamba_utils.py 0.17.0:79-88): bf16 + fp32, two tensors
    ("Qwen/Qwen3-Next-80B-A3B-Thinking", {"mamba_ssm_cache_dtype": "float32"}, "bf16", "fp32", 2),
    ("Qwen/Qwen3-Next-80B-A3B-Thinking", {}, "bf16", "bf16", 1),
])
def test_state_layouts_the_forward_takes(model, flags, conv, ssm, tensors):
    """Each linear-state group laid out in as many tensors as verify's forward of that mixer takes (gpu/kda.py
    unpacks two; gpu/deltanet.py one pool or two), and the layout's bytes the plan's prediction."""
    from kvplan.commands.verify import verify_flags
    from kvplan.engines.vllm_cache_flags import with_cache_flags
    from kvplan.model.sources import resolve

    flag = verify_flags(mamba_cache_dtype=flags.get("mamba_cache_dtype"),
                        mamba_ssm_cache_dtype=flags.get("mamba_ssm_cache_dtype"))
    spec = served_spec(with_cache_flags(resolve(model), flag), get_engine("vllm==0.32.0"), find_gpu("H200"))
    p = plan(spec, context=8192, kv_dtype="auto", tp=4, budget_for=fixed_budget(60 * GiB), block_size=None)
    (state,) = [g for g in V.cache_layout(spec, p).groups if g.kind == "linear"]
    assert len(state.tensor_shapes) == tensors
    assert state.dtypes == ((conv, ssm) if tensors == 2 else (conv,))
    layout = V.cache_layout(spec, p)
    assert layout.allocated_bytes == layout.predicted_bytes
