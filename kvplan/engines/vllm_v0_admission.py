"""How many blocks V0's scheduler may hand to the requests it admits one after another: its block manager's share
less the watermark, with no null block held back (read in the wheels 0.2.0, 0.4.0, 0.5.0, 0.5.5, 0.6.0-0.6.6,
0.7.3, 0.8.5, 0.10.1.1):
- Each Scheduler (one a virtual engine, vllm_v0_pp.py) builds its block manager over its share of the GPU blocks
  with the default watermark, 0.01, which no flag sets (the Scheduler passes none: core/scheduler.py 0.6.3:333-338,
  0.10.1.1:449-455): watermark_blocks = int(0.01 x share) (core/block_manager.py 0.2.0:65, :81;
  block_manager_v1.py 0.5.0:221, :244, 0.6.3:237, :260; block_manager_v2.py 0.5.5:67, :93, 0.6.3:65, :91;
  block_manager.py 0.6.6:65, :91, 0.7.3:66, :92, 0.10.1.1:67, :93).
- can_allocate, asked of every waiting request, the first one too (core/scheduler.py _schedule_prefills 0.5.5:771,
  0.6.3:911-918, 0.10.1.1:1118-1124): OK while the free blocks less the request's stay >= watermark_blocks, else
  LATER; NEVER (the prompt "exceeds the capacity of block_manager" and is ignored) where the share less the
  request's blocks is under it (block_manager_v1.py 0.6.3:308-315, block_manager_v2.py 0.6.3:138-145,
  block_manager.py 0.7.3:139-146, 0.10.1.1:140-147; 0.2.0:98-100 says OK or wait, so such a prompt waits for ever).
  The same test in BlockSpaceManagerV1 and V2, so the block-manager default (use_v2_block_manager False up to 0.6.2:
  engine/arg_utils.py 0.5.5:84, 0.6.2:110; True from 0.6.3: :110; V1 gone from 0.6.4) does not change it.
  Requests admitted one after another each find the share less watermark_blocks: vllm_admission.Footprint.resident
  over that, which also makes a request longer than it never run. A decode step's can_append_slots checks no
  watermark (block_manager_v1.py 0.6.3:375-386): a request admitted keeps growing into it.
- No null block: V0's allocators hand out every block. BlockSpaceManagerV1 reuses a sliding window's blocks in place
  (block_manager_v1.py 0.6.3:327-329); V2's block table takes one block as its null block the first time a
  sliding-window request drops blocks (core/block/block_table.py 0.6.3:137-147, cpu_gpu_block_allocator.py
  0.6.3:113-117), one for the whole share: held back where the release runs V2 by default (NULL_BLOCK_SINCE).
- A sliding window's request (one window for every layer: vllm.groups_for) by block manager (v0_footprint):
  BlockSpaceManagerV1 (the default up to 0.6.2) caps it at ceil(window / block_size) blocks, gate and table alike,
  reusing them in turn (block_manager_v1.py 0.6.2:253, :299-300, :322-324, :460-462). BlockSpaceManagerV2 (0.6.3 on;
  block_manager.py from 0.6.6) gates it on min(prompt blocks, window // block_size + 2) (max_block_sliding_window:
  block_manager_v2.py 0.6.3:76-84, :132-133; block_manager.py 0.7.3:77-85, :133-134, 0.10.1.1:78-86, :134-135), yet
  allocate() takes every prompt block at once, chunked prefill or not (block_manager_v2.py 0.6.3:147-155,
  block_table.py 0.6.3:81-100; block_manager.py 0.10.1.1:149-161): the free blocks must hold them all (else the
  allocator raises NoFreeBlocksError, block/naive_block.py 0.6.3:130). Its next step's append_token_ids drops the
  blocks before the window's, each a reference to the one null block (block_table.py 0.6.3:137-147, 0.10.1.1:
  150-158), so a decoding request keeps at most
  max_block_sliding_window + 1 blocks (ensure_num_empty_slots adds the next token's). The null block is allocated
  on that first append, after the first request is admitted: the first admission finds the whole share.
The figures vLLM logs ("# GPU blocks", "Maximum concurrency") are counted before any of this: unchanged."""

from __future__ import annotations

from typing import Optional

from ..model.kinds import blocks_for
from .vllm_admission import Footprint
from .vllm_versions import parse_version

WATERMARK = 0.01  # BlockSpaceManager's default watermark (docstring)
NULL_BLOCK_SINCE = (0, 6, 3)  # BlockSpaceManagerV2 the default: a sliding window's null block (docstring)


def watermark_blocks(share: int) -> int:
    """Blocks a V0 block manager of `share` blocks keeps free at admission: int(0.01 x share), as vLLM reckons it in
    floating point."""
    return int(WATERMARK * share)


def null_blocks(groups, version: str) -> int:
    """The null block V0 holds back in a scheduler's share: one where a sliding window's requests drop blocks under
    BlockSpaceManagerV2 (NULL_BLOCK_SINCE), else none."""
    sliding = any(g.spec.kind == "sliding" for g in groups)
    return 1 if sliding and parse_version(version) >= NULL_BLOCK_SINCE else 0


def v0_footprint(groups, length: int, version: str) -> Optional[Footprint]:
    """One request of `length` tokens in a sliding window's group as V0's block manager handles it (docstring): the
    blocks can_allocate asks for, the blocks allocate takes, the most it then keeps; None where no group slides
    (the engine's footprint stands: every block of the request, gate and table alike)."""
    spec = next((g.spec for g in groups if g.spec.kind == "sliding"), None)
    if spec is None:
        return None
    prompt = blocks_for(length, spec.block_size)
    if parse_version(version) < NULL_BLOCK_SINCE:  # BlockSpaceManagerV1: ceil(window / block) blocks reused
        kept = min(prompt, blocks_for(spec.window, spec.block_size))
        return Footprint(gate=kept, peak=kept, held=kept, decoding=kept)
    window_blocks = spec.window // spec.block_size + 2  # BlockSpaceManagerV2's max_block_sliding_window
    kept = min(prompt, window_blocks + 1)
    return Footprint(gate=min(prompt, window_blocks), peak=prompt, held=kept, decoding=kept)


def admitted(share: int, one: Footprint, null: int, held: Optional[int] = None) -> int:
    """Requests a V0 scheduler of `share` blocks admits one after another, each keeping `held` (one.held by
    default): while the free blocks less can_allocate's gate keep the watermark and hold allocate's peak; the null
    block (`null`) gone from the second admission on (docstring)."""
    held = one.held if held is None else held
    need = max(one.gate + watermark_blocks(share), one.peak)
    if share < need or held <= 0:
        return 0
    return 1 if share - null < need else (share - null - need) // held + 1


def fewest_share(one: Footprint) -> int:
    """The smallest share whose scheduler admits one request of `one` (admitted >= 1: share - int(0.01 x share) >=
    gate and share >= peak). The watermark grows by a block every 100, so the answer is within gate / 99 + 2
    blocks of the larger of gate and peak."""
    share = max(one.gate, one.peak)
    while admitted(share, one, 0, 1) < 1:
        share += 1
    return share
