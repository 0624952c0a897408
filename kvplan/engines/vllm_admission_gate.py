"""What V1's scheduler asks of the block pool before it admits a waiting request, by release, and the blocks the
pool hands out (the footprint itself, chunk by chunk, is vllm_admission.py's). Read in every V1 release's
v1/core/sched/scheduler.py (the waiting loop's allocate_slots), kv_cache_manager.py, single_type_kv_cache_manager.py
and block_pool.py, 0.8.0-0.34.0 (0.15.1 for 0.15.x); default settings (watermark 0.0, no KV connector):

| releases     | asked of the free blocks to admit a prompt of P tokens           | pool hands out      |
|--------------|------------------------------------------------------------------|---------------------|
| 0.8.0-0.8.2  | its first chunk: cdiv(min(P, token budget left), block) (+ 64    | all num_blocks (no  |
|              | tokens preallocated where free, never asked)                     | null block)         |
| 0.8.3-0.18.x | the first chunk (0.8.5-0.10.0 + num_lookahead_tokens; 0.10.1 on  | num_blocks - 1      |
|              | none for a request with nothing computed)                        |                     |
| 0.19.x       | the whole prompt in every group, sliding and chunked ones too    | num_blocks - 1      |
| 0.20.0 on    | the whole prompt, sliding / chunked groups capped at             | num_blocks - 1      |
|              | max_admission_blocks_per_request                                 |                     |

- 0.8.0 scheduler.py:300, :312-317 and kv_cache_manager.py:191-194 ask for the chunk's new blocks only; :214-222 take
  up to 64 tokens' blocks more where free, capped at max_num_blocks_per_req = cdiv(max_model_len, block) (:33), so
  a request of max len keeps what it would keep without them (0.8.4:253-258, gone in 0.8.5). block_pool.py 0.8.0
  has no null block; 0.8.3:57 pops one off the free queue for good (0.20.0:176, 0.32.0:187).
- 0.8.5 sched/scheduler.py:366 and 0.10.0:445 add num_lookahead_tokens to the chunk; 0.10.1:444-446 ask none of a
  request with nothing computed (every new or preempted one).
- 0.19.0 scheduler.py:733-741 gate on kv_cache_manager.can_fit_full_sequence (:218-255): every group's
  get_num_blocks_to_allocate for min(num_tokens, max_model_len) tokens, none skipped yet, uncapped
  (single_type_kv_cache_manager.py 0.19.0:78-138), so a sliding window's group asks for cdiv(P, block) blocks like
  a full one (SchedulerConfig.scheduler_reserve_full_isl, on by default: config/scheduler.py 0.19.0:139).
- 0.20.0 caps every get_num_blocks_to_allocate at max_admission_blocks_per_request (single_type 0.20.0:116-128,
  kv_cache_interface.py :379-441, the start-up check's own count); 0.21.0 moves the gate into allocate_slots
  (full_sequence_must_fit, apply_admission_cap: kv_cache_manager.py 0.21.0:335-346; 0.32.0:522-538, scheduler.py
  0.32.0:1270). 0.23's reserved_blocks (async KV loads only) and 0.24's watermark (SchedulerConfig.watermark, 0.0
  by default: kv_cache_manager.py 0.24.0:363-386) ask nothing more by default.

Past the gate every release allocates chunk by chunk, and a running request that finds no block preempts the newest
(recompute: 0.18.1 sched/scheduler.py:480-496), itself when it is the only one. So:
(a) the longest prompt a pool ever serves: before 0.19, the longest whose blocks at the prefill's peak fit what the
    pool hands out (a longer one is admitted on its first chunk, preempts itself at the chunk that finds no block,
    and starts over, for ever); 0.19.x, the longest whose blocks in every group fit (gemma-3-27b-it, 7 groups of 16
    tokens a block, in 11,467 blocks: 7 x cdiv(P, 16) <= 11,467, P <= 26,208); 0.20 on, the peak or the capped gate,
    whichever is more.
(b) max-len requests arriving together: the first is admitted when `need` blocks are free (the peak before 0.19, the
    gate from 0.19, whichever is more), each one after it finds the pool less those before it keep: (handed out -
    need) // kept + 1 (vllm_admission.Footprint.resident). Before 0.19 more are admitted on their first chunk and
    preempted again as the pool runs out; those resident at max len are the same count.
0.19's uncapped gate in public reports: vLLM issue #39734 (gemma-4-31B-it, 0.19.1rc, a prompt within max_model_len
never scheduled) and PR #39866 (gemma-4-26B-A4B on one RTX 5090, 0.19.1rc logging 78,256 tokens: prompts of 48,758
tokens run, 97,321 wait for ever; 0.19 logs num_blocks // groups x block, about the longest prompt its gate lets in).
"""

from __future__ import annotations

from dataclasses import dataclass

from .vllm_versions import release_rule


@dataclass(frozen=True)
class AdmissionRule:
    gate: str  # "none": the first chunk only | "uncapped": every group at the whole prompt | "capped": windows capped
    null_block: bool  # BlockPool keeps block 0 back as the null block, never handed out


# (first release, rule, citation), newest first (docstring)
ADMISSION_RULES = (
    ((0, 20), AdmissionRule("capped", True), "single_type_kv_cache_manager.py 0.20.0:116-128 (0.32.0 :214)"),
    ((0, 19), AdmissionRule("uncapped", True), "sched/scheduler.py 0.19.0:733-741, kv_cache_manager.py :218-255"),
    ((0, 8, 3), AdmissionRule("none", True), "block_pool.py 0.8.3:57; scheduler.py 0.18.1:722"),
    ((0, 8), AdmissionRule("none", False), "scheduler.py 0.8.0:312-317, kv_cache_manager.py :191-194"),
)


def admission_rule(version: str) -> AdmissionRule:
    """ADMISSION_RULES' row for V1 `version` (0.8.0 on)."""
    return release_rule(ADMISSION_RULES, version, ADMISSION_RULES[-1][1])


def handed_out(num_blocks: int, version: str) -> int:
    """The blocks the pool of `num_blocks` hands to requests under `version`."""
    return num_blocks - admission_rule(version).null_block


def gate_words(version: str, who: str = "") -> str:
    """What `version`'s scheduler waits for before it lets a prompt in, `who` (default "vLLM <version>") the
    subject."""
    gate, who = admission_rule(version).gate, who or f"vLLM {version}"
    if gate == "none":
        return f"{who} admits a prompt on its first chunk, and one that then finds no free block preempts itself"
    if gate == "uncapped":
        return (f"{who} admits a prompt only once its blocks in every group are free, a sliding window's counted at "
                f"the whole prompt")
    return f"{who} admits a prompt only once all its blocks are free"


def pool_words(version: str, num_blocks: int) -> str:
    """The blocks the pool of `num_blocks` hands out under `version`, in words."""
    if not admission_rule(version).null_block:
        return f"its pool hands out all {num_blocks:,} blocks"
    return f"of its {num_blocks:,} blocks the pool hands out {handed_out(num_blocks, version):,}, keeping one back " \
           f"as the null block"


def never_admitted_words(version: str, need: int, num_blocks: int) -> str:
    """Why vLLM `version` starts on `num_blocks` blocks and never runs a request of max len that needs `need` free
    (the gate's, or the prefill's peak before 0.19): what its scheduler waits for, and the blocks its pool hands out.
    gemma-3-27b-it at 128,096 tokens on 0.20.0: 11,468 needed, 11,467 of 11,468 handed out."""
    peak = admission_rule(version).gate == "none"  # before 0.19 the prefill's peak, not a gate, keeps it out
    needs = f"reaches {need:,} blocks while it prefills" if peak else f"needs {need:,} blocks free"
    return f"{gate_words(version)}: one of max len {needs}, and {pool_words(version, num_blocks)}"


def fewer_words(version: str) -> str:
    """Why V1 `version` holds fewer requests of max len than its logged "Maximum concurrency" says."""
    rule = admission_rule(version)
    pool = "out of the pool less its null block" if rule.null_block else "out of the whole pool"
    if rule.gate == "none":
        return f"a request keeps every block of its max len, {pool}"
    if rule.gate == "uncapped":
        return f"{gate_words(version, 'the scheduler')}, {pool}"
    return f"the scheduler admits a request only while all its blocks are free, {pool}"
