"""The pure parts of `kvplan verify` (no torch): the cache layout a plan implies, the block allocator and the
capacity boundary, the weight stream of a decode step, the verdicts, and progress output. The GPU parts are in
kvplan/gpu/."""

from .allocator import BlockAllocator, Boundary, kernel_block_table, probe_boundary
from .judge import ALLOCATION_TOLERANCE, DECODE_TOLERANCE, Verdict, judge, relative_error
from .layout import CacheGroup, Layout, attention_read_bytes, cache_layout
from .progress import Progress
from .weights import WeightMatrix, stream_bytes, sweep_batches, weight_stream

__all__ = ["ALLOCATION_TOLERANCE", "BlockAllocator", "Boundary", "CacheGroup", "DECODE_TOLERANCE", "Layout",
           "Progress", "Verdict", "WeightMatrix", "attention_read_bytes", "cache_layout", "judge",
           "kernel_block_table", "probe_boundary", "relative_error", "stream_bytes", "sweep_batches",
           "weight_stream"]
