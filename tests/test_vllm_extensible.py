"""vLLM 0.34's extensible KV cache (vllm_budget.extensible_budget, vllm.committed_blocks) against vLLM 0.34.0's own
measure_kv_cache_bytes and ExtensibleKVCache.blocks_within, run on the same device states
(benchmarks/vllm_reference/extensible_sizing.py -> tests/data/vllm_extensible_sizing.json)."""

import json
import math
from pathlib import Path

import pytest

from kvplan.engines import EngineFlags, get_engine
from kvplan.engines.vllm import committed_blocks
from kvplan.engines.vllm_budget import CONSTANTS, extensible_budget
from kvplan.plan.budget import BudgetTerm
from kvplan.plan.catalog import find_gpu
from tests.conftest import run_kvplan

REFERENCE = json.loads((Path(__file__).parent / "data" / "vllm_extensible_sizing.json").read_text())
CASES = {case["name"]: case for case in REFERENCE["cases"]}
GiB = 2**30


def _budget(case):
    """kvplan's budget for the reference's device state: its baseline is kvplan's CUDA context (+ NCCL at tp > 1),
    its resident memory the weights beside kvplan's non-torch and graph terms, all of its peak transient."""
    context, nccl = CONSTANTS["cuda_context"][0], 1_879_048_192  # 617.6 MiB; 1.75 GiB of NCCL at tp > 1
    tp = 1 if case["baseline"] == context else 4
    assert case["baseline"] == context + (nccl if tp > 1 else 0)
    non_torch, graphs = GiB // 2, CONSTANTS["cuda_graphs"][0]
    gpu = find_gpu("mi300x" if case["margin_floor"] == 3 * GiB else "h100")
    terms = {"weights": BudgetTerm("weights", case["resident"] - non_torch - graphs, "test"),
             "profile_peak": BudgetTerm("profile_peak", case["transient"], "test"),
             "non_torch": BudgetTerm("non_torch", non_torch, "test"),
             "runner_state": BudgetTerm("runner_state", 0, "test")}
    return extensible_budget(gpu, case["memory"], math.ceil(case["memory"] * case["utilization"]),
                             case["utilization"], "0.34.0", None, EngineFlags(), tp, terms, 0)


def _strides(case) -> tuple:
    return tuple(stride for stride, count in case["strides"] for _ in range(count))


@pytest.mark.parametrize("name", sorted(CASES))
def test_available_memory_is_vllms(name):
    case = CASES[name]
    budget = _budget(case)
    assert budget.kv_budget_bytes_per_gpu == case["available"]
    # the line's terms add up to what is left (the renderer subtracts them from the first)
    terms = {t.name: t.bytes for t in budget.terms}
    left = terms.pop("memory") - sum(terms.values())
    assert max(left, 0) == case["available"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_committed_blocks_are_vllms(name):
    case = CASES[name]
    assert committed_blocks(case["available"], _strides(case), REFERENCE["granule"]) == case["blocks"]


def test_which_bound_binds():
    """utilisation 1.0 (the default) and 0.95 leave the device's headroom to bind, 0.9 its own budget (8% of 79.2
    GiB is more than the 618 MiB context + the 1 GiB margin)."""
    assert {t.name: t.bytes for t in _budget(CASES["h100 8b tp1 default"]).terms}["margin"] == GiB
    assert {t.name: t.bytes for t in _budget(CASES["explicit 0.9: the budget binds"]).terms}["margin"] == 0
    over = _budget(CASES["transient over the floor"])  # 0.75 x 4.0 GB = 3.0 GB margin
    assert {t.name: t.bytes for t in over.terms}["margin"] == 3_000_000_000


def test_granules_cost_small_pages_blocks():
    """100 layers of 4 KiB pages: a block is 400 KiB, each layer's region rounds up to 2 MiB, so up to 200 MiB of
    the budget holds no block (here 51,200 blocks instead of 20,978,651,495 // 409,600 = 51,217)."""
    case = CASES["granules bind: small pages"]
    assert case["strides"] == [[4096, 100]] and case["available"] // 409_600 == 51_217
    assert committed_blocks(case["available"], _strides(case), 2 * 2**20) == 51_200


def _plan(engine, *extra):
    (row,) = json.loads(run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "-c", "32768",
                                   "--engine", engine, "--format", "json", *extra).stdout)["plans"]
    return row


def test_0_34_takes_the_whole_device_by_default():
    """0.32 sizes from 0.92 of the device less the graph estimate; 0.34 from the device less its baseline and margin.
    The 8% vLLM 0.32 leaves unused (6.3 GiB of an H100) is 1.6 GiB more than the context and margin: more cache."""
    old, new = _plan("vllm==0.32.0"), _plan("vllm==0.34.0")
    assert new["budget"]["gpu_util"] == 1.0 and old["budget"]["gpu_util"] == 0.92
    assert new["budget"]["measured"]["granule_bytes"] == 2 * 2**20 and "measured" not in old["budget"]
    tokens = [row["engine"]["num_gpu_blocks"] * row["engine"]["block_size"] for row in (old, new)]
    assert tokens[1] > tokens[0]  # 0.34 pages 64 tokens a block (vllm_specs.default_block_size), 0.32 16
    # Llama-3.1-8B: 32 layers x 16 tokens x 8 heads x 128 x 2 (k, v) x 2 B = 128 KiB a layer a block at block 16
    blocks = new["engine"]["num_gpu_blocks"]
    per_layer = new["engine"]["block_size"] * 8 * 128 * 2 * 2
    assert 32 * -(-blocks * per_layer // 2**21) * 2**21 <= new["budget"]["kv_budget_bytes_per_gpu"]


def test_an_override_turns_the_extensible_cache_off():
    """config/vllm.py:3180-3268: --num-gpu-blocks-override keeps the profiled sizing (and its 0.92)."""
    row = _plan("vllm==0.34.0", "--num-gpu-blocks-override", "2000")
    assert row["budget"]["gpu_util"] == 0.92 and "measured" not in row["budget"]


def test_default_utilisation_follows_the_sizing():
    assert get_engine("vllm==0.34.0").default_gpu_util == 1.0
    assert get_engine("vllm==0.33.0").default_gpu_util == 0.92


def _refusal(engine, context, *extra):
    row = json.loads(run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "l4", "-c", context,
                                "--engine", engine, "--format", "json", *extra).stdout)["plans"][0]
    return row["engine"]["refusal"]["reason"], row["engine"]["log_lines"]


def test_0_34_refuses_before_warmup_on_the_profiled_figure():
    """0.34.0 get_kv_cache_configs (v1/core/kv_cache_planning.py:1655-1662) checks the profile run's figure (no
    graph estimate, gpu/model_runner.py:1121-1128) before warmup, with the hint of :64-96 before warmup (no graphs
    sentence); Llama-3.1-8B's 131,072 tokens need 16 GiB, an L4's profile leaves about 6 GiB."""
    reason, lines = _refusal("vllm==0.34.0", "131072")
    assert lines[-1].startswith("Available KV cache memory: 6.0")
    assert "available KV cache memory (6.0" in reason
    assert ("The extensible KV cache already takes all device memory left after the model and its activations; "
            "decrease `max_model_len` or `max_num_seqs`, or the model needs a device with more memory. Decreasing "
            "`max_model_len` also reduces what is needed.") in reason
    reason, _ = _refusal("vllm==0.34.0", "131072", "--gpu-util", "0.9")
    assert ("The KV cache gets what is left after the model and its activations within `gpu_memory_utilization`=0.9; "
            "increase it (with the extensible KV cache it defaults to 1.0) or decrease `max_model_len` or "
            "`max_num_seqs`. Decreasing") in reason


def test_0_34_refuses_after_warmup_on_the_committed_blocks():
    """40,000 tokens (4.9 GiB) pass the profiled check and not the measured one (shrink_kv_cache_configs,
    kv_cache_planning.py:1849-1860, after_warmup=True: the graphs sentence)."""
    reason, _ = _refusal("vllm==0.34.0", "40000")
    assert ("The extensible KV cache already takes all device memory left after the model, its activations, CUDA "
            "graphs and warmup; decrease `max_model_len` or `max_num_seqs`, or the model needs a device with more "
            "memory. CUDA graphs take less with fewer or smaller capture sizes in the compilation config. Decreasing "
            "`max_model_len` also reduces what is needed.") in reason


def test_without_the_extensible_cache_the_advice_is_the_old_one():
    """--num-gpu-blocks-override turns it off (0.34's hint without it); 0.33 keeps 0.32's sentence
    (kv_cache_utils.py:1030-1039)."""
    reason, _ = _refusal("vllm==0.34.0", "131072", "--num-gpu-blocks-override", "100")
    assert "Try increasing `gpu_memory_utilization` when initializing the engine (this flag also controls CPU " \
           "memory reservation on the CPU backend, despite its name). Decreasing `max_model_len`" in reason
    reason, _ = _refusal("vllm==0.33.0", "131072")
    assert "Try increasing `gpu_memory_utilization` (which also controls CPU memory on the CPU backend) or " \
           "decreasing `max_model_len` when initializing the engine." in reason


def test_the_extended_cache_is_logged():
    """extensible_kv_cache.py:536-540 "Extended KV cache to %d blocks (%.2f GiB).": the committed granules."""
    row = _plan("vllm==0.34.0")
    blocks = row["engine"]["num_gpu_blocks"]
    extended = next(line for line in row["engine"]["log_lines"] if line.startswith("Extended KV cache to"))
    page = 64 * 8 * 128 * 2 * 2  # Llama-3.1-8B at block 64: one layer's block
    committed = 32 * -(-blocks * page // 2**21) * 2**21
    assert extended == f"Extended KV cache to {blocks} blocks ({committed / 2**30:.2f} GiB)."


# Model Runner V2's other buffers for Llama-3.1-8B at 1,024 sequences (tests/test_vllm_runner_buffers.py): the
# sampler's rows, 17,924 B a sequence, and the structured-output bitmask with its indices, (4,008 + 1) x 4 B a sequence
V2_OTHER = 1024 * 17_924 + 1024 * 4_009 * 4
DRAFT_ROWS = 3 * 1024 * 4_009 * 4  # three draft tokens: the bitmask's rows x (1 + 3) (max_num_seqs x decode_query_len)
V2_TABLES_034 = 2 * 1024 * 512 * 4 + 8192 * 8  # 0.34's block tables at 32,768 tokens and block 64, slot mapping


def test_the_penalty_counts_are_counted_from_0_27():
    """v1/worker/gpu/sample/penalties.py (0.32.0 :40-47): int32 [max_num_seqs, vocab] counts and an int32
    [max_num_seqs, cdiv(vocab, 32)] mask, built after the weights' profiler and before the profile run. Before 0.27
    the budget counted the weights, the profile's peak growth and non-torch growth (0.26.0 mem_utils.py:309-313):
    not them; from 0.27 the free memory consumed since the init snapshot (0.32.0 mem_utils.py:311-321): them too.
    Llama-3.1-8B on an H100 (Model Runner V2, 1,024 sequences, vocab 128,256): 1024 x (128,256 + 4,008) x 4, beside
    the runner's other buffers (tests/test_vllm_runner_buffers.py): V2_OTHER from 0.27, and 0.34's block tables."""
    for release, counted in (("vllm==0.26.0", 0), ("vllm==0.27.0", 541_753_344 + V2_OTHER),
                             ("vllm==0.32.0", 541_753_344 + V2_OTHER),
                             ("vllm==0.34.0", 541_753_344 + V2_OTHER + V2_TABLES_034)):
        terms = {t["name"]: t["bytes"] for t in _plan(release)["budget"]["terms"]}
        assert terms.get("runner_state", 0) == counted, release


def test_deepseek_v4_commits_one_block_outermost_segment():
    """DeepSeek-V4's indexer takes block-outermost layouts only (0.34.0 v1/attention/backends/mla/indexer.py:300-303),
    so its pool is one segment (extensible_kv_cache.py:141-160): one granule of rounding; other models one segment a
    layer of the widest group (the reference's cases)."""
    from kvplan.engines.vllm import _segment_strides
    from kvplan.engines.vllm_specs import Group
    from kvplan.model.sources import resolve

    groups = [Group(None, (0, 1, 2), (4096, 4096, 8192)), Group(None, (3,), (8192,))]
    v4, dense = resolve("deepseek-ai/DeepSeek-V4-Flash"), resolve("deepseek-ai/DeepSeek-V3")
    assert _segment_strides(v4, groups, {0, 1, 2, 3}) == (16384,)
    assert _segment_strides(dense, groups, {0, 1, 2, 3}) == (4096, 4096, 8192)
    assert _segment_strides(dense, groups, {1, 2, 3}) == (4096, 8192)
    # three regions in 10 MiB: 512 blocks take 2 + 2 + 4 MiB; 513 take 4 + 4 + 6 MiB (each rounded up to 2 MiB)
    assert committed_blocks(10 * 2**20, (4096, 4096, 8192), 2**21) == 512
    assert committed_blocks(10 * 2**20, (16384,), 2**21) == 640  # one region: 10 MiB / 16 KiB


def test_an_ngram_drafter_keeps_every_token_on_the_gpu():
    """0.32.0 v1/worker/gpu/model_runner.py:275-277 (use_ngram: ngram, ngram_gpu) and 0.34.0 :291-294
    (prefer_dense_token_history: ngram/config.py:16, suffix/config.py:19) keep all_token_ids dense on the GPU
    (states.py:37-41): int32 [max_num_seqs, max_model_len] = 1024 x 32,768 x 4 = 134,217,728 B beside the penalty
    counts; suffix decoding runs on V1 before 0.34, which keeps no such buffer for it. V2's speculator adds its scan,
    int64 [1,024, cdiv(32,768, 256)] (spec_decode/ngram/speculator.py:185-199, suffix/speculator.py:520-530), and
    0.34's suffix decoding its int32 corpus of 2^20 tokens and two int64 tables of 2^18 x 8 (:535-560)."""
    ngram = '{"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_max": 3}'
    suffix = '{"method": "suffix", "num_speculative_tokens": 3}'
    v1 = 8192 * 4096 * 2 + 1024 * 2048 * 4 + 8192 * 8  # V1's embeddings buffer and placeholder block table
    v2 = 541_753_344 + V2_OTHER + DRAFT_ROWS + 134_217_728 + 1024 * 128 * 8
    corpus = (1 << 20) * 4 + 2 * (1 << 18) * 8 * 8
    for release, config, expected in (("vllm==0.32.0", ngram, v2), ("vllm==0.34.0", ngram, v2 + V2_TABLES_034),
                                      ("vllm==0.33.0", suffix, v1),
                                      ("vllm==0.34.0", suffix, v2 + V2_TABLES_034 + corpus)):
        terms = {t["name"]: t["bytes"] for t in _plan(release, "--speculative-config", config)["budget"]["terms"]}
        assert terms.get("runner_state", 0) == expected, (release, config)


def test_auto_fit_settles_where_every_check_passes():
    """vLLM 0.34 fits --max-model-len auto on the profiled figure, then again, only shorter, on the measured cache
    (v1/core/kv_cache_planning.py:1647-1652, :1885-1899); with pipeline stages on the smallest worker's estimate
    (:1416-1424). kvplan's fitted length starts, where one refit at the first refusal's estimate did not."""
    for args in (("meta-llama/Llama-3.1-8B", "--gpu", "H100", "--gpu-memory", "24GiB", "--engine", "vllm==0.34.0"),
                 ("meta-llama/Llama-3.1-70B-Instruct", "--gpu", "H100", "-pp", "2"),
                 ("meta-llama/Llama-3.1-70B-Instruct", "--gpu", "H100", "-pp", "2", "--engine", "vllm==0.34.0")):
        (plan,) = json.loads(run_kvplan("estimate", *args, "-c", "auto", "--format", "json").stdout)["plans"]
        assert plan["engine"]["starts"] and plan["context"] < 131072, args
        longer = json.loads(run_kvplan("estimate", *args, "-c", str(plan["context"] + 2048), "--format",
                                       "json").stdout)["plans"][0]
        assert not longer["engine"]["starts"], args
