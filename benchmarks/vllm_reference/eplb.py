"""What vLLM 0.32.0 builds on one rank under --enable-eplb, run by its own code on the CPU (no GPU, no weights):
EngineArgs(tp, dp, enable_expert_parallel=True, enable_eplb=True, eplb_config={"num_redundant_experts": R}) ->
VllmConfig; the model built on the meta device at the chosen flattened rank (expert_parallel.py's build: its
FusedMoE takes E + R physical experts, (E + R) / ep a rank); then EplbState.add_model (distributed/eplb/
eplb_state.py) on that model, as gpu_model_runner.py load_model calls it inside the weights' DeviceMemoryProfiler,
with the communicator stubbed (no peers here). Each record: the rank's parameters (routed experts / rest), what
the first RoutedExperts reports, and the bytes of every tensor EplbState allocated (the expert transfer buffer on
the meta device as the weights are, the maps and load windows on the CPU), plus the largest of one layer's local
expert tensors (the profile run's dummy all_gather gathers ep copies of it: rebalance_execute.py). Cases vLLM's
config or FusedMoE refuses keep the error.

    HF_HUB_OFFLINE=1 /tmp/vllm-venv/bin/python benchmarks/vllm_reference/eplb.py --out tests/data/vllm_eplb.json
"""

import argparse
import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import make_figures as mf  # noqa: E402
from expert_parallel import prepare_meta_moe, routed_parameters  # noqa: E402

V3, QWEN = "deepseek-ai/DeepSeek-V3", "Qwen/Qwen3-30B-A3B"
# (model, tp, dp, enable_expert_parallel, num_redundant_experts, flattened ranks to build)
CASES = [
    (V3, 1, 8, True, 32, [0, 7]),  # 256 + 32 = 288 physical experts, 36 a rank
    (V3, 8, 1, True, 0, [0]),  # EPLB without redundant experts: 32 a rank, the state alone
    (QWEN, 4, 1, True, 4, [0]),  # 132 / 4 = 33
    (QWEN, 4, 1, True, 8, [0]),  # 136 / 4 = 34
    (QWEN, 2, 2, True, 8, [3]),
    (QWEN, 1, 3, True, 0, [0]),  # 128 over 3 ranks: refused (EPLB needs an even split)
    (QWEN, 4, 1, False, 4, [0]),  # EPLB without EP: refused by ParallelConfig
]


def _engine_config(model: str, tp: int, dp: int, ep: bool, redundant: int, rec: dict):
    from vllm.config import parallel as parallel_module
    from vllm.engine.arg_utils import EngineArgs
    from vllm.usage.usage_lib import UsageContext

    # ParallelConfig refuses EPLB off CUDA / ROCm / XPU: the config check alone sees a CUDA platform
    platform = parallel_module.current_platform
    saved = platform.is_cuda_alike
    platform.is_cuda_alike = lambda: True
    try:
        return _create(EngineArgs, UsageContext, model, tp, dp, ep, redundant, rec)
    finally:
        platform.is_cuda_alike = saved


def _create(EngineArgs, UsageContext, model, tp, dp, ep, redundant, rec):
    for drop in (False, True):
        try:
            kwargs = dict(model=mf.config_dir(model, drop), skip_tokenizer_init=True, load_format="dummy",
                          tensor_parallel_size=tp, data_parallel_size=dp, enable_expert_parallel=ep,
                          enable_eplb=True, eplb_config={"num_redundant_experts": redundant,
                                                         "communicator": "torch_gloo"},
                          max_model_len=4096)
            vc = EngineArgs(**kwargs).create_engine_config(UsageContext.OPENAI_API_SERVER)
            rec["weights_quantization_dropped"] = drop
            return vc
        except Exception as e:  # noqa: BLE001
            if drop or "quantiz" not in str(e).lower():
                rec["error"] = f"{type(e).__name__}: {e}"[:600]
                return None


def _build_model(vc, tp: int, dp: int, rank: int):
    import torch
    from vllm.config import set_current_vllm_config
    from vllm.distributed import parallel_state as ps
    from vllm.model_executor.model_loader.utils import initialize_model
    from vllm.utils.torch_utils import set_default_torch_dtype

    with mf.tensor_parallel(vc, tp):
        ps._TP.rank_in_group = rank % tp
        saved_dp = ps._DP
        fake_dp = copy.copy(saved_dp)
        fake_dp.world_size, fake_dp.rank_in_group, fake_dp.ranks = dp, rank // tp, list(range(dp))
        ps._DP = fake_dp
        try:
            with set_current_vllm_config(vc), set_default_torch_dtype(vc.model_config.dtype), torch.device("meta"):
                return initialize_model(vllm_config=vc)
        finally:
            ps._DP = saved_dp


def _tensor_bytes(t) -> int:
    return t.numel() * t.element_size()


def _eplb_state(vc, model) -> dict:
    """EplbState.add_model on the built model; the bytes of each tensor it keeps."""
    import torch
    from vllm.config import set_current_vllm_config
    from vllm.distributed.eplb import eplb_state as es
    from vllm.model_executor.models.interfaces import get_mixture_of_experts_model

    moe = get_mixture_of_experts_model(model)
    es.get_eplb_group = lambda: None
    es.create_eplb_communicator = lambda **kwargs: None  # peers' transfers: not memory on this rank
    state = es.EplbState(vc.parallel_config, torch.device("cpu"))
    with set_current_vllm_config(vc):
        state.add_model(moe, vc.model_config)
    (ms,) = state.model_states.values()
    tensors = {name: _tensor_bytes(getattr(ms, name)) for name in
               ("physical_to_logical_map_buffer", "logical_to_physical_map", "logical_replica_count",
                "expert_load_pass_buffer", "expert_load_window", "last_expert_load")}
    tensors["expert_buffer"] = sum(_tensor_bytes(t) for t in ms.expert_buffer)
    tensors["num_unpadded_tokens_tensors"] = sum(_tensor_bytes(t) for t in ms.num_unpadded_tokens_tensors)
    tensors["should_record_tensor"] = _tensor_bytes(state.should_record_tensor)
    layer = list(moe.expert_weights[0])
    return {"num_moe_layers": moe.num_moe_layers, "num_physical_experts": moe.num_physical_experts,
            "num_redundant_experts": moe.num_redundant_experts, "window_size": state.expert_load_window_size,
            "shapes": {name: list(getattr(ms, name).shape) for name in
                       ("physical_to_logical_map_buffer", "logical_to_physical_map", "expert_load_window")},
            "bytes": tensors, "layer_expert_tensors": [_tensor_bytes(t) for t in layer],
            "largest_layer_expert_tensor": max(_tensor_bytes(t) for t in layer)}


def build(model: str, tp: int, dp: int, ep: bool, redundant: int, rank: int) -> dict:
    rec = {"model": model, "tp": tp, "dp": dp, "enable_expert_parallel": ep, "enable_eplb": True,
           "num_redundant_experts": redundant, "rank": rank}
    vc = _engine_config(model, tp, dp, ep, redundant, rec)
    if vc is None:
        return rec
    try:
        m = _build_model(vc, tp, dp, rank)
    except Exception as e:  # noqa: BLE001  (FusedMoE's own refusal)
        rec["error"] = f"{type(e).__name__}: {e}"[:600]
        return rec
    mod, parts = routed_parameters(m)
    mp = mod.moe_config.moe_parallel_config
    first = {"tp_size": mp.tp_size, "ep_size": mp.ep_size, "ep_rank": mp.ep_rank, "use_ep": mp.use_ep,
             "local_num_experts": mod.local_num_experts, "global_num_experts": mod.global_num_experts}
    rec.update(fused_moe=first, parameters=parts, eplb_state=_eplb_state(vc, m))
    del m
    return rec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    args = ap.parse_args()

    prepare_meta_moe()
    records = []
    for model, tp, dp, ep, redundant, ranks in CASES:
        for rank in ranks:
            mf.clear_once_caches()
            rec = build(model, tp, dp, ep, redundant, rank)
            print(json.dumps(rec), flush=True)
            records.append(rec)
    if args.out:
        mf.write_frozen(args.out, "benchmarks/vllm_reference/eplb.py",
                        "EngineArgs(tp, dp, enable_expert_parallel, enable_eplb, eplb_config num_redundant_experts) "
                        "-> model on the meta device at the chosen rank (TP and DP groups reporting the case's "
                        "sizes); EplbState.add_model on it (communicator stubbed); parameters and EPLB tensors "
                        "counted per rank", records)


if __name__ == "__main__":
    main()
