"""The KV budget of one GPU, term by term, the way vLLM arrives at "Available KV cache memory":

    kv_budget = gpu_memory x gpu_util - weights / tp - activation_peak - cuda_context - cuda_graphs - nccl

- activation_peak: the profile forward pass over --max-num-batched-tokens tokens (hidden state + residual,
  this rank's q/k/v, gate/up and activated MLP outputs, in the model dtype), plus the sampler's fp32 logits
  for max_num_seqs (256) requests, three copies (logits, probabilities, sorted for top-p/top-k).
- cuda_context (0.5 GiB: context, cuBLAS/cuDNN workspaces), cuda_graphs (1.25 GiB: the decode graphs vLLM
  captures) and, when tp > 1, nccl (1.75 GiB: NCCL and custom all-reduce buffers). Calibrated on vLLM's
  own profile of Llama-3-8B on an H100 (PR #10511): non-torch memory 1.79 GiB at TP 1, 3.58 GiB at TP 2,
  activation peak 1.26 GiB (this formula gives 1.24 GiB).
A given kv_budget replaces all of it, like vLLM's --kv-cache-memory-bytes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from ..model.precision import DTYPE_BYTES
from ..model.spec import ModelSpec
from .catalog import GPU
from .sharding import weights_per_gpu

GiB = 2**30
CUDA_CONTEXT_BYTES = GiB // 2
CUDA_GRAPH_BYTES = int(1.25 * GiB)
NCCL_BYTES = int(1.75 * GiB)
MAX_NUM_SEQS = 256
SAMPLER_COPIES = 3


@dataclass(frozen=True)
class Budget:
    kv_budget_bytes_per_gpu: int
    source: str  # "kv_budget" (given directly) or "gpu"
    gpu_name: Optional[str] = None
    gpu_memory_bytes: Optional[int] = None
    gpu_util: Optional[float] = None
    usable_bytes: Optional[int] = None
    weights_bytes_per_gpu: Optional[int] = None
    activation_bytes: Optional[int] = None
    cuda_context_bytes: Optional[int] = None
    cuda_graph_bytes: Optional[int] = None
    nccl_bytes: Optional[int] = None

    def to_dict(self) -> dict:
        return asdict(self)


def activation_peak_bytes(spec: ModelSpec, tp: int, max_num_batched_tokens: int) -> int:
    dtype_bytes = DTYPE_BYTES[spec.dtype]
    head_dim = spec.head_dim or spec.hidden_size // spec.num_attention_heads
    kv_per_gpu = -(-(spec.kv_heads or 1) // tp)
    qkv = (spec.num_attention_heads // tp + 2 * kv_per_gpu) * head_dim
    if spec.experts:  # routed tokens: each goes through experts_per_token experts
        mlp = 3 * spec.experts_per_token * spec.expert_intermediate_size // tp
    else:
        mlp = 3 * spec.intermediate_size // tp
    per_token = (2 * spec.hidden_size + qkv + mlp) * dtype_bytes
    sampler = MAX_NUM_SEQS * spec.vocab_size * 4 * SAMPLER_COPIES
    return max_num_batched_tokens * per_token + sampler


def gpu_budget(spec: ModelSpec, tp: int, gpu: GPU, gpu_util: float, max_num_batched_tokens: int = 8192,
               gpu_memory: Optional[int] = None) -> Budget:
    memory = gpu_memory or gpu.memory_bytes
    usable = int(memory * gpu_util)
    weights = weights_per_gpu(spec, tp)
    activation = activation_peak_bytes(spec, tp, max_num_batched_tokens)
    nccl = NCCL_BYTES if tp > 1 else 0
    kv = usable - weights - activation - CUDA_CONTEXT_BYTES - CUDA_GRAPH_BYTES - nccl
    return Budget(kv, "gpu", gpu.name, memory, gpu_util, usable, weights, activation, CUDA_CONTEXT_BYTES,
                  CUDA_GRAPH_BYTES, nccl)


def flag_budget(kv_budget: int) -> Budget:
    return Budget(kv_budget, "kv_budget")
