"""The pure parts of `kvplan verify` (no torch): the forward pass as shapes (arch), the cache layout a plan
implies, the block allocator and the capacity boundary, the budget terms and their measurement, the verdicts,
and progress output. The GPU parts are in kvplan/gpu/."""

from .allocator import BlockAllocator, Boundary, kernel_block_table, probe_boundary
from .arch import Arch, architecture
from .shards import WeightSpec, rank_weights, shard_slices, weight_bytes
from .judge import ALLOCATION_TOLERANCE, BUDGET_TOLERANCE, DECODE_TOLERANCE, Verdict, judge, relative_error
from .layout import CacheGroup, Layout, attention_read_bytes, cache_layout
from .progress import Progress
from .terms import (capture_sizes, decode_prediction, measured_kv_budget, predicted_terms, subtracted_terms,
                    term_rows)

__all__ = ["ALLOCATION_TOLERANCE", "Arch", "BUDGET_TOLERANCE", "BlockAllocator", "Boundary", "CacheGroup",
           "DECODE_TOLERANCE", "Layout", "Progress", "Verdict", "WeightSpec", "architecture", "attention_read_bytes",
           "cache_layout", "capture_sizes", "decode_prediction", "judge", "kernel_block_table", "measured_kv_budget",
           "predicted_terms", "probe_boundary", "rank_weights", "relative_error", "shard_slices", "subtracted_terms",
           "term_rows",
           "weight_bytes"]
