"""What vLLM 0.32.0 holds for a quantised checkpoint, built by its own code on the CPU (no GPU, no weights): a bundled
spec's config.json with a public checkpoint's `quantization_config` block put in, EngineArgs -> VllmConfig (Hopper
emulation of make_figures.py), the model built on the meta device at TP 1, and every parameter it registers
counted (numel x element size), split into the routed experts' own (RoutedExperts) and the rest, and per parameter
name suffix (weight, weight_packed, weight_scale, ...). These are the parameters the quantisation methods'
create_weights register: the checkpoint's layout. What process_weights_after_loading changes on a GPU is not run
here (see kvplan/model/quantized.py for what it changes and why kvplan prices the checkpoint layout).

Kernel selection that needs a CUDA device is stubbed where it does not decide a parameter's shape: the NVFP4 linear
kernel (init_nvfp4_linear_kernel, chosen at scheme construction; it only acts in process_weights_after_loading).

    HF_HUB_OFFLINE=1 /tmp/vllm-venv/bin/python benchmarks/vllm_reference/quantized_weights.py \
        --out tests/data/vllm_quantized_weights.json
"""

import argparse
import copy
import json
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import make_figures as mf  # noqa: E402

# quantization_config blocks of public checkpoints; "source" says where each block was read
KIMI_K2_THINKING_INT4 = {  # moonshotai/Kimi-K2-Thinking config.json, as quoted verbatim in a public write-up
    "config_groups": {"group_0": {"input_activations": None, "output_activations": None, "targets": ["Linear"],
                                  "weights": {"actorder": None, "block_structure": None, "dynamic": False,
                                              "group_size": 32, "num_bits": 4, "observer": "minmax",
                                              "observer_kwargs": {}, "strategy": "group", "symmetric": True,
                                              "type": "int"}}},
    "format": "pack-quantized",
    "ignore": ["lm_head", "re:.*self_attn.*", "re:.*shared_experts.*", "re:.*mlp\\.(gate|up|gate_up|down)_proj.*"],
    "kv_cache_scheme": None, "quant_method": "compressed-tensors", "quantization_status": "compressed"}
_NVFP4_ARGS = {"actorder": None, "block_structure": None, "group_size": 16, "num_bits": 4, "observer": "minmax",
               "observer_kwargs": {}, "strategy": "tensor_group", "symmetric": True, "type": "float"}
LLM_COMPRESSOR_NVFP4 = {  # Firworks/Kimi-Linear-48B-A3B-Instruct-nvfp4 config.json (llm-compressor NVFP4 W4A4)
    "config_groups": {"group_0": {"format": "nvfp4-pack-quantized",
                                  "input_activations": {**_NVFP4_ARGS, "dynamic": "local"},
                                  "output_activations": None, "targets": ["Linear"],
                                  "weights": {**_NVFP4_ARGS, "dynamic": False}}},
    "format": "nvfp4-pack-quantized", "global_compression_ratio": None, "ignore": ["lm_head"],
    "kv_cache_scheme": None, "quant_method": "compressed-tensors", "quantization_status": "compressed"}


def _llm_compressor(fmt: str, weights: dict, inputs) -> dict:
    """An llm-compressor block of one group over every Linear but lm_head (RedHatAI's FP8-dynamic, W8A8 and W4A16
    checkpoints, as their model cards describe them)."""
    return {"config_groups": {"group_0": {"input_activations": inputs, "output_activations": None,
                                          "targets": ["Linear"], "weights": weights}},
            "format": fmt, "ignore": ["lm_head"], "kv_cache_scheme": None, "quant_method": "compressed-tensors",
            "quantization_status": "compressed"}


FP8_DYNAMIC = _llm_compressor(  # RedHatAI/*-FP8-dynamic: fp8 per channel, activations fp8 per token, dynamic
    "float-quantized", {"dynamic": False, "num_bits": 8, "strategy": "channel", "symmetric": True, "type": "float"},
    {"dynamic": True, "num_bits": 8, "strategy": "token", "symmetric": True, "type": "float"})
W8A8_INT8 = _llm_compressor(  # RedHatAI/*-quantized.w8a8: int8 per channel, activations int8 per token, dynamic
    "int-quantized", {"dynamic": False, "num_bits": 8, "strategy": "channel", "symmetric": True, "type": "int"},
    {"dynamic": True, "num_bits": 8, "strategy": "token", "symmetric": True, "type": "int"})
W4A16_G128 = _llm_compressor(  # RedHatAI/*-quantized.w4a16: int4 per group of 128, symmetric
    "pack-quantized", {"dynamic": False, "group_size": 128, "num_bits": 4, "strategy": "group", "symmetric": True,
                       "type": "int"}, None)
W4A16_G128_ASYM = copy.deepcopy(W4A16_G128)
W4A16_G128_ASYM["config_groups"]["group_0"]["weights"]["symmetric"] = False
FP8_BLOCK = _llm_compressor(  # llm-compressor FP8_BLOCK: 128 x 128 weight blocks, activations per 128-group
    "float-quantized", {"block_structure": [128, 128], "dynamic": False, "num_bits": 8, "strategy": "block",
                        "symmetric": True, "type": "float"},
    {"dynamic": True, "group_size": 128, "num_bits": 8, "strategy": "group", "symmetric": True, "type": "float"})
# ModelOpt in config.json (vLLM modelopt.py from_config's second form: quant_algo at the top, "ignore")
MODELOPT_FP8 = {"quant_method": "modelopt", "quant_algo": "FP8", "kv_cache_scheme": None, "ignore": ["lm_head"]}
MODELOPT_NVFP4 = {"quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 16, "kv_cache_scheme": None,
                  "ignore": ["lm_head"]}



def _router_ignored(qcfg: dict) -> dict:
    """`qcfg` with the MoE router left unquantised as MoE checkpoints do (llm-compressor's "re:.*mlp.gate$",
    ModelOpt's "*mlp.gate"): vLLM 0.32 hands Qwen3-MoE's GateLinear the quant config (models/qwen3_moe.py:170)."""
    out = copy.deepcopy(qcfg)
    out["ignore"] = out["ignore"] + (["*mlp.gate"] if out["quant_method"] == "modelopt" else ["re:.*mlp.gate$"])
    return out


CASES = [  # (name, bundled spec, quantization_config)
    ("llama8b-fp8-dynamic", "meta-llama/Llama-3.1-8B", FP8_DYNAMIC),
    ("llama8b-w8a8-int8", "meta-llama/Llama-3.1-8B", W8A8_INT8),
    ("llama8b-w4a16-g128", "meta-llama/Llama-3.1-8B", W4A16_G128),
    ("llama8b-w4a16-g128-asym", "meta-llama/Llama-3.1-8B", W4A16_G128_ASYM),
    ("llama8b-fp8-block", "meta-llama/Llama-3.1-8B", FP8_BLOCK),
    ("llama8b-nvfp4", "meta-llama/Llama-3.1-8B", LLM_COMPRESSOR_NVFP4),
    ("llama8b-modelopt-fp8", "meta-llama/Llama-3.1-8B", MODELOPT_FP8),
    ("llama8b-modelopt-nvfp4", "meta-llama/Llama-3.1-8B", MODELOPT_NVFP4),
    ("qwen3-30b-a3b-w4a16-g128", "Qwen/Qwen3-30B-A3B", _router_ignored(W4A16_G128)),
    ("qwen3-30b-a3b-fp8-dynamic", "Qwen/Qwen3-30B-A3B", _router_ignored(FP8_DYNAMIC)),
    ("qwen3-30b-a3b-nvfp4", "Qwen/Qwen3-30B-A3B", _router_ignored(LLM_COMPRESSOR_NVFP4)),
    ("qwen3-30b-a3b-modelopt-nvfp4", "Qwen/Qwen3-30B-A3B", _router_ignored(MODELOPT_NVFP4)),
    ("deepseek-v3-kimi-int4-experts", "deepseek-ai/DeepSeek-V3", KIMI_K2_THINKING_INT4),
]


def stub_cuda_only_kernels() -> None:
    """Kernels and MoE backends that exist only on CUDA are chosen when a layer's method is built; stand-ins here.
    The parameter shapes come from create_weights (the checkpoint's layout), not from the kernel or backend, which act
    in process_weights_after_loading (not run). Marlin is the backend a Hopper GPU gets for W4A16 and NVFP4 experts."""
    from vllm.model_executor.layers.fused_moe.oracle.int_wna16 import WNA16MoEBackend
    from vllm.model_executor.layers.fused_moe.oracle.nvfp4 import NvFp4MoeBackend
    from vllm.model_executor.layers.quantization import modelopt
    from vllm.model_executor.layers.quantization.compressed_tensors.compressed_tensors_moe import (
        compressed_tensors_moe_w4a4_nvfp4 as ct_nvfp4_moe,
        compressed_tensors_moe_wna16 as ct_wna16_moe,
    )
    from vllm.model_executor.layers.quantization.compressed_tensors.schemes import compressed_tensors_w4a4_nvfp4 as ct

    class _Kernel:
        def __getattr__(self, name):
            return lambda *args, **kwargs: None

    ct.init_nvfp4_linear_kernel = lambda use_a16=False: _Kernel()
    modelopt.init_nvfp4_linear_kernel = lambda use_a16=False: _Kernel()
    ct_wna16_moe.select_wna16_moe_backend = lambda *a, **k: (WNA16MoEBackend.MARLIN, None)
    for module in (modelopt, ct_nvfp4_moe):
        if hasattr(module, "select_nvfp4_moe_backend"):
            module.select_nvfp4_moe_backend = lambda *a, **k: (NvFp4MoeBackend.MARLIN, None)


def config_dir(model: str, qcfg: dict) -> str:
    cfg = mf.load_model_config(model)
    cfg["quantization_config"] = copy.deepcopy(qcfg)
    d = tempfile.mkdtemp(prefix="kvq-" + re.sub(r"[^A-Za-z0-9]+", "-", model)[-30:] + "-")
    Path(d, "config.json").write_text(json.dumps(cfg, indent=1))
    return d


def build(name: str, model: str, qcfg: dict) -> dict:
    import torch
    from vllm.config import set_current_vllm_config
    from vllm.engine.arg_utils import EngineArgs
    from vllm.model_executor.layers.fused_moe.routed_experts import RoutedExperts
    from vllm.model_executor.model_loader.utils import initialize_model
    from vllm.usage.usage_lib import UsageContext
    from vllm.utils.torch_utils import set_default_torch_dtype

    rec = {"case": name, "model": model, "quantization_config": qcfg}
    try:
        vc = EngineArgs(model=config_dir(model, qcfg), skip_tokenizer_init=True, load_format="dummy",
                        max_model_len=4096).create_engine_config(UsageContext.OPENAI_API_SERVER)
        with mf.tensor_parallel(vc, 1), set_current_vllm_config(vc), \
                set_default_torch_dtype(vc.model_config.dtype), torch.device("meta"):
            m = initialize_model(vllm_config=vc)
    except Exception as e:  # noqa: BLE001
        rec["error"] = f"{type(e).__name__}: {e}"[:800]
        return rec
    rec["quantization"] = vc.model_config.quantization
    experts = set()
    for mod_name, mod in m.named_modules():
        if isinstance(mod, RoutedExperts):
            experts.update(f"{mod_name}.{p}" for p, _ in mod.named_parameters(recurse=True))
    parts = {"experts": 0, "rest": 0}
    by_suffix: dict = {}
    for pname, p in m.named_parameters():
        size = p.numel() * p.element_size()
        parts["experts" if pname in experts else "rest"] += size
        key = f"{pname.rsplit('.', 1)[-1]}:{str(p.dtype).replace('torch.', '')}"
        by_suffix[key] = by_suffix.get(key, 0) + size
    rec.update(bytes=sum(parts.values()), parts=parts, by_parameter=dict(sorted(by_suffix.items())))
    del m
    return rec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--only", help="a case name")
    args = ap.parse_args()
    mf.install_gpu_emulation()
    stub_cuda_only_kernels()
    from vllm.model_executor.layers.fused_moe.expert_map_manager import ExpertMapManager

    ExpertMapManager.get_compressed_map_string = lambda self: "(meta device)"
    records = []
    for name, model, qcfg in CASES:
        if args.only and name != args.only:
            continue
        mf.clear_once_caches()
        rec = build(name, model, qcfg)
        print(json.dumps({k: v for k, v in rec.items() if k != "quantization_config"}), flush=True)
        records.append(rec)
    if args.out:
        mf.write_frozen(args.out, "benchmarks/vllm_reference/quantized_weights.py",
                        "bundled spec + a public checkpoint's quantization_config -> EngineArgs -> model on the meta "
                        "device at TP 1 (Hopper emulation); every registered parameter counted (numel x element size)",
                        records)


if __name__ == "__main__":
    main()
