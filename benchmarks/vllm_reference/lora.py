"""vLLM 0.34.0's own LoRA layer classes, built on the CPU over small Llama-shaped layers, and the bytes of the
stacked adapter buffers each one creates (create_lora_weights), frozen as tests/data/vllm_lora_bytes.json for
tests/test_lora_budget.py to hold kvplan/engines/vllm_lora.py to.

Run from an unpacked vLLM 0.34.0 source release with a CPU torch (no CUDA needed):

    cd <vllm-0.34.0 source tree> && PYTHONPATH=. /tmp/v34/bin/python <repo>/benchmarks/vllm_reference/lora.py \
        <repo>/tests/data/vllm_lora_bytes.json

Tensor parallelism is simulated: the base layers are built with a TP group of that size (rank 0) patched into
vLLM's parallel_state.get_tp_group, so each layer takes its per-rank shapes as vLLM computes them; nothing is
communicated. The punica wrapper's metadata is PunicaWrapperGPU's own __init__ run on the CPU device.
"""

import json
import logging
import sys
from unittest import mock

import torch

logging.disable(logging.WARNING)

SHAPES = [  # (name, hidden, heads, kv_heads, head_dim, intermediate, vocab)
    ("llama-small", 256, 8, 2, 32, 704, 1000),
    ("gemma-like", 192, 4, 1, 64, 512, 1000),  # q width heads x head_dim != hidden; kv heads < tp 2
]


def tensor_bytes(layer) -> int:
    """Bytes of the LoRA tensors a wrapper allocated (A and B stacks, the TP logits mapping)."""
    total = 0
    for name in ("lora_a_stacked", "lora_b_stacked"):
        stacks = getattr(layer, name)
        for t in (stacks if isinstance(stacks, (tuple, list)) else (stacks,)):
            total += t.numel() * t.element_size()
    mapping = getattr(layer, "sharded_to_full_mapping_gpu", None)
    return total + (mapping.numel() * mapping.element_size() if mapping is not None else 0)


def build(shape, tp: int, rank: int, max_loras: int, fully_sharded: bool, dtype) -> dict:
    from vllm.config.lora import LoRAConfig
    from vllm.lora.utils import from_layer, from_layer_logits_processor
    from vllm.model_executor.layers.linear import MergedColumnParallelLinear, QKVParallelLinear, RowParallelLinear
    from vllm.model_executor.layers.logits_processor import LogitsProcessor
    from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead, VocabParallelEmbedding

    _, hidden, heads, kv_heads, head_dim, inter, vocab = shape
    # lora_dtype as verify_with_model_config leaves it (config/lora.py: a torch dtype)
    config = LoRAConfig(max_lora_rank=rank, max_loras=max_loras, fully_sharded_loras=fully_sharded,
                        lora_dtype=dtype)
    common = dict(params_dtype=torch.bfloat16)
    layers = {
        "qkv_proj/3": (QKVParallelLinear(hidden, head_dim, heads, kv_heads, bias=False, **common),
                       ["q_proj", "k_proj", "v_proj"]),
        "qkv_proj/1": (QKVParallelLinear(hidden, head_dim, heads, kv_heads, bias=False, **common), ["qkv_proj"]),
        "o_proj": (RowParallelLinear(heads * head_dim, hidden, bias=False, **common), []),
        "gate_up_proj/2": (MergedColumnParallelLinear(hidden, [inter] * 2, bias=False, **common),
                           ["gate_proj", "up_proj"]),
        "gate_up_proj/1": (MergedColumnParallelLinear(hidden, [inter] * 2, bias=False, **common),
                           ["gate_up_proj"]),
        "down_proj": (RowParallelLinear(inter, hidden, bias=False, **common), []),
        "embed_tokens": (VocabParallelEmbedding(vocab, hidden, **common), []),
    }
    out = {}
    for name, (base, packed) in layers.items():
        wrapped = from_layer(base, max_loras, config, packed, None)
        out[name] = {"class": type(wrapped).__name__, "bytes": tensor_bytes(wrapped)}
    head = ParallelLMHead(vocab, hidden, **common)
    logits = from_layer_logits_processor(LogitsProcessor(vocab), head, max_loras, config, None)
    out["lm_head"] = {"class": type(logits).__name__, "bytes": tensor_bytes(logits)}
    return out


def punica_bytes(tokens: int, seqs: int, max_loras: int) -> int:
    from vllm.config.lora import LoRAConfig
    from vllm.lora.punica_wrapper import punica_gpu
    from vllm.lora.punica_wrapper.punica_gpu import PunicaWrapperGPU

    if not hasattr(punica_gpu, "LoRAKernelMeta"):  # imported there only with Triton; the class itself is plain torch
        import importlib.util
        path = punica_gpu.__file__.replace("punica_wrapper/punica_gpu.py", "ops/triton_ops/lora_kernel_metadata.py")
        spec = importlib.util.spec_from_file_location("lora_kernel_metadata", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        punica_gpu.LoRAKernelMeta = module.LoRAKernelMeta
    wrapper = PunicaWrapperGPU(tokens, seqs, "cpu", lora_config=LoRAConfig(max_loras=max_loras))
    seen, total = set(), 0
    for holder in (wrapper, wrapper.token_mapping_meta, wrapper.prompt_mapping_meta):
        for value in vars(holder).values():
            if isinstance(value, torch.Tensor) and id(value) not in seen and "cpu_" not in str(value.device) \
                    and value.numel() > 1:
                seen.add(id(value))
                total += value.numel() * value.element_size()
    # the *_cpu scalars stay on the host on a GPU too; every other tensor is on `device`
    return total


def main(path: str) -> None:
    import vllm

    cases = []
    for shape in SHAPES:
        for tp in (1, 2):
            for fully in (False, True):
                group = mock.Mock(rank_in_group=0, world_size=tp)  # what the TP getters read
                with mock.patch("vllm.distributed.parallel_state.get_tp_group", return_value=group), \
                        mock.patch("vllm.model_executor.layers.logits_processor.get_current_vllm_config",
                                   return_value=mock.Mock(model_config=None)):  # LogitsProcessor's head dtype
                    modules = build(shape, tp, 16, 3, fully, torch.bfloat16)
                cases.append({"shape": dict(zip(("name", "hidden", "heads", "kv_heads", "head_dim",
                                                 "intermediate", "vocab"), shape)),
                              "tp": tp, "max_lora_rank": 16, "max_loras": 3, "fully_sharded_loras": fully,
                              "lora_dtype": "bfloat16", "modules": modules})
    punica = [{"max_num_batched_tokens": t, "max_num_seqs": s, "max_loras": n, "bytes": punica_bytes(t, s, n)}
              for t, s, n in ((8192, 1024, 4), (2048, 256, 1))]
    json.dump({"vllm": vllm.__version__ if hasattr(vllm, "__version__") else "0.34.0",
               "script": "benchmarks/vllm_reference/lora.py", "cases": cases, "punica": punica},
              open(path, "w"), indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
