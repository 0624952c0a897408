"""V0 (<= 0.7) past 32K tokens: EngineArgs turns chunked prefill on and SchedulerConfig's default batch, which the
profile run covers, is 512 tokens up to 0.6.4 (config.py 0.5.5:901, 0.6.0:977, 0.6.4.post1:1114) and 2,048 from
0.6.5 (config.py 0.6.5:1344, 0.7.3:1532); up to 32K it is max(max_model_len, 2048) in every release. The engine's
settings carry it (vllm_settings.resolve_settings, tier "v0"): the prefill's chunks, the max_num_seqs check and a
--max-num-batched-tokens given, which V0's profile covers as its scheduler's (worker/model_runner.py profile_run)."""

from __future__ import annotations

import pytest

from conftest import estimate_plan

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


def _engine_settings(version: str, context: int, *extra: str) -> dict:
    return estimate_plan(LLAMA, "--gpu", "H100", "-c", str(context), "--engine", f"vllm=={version}", *extra)


@pytest.mark.parametrize("version, context, tokens", [
    ("0.7.3", 16384, 16384),  # chunked prefill off: max(max_model_len, 2048)
    ("0.7.3", 1024, 2048),
    ("0.6.4", 65536, 512),    # past 32K: the release's chunk
    ("0.6.5", 65536, 2048),
])
def test_v0_schedules_its_own_batch(version, context, tokens):
    engine = _engine_settings(version, context)["engine"]
    assert engine["max_num_batched_tokens"] == tokens and engine["max_num_seqs"] == 256


def test_v0_prefill_chunks_follow_the_batch():
    # a 65,536-token prompt in chunks of 512 (0.6.4): 128 of them; of 2,048 (0.6.5): 32
    assert _engine_settings("0.6.4", 65536)["prefill"]["chunks"] == 65536 // 512 == 128
    assert _engine_settings("0.6.5", 65536)["prefill"]["chunks"] == 65536 // 2048 == 32


def test_more_sequences_than_vllm_0_9_tokens_start_on_v0():
    # V0 schedules 16,384 tokens at 16K, so 9,000 sequences pass its max_num_seqs <= max_num_batched_tokens check
    assert _engine_settings("0.7.3", 16384, "--max-num-seqs", "9000")["engine"]["starts"]


def test_a_given_batch_is_what_v0_profiles():
    given = _profile_with("0.7.3", 16384, "--max-num-batched-tokens", "32768")
    assert given["source"].startswith("forward over 32768 tokens")
    assert given["bytes"] == 2 * _profile_with("0.7.3", 16384)["bytes"]  # the dense forward's activations, per token


def _profile_with(version: str, context: int, *extra: str) -> dict:
    plan = _engine_settings(version, context, *extra)
    return next(t for t in plan["budget"]["terms"] if t["name"] == "profile_peak")
