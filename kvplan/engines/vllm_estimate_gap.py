"""Why kvplan's length remedy differs from the estimate vLLM quotes when it refuses a length for memory
(vllm.memory_refusal: kv_cache_utils._estimate_max_model_len_from_groups, 0.20.0:1786-1818), said beside the remedy
(plan.Plan.suggestion, commands/check/remedies.what_would_reach) so that the two numbers the user reads are explained.

- Below the estimate: vLLM's start-up check and its estimate price a request against every block of the pool before
  0.29 (kv_cache_utils.py 0.20.0:1723-1818, :1995-2003; vllm_versions.Behaviour.null_block_in_check), while the pool
  hands out all but the null block (block_pool.py 0.20.0:176), so at the estimate a request of that length never has
  all its blocks (0.20's admission gate, sched/scheduler.py 0.20.0:744-755, never lets its prompt in; before 0.19 it is
  let in on its first chunk and preempts itself at the last). From 0.29 the check holds the null block back too; a
  gap left there is the admission's (vllm_admission.py) above the check's. 0.19.x's gate asks for every group's
  blocks at the whole prompt, a sliding window's too, far above the check (vllm_admission_gate.py). 0.8.0-0.8.2 keep
  no null block: no gap.
- Above it: vLLM estimates on the memory left at the length asked; at a shorter max_model_len the buffers sized by
  it (vllm_budget.block_tables) take less, so the remedy's length, planned on its own budget, may pass it."""

from __future__ import annotations

from .vllm_admission_gate import admission_rule, gate_words, pool_words
from .vllm_versions import behaviour


def estimate_gap_words(figures, asked: int, length: int) -> str:
    """The clause on the length remedy `length` where vLLM refused `asked` tokens for memory quoting another estimate
    (`figures`: the refused plan's EngineFigures); "" where there is no such estimate or the two agree."""
    refusal = getattr(figures, "refusal", None)
    estimate = getattr(refusal, "estimated_max_model_len", None)
    if refusal is None or refusal.configuration or not estimate or estimate == length:
        return ""
    if length > estimate:
        return (f"above vLLM's estimate {estimate:,}, made on the memory left at {asked:,} tokens: a shorter max "
                f"len leaves more")
    blocks = figures.num_gpu_blocks or 0
    rule = admission_rule(figures.version)
    if rule.gate == "uncapped" and figures.num_kv_cache_groups > 1 and blocks > 1:
        why = f"{gate_words(figures.version, 'its scheduler')}, and {pool_words(figures.version, blocks)}"
    elif not behaviour(figures.version).null_block_in_check and rule.null_block and blocks > 1:
        why = (f"its start-up check lets one request take all {blocks:,} blocks, and the pool, keeping one as the "
               f"null block, hands out {blocks - 1:,}")
    else:
        why = "admitting a prompt of that length takes more free blocks than the start-up check prices"
    # before 0.19 such a prompt is admitted on its first chunk and preempts itself where a later one finds no block
    done = "serves" if rule.gate == "none" else "admits"
    return f"vLLM's estimate {estimate:,} starts but never {done} a full-length prompt: {why}"
