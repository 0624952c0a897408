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
