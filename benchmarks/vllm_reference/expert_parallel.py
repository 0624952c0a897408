"""What vLLM 0.32.0 builds on one rank under --data-parallel-size / --enable-expert-parallel, run by its own code on
the CPU (no GPU, no weights): EngineArgs(tensor_parallel_size=T, data_parallel_size=D, enable_expert_parallel=EP)
-> VllmConfig, then the model built on the meta device (make_figures.py's Hopper emulation) with the TP group
reporting T ranks and the DP group D ranks, at a chosen flattened rank (dp_rank x T + tp_rank), so FusedMoE's
parallel config comes from its own FusedMoEParallelConfig.make (model_executor/layers/fused_moe/config.py) and its
experts from determine_expert_map (fused_moe/expert_map_manager.py). Each record: the rank's parameters and bytes,
split into the routed experts' own (fused_moe/routed_experts.py RoutedExperts; the router gate is apart) and the
rest, plus what the first RoutedExperts reports (its moe_parallel_config sizes, local_num_experts, intermediate
size a rank).

    HF_HUB_OFFLINE=1 /tmp/vllm-venv/bin/python benchmarks/vllm_reference/expert_parallel.py \
        --out tests/data/vllm_expert_parallel.json
"""

import argparse
import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import make_figures as mf  # noqa: E402

# (model, tp, dp, enable_expert_parallel, flattened ranks to build)
CASES = [
    ("deepseek-ai/DeepSeek-V3", 8, 1, False, [0]),
    ("deepseek-ai/DeepSeek-V3", 8, 1, True, [0]),
    ("deepseek-ai/DeepSeek-V3", 1, 8, True, [0]),
    ("deepseek-ai/DeepSeek-V3", 4, 2, False, [0]),
    ("Qwen/Qwen3-30B-A3B", 1, 1, False, [0]),
    ("Qwen/Qwen3-30B-A3B", 2, 1, True, [0, 1]),
    ("Qwen/Qwen3-30B-A3B", 2, 2, True, [0]),
    ("Qwen/Qwen3-30B-A3B", 1, 3, True, [0, 2]),  # 128 experts over 3 ranks: 43, 43, 42
    ("Qwen/Qwen3-30B-A3B", 2, 2, False, [0]),
    ("mistralai/Mixtral-8x7B-v0.1", 1, 3, True, [0, 2]),  # 8 over 3: 3, 3, 2
    ("meta-llama/Llama-3.1-8B", 2, 2, True, [0]),  # no MoE: EP changes nothing
]


def build(model: str, tp: int, dp: int, ep: bool, rank: int) -> dict:
    import torch
    from vllm.config import set_current_vllm_config
    from vllm.distributed import parallel_state as ps
    from vllm.engine.arg_utils import EngineArgs
    from vllm.model_executor.model_loader.utils import initialize_model
    from vllm.usage.usage_lib import UsageContext
    from vllm.utils.torch_utils import set_default_torch_dtype

    rec = {"model": model, "tp": tp, "dp": dp, "enable_expert_parallel": ep, "rank": rank}
    vc = None
    for drop in (False, True):
        try:
            kwargs = dict(model=mf.config_dir(model, drop), skip_tokenizer_init=True, load_format="dummy",
                          tensor_parallel_size=tp, data_parallel_size=dp, enable_expert_parallel=ep,
                          max_model_len=4096)
            vc = EngineArgs(**kwargs).create_engine_config(UsageContext.OPENAI_API_SERVER)
            rec["weights_quantization_dropped"] = drop
            break
        except Exception as e:  # noqa: BLE001
            if drop or "quantiz" not in str(e).lower():
                rec["error"] = f"{type(e).__name__}: {e}"[:600]
                return rec
    pc = vc.parallel_config
    rec["parallel_config"] = {"data_parallel_size": pc.data_parallel_size, "all2all_backend": pc.all2all_backend,
                              "use_all2all": pc.use_all2all, "use_sequence_parallel_moe": pc.use_sequence_parallel_moe,
                              "enable_expert_parallel": pc.enable_expert_parallel}
    with mf.tensor_parallel(vc, tp):
        tp_group = ps._TP
        tp_group.rank_in_group = rank % tp
        saved_dp = ps._DP
        fake_dp = copy.copy(saved_dp)
        fake_dp.world_size, fake_dp.rank_in_group, fake_dp.ranks = dp, rank // tp, list(range(dp))
        ps._DP = fake_dp
        try:
            with set_current_vllm_config(vc), set_default_torch_dtype(vc.model_config.dtype), torch.device("meta"):
                m = initialize_model(vllm_config=vc)
        finally:
            ps._DP = saved_dp
    mod, parts = routed_parameters(m)
    mp = mod.moe_config.moe_parallel_config
    first = {"tp_size": mp.tp_size, "ep_size": mp.ep_size, "ep_rank": mp.ep_rank, "dp_size": mp.dp_size,
             "use_ep": mp.use_ep, "local_num_experts": mod.local_num_experts,
             "global_num_experts": mod.global_num_experts,
             "intermediate_size_per_partition": mod.intermediate_size_per_partition} if mod is not None else None
    rec.update(fused_moe=first, parameters=parts)
    del m
    return rec


def routed_parameters(m) -> tuple:
    """(the first RoutedExperts module or None, the rank's parameters and bytes split into the routed experts'
    own and the rest)."""
    from vllm.model_executor.layers.fused_moe.routed_experts import RoutedExperts

    moe_names, first = set(), None
    for name, mod in m.named_modules():
        if isinstance(mod, RoutedExperts):
            moe_names.update(f"{name}.{p}" for p, _ in mod.named_parameters(recurse=True))
            first = first or mod
    parts = {"experts": {"parameters": 0, "bytes": 0}, "rest": {"parameters": 0, "bytes": 0}}
    for name, p in m.named_parameters():
        part = parts["experts" if name in moe_names else "rest"]
        part["parameters"] += p.numel()
        part["bytes"] += p.numel() * p.element_size()
    return first, parts


def prepare_meta_moe() -> None:
    """The CUDA emulation and log capture of make_figures, and the expert map's log line stubbed: it reads the map's
    values, which the meta device does not hold."""
    mf.install_gpu_emulation()
    mf.attach_capture()
    from vllm.model_executor.layers.fused_moe.expert_map_manager import ExpertMapManager

    ExpertMapManager.get_compressed_map_string = lambda self: "(meta device)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    args = ap.parse_args()

    prepare_meta_moe()
    records = []
    for model, tp, dp, ep, ranks in CASES:
        for rank in ranks:
            mf.clear_once_caches()
            rec = build(model, tp, dp, ep, rank)
            print(json.dumps(rec), flush=True)
            records.append(rec)
    if args.out:
        mf.write_frozen(args.out, "benchmarks/vllm_reference/expert_parallel.py",
                        "EngineArgs(tp, dp, enable_expert_parallel) -> model on the meta device with the TP and "
                        "DP groups reporting the case's sizes at the chosen rank; parameters counted per rank", records)


if __name__ == "__main__":
    main()
