"""Session 54 review fixes (fix8): vLLM's encoder-only models by release. vLLM builds an architecture's attention
encoder-only (no KV cache: layers/attention/encoder_only_attention.py 0.34.0:94-96) only in the releases whose module
reads the config's switch, or whose registry and config handler know the architecture; the older ones build it causal
(with a cache) or refuse the architecture. Each boundary is tested on both sides, against the vLLM lines cited (sdists
vllm-X.Y.Z/vllm, read by hand). --engine none takes the newest release's rule."""

import json

import pytest

from kvplan.engines.vllm_config_read import architecture_refusal, encoder_only_since, refuse_encoder_only
from kvplan.errors import KvplanError
from kvplan.model.parse import parse_config
from tests.conftest import one_error_line, run_kvplan

LLAMA = {"model_type": "llama", "hidden_size": 1024, "intermediate_size": 2048, "num_hidden_layers": 4,
         "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 1000, "max_position_embeddings": 4096,
         "torch_dtype": "bfloat16"}
DEEPSEEK_V3 = {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": 1024,
               "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 8, "kv_lora_rank": 128,
               "qk_rope_head_dim": 32, "qk_nope_head_dim": 64, "v_head_dim": 64, "q_lora_rank": None,
               "intermediate_size": 2048, "vocab_size": 1000, "max_position_embeddings": 4096,
               "torch_dtype": "bfloat16", "is_causal": False}
JINA_V5 = {**LLAMA, "architectures": ["JinaEmbeddingsV5Model"], "model_type": "qwen3", "head_dim": 128,
           "is_decoder": False}
# the review's repro: the top-level architecture is the encoder-only pooler, the nested llm_config a causal Llama
NEMOTRON_VL = {"architectures": ["LlamaNemotronVLModel"], "model_type": "llama_nemotron_vl",
               "llm_config": {**LLAMA, "architectures": ["LlamaForCausalLM"]}}


def _estimate(tmp_path, config: dict, engine: str):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return run_kvplan("estimate", path, "--gpu", "H100", "-c", "2048", "--engine", engine, "--format", "json")


def _refused_encoder_only(config: dict, version) -> bool:
    try:
        refuse_encoder_only(parse_config(config, "m"), version)
    except KvplanError as exc:
        assert "is an encoder-only model" in str(exc)
        return True
    return False


# 1. DeepSeek's is_causal: read by deepseek_v2.py from 0.29.0 (:566); 0.28.0's has no is_causal, so it builds causal MLA

def test_deepseek_is_causal_false_is_sized_on_0_28_and_refused_from_0_29(tmp_path):
    sized = _estimate(tmp_path, DEEPSEEK_V3, "vllm==0.28.0")
    assert sized.returncode == 0 and json.loads(sized.stdout)["plans"][0]["kv_capacity_tokens"] > 0, sized.stderr
    refused = _estimate(tmp_path, DEEPSEEK_V3, "vllm==0.29.0")
    assert refused.returncode == 2 and "(DeepseekV3ForCausalLM) is an encoder-only model: vLLM 0.29.0" in refused.stderr
    assert _estimate(tmp_path, DEEPSEEK_V3, "vllm==0.27.0").returncode == 0  # the review's false refusal


def test_engine_none_takes_the_newest_release_rule(tmp_path):
    refused = _estimate(tmp_path, DEEPSEEK_V3, "none")
    assert refused.returncode == 2 and "vLLM (from 0.29.0) builds no KV cache" in refused.stderr
    assert _estimate(tmp_path, {**DEEPSEEK_V3, "is_causal": True}, "none").returncode == 0


# 2. Jina v5: JinaEmbeddingsV5ModelConfig (models/config.py 0.27.0:477-493) and jina.py's dispatch (0.27.0:310-311)
# come in 0.27.0; registered from 0.20.0 (registry.py 0.20.0:233), 0.20-0.26 build it a causal Qwen3

def test_jina_v5_encoder_from_0_27():
    assert not _refused_encoder_only(JINA_V5, "0.26.0")
    assert _refused_encoder_only(JINA_V5, "0.27.0")
    assert not _refused_encoder_only({**JINA_V5, "is_decoder": True}, "0.34.0")
    assert architecture_refusal("JinaEmbeddingsV5Model", "0.19.1") is not None  # registry.py 0.19.1: absent
    assert architecture_refusal("JinaEmbeddingsV5Model", "0.20.0") is None


# 3. LlamaBidirectional*: registered from 0.14.0 (registry.py 0.14.0:214, :259); 0.13.0 refuses the architecture

@pytest.mark.parametrize("architecture", ["LlamaBidirectionalModel", "LlamaBidirectionalForSequenceClassification"])
def test_llama_bidirectional_unsupported_before_0_14(tmp_path, architecture):
    config = {**LLAMA, "architectures": [architecture]}
    old = _estimate(tmp_path, config, "vllm==0.13.0")
    assert old.returncode == 0 and "are not supported for now" in old.stdout, old.stderr
    assert "encoder-only" not in old.stderr
    new = _estimate(tmp_path, config, "vllm==0.14.0")
    assert new.returncode == 2 and f"({architecture}) is an encoder-only model: vLLM 0.14.0" in new.stderr


# 4. the is_causal readers the review found missing

def test_mistral_reads_is_causal_in_every_release():
    """0.11.0-0.14.1: registry.py 0.11.0:121 maps MistralForCausalLM to the llama module (llama.py 0.11.0:275); from
    0.16.0 the mistral module's MistralDecoderLayer(LlamaDecoderLayer) passes the attn_type llama.py picks
    (mistral.py 0.16.0:77-90, :144-156)."""
    config = {**LLAMA, "architectures": ["MistralForCausalLM"], "is_causal": False}
    assert _refused_encoder_only(config, "0.11.0") and _refused_encoder_only(config, "0.34.0")
    assert not _refused_encoder_only({**config, "is_causal": True}, "0.34.0")


def test_ministral3_from_its_registration():
    """registry.py 0.20.0:166 lists Ministral3ForCausalLM (mistral module), 0.19.1's does not."""
    config = {**LLAMA, "architectures": ["Ministral3ForCausalLM"], "is_causal": False}
    assert encoder_only_since(parse_config(config, "m")) == "0.20.0"
    assert not _refused_encoder_only(config, "0.19.1") and _refused_encoder_only(config, "0.20.0")


@pytest.mark.parametrize("architecture", ["Qwen2ForRewardModel", "Qwen2ForProcessRewardModel"])
def test_qwen2_reward_models_build_qwen2model(architecture):
    """qwen2_rm.py 0.11.0:54 builds Qwen2Model, whose decoder layer reads is_causal (qwen2.py 0.11.0:214)."""
    config = {**LLAMA, "architectures": [architecture], "model_type": "qwen2", "is_causal": False}
    assert _refused_encoder_only(config, "0.11.0")
    assert not _refused_encoder_only({**config, "is_causal": None}, "0.34.0")


def test_iquest_loopcoder_from_0_14():
    """iquest_loopcoder.py is new in 0.14.0 (registry.py 0.14.0:135) and reads is_causal at :225."""
    config = {**LLAMA, "architectures": ["IQuestLoopCoderForCausalLM"], "is_causal": False}
    assert not _refused_encoder_only(config, "0.13.0") and _refused_encoder_only(config, "0.14.0")


# 5. the top-level architecture: vLLM picks the config handler by it (LlamaNemotronVLConfig, models/config.py
# 0.17.0:115-127, sets is_causal false on the config and its llm_config), registered from 0.17.0 (registry.py :264)

def test_nested_llm_config_does_not_hide_the_pooler(tmp_path):
    spec = parse_config(NEMOTRON_VL, "m")
    assert spec.architecture == "LlamaForCausalLM" and spec.registered_architecture == "LlamaNemotronVLModel"
    refused = _estimate(tmp_path, NEMOTRON_VL, "none")
    assert refused.returncode == 2 and "(LlamaNemotronVLModel) is an encoder-only model" in refused.stderr
    assert _estimate(tmp_path, NEMOTRON_VL, "vllm==0.17.0").returncode == 2
    old = _estimate(tmp_path, NEMOTRON_VL, "vllm==0.16.0")
    assert old.returncode == 0 and "['LlamaNemotronVLModel'] are not supported for now" in old.stdout, old.stderr


def test_the_bert_family_is_refused_for_every_engine_at_parse_time():
    """Release-independent (model/unmodelled.py ENCODER_ONLY): refused before any engine is asked."""
    bert = {**LLAMA, "architectures": ["BertModel"], "model_type": "bert"}
    with pytest.raises(KvplanError, match=r"\(BertModel\) is an encoder-only model"):
        parse_config(bert, "m")


# ---- review 9: the rule runs where the release is the user's (estimate, check, verify), not inside plan() --------

def test_check_locates_the_release_rule_on_the_models_line(tmp_path):
    """A Qwen2 config with is_causal false (gte-Qwen2's, qwen2.py 0.11.0:214) in a deployments file: the refusal is
    said on that deployment's model line, as a BERT config's is, not as a bare error that hides which entry."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**LLAMA, "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
                                  "is_causal": False}))
    deployments = tmp_path / "d.yaml"
    deployments.write_text(f"deployments:\n  - name: fine\n    model: meta-llama/Llama-3.1-8B-Instruct\n    tp: 1\n"
                           f"  - name: gte\n    model: {config}\n    tp: 1\n")
    r = run_kvplan("check", "--file", deployments)
    assert r.returncode == 2
    assert f"{deployments}:6: deployment 'gte' field 'model':" in r.stderr
    assert "is an encoder-only model: vLLM 0.32.0 builds no KV cache" in r.stderr


def test_verify_refuses_before_it_asks_for_a_gpu(tmp_path):
    """verify says the release's encoder-only rule before its GPU requirement (on this GPU-less machine the GPU line
    would come otherwise), as it says BERT's."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**LLAMA, "architectures": ["LlamaForCausalLM"], "is_causal": False}))
    r = run_kvplan("verify", config, "-c", "2048")
    assert r.returncode == 2
    assert one_error_line(r).endswith("builds no KV cache for it, so there is nothing for kvplan to size.")
    assert "CUDA" not in r.stderr


def test_an_ideal_plan_inside_verify_does_not_apply_the_newest_rule():
    """verify lays its pools out with an ideal plan (engine none); under vllm==0.28.0 a DeepSeek-V3 config with
    is_causal false is causal (deepseek_v2.py reads it from 0.29.0:566 only), so that plan must not refuse it."""
    from kvplan.plan.budget import fixed_budget
    from kvplan.plan.plan import plan

    spec = parse_config(DEEPSEEK_V3, "m")
    result = plan(spec, context=2048, kv_dtype="auto", tp=1, budget_for=fixed_budget(8 * 2**30), engine="none",
                  speed=False, suggest=False)
    assert result.fits


def test_deepseek_v1_stays_causal_whatever_its_config_says():
    """DeepSeek v1 (model_type deepseek) builds DeepseekAttention, which never reads is_causal (deepseek_v2.py
    0.29.0:1268-1276); only DeepseekV2Attention does (:566)."""
    v1 = {**LLAMA, "architectures": ["DeepseekForCausalLM"], "model_type": "deepseek", "is_causal": False}
    assert encoder_only_since(parse_config(v1, "m")) is None
    assert _refused_encoder_only(DEEPSEEK_V3, "0.29.0")
