"""A config whose sliding_window is a list of per-layer windows (model/config.py WINDOW_LIST), read by each vLLM
release its own way (engines/vllm_window_list.py), checked against vLLM's code and hand arithmetic.

The model: 4 Llama layers, 8 KV heads of 128, bf16, so one layer holds 2 x 8 x 128 x 2 = 4,096 bytes a token;
sliding_window [4096, null] makes layers 0 and 2 slide over 4,096 tokens and layers 1 and 3 attend in full
(llama.py 0.10.0:170-181: layer i takes entry i % 2).
"""

from __future__ import annotations

import json

import pytest

from conftest import estimate_plan, one_error_line, run_kvplan

LAYER_TOKEN = 2 * 8 * 128 * 2  # K and V, 8 heads of 128, 2 bytes
LENGTH = 32_768
LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 4,
         "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 32000,
         "max_position_embeddings": LENGTH, "torch_dtype": "bfloat16", "sliding_window": [4096, None]}


def _config(tmp_path, **fields) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**LLAMA, **fields}))
    return str(path)


def _plan(tmp_path, engine: str, *flags, **fields) -> dict:
    return estimate_plan(_config(tmp_path, **fields), "--gpu", "H100", "--engine", engine, *flags)


def test_the_reader_gives_each_layer_its_entry(tmp_path):
    from kvplan.model.kinds import FullAttention, SlidingWindow
    from kvplan.model.parse import parse_config

    spec = parse_config({**LLAMA, "num_hidden_layers": 5, "sliding_window": [4096, None, 1024]}, "m")
    kinds = [(type(layer), getattr(layer, "sliding_window", None)) for layer in spec.layers]
    # layer i: entry i % 3 -> 4096, null, 1024, 4096, null
    assert kinds == [(SlidingWindow, 4096), (FullAttention, None), (SlidingWindow, 1024), (SlidingWindow, 4096),
                     (FullAttention, None)]
    assert spec.window_list == (4096, None, 1024)


def test_engine_none_holds_each_layer_as_the_list_says(tmp_path):
    plan = _plan(tmp_path, "none")
    full = 2 * LENGTH * LAYER_TOKEN  # layers 1 and 3: every token
    # layers 0 and 2: the blocks of 16 the last 4,096 tokens touch, one more than they span (4,095 // 16 + 1 + 1)
    sliding = 2 * (-(-4095 // 16) + 1) * 16 * LAYER_TOKEN
    assert plan["kv_bytes_per_sequence_per_gpu"] == full + sliding == 268_435_456 + 33_685_504


@pytest.mark.parametrize("version", ["0.5.5", "0.6.3"])
def test_up_to_0_6_3_the_profile_run_crashes(tmp_path, version):
    # worker/model_runner.py 0.6.3:457-459: (sliding_window + block_size - 1) with the list as the window
    refusal = _plan(tmp_path, f"vllm=={version}")["engine"]["refusal"]
    assert refusal["reason"] == 'TypeError: can only concatenate list (not "int") to list'
    assert refusal["remedy_range"] == {"from": "0.6.5", "before": "0.10.1"}


def test_0_6_4_turns_the_windows_off_and_caps_the_length_to_the_smallest(tmp_path):
    # config.py 0.6.4:226-240 and get_min_sliding_window :1997-2002: min(4096, 1024) -> 1,024 tokens, every layer full
    plan = _plan(tmp_path, "vllm==0.6.4", sliding_window=[4096, None, 1024, None])
    assert plan["context"] == 1024
    assert plan["engine"]["blocks_per_request"] == 1024 // 16  # V0: every layer full, 64 blocks of 16
    assert plan["kv_bytes_per_sequence_per_gpu"] == 4 * 1024 * LAYER_TOKEN == 16_777_216


def test_0_6_4_refuses_a_list_of_nulls(tmp_path):
    # min() of no window (config.py 0.6.4:1999-2000)
    refusal = _plan(tmp_path, "vllm==0.6.4", sliding_window=[None, None])["engine"]["refusal"]
    assert refusal["reason"] == "ValueError: min() arg is an empty sequence"


@pytest.mark.parametrize("version", ["0.6.5", "0.7.3"])
def test_v0_releases_cache_every_layer_in_full(tmp_path, version):
    # config.py 0.6.5:296-319: CacheConfig gets no window, so V0's block table is full attention on every layer
    plan = _plan(tmp_path, f"vllm=={version}")
    assert plan["engine"]["starts"] and plan["context"] == LENGTH
    assert plan["engine"]["blocks_per_request"] == LENGTH // 16 == 2048


def test_v0_ignores_a_list_whose_every_layer_slides_alike(tmp_path):
    # [4096] slides every layer over one window, yet the list is moved off CacheConfig all the same (0.6.5:296-319)
    assert _plan(tmp_path, "vllm==0.6.5", sliding_window=[4096])["engine"]["blocks_per_request"] == 2048


def test_v1_0_10_0_gives_llama_layers_their_windows(tmp_path):
    # v1/worker/gpu_model_runner.py 0.10.0:2796-2802: a SlidingWindowSpec for layers 0 and 2; two groups
    engine = _plan(tmp_path, "vllm==0.10.0")["engine"]
    assert engine["num_kv_cache_groups"] == 2
    full = LENGTH // 16  # 2,048
    sliding = -(-(4096 - 1 + 8192) // 16) + 1  # window - 1 + the 8,192 batched tokens, plus one: 769
    assert engine["blocks_per_request"] == full + sliding == 2817


def test_v1_0_10_0_other_architectures_read_no_window(tmp_path):
    # qwen2.py 0.10.0 reads no interleaved_sliding_window: Attention falls back to CacheConfig's None, all full
    plan = _plan(tmp_path, "vllm==0.10.0", architectures=["Qwen2ForCausalLM"], model_type="qwen2")
    assert plan["engine"]["num_kv_cache_groups"] == 1
    assert plan["engine"]["blocks_per_request"] == 2048
    assert plan["kv_bytes_per_sequence_per_gpu"] == 4 * LENGTH * LAYER_TOKEN


@pytest.mark.parametrize("version", ["0.10.1.1", "0.34.0"])
def test_from_0_10_1_pydantic_refuses_the_list(tmp_path, version):
    # config/cache.py 0.10.1.1:63, 0.34.0:264 sliding_window: Optional[int]; pydantic 2's message
    refusal = _plan(tmp_path, f"vllm=={version}")["engine"]["refusal"]
    assert refusal["reason"] == ("1 validation error for CacheConfig sliding_window: Input should be a valid integer "
                                 "[type=int_type, input_value=[4096, None], input_type=list]")
    assert "--engine vllm==0.10.0" in refusal["remedy"]


def test_0_34_0_with_disable_sliding_window_fails_the_length_check(tmp_path):
    # config/model.py 0.34.0:2606-2609: sliding_window < derived_max_model_len with the list
    refusal = _plan(tmp_path, "vllm==0.34.0", "--disable-sliding-window")["engine"]["refusal"]
    assert refusal["reason"] == "TypeError: '<' not supported between instances of 'list' and 'int'"


@pytest.mark.parametrize("version", ["0.6.3", "0.34.0"])
def test_check_fails_the_deployment(tmp_path, version):
    r = run_kvplan("check", _config(tmp_path), "-tp", "1", "--gpu", "H100", "--engine", f"vllm=={version}")
    assert r.returncode == 1
    assert "--engine vllm==0.10.0" in r.stdout + r.stderr or "--engine vllm==0.6.5" in r.stdout + r.stderr


@pytest.mark.parametrize("value", [[], [0, None], [4096, "full"], [True], [4096.5]])
def test_a_bad_list_is_bad_input(tmp_path, value):
    line = one_error_line(run_kvplan("estimate", _config(tmp_path, sliding_window=value), "--gpu", "H100"))
    assert "config field 'sliding_window' must be an integer >= 0 (0 or null: no window) or a non-empty list" in line


def test_a_list_beside_another_layer_rule_is_refused(tmp_path):
    # Gemma 2's alternation makes layer 0 sliding, where the list's first entry is null
    cfg = _config(tmp_path, architectures=["Gemma2ForCausalLM"], model_type="gemma2", sliding_window=[None, 4096],
                  head_dim=128)
    line = one_error_line(run_kvplan("estimate", cfg, "--gpu", "H100", "--engine", "none"))
    assert "gives layer 0 no window (null)" in line
