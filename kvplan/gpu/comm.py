"""The collectives of a tensor-parallel forward pass: an all-reduce after every row-parallel projection and
the vocabulary-parallel embedding, an all-gather of the LM head's logits. `LocalComm` is one process (tp 1, or
one simulated rank of a larger group: the collectives are skipped and that is said where results are
reported); `DistComm` is torch.distributed (NCCL on GPUs, gloo on the CPU)."""

from __future__ import annotations

import torch


class LocalComm:
    rank, size, real = 0, 1, False

    def all_reduce(self, x):
        return x

    def all_gather_last(self, x):
        return x


class DistComm:
    """The default process group. NCCL all-reduce captures in CUDA graphs."""

    real = True

    def __init__(self):
        import torch.distributed as dist

        self.dist = dist
        self.rank, self.size = dist.get_rank(), dist.get_world_size()
        self.calls = 0

    def all_reduce(self, x):
        self.calls += 1
        self.dist.all_reduce(x)
        return x

    def min_int(self, value: int) -> int:
        """The smallest `value` over the group (every rank sizes its cache by the smallest budget)."""
        device = "cuda" if self.dist.get_backend() == "nccl" else "cpu"
        t = torch.tensor([value], dtype=torch.int64, device=device)
        self.dist.all_reduce(t, op=self.dist.ReduceOp.MIN)
        return int(t.item())

    def all_gather_last(self, x):
        """Concatenate every rank's x along the last dim (rank order)."""
        parts = [torch.empty_like(x) for _ in range(self.size)]
        self.dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=-1)
