"""DeepSeek-V4's shared KV pool by vLLM release: the bytes one block takes (num_blocks = available // it), the bytes
a block the start-up check prices, and the blocks a request the logged concurrency divides by.

Every release groups V4's caches alike (one group of the compressed and indexer caches, the MLA group; the window
and compressor-state caches in groups of equal repeats: vllm_specs.packed_groups), but lays the pool out in four ways
(paths under vllm/v1/core/kv_cache_utils.py; read in every release 0.20.0-0.34.0):
- "tuples" (0.20.0-0.22.x): _get_kv_cache_groups_uniform_groups pads each window / state page up to the MLA group's
  nearest larger page (0.20.0:1541-1548), and _get_kv_cache_config_deepseek_v4 strides a block by the MLA group's
  distinct page sizes summed, times the most layers of one page size in any group (:1176-1183, :1199).
- "slots" (0.23.0-0.26.x): the same padding; a block holds, for each page size, as many pages as the group with
  most layers of that size (_bucket_layers_by_page_size 0.23.0:1196-1218, _get_kv_cache_config_packed 0.24.0
  :1289-1291).
- "overlay" (0.27.0-0.28.x): no padding; groups overlay one slab, a block as wide as the widest group's pages
  (_get_packed_kv_cache_layout 0.27.0:1283-1306).
- "packed" (0.29.0 on): the same width (_get_kv_cache_bytes_per_block 0.29.0, 0.32.0:1520-1549; 0.34.0
  kv_cache_planning.py:620-649), kvplan's general rule (vllm._stage_block).
From 0.32 a --block-size above 256 splits each compressed and indexer page into 256-token kernel blocks, and a
packed block is strided by a multiple of every such kernel page (v1/worker/utils.py 0.32.0:476-486
customize_attention_spec: MultipleOf(256) for their backends' fixed [256]; v1/kv_cache_interface.py :183-194
get_block_stride_alignment; kv_cache_utils.py :1545-1549): kernel_stride.
The start-up check prices a request at the "tuples" block through 0.28 (_max_memory_usage_bytes_from_groups 0.20.0
:1746-1770, the same to 0.28.0), then at the pool's block (0.29.0). The logged concurrency divides by each group's
pages weighted by its bytes over the MLA group's through 0.26 (get_max_concurrency_for_kv_cache_config 0.20.0
:872-890, 0.26.0 :937-955, the MLA group first), then by the groups' pages summed (0.27.0 :937-957).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Optional

from ..model.kinds import V4Compressed, V4IndexerKeys
from .vllm_versions import parse_version, release_rule

KERNEL_STRIDE_SINCE = (0, 32)
KERNEL_BLOCK = 256  # DeepseekV4 sparse MLA's and its indexer's kernel blocks (models/deepseek_v4/sparse_mla.py :60-61)
V4_POOL_RULES = (((0, 29), "packed"), ((0, 27), "overlay"), ((0, 23), "slots"), ((0, 20), "tuples"))
PADDED = ("tuples", "slots")  # window / state pages padded to the MLA group's pages
WEIGHTED = ("tuples", "slots")  # concurrency over byte-weighted pages
TUPLE_CHECK = ("tuples", "slots", "overlay")  # the start-up check priced at the "tuples" block


def kernel_pages(spec, tp: int, precision) -> tuple:
    """The compressed and indexer caches' pages at the kernel block, each kind once."""
    return tuple(layer.page_bytes(KERNEL_BLOCK, tp, precision) for layer, _ in spec.layer_counts
                 if isinstance(layer, (V4Compressed, V4IndexerKeys)))


def v4_pool_rule(spec, version: str) -> Optional[str]:
    """The release's layout of DeepSeek-V4's pool (V4_POOL_RULES); None for other models."""
    if not any(isinstance(layer, V4Compressed) for layer in spec.layers):  # window only: one group, the general rule
        return None
    return release_rule(V4_POOL_RULES, version, "packed")


def kernel_stride(kernel_pages, block_size: int, version: str) -> int:
    """What a packed block's bytes are rounded up to: the least common multiple of the compressed and indexer caches'
    pages at the 256-token kernel block (`kernel_pages`) where the block is larger, from 0.32; else 1."""
    if parse_version(version) < KERNEL_STRIDE_SINCE or block_size <= KERNEL_BLOCK:
        return 1
    return math.lcm(*kernel_pages)


def _mla_group(groups):
    """The group of the compressed and indexer caches (full-attention type), vLLM's first group up to 0.28."""
    return next((g for g in groups if g.spec.uniform_type == ("full",)), None)


def _pages(group, stage: Optional[set], groups, rule: str, whole: bool = False) -> list:
    """The group's layers' pages on `stage` (None: every layer), padded where the rule pads: get_kv_cache_groups pads
    the window and state specs once for the whole model, to the MLA group's next page (0.20.0:1541-1548). `whole`: a
    group with no layer on the stage counts all of its layers, as the projected groups keep the global spec there
    (_project_kv_cache_groups_to_worker 0.20.0:1903-1923)."""
    pages = [p for i, p in zip(group.layers, group.page_bytes_of_layers) if stage is None or i in stage]
    if not pages and whole:
        pages = list(group.page_bytes_of_layers)
    if rule in PADDED and group.spec.uniform_type != ("full",):
        model = _mla_sizes(groups, None)
        pages = [min((m for m in model if m >= p), default=p) for p in pages]
    return pages


def _mla_sizes(groups, stage: Optional[set]) -> tuple:
    """The MLA group's distinct pages on `stage`, or the whole group's where the stage holds none of its layers
    (its projected spec is the global one)."""
    mla = _mla_group(groups)
    if mla is None:
        return ()
    pages = [p for i, p in zip(mla.layers, mla.page_bytes_of_layers) if stage is None or i in stage]
    return tuple(sorted(set(pages or mla.page_bytes_of_layers)))


def tuple_block(groups, stage: Optional[set], rule: str, whole: bool) -> int:
    """The MLA group's distinct page sizes summed, times the most layers of one page size in any group (`whole`: a
    group with no layer on the stage counted whole, as get_num_layer_tuples reads the projected spec; the pool's
    planner counts the stage's layers only)."""
    counts = [max(Counter(pages).values()) for g in groups if (pages := _pages(g, stage, groups, rule, whole))]
    return sum(_mla_sizes(groups, stage)) * max(counts, default=0)


def pool_block(groups, stage: Optional[set], rule: str, stride: int = 1) -> int:
    """Pool bytes one block takes on `stage` (the layer indices one pipeline stage holds; None: all); `stride`:
    kernel_stride."""
    if rule == "tuples":
        return tuple_block(groups, stage, rule, whole=False)
    if rule == "slots":
        slots: dict = {}
        for g in groups:
            for page, count in Counter(_pages(g, stage, groups, rule)).items():
                slots[page] = max(slots.get(page, 0), count)
        return sum(page * count for page, count in slots.items())
    widest = max(sum(_pages(g, stage, groups, rule)) for g in groups)
    return -(-widest // stride) * stride


def check_block(groups, stage: Optional[set], rule: str, stride: int = 1) -> int:
    """The bytes a block the start-up check prices a request at (its pages times this)."""
    if rule in TUPLE_CHECK:
        return tuple_block(groups, stage, rule, whole=True)
    return pool_block(groups, stage, rule, stride)


def concurrency_blocks(groups, group_blocks: list, stage: Optional[set], rule: str) -> int:
    """The blocks a request the logged concurrency divides the pool by: each group's pages (`group_blocks`, in
    `groups`' order) summed, or through 0.26 weighted by the group's bytes over the MLA group's, rounded up."""
    if rule not in WEIGHTED:
        return sum(group_blocks)
    widths = [sum(_pages(g, stage, groups, rule, whole=True)) for g in groups]
    mla = next(w for g, w in zip(groups, widths) if g is _mla_group(groups))
    return -(-sum(blocks * width for blocks, width in zip(group_blocks, widths)) // mla)
