"""The MoE routing rules (kvplan/model/routing.py) per family, against vLLM 0.32's own routers
(tests/data/vllm_routing.json, made by tests/data/vllm_routing.py with vLLM's grouped_topk, fused_topk's torch
form, fused_topk_bias's torch form and Llama4MoE.custom_routing_function): verify's torch routing
(kvplan/gpu/ffn.py route_torch) and the float64 reference's (kvplan/gpu/reference.py route_reference) choose the
same experts with the same weights."""

import json
import math
from pathlib import Path

import pytest

from hub_configs import DEEPSEEK_V3
from kvplan.errors import KvplanError
from kvplan.model.config import Config
from kvplan.model.routing import Routing, routing
from kvplan.model.sources import resolve

torch = pytest.importorskip("torch")
from kvplan.gpu.ffn import route_torch  # noqa: E402
from kvplan.gpu.reference import route_reference  # noqa: E402

VLLM = json.loads((Path(__file__).parent / "data" / "vllm_routing.json").read_text())


def _rule(case) -> Routing:
    """The Routing the case's vLLM arguments stand for."""
    rule = case["rule"]
    if rule.get("llama4"):
        return Routing(scoring="sigmoid", renormalize=False, on_input=True)
    if "num_expert_group" not in rule:  # fused_topk (softmax), fused_topk_bias (MiniMax-M2: sigmoid + bias)
        return Routing(scoring=rule.get("scoring_func", "softmax"), renormalize=rule["renormalize"],
                       correction_bias=case["correction"] is not None)
    return Routing(scoring=rule["scoring_func"], renormalize=rule["renormalize"],
                   scale=rule["routed_scaling_factor"], groups=rule["num_expert_group"],
                   topk_groups=rule["topk_group"], correction_bias=case["correction"] is not None)


@pytest.mark.parametrize("case", VLLM["cases"], ids=[c["name"] for c in VLLM["cases"]])
def test_torch_and_reference_routing_choose_as_vllm(case):
    assert VLLM["vllm"] == "0.32.0"
    r, k = _rule(case), case["top_k"]
    logits = torch.tensor(case["logits"], dtype=torch.float32)
    correction = torch.tensor(case["correction"]) if case["correction"] is not None else None
    weights, ids = route_torch(r, k, logits, correction)
    order = ids.argsort(dim=1)
    assert ids.gather(1, order).tolist() == case["ids"]
    assert torch.allclose(weights.gather(1, order), torch.tensor(case["weights"]), rtol=1e-5, atol=1e-6)
    for t, row in enumerate(case["logits"]):
        got = sorted((e, p) for p, e in route_reference(r, k, row, case["correction"]))
        assert [e for e, _ in got] == case["ids"][t]
        assert [p for _, p in got] == pytest.approx(case["weights"][t], rel=1e-5)


def test_the_groups_decide_which_experts_a_token_may_take():
    """DeepSeek-V3's case: a token's 8 experts come from at most 4 of the 8 groups of 32, and at least one token
    would have taken an expert of a fifth group without them."""
    case = next(c for c in VLLM["cases"] if c["name"] == "deepseek_v3")
    assert all(len({e // 32 for e in row}) <= 4 for row in case["ids"])
    flat = Routing(scoring="sigmoid", renormalize=True, scale=2.5, correction_bias=True)
    _, ungrouped = route_torch(flat, 8, torch.tensor(case["logits"]), torch.tensor(case["correction"]))
    assert any(len({int(e) // 32 for e in row}) > 4 for row in ungrouped)


def test_the_correction_bias_chooses_without_weighing():
    """MiniMax-M2's case (fused_topk_bias, no groups): without the bias some token takes other experts; the weights
    are the chosen experts' sigmoid scores, renormalised, the bias left out."""
    case = next(c for c in VLLM["cases"] if c["name"] == "minimax_m2")
    plain = Routing(scoring="sigmoid", renormalize=True)
    _, unbiased = route_torch(plain, 8, torch.tensor(case["logits"]))
    assert any(sorted(int(e) for e in row) != ids for row, ids in zip(unbiased, case["ids"]))
    row, ids = case["logits"][0], case["ids"][0]
    scores = [1 / (1 + math.exp(-row[e])) for e in ids]
    assert case["weights"][0] == pytest.approx([s / sum(scores) for s in scores], rel=1e-6)


def _bundled(name):
    raw = []
    spec = resolve(name, raw_out=raw)
    return routing(Config(raw[0], spec.name))


def test_bundled_models_route_as_their_vllm_model_code():
    # deepseek_v2.py: grouped_topk with the config's scoring_func, n_group, topk_group, noaux_tc's correction bias
    assert _bundled("deepseek-ai/DeepSeek-V3") == Routing("sigmoid", True, 2.5, 8, 4, correction_bias=True)
    assert _bundled("deepseek-ai/DeepSeek-V2-Lite") == Routing("softmax", False)  # DeepseekV2Config defaults
    # glm4_moe.py: sigmoid and a correction bias always; routed_scaling_factor 1.8 in the file
    assert _bundled("zai-org/GLM-4.7-Flash") == Routing("sigmoid", True, 1.8, correction_bias=True)
    # llama4.py: sigmoid of the top logit, not renormalised, applied to the expert's input
    assert _bundled("meta-llama/Llama-4-Scout-17B-16E-Instruct") == Routing("sigmoid", False, on_input=True)
    assert _bundled("openai/gpt-oss-20b") == Routing(logit_bias=True)  # gpt_oss.py: the router linear's bias
    assert _bundled("mistralai/Mixtral-8x7B-v0.1") == Routing()
    assert _bundled("Qwen/Qwen3-30B-A3B") == Routing()
    # minimax_m2.py: the config's scoring_func, renormalised, use_routing_bias's correction bias, no groups
    assert _bundled("MiniMaxAI/MiniMax-M2.7") == Routing("sigmoid", True, correction_bias=True)


@pytest.mark.parametrize("change, message", [
    ({"topk_group": 9}, r"'topk_group' \(9\) must be at most n_group \(8\)"),
    ({"n_group": 6}, r"'n_group' \(6\) must divide the 256 routed experts"),
    ({"n_group": 64, "topk_group": 1}, r"'num_experts_per_tok' \(8\) must be at most the 4 experts"),
    ({"scoring_func": "softplus"}, "'scoring_func' must be one of softmax, sigmoid, got \"softplus\""),
    ({"routed_scaling_factor": -1}, "'routed_scaling_factor' must be a positive number, got -1"),
    ({"norm_topk_prob": "yes"}, "'norm_topk_prob' must be true or false"),
    ({"n_group": 0}, "'n_group' must be a positive integer"),
])
def test_bad_routing_fields_are_named(change, message):
    with pytest.raises(KvplanError, match=message):
        routing(Config({**DEEPSEEK_V3, **change}, "v3"))


def test_llama4_weighs_one_expert_only():
    raw = {"model_type": "llama4_text", "num_local_experts": 16, "num_experts_per_tok": 2, "num_hidden_layers": 1}
    with pytest.raises(KvplanError, match="num_experts_per_tok is 2; Llama 4 weighs the expert's input"):
        routing(Config(raw, "l4"))


def test_describe_names_each_part_of_the_rule():
    assert Routing("sigmoid", True, 2.5, 8, 4, correction_bias=True).describe() == (
        "sigmoid scores, chosen with a correction bias, from the best 4 of 8 expert groups, top-k renormalised, "
        "times 2.5")
    assert Routing(logit_bias=True).describe() == "the router's bias added, softmax scores, top-k renormalised"
