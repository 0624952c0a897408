"""MiMo-V2-Flash as vLLM 0.32.0 serves it (model_executor/models/mimo_v2.py): 9 full-attention layers of 4 KV heads
and 39 sliding-window layers of their own 8 KV heads, keys 192 wide and values 128 in both, a learned sink a query
head on the sliding layers, 47 MoE layers behind one dense one, an fp8 checkpoint whose o_proj stays 16-bit.
Expected values are hand arithmetic from the config and vLLM's own figures (tests/data/vllm_0.32.0_kv_figures.json,
the cases of family mimo-v2-swa-heads made by benchmarks/vllm_reference/make_figures.py with vLLM 0.32.0's model
code, KV specs, grouping and admission)."""

import copy
import json
import importlib.util
import sys
from pathlib import Path

import pytest

from conftest import load_yaml, run_kvplan
from kvplan.errors import KvplanError
from kvplan.model.kinds import FullAttention, SlidingWindow
from kvplan.model.parse import parse_config
from kvplan.model.precision import PRECISIONS
from kvplan.model.sources import resolve
from kvplan.plan.capacity import read_bytes, token_bytes

ROOT = Path(__file__).resolve().parents[1]
FLASH = "XiaomiMiMo/MiMo-V2-Flash"
BF16, FP8 = PRECISIONS["bf16"], PRECISIONS["fp8_e4m3"]
GiB = 2**30
FULL_LAYERS = (0, 5, 11, 17, 23, 29, 35, 41, 47)

_spec = importlib.util.spec_from_file_location("engine_vllm_reference",
                                               ROOT / "benchmarks" / "engine_vllm_reference.py")
reference = sys.modules["engine_vllm_reference"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)
FROZEN = [c for c in reference.load()["cases"] if c["inputs"]["family"] == "mimo-v2-swa-heads"]


def bundled_config() -> dict:
    return load_yaml((ROOT / "model_specs" / (FLASH.replace("/", "--") + ".yaml")).read_text())["config"]


def frozen(tp=1, kv="auto", ctx=32768, budget_gib=6.51) -> dict:
    return next(c for c in FROZEN if c["inputs"]["tp"] == tp and c["inputs"]["kv_cache_dtype"] == kv
                and c["inputs"]["max_model_len"] == ctx
                and abs(c["inputs"]["available_kv_cache_bytes"] / GiB - budget_gib) < 0.01)


def test_each_layer_type_has_its_own_heads_and_widths():
    layers = resolve(FLASH).layers
    assert len(layers) == 48
    assert [i for i, layer in enumerate(layers) if not isinstance(layer, SlidingWindow)] == list(FULL_LAYERS)
    assert layers[0] == FullAttention(4, 192, 128)
    assert layers[1] == SlidingWindow(8, 192, 128, sliding_window=128)  # sliding_window_size, not a chunk
    assert layers[0].kind == "full" and layers[1].kind == "sliding"  # attention_chunk_size 128 names no chunk


def test_bytes_a_token_per_layer_type():
    spec = resolve(FLASH)
    # full: 4 KV heads x (192 + 128) x 2 bytes; sliding: 8 x 320 x 2; fp8 one byte a value
    assert spec.layers[0].bytes_per_token(1, BF16) == 4 * 320 * 2 == 2560
    assert spec.layers[1].bytes_per_token(1, BF16) == 8 * 320 * 2 == 5120
    assert token_bytes(spec, 1, BF16) == 9 * 2560 + 39 * 5120 == 222720
    assert token_bytes(spec, 1, FP8) == 222720 // 2
    # TP 8: the 4 full heads replicated (one a rank), the 8 sliding ones split (one a rank)
    assert token_bytes(spec, 8, BF16) == 48 * 320 * 2 == 30720


def test_a_decode_step_reads_the_window_on_sliding_layers():
    assert read_bytes(resolve(FLASH), 1, BF16, 32768) == 9 * 32768 * 2560 + 39 * 128 * 5120


def test_weights_as_vllm_builds_them():
    spec = parse_config(bundled_config(), "estimate")
    h, vocab = 4096, 152576
    full = 64 * 192 * h + 4 * 192 * h + 4 * 128 * h + h * 64 * 128
    sliding = 64 * 192 * h + 8 * 192 * h + 8 * 128 * h + h * 64 * 128 + 64  # + a sink a query head
    moe = 256 * 3 * 2048 * h + 256 * h + 256  # experts, float32 router and correction bias
    total = 2 * vocab * h + h + 48 * 2 * h + 9 * full + 39 * sliding + 3 * 16384 * h + 47 * moe
    assert spec.weights.parameters == total == 308_778_780_864  # the model card: 309B
    # o_proj in ignored_layers stays bf16: 2 bytes instead of 1 byte + a float32 scale per 128 x 128 block
    quantized = copy.deepcopy(bundled_config())
    del quantized["quantization_config"]["ignored_layers"]
    o_proj_fp8 = h * 8192 + 4 * (h // 128) * (8192 // 128)
    delta = parse_config(quantized, "o_proj fp8").weights.bytes - spec.weights.bytes
    assert delta == 48 * (o_proj_fp8 - 2 * h * 8192)


def test_moe_layer_freq_lists_and_integers():
    assert resolve(FLASH).moe_layers == 47  # moe_layer_freq [0, 1, 1, ...]
    dense = copy.deepcopy(bundled_config())
    dense["moe_layer_freq"] = 1  # an integer: vLLM's is_moe_layer is false on every layer
    assert parse_config(dense, "dense").moe_layers == 0


def test_the_frozen_cases_are_vllms_and_kvplan_reproduces_them():
    assert len(FROZEN) == 16 and {c["inputs"]["tp"] for c in FROZEN} == {1, 2, 4, 8}
    assert {c["inputs"]["kv_cache_dtype"] for c in FROZEN} == {"auto", "fp8"}
    assert sum(not c["starts"] for c in FROZEN) == 2  # the 256K default in 6.51 GiB and in 2 GiB
    case = frozen()
    assert case["layer_specs"] == {"FullAttentionSpec": 9, "SlidingWindowSpec": 39}
    assert case["settings"]["attention_backends"] == ["FLASH_ATTN_DIFFKV"]
    # the full page (4 x 320 x 2 bytes a token) at block 32 equals the sliding page (8 x 320 x 2) at block 16;
    # groups of 9 layers (the full layers; the 39 sliding ones in 5 groups, 6 padding), a block 9 pages
    full, sliding = case["kv"]["groups"][0], case["kv"]["groups"][1]
    assert (full["block_size"], full["page_size_bytes"]) == (32, 32 * 2560) == (32, 81920)
    assert (sliding["block_size"], sliding["page_size_bytes"]) == (16, 16 * 5120)
    assert case["kv"]["bytes_per_block"] == 9 * 81920
    assert case["kv"]["num_gpu_blocks"] == int(6.51 * GiB) // (9 * 81920) == 9480
    # a fresh request needs 32768 / 32 full blocks and cdiv(127 + 16384 in flight, 16) + 1 in each sliding group;
    # once prefilled it keeps 1024 + 5 x 8 (its window); requests are admitted while the next one fits
    admit, held = 1024 + 5 * 1033, 1024 + 5 * 8
    assert case["resident"]["admission_blocks_per_group"] == [1024] + [1033] * 5
    assert case["resident"]["blocks_held_first_request"] == held
    assert case["resident"]["requests"] == 1 + (9480 - 1 - admit) // held == 4
    for case in FROZEN:
        mismatches = {k: pair for k, pair in reference.compare(case).items() if pair[0] != pair[1]}
        assert not mismatches, (case["id"], mismatches)


def refusal_line(*args) -> str:
    """kvplan's one-sentence refusal of these arguments (exit 2, nothing on stdout, no traceback)."""
    result = run_kvplan(*args)
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    line, = result.stderr.strip().splitlines()
    return line


def test_a_config_without_its_layer_pattern_is_bad_input(write_config):
    config = copy.deepcopy(bundled_config())
    del config["hybrid_layer_pattern"]
    assert "hybrid_layer_pattern" in refusal_line("estimate", write_config(config), "--gpu", "h200")


@pytest.mark.parametrize("field, value", [("swa_num_key_value_heads", 3), ("hybrid_layer_pattern", [0, 1]),
                                          ("moe_layer_freq", [0, 2] + [1] * 46), ("sliding_window_size", 0)])
def test_bad_mimo_fields_name_themselves(field, value):
    config = copy.deepcopy(bundled_config())
    config[field] = value
    with pytest.raises(KvplanError, match=field):
        parse_config(config, "bad")


def test_a_tp_degree_the_sliding_heads_refuse_names_their_own_field(write_config):
    """The sliding layers' KV heads come from swa_num_key_value_heads: 12 of them (96 sliding query heads) and tp 8
    do not divide each other, and the row's error names that field, not the full layers' num_key_value_heads (4,
    which tp 8 replicates)."""
    config = copy.deepcopy(bundled_config())
    config.update(swa_num_attention_heads=96, swa_num_key_value_heads=12)
    result = run_kvplan("estimate", write_config(config), "--gpu", "h200", "-tp", "8", "--format", "json")
    assert result.returncode == 0, result.stderr
    (plan,) = json.loads(result.stdout)["plans"]
    assert plan["tp_errors"] == ["swa_num_key_value_heads (12) and tp 8 do not divide each other: vLLM needs tp to "
                                 "divide the KV heads or the KV heads to divide tp."]


def test_replicated_heads_are_warned_per_layer_type_and_the_totals_once():
    """At tp 16 the 9 full layers' 4 KV heads are copied on 4 GPUs and the 39 sliding layers' 8 on 2: each warning
    names its field and its layers (not 'the group holds 4x', which the whole cache does not: 480 KiB a token over
    the 16 GPUs against 218 KiB unreplicated, 2.2x), and check gives the whole cache's figures once."""
    result = run_kvplan("check", FLASH, "-tp", "16", "-c", "128K", "--format", "json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["results"]
    full, sliding = row["warnings"]
    assert full == ("tp 16 > 4 KV heads (num_key_value_heads): each KV head is replicated on 4 GPUs, so its 9 "
                    "layers with them hold 4x the KV memory of an unreplicated split.")
    assert sliding.startswith("tp 16 > 8 KV heads (swa_num_key_value_heads): each KV head is replicated on 2 "
                              "GPUs, so its 39 layers with them hold 2x the KV memory")
    # 48 layers x 1 head x (192 + 128) x 2 bytes x 16 GPUs; 9 x 4 + 39 x 8 heads x 320 x 2 bytes unreplicated
    assert sliding.endswith("(491520 vs 222720 bytes, +268800).")


def test_its_mtp_drafter_is_refused_in_one_line(write_config):
    config = copy.deepcopy(bundled_config())
    config["num_nextn_predict_layers"] = 3  # the model card: 3 MTP layers ship
    line = refusal_line("estimate", write_config(config), "--gpu", "h200", "-tp", "8",
                        "--speculative-config", '{"method": "mtp", "num_speculative_tokens": 1}')
    assert "--speculative-config" in line and "mimo_v2_mtp.py" in line
