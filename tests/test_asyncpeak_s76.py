"""A sliding-window group's peak during a chunked prefill, async scheduling on and off (session 76, asyncpeak).

What vLLM frees before each chunk (allocate_slots -> remove_skipped_blocks -> SlidingWindowManager
get_num_skipped_tokens = max(0, n - window + 1), then n // block null entries):
- every V1 release advances request.num_computed_tokens when it schedules a chunk, not when the chunk comes back
  (Scheduler._update_after_schedule: sched/scheduler.py 0.20.0:987-1000, 0.23.0:997-1010, 0.25.0:1164-1177,
  0.26.0:1236-1249, 0.32.0:1616-1629), and async scheduling schedules chunk k+1 before update_from_output of chunk k
  (EngineCore.step_with_batch_queue, a queue of max_concurrent_batches: engine/core.py 0.32.0:698-785).
- 0.20.0-0.25.x free on that count, the chunk in flight included: remove_skipped_blocks(total_computed_tokens)
  (kv_cache_manager.py 0.20.0:380-382, 0.23.0:381-383, 0.25.0:404-408, 0.25.1 the same). Async or not, the
  peak is the same, and the cap counts one batch (max_admission_blocks_per_request(max_num_batched_tokens):
  kv_cache_interface.py 0.20.0:421-438).
- 0.26.0 on free on the processed count: total_computed_tokens - request.num_in_flight_tokens (kv_cache_manager.py
  0.26.0:443-447, 0.32.0:555-559; num_in_flight_tokens += at schedule, -= in update_from_output: scheduler.py
  0.26.0:1250, :1656). Async (max_concurrent_batches 2 without PP: config/vllm.py 0.32.0:577-587) keeps the
  previous chunk's blocks one step more, and the cap counts max_in_flight_tokens = batches x max_num_batched_tokens
  (config/vllm.py 0.32.0:590-598, kv_cache_interface.py 0.32.0:859-885).

kvplan follows both: vllm_admission.py:244-246 subtracts the previous chunk only where in_flight_batches > 1, which
vllm_settings.resolve_settings (:186-191) gives only where Behaviour.concurrent_batches (0.26 on:
vllm_versions.py:169) and async scheduling are on. So the report "kvplan's peak can exceed the 0.20-0.25 cap under
async scheduling" does not hold: before 0.26 kvplan frees on the scheduled count, as vLLM does.

gemma-3-27b-it on an H100, tp 1, 32,768 tokens, 8,192 batched, block 16, window 1,024 (tests/test_admission_s76.py:
1 full group + 6 sliding groups, 11,468 blocks in 15,032,385,536 B, 11,467 handed out). Full group: 2,048 blocks.
Freeing on the scheduled count (0.20.0 either way, 0.32.0 async off), before the chunk starting at c the group
nulls (c - 1,023) // 16 entries and holds cdiv(c + 8,192, 16) of them:
  c = 0: 512; 8,192: 1,024 - 7,169 // 16 = 1,024 - 448 = 576; 16,384: 1,536 - 15,361 // 16 = 1,536 - 960 = 576;
  24,576: 2,048 - 23,553 // 16 = 2,048 - 1,472 = 576. Peak 576 <= cap cdiv(1,023 + 8,192, 16) + 1 = 577.
Freeing on the processed count with the previous chunk in flight (0.32.0 async on), p = c - 8,192:
  c = 0: 512; 8,192 (p 0): 1,024; 16,384 (p 8,192): 1,536 - 448 = 1,088; 24,576 (p 16,384): 2,048 - 960 = 1,088.
  Peak 1,088 <= cap cdiv(1,023 + 16,384, 16) + 1 = 1,088 + 1 = 1,089.
Kept once prefilled: 2,048 - (32,768 - 1,023) // 16 = 2,048 - 1,984 = 64 a sliding group; 2,048 + 6 x 64 = 2,432.
"""

from __future__ import annotations

from conftest import estimate_plan

from kvplan.engines.vllm_admission import footprint
from kvplan.engines.vllm_settings import resolve_settings
from kvplan.engines.vllm_specs import CacheSpec, Group

GEMMA = "google/gemma-3-27b-it"
GEMMA_KV = ("--gpu", "H100", "--kv-cache-memory-bytes", "15032385536", "--max-num-batched-tokens", "8192",
            "-c", "32768")
# ngram drafting runs on the CPU and turns async scheduling off up to 0.32 (vllm_runner.async_scheduling); no draft
# weights, the KV memory stays the one given
NGRAM = ("--speculative-config", '{"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_max": 4}')
PAGE = 131_072  # 16 tokens x 16 KV heads x 128 x 2 (K, V) x 2 B

FULL = CacheSpec("full", 16, PAGE)
SLIDING = CacheSpec("sliding", 16, PAGE, window=1024)
GROUPS = (Group(FULL, tuple(range(10)), (PAGE,) * 10),) + tuple(
    Group(SLIDING, tuple(range(10)), (PAGE,) * 10) for _ in range(6))


def _footprint(version: str, asynchronous: bool):
    settings = resolve_settings(32768, "H100", 80 * 2**30, max_num_batched_tokens=8192, version=version,
                                async_scheduling=asynchronous, v1_runner=True)
    one = footprint(GROUPS, 32768, settings.max_num_batched_tokens, settings.in_flight_batches, False,
                    settings.in_flight_tokens)
    return settings.in_flight_batches, one


def test_one_sliding_group_peak_within_the_cap():
    # the peak of one sliding group alone: 576 freeing on the scheduled count, 1,088 with the chunk in flight
    expected = {("0.20.0", True): (1, 576, 577), ("0.20.0", False): (1, 576, 577),
                ("0.25.1", True): (1, 576, 577), ("0.26.0", True): (2, 1088, 1089),
                ("0.32.0", True): (2, 1088, 1089), ("0.32.0", False): (1, 576, 577)}
    for (version, asynchronous), (batches, peak, cap) in expected.items():
        settings = resolve_settings(32768, "H100", 80 * 2**30, max_num_batched_tokens=8192, version=version,
                                    async_scheduling=asynchronous, v1_runner=True)
        one = footprint(GROUPS[1:2], 32768, 8192, settings.in_flight_batches, False, settings.in_flight_tokens)
        assert (settings.in_flight_batches, one.peak, one.gate, one.held) == (batches, peak, cap, 64), version
        assert one.peak <= one.gate


def test_gemma_footprint_async_on_and_off():
    # whole request: peak 2,048 + 6 x 576 = 5,504 (gate 2,048 + 6 x 577 = 5,510) freeing on the scheduled count;
    # 2,048 + 6 x 1,088 = 8,576 (gate 2,048 + 6 x 1,089 = 8,582) at 0.32.0 with async on
    expected = {("0.20.0", True): (5504, 5510), ("0.20.0", False): (5504, 5510),
                ("0.32.0", True): (8576, 8582), ("0.32.0", False): (5504, 5510)}
    for (version, asynchronous), (peak, gate) in expected.items():
        _, one = _footprint(version, asynchronous)
        assert (one.peak, one.gate, one.held) == (peak, gate, 2432), (version, asynchronous)


def test_gemma_concurrency_async_on_and_off():
    # 11,467 blocks handed out, each admitted request keeps 2,432: (11,467 - need) // 2,432 + 1.
    # need 5,510: 5,957 // 2,432 + 1 = 3 (vLLM logs 11,468 / 5,510 = 2.08x); need 8,582: 2,885 // 2,432 + 1 = 2
    # (11,468 / 8,582 = 1.34x). 0.20.0 async on (its default) counts one batch; 0.32.0 async on two.
    cases = {("0.20.0", ""): (5510, 3), ("0.32.0", ""): (8582, 2), ("0.32.0", "ngram"): (5510, 3)}
    for (version, draft), (need, held) in cases.items():
        plan = estimate_plan(GEMMA, *GEMMA_KV, "--engine", f"vllm=={version}", *(NGRAM if draft else ()))
        assert plan["engine"]["num_gpu_blocks"] == 11468
        assert plan["engine"]["blocks_per_request"] == need, (version, draft)
        assert plan["max_concurrency"] == (11467 - need) // 2432 + 1 == held, (version, draft)
        assert round(plan["engine"]["max_concurrency"], 2) == round(11468 / need, 2)
