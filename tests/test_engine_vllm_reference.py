"""kvplan's vLLM engine model against figures produced by vLLM 0.32.0's own code
(tests/data/vllm_0.32.0_kv_figures.json, made by benchmarks/vllm_reference/make_figures.py; rules cited in
benchmarks/vllm_reference/RULES.md). kvplan gets what vLLM got as input (the model's config, the available KV
bytes of the worker, the GPU whose batch defaults apply, the explicit flags) and must reproduce exactly: whether
vLLM starts, its refusal text and estimated max model length, the batch settings it resolves, num_gpu_blocks, the
block size after its adjustments, the logged tokens and concurrency (log lines verbatim), padding warnings, and
how many max_model_len requests vLLM's KVCacheManager keeps resident. The comparisons are
benchmarks/engine_vllm_reference.py compare(), which also prints the agreement table in benchmarks/RESULTS.md."""

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("engine_vllm_reference",
                                               ROOT / "benchmarks" / "engine_vllm_reference.py")
reference = sys.modules["engine_vllm_reference"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)

DATA = reference.load()
CASES = [c for c in DATA["cases"] if reference.category(c) != "not compared"]


def case_id(case: dict) -> str:
    i = case["inputs"]
    return (f"{case['id']}-{i['model'].split('/')[-1].split(':')[-1]}-tp{i['tp']}-{i['kv_cache_dtype']}-"
            f"{i['max_model_len'] or 'default'}-{i['available_kv_cache_bytes'] / 2**30:.2f}GiB-{i['grid']}")


def test_the_data_is_vllms_own_and_pinned():
    assert DATA["header"]["vllm_version"] == "0.32.0"
    assert DATA["header"]["script"] == "benchmarks/vllm_reference/make_figures.py"
    assert len(CASES) >= 400


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_kvplan_reproduces_vllm(case):
    mismatches = {name: pair for name, pair in reference.compare(case).items() if pair[0] != pair[1]}
    assert not mismatches, mismatches


def test_coverage_families_budgets_contexts_tp_and_kinds():
    """At least 15 families x 3 budgets x 3 contexts compared exactly (started, refused for memory, or refused
    for a context above the model's limit), TP 1/2/4/8, every layer kind, every refusal kind."""
    grid = {}
    for c in CASES:
        i = c["inputs"]
        if i["grid"] == "main" and i["max_model_len"] is not None:
            grid.setdefault(i["family"], set()).add((i["available_kv_cache_bytes"], i["max_model_len"]))
    full = [f for f, cells in grid.items() if len({b for b, _ in cells}) >= 3 and len({x for _, x in cells}) >= 3]
    assert len(full) >= 15, sorted(grid)
    assert {1, 2, 4, 8} <= {c["inputs"]["tp"] for c in CASES}
    started = [c for c in CASES if reference.category(c) == "starts"]
    kinds = Counter(k for c in started for k in c["layer_specs"])
    assert {"FullAttentionSpec", "SlidingWindowSpec", "ChunkedLocalAttentionSpec", "MLAAttentionSpec",
            "MambaSpec"} <= set(kinds)
    assert {"falcon-mqa", "gemma2-alternating", "gemma3-5to1", "llama4-chunked", "deepseek-mla",
            "qwen3next-gdn-hybrid", "jamba-mamba1-hybrid", "nemotronh-mamba2-hybrid"} <= {
                c["inputs"]["family"] for c in started}
    assert Counter(reference.category(c) for c in CASES).keys() == {"starts", "refused (memory)",
                                                                   "refused (config)", "refused (tp)"}
    assert len(CASES) == len(DATA["cases"])  # nothing left out
