"""The MoE router kernel (kvplan/kernels/router.cu) against verify's torch routing (softmax over the experts,
top k, renormalised where the model does so, times the routed scale). CPU: argument checks and the instantiation
set. GPU (skips without CUDA): every expert count from Mixtral's 8 to Qwen3-Next's 512, k from 1 to 10, bf16 and
fp32 logits; since bf16 logits tie often, the kernel's chosen experts are checked by their logits (the k largest)
and its weights recomputed in float64 from those logits. The general rules (sigmoid scores, correction bias, expert
groups, the router's own bias; kvplan/model/routing.py) against vLLM 0.32's routers (tests/data/vllm_routing.json)
and verify's torch routing."""

import json
from pathlib import Path

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


def test_general_rule_arguments_are_checked_before_touching_a_gpu():
    with pytest.raises(ValueError, match=r"groups \(6\) must split the 256 experts evenly"):
        RouterPlan(256, 8, "float32", True, groups=6)
    with pytest.raises(ValueError, match=r"topk_groups must be an int in 1\.\.8, got 9"):
        RouterPlan(256, 8, "float32", True, groups=8, topk_groups=9)
    with pytest.raises(ValueError, match=r"groups must be an int in 1\.\.32, got 64"):
        RouterPlan(256, 8, "float32", True, groups=64)
    with pytest.raises(ValueError, match=r"top_k \(9\) must be at most the 8 experts"):
        RouterPlan(256, 9, "float32", True, groups=32, topk_groups=1)
    with pytest.raises(ValueError, match="into groups of two or more"):
        RouterPlan(16, 2, "float32", True, groups=16, topk_groups=4, correction=True)
    with pytest.raises(ValueError, match="scoring must be softmax or sigmoid"):
        RouterPlan(16, 2, "float32", True, scoring="softplus")


VLLM_CASES = json.loads((Path(__file__).parent / "data" / "vllm_routing.json").read_text())["cases"]


@pytest.mark.parametrize("case", VLLM_CASES, ids=[c["name"] for c in VLLM_CASES])
def test_general_rules_choose_as_vllm(kernel_torch, case):
    """vLLM 0.32's own routers' choices (tests/data/vllm_routing.json): grouped_topk for DeepSeek V2 / V3, GLM and
    Nemotron-H's rules, softmax top-k, Llama 4's sigmoid of the top logit; float32 logits (no ties)."""
    torch = kernel_torch
    rule = case["rule"]
    grouped = "num_expert_group" in rule
    # MiniMax-M2's sigmoid with a correction bias has no groups: the scoring and the bias come from the rule either way
    kwargs = dict(scoring=rule.get("scoring_func", "softmax"), correction=case["correction"] is not None)
    if rule.get("llama4"):
        kwargs = dict(scoring="sigmoid")
    if grouped:
        kwargs.update(groups=rule["num_expert_group"], topk_groups=rule["topk_group"])
    renorm = False if rule.get("llama4") else rule["renormalize"]
    plan = RouterPlan(case["experts"], case["top_k"], "float32", renorm,
                      rule.get("routed_scaling_factor", 1.0), **kwargs)
    logits = torch.tensor(case["logits"], dtype=torch.float32, device="cuda")
    correction = torch.tensor(case["correction"], device="cuda") if case["correction"] is not None else None
    weights, ids = plan.run(logits, correction=correction)
    torch.cuda.synchronize()
    order = ids.argsort(dim=1)
    assert ids.gather(1, order).cpu().tolist() == case["ids"]
    assert torch.allclose(weights.gather(1, order).cpu(), torch.tensor(case["weights"]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("experts, k, groups, topk_groups, scoring, correction", [
    (256, 8, 8, 4, "sigmoid", True), (64, 4, 1, 1, "sigmoid", True), (160, 6, 8, 3, "softmax", False),
    (512, 10, 32, 5, "sigmoid", True), (16, 1, 1, 1, "sigmoid", False), (60, 3, 4, 2, "softmax", True)])
def test_general_rules_match_verifys_torch_routing(kernel_torch, experts, k, groups, topk_groups, scoring, correction):
    """The kernel against kvplan/gpu/ffn.py route_torch on 300 tokens, with a joined shared expert's columns after
    the routed ones and int32 ids as verify takes them."""
    torch = kernel_torch
    from kvplan.gpu.ffn import route_torch
    from kvplan.model.routing import Routing

    gen = torch.Generator(device="cuda").manual_seed(experts + k)
    logits = torch.randn(300, experts, device="cuda", generator=gen) * 2
    bias = torch.randn(experts, device="cuda", generator=gen) * 0.1 if correction else None
    plan = RouterPlan(experts, k, "float32", True, 2.5, ids_dtype="int32", shared=1, scoring=scoring, groups=groups,
                      topk_groups=topk_groups, correction=correction)
    weights, ids = plan.run(logits, correction=bias)
    r = Routing(scoring, True, 2.5, groups, topk_groups, correction_bias=correction)
    want_w, want_i = route_torch(r, k, logits, bias)
    order, want_order = ids[:, :k].long().argsort(1), want_i.argsort(1)
    assert torch.equal(ids[:, :k].long().gather(1, order), want_i.gather(1, want_order))
    assert torch.allclose(weights[:, :k].gather(1, order), want_w.gather(1, want_order), rtol=1e-5, atol=1e-6)
    assert torch.equal(ids[:, k], torch.full((300,), experts, dtype=torch.int32, device="cuda"))
    with pytest.raises(ValueError, match="correction must be a contiguous CUDA"):
        plan.run(logits, correction=None if correction else torch.zeros(experts, device="cuda"))


def test_the_routers_own_bias_is_added_to_the_logits(kernel_torch):
    """gpt-oss: the router linear's bias, in the logits' dtype, before the softmax."""
    torch = kernel_torch
    gen = torch.Generator(device="cuda").manual_seed(7)
    logits = torch.randn(50, 32, device="cuda", generator=gen)
    bias = torch.randn(32, device="cuda", generator=gen) * 3
    weights, ids = RouterPlan(32, 4, "float32", True, logit_bias=True).run(logits, logit_bias=bias)
    plain_w, plain_i = RouterPlan(32, 4, "float32", True).run(logits + bias)
    torch.cuda.synchronize()
    assert torch.equal(ids.sort(1).values, plain_i.sort(1).values)
    assert torch.allclose(weights.sort(1).values, plain_w.sort(1).values, rtol=1e-5, atol=1e-6)
