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
The figures vLLM logs ("# GPU blocks", "Maximum concurrency") are counted before any of this: unchanged."""

from __future__ import annotations

from .vllm_versions import parse_version

WATERMARK = 0.01  # BlockSpaceManager's default watermark (docstring)
NULL_BLOCK_SINCE = (0, 6, 3)  # BlockSpaceManagerV2 the default: a sliding window's null block (docstring)


def watermark_blocks(share: int) -> int:
    """Blocks a V0 block manager of `share` blocks keeps free at admission: int(0.01 x share), as vLLM reckons it in
    floating point."""
    return int(WATERMARK * share)


def admission_blocks(share: int, groups, version: str) -> int:
    """Blocks of a V0 scheduler's `share` that the requests it admits one after another may take: the share less its
    watermark, less the null block where a sliding window's requests drop blocks under BlockSpaceManagerV2."""
    return share - watermark_blocks(share) - null_blocks(groups, version)


def null_blocks(groups, version: str) -> int:
    """The null block V0 holds back in a scheduler's share: one where a sliding window's requests drop blocks under
    BlockSpaceManagerV2 (NULL_BLOCK_SINCE), else none."""
    sliding = any(g.spec.kind == "sliding" for g in groups)
    return 1 if sliding and parse_version(version) >= NULL_BLOCK_SINCE else 0


def fewest_share(need: int, null: int) -> int:
    """The smallest share whose scheduler admits one request of `need` blocks: share - int(0.01 x share) - null >=
    need (can_allocate's test, docstring). The watermark grows by a block every 100, so the answer is within
    need / 99 + 2 blocks of need + null."""
    share = need + null
    while share - watermark_blocks(share) - null < need:
        share += 1
    return share
