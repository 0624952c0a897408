"""How many sequences of max_model_len tokens a running vLLM 0.32 server keeps resident: one request's blocks
simulated chunk by chunk, group by group, the way KVCacheManager.allocate_slots (v1/core/kv_cache_manager.py)
and the single-type managers (v1/core/single_type_kv_cache_manager.py) hand them out, then requests admitted
one after another until the block pool (less the null block) refuses one.

Per request, in scheduler order:
- admission gate (`full_sequence_must_fit`, SchedulerConfig.scheduler_reserve_full_isl, on by default from 0.19:
  `gate` as vllm_admission_gate.py gives it by release): the whole sequence's blocks, capped by
  `max_admission_blocks_per_request` for sliding/chunked groups from 0.20 ("capped"; every group at the whole
  sequence in 0.19, "uncapped"), one Mamba block in "align" mode (in "all" mode a state block every block of the
  sequence, as a full-attention group's), must be free; before 0.19 ("none") only the first chunk's, so the
  prefill's peak decides;
- each prefill chunk of max_num_batched_tokens: `remove_skipped_blocks` frees what fell out of the window up to
  the scheduled tokens (kv_cache_manager.py 0.20.0:380-382), from 0.26 up to the processed ones, the previous
  chunk still in flight under async scheduling left out (0.26.0:443-447, 0.32.0:557; `in_flight_batches` above 1
  only from 0.26: vllm_settings.py), then the chunk's new blocks must be free;
- after the prefill settles, the blocks outside the window are freed: what the request keeps is its footprint
  (what vLLM's KVCacheManager holds for a request of exactly max_model_len tokens);
- while it decodes towards max_model_len a chunked layer refills its chunk, emptied at each chunk boundary: just
  before a boundary it holds the whole chunk. `decoding` is the most the request holds at any point; the plan's
  concurrency uses it (Llama 4 at 8K: the chunk of 8,192 tokens is all freed at max_model_len itself, so the
  footprint counts 131 requests at tp 2 on an H200 where 34 decode at once; verify admits 34, session 37).
The pool hands out num_blocks - 1 blocks from 0.8.3 (BlockPool keeps block 0 as the null block), all before
(vllm_admission_gate.handed_out).
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass

from ..model.kinds import blocks_for


class _Blocks:
    """A request's block table in one group: `length` entries, the first `nulled` replaced by the null block
    (SingleTypeKVCacheManager._remove_blocks_in_range frees a prefix, newest first)."""

    def __init__(self, spec, max_model_len: int):
        self.spec, self.length, self.nulled = spec, 0, 0
        mamba_none = spec.kind == "mamba" and not spec.all_mode  # "none" mode: one block of the whole length
        self.block_size = max_model_len if mamba_none else spec.block_size
        # one block spans the whole length (a "none"-mode Mamba block; a block size vLLM set to max_model_len
        # before 0.28): nothing is freed below max_model_len, so the table stays the same from the first chunk on
        self.fixed = self.block_size >= max_model_len
        # MambaManager without "align": the draft tokens' states as num_speculative_blocks more blocks
        self.extra = spec.speculative_blocks if spec.kind == "mamba" else 0

    @property
    def held(self) -> int:
        return self.length - self.nulled

    def held_while_decoding(self, computed: int) -> int:
        """Blocks held with `computed` tokens done and the next one's slot allocated. A Mamba table's skip at 0
        tokens done (MambaManager.get_num_skipped_tokens: computed - 1 = -1) frees nothing: remove_skipped_blocks
        returns on a skip <= 0 (v1/core/single_type_kv_cache_manager.py 0.32.0:696-697, :1959)."""
        freed = max(0, self.skipped_tokens(computed)) // self.block_size
        return blocks_for(computed + 1, self.block_size) - min(freed, blocks_for(computed + 1, self.block_size)) + \
            self.extra

    def skipped_tokens(self, processed: int) -> int:
        """get_num_skipped_tokens of each manager."""
        kind, window = self.spec.kind, self.spec.window
        if kind == "sliding":
            return max(0, processed - window + 1)
        if kind == "chunked":
            return processed // window * window
        if kind == "mamba":  # "all" mode before 0.14 keeps every state (CacheSpec.all_mode "keeps")
            return 0 if self.spec.all_mode == "keeps" else processed - 1
        return 0

    def gate(self, tokens: int, cap) -> int:
        needed = blocks_for(tokens, self.block_size) + self.extra
        return needed if cap is None else min(needed, cap)

    def remove_skipped(self, processed: int) -> None:
        skipped = self.skipped_tokens(processed)
        if skipped > 0:
            self.nulled = max(self.nulled, min(skipped // self.block_size, self.length))

    def allocate(self, tokens: int, start: int = 0) -> None:
        self.length = max(self.length, blocks_for(tokens, self.block_size) + self.extra)

    # _Period: length is blocks_for(computed) and nulled skipped_tokens(processed) // block_size, both growing
    # by tokens/block_size a period once skipped_tokens is positive (a chunked layer's chunk divides `tokens`)
    def repeats_every(self) -> int:
        if self.fixed:
            return 1
        chunked = self.spec.kind == "chunked" and self.spec.window > 0
        return math.lcm(self.block_size, self.spec.window) if chunked else self.block_size

    def settled_after(self) -> int:
        return max(self.spec.window, 0) + 2

    def snapshot(self) -> tuple:
        return self.length, self.nulled

    def repeats(self, before: tuple, tokens: int) -> bool:
        grown, freed = self.length - before[0], self.nulled - before[1]
        return 0 <= freed <= grown

    def advance(self, before: tuple, periods: int) -> None:
        self.length += periods * (self.length - before[0])
        self.nulled += periods * (self.nulled - before[1])


class _MambaAlign:
    """MambaManager in "align" mode (prefix caching on): one state block per step at the position of the
    chunk's last block, null entries before it; the block of two steps ago is freed (`last_state_block_idx`).
    Mamba-2 also keeps the state at the last block boundary of the prompt (`_needs_internal_checkpoint`,
    prefix-cache hash blocks = the block size here) in one more block while the prompt's last chunk runs."""

    def __init__(self, spec, max_model_len: int):
        self.block_size, self.length, self.real = spec.block_size, 0, set()
        self.retired, self.last_state, self.allocated = 0, None, False
        self.checkpoints, self.prompt = spec.checkpoint_blocks > 0, max_model_len
        # num_speculative_blocks: allocated with the first state block, then relocated, never freed
        self.speculative = spec.speculative_blocks

    @property
    def held(self) -> int:
        return len(self.real) + (self.speculative if self.allocated else 0)

    def needs_checkpoint(self, start: int, end: int) -> bool:
        """v1/kv_cache_interface.py is_mamba_prefill_checkpoint_valid, on the chunk that reaches the prompt end."""
        bs = self.block_size
        if not self.checkpoints or end < self.prompt:
            return False
        position = (end - 1) // bs * bs  # get_mamba_prefill_checkpoint_position, no EAGLE
        column = blocks_for(end, bs) - 2
        valid = (start % bs == 0 and column > (start - 1) // bs and start + bs <= position
                 and start < position < end)
        return valid and column >= 0 and (column >= self.length or column not in self.real)

    def gate(self, tokens: int, cap) -> int:
        # physical_block_cap: 1 (+ the checkpoint), + num_speculative_blocks on the first allocation
        return min(blocks_for(tokens, self.block_size), 1 + self.needs_checkpoint(0, tokens)) + self.speculative

    def remove_skipped(self, processed: int) -> None:
        if processed - 1 > 0:
            last = min((processed - 1) // self.block_size, self.length)
            first = max(0, self.retired)
            if first < last:
                self.real -= set(range(first, last))
                self.retired = last
        if self.last_state is not None and self.last_state < blocks_for(processed, self.block_size) - 1:
            self.real.discard(self.last_state)

    # _Period: the block indices move by tokens/block_size a period; checkpoints only come with the last chunk.
    # A block of the whole prompt or more holds one state, the same from the first chunk to the last.
    def repeats_every(self) -> int:
        return 1 if self.block_size >= self.prompt else self.block_size

    def settled_after(self) -> int:
        return 2 if self.block_size >= self.prompt else 2 * self.block_size + 2

    def snapshot(self) -> tuple:
        return self.length, frozenset(self.real), self.retired, self.last_state, self.allocated

    def _shifted(self, state: tuple, blocks: int) -> tuple:
        length, real, retired, last_state, allocated = state
        return (length + blocks, frozenset(b + blocks for b in real), retired + blocks,
                None if last_state is None else last_state + blocks, allocated)

    def repeats(self, before: tuple, tokens: int) -> bool:
        return self.snapshot() == self._shifted(before, tokens // self.block_size)

    def advance(self, before: tuple, periods: int) -> None:
        blocks = periods * (self.length - before[0])
        self.length, self.real, self.retired, self.last_state, self.allocated = self._shifted(
            self.snapshot(), blocks)
        self.real = set(self.real)

    def allocate(self, tokens: int, start: int = 0) -> None:
        required = blocks_for(tokens, self.block_size)
        checkpoint = self.needs_checkpoint(start, tokens)
        if required > self.length or checkpoint:
            if self.length > 0:
                self.last_state = self.length - 1
            if self.length < required - 1:
                self.length = required - 1 - checkpoint
            new = max(required - self.length, 0)
            self.real |= set(range(self.length, self.length + new))
            self.length += new
        self.allocated = True


@dataclass(frozen=True)
class Footprint:
    """One request of max_model_len tokens: blocks the admission gate asks for, the most it holds while
    prefilling, and what it keeps once prefilled."""

    gate: int
    peak: int
    held: int
    decoding: int = 0  # the most it holds while it decodes up to max_model_len (at least `held`)

    def resident(self, usable_blocks: int, held: int | None = None) -> int:
        """Requests admitted one after another before the pool refuses one, each keeping `held` blocks (the
        footprint at max_model_len by default)."""
        held = self.held if held is None else held
        need = max(self.gate, self.peak)
        if usable_blocks < need or held <= 0:
            return 0
        return (usable_blocks - need) // held + 1


_REMEMBERED: dict = {}  # (specs, arguments) -> Footprint: the remedy search asks again at other releases


def footprint(groups, max_model_len: int, chunk: int, in_flight_batches: int, mamba_align: bool,
              admission_in_flight: int, gate: str = "capped") -> Footprint:
    """Simulate one request through every group. `admission_in_flight` is VllmConfig.max_in_flight_tokens
    (the sliding/chunked admission caps); the previous chunk stays in flight while the next is allocated
    when more than one batch is in flight (async scheduling, 0.26 on: module docstring). Whole periods of
    identical steps are jumped (_Period), so a chunk of 1 token at a million-token length costs a few periods,
    not a million steps.
    The same specs and arguments give the same footprint, remembered (the simulation reads nothing else).
    `gate`: the release's admission gate (vllm_admission_gate.AdmissionRule.gate)."""
    args = (max_model_len, chunk, in_flight_batches, mamba_align, admission_in_flight, gate)
    specs = tuple(g.spec for g in groups)
    if not all(isinstance(spec, Hashable) for spec in specs):
        return _simulated(groups, *args)
    key = (specs, args)
    held = _REMEMBERED.get(key)
    if held is None:  # kept here, not read back: another thread may clear the table in between (kvplan/memo.py)
        if len(_REMEMBERED) >= 256:
            _REMEMBERED.clear()
        held = _REMEMBERED[key] = _simulated(groups, *args)
    return held


def _simulated(groups, max_model_len: int, chunk: int, in_flight_batches: int, mamba_align: bool,
               admission_in_flight: int, gate_rule: str = "capped") -> Footprint:
    states = [(_MambaAlign if g.spec.kind == "mamba" and mamba_align and not g.spec.all_mode else _Blocks)(
        g.spec, max_model_len) for g in groups]
    capped = gate_rule == "capped"
    gate = 0 if gate_rule == "none" else sum(
        s.gate(max_model_len, g.spec.admission_cap(max_model_len, admission_in_flight) if capped else None)
        for s, g in zip(states, groups))
    period = _Period(states, chunk, max_model_len)
    peak, computed, previous = 0, 0, 0
    while computed < max_model_len:
        n = min(chunk, max_model_len - computed)
        in_flight = previous if in_flight_batches > 1 else 0
        for s in states:
            s.remove_skipped(max(0, computed - in_flight))
        for s in states:
            s.allocate(computed + n, computed)
        peak = max(peak, sum(s.held for s in states))
        computed, previous = computed + n, n
        computed += period.jump(computed, computed - (n if in_flight_batches > 1 else 0))
    decoding = _held_before_chunk_ends(states, groups, max_model_len)
    for s in states:
        s.remove_skipped(max_model_len)
    held = sum(s.held for s in states)
    return Footprint(gate, peak, held, max(held, decoding))


class _Period:
    """Once every window has filled, the step `tokens` later (a common multiple of the chunk and of what each
    group repeats on: its block size, a chunked layer's chunk) is the same step shifted by whole blocks: full
    layers grow by tokens/block_size entries, windowed and Mamba tables slide by as many, a "none"-mode Mamba
    block stays. So what a step holds only grows period over period and the peak is reached in the last period
    too: once one period has been seen to repeat, whole periods are jumped and the last one is stepped through."""

    def __init__(self, states, chunk: int, max_model_len: int):
        self.states, self.chunk, self.end = states, chunk, max_model_len
        self.tokens = math.lcm(chunk, *(s.repeats_every() for s in states))
        self.settled = max(s.settled_after() for s in states) if states else 0
        self.seen = None  # (computed, snapshots) at the start of the period being watched

    def jump(self, computed: int, processed: int) -> int:
        """Tokens to skip after a step that ended at `computed`, the next step processing `processed`: 0 or
        whole periods, leaving at least one period and the last chunk to step through."""
        if processed < self.settled or self.end - computed < 2 * self.tokens + self.chunk:
            return 0
        if self.seen is None:
            self.seen = (computed, [s.snapshot() for s in self.states])
            return 0
        if computed - self.seen[0] < self.tokens:
            return 0
        before, self.seen = self.seen[1], None
        if not all(s.repeats(b, self.tokens) for s, b in zip(self.states, before)):
            return 0
        periods = (self.end - computed - self.tokens - self.chunk) // self.tokens
        for s, b in zip(self.states, before):
            s.advance(b, periods)
        return periods * self.tokens


def _held_before_chunk_ends(states, groups, max_model_len: int) -> int:
    """The most the request holds just before one of its chunked layers' chunk boundaries (k x chunk - 1 tokens
    computed, below max_model_len): every group at that point, Mamba states as they end. 0 without chunked layers
    (full and sliding layers hold most at the end).
    Only the boundaries of the last `span` tokens are walked, `span` a common multiple of the chunks and of what
    every table repeats on (_Blocks.repeats_every): `span` tokens later each table holds at least as much (a full
    one more, a windowed, chunked or "all"-mode Mamba one the same, a whole-length Mamba block and an "align"-mode
    state the same), and a boundary `span` later is a boundary too, so none before them holds more. A chunk of 16
    tokens at 10M tokens is one boundary to walk, not 655,360."""
    chunks = {g.spec.window for g in groups if g.spec.kind == "chunked" and g.spec.window > 0}
    if not chunks:
        return 0
    span = math.lcm(*chunks, *(s.repeats_every() for s in states if isinstance(s, _Blocks)))
    first = max(0, max_model_len - span)  # the first token of the last span
    points = {k * w - 1 for w in chunks for k in range(max(1, -(-(first + 1) // w)), max_model_len // w + 1)
              if k * w - 1 < max_model_len}
    points |= {max_model_len - 1}
    return max((sum(s.held_while_decoding(c) if isinstance(s, _Blocks) else s.held for s in states)
                for c in points), default=0)
