"""Each pipeline worker sizes its own KV cache: its blocks = its memory // its bytes a block, worker by worker in
stage order, before the smallest count is given to every worker (v1/core/kv_cache_utils.py 0.32.0:2649-2679
get_kv_cache_configs; V0: executor/executor_base.py 0.8.5:103-106 determine_num_available_blocks), with
--num-gpu-blocks-override's rule by release (OVERRIDE_RULES) and, where the cache is sized after warmup, the blocks
0.34's extensible cache commits (vllm.py start's `fit`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from .figures import Refusal, format_gib
from .vllm_versions import Behaviour, release_rule

# --num-gpu-blocks-override N (config/cache.py CacheConfig.num_gpu_blocks_override, "used for testing preemption"):
# the pool holds N blocks of every group whatever the profiled memory; nothing compares N blocks with that memory,
# so a pool larger than the budget fails when the worker allocates it (or runs past gpu_memory_utilization).
# By release (first release -> rule, newest first):
# - "checked" (0.20.1 on, vllm#41069): get_kv_cache_configs replaces each worker's available memory by N x bytes
#   per block, so the one-request check (null block held back) and auto-fit run against N blocks.
# - "after_check" (0.8-0.9.0, 0.9.2-0.20.0): the check runs on the profiled memory, then may_override_num_blocks
#   (get_num_blocks) sets N: a pool too small for one request starts and never schedules it.
# - "ignored" (0.9.1): get_num_blocks logs the override and keeps the profiled count (fixed by vllm#19503).
# - V0 (<= 0.7, and wherever a later release falls back to V0: vllm_v1_oracle.v0_rules):
#   LLMEngine._initialize_kv_caches sets N (engine/llm_engine.py 0.8.0:434-440, 0.9.1:415-421, 0.9.2:415-421), and
#   the worker's raise_if_cache_size_invalid checks N x block_size tokens (one virtual engine's share from 0.8:
#   worker/worker.py 0.9.1:318-322, :570) against max_model_len, as "checked" does (V0_OVERRIDE): 0.9.1's bug is
#   V1's alone.
OVERRIDE_RULES = (((0, 20, 1), "checked"), ((0, 9, 2), "after_check"), ((0, 9, 1), "ignored"),
                  ((0, 8), "after_check"), ((0, 2), "checked"))
OVERRIDE_TOO_BIG = ("--num-gpu-blocks-override {n:,} asks for {needed} GiB of KV cache a GPU, more than the {left} "
                    "GiB the budget leaves: vLLM does not check the override against free memory "
                    "(v1/core/kv_cache_utils.py get_kv_cache_configs), so allocating the cache would fail with CUDA "
                    "out of memory (or run past --gpu-memory-utilization)")


V0_OVERRIDE = "checked"  # V0's LLMEngine sets N and its workers check it, in every release that runs V0 (above)


def override_rule(version: str, rules: Behaviour) -> str:
    """How vLLM `version` applies --num-gpu-blocks-override on the engine `rules` plan it by (OVERRIDE_RULES)."""
    return V0_OVERRIDE if rules.era == "v0" else release_rule(OVERRIDE_RULES, version)


def v0_override_line(stages, available: list, block_of, override: int) -> str:
    """V0's one --num-gpu-blocks-override line: LLMEngine._initialize_kv_caches logs it once, with the count
    determine_num_available_blocks agrees on, the fewest of any worker (engine/llm_engine.py 0.7.3:423-429, 0.8.5:
    424-429; executor/executor_base.py 0.8.5:103-106), where each V1 worker logs its own."""
    fewest = min(memory // block_of(stage) for stage, memory in zip(stages, available) if block_of(stage))
    return f"Overriding num_gpu_blocks={fewest} with num_gpu_blocks_override={override}"


@dataclass(frozen=True)
class WorkerSizing:
    """What sizing every worker's cache gave (size_workers)."""

    blocks: tuple  # each worker's count in stage order, a stage holding no KV layer skipped
    counted: tuple  # (stage index, its count) as each worker logs it before the smallest is taken
    refusal: Optional[Refusal]  # the first worker whose one-request check failed (size_workers' `check`)
    too_big: Optional[Refusal]  # N override blocks past the budget of the first stage short of them
    lines: tuple  # the override's lines: one a V1 worker, V0's one (v0_override_line)
    override: Optional[int] = None  # --num-gpu-blocks-override
    rule: Optional[str] = None  # its rule in this release (OVERRIDE_RULES), None without the flag

    def overridden(self, per_block: int) -> dict:
        """The EngineFigures fields an override that sets the count fills: N and the bytes of N blocks."""
        if self.rule is None or self.rule == "ignored":
            return {}
        return dict(num_gpu_blocks_override=self.override, override_kv_cache_bytes=self.override * per_block)


def size_workers(stages: list, available: list, block_of: Callable, *, override: Optional[int], version: str,
                 rules: Behaviour, check: Optional[Callable] = None, fit: Optional[Callable] = None) -> WorkerSizing:
    """Every worker's count in stage order on its own `available` bytes: `block_of(stage)` its bytes a block (0: no
    KV layer there, no count); `check(stage, memory)` the one-request check a V1 worker runs on the memory it sized
    (None where start-up checks elsewhere: V0, a cache sized after warmup, 0.14-0.16's whole-model check), the first
    refusal kept; `fit(index, stage, memory, per_block)` the bytes of the blocks 0.34's extensible cache commits
    there (None elsewhere). With --num-gpu-blocks-override `override`, its rule (OVERRIDE_RULES) sets the count and,
    "checked", the memory the check and the fit read."""
    rule = override_rule(version, rules) if override else None
    v1 = rules.era != "v0"
    blocks, counted, lines = [], [], []
    refusal, too_big = None, None  # too_big: (bytes N blocks take, bytes the budget leaves)
    for index, (stage, memory) in enumerate(zip(stages, available)):
        per_block = block_of(stage)
        if per_block == 0:
            continue
        if rule is not None and v1:  # each V1 worker logs its own count (V0: v0_override_line)
            lines.append(f"Overriding num_gpu_blocks={memory // per_block} with num_gpu_blocks_override={override}")
        if rule is not None:
            if rule != "ignored" and override * per_block > memory and too_big is None:
                too_big = (override * per_block, memory)
            if rule == "checked":
                memory = override * per_block
        if fit is not None:
            memory = fit(index, stage, memory, per_block)
        blocks.append(override if rule in ("checked", "after_check") else memory // per_block)
        counted.append((index, blocks[-1]))
        if refusal is None and check is not None:
            refusal = check(stage, memory)
    if rule is not None and not v1 and blocks:
        lines.append(v0_override_line(stages, available, block_of, override))
    return WorkerSizing(tuple(blocks), tuple(counted), refusal, _too_big_refusal(override, too_big), tuple(lines),
                        override, rule)


def _too_big_refusal(override: Optional[int], too_big: Optional[tuple]) -> Optional[Refusal]:
    """OVERRIDE_TOO_BIG for (bytes N blocks take, bytes the budget leaves); None where every stage holds them."""
    if too_big is None:
        return None
    return Refusal(OVERRIDE_TOO_BIG.format(n=override, needed=format_gib(too_big[0]),
                                           left=format_gib(max(too_big[1], 0))), None, allocation_fails=True)


def fewest_blocks_stage(counts: tuple, budgets: list) -> Optional[int]:
    """The pipeline stage whose own block count every worker takes (the smallest: vllm.Startup.stage_blocks), the
    one with the smaller KV budget among equal counts; None where no stage counted blocks."""
    counted = [(count, budgets[i], i) for i, count in enumerate(counts) if count is not None]
    return min(counted)[2] if counted else None
