"""Make tests/data/vllm_routing.json: experts and weights as vLLM's own routers choose them, for the rules of
kvplan/model/routing.py. Run with vLLM installed (here vLLM 0.32.0 CPU):

    /tmp/vllm-venv/bin/python tests/data/vllm_routing.py > tests/data/vllm_routing.json

grouped_topk (fused_moe/router/grouped_topk_router.py, DeepSeek V2/V3, GLM-4.5/4.7, Nemotron-H; its torch body,
without the torch.compile wrapper), fused_topk's torch form (softmax top-k, Mixtral / Qwen / gpt-oss) and
Llama4MoE.custom_routing_function, on seeded logits and correction biases stored in the file."""

import json

import torch
from vllm import __version__
from vllm.model_executor.layers.fused_moe.router.grouped_topk_router import grouped_topk
from vllm.model_executor.models.llama4 import Llama4MoE

CASES = [  # name, experts, top k, rule
    ("deepseek_v3", 256, 8, dict(renormalize=True, num_expert_group=8, topk_group=4, scoring_func="sigmoid",
                                 routed_scaling_factor=2.5, bias=True)),
    ("glm_4_7_flash", 64, 4, dict(renormalize=True, num_expert_group=1, topk_group=1, scoring_func="sigmoid",
                                  routed_scaling_factor=1.8, bias=True)),
    ("deepseek_v2", 160, 6, dict(renormalize=False, num_expert_group=8, topk_group=3, scoring_func="softmax",
                                 routed_scaling_factor=16.0, bias=False)),
    ("nemotron_h_groups", 128, 6, dict(renormalize=True, num_expert_group=4, topk_group=2, scoring_func="sigmoid",
                                       routed_scaling_factor=2.5, bias=True)),
    ("softmax_renormalised", 64, 6, dict(renormalize=True)),
    ("softmax", 64, 6, dict(renormalize=False)),
    ("llama4", 16, 1, dict(llama4=True)),
]
TOKENS = 12


def route(experts, k, rule, logits, bias):
    if rule.get("llama4"):
        return Llama4MoE.custom_routing_function(logits, logits, k, False)
    if "num_expert_group" not in rule:  # fused_topk's torch form: softmax, top k, renormalised where asked
        weights, ids = torch.topk(torch.softmax(logits, dim=-1), k, dim=-1)
        if rule["renormalize"]:
            weights = weights / weights.sum(-1, keepdim=True)
        return weights, ids
    body = getattr(grouped_topk, "_torchdynamo_orig_callable", None) or getattr(grouped_topk, "__wrapped__",
                                                                                  grouped_topk)
    return body(logits, logits, k, rule["renormalize"], rule["num_expert_group"], rule["topk_group"],
                rule["scoring_func"], rule["routed_scaling_factor"], bias)


def main():
    out = {"vllm": __version__, "script": "tests/data/vllm_routing.py", "cases": []}
    for i, (name, experts, k, rule) in enumerate(CASES):
        gen = torch.Generator().manual_seed(100 + i)
        # multiples of 1/256: exact in float32 and short in the file
        logits = torch.round(torch.randn(TOKENS, experts, generator=gen, dtype=torch.float32) * 512) / 256
        bias = torch.round(torch.randn(experts, generator=gen) * 25.6) / 256 if rule.get("bias") else None
        weights, ids = route(experts, k, rule, logits, bias)
        order = torch.argsort(ids.long(), dim=-1)  # experts in id order (vLLM leaves them unsorted)
        out["cases"].append({"name": name, "experts": experts, "top_k": k,
                             "rule": {key: v for key, v in rule.items() if key != "bias"},
                             "logits": logits.tolist(), "correction": None if bias is None else bias.tolist(),
                             "ids": torch.gather(ids.long(), 1, order).tolist(),
                             "weights": torch.gather(weights.float(), 1, order).tolist()})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
