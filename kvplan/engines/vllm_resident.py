"""Once the cache is sized: the fewest blocks that start one request of max_model_len and let it in, and the
requests of that length a running server keeps resident: V1's pool less its null block, past the release's
admission gate (vllm_admission.py, vllm_admission_gate.py); V0's virtual engines, each admitting into its share less
its watermark (vllm_v0_admission.py, vllm_v0_pp.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .vllm_admission import Footprint, footprint
from .vllm_admission_gate import admission_rule, handed_out
from .vllm_v0_admission import admitted, fewest_share, null_blocks, v0_footprint, watermark_blocks
from .vllm_v0_pp import v0_resident


@dataclass(frozen=True)
class Admission:
    """What resident_admission gives the start-up figures."""

    per_request: int  # blocks a request holds as the figures give it (V0 with a window: what it allocates)
    fewest: int  # the fewest blocks that start one request of max_model_len (and, started, let it in)
    watermark: int  # V0: each virtual engine's watermark blocks; V1: 0
    need: Optional[int] = None  # V1, started: what its scheduler asks to let a prompt of max_model_len in
    resident: int = 0  # requests the pool holds at the admission gate
    capped: int = 0  # requests it keeps running (decoding), capped at max_num_seqs by each virtual engine
    limited_by: str = "memory"  # memory | max_num_seqs


def resident_admission(sched, settings, version: str, *, v0: bool, engines: int, num_blocks: int, per_request: int,
                       started: bool) -> Admission:
    """The fewest blocks and, where vLLM `version` starts (`started`), the resident requests of a pool of
    `num_blocks` over `sched` (the groups as the scheduler counts a request's blocks), `engines` V0 virtual engines
    sharing it. The fewest: V1's pool holds back its null block, each V0 share its watermark (vllm_v0_admission.py)."""
    length = settings.max_model_len
    # a sliding window's request as V0's block manager gates, allocates and keeps it (vllm_v0_admission.py)
    v0_one = v0_footprint(sched, length, version) if v0 else None
    if v0_one is not None:  # what it allocates, not V1's admission cap
        per_request = v0_one.peak
    admission = admission_rule(version)  # V1: what its scheduler asks to let a prompt in, what its pool hands out
    fewest = engines * fewest_share(v0_one or Footprint(per_request, per_request, per_request)) \
        if v0 else per_request + admission.null_block
    watermark = watermark_blocks(num_blocks // engines) if v0 else 0
    if not started:
        return Admission(per_request, fewest, watermark)
    one = v0_one or footprint(sched, length, settings.max_num_batched_tokens, settings.in_flight_batches,
                              settings.prefix_caching, settings.in_flight_tokens,
                              "capped" if v0 else admission.gate)  # V0 asks for the whole prompt
    held_by = _admitted_by(one, sched, version, v0=v0)
    resident = v0_resident(held_by, num_blocks, engines, settings.max_num_seqs)[1]
    need = max(one.gate, one.peak) if not v0 else None  # V1: what its scheduler asks to let a prompt in
    if need is not None:  # the fewest that start it and let one prompt of max len in
        fewest = max(fewest, need + admission.null_block)
    # chunked layers full again before a chunk ends; each virtual engine caps its own share at max_num_seqs
    capped, _, over = v0_resident(lambda pool: held_by(pool, one.decoding), num_blocks, engines, settings.max_num_seqs)
    return Admission(per_request, fewest, watermark, need, resident, capped, "max_num_seqs" if over else "memory")


def _admitted_by(one, sched, version: str, v0: bool):
    """pool, held=None -> the requests of footprint `one` a scheduler of `pool` blocks admits, each keeping `held`
    (one's own by default): V1's pool less its null block (from 0.8.3), never handed out, each past the release's
    admission gate (vllm_admission_gate.py); a V0 virtual engine's share past its block manager's watermark and null
    block (vllm_v0_admission.py)."""
    if v0:
        null = null_blocks(sched, version)
        return lambda pool, held=None: admitted(pool, one, null, held)
    return lambda pool, held=None: one.resident(handed_out(pool, version), held)
