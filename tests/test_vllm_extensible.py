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
    its resident memory the weights beside kvplan's non-torch and graph terms."""
    context, nccl = CONSTANTS["cuda_context"][0], 1_879_048_192  # 617.6 MiB; 1.75 GiB of NCCL at tp > 1
    tp = 1 if case["baseline"] == context else 4
    assert case["baseline"] == context + (nccl if tp > 1 else 0)
    non_torch, graphs = GiB // 2, CONSTANTS["cuda_graphs"][0]
    gpu = find_gpu("mi300x" if case["margin_floor"] == 3 * GiB else "h100")
    return extensible_budget(gpu, case["memory"], math.ceil(case["memory"] * case["utilization"]),
                             case["utilization"], "0.34.0", None, EngineFlags(), tp,
                             BudgetTerm("weights", case["resident"] - non_torch - graphs, "test"),
                             BudgetTerm("profile_peak", case["transient"], "test"),
                             BudgetTerm("non_torch", non_torch, "test"))


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
    strides = (case["stride"],) * case["layers"]
    assert committed_blocks(case["available"], strides, REFERENCE["granule"]) == case["blocks"]


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
    assert case["available"] // (case["stride"] * case["layers"]) == 51_217
    assert committed_blocks(case["available"], (case["stride"],) * case["layers"], 2 * 2**20) == 51_200


def _plan(engine, *extra):
    (row,) = json.loads(run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "-c", "32768",
                                   "--engine", engine, "--format", "json", *extra).stdout)["plans"]
    return row


def test_0_34_takes_the_whole_device_by_default():
    """0.32 sizes from 0.92 of the device less the graph estimate; 0.34 from the device less its baseline and margin.
    The 8% vLLM 0.32 leaves unused (6.3 GiB of an H100) is 1.6 GiB more than the context and margin: more cache."""
    old, new = _plan("vllm==0.32.0"), _plan("vllm==0.34.0")
    assert new["budget"]["gpu_util"] == 1.0 and old["budget"]["gpu_util"] == 0.92
    assert new["budget"]["granule_bytes"] == 2 * 2**20 and "granule_bytes" not in old["budget"]
    tokens = [row["engine"]["num_gpu_blocks"] * row["engine"]["block_size"] for row in (old, new)]
    assert tokens[1] > tokens[0]  # 0.34 pages 64 tokens a block (vllm_specs.default_block_size), 0.32 16
    # Llama-3.1-8B: 32 layers x 16 tokens x 8 heads x 128 x 2 (k, v) x 2 B = 128 KiB a layer a block at block 16
    blocks = new["engine"]["num_gpu_blocks"]
    per_layer = new["engine"]["block_size"] * 8 * 128 * 2 * 2
    assert 32 * -(-blocks * per_layer // 2**21) * 2**21 <= new["budget"]["kv_budget_bytes_per_gpu"]


def test_an_override_turns_the_extensible_cache_off():
    """config/vllm.py:3180-3268: --num-gpu-blocks-override keeps the profiled sizing (and its 0.92)."""
    row = _plan("vllm==0.34.0", "--num-gpu-blocks-override", "2000")
    assert row["budget"]["gpu_util"] == 0.92 and "granule_bytes" not in row["budget"]


def test_default_utilisation_follows_the_sizing():
    assert get_engine("vllm==0.34.0").default_gpu_util == 1.0
    assert get_engine("vllm==0.33.0").default_gpu_util == 0.92


def _refusal(engine, *extra):
    row = json.loads(run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "l4", "-c", "131072",
                                "--engine", engine, "--format", "json", *extra).stdout)["plans"][0]
    return row["engine"]["refusal"]["reason"]


def test_0_34_refusals_give_0_34s_advice():
    """0.34.0 v1/core/kv_cache_planning.py:64-96 (_more_kv_cache_memory_hint, after warmup) and :114-132: the advice
    depends on the sizing and the utilisation; 0.33 keeps 0.32's sentence (kv_cache_utils.py:1030-1039)."""
    default = _refusal("vllm==0.34.0")
    assert ("The extensible KV cache already takes all device memory left after the model, its activations, CUDA "
            "graphs and warmup; decrease `max_model_len` or `max_num_seqs`, or the model needs a device with more "
            "memory. CUDA graphs take less with fewer or smaller capture sizes in the compilation config. Decreasing "
            "`max_model_len` also reduces what is needed.") in default
    assert "The KV cache gets what is left after the model, its activations, CUDA graphs and warmup within " \
           "`gpu_memory_utilization`=0.9; increase it (with the extensible KV cache it defaults to 1.0)" in \
           _refusal("vllm==0.34.0", "--gpu-util", "0.9")
    assert "Try increasing `gpu_memory_utilization` when initializing the engine (this flag also controls CPU " \
           "memory reservation on the CPU backend, despite its name). Decreasing `max_model_len`" in \
           _refusal("vllm==0.34.0", "--num-gpu-blocks-override", "100")
    assert "Try increasing `gpu_memory_utilization` (which also controls CPU memory on the CPU backend) or " \
           "decreasing `max_model_len` when initializing the engine." in _refusal("vllm==0.33.0")


def test_the_penalty_counts_leave_the_measured_cache():
    """v1/worker/gpu/sample/penalties.py (0.34.0 :43-50): int32 [max_num_seqs, vocab] counts and an int32
    [max_num_seqs, cdiv(vocab, 32)] mask, built after the weights' profiler: 0.32's budget never sees them, 0.34's
    measurement does. Llama-3.1-8B on an H100 (1,024 sequences, vocab 128,256): 1024 x (128256 + 4008) x 4."""
    old, new = _plan("vllm==0.32.0"), _plan("vllm==0.34.0")
    terms = {t["name"]: t for t in new["budget"]["terms"]}
    assert terms["non_torch"]["bytes"] - GiB // 2 == 541_753_344
    assert "penalty counts" in terms["non_torch"]["source"]
    assert {t["name"]: t for t in old["budget"]["terms"]}["non_torch"]["bytes"] == GiB // 2
