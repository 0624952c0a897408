"""Configs whose cache layout kvplan has no layer kind for are refused in one line (exit 2), not sized as the
ordinary decoder their head counts suggest (model/unmodelled.py). Before this rule a DeepSeek-V4 config was read
as GQA with one 512-wide KV head and 540 GiB of weights."""

from __future__ import annotations

import copy

import pytest

from conftest import run_kvplan
from hub_configs import GEMMA3_27B, LLAMA3_8B
from kvplan.errors import KvplanError
from kvplan.model.parse import parse_config

# Fields as the public configs name them (the values are the published ones where a copy was read: DeepSeek-V4-
# Flash's and Kimi-K3's in public test fixtures; the rest only need to be present).
V4_FLASH = {"architectures": ["DeepseekV4ForCausalLM"], "model_type": "deepseek_v4", "hidden_size": 4096,
            "num_hidden_layers": 43, "num_attention_heads": 64, "num_key_value_heads": 1, "head_dim": 512,
            "q_lora_rank": 1024, "qk_rope_head_dim": 64, "o_lora_rank": 1024, "o_groups": 8, "num_hash_layers": 3,
            "compress_ratios": [0, 0, 4, 128], "vocab_size": 129280, "torch_dtype": "bfloat16"}
KIMI_K3 = {"architectures": ["KimiK3ForConditionalGeneration"], "model_type": "kimi_k3", "dtype": "bfloat16",
           "text_config": {"model_type": "kimi_linear", "vocab_size": 64, "hidden_size": 32,
                           "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                           "q_lora_rank": 16, "kv_lora_rank": 8, "qk_rope_head_dim": 4, "qk_nope_head_dim": 8,
                           "v_head_dim": 8, "linear_attn_config": {"num_heads": 4, "head_dim": 8,
                                                                   "full_attn_layers": [1], "kda_layers": [2]}}}


def with_fields(base: dict, architecture: str, **fields) -> dict:
    config = copy.deepcopy(base)
    config["architectures"] = [architecture]
    (config.get("text_config") or config).update(fields)
    return config


@pytest.mark.parametrize("config, needles", [
    (with_fields(V4_FLASH, "DeepseekV4ForConditionalGeneration"), ("DeepseekV4ForConditionalGeneration", "vision")),
    (with_fields(V4_FLASH, "DeepseekV41ForCausalLM"), ("DeepseekV41ForCausalLM", "V4.1")),
    (KIMI_K3, ("KimiK3ForConditionalGeneration", "linear_attn_config")),
    # a Gemma 3 config (model_type gemma3) under Gemma 3n's name: sharing outside the families kvplan sizes it for
    (with_fields(GEMMA3_27B, "Gemma3nForConditionalGeneration", num_kv_shared_layers=15),
     ("num_kv_shared_layers", "Gemma 3n")),
    (with_fields(LLAMA3_8B, "InklingForCausalLM", swa_num_key_value_heads=8), ("InklingForCausalLM",
                                                                                "swa_num_key_value_heads")),
    (with_fields(LLAMA3_8B, "MiMoV2OmniForCausalLM", swa_num_key_value_heads=8), ("MiMoV2OmniForCausalLM",
                                                                                   "audio towers")),
    (with_fields(LLAMA3_8B, "MiMoV2ForCausalLM", vision_config={"depth": 28}), ("MiMoV2ForCausalLM",
                                                                                 "vision_config")),
])
def test_unmodelled_architectures_are_refused_in_one_line(write_config, config, needles):
    result = run_kvplan("estimate", write_config(config), "--gpu", "h200")
    assert result.returncode == 2 and result.stdout == ""
    line, = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and "does not model" in line
    for needle in needles:
        assert needle in line, line


def test_the_refusal_lists_every_layout_kvplan_sizes_in_one_short_sentence(write_config):
    """What the refusal offers instead names the layouts with a layer kind of their own, the newer ones too."""
    result = run_kvplan("estimate", write_config(with_fields(V4_FLASH, "DeepseekV41ForCausalLM")), "--gpu", "h200")
    line, = result.stderr.strip().splitlines()
    offered = line[line.index("(kvplan sizes"):]
    for layout in ("sparse MLA", "per-layer-type heads", "shared KV layers", "KDA", "DeepSeek-V4's compressed"):
        assert layout in offered, offered
    assert offered.count(".") == 1 and len(offered) < 260


@pytest.mark.parametrize("field, value", [
    ("compress_ratios", [0, 4]), ("num_kv_shared_layers", 10), ("swa_num_key_value_heads", 4),
    ("linear_attn_config", {"kda_layers": [1]}), ("swa_kv_lora_rank", 256), ("index_kpool", 4),
    ("sparse_attention_config", {"topk": 2048}), ("is_encoder_decoder", True), ("kv_source_layers", [0, 1]),
    ("vision_n_layers", 24),
])
def test_a_derivative_is_caught_by_its_field_under_any_name(field, value):
    config = with_fields(LLAMA3_8B, "SomeNewForCausalLM", **{field: value})
    with pytest.raises(KvplanError, match=f"config field '{field}' marks"):
        parse_config(config, "derivative")


def test_deepseek_v4_is_modelled_and_its_compress_ratios_checked(write_config):
    # DeepseekV4ForCausalLM now has layer kinds (tests/test_deepseek_v4.py); a compress_ratios that does not cover
    # its layers is bad input naming the field
    result = run_kvplan("estimate", write_config(V4_FLASH), "--gpu", "h200")
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    line, = result.stderr.strip().splitlines()
    assert "config field 'compress_ratios' must list 0, 4 or 128 for each of the 43 layers" in line, line


def test_an_absent_layout_field_refuses_nothing():
    # Gemma 3n's field at 0 shares no cache; MiniMax-M2 (all full attention) is an ordinary GQA MoE to kvplan.
    assert parse_config(with_fields(LLAMA3_8B, "LlamaForCausalLM", num_kv_shared_layers=0), "llama").layers
    assert parse_config(with_fields(LLAMA3_8B, "MiniMaxM2ForCausalLM"), "m2").layers


def test_no_bundled_model_is_refused():
    from kvplan.model.bundled import bundled_files, load_bundled

    for path in bundled_files():
        assert load_bundled(path)[1].layers, path.name


@pytest.mark.parametrize("model, before, first", [
    ("deepseek-ai/DeepSeek-V4-Flash", "0.19.0", "0.20.0"), ("zai-org/GLM-5.2", "0.15.1", "0.16.0"),
])
def test_a_release_before_the_architecture_refuses_it(model, before, first):
    """registry.py lists DeepseekV4ForCausalLM from 0.20.0 and GlmMoeDsaForCausalLM from 0.16.0 (read in each
    release's wheel): an older --engine release does not serve them by 0.32's rules."""
    from kvplan import api

    old = api.estimate(model, tensor_parallel_size=8, gpu="h200", max_model_len=32768, engine=f"vllm=={before}")[0]
    assert not old.engine.starts and f"v{first}" in old.engine.refusal.reason
    assert "not supported for now" in old.engine.refusal.reason
