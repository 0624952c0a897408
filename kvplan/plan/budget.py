"""The KV budget of one GPU, term by term. The terms belong to the engine that fills the GPU: vLLM's
(kvplan/engines/vllm_budget.py: requested memory - weights as loaded - profile-run peak - non-torch memory -
CUDA graphs as that release counts them) or, with `--engine none`, kvplan's generic estimate (gpu_budget
below). A given kv_budget replaces all of it, like vLLM's --kv-cache-memory-bytes.

Field names stay stable for scripts: `activation_bytes` is the profile-run peak, `cuda_context_bytes` the
non-torch memory; `terms` lists every term with its source."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Callable, Optional

from ..errors import respelled
from ..model.precision import DTYPE_BYTES
from ..model.spec import ModelSpec
from .catalog import GPU
from .sharding import stage_weights


@dataclass(frozen=True)
class BudgetTerm:
    name: str  # memory | weights | profile_peak | non_torch | cuda_context | cuda_graphs | nccl | margin
    bytes: int
    source: str


@dataclass(frozen=True)
class MeasuredSizing:
    """An engine that sizes its cache from memory measured after warmup (vLLM 0.34's extensible KV cache): the
    profile run's own figure, checked first, and the unit each layer's pool is committed in."""

    profiled_bytes: int  # what the profile run leaves for the cache (its "Available KV cache memory")
    granule_bytes: int  # each layer's pool is committed in units of this (2 MiB)
    gpu_util: float
    persistent_bytes: int = 0  # the profile peak's part still allocated after it, counted as used (not transient)
    kv_init_bytes: int = 0  # runner buffers built with the cache (V2's block tables): in used, not in profiled_bytes


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
    engine: Optional[str] = None  # whose accounting: "vllm 0.32.0", or None for kvplan's generic estimate
    stage: Optional[int] = None  # pipeline stage this budget is for (None: the whole model on each GPU)
    terms: tuple = ()
    measured: Optional[MeasuredSizing] = None  # the engine sizes the cache after warmup (vLLM 0.34)

    def at_stage(self, index: Optional[int]) -> "Budget":
        """This budget as another pipeline stage's, one that reads alike (engines/vllm_budget.py stage_kind): the
        same terms, its own index. Its fields copied whole, not through dataclasses.replace (five times as dear: a
        pp 16 remedy asks this ~800 times); a frozen dataclass's __init__ sets them so too."""
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__, stage=index)
        return twin

    @property
    def weights_exceed(self) -> bool:
        """The weights alone take all the GPU memory the engine may use (nothing else can fit beside them)."""
        return self.source == "gpu" and self.weights_bytes_per_gpu >= self.usable_bytes

    def terms_dict(self, spell: Callable[[str], str] = str) -> list:
        """The terms as JSON, each source's engine flags written as `spell` writes their fields (to_dict)."""
        return [dict(asdict(t), source=_flags_spelled(t.source, spell)) for t in self.terms]

    def to_dict(self, spell: Callable[[str], str] = str) -> dict:
        """The budget as JSON, the engine flags its terms' sources name ("--enforce-eager sets ...") written as
        `spell` writes their fields (the Python API: enforce_eager)."""
        data = asdict(self)
        data["terms"] = self.terms_dict(spell)
        if self.measured is None:  # a key of 0.34's sizing only: older plans' JSON stays as it was
            del data["measured"]
        return data


def _flags_spelled(text: str, spell: Callable[[str], str]) -> str:
    """`text` with each engine flag it names (--name-of-field, vLLM's own spelling of the field name_of_field)
    written as `spell` writes that field."""
    if spell is str or "--" not in text:
        return text
    written = {(name.replace("-", "_"), "--" + name) for name in FLAG_NAME.findall(text)}
    return respelled(text, written, spell)


FLAG_NAME = re.compile(r"--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)")
GiB = 2**30
CUDA_CONTEXT_BYTES = GiB // 2
CUDA_GRAPH_BYTES = int(1.25 * GiB)
NCCL_BYTES = int(1.75 * GiB)
NCCL_SOURCE = "fixed 1.75 GiB where tensor parallelism spans GPUs (NCCL, custom all-reduce)"
IDEAL_BATCHED_TOKENS = 8192  # the forward pass (and prefill chunk) of an engine without its own default
SAMPLER_SEQUENCES = 256
SAMPLER_COPIES = 3


def batched_tokens(engine_model, spec: ModelSpec, device, context: int, pp: int = 1,
                   max_num_batched_tokens: Optional[int] = None, max_num_seqs: Optional[int] = None,
                   kv_dtype: str = "auto") -> int:
    """The tokens a plan's forward pass takes and splits a prompt by (max_num_batched_tokens): the engine's settings
    where it has them (vLLM's default for the GPU and --kv-cache-dtype `kv_dtype`, V0's where vLLM falls back to it,
    raised to a prefix-LM's largest media item: engines/vllm_media_floor.py; the flag where given), else the flag or
    the ideal pool's IDEAL_BATCHED_TOKENS."""
    if hasattr(engine_model, "settings"):
        settings = engine_model.settings(context, device, pp, max_num_batched_tokens, max_num_seqs, spec, kv_dtype)
        return settings.max_num_batched_tokens
    return max_num_batched_tokens or IDEAL_BATCHED_TOKENS


def prompt_limit(engine_model, spec: ModelSpec, device, context: int, pp: int = 1,
                 max_num_batched_tokens: Optional[int] = None, max_num_seqs: Optional[int] = None,
                 kv_dtype: str = "auto") -> Optional[int]:
    """The longest prompt the engine serves where it is below `context` (vLLM 0.7.1-0.7.3 on an MLA model:
    engines/vllm_v0_chunked.mla_prompt_limit); None where a prompt of the whole length is served."""
    if not hasattr(engine_model, "settings"):
        return None
    settings = engine_model.settings(context, device, pp, max_num_batched_tokens, max_num_seqs, spec, kv_dtype)
    return settings.prompt_limit


def qkv_width(spec: ModelSpec, tp: int) -> int:
    """Values per token of one GPU's q, k and v projections (0 for an attention-free model)."""
    if not spec.num_attention_heads:
        return 0
    head_dim = spec.head_dim or spec.hidden_size // spec.num_attention_heads
    return (spec.num_attention_heads // tp + 2 * -(-(spec.kv_heads or 1) // tp)) * head_dim


def activation_peak_bytes(spec: ModelSpec, tp: int, max_num_batched_tokens: int, sampler: bool = True) -> int:
    """kvplan's generic activation reserve: a forward pass over max_num_batched_tokens tokens (hidden state +
    residual, this rank's q/k/v, gate/up and activated MLP outputs, in the model dtype), plus, where the model
    samples (`sampler`; a pooling model does not), fp32 logits for 256 requests, three copies (logits,
    probabilities, sorted for top-p/top-k)."""
    dtype_bytes = DTYPE_BYTES[spec.dtype]
    qkv = qkv_width(spec, tp)
    if spec.experts:  # routed tokens: each goes through experts_per_token experts
        mlp = 3 * spec.experts_per_token * spec.expert_intermediate_size // tp
    else:
        mlp = 3 * spec.intermediate_size // tp
    per_token = (2 * spec.hidden_size + qkv + mlp) * dtype_bytes
    logits = SAMPLER_SEQUENCES * spec.vocab_size * 4 * SAMPLER_COPIES if sampler else 0
    return max_num_batched_tokens * per_token + logits


def gpu_budget(spec: ModelSpec, tp: int, gpu: GPU, gpu_util: float, max_num_batched_tokens: Optional[int] = None,
               gpu_memory: Optional[int] = None, stage=None, graphs: bool = True, pooling: bool = False) -> Budget:
    """kvplan's generic estimate, engine-agnostic (the budget of `--engine none`):

        kv_budget = gpu_memory x gpu_util - weights / tp - activation_peak - cuda_context - cuda_graphs - nccl

    with fixed reserves: CUDA context 0.5 GiB, CUDA graphs 1.25 GiB and, when tp > 1, NCCL 1.75 GiB (calibrated
    before kvplan had an engine model, on vLLM PR #10511's Llama-3-8B H100 profile, case A11). `stage`: a
    sharding.Stage, whose own layers and embeddings the GPU holds. `graphs=False`: no CUDA graphs (--enforce-eager).
    `pooling`: a model served by a pooling runner, which samples nothing (no logits in the activation reserve)."""
    tokens = max_num_batched_tokens or IDEAL_BATCHED_TOKENS
    memory = gpu_memory or gpu.memory_bytes
    usable = int(memory * gpu_util)
    weights = stage_weights(spec, tp, stage)
    activation = activation_peak_bytes(spec, tp, tokens, sampler=not pooling)
    logits = "" if pooling else f" + fp32 logits of {SAMPLER_SEQUENCES} requests x {SAMPLER_COPIES}"
    graph_kind = "CUDA" if pooling else "decode"  # a pooling model decodes nothing
    nccl = NCCL_BYTES if tp > 1 else 0
    graph_bytes = CUDA_GRAPH_BYTES if graphs else 0
    kv = usable - weights - activation - CUDA_CONTEXT_BYTES - graph_bytes - nccl
    memory_words = "the GPU memory given (--gpu-memory)" if gpu_memory else \
        f"{gpu.name} memory as the CUDA runtime reports it"
    terms = (BudgetTerm("memory", usable, f"{memory_words}, times the GPU memory utilization {gpu_util}"),
             BudgetTerm("weights", weights, f"{spec.weights.source}, split over {tp} GPU(s)"),
             BudgetTerm("activation", activation, f"forward over {tokens} tokens{logits} (generic)"),
             BudgetTerm("cuda_context", CUDA_CONTEXT_BYTES, "fixed 0.5 GiB (CUDA context, cuBLAS workspaces)"),
             BudgetTerm("cuda_graphs", graph_bytes, f"fixed 1.25 GiB ({graph_kind} graphs)" if graphs else
                        "0: --enforce-eager (no CUDA graphs)"),
             BudgetTerm("nccl", nccl, NCCL_SOURCE))
    return Budget(kv, "gpu", gpu.name, memory, gpu_util, usable, weights, activation, CUDA_CONTEXT_BYTES,
                  graph_bytes, nccl, None, None if stage is None else stage.index, terms)


def flag_budget(kv_budget: int, stage: Optional[int] = None) -> Budget:
    return Budget(kv_budget, "kv_budget", stage=stage,
                  terms=(BudgetTerm("kv_budget", kv_budget, "given (like vLLM's --kv-cache-memory-bytes)"),))


def fixed_budget(kv_budget: int):
    """A budget_for (plan.plan's) of `kv_budget` bytes at every TP degree, stage and --kv-cache-dtype: a budget
    given, not an engine's, so the dtype plan.served_budget passes changes nothing."""

    def budget_for(tp: int, stage=None, kv_dtype: str = "auto", pp: int = 1) -> Budget:
        return flag_budget(kv_budget)

    return budget_for
