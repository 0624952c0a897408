"""What one TP rank of Kimi Linear holds, as vLLM 0.32.0 builds the model (vllm/models/kimi_k3/nvidia/model.py
KimiLinearForCausalLM), run by its own code on the CPU: make_figures.py's config and Hopper emulation, the model
instantiated on the meta device with the case's TP size, then every parameter and buffer of rank 0 counted by
element and by bytes in the dtype vLLM gives it, grouped by the kind of module that holds it (KDA layer, MLA layer,
routed experts, ...). No weights are read.

    HF_HUB_OFFLINE=1 /tmp/vllm-venv/bin/python benchmarks/vllm_reference/kimi_weights.py \
        --out tests/data/vllm_kimi_linear_weights.json
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import make_figures as mf  # noqa: E402

MODEL = mf.KIMI_MODEL
TPS = (1, 2, 4, 8)


def part_of(name: str) -> str:
    """The group a parameter's name belongs to (the names vLLM gives them)."""
    if ".block_sparse_moe.experts." in name:
        return "routed_experts"
    if ".shared_experts." in name:
        return "shared_experts"
    if ".block_sparse_moe.gate." in name:
        return "router"
    if ".self_attn." in name:
        return "kda" if any(k in name for k in ("in_proj_qkvgfab", "f_b_proj", "conv1d", "A_log", "dt_bias",
                                                  "g_a_proj", "g_b_proj", "o_norm")) or \
            name.split(".self_attn.")[0].split(".")[-1] in KDA_LAYERS else "mla"
    if ".mlp." in name:
        return "dense_mlp"
    if "embed_tokens" in name:
        return "embed"
    if "lm_head" in name:
        return "lm_head"
    return "norms"


KDA_LAYERS: set = set()


def count(tp: int) -> dict:
    import torch
    from vllm.model_executor.model_loader.utils import initialize_model
    from vllm.utils.torch_utils import set_default_torch_dtype

    case = dict(model=MODEL, family="kimi", tp=tp, kv_cache_dtype="auto", available_kv_cache_bytes=10 << 30,
                max_model_len=32768, gpu=mf.DEFAULT_GPU, grid="weights")
    vc = mf.make_vllm_config(case, False)
    cfg = mf.load_model_config(MODEL)
    KDA_LAYERS.clear()
    KDA_LAYERS.update(str(i - 1) for i in cfg["linear_attn_config"]["kda_layers"])
    with mf.tensor_parallel(vc, tp), set_default_torch_dtype(vc.model_config.dtype), torch.device("meta"):
        model = initialize_model(vllm_config=vc)
    groups: dict = {}
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        g = groups.setdefault(part_of(name), {"elements": 0, "bytes": 0})
        g["elements"] += tensor.numel()
        g["bytes"] += tensor.numel() * tensor.element_size()
    total = {"elements": sum(g["elements"] for g in groups.values()),
             "bytes": sum(g["bytes"] for g in groups.values())}
    return {"inputs": {"model": MODEL, "tp": tp}, "groups": groups, "total": total}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    args = ap.parse_args()
    mf.install_gpu_emulation()
    records = []
    for tp in TPS:
        rec = count(tp)
        print(json.dumps(rec), flush=True)
        records.append(rec)
    if args.out:
        mf.write_frozen(args.out, "benchmarks/vllm_reference/kimi_weights.py",
                        "make_figures.py config and emulation; KimiLinearForCausalLM on the meta device at each TP "
                        "size; rank 0's parameters and buffers summed by element and by bytes", records)


if __name__ == "__main__":
    main()
