"""kvplan under --engine vllm==0.34.0 against figures produced by vLLM 0.34.0's own code
(tests/data/vllm_0.34.0_kv_figures.json: benchmarks/vllm_reference/make_figures.py run from the 0.34.0 source release,
the 0.32.0 grid; what the run undoes of the CPU platform is in the file's header, settings_undone). 0.34 sizes the
cache with its extensible KV cache: the reference reserves what the worker's budget holds, then each worker measures
that same budget after warmup and commits the blocks whose pages fit in whole 2 MiB granules. kvplan gets the same
inputs (engine_vllm_reference.kvplan_startup with the release) and must reproduce every figure exactly, as for 0.32.0
(tests/test_engine_vllm_reference.py): start or refusal (text and estimate), batch settings, block size, groups,
num_gpu_blocks, the capacity line, the blocks committed after warmup, and the residents vLLM's KVCacheManager admits.
"""

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

RELEASE = "0.34.0"
DATA = reference.load(RELEASE)
CASES = [c for c in DATA["cases"] if reference.category(c) != "not compared"]
GIB, MIB = 1 << 30, 1 << 20


def case_id(case: dict) -> str:
    i = case["inputs"]
    return (f"{case['id']}-{i['model'].split('/')[-1].split(':')[-1]}-tp{i['tp']}-{i['kv_cache_dtype']}-"
            f"{i['max_model_len'] or 'default'}-{i['available_kv_cache_bytes'] / GIB:.2f}GiB-{i['grid']}")


def find(model: str, budget: int, context, kv: str = "auto", tp: int = 1, grid: str = "main") -> dict:
    return next(c for c in DATA["cases"] if c["inputs"]["model"] == model and c["inputs"]["tp"] == tp
                and c["inputs"]["kv_cache_dtype"] == kv and c["inputs"]["available_kv_cache_bytes"] == budget
                and c["inputs"]["max_model_len"] == context and c["inputs"]["grid"] == grid)


def test_the_data_is_vllm_034s_own():
    header = DATA["header"]
    assert header["vllm_version"] == RELEASE
    assert header["script"] == "benchmarks/vllm_reference/make_figures.py"
    assert "source release" in header["package"] and "VLLM_TARGET_DEVICE=cpu" in header["command"]
    assert any(item.startswith("Extensible KV cache") for item in header["settings_undone"])
    assert len(DATA["cases"]) == 891  # the 0.32.0 grid, case for case
    started = [c for c in DATA["cases"] if c.get("starts")]
    # the CUDA default (config/vllm.py:3180-3268), gpu_memory_utilization then 1.0 (config/cache.py:495-501)
    assert {(c["settings"]["enable_extensible_kv_cache"], c["settings"]["resolved_gpu_memory_utilization"])
            for c in started} == {(True, 1.0)}


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_kvplan_reproduces_vllm_034(case):
    mismatches = {name: pair for name, pair in reference.compare(case, RELEASE).items() if pair[0] != pair[1]}
    assert not mismatches, mismatches


def test_llama_8b_by_hand():
    """Llama-3.1-8B, 10 GiB, 32K: 0.34's default block is 64 tokens (config/cache.py:185 DEFAULT_BLOCK_SIZE), a page
    2 (K, V) x 8 heads x 128 x 2 bytes x 64 = 256 KiB a layer, 8 MiB a block over 32 layers: 1,280 blocks, each
    layer's 320 MiB a whole number of granules, so warmup commits all of them; 32,768 / 64 = 512 blocks a request,
    2.5 requests in the pool (81,920 tokens), 2 resident in the 1,279 blocks past the null one."""
    case = find("meta-llama/Llama-3.1-8B", 10 * GIB, 32768)
    kv = case["kv"]
    assert (kv["block_size"], kv["bytes_per_block"], kv["num_gpu_blocks"]) == (64, 8 * MIB, 1280)
    assert kv["extensible"] == {"reserved_blocks": 1280, "measured_blocks": 1280, "committed_blocks": 1280,
                                "committed_bytes": 10 * GIB}
    assert case["log_lines"] == ["GPU KV cache size: 81,920 tokens, Maximum concurrency for 32,768 tokens per "
                                 "request: 2.50x"]
    assert case["resident"]["requests"] == 2
    result, _ = reference.kvplan_startup(case, RELEASE)
    assert (result.figures.num_gpu_blocks, result.figures.gpu_kv_cache_tokens) == (1280, 81920)
    assert "Extended KV cache to 1280 blocks (10.00 GiB)." in result.figures.log_lines


def test_granules_cost_a_block():
    """Llama-3.1-8B, 6.51 GiB (6,990,059,274 bytes), 4K: the reservation is 6,990,059,274 // 8 MiB = 833 blocks, but
    833 pages of 256 KiB are 208.25 MiB a layer, 105 granules of 2 MiB; 32 layers of 210 MiB exceed the budget. Each
    layer's share, 6,990,059,274 / 32 = 208.3 MiB, holds 104 whole granules (208 MiB) = 832 pages: vLLM 0.34 commits
    832 blocks (6.50 GiB) where 0.32 kept 833 (v1/worker/extensible_kv_cache.py:305-318)."""
    budget = int(6.51 * GIB)
    case = find("meta-llama/Llama-3.1-8B", budget, 4096)
    assert case["kv"]["extensible"] == {"reserved_blocks": 833, "measured_blocks": 832, "committed_blocks": 832,
                                        "committed_bytes": 32 * 208 * MIB}
    assert case["kv"]["num_gpu_blocks"] == 832
    result, _ = reference.kvplan_startup(case, RELEASE)
    assert result.figures.num_gpu_blocks == 832
    assert "Extended KV cache to 832 blocks (6.50 GiB)." in result.figures.log_lines


def test_qwen3_next_keeps_a_checkpoint_block_on_hopper():
    """Qwen3-Next on SM90 runs its gated-DeltaNet prefill on FlashInfer (qwen_gdn_linear_attn.py:321-322), so each
    layer exports an align-mode prefill checkpoint (:847-854, :901-912: num_prefill_checkpoint_blocks=1): 2 + 1 state
    blocks a Mamba group a request (kv_cache_interface.py MambaSpec.max_memory_usage_bytes); at 4K with the
    576-token hybrid block (lcm with the 64-token checkpoint alignment, gdn_attn.py:35) the 12 attention layers need
    ceil(4096 / 576) = 8 blocks: 3 x 3 + 8 = 17 a request."""
    case = find("Qwen/Qwen3-Next-80B-A3B-Thinking", int(6.51 * GIB), 4096)
    groups = case["kv"]["groups"]
    assert case["kv"]["block_size"] == 576
    assert [g["num_prefill_checkpoint_blocks"] for g in groups if g["class"] == "MambaSpec"] == [1, 1, 1]
    assert [g["blocks_per_request"] for g in groups] == [3, 3, 3, 8]


def test_the_release_matters():
    """The same case under the pinned 0.32 rules disagrees with 0.34's figures (its 16-token block, no granules):
    compare() must be told the release the data was made with."""
    case = find("meta-llama/Llama-3.1-8B", int(6.51 * GIB), 4096)
    under_032 = reference.compare(case, "0.32.0")
    assert under_032["block_size"] == (16, 64)
    assert under_032["num_gpu_blocks"][0] != under_032["num_gpu_blocks"][1]


def test_coverage_families_kinds_and_refusals():
    """Every family of the 0.32.0 grid, TP 1/2/4/8, every layer kind and refusal kind, all compared."""
    assert {1, 2, 4, 8} <= {c["inputs"]["tp"] for c in CASES}
    started = [c for c in CASES if reference.category(c) == "starts"]
    kinds = Counter(k for c in started for k in c["layer_specs"])
    assert {"FullAttentionSpec", "SlidingWindowSpec", "ChunkedLocalAttentionSpec", "MLAAttentionSpec",
            "MambaSpec"} <= set(kinds)
    assert {c["inputs"]["family"] for c in started} == {c["inputs"]["family"] for c in DATA["cases"]} - {
        "falcon-rw-legacy"}
    assert Counter(reference.category(c) for c in CASES).keys() == {"starts", "refused (memory)",
                                                                   "refused (config)", "refused (tp)"}
    assert len(CASES) == len(DATA["cases"])  # nothing left out
