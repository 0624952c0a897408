"""The MoE router kernel (kvplan/kernels/router.cu) against verify's torch routing (softmax over the experts,
top k, renormalised where the model does so, times the routed scale). CPU: argument checks and the instantiation
set. GPU (skips without CUDA): every expert count from Mixtral's 8 to Qwen3-Next's 512, k from 1 to 10, bf16 and
fp32 logits; since bf16 logits tie often, the kernel's chosen experts are checked by their logits (the k largest)
and its weights recomputed in float64 from those logits."""

import pytest

from kvplan.kernels.configs import INSTANTIATION_SETS, RouterConfig
from kvplan.kernels.router import RouterPlan


def test_shapes_it_refuses_before_touching_a_gpu():
    with pytest.raises(ValueError, match=r"experts must be an int in 1\.\.512, got 513"):
        RouterPlan(513, 4, "bfloat16", True)
    with pytest.raises(ValueError, match=r"top_k must be an int in 1\.\.8, got 9"):
        RouterPlan(8, 9, "bfloat16", True)
    with pytest.raises(ValueError, match=r"top_k must be an int in 1\.\.32, got 0"):
        RouterPlan(64, 0, "bfloat16", True)
    with pytest.raises(ValueError, match="logits must be one of float16, bfloat16, float32, got float64"):
        RouterPlan(64, 6, "float64", False)
    with pytest.raises(ValueError, match="ids_dtype must be int32 or int64"):
        RouterPlan(64, 6, "bfloat16", False, ids_dtype="int16")
    names = {c.name for make in INSTANTIATION_SETS for c in make("sm_90") if isinstance(c, RouterConfig)}
    assert names == {"router_float16", "router_bfloat16", "router_float32"}


@pytest.mark.parametrize("experts, k, renorm, scale", [(8, 2, True, 1.0), (32, 4, True, 1.0), (64, 6, False, 1.0),
                                                       (128, 8, True, 2.5), (512, 10, True, 1.0), (60, 1, False, 1.0)])
@pytest.mark.parametrize("dtype, ids_dtype", [("bfloat16", "int64"), ("float32", "int64"), ("bfloat16", "int32")])
def test_matches_torch_routing(kernel_torch, experts, k, renorm, scale, dtype, ids_dtype):
    torch = kernel_torch
    gen = torch.Generator(device="cuda").manual_seed(experts * 31 + k)
    plan = RouterPlan(experts, k, dtype, renorm, scale, ids_dtype=ids_dtype)
    for tokens in (1, 5, 300):
        logits = (torch.randn(tokens, experts + 3, device="cuda", generator=gen) * 3).to(getattr(torch, dtype))
        logits = logits[:, :experts]  # a row stride larger than the row
        weights, ids = plan.run(logits)
        torch.cuda.synchronize()
        assert weights.dtype == torch.float32 and ids.dtype == getattr(torch, ids_dtype) and ids.shape == (tokens, k)
        lg = logits.double().cpu()
        got = ids.cpu().long()
        assert all(len(set(row.tolist())) == k for row in got)  # k distinct experts per token
        chosen = torch.gather(lg, 1, got)
        assert torch.equal(chosen.sort(dim=1, descending=True).values, lg.topk(k, dim=1).values)
        probs = torch.softmax(lg, dim=1)
        want = torch.gather(probs, 1, got)
        if renorm:
            want = want / want.sum(1, keepdim=True)
        assert torch.allclose(weights.double().cpu(), want * scale, rtol=1e-4, atol=1e-6)
    empty_w, empty_i = plan.run(logits[:0])
    assert empty_w.shape == (0, k) and empty_i.shape == (0, k)
    with pytest.raises(ValueError, match=f"logits must be a CUDA .* tensor \\[tokens, {experts}\\]"):
        plan.run(logits[:, :experts - 1])


@pytest.mark.parametrize("shared, gated", [(1, True), (2, False)])
def test_joined_shared_expert_columns(kernel_torch, shared, gated):
    """A shared expert joined to the routed ones (kvplan/gpu/weights.py join_shared_experts): the routed columns as
    without it, then ids experts, experts + 1, ... at weight sigmoid(gate) (Qwen3-Next: the gate is the column after
    the router's logits in one stacked matmul) or 1."""
    torch = kernel_torch
    experts, k = 64, 6
    gen = torch.Generator(device="cuda").manual_seed(shared)
    both = (torch.randn(7, experts + 1, device="cuda", generator=gen) * 3).bfloat16()
    logits, gate = both[:, :experts], both[:, experts:]
    plain_w, plain_i = RouterPlan(experts, k, "bfloat16", True, 2.0, ids_dtype="int32").run(logits)
    plan = RouterPlan(experts, k, "bfloat16", True, 2.0, ids_dtype="int32", shared=shared)
    weights, ids = plan.run(logits, gate if gated else None)
    torch.cuda.synchronize()
    assert weights.shape == ids.shape == (7, k + shared)
    assert torch.equal(ids[:, :k], plain_i) and torch.equal(weights[:, :k], plain_w)
    assert ids[:, k:].tolist() == [list(range(experts, experts + shared))] * 7
    want = 1 / (1 + torch.exp(-gate.double())) if gated else torch.ones(7, 1, dtype=torch.float64, device="cuda")
    assert torch.allclose(weights[:, k:].double(), want.expand(7, shared), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="gate must be a CUDA"):
        RouterPlan(experts, k, "bfloat16", True).run(logits, gate)  # no shared columns to weigh


def test_shared_columns_are_checked_before_touching_a_gpu():
    with pytest.raises(ValueError, match=r"shared must be an int in 0\.\.22 \(top_k \+ shared <= 32\), got 23"):
        RouterPlan(512, 10, "bfloat16", True, shared=23)
    with pytest.raises(ValueError, match="shared must be an int"):
        RouterPlan(64, 6, "bfloat16", True, shared=True)
