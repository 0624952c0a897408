"""The length remedy names the longest length that fits (plan/longest.py), where what fits does not only shrink as
the length grows: DeepSeek-V4's caches page in blocks of 4, 8, 64 and 256 tokens, and a window keeps fewest blocks
where the length is a multiple of its block.

DeepSeek-V4-Flash at tp 4 on H100s under vLLM 0.20.0, with --kv-cache-memory-bytes 35,465,886,720 so that every
length is judged on the same budget, as the remedy search judges them: 33,720 blocks of 0.20.0's 47,808 x 22 =
1,051,776 B (engines/vllm_v4_pool.py, test_v4_audit_s71), 33,719 usable (the null block). A request's blocks by
hand, from its five cache groups (vLLM 0.20.0's DeepSeek-V4 layout, model/kinds.py): two of windows of 128 tokens
in blocks of 64, one of compressed and indexer caches in the engine's blocks of 256, one of compressor states over 8
tokens in blocks of 4, one over 128 tokens in blocks of 8. Once prefilled a window of w tokens in blocks of b keeps
ceil(L/b) - (L - w + 1) // b blocks (the tokens before its last w - 1 freed): ceil(127/64) = 2 at a multiple of
64, 3 at 1 to 62 past one; ceil(7/4) = 2 at a multiple of 4, 3 at 1 or 2 past; 16 at a multiple of 8, 17 at 1 to 6 past.
The admission gate asks ceil(L/256) blocks of the 256 group and, for each window, cdiv(w - 1 + 8,192, b) + 1
(max_num_batched_tokens 8,192): 2 x 131 + 2,051 + 1,041 = 3,354 past ceil(L/256). Resident requests: (33,719 - gate) //
kept + 1.
- 33,024 = 129 x 256: kept 2 x 2 + 129 + 2 + 16 = 151, gate 3,483: 30,236 // 151 + 1 = 201.
- 33,022: kept 2 x 3 + 129 + 3 + 17 = 155, gate 3,483: 196, fewer than at 33,024.
- 33,025 to 33,280: 130 blocks of 256, gate 3,484; kept at least 2 x 2 + 130 + 2 + 16 = 152 (a multiple of 64, or
  63 past one), so at most 30,235 // 152 + 1 = 199; 33,088 = 517 x 64 keeps 152: 199.
A bisection over lengths named 32,256 (200 requests below 33,040) and 32,512 (199 below 33,100).

Without the flag each length is planned on the budget vLLM leaves at it, as `check` plans it there: the block table
(int32, max_num_seqs x cdiv(max_model_len, 4)) shrinks with the length, 1,024 x (262,144 - 8,128) x 4 =
1,040,449,536 B more at 32,512 tokens than at 1,048,576 (test_remedies_node derives its 200 requests there), and
so does the profile's workspace: at 1,048,576 tokens the indexer's K gather, 10,485,760 x 132 + 1 MiB =
1,385,168,896 B, exceeds FlashMLA's 1,107,820,544 by 277,348,352 (vllm_budget.v4_prefill_workspace); at 32,512
FlashMLA's 67,371,008 exceeds the indexer's. The same buffer holds the Marlin experts' workspace (session 72,
test_v4_mxfp4_s72): 6 x (4,096 + 4,096) x 2 B a token over 8,192 tokens = 805,306,368 B, inside the gather at
1,048,576 tokens, the buffer's size at 32,768 tokens and below: 737,935,360 B past FlashMLA's 67,371,008 at 32,512,
by which the budget there shrinks, whatever the length below.
"""

from __future__ import annotations

import math

from hypothesis import example, given, settings
from hypothesis import strategies as st

from kvplan.api import check, estimate
from kvplan.plan.longest import longest_fitting

V4 = "deepseek-ai/DeepSeek-V4-Flash"
# fp8, the fp8_ds_mla cache (0.20.0 refuses `auto`: test_v4_auto_dtype_s71)
V4_ON_H100 = dict(engine="vllm==0.20.0", kv_cache_dtype="fp8", gpu="H100", tensor_parallel_size=4,
                  kv_cache_memory_bytes=33_720 * 1_051_776)
L8 = "meta-llama/Llama-3.1-8B"
GiB = 2**30


def _v4(length: int, target: int) -> dict:
    (row,) = check(V4, min_concurrency=target, max_model_len=length, **V4_ON_H100)
    return row


def test_v4_remedy_is_the_longest_length_holding_200_requests():
    row = _v4(33040, 200)
    assert row["errors"][0].endswith("; would fit with max_model_len 33024.")
    held = _v4(33024, 200)
    assert held["passed"] and held["max_concurrency"] == 201 and held["engine"]["num_gpu_blocks"] == 33720
    assert _v4(33022, 200)["max_concurrency"] == 196  # shorter, and holds fewer: no bisection over lengths
    assert all(_v4(length, 200)["max_concurrency"] <= 199 for length in range(33025, 33040))


def test_v4_remedy_can_lie_inside_a_block_of_256():
    """199 requests below 33,100: 33,088 (a multiple of 64, not of 256) holds them, nothing longer does."""
    row = _v4(33100, 199)
    assert row["errors"][0].endswith("; would fit with max_model_len 33088.")
    assert _v4(33088, 199)["max_concurrency"] == 199
    assert all(not _v4(length, 199)["passed"] for length in range(33089, 33100))


def test_v4_remedy_is_planned_on_the_budget_at_its_length():
    """200 requests of the model's 1,048,576 tokens: 31,488 (123 x 256) holds them on the 34,857,083,011 - 737,935,360
    = 34,119,147,651 B vLLM leaves there (the experts' workspace past FlashMLA's: module docstring), 32,439 blocks of
    1,051,776 B, 32,438 usable: it asks 123 + 3,354 = 3,477 and keeps 2 x 2 + 123 + 2 + 16 = 145, (32,438 - 3,477) //
    145 + 1 = 200; from 31,489 to 31,744 it asks 3,478 and keeps 146 or more, 199 at most."""
    flags = dict(engine="vllm==0.20.0", kv_cache_dtype="fp8", gpu="H100", tensor_parallel_size=4, min_concurrency=200)
    (row,) = check(V4, max_model_len=None, **flags)
    assert row["errors"][0].endswith("; would fit with max_model_len 31488.")
    rows = {n: check(V4, max_model_len=n, **flags)[0] for n in (1048576, 31488, *range(31489, 31505), 31744)}
    assert rows[31488]["kv_budget_bytes_per_gpu"] - rows[1048576]["kv_budget_bytes_per_gpu"] == \
        1_040_449_536 + 277_348_352 - 737_935_360
    assert rows[31488]["engine"]["num_gpu_blocks"] == rows[31488]["kv_budget_bytes_per_gpu"] // 1_051_776 == 32_439
    assert rows[31488]["max_concurrency"] == 200 and rows[31744]["max_concurrency"] == 199
    assert not any(rows[n]["passed"] for n in range(31489, 31505))


def test_dense_remedy_is_unchanged():
    """Llama-3.1-8B (32 layers x 8 KV heads x 128 x K,V x bf16 = 131,072 B a token) on a 10 GiB cache: blocks of 16
    tokens take 2 MiB, 5,120 of them, 5,119 usable; a request of L tokens asks and keeps ceil(L/16), so
    5,119 // ceil(L/16) of them fit. 8 requests: ceil(L/16) <= 639, L <= 10,224; one request: ceil(L/16) <= 5,119,
    L <= 81,904 (vLLM's own refusal names that length). The same figures as before the search changed."""
    flags = dict(tensor_parallel_size=1, kv_cache_memory_bytes=10 * GiB)
    (row,) = check(L8, min_concurrency=8, max_model_len=131072, **flags)
    assert row["errors"][0].endswith("; or max_model_len 10224.")
    assert [check(L8, min_concurrency=8, max_model_len=n, **flags)[0]["max_concurrency"] for n in (10224, 10225)] \
        == [8, 7]
    (plan,) = estimate(L8, max_model_len=131072, **flags)
    assert (("context", 81904),) in plan.fitting_options
    assert [estimate(L8, max_model_len=n, **flags)[0].max_concurrency for n in (81904, 81905)] == [1, 0]


# the search on its own, against every length ------------------------------------------------------------------

GROUPS = st.lists(st.tuples(st.sampled_from([4, 6, 8, 10, 16, 64, 256]), st.none() | st.integers(2, 300)),
                  min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@example(groups=[(8, None), (4, 69)], pool=111, target=4, context=139, in_flight=62)  # a bisection: 72, not 80
@example(groups=[(8, 145), (256, None)], pool=502, target=25, context=240, in_flight=41)  # 168, not 232
@given(groups=GROUPS, pool=st.integers(20, 4000), target=st.integers(1, 40), context=st.integers(2, 1200),
       in_flight=st.integers(0, 64))
def test_longest_fitting_matches_every_length(groups, pool, target, context, in_flight):
    """A made-up paged engine: each group (block, window or None) keeps ceil(L/b) blocks, a window's less the blocks
    wholly before its last w - 1 tokens; the gate asks ceil(min(L, cap)/b) with a window capped at w - 1 + in-flight
    tokens. longest_fitting with the groups' blocks and window blocks names what a scan of every length finds."""
    def kept(length):
        return sum(-(-length // b) - (max(0, length - w + 1) // b if w else 0) for b, w in groups)

    def gate(length):
        return sum(-(-min(length, w - 1 + in_flight if w else length) // b) for b, w in groups)

    def fits(length):
        return length if pool >= gate(length) and (pool - gate(length)) // kept(length) + 1 >= target else None

    scanned = max((n for n in range(1, context) if fits(n)), default=None)
    blocks = tuple(sorted({b for b, _ in groups}))
    cycles = tuple(sorted({b for b, w in groups if w}))
    assert longest_fitting(context, fits, blocks, cycles) == scanned


def test_longest_fitting_asks_few_lengths_of_a_v4_like_engine():
    """Blocks 4, 8, 64 and 256 (windows in the first three) up to a million tokens: a bisection over multiples of 256,
    then one length a residue modulo 64 where nothing longer fits."""
    asked = []

    def fits(length):
        asked.append(length)
        return length if length <= 33024 else None

    assert longest_fitting(2**20, fits, (4, 8, 64, 256), (4, 8, 64)) == 33024
    assert len(asked) <= math.ceil(math.log2(2**20 // 256)) + 64 // 4 + 1
