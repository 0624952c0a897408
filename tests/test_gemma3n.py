"""Gemma 3n as vLLM 0.32.0 serves it: sliding / full layers, the last num_kv_shared_layers layers holding no cache
and reading a fixed earlier layer's (gemma3n.py:367-374), AltUp, Laurel, per-layer inputs and per-layer MLP widths,
the MobileNet-V5 and audio towers. Expected values: vLLM's own figures (tests/data/vllm_gemma3n_figures.json, made by
benchmarks/vllm_reference/gemma3n_figures.py with vLLM 0.32.0's model code on the meta device, its KV specs,
grouping and admission) and hand arithmetic from the configs."""

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from conftest import load_yaml, run_kvplan
from kvplan.errors import KvplanError
from kvplan.model.kinds import FullAttention, SharedKV, SlidingWindow
from kvplan.model.parse import parse_config
from kvplan.model.precision import PRECISIONS
from kvplan.model.sources import resolve
from kvplan.plan.capacity import token_bytes

ROOT = Path(__file__).resolve().parents[1]
E2B, DEFAULTS = "google/gemma-3n-E2B", "make_figures.py:GEMMA3N_DEFAULTS"
BF16 = PRECISIONS["bf16"]
FIGURES = json.loads((ROOT / "tests" / "data" / "vllm_gemma3n_figures.json").read_text())
E4B_CONFIG = FIGURES["header"]["configs"][DEFAULTS]  # transformers Gemma3nConfig() defaults: E4B's shapes

_spec = importlib.util.spec_from_file_location("engine_vllm_reference",
                                               ROOT / "benchmarks" / "engine_vllm_reference.py")
reference = sys.modules["engine_vllm_reference"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)


def bundled_config() -> dict:
    return load_yaml((ROOT / "model_specs" / "google--gemma-3n-E2B.yaml").read_text())["config"]


def spec_of(model: str):
    return parse_config(copy.deepcopy(E4B_CONFIG), model) if model == DEFAULTS else resolve(model)


def test_e2b_keeps_20_caches_and_10_layers_that_read_them():
    layers = resolve(E2B).layers
    assert len(layers) == 30
    own, shared = layers[:20], layers[20:]
    assert own[0] == SlidingWindow(2, 256, sliding_window=512) and own[4] == FullAttention(2, 256)
    assert sum(isinstance(x, SlidingWindow) for x in own) == 16
    assert all(isinstance(x, SharedKV) for x in shared)
    # vLLM: a sliding layer reads layer 20 - 2 = 18, a full layer 20 - 1 = 19 (layers 24 and 29 are full)
    assert [x.source for x in shared] == [18, 18, 18, 18, 19, 18, 18, 18, 18, 19]
    assert all(x.page_bytes(16, 1, BF16) == 0 for x in shared)  # sharing layers hold no pages


def test_bytes_a_token_count_only_the_layers_that_keep_a_cache():
    # 20 layers of 2 KV heads x 256, K and V, 2 bytes; the 10 (E2B) or 15 (E4B) sharing layers add nothing
    assert token_bytes(resolve(E2B), 1, BF16) == 20 * 2 * 2 * 256 * 2 == 40960
    assert token_bytes(spec_of(DEFAULTS), 1, BF16) == 40960
    unshared = copy.deepcopy(bundled_config())
    unshared["text_config"]["num_kv_shared_layers"] = 0
    assert token_bytes(parse_config(unshared, "no sharing"), 1, BF16) == 30 * 2048
    # TP 4: 2 KV heads, one replicated head a rank
    assert token_bytes(resolve(E2B), 4, BF16) == 20 * 2 * 256 * 2


@pytest.mark.parametrize("model", [E2B, DEFAULTS])
def test_weights_equal_vllms_meta_device_count(model):
    (vllm,) = [w for w in FIGURES["weights"] if w["model"] == model and w["tp"] == 1]
    spec = spec_of(model)
    assert sum(g.parameters for g in spec.params) == vllm["parameters"]
    vision = vllm["parts"]["vision_tower"] + vllm["parts"]["audio_tower"] + vllm["parts"]["embed_vision"] \
        + vllm["parts"]["embed_audio"]
    assert spec.param_count("vision") == vision
    # the checkpoint also ships the sharing layers' k_proj, v_proj (2 x 512 x 2048) and k_norm (256)
    shared = 10 if model == E2B else 15
    assert spec.load_delta[0] == -shared * (2 * 512 * 2048 + 256)
    assert spec.weights.parameters == vllm["parameters"] + shared * (2 * 512 * 2048 + 256)


@pytest.mark.parametrize("model", [E2B, DEFAULTS])
@pytest.mark.parametrize("tp", [1, 2])
def test_a_ranks_bytes_are_vllms_rank_parameters_in_bf16_and_the_float32_altup_scales(model, tp):
    """vLLM's rank 0 at tp 1 and 2 (the frozen weights entries: the towers whole on every rank, the embeddings and
    the layers split): kvplan's weights a GPU are 2 bytes a parameter plus 2 more for each of AltUp's float32
    correct_output_scale values, hidden_size a layer, held whole (E2B 30 layers, E4B's shape 35)."""
    from kvplan.plan.sharding import stage_weights

    (vllm,) = [w for w in FIGURES["weights"] if w["model"] == model and w["tp"] == tp]
    layers = 30 if model == E2B else 35
    assert stage_weights(spec_of(model), tp) == 2 * vllm["parameters"] + 2 * layers * 2048


def test_hand_counted_parts():
    """E2B by hand from its config: AltUp 4 x 4 + 16 x 4 + 4 x 2048 + two 2048 vectors a layer, Laurel 2 x 64 x 2048,
    per-layer table 262144 x 30 x 256, the audio encoder 681,348,640 (12 blocks of 24 h^2 + 14 h + 192, h = 1536,
    and 1,611,040 in its subsampler), timm's mobilenetv5_300m_enc 294,126,912."""
    w = next(w for w in FIGURES["weights"] if w["model"] == E2B and w["tp"] == 1)["parts"]
    assert w["layer.altup"] == 30 * (16 + 64 + 4 * 2048 + 2 * 2048)
    assert w["layer.laurel"] == 30 * (2 * 64 * 2048 + 2048)
    assert w["lm.embed_tokens_per_layer"] == 262144 * 30 * 256 == resolve(E2B).per_layer_table
    assert w["audio_tower"] == 12 * (24 * 1536**2 + 14 * 1536 + 192) + 1_611_040
    assert w["vision_tower"] == 294_126_912


def test_the_frozen_cases_are_vllms_and_kvplan_reproduces_them(monkeypatch):
    cases = FIGURES["cases"]
    assert len(cases) == 21 and FIGURES["header"]["vllm_version"] == "0.32.0"
    first = cases[0]
    # the 10 sharing layers get no spec; 16 sliding and 4 full pages of 2 x 256 x 2 x 2 bytes x 16 tokens; five groups
    # of four layers, a block 4 x 32 KiB
    assert first["layer_specs"] == {"SlidingWindowSpec": 16, "FullAttentionSpec": 4}
    assert first["kv"]["bytes_per_block"] == 4 * 2 * 256 * 2 * 2 * 16 and first["kv"]["num_groups"] == 5
    monkeypatch.setattr(reference, "model_spec", spec_of)
    for case in cases:
        mismatches = {k: pair for k, pair in reference.compare(case).items() if pair[0] != pair[1]}
        assert not mismatches, (case["id"], mismatches)


def test_per_layer_input_buffer_of_the_multimodal_wrapper():
    from kvplan.engines.vllm_settings import resolve_settings
    from kvplan.engines.vllm_budget import per_layer_input_buffer

    (vllm,) = [w for w in FIGURES["weights"] if w["model"] == E2B and w["tp"] == 1]
    shape, dtype = vllm["tensor_attributes"]["per_layer_embeddings"]
    settings = resolve_settings(32768, "NVIDIA H100 80GB HBM3", 80 * 2**30)
    assert shape == [settings.max_num_batched_tokens, 30, 256] and dtype == "bfloat16"
    assert per_layer_input_buffer(resolve(E2B), settings) == 8192 * 30 * 256 * 2


def test_estimate_of_the_bundled_spec():
    run = run_kvplan("estimate", E2B, "--gpu", "h100", "--max-model-len", "32768", "--format", "json")
    assert run.returncode == 0, run.stderr
    plan = json.loads(run.stdout)
    plan = plan[0] if isinstance(plan, list) else plan
    plan = plan.get("plans", [plan])[0] if isinstance(plan, dict) and "plans" in plan else plan
    assert plan["kv_bytes_per_token"] == 40960 and plan["engine"]["starts"]


@pytest.mark.parametrize("edit, field", [
    ({"num_kv_shared_layers": 29}, "num_kv_shared_layers"),
    ({"intermediate_size": [8192] * 29}, "intermediate_size"),
    ({"intermediate_size": [8192] * 29 + ["wide"]}, "intermediate_size"),
    ({"layer_types": ["sliding_attention"] * 29 + ["chunked_attention"]}, "layer_types"),
])
def test_bad_fields_are_refused_in_one_line(edit, field):
    config = copy.deepcopy(bundled_config())
    config["text_config"].update(edit)
    with pytest.raises(KvplanError, match=field) as error:
        parse_config(config, "bad")
    assert "\n" not in str(error.value)


def test_an_unknown_vision_encoder_is_refused():
    config = copy.deepcopy(bundled_config())
    config["vision_config"]["architecture"] = "resnet50"
    with pytest.raises(KvplanError, match="vision_config.architecture"):
        parse_config(config, "bad")


def test_altup_outside_gemma3n_is_still_refused():
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "vocab_size": 100, "altup_num_inputs": 4}
    with pytest.raises(KvplanError, match="altup_num_inputs"):
        parse_config(config, "x")


def test_verify_builds_gemma3n():
    """verify used to refuse Gemma 3n; its forward pass is tests/test_verify_gemma3n.py's."""
    from kvplan.verify.arch import architecture

    assert architecture(bundled_config(), resolve(E2B), 1).is_gemma3n
