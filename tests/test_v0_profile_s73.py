"""V0 (<= 0.7) past 32K tokens: EngineArgs turns chunked prefill on and SchedulerConfig's default batch, which the
profile run covers, is 512 tokens up to 0.6.4 (config.py 0.5.5:901, 0.6.0:977, 0.6.4.post1:1114) and 2,048 from
0.6.5 (config.py 0.6.5:1344, 0.7.3:1532); up to 32K the profile covers max(max_model_len, 2048) in every release."""

from __future__ import annotations

import pytest

from kvplan import api

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def _profile(version: str, context: int):
    plan = api.estimate(LLAMA, gpu="H100", max_model_len=context, engine=f"vllm=={version}")[0]
    return next(t for t in plan.budget.terms if t.name == "profile_peak")


@pytest.mark.parametrize("version, tokens", [("0.5.5", 512), ("0.6.4", 512), ("0.6.5", 2048), ("0.7.3", 2048)])
def test_long_context_profile_covers_the_release_chunk(version, tokens):
    term = _profile(version, 65536)
    assert term.source.startswith(f"forward over {tokens} tokens")


def test_chunk_moves_the_peak_fourfold_and_short_lengths_do_not_move():
    # the dense forward's activations grow with the tokens: 2,048 tokens hold four times 512's
    assert _profile("0.6.5", 65536).bytes == 4 * _profile("0.6.4", 65536).bytes
    # up to 32K chunked prefill stays off: max(len, 2048) in both
    assert _profile("0.6.5", 16384).bytes == _profile("0.6.4", 16384).bytes
    assert _profile("0.6.5", 16384).source.startswith("forward over 16384 tokens")
