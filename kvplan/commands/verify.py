"""`kvplan verify`: prove a plan on the local GPU by building one TP rank of it.

What it does, in order (the GPU work lives in kvplan/gpu/, the pure parts in kvplan/verify/):

1. Detect the GPU through NVML and measure its device-to-device copy bandwidth with torch.
2. Plan with kvplan's own planner, using the GPU's real memory, hold a buffer for weights/TP plus the
   budget's reserve terms, allocate the per-layer paged caches of `cache_layout`, and compare predicted bytes
   with torch's and NVML's views.
3. A block allocator over those pools serves max_concurrency sequences and must refuse one more.
4. Time decode for a sweep of batch sizes with the bundled kernel and the weights streamed as GEMMs.
5. Judge (kvplan/verify/judge.py).

Nothing here imports torch or pynvml: `kvplan estimate` never pays for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import FieldError
from ..model.sources import resolve
from ..plan.sharding import shard
from ..units import require_fraction, require_positive
from ..verify.layout import kernel_kv_dtype
from ..verify.progress import Progress

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


def check_options(tp: int, context: int, gpu_util: float, block_size: int) -> None:
    require_positive("tp", tp)
    require_positive("context", context)
    require_fraction("gpu_util", gpu_util)
    if block_size not in KERNEL_BLOCK_SIZES:
        raise FieldError("block_size", f"must be one of {', '.join(map(str, KERNEL_BLOCK_SIZES))} for verify (the "
                                       f"block sizes the bundled kernel reads), got {block_size}.")


def verify(model: str, *, tp: int = 1, context: int = 8192, kv_dtype: str = "auto", gpu_util: float = 0.9,
           block_size: int = 16, revision: Optional[str] = None,
           progress: Optional[Progress] = None) -> VerifyResult:
    """Everything `kvplan verify` does. Every GPU tensor it makes is released before it returns, raises or is
    interrupted."""
    check_options(tp, context, gpu_util, block_size)
    spec = resolve(model, revision)
    kernel_kv_dtype(kv_dtype, spec)
    sharding = shard(spec, tp)
    if not sharding.valid:  # before torch: a bad TP degree needs no GPU to be refused
        raise FieldError("tp", f"{tp} cannot shard {spec.name}: {sharding.errors[0].rstrip('.')}.")
    from ..gpu.verify_run import verify_on_gpu  # imports torch and pynvml: only verify pays for them

    return VerifyResult(verify_on_gpu(spec, tp=tp, context=context, kv_dtype=kv_dtype, gpu_util=gpu_util,
                                      block_size=block_size, progress=progress or Progress()))
