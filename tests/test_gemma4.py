"""Gemma 4 as vLLM 0.32.0 serves it: per-layer head shapes (sliding 256, full global_head_dim with
num_global_key_value_heads under attention_k_eq_v), KV-sharing layers that hold no cache but read their target's,
per-layer input embeddings, and the engine's cache groups. Expected values are hand arithmetic from the configs and
vLLM's own figures (tests/data/vllm_0.32.0_kv_figures.json, the gemma4 grid made by
benchmarks/vllm_reference/make_figures.py with vLLM 0.32.0's model code, KV specs, grouping and admission)."""

import copy
import importlib.util
import sys
from pathlib import Path

import pytest

from conftest import load_yaml, run_kvplan
from kvplan.engines.vllm_settings import resolve_settings
from kvplan.engines.vllm_budget import per_layer_input_buffer
from kvplan.errors import KvplanError
from kvplan.model.kinds import FullAttention, SharedKV, SlidingWindow
from kvplan.model.parse import parse_config
from kvplan.model.precision import PRECISIONS
from kvplan.model.sources import resolve
from kvplan.plan.capacity import read_bytes, token_bytes

ROOT = Path(__file__).resolve().parents[1]
E4B, DENSE = "google/gemma-4-E4B-it", "google/gemma-4-31B-it"
BF16, FP8 = PRECISIONS["bf16"], PRECISIONS["fp8_e4m3"]
GiB = 2**30

_spec = importlib.util.spec_from_file_location("engine_vllm_reference",
                                               ROOT / "benchmarks" / "engine_vllm_reference.py")
reference = sys.modules["engine_vllm_reference"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)
FROZEN = [c for c in reference.load()["cases"] if c["inputs"]["grid"] == "gemma4"]


def bundled_config(model: str) -> dict:
    return load_yaml((ROOT / "model_specs" / (model.replace("/", "--") + ".yaml")).read_text())["config"]


def test_e4b_keeps_24_caches_and_18_layers_that_read_them():
    layers = resolve(E4B).layers
    assert len(layers) == 42
    own, shared = layers[:24], layers[24:]
    assert sum(isinstance(x, SlidingWindow) for x in own) == 20 and own[5] == FullAttention(2, 512)
    assert own[0] == SlidingWindow(2, 256, sliding_window=512)
    assert all(isinstance(x, SharedKV) for x in shared)
    # the last earlier layer of each type: 22 (sliding), 23 (full, layers 5, 11, 17, 23)
    assert {x.source for x in shared if isinstance(x.target, SlidingWindow)} == {22}
    assert [x.source for x in shared if not isinstance(x.target, SlidingWindow)] == [23, 23, 23]


def test_bytes_a_token_with_and_without_sharing():
    # E4B: 20 sliding layers of 2 x 256, 4 full of 2 x 512, K and V, 2 bytes
    assert token_bytes(resolve(E4B), 1, BF16) == 20 * 2 * 2 * 256 * 2 + 4 * 2 * 2 * 512 * 2 == 57344
    unshared = copy.deepcopy(bundled_config(E4B))
    unshared["text_config"]["num_kv_shared_layers"] = 0
    assert token_bytes(parse_config(unshared, "no sharing"), 1, BF16) == 35 * 2048 + 7 * 4096 == 100352
    # 31B: 50 sliding layers of 16 x 256, 10 full layers of 4 x 512 (num_global_key_value_heads, K = V still cached)
    dense = resolve(DENSE)
    assert token_bytes(dense, 1, BF16) == 50 * 16 * 256 * 4 + 10 * 4 * 512 * 4 == 901120
    assert token_bytes(dense, 1, FP8) == 901120 // 2
    # TP 8: 2 sliding heads a rank; the 4 full heads are fewer than 8 ranks, one replicated head each
    assert token_bytes(dense, 8, BF16) == 50 * 2 * 256 * 4 + 10 * 1 * 512 * 4


def test_a_shared_layer_reads_its_targets_cache_again():
    # 35 layers read a 512-token window of 2 x 256, 7 read every token of 2 x 512
    assert read_bytes(resolve(E4B), 1, BF16, 32768) == 35 * 512 * 2048 + 7 * 32768 * 4096


def test_the_31b_weights_match_the_published_count():
    spec = parse_config(bundled_config(DENSE), "estimate")
    assert spec.weights.parameters == 31_273_088_876  # the checkpoint's tensors, vision tower included
    # vLLM loads k_proj into the V rows of the 10 K = V layers too: 4 heads x 512 x 5376 each
    assert spec.load_delta == (10 * 2048 * 5376, 2 * 10 * 2048 * 5376)
    assert resolve(DENSE).resident_weight_bytes == 62_546_177_752 + 2 * 10 * 2048 * 5376


def test_per_layer_inputs_and_the_shared_layers_dropped_k_v():
    spec = resolve(E4B)
    table = 262144 * 42 * 256
    assert spec.per_layer_table == table and spec.param_count("embed") == 262144 * 2560 + table
    # the checkpoint's K / V of the 18 shared layers (15 sliding 2 x 256, 3 full 2 x 512) and k_norms are dropped
    dropped = 15 * (2 * 512 * 2560 + 256) + 3 * (2 * 1024 * 2560 + 512)
    assert spec.load_delta == (-dropped, -2 * dropped)
    # the multimodal wrapper's per-layer-input buffer: max_num_batched_tokens x 42 x 256 bf16 (H100: 8192)
    settings = resolve_settings(32768, "NVIDIA H100 80GB HBM3", 80 * GiB)
    assert per_layer_input_buffer(spec, settings) == 8192 * 42 * 256 * 2
    text_only = copy.deepcopy(bundled_config(E4B))
    text_only["architectures"] = ["Gemma4ForCausalLM"]
    assert per_layer_input_buffer(parse_config(text_only, "text"), settings) == 0


def test_the_frozen_gemma4_cases_are_vllms_and_kvplan_reproduces_them():
    assert len(FROZEN) == 22 and {c["inputs"]["tp"] for c in FROZEN} == {1, 2, 4}
    assert sum(not c["starts"] for c in FROZEN) == 4  # the 31B at 6.51 GiB refuses
    e4b = next(c for c in FROZEN if c["inputs"]["model"] == E4B and c["inputs"]["max_model_len"] == 32768
               and c["inputs"]["kv_cache_dtype"] == "auto" and c["inputs"]["available_kv_cache_bytes"] < 7 * GiB)
    assert e4b["layer_specs"] == {"SlidingWindowSpec": 20, "FullAttentionSpec": 4}  # shared layers: no spec
    # sliding pages (2 x 256 x 2 x 2 x 16 = 32 KiB) raised to block 32 to match the full layers' 64 KiB page; five
    # groups of 4 sliding layers and one of 4 full layers, a block 4 x 64 KiB
    assert e4b["kv"]["bytes_per_block"] == 4 * 2 * 512 * 2 * 2 * 16
    assert e4b["kv"]["num_gpu_blocks"] == int(6.51 * GiB) // (4 * 65536)
    for case in FROZEN:
        mismatches = {k: pair for k, pair in reference.compare(case).items() if pair[0] != pair[1]}
        assert not mismatches, (case["id"], mismatches)


def test_a_share_count_without_a_source_layer_is_refused():
    config = copy.deepcopy(bundled_config(E4B))
    config["text_config"]["num_kv_shared_layers"] = 40  # layers 2.. share, but no full layer comes before 2
    with pytest.raises(KvplanError, match="num_kv_shared_layers"):
        parse_config(config, "bad")


@pytest.mark.parametrize("model", [E4B, DENSE])
def test_a_release_before_gemma4_refuses_it(model):
    """registry.py lists Gemma4ForConditionalGeneration from vLLM 0.19.0 (not in 0.18.0's)."""
    from kvplan import api

    old = api.estimate(model, gpu="h100", max_model_len=8192, engine="vllm==0.18.0")[0]
    assert not old.engine.starts and old.max_concurrency == 0
    assert "['Gemma4ForConditionalGeneration'] are not supported for now" in old.engine.refusal.reason
    assert api.estimate(model, gpu="h100", max_model_len=8192, engine="vllm==0.19.0")[0].engine.starts


def test_a_pipeline_stage_without_the_shared_layers_targets_is_invalid():
    """vLLM builds a stage's own layers only, and validate_kv_sharing_target refuses a KV-sharing target on another
    stage: E4B's layers 24-41 read layers 22 (sliding) and 23 (full), so 22-41 must share the last stage."""
    from kvplan.plan.sharding import shard

    spec = resolve(E4B)
    assert shard(spec, 1, 2).valid and shard(spec, 1, 2, (22, 20)).valid  # 21,21: 21-41 hold both targets
    for pp, partition in ((3, None), (2, (23, 19)), (2, (30, 12))):
        (error,) = shard(spec, 1, pp, partition).errors
        assert "layer 22, whose KV cache it reads" in error and "ending in 20 or more" in error
    run = run_kvplan("check", E4B, "--tp", "1", "--pp", "3", "--gpu", "h100")
    assert run.returncode == 1 and "validate_kv_sharing_target" in " ".join(run.stdout.split())


def test_a_moe_block_routes_top_k_experts():
    """Gemma 4's MoE block takes its top k from top_k_experts (vLLM 0.32.0 gemma4.py:648); the 31B's config with
    the block switched on (8 of 128 experts of 704 columns, as the 26B-A4B form's fields name them)."""
    text = dict(bundled_config(DENSE)["text_config"], enable_moe_block=True, num_experts=128, top_k_experts=8,
                moe_intermediate_size=704)
    spec = parse_config({**bundled_config(DENSE), "text_config": text}, "gemma4-moe")
    assert (spec.experts, spec.experts_per_token) == (128, 8)


@pytest.mark.parametrize("field, value", [("head_dim", "x"), ("num_key_value_heads", -2), ("head_dim", 1.5)])
def test_a_bad_per_layer_override_is_named_in_one_line(field, value):
    """Review note (session 49): per_layer_config entries went through unchecked (an internal error, exit 3)."""
    config = copy.deepcopy(bundled_config(DENSE))
    config["text_config"]["per_layer_config"] = {"5": {field: value}}
    with pytest.raises(KvplanError, match=f"config field 'per_layer_config.5.{field}' must be a positive integer"):
        parse_config(config, DENSE)
