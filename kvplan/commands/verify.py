"""`kvplan verify`: prove a plan on the local GPU by building one TP rank of it.

What it does, in order (the GPU work lives in kvplan/gpu/, the pure parts in kvplan/verify/):

1. Detect the GPU (NVML), plan with kvplan's planner on its real memory, and build one TP rank of the model:
   dummy weights of the real shapes and stored precision, the forward pass of its architecture.
2. Measure the budget terms instead of holding them: the weights, the profile run's activation peak, memory
   outside torch's allocator, the decode CUDA graphs, NCCL (a real TP group); set each beside its prediction.
3. Size the paged KV pools from what is really left, allocate them, and prove the boundary with a block
   allocator: the pools' sequences admitted, one more refused.
4. Time the decode step (CUDA graph of the whole forward) at batch 1 and at max concurrency, and one prefill.
5. Judge (kvplan/verify/judge.py).

With --tp N and N GPUs, one process per GPU runs its rank (kvplan/gpu/tp.py); with fewer, one rank is
simulated and said to be. --engine vllm==X.Y.Z judges that vLLM release's plan (its defaults, budget terms and
sizing: verify/terms.py; 0.34 sizes the cache from the memory measured after warmup).

Nothing here imports torch or pynvml: `kvplan estimate` never pays for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..engines import ENGINE_NAMES, get_engine
from ..engines.vllm import refuse_encoder_only
from ..engines.vllm_pooling import pooling_runner
from ..engines.vllm_releases import SPAN
from ..errors import FieldError, quote
from ..model.sources import resolve
from ..plan.plan import KEEPS_ROOM, default_prompt, no_prompt_words
from ..plan.sharding import shard
from ..units import require_fraction, require_positive
from ..verify.arch import architecture
from ..verify.layout import kernel_kv_dtype
from ..verify.progress import Progress
from ..verify.shards import rank_weights

KERNEL_BLOCK_SIZES = (8, 16, 32, 64, 128)


@dataclass(frozen=True)
class VerifyResult:
    result: dict
    view = "verify"
    formats = ("table", "json", "yaml")

    @property
    def ok(self) -> bool:
        return self.result["verdict"]["ok"]

    def to_dict(self) -> dict:
        return self.result


def check_options(tp: int, context: int, gpu_util: Optional[float], block_size: Optional[int],
                  max_num_seqs: Optional[int] = None, max_num_batched_tokens: Optional[int] = None) -> None:
    require_positive("tp", tp)
    require_positive("context", context)
    if gpu_util is not None:
        require_fraction("gpu_util", gpu_util)
    for field, value in (("max_num_seqs", max_num_seqs), ("max_num_batched_tokens", max_num_batched_tokens)):
        if value is not None:
            require_positive(field, value)
    if block_size is not None and block_size not in KERNEL_BLOCK_SIZES:
        raise FieldError("block_size", f"must be one of {', '.join(map(str, KERNEL_BLOCK_SIZES))} for verify (the "
                                       f"block sizes the bundled kernel reads), got {block_size}.")


VERIFY_ENGINES = f"verify takes vllm (vLLM 0.32.0) or vllm==<release> (another vLLM release, {SPAN})"


def verify_engine(name) -> str:
    """The engine release verify judges, spelled as --engine takes it (vllm==X.Y.Z), checked as get_engine checks
    it; the ideal engine ("none") is refused: it has no budget terms to measure. Before torch loads."""
    text = str(name).strip().lower()
    if text != "vllm" and not text.startswith("vllm=="):
        why = ("has no engine budget to judge (verify measures the terms a vLLM release subtracts)"
               if text in ENGINE_NAMES else "is not an engine kvplan models")
        raise FieldError("engine", f"{quote(name)} {why}; {VERIFY_ENGINES}.")
    return f"vllm=={get_engine(text).version}"


def refuse_no_prompt(spec, context: int, version: str) -> None:
    """Verify times a prompt (TTFT): a max model length at which the release serves none (1, where it keeps room
    for one output token: plan.default_prompt) is refused before torch."""
    if not default_prompt(context, spec, version).tokens:
        raise FieldError("context", f"({context:,}) leaves no prompt to time: vLLM {version} {KEEPS_ROOM}, so "
                                    f"{no_prompt_words()}.")


def refuse_pooling(spec, version: str) -> None:
    """verify builds a generating model's rank (its LM head, a sampler pass, decode steps); a model vLLM serves with its
    pooling runner has none of them (engines/vllm_pooling_budget.py: no LM head, a pooler pass), so its plan is not
    one verify can measure: refused before torch."""
    if pooling_runner(spec, version):
        raise FieldError("model", f"{quote(spec.name)} runs on vLLM {version}'s pooling runner (embedding, "
                                  f"classification or reward), which verify does not build: it measures a generating "
                                  f"model's LM head, sampler pass and decode steps; `kvplan estimate` plans it.")


def verify(model: str, *, tp: int = 1, context: int = 8192, kv_dtype: str = "auto", gpu_util: Optional[float] = None,
           block_size: Optional[int] = None, max_num_seqs: Optional[int] = None,
           max_num_batched_tokens: Optional[int] = None, revision: Optional[str] = None,
           progress: Optional[Progress] = None, engine: str = "vllm") -> VerifyResult:
    """Everything `kvplan verify` does. Every GPU tensor it makes is released before it returns, raises or is
    interrupted. None means the engine's default (vLLM's, for this GPU); `engine`: the vLLM release whose plan is
    judged (vllm: 0.32.0, vllm==X.Y.Z)."""
    check_options(tp, context, gpu_util, block_size, max_num_seqs, max_num_batched_tokens)
    release = verify_engine(engine)
    raw: list = []
    spec = resolve(model, revision, raw_out=raw)
    refuse_encoder_only(spec, get_engine(release).version)  # before torch, as the release-independent refusal
    refuse_no_prompt(spec, context, get_engine(release).version)
    refuse_pooling(spec, get_engine(release).version)
    if spec.compressed_attention:  # before the KV dtype: no dtype would make verify run it
        architecture(raw[0], spec, tp)
    kernel_kv_dtype(kv_dtype, spec)
    get_engine(release).check_kv_dtype(kv_dtype)  # a dtype this release's --kv-cache-dtype does not list
    get_engine(release).check_block_size(block_size)  # a block its --block-size does not
    sharding = shard(spec, tp)
    if not sharding.valid:  # before torch: a bad TP degree needs no GPU to be refused
        raise FieldError("tp", f"{tp} cannot shard {spec.name}: {sharding.errors[0].rstrip('.')}.")
    # a model the forward pass does not cover, or a rank's tensors it cannot shard (an fp8 block cut), is refused
    # before torch loads
    rank_weights(architecture(raw[0], spec, tp))
    from ..gpu.nvml import import_stack

    import_stack()  # no torch, no CUDA GPU, no NVML: one clear line before any module needs them
    import torch  # only verify pays for it

    from ..gpu.rank import Options

    options = Options(tp, context, kv_dtype, gpu_util, block_size, max_num_seqs, max_num_batched_tokens, release)
    progress = progress or Progress()
    if tp > 1 and torch.cuda.device_count() >= tp:  # a real group: one process per GPU
        from ..gpu.tp import verify_group

        return VerifyResult(verify_group(spec, raw[0], options, progress))
    from ..gpu.verify_run import verify_rank

    return VerifyResult(verify_rank(spec, raw[0], options, progress))
