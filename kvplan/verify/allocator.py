"""The block allocator over one rank's pools and the capacity boundary it proves: max_concurrency sequences
admitted, one more refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..model.kinds import blocks_for
from .layout import CacheGroup, Layout


class BlockAllocator:
    """Free lists of block ids, one per pool. A sequence takes its blocks in every pool at once or nothing
    (vLLM's all-or-nothing admission); freed blocks return to their pool. Fresh pools hand out ascending ids."""

    def __init__(self, pools: dict):
        for name, blocks in pools.items():
            if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 0:
                raise ValueError(f"pool {name!r} needs a whole number of blocks >= 0, got {blocks!r}")
        self.capacity = dict(pools)
        self._free = {name: list(range(blocks - 1, -1, -1)) for name, blocks in pools.items()}
        self.tables: dict = {}

    def free_blocks(self, pool: str) -> int:
        return len(self._free[pool])

    def allocate(self, seq_id, need: dict) -> Optional[dict]:
        """{pool: [block ids]} for the sequence, or None (and nothing taken) when a pool is short."""
        if seq_id in self.tables:
            raise ValueError(f"sequence {seq_id!r} already holds blocks")
        unknown = set(need) - set(self._free)
        if unknown:
            raise ValueError(f"no pool named {sorted(unknown)[0]!r}")
        if any(n < 0 or len(self._free[pool]) < n for pool, n in need.items()):
            return None
        table = {pool: [self._free[pool].pop() for _ in range(n)] for pool, n in need.items()}
        self.tables[seq_id] = table
        return table

    def release(self, seq_id) -> None:
        for pool, blocks in self.tables.pop(seq_id).items():
            self._free[pool].extend(reversed(blocks))


@dataclass(frozen=True)
class Boundary:
    context: int
    max_concurrency: int
    served: int  # sequences the allocator admitted when asked for max_concurrency + 1
    refused_next: bool  # sequence max_concurrency + 1 was refused
    blocks_per_sequence: dict  # pool -> blocks one sequence holds
    free_blocks_after: dict  # pool -> blocks left with max_concurrency sequences admitted
    sequence_bytes: int  # what one more sequence would need
    budget_left_bytes: int  # KV budget not held by the admitted sequences (free blocks + never allocated)
    no_block_shared: bool  # no block id handed to two sequences
    confirmed: bool
    reason: str


def probe_boundary(layout: Layout, kv_budget: int, pools: Optional[dict] = None) -> tuple:
    """Admit sequences of `context` tokens until the allocator refuses; confirmed when exactly
    max_concurrency are served, one more is refused, and one more would not fit the budget's remainder
    either (the plan is tight, not merely safe). `pools` (name -> blocks) defaults to the layout's; verify
    passes the block counts of the tensors it really allocated. Returns (Boundary, allocator)."""
    pools = pools or {g.name: g.num_blocks for g in layout.groups}
    need = {g.name: g.blocks_per_sequence for g in layout.groups}
    allocator = BlockAllocator(pools)
    planned = layout.max_concurrency
    served = 0
    while served <= planned and allocator.allocate(served, need) is not None:
        served += 1
    refused_next = served == planned
    if served > planned:  # the pool holds more than the plan says: release the extra, report it
        allocator.release(served - 1)
    seen: set = set()
    distinct = True
    for table in allocator.tables.values():
        for pool, blocks in table.items():
            ids = {(pool, b) for b in blocks}
            distinct &= not (ids & seen) and len(ids) == len(blocks)
            seen |= ids
    held = min(served, planned) * layout.sequence_bytes
    left = kv_budget - held
    free_after = {name: allocator.free_blocks(name) for name in pools}
    if served < planned:
        reason = f"the pools admitted only {served} of {planned} planned sequences"
    elif served > planned:
        reason = f"the pools admitted a sequence beyond the planned {planned}: the plan undercounts capacity"
    elif layout.sequence_bytes <= left:
        reason = (f"one more sequence ({layout.sequence_bytes:,} B) would fit the {left:,} B of budget left: "
                  f"the plan undercounts capacity")
    elif not distinct:
        reason = "a block id was handed to two sequences"
    else:
        reason = (f"{planned} sequences admitted, sequence {planned + 1} refused; it needs "
                  f"{layout.sequence_bytes:,} B and {left:,} B of the budget are left")
    confirmed = served == planned and refused_next and layout.sequence_bytes > left and distinct
    boundary = Boundary(layout.context, planned, min(served, planned), refused_next, need, free_after,
                        layout.sequence_bytes, left, distinct, confirmed, reason)
    return boundary, allocator


def kernel_block_table(group: CacheGroup, blocks: list, context: int) -> list:
    """One row of the kernel's block table: logical block j of the sequence -> physical block id. A window
    layer owns only the blocks of its last `window` tokens; the logical entries before them are never read
    (the kernel attends the last W tokens) and point at a block the sequence owns, so they stay valid."""
    width = blocks_for(context, group.block_tokens)
    if group.window is None:
        if len(blocks) != width:
            raise ValueError(f"{group.name}: {len(blocks)} blocks for a {width}-block sequence")
        return list(blocks)
    first = max(0, context - group.window) // group.block_tokens
    last = (context - 1) // group.block_tokens
    span = last - first + 1
    if span > len(blocks):
        raise ValueError(f"{group.name}: the window spans {span} blocks but the sequence holds {len(blocks)}")
    row = [blocks[0]] * width
    row[first:last + 1] = blocks[:span]
    return row
