"""A prompt too short to fill -pcp P's 2P pieces, checked against vLLM's code: at -dcp 1 (the only DCP kvplan plans
with -pcp) vLLM 0.31.0 and 0.32.0 still split it, never replicate it: replicated_requests marks decodes only, and
short prefills only where dcp_world_size > 1 (v1/worker/gpu/pcp_manager.py 0.31.0:224-233, 0.32.0:222-233); then
_iter_rank_chunks cuts pieces of ceil(L / 2P), rank r taking r and 2P - 1 - r, a piece past the prompt none
(chunk_len <= 0: 0.31.0:254-273, 0.32.0:254-275). So at P = 2 (pieces of 1 token up to L = 4):
  L 1: rank 0 [0]          rank 1 []            -> 1 row     L 2: [0] | [1]          -> 1 row
  L 3: [0]    | [1] [2]                          -> 2 rows    L 4: [0] [3] | [1] [2]  -> 2 rows
  L 5 (pieces of 2): [0-1] | [2-3] [4]           -> 3 rows    L 8: [0-1] [6-7] | [2-3] [4-5] -> 4 rows
and the step runs at its busiest rank's rows (plan/prefill.py)."""

from __future__ import annotations

import pytest

from conftest import estimate_plan

DSV3 = ("deepseek-ai/DeepSeek-V3", "--gpu", "H200", "-tp", "8", "-pcp", "2")
ROWS = {1: 1, 2: 1, 3: 2, 4: 2, 5: 3, 6: 4, 7: 4, 8: 4}  # the busiest rank's rows, by hand as above


@pytest.mark.parametrize("length", sorted(ROWS))
def test_pieces_of_a_short_prompt(length):
    from kvplan.plan.prefill import pcp_pieces

    ranks = pcp_pieces(0, length, 2)
    assert sorted(s + i for pieces in ranks for s, n in pieces for i in range(n)) == list(range(length))
    assert max(sum(n for _, n in pieces) for pieces in ranks) == ROWS[length]
    assert ranks[0][0] == (0, -(-length // 4))  # rank 0 always holds the first piece


def test_short_prompts_by_release():
    ttft = {v: [estimate_plan(*DSV3, "--engine", f"vllm=={v}", "--input-len", str(n))["prefill"]["ttft_ms"]
                for n in sorted(ROWS)] for v in ("0.31.0", "0.32.0")}
    assert ttft["0.31.0"] == ttft["0.32.0"]  # the same split in both (module docstring); decode differs, not prefill
    assert all(a <= b for a, b in zip(ttft["0.32.0"], ttft["0.32.0"][1:]))
    # 3 and 4 tokens: rank 1 holds pieces 1 and 2 in both, rank 0 no more rows nor cache before them: the same step
    assert ttft["0.32.0"][2] == ttft["0.32.0"][3]
