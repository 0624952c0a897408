"""GLM-4.5 / 4.6 / 4.7 (model_type glm4_moe, Glm4MoeForCausalLM) as vLLM 0.32.0 builds and serves them, run by its
own code on the CPU (no GPU, no weights): make_figures.py's pipeline for each case (Hopper emulation, the model on the
meta device at the case's TP size, the engine core's get_kv_cache_configs, the KVCacheManager admission), and with
--speculative-config {"method": "mtp"} the MTP drafter built beside the target as speculative_figures.py builds it
(model_executor/models/glm4_moe_mtp.py Glm4MoeMTP). For the target, rank 0's parameters are summed by element and
by bytes in the dtype vLLM gives them, grouped by the module that holds them (embedding, LM head, attention, dense
MLP, routed experts, shared experts, router, norms), and what the model built is read off its modules: the
attention's biases, q/k norms, rotary width, heads on the rank; which layers are MoE; the MoE runner's routing
(grouped top-k, groups, scoring, renormalisation, the scale the runner applies to the routed experts' sum,
correction bias) and its experts on the rank.

Configs: the shape configs under benchmarks/configs/ (their README says where each value was read: no verbatim
config.json was found), and variants of GLM-4.5-Air's written here (inputs.config holds each as run):
- MINIMAL: GLM-4.5-Air's without the fields transformers' Glm4MoeConfig fills (partial_rotary_factor,
  use_qk_norm, attention_bias, first_k_dense_replace, n_shared_experts, num_nextn_predict_layers, n_group,
  topk_group, norm_topk_prob, routed_scaling_factor): what vLLM makes of the defaults.
- ROPE_PARAMETERS: GLM-4.5-Air's with its rotary settings as transformers 5 writes them (rope_parameters holding
  rope_theta and a partial_rotary_factor of 0.25, no top-level rope fields).

    HF_HUB_OFFLINE=1 /tmp/vllm-venv/bin/python benchmarks/vllm_reference/glm4_moe_figures.py \
        --out tests/data/vllm_glm4_moe_figures.json
"""

import argparse
import functools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import make_figures as mf  # noqa: E402
import speculative_figures as sf  # noqa: E402
from expert_parallel import prepare_meta_moe  # noqa: E402

GIB = 1 << 30
AIR = "benchmarks/configs/zai-org--GLM-4.5-Air-shape.json"
GLM46 = "benchmarks/configs/zai-org--GLM-4.6-shape.json"
FILLED = ("partial_rotary_factor", "use_qk_norm", "attention_bias", "first_k_dense_replace", "n_shared_experts",
          "num_nextn_predict_layers", "n_group", "topk_group", "norm_topk_prob", "routed_scaling_factor")
ROPE = ("rope_theta", "rope_scaling", "partial_rotary_factor")
MTP = {"method": "mtp", "num_speculative_tokens": 1}
# (config, tp, max_model_len, available KV bytes a worker, speculative config)
CASES = [(model, tp, 32768, 40 * GIB, None) for model in (AIR, GLM46) for tp in (1, 4, 8)]
CASES += [(model, tp, 32768, 40 * GIB, MTP) for model in (AIR, GLM46) for tp in (4, 8)]
CASES += [("glm4_moe_figures.py:MINIMAL", 4, 32768, 40 * GIB, MTP), ("glm4_moe_figures.py:ROPE_PARAMETERS", 4,
                                                                     32768, 40 * GIB, None)]
TARGETS: list = []


def variant_configs() -> dict:
    air = json.loads((mf.REPO / AIR).read_text())
    rope = {k: v for k, v in air.items() if k not in ROPE}
    rope["rope_parameters"] = {"rope_type": "default", "rope_theta": 1000000, "partial_rotary_factor": 0.25}
    return {"MINIMAL": {k: v for k, v in air.items() if k not in FILLED}, "ROPE_PARAMETERS": rope}


def load_config(model: str) -> dict:
    """A shape config under benchmarks/configs, a variant of this script, or what make_figures.py reads."""
    if model.startswith("benchmarks/configs/"):
        return json.loads((mf.REPO / model).read_text())
    if model.startswith("glm4_moe_figures.py:"):
        return variant_configs()[model.split(":", 1)[1]]
    return ORIGINAL_LOAD(model)


ORIGINAL_LOAD = mf.load_model_config


def part_of(name: str) -> str:
    """The group a parameter of Glm4MoeForCausalLM belongs to, by the name vLLM gives it."""
    if name.startswith("model.embed_tokens."):
        return "embed"
    if name.startswith("lm_head."):
        return "lm_head"
    if ".self_attn." in name:
        return "attention"
    if ".mlp.gate." in name:
        return "router"
    if ".mlp.shared_experts." in name:
        return "shared_experts"
    if ".mlp.experts." in name:
        return "experts"
    if ".mlp." in name:
        return "dense"
    return "norms"


def count(model) -> dict:
    groups: dict = {}
    for name, p in model.named_parameters():
        if name.startswith("_kvref_draft."):  # the drafter speculative_figures.py keeps alive on the target
            continue
        g = groups.setdefault(part_of(name), {"parameters": 0, "bytes": 0})
        g["parameters"] += p.numel()
        g["bytes"] += p.numel() * p.element_size()
    return groups


def built(model) -> dict:
    """What the model's modules say about its attention and MoE layers on this rank."""
    layers = list(model.model.layers)
    attn = layers[0].self_attn
    moe_layers = [i for i, layer in enumerate(layers) if type(layer.mlp).__name__ == "Glm4MoE"]
    out = {"num_layers": len(layers), "moe_layers": moe_layers, "attention": {
        "num_heads": attn.num_heads, "num_kv_heads": attn.num_kv_heads, "head_dim": attn.head_dim,
        "scaling": attn.scaling, "qkv_bias": attn.qkv_proj.bias is not None,
        "o_proj_bias": attn.o_proj.bias is not None, "qk_norm": hasattr(attn, "q_norm"),
        "rotary_dim": attn.rotary_emb.rotary_dim,
        "rotary_base": attn.rotary_emb.base, "is_neox_style": attn.rotary_emb.is_neox_style,
        "rotary_class": type(attn.rotary_emb).__name__}}
    if moe_layers:
        moe = layers[moe_layers[0]].mlp
        router, config = moe.experts.router, moe.experts.moe_config
        out["moe"] = {key: getattr(router, key) for key in ("top_k", "global_num_experts", "use_grouped_topk",
                                                           "num_expert_group", "topk_group", "renormalize",
                                                           "scoring_func", "routed_scaling_factor")}
        # the runner scales the routed experts' sum (the router's own factor is then 1.0: fused_moe/layer.py:305-312,
        # :432-438 apply_routed_scale_to_output); the shared expert's output is added unscaled (moe_runner.py:403-420)
        out["moe"].update(runner_routed_scaling_factor=moe.experts.routed_scaling_factor,
                          e_score_correction_bias=moe.gate.e_score_correction_bias is not None,
                          gate_dtype=str(moe.gate.weight.dtype).replace("torch.", ""),
                          router_logits_dtype=str(config.router_logits_dtype).replace("torch.", ""),
                          num_local_experts=config.num_local_experts,
                          intermediate_size_per_partition=config.intermediate_size_per_partition,
                          shared_experts=moe.shared_experts is not None)
    return out


def _target_too(orig):
    """initialize_model that also records the target model's parameters and modules when it is built."""
    def wrapped(vllm_config, **kwargs):
        model = orig(vllm_config=vllm_config, **kwargs)
        if "model_config" not in kwargs and "prefix" not in kwargs:
            TARGETS.append({"parameters": count(model), "built": built(model)})
        return model
    return wrapped


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    args = ap.parse_args()
    from vllm.model_executor.model_loader import utils

    with_speculation = functools.partial(sf.speculative_vllm_config, mf.make_vllm_config)
    mf.load_model_config = load_config
    mf.make_vllm_config = with_speculation
    utils.initialize_model = _target_too(sf._drafter_too(utils.initialize_model))
    prepare_meta_moe()
    records = []
    for model, tp, length, budget, speculative in CASES:
        TARGETS.clear()
        sf.DRAFTS.clear()
        mf._SPEC_CACHE.clear()
        case = dict(model=model, family="glm4_moe", tp=tp, kv_cache_dtype="auto", available_kv_cache_bytes=budget,
                    max_model_len=length, gpu=mf.DEFAULT_GPU, grid="glm4_moe", speculative_config=speculative)
        rec = mf.run_case(case, 4096)
        rec["inputs"]["config"] = load_config(model)
        rec["target"] = TARGETS[0] if TARGETS else None
        rec["draft"] = sf.DRAFTS[0] if sf.DRAFTS else None
        target = rec["target"] or {}
        print(json.dumps({"inputs": {k: v for k, v in rec["inputs"].items() if k != "config"},
                          "error": rec.get("error"), "layers": rec.get("layer_specs"),
                          "blocks": rec.get("kv", {}).get("num_gpu_blocks"), "log": rec.get("log_lines"),
                          "resident": rec.get("resident", {}).get("requests"),
                          "parameters": target.get("parameters"), "built": target.get("built"),
                          "draft": rec["draft"]}), flush=True)
        records.append(rec)
    if args.out:
        mf.write_frozen(args.out, "benchmarks/vllm_reference/glm4_moe_figures.py",
                        "make_figures.py run_case on each config (the MTP drafter built beside the target where a "
                        "speculative config is given, as speculative_figures.py does); the target's rank-0 "
                        "parameters by group and its modules' attention and MoE settings", records)


if __name__ == "__main__":
    main()
