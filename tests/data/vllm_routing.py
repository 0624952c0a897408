"""Make tests/data/vllm_routing.json: experts and weights as vLLM's own routers choose them, for the rules of
kvplan/model/routing.py. Run with vLLM installed (here vLLM 0.32.0 CPU):

    /tmp/vllm-venv/bin/python tests/data/vllm_routing.py > tests/data/vllm_routing.json

grouped_topk (fused_moe/router/grouped_topk_router.py, DeepSeek V2/V3, GLM-4.5/4.7, Nemotron-H; its torch body,
without the torch.compile wrapper), fused_topk's torch form (softmax top-k, Mixtral / Qwen / gpt-oss) and
Llama4MoE.custom_routing_function, on seeded logits and correction biases stored in the file.

MiniMax-M2 (models/minimax_m2.py MiniMaxM2MoE: no grouped top-k, a correction bias) routes through
fused_topk_bias (fused_moe/router/fused_topk_bias_router.py). Its CUDA op (topk_sigmoid) is not in the CPU build
and the CPU router takes softmax only without groups, so the case runs that function's own torch form: the ROCm
AITER switch is patched on and its biased-grouped kernel off, which leaves fused_topk_bias's torch tail."""

import json
from unittest import mock

import torch
from vllm import __version__
from vllm._aiter_ops import rocm_aiter_ops
from vllm.model_executor.layers.fused_moe.router import fused_topk_bias_router
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
    ("minimax_m2", 256, 8, dict(renormalize=True, scoring_func="sigmoid", fused_bias=True, bias=True)),
]
TOKENS = 12


def route(experts, k, rule, logits, bias):
    if rule.get("llama4"):
        return Llama4MoE.custom_routing_function(logits, logits, k, False)
    if rule.get("fused_bias"):
        with mock.patch.object(rocm_aiter_ops, "is_fused_moe_enabled", return_value=True), \
                mock.patch.object(fused_topk_bias_router, "_aiter_can_use_biased_grouped_topk", return_value=False):
            return fused_topk_bias_router.fused_topk_bias(logits, logits, rule["scoring_func"], bias, k,
                                                          rule["renormalize"])
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
